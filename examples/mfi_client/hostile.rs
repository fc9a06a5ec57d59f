//! Calls the guard must leave alone, the 32-bit entry from a 64-bit process, unreadable
//! packets and hostile pointers.

use super::*;

// ---- ioctls the guard must leave alone -------------------------------------------------------

/// Polls the node twice for a controller event: the driver says readable once per event.
pub(crate) fn run_poll(fd: c_int, ms: c_int) -> i32 {
    for i in 1..=2 {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            println!("poll={i} ret=-1 errno={e}");
            return 1;
        }
        println!("poll={i} ret={n} revents={:#06x}", p.revents);
    }
    0
}

pub(crate) fn run_unrelated(fd: c_int) -> i32 {
    let mut p = [0; 2];
    // SAFETY: pipe writes two descriptors.
    if unsafe { libc::pipe(p.as_mut_ptr()) } != 0 {
        eprintln!("mfi_client: pipe failed");
        return 3;
    }
    // SAFETY: writing 5 bytes from a static buffer to our pipe.
    unsafe { libc::write(p[1], b"hello".as_ptr().cast(), 5) };
    // Each ioctl below sits between two getppid() calls, so that a syscall trace shows what
    // else (if anything) happened around it: an unrelated ioctl must cost no extra syscall.
    let marker = || {
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    };
    let line = |name: &str, ret: c_int, extra: String| {
        let errno = if ret < 0 { last_errno() } else { 0 };
        println!(
            "{name} ret={ret} errno={errno} ({}){extra}",
            Errno(errno).name()
        );
    };

    // FIONREAD on a pipe: the most ordinary ioctl there is.
    let mut avail: c_int = -1;
    marker();
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { libc::ioctl(p[0], libc::FIONREAD, &mut avail) };
    marker();
    line("fionread_pipe", r, format!(" bytes={avail}"));

    // The MegaRAID request on a descriptor that is not the management node, with a packet the
    // guard would refuse: it must reach the pipe's driver, which knows no such request.
    let mut buf = vec![0u8; 2048];
    let mut pkt = samples::dcmd_read(ABI, MR_DCMD_CTRL_GET_INFO, buf_addr(&mut buf), 2048)
        .sge_count(17)
        .build();
    marker();
    // SAFETY: a whole packet; the pipe's driver does not read it.
    let r = unsafe {
        libc::ioctl(
            p[0],
            c_ulong::from(ABI.firmware_request()),
            pkt.as_mut_ptr().cast::<c_void>(),
        )
    };
    marker();
    line("megaraid_request_on_pipe", r, String::new());

    // Another 'M' request (nr 2) on the device itself: other drivers use type 'M' too.
    let other = mfiguard_sanitizer::abi::ioctl::iowr(b'M', 2, ABI.packet_size());
    marker();
    // SAFETY: the device does not know the request; the packet is a valid buffer anyway.
    let r = unsafe { libc::ioctl(fd, c_ulong::from(other), pkt.as_mut_ptr().cast::<c_void>()) };
    marker();
    line("other_m_request_on_device", r, String::new());

    // TCGETS on the device.
    // SAFETY: a zeroed termios is a valid buffer for TCGETS to fill.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    marker();
    // SAFETY: TCGETS writes one termios.
    let r = unsafe { libc::ioctl(fd, libc::TCGETS, &mut t) };
    marker();
    line("tcgets_device", r, String::new());

    // The other ABI's MEGASAS_IOC_FIRMWARE on the device: the kernel's native handler knows
    // only this process's code (the compat one is for 32-bit processes), so it is ENOTTY; a
    // guard that decoded it would refuse the rule-breaking packet with EINVAL instead.
    let other_abi = match ABI {
        Abi::Lp64 => Abi::Ilp32,
        Abi::Ilp32 => Abi::Lp64,
    };
    marker();
    // SAFETY: the packet buffer is larger than either layout; the kernel does not read it.
    let r = unsafe {
        libc::ioctl(
            fd,
            c_ulong::from(other_abi.firmware_request()),
            pkt.as_mut_ptr().cast::<c_void>(),
        )
    };
    marker();
    line("other_abi_firmware_on_device", r, String::new());
    0
}

// ---- the 32-bit entry from a 64-bit process ---------------------------------------------------

/// `compat-int80 stp-probe|sgl-off`: the i386 layout's `MEGASAS_IOC_FIRMWARE32` through
/// `int 0x80` from a 64-bit process (the kernel then takes the compat path: an `LD_PRELOAD`
/// guard never sees it). The packet and its buffers live below 4 GiB, as 32-bit pointers need.
#[cfg(target_arch = "x86_64")]
pub(crate) fn run_compat_int80(fd: c_int, host: u16, kind: &str) -> i32 {
    const LEN: usize = 4096;
    // SAFETY: a fresh anonymous mapping; checked below.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        eprintln!("mfi_client: mmap(MAP_32BIT) failed");
        return 2;
    }
    let base = mem as u64;
    let (fis, data) = (base + 1024, base + 2048);
    let builder = match kind {
        "stp-probe" => samples::megacli_8_01_06_stp_probe(Abi::Ilp32, 10, fis, data),
        "sgl-off" => {
            samples::dcmd_read(Abi::Ilp32, MR_DCMD_CTRL_GET_INFO, data, 2048).sgl_off(0x40000)
        }
        _ => return usage(&format!("unknown compat-int80 kind {kind}")),
    };
    let packet = builder.host_no(host).build();
    // SAFETY: the mapping is 4096 bytes; the packet (276) fits at its start.
    let pkt = unsafe { std::slice::from_raw_parts_mut(mem.cast::<u8>(), LEN) };
    pkt[..packet.len()].copy_from_slice(&packet);
    pkt[CMD_STATUS] = STATUS_UNSET;
    let code = Abi::Ilp32.firmware_request();
    let ret: isize;
    // SAFETY: the i386 system-call ABI through int 0x80 (nr in eax, arguments in ebx, ecx,
    // edx; only their low 32 bits are used); rbx is reserved by LLVM, hence the swap. The
    // packet and buffers are in the mapping, below 4 GiB.
    unsafe {
        std::arch::asm!(
            "xchg rsi, rbx",
            "int 0x80",
            "xchg rsi, rbx",
            inlateout("rax") 54isize => ret,
            in("rsi") fd as isize,
            in("rcx") code as usize,
            in("rdx") base as usize,
            options(nostack)
        );
    }
    let ret = syscall_result(ret);
    let o = Outcome {
        ret,
        errno: if ret < 0 { last_errno() } else { 0 },
        cmd_status: pkt[CMD_STATUS],
    };
    print_outcome("MEGASAS_IOC_FIRMWARE32", &o, true);
    if ret == 0 && kind == "stp-probe" {
        let model = &pkt[2048 + 54..2048 + 94];
        let model: Vec<u8> = model.chunks(2).flat_map(|w| [w[1], w[0]]).collect();
        println!("model={}", String::from_utf8_lossy(&model).trim());
    }
    i32::from(ret != 0)
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn run_compat_int80(_fd: c_int, _host: u16, _kind: &str) -> i32 {
    usage("compat-int80 is for 64-bit processes")
}

// ---- unreadable packets and hostile pointers ------------------------------------------------

/// The `fault` kinds: where the packet pointer points, or which pointer inside a well-formed
/// packet is hostile.
pub(crate) const FAULT_KINDS: [&str; 12] = [
    "unmapped",
    "protnone",
    "span",
    "short",
    "null",
    "readonly",
    "edge",
    "misaligned",
    "sense-unmapped",
    "iovec-unmapped",
    "iovec-readonly",
    "iovec-unmapped-rule",
];

pub(crate) fn run_fault(fd: c_int, host: u16, kind: &str) -> i32 {
    let page = 4096usize;
    // An address where nothing is mapped: a page of our own, unmapped again. Nothing in this
    // single-threaded scenario maps memory before the call, so the hole stays a hole.
    // SAFETY: mapping and unmapping an anonymous page of our own; only its address is kept.
    let hole = || unsafe {
        let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
        libc::munmap(p.cast(), page);
        p as u64
    };
    let mut call = match kind {
        // The seed's flags: the guard must read (and rewrite) the packet where it is.
        "misaligned" => ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64)),
        // INQUIRY whose sense pointer (the 8 bytes at sense_off 0x18, 4 on i386) is a hole: the
        // command runs, then the sense copy-back fails.
        "sense-unmapped" => inquiry_with(host, 8, 32, |b, _| sense_at(b, 0x18, hole())),
        // CTRL_GET_INFO whose one buffer is a hole: nothing can be copied in.
        "iovec-unmapped" => ctrl_info_with(host, 2048, |b| b.iovec(0, hole(), 2048)),
        // The same hole in a packet a rule refuses (sgl.bounds, and sgl.offset-unusual): the
        // driver would write its SGL entry 256 KiB past its frame before it found the hole.
        "iovec-unmapped-rule" => {
            ctrl_info_with(host, 2048, |b| b.iovec(0, hole(), 2048).sgl_off(0x40000))
        }
        // CTRL_GET_INFO whose buffer is read-only: copied in, but not back.
        "iovec-readonly" => {
            // SAFETY: an anonymous page of our own, made read-only; only the kernel writes
            // to it (and fails).
            let ro = unsafe {
                let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
                libc::mprotect(p.cast(), page, libc::PROT_READ);
                p as u64
            };
            ctrl_info_with(host, 2048, |b| b.iovec(0, ro, 2048))
        }
        _ => ctrl_info_with(host, 2048, |b| b),
    };
    let pkt = call.packet.clone();
    // Whether the packet itself is readable, so its status byte can be read back.
    let readable = !matches!(kind, "unmapped" | "protnone" | "span" | "short" | "null");
    // SAFETY: anonymous mappings of our own, used only as addresses handed to the kernel
    // (and, for the readable kinds, read back below).
    let ptr: *mut u8 = unsafe {
        match kind {
            "null" => std::ptr::null_mut(),
            "readonly" => {
                // The whole packet readable, but not writable: the status byte cannot be
                // written back (the kernel's copy_to_user fails: EFAULT).
                let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), p, pkt.len());
                *p.add(CMD_STATUS) = STATUS_UNSET;
                libc::mprotect(p.cast(), page, libc::PROT_READ);
                p
            }
            "edge" => {
                // The packet ends exactly where a PROT_NONE page begins: all of it readable,
                // not one byte more. A correct copy succeeds.
                let p = map(2 * page, libc::PROT_READ | libc::PROT_WRITE);
                let start = p.add(page - pkt.len());
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), start, pkt.len());
                *start.add(CMD_STATUS) = STATUS_UNSET;
                libc::mprotect(p.add(page).cast(), page, libc::PROT_NONE);
                start
            }
            "misaligned" => {
                // At an odd address: nothing in the ABI aligns the packet, and the kernel
                // copies it byte for byte. Neither a copy nor the status write-back may assume
                // an alignment.
                let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
                let start = p.add(1);
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), start, pkt.len());
                *start.add(CMD_STATUS) = STATUS_UNSET;
                start
            }
            "protnone" => map(page, libc::PROT_NONE),
            "unmapped" => {
                let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
                libc::munmap(p.cast(), page);
                p
            }
            "span" => {
                // The first 100 bytes readable, the rest in a PROT_NONE page.
                let p = map(2 * page, libc::PROT_READ | libc::PROT_WRITE);
                let start = p.add(page - 100);
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), start, 100);
                libc::mprotect(p.add(page).cast(), page, libc::PROT_NONE);
                start
            }
            "short" => {
                // A packet shorter than the layout (on x86_64 the 276 bytes of the i386 one:
                // a tool built for the other ABI), ending where an unmapped page begins.
                let short = pkt.len() - 128;
                let p = map(2 * page, libc::PROT_READ | libc::PROT_WRITE);
                libc::munmap(p.add(page).cast(), page);
                let start = p.add(page - short);
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), start, short);
                start
            }
            _ => {
                // The packet is whole and where it should be; a pointer inside it is hostile.
                call.packet[CMD_STATUS] = STATUS_UNSET;
                call.packet.as_mut_ptr()
            }
        }
    };
    // SAFETY: the point of the scenario: the pointer, or one inside the packet, is hostile.
    // The kernel, and a correct guard, answer EFAULT (or a rule's errno) instead of faulting.
    let ret = unsafe {
        megaraid_ioctl(
            fd,
            c_ulong::from(ABI.firmware_request()),
            ptr.cast::<c_void>(),
        )
    };
    let errno = if ret < 0 { last_errno() } else { 0 };
    let cmd_status = if readable {
        // SAFETY: for the readable kinds the packet's page is readable.
        unsafe { std::ptr::read_volatile(ptr.add(CMD_STATUS)) }
    } else {
        0
    };
    print_outcome(
        "MEGASAS_IOC_FIRMWARE",
        &Outcome {
            ret,
            errno,
            cmd_status,
        },
        readable,
    );
    println!("fault={kind}");
    if readable {
        // STATUS_UNSET (0xff) when the status byte was not written: what the kernel does on
        // any failure.
        println!("status_byte={cmd_status:#04x}");
        if ret == 0 && matches!(kind, "readonly" | "edge" | "misaligned") {
            report(Report::CtrlInfo, &call.bufs);
        }
    }
    i32::from(ret != 0)
}

/// # Safety
/// Plain anonymous mmap; aborts the scenario when it fails.
pub(crate) unsafe fn map(len: usize, prot: c_int) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap failed");
    p.cast()
}
