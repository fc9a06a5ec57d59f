//! Any DCMD, and SMP frames to an expander (with a thread flipping the request in flight).

use super::*;

// ---- any DCMD --------------------------------------------------------------------------------

/// `dcmd OPCODE DIR LEN`: a DCMD with a buffer of LEN bytes read (DIR_READ) or sent
/// (DIR_WRITE, zeros), or none.
pub(crate) fn dcmd_raw(h: u16, opts: &Opts) -> Result<Call, String> {
    const USAGE: &str = "dcmd needs OPCODE read|write|none LEN";
    let opcode = u32::try_from(arg_num(opts, USAGE)?).map_err(|_| "OPCODE too big")?;
    let dir = opts.args.get(1).ok_or(USAGE)?;
    let len = opts
        .args
        .get(2)
        .and_then(|a| parse_num(a))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(USAGE)?;
    let mut buf = vec![0u8; len as usize];
    let b = PacketBuilder::new(ABI).host_no(h).sgl_off(0x28);
    let b = match dir.as_str() {
        "none" => b.frame_header(MfiCmd::Dcmd, 0, 0, 0),
        "read" | "write" => b
            .sge_count(1)
            .iovec(0, buf_addr(&mut buf), u64::from(len))
            .frame_header(
                MfiCmd::Dcmd,
                if dir == "read" { DIR_READ } else { DIR_WRITE },
                1,
                len,
            ),
        _ => return Err(USAGE.to_owned()),
    };
    Ok(Call {
        packet: b.frame_u32(0x18, opcode).build(),
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![buf],
        report: Report::Nothing,
        label: None,
    })
}

// ---- SMP -------------------------------------------------------------------------------------

/// SMP frame header flags as MegaCli-like tools send them: DIR_BOTH (request out, response in).
pub(crate) const SMP_DIR_BOTH: u16 = mfiguard_sanitizer::abi::mfi::MfiDirection::Both.bits();

/// An SMP frame to an expander: `sgl[0]` the 64-byte response, `sgl[1]` a 40-byte request
/// `40 FUNCTION 00 00` followed by zeros (`request_len` bytes in all; `request_base` instead of
/// the buffer's address, to point it elsewhere).
pub(crate) fn smp_call(
    h: u16,
    function: u8,
    request_len: usize,
    request_base: Option<u64>,
) -> Call {
    let mut response = vec![0u8; 64];
    let mut request = vec![0u8; request_len.max(8)];
    request[..4].copy_from_slice(&[0x40, function, 0x00, 0x00]);
    let packet = PacketBuilder::new(ABI)
        .host_no(h)
        .sgl_off(0x20)
        .sge_count(2)
        .iovec(0, buf_addr(&mut response), 64)
        .iovec(
            1,
            request_base.unwrap_or(buf_addr(&mut request)),
            request.len() as u64,
        )
        .frame_header(MfiCmd::Smp, SMP_DIR_BOTH, 2, 64)
        .header(|hd| hd.timeout = 10.into())
        .frame_u64(0x18, 0x5000_c500_0000_00ff)
        .build();
    Call {
        packet,
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![response, request],
        report: Report::Smp,
        label: None,
    }
}

/// The address of a page of our own, unmapped again: nothing is mapped there.
pub(crate) fn unmapped_page() -> u64 {
    // SAFETY: mapping and unmapping an anonymous page of our own; only its address is kept.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        libc::munmap(p, 4096);
        p as u64
    }
}

/// N SMP DISCOVER calls while a second thread keeps turning the caller's request into PHY
/// CONTROL (0x91) and back: whatever a guard checked must be what it sent.
pub(crate) fn run_smp_race(fd: c_int, opts: &Opts, n: u64) -> i32 {
    let mut call = smp_call(opts.host, 0x10, 40, None);
    let function_addr = call.bufs[1].as_mut_ptr() as usize + 1;
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // SAFETY: the function byte lives in the request buffer, which outlives this thread
            // (joined below); this thread only touches it through an atomic.
            let function = unsafe { &*(function_addr as *const AtomicU8) };
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                function.store(0x91, Ordering::Relaxed);
                std::hint::spin_loop();
                function.store(0x10, Ordering::Relaxed);
                flips += 1;
            }
            flips
        })
    };
    let request = call.request;
    let base = call.packet.as_mut_ptr();
    let (mut ok, mut eperm, mut other) = (0u64, 0u64, 0u64);
    for _ in 0..n {
        // SAFETY: the packet and its buffers live across the call; only the request's function
        // byte is being changed concurrently (by the flipper, atomically), the status byte and
        // the buffers by the kernel.
        let r = unsafe {
            std::ptr::write_volatile(base.add(CMD_STATUS), STATUS_UNSET);
            megaraid_ioctl(fd, request, base.cast::<c_void>())
        };
        match (r, if r < 0 { last_errno() } else { 0 }) {
            (0, _) => ok += 1,
            (-1, libc::EPERM) => eperm += 1,
            _ => other += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap_or(0);
    // Deterministic stdout; the split between passed and refused calls depends on timing.
    println!("calls={n} other={other}");
    eprintln!("mfi_client: smp-race: ok={ok} eperm={eperm}, {flips} flips during {n} calls");
    i32::from(other != 0)
}
