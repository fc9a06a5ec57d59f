//! A second thread rewriting the packet in flight, and many threads at once.

use super::*;

// ---- a second thread rewriting the packet ----------------------------------------------------

pub(crate) fn run_race(fd: c_int, opts: &Opts, n: u64) -> i32 {
    let mut buf = vec![0u8; 2048];
    let mut pkt = samples::dcmd_read(ABI, MR_DCMD_CTRL_GET_INFO, buf_addr(&mut buf), 2048)
        .host_no(opts.host)
        .build();
    let flags_addr = pkt.as_mut_ptr() as usize + FLAGS;
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // SAFETY: the flags byte lives in `pkt`, which outlives this thread (joined below);
            // this thread only touches it through an atomic.
            let flags = unsafe { &*(flags_addr as *const AtomicU8) };
            let (bad, good) = ((DIR_READ | IEEE_SGL64) as u8, DIR_READ as u8);
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                flags.store(bad, Ordering::Relaxed);
                std::hint::spin_loop();
                flags.store(good, Ordering::Relaxed);
                flips += 1;
            }
            flips
        })
    };
    let request = c_ulong::from(ABI.firmware_request());
    let (mut ok, mut failed) = (0u64, 0u64);
    let base = pkt.as_mut_ptr();
    for _ in 0..n {
        // SAFETY: the packet and its buffer live across the call; only the flags byte is
        // being changed concurrently (by the flipper, atomically), the status byte by the kernel.
        let r = unsafe {
            std::ptr::write_volatile(base.add(CMD_STATUS), STATUS_UNSET);
            megaraid_ioctl(fd, request, base.cast::<c_void>())
        };
        if r == 0 {
            ok += 1;
        } else {
            failed += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap_or(0);
    // Deterministic stdout: how many calls and how they ended, not how many flips happened.
    println!("calls={n} ok={ok} failed={failed}");
    eprintln!("mfi_client: race: {flips} flips during {n} calls");
    i32::from(failed != 0)
}

// ---- many threads at once --------------------------------------------------------------------

/// THREADS threads, released together (so the first guarded calls race the guard's lazy set-up),
/// each issuing CALLS `ieee-dcmd` calls on a packet of its own. `status_ok` counts the calls the
/// controller answered with cmd_status OK: on a legacy driver only a guard that cleared the flags
/// gets those.
pub(crate) fn run_threads(fd: c_int, opts: &Opts, n: usize, m: u64) -> i32 {
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let host = opts.host;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut c = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
                barrier.wait();
                let (mut ret_ok, mut status_ok) = (0u64, 0u64);
                for _ in 0..m {
                    let o = issue(fd, c.request, &mut c.packet);
                    if o.ret == 0 {
                        ret_ok += 1;
                        if o.cmd_status == 0 {
                            status_ok += 1;
                        }
                    }
                }
                (ret_ok, status_ok)
            })
        })
        .collect();
    let (mut ret_ok, mut status_ok) = (0u64, 0u64);
    for h in handles {
        let (r, st) = h.join().unwrap_or((0, 0));
        ret_ok += r;
        status_ok += st;
    }
    let calls = n as u64 * m;
    println!("threads={n} calls={calls} ret_ok={ret_ok} status_ok={status_ok}");
    i32::from(ret_ok != calls)
}
