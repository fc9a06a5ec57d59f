//! Issuing a call and reporting what came back; `MEGASAS_IOC_GET_AEN` and `poll`.

use super::*;

// ---- issuing ---------------------------------------------------------------------------------

pub(crate) struct Outcome {
    pub(crate) ret: c_int,
    pub(crate) errno: c_int,
    pub(crate) cmd_status: u8,
}

pub(crate) fn issue(fd: c_int, request: c_ulong, packet: &mut [u8]) -> Outcome {
    packet[CMD_STATUS] = STATUS_UNSET;
    // SAFETY: `packet` is a whole megasas_iocpacket of this process's layout; its iovecs point at
    // buffers the caller keeps alive across the call.
    let ret = unsafe { megaraid_ioctl(fd, request, packet.as_mut_ptr().cast::<c_void>()) };
    let errno = if ret < 0 { last_errno() } else { 0 };
    Outcome {
        ret,
        errno,
        cmd_status: packet[CMD_STATUS],
    }
}

pub(crate) fn print_outcome(name: &str, o: &Outcome, with_status: bool) {
    if o.ret == 0 {
        if with_status {
            println!(
                "ioctl={name} ret=0 errno=0 cmd_status={:#04x} ({})",
                o.cmd_status,
                status_name(o.cmd_status)
            );
        } else {
            println!("ioctl={name} ret=0 errno=0");
        }
    } else {
        println!(
            "ioctl={name} ret={} errno={} ({})",
            o.ret,
            o.errno,
            Errno(o.errno).name()
        );
    }
}

pub(crate) fn run_call(fd: c_int, opts: &Opts, mut call: Call) -> i32 {
    let mut failed = 0u32;
    let mut last = None;
    let mut before = call.packet.clone();
    before[CMD_STATUS] = STATUS_UNSET;
    for _ in 0..opts.repeat {
        let o = issue(fd, call.request, &mut call.packet);
        if o.ret != 0 {
            failed += 1;
        }
        last = Some(o);
    }
    let Some(o) = last else { return 2 };
    print_outcome("MEGASAS_IOC_FIRMWARE", &o, true);
    if opts.repeat > 1 {
        println!("calls={} failed={failed}", opts.repeat);
    }
    if let Some(label) = &call.label {
        println!("{label}");
    }
    if o.ret == 0 {
        report(call.report, &call.bufs);
    }
    // Which bytes of the caller's packet the call wrote: a kernel writes exactly one, the
    // status byte (0x16), and only on success.
    let changed: Vec<String> = before
        .iter()
        .zip(&call.packet)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| format!("{i:#x}"))
        .collect();
    if changed.is_empty() {
        println!("packet_changed=none");
    } else {
        println!("packet_changed={}", changed.join(","));
    }
    i32::from(o.ret != 0)
}

pub(crate) fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end]
        .iter()
        .map(|&c| {
            if (0x20..0x7F).contains(&c) {
                c as char
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim_end()
        .to_owned()
}

pub(crate) fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

pub(crate) fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// An ATA IDENTIFY string: byte-swapped 16-bit words.
pub(crate) fn ata_string(b: &[u8]) -> String {
    let swapped: Vec<u8> = b.chunks(2).flat_map(|w| [w[1], w[0]]).collect();
    cstr(&swapped).trim().to_owned()
}

pub(crate) fn report(kind: Report, bufs: &[Vec<u8>]) {
    match kind {
        Report::CtrlInfo => {
            let d = &bufs[0];
            // struct megasas_ctrl_info: image_component[0].version @0xC0, product_name @0x540,
            // serial_no @0x590, package_version @0x640.
            println!("firmware={}", cstr(&d[0xC0..0xE0]));
            println!("package={}", cstr(&d[0x640..0x6A0]));
            println!("product={}", cstr(&d[0x540..0x590]));
            println!("serial={}", cstr(&d[0x590..0x5B0]));
        }
        Report::PdList => {
            let d = &bufs[0];
            let count = le32(d, 4) as usize;
            let fits = (d.len() - 8) / 24;
            let ids: Vec<String> = (0..count.min(fits))
                .map(|i| le16(d, 8 + 24 * i).to_string())
                .collect();
            println!("pd_count={count}");
            println!("pd_ids={}", ids.join(","));
        }
        Report::LdList => {
            let d = &bufs[0];
            let count = le32(d, 0) as usize;
            let fits = (d.len() - 8) / 16;
            let ids: Vec<String> = (0..count.min(fits))
                .map(|i| d[8 + 16 * i].to_string())
                .collect();
            println!("ld_count={count}");
            println!("ld_targets={}", ids.join(","));
        }
        Report::EventInfo => {
            let d = &bufs[0];
            println!(
                "newest_seq={} oldest_seq={} clear_seq={} shutdown_seq={} boot_seq={}",
                le32(d, 0),
                le32(d, 4),
                le32(d, 8),
                le32(d, 12),
                le32(d, 16)
            );
        }
        Report::Inquiry => {
            let d = &bufs[0];
            println!("peripheral_type={:#04x}", d[0] & 0x1F);
            println!("vendor={}", cstr(&d[8..16]));
            println!("product={}", cstr(&d[16..32]));
            println!("revision={}", cstr(&d[32..36]));
            let sense = &bufs[1];
            println!(
                "sense_key={:#04x} asc={:#04x}",
                sense.get(2).map_or(0, |k| k & 0x0F),
                sense.get(12).copied().unwrap_or(0)
            );
        }
        Report::Stp => {
            let (fis, id) = (&bufs[0], &bufs[1]);
            println!("fis_type={:#04x} fis_status={:#04x}", fis[0], fis[2]);
            println!("model={}", ata_string(&id[54..94]));
            println!("serial={}", ata_string(&id[20..40]));
            println!("firmware_rev={}", ata_string(&id[46..54]));
        }
        Report::Smp => {
            let hex = |b: &[u8]| {
                b.iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            println!("smp_response={}", hex(&bufs[0][..4]));
            println!("smp_request={}", hex(&bufs[1][..8]));
        }
        Report::Nothing => {}
    }
}

// ---- GET_AEN ---------------------------------------------------------------------------------

/// `aen [wait MS | plain]`: registers for controller events (`F_SETOWN`, `O_ASYNC`, then
/// `MEGASAS_IOC_GET_AEN`, as MegaCli does); with `wait MS`, then waits up to MS milliseconds
/// for the driver's `SIGIO` and says whether it came (`sigio=1 after_ms=N from_pid=P`) and what
/// a `poll` of the descriptor says at that moment; `plain` asks without `F_SETOWN` and
/// `O_ASYNC` first.
pub(crate) fn run_aen(fd: c_int, opts: &Opts) -> i32 {
    let (wait_ms, register) = match opts.args.first().map(String::as_str) {
        None => (None, true),
        // Without F_SETOWN and O_ASYNC first: the driver refuses it (EINVAL).
        Some("plain") => (None, false),
        Some("wait") => match opts.args.get(1).and_then(|a| parse_num(a)) {
            Some(ms) => (Some(ms.min(600_000)), true),
            None => return usage("aen wait needs MS"),
        },
        Some(other) => return usage(&format!("unknown aen variant {other}")),
    };
    // SIGIO blocked before the registration, so that an event between it and the wait is kept
    // pending rather than ending the process (SIGIO's default action).
    // SAFETY: sigset operations on a live local; blocking a signal in this thread.
    let sigio = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGIO);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    // Register for SIGIO, as MegaCli does before asking for events.
    if register {
        // SAFETY: fcntl on our own descriptor with integer arguments.
        unsafe {
            libc::fcntl(fd, libc::F_SETOWN, libc::getpid());
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_ASYNC);
        }
    }
    // struct megasas_aen: host_no, pad, seq_num, class_locale_word (locale ALL, class INFO).
    let mut aen = [0u8; 12];
    aen[0..2].copy_from_slice(&opts.host.to_ne_bytes());
    aen[4..8].copy_from_slice(&0u32.to_ne_bytes());
    aen[8..12].copy_from_slice(&0x0000_FFFFu32.to_ne_bytes());
    let mut failed = 0;
    let mut o = Outcome {
        ret: 0,
        errno: 0,
        cmd_status: 0,
    };
    for _ in 0..opts.repeat {
        // SAFETY: a 12-byte struct megasas_aen, as the request expects.
        let ret = unsafe {
            megaraid_ioctl(
                fd,
                c_ulong::from(IOC_GET_AEN),
                aen.as_mut_ptr().cast::<c_void>(),
            )
        };
        o = Outcome {
            ret,
            errno: if ret < 0 { last_errno() } else { 0 },
            cmd_status: 0,
        };
        if ret != 0 {
            failed += 1;
        }
    }
    print_outcome("MEGASAS_IOC_GET_AEN", &o, false);
    if opts.repeat > 1 {
        println!("calls={} failed={failed}", opts.repeat);
    }
    if let (Some(ms), 0) = (wait_ms, o.ret) {
        // Ready: a line a script can wait for before it makes the event happen.
        println!("waiting_ms={ms}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let start = std::time::Instant::now();
        let ts = libc::timespec {
            tv_sec: (ms / 1000) as libc::time_t,
            tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
        };
        // SAFETY: all-zero is a valid siginfo_t; a live set, info and timeout.
        let (sig, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            (libc::sigtimedwait(&sigio, &mut info, &ts), info)
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd; a zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if sig == libc::SIGIO {
            // SAFETY: the kernel filled `info` for the signal it returned.
            let from = unsafe { info.si_pid() };
            println!(
                "sigio=1 after_ms={} from_pid={from} poll={n} revents={:#06x}",
                start.elapsed().as_millis(),
                p.revents
            );
            return 0;
        }
        println!("sigio=0 poll={n} revents={:#06x}", p.revents);
        return 1;
    }
    i32::from(o.ret != 0)
}
