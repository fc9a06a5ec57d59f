//! The soak, and the preload's in-process window.

use super::*;

// ---- the soak, and the preload's in-process window --------------------------------------------

/// `soak THREADS SECONDS [PACE_US]` and `private-race N`, which parse their own arguments.
pub fn soak_scenario(fd: c_int, opts: &Opts) -> i32 {
    let num = |i: usize| opts.args.get(i).and_then(|a| a.parse::<u64>().ok());
    match opts.scenario.as_str() {
        "soak" => match (num(0), num(1)) {
            (Some(threads), Some(secs)) => soak(
                fd,
                opts.host,
                threads.clamp(1, 64) as usize,
                secs,
                num(2).unwrap_or(0),
            ),
            _ => {
                eprintln!("mfi_client: soak needs THREADS SECONDS [PACE_US]");
                2
            }
        },
        _ => match num(0) {
            Some(n) => private_race(fd, opts.host, n.max(1)),
            None => {
                eprintln!("mfi_client: private-race needs a count");
                2
            }
        },
    }
}

/// This process's resident set, in KiB (`VmRSS`), 0 if unknown.
pub(crate) fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `CFG_CLEAR` (`MR_DCMD_CFG_CLEAR`), no buffer: a writing DCMD, which the read-only policy
/// refuses (EPERM) and enforce lets through.
pub(crate) fn writing_dcmd(host: u16) -> Call {
    use mfiguard_sanitizer::abi::mfi::MfiCmd;
    use mfiguard_sanitizer::builder::PacketBuilder;
    Call {
        packet: PacketBuilder::new(ABI)
            .host_no(host)
            .sgl_off(0x28)
            .frame_header(MfiCmd::Dcmd, 0, 0, 0)
            .frame_u32(0x18, 0x0403_0000)
            .build(),
        request: c_ulong::from(ABI.firmware_request()),
        bufs: Vec::new(),
        report: crate::Report::Nothing,
        label: None,
    }
}

#[derive(Default)]
pub(crate) struct SoakTally {
    pub(crate) megaraid: u64,
    pub(crate) ok: u64,
    pub(crate) einval: u64,
    pub(crate) eperm: u64,
    pub(crate) enosys: u64,
    pub(crate) other: u64,
    pub(crate) unrelated: u64,
    pub(crate) unrelated_failed: u64,
}

/// THREADS threads for SECONDS, each cycling what a monitoring host sends: a clean DCMD (a
/// monitoring read), the seed's flags on a DCMD (rewritten), a packet a rule refuses (EINVAL),
/// a writing DCMD (refused with EPERM under the read-only policy, let through by enforce), and
/// FIONREAD on a pipe (not the guard's business); PACE_US microseconds of sleep after each call.
/// Stdout: one line of counts, with this process's RSS after its first second and at the end.
/// A MegaRAID call failing with ENOSYS (its supervisor was killed: the kernel fails it closed)
/// is counted apart (`enosys=`): whether one was expected is for the caller to judge.
/// Exit 1 if any call ended otherwise than one of those ways.
pub fn soak(fd: c_int, host: u16, threads: usize, secs: u64, pace_us: u64) -> i32 {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..threads)
        .map(|n| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut calls = [
                    ctrl_info_with(host, 2048, |b| b),
                    ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64)),
                    rule_call(host, "sgl.bounds").expect("rule packet"),
                    writing_dcmd(host),
                ];
                let pipe = pipe_with_bytes();
                let mut t = SoakTally::default();
                let mut shown = 0;
                barrier.wait();
                // Threads start at different points of the cycle.
                let mut i = n;
                while Instant::now() < deadline {
                    match calls.get_mut(i % 5) {
                        Some(c) => {
                            t.megaraid += 1;
                            let o = issue(fd, c.request, &mut c.packet);
                            match (o.ret, o.errno) {
                                (0, _) => t.ok += 1,
                                (-1, libc::EINVAL) => t.einval += 1,
                                (-1, libc::EPERM) => t.eperm += 1,
                                // The supervisor is gone (killed): the kernel fails the call.
                                (-1, libc::ENOSYS) => t.enosys += 1,
                                _ => {
                                    t.other += 1;
                                    if shown < 3 {
                                        shown += 1;
                                        eprintln!("mfi_client: soak: unexpected {}", describe(&o));
                                    }
                                }
                            }
                        }
                        None => {
                            t.unrelated += 1;
                            if !fionread(pipe) {
                                t.unrelated_failed += 1;
                            }
                        }
                    }
                    i += 1;
                    if pace_us > 0 {
                        std::thread::sleep(Duration::from_micros(pace_us));
                    }
                }
                // SAFETY: closing the pipe's read end, which this thread owns.
                unsafe { libc::close(pipe) };
                t
            })
        })
        .collect();
    barrier.wait();
    std::thread::sleep(Duration::from_secs(1).min(Duration::from_secs(secs)));
    let rss_start = rss_kb();
    // The end figure is taken while the threads still run (their stacks and buffers count).
    while Instant::now() + Duration::from_millis(500) < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss_end = rss_kb();
    let mut all = SoakTally::default();
    for w in workers {
        let t = w.join().unwrap_or_default();
        all.megaraid += t.megaraid;
        all.ok += t.ok;
        all.einval += t.einval;
        all.eperm += t.eperm;
        all.enosys += t.enosys;
        all.other += t.other;
        all.unrelated += t.unrelated;
        all.unrelated_failed += t.unrelated_failed;
    }
    println!(
        "soak threads={threads} calls={} megaraid={} ok={} einval={} eperm={} enosys={} other={} \
         unrelated={} unrelated_failed={} rss_start_kb={rss_start} rss_end_kb={rss_end}",
        all.megaraid + all.unrelated,
        all.megaraid,
        all.ok,
        all.einval,
        all.eperm,
        all.enosys,
        all.other,
        all.unrelated,
        all.unrelated_failed,
    );
    i32::from(all.other != 0 || all.unrelated_failed != 0)
}

/// The 12 mbox bytes of the `private-race` packet: how a hostile thread recognises the guard's
/// private copy of it on the calling thread's stack.
pub(crate) const MARKER: [u32; 3] = [0x6d66_6967, 0x7561_7264, 0x2d31_3721];
/// Where the mbox is in the packet (frame + 0x1C), and `sgl_off`/`sge_count`.
pub(crate) const MBOX: usize =
    crate::FRAME + std::mem::offset_of!(mfiguard_sanitizer::abi::mfi::MfiDcmdFrame, mbox);

/// `private-race N`: what the preload cannot promise. A thread calls a clean CTRL_GET_INFO N
/// times (flags DIR_READ only: the guard passes it); a second thread of the same process looks
/// for the guard's private copy of that packet on the calling thread's stack (it is recognised
/// by its mbox bytes), and keeps setting IEEE|SGL64 in it. Every copy the guard decided on was
/// clean; whatever the simulator saw with those flags was changed after the decision, in the
/// tool's own memory. Stdout: `calls=N found=0|1` (the counts are the simulator's record).
pub fn private_race(fd: c_int, host: u16, n: u64) -> i32 {
    let call = RawCall::leak(ctrl_info_with(host, 2048, |b| {
        b.frame_u32(0x1C, MARKER[0])
            .frame_u32(0x20, MARKER[1])
            .frame_u32(0x24, MARKER[2])
    }));
    // The calling thread's stack pointer, and the address of the copy once found.
    let sp = Arc::new(AtomicU64::new(0));
    let found = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mutator = {
        let (sp, found, stop) = (Arc::clone(&sp), Arc::clone(&found), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Relaxed) {
                let mut at = found.load(Relaxed) as usize;
                if at == 0 {
                    let top = sp.load(Relaxed) as usize;
                    if top == 0 {
                        std::hint::spin_loop();
                        continue;
                    }
                    // Below the caller's frame: where the guard's frames were (a call has
                    // already been made, so the copy's bytes are still there).
                    at = find_copy(top.saturating_sub(256 * 1024), top).unwrap_or(0);
                    found.store(at as u64, Relaxed);
                    continue;
                }
                // Only while the slot holds the packet (a call in progress, or its leftovers).
                // SAFETY: `at` is inside the calling thread's stack, which lives until that
                // thread is joined after `stop`; these are the hostile tool's racy reads and
                // writes of its own memory, what the guard cannot prevent.
                unsafe {
                    let p = at as *mut u8;
                    let marker_ok = (0..3).all(|k| {
                        std::ptr::read_volatile(p.add(MBOX + 4 * k).cast::<u32>()) == MARKER[k]
                    });
                    let flags = p.add(FLAGS).cast::<u16>();
                    if marker_ok && std::ptr::read_volatile(flags) == DIR_READ {
                        std::ptr::write_volatile(flags, DIR_READ | IEEE_SGL64);
                        flips += 1;
                    }
                }
            }
            flips
        })
    };
    let caller = {
        let (sp, stop) = (Arc::clone(&sp), Arc::clone(&stop));
        std::thread::spawn(move || {
            let here = 0u8;
            sp.store(std::ptr::addr_of!(here) as u64, Relaxed);
            let (mut ok_calls, mut failed) = (0u64, 0u64);
            for _ in 0..n {
                // The caller's own packet is never touched by the mutator: it is clean.
                // SAFETY: writing the leaked packet's flags back to clean before each call.
                unsafe { std::ptr::write_volatile(call.packet.add(FLAGS).cast::<u16>(), DIR_READ) };
                let o = call.issue(fd);
                if o.ret == 0 {
                    ok_calls += 1;
                } else {
                    failed += 1;
                }
            }
            stop.store(true, Relaxed);
            std::hint::black_box(&here);
            (ok_calls, failed)
        })
    };
    let (ok_calls, failed) = caller.join().unwrap_or((0, n));
    stop.store(true, Relaxed);
    let flips = mutator.join().unwrap_or(0);
    let at = found.load(Relaxed);
    println!(
        "calls={n} ok={ok_calls} failed={failed} found={}",
        u8::from(at != 0)
    );
    eprintln!("mfi_client: private-race: {flips} writes into the private copy");
    i32::from(failed != 0)
}

/// Scans `[lo, hi)` of the calling thread's stack for a packet carrying `MARKER` in its mbox
/// and a clean DCMD's `sgl_off` (0x28) and `sge_count` (1): the guard's private copy (the
/// caller's own packet is on the heap).
pub(crate) fn find_copy(lo: usize, hi: usize) -> Option<usize> {
    let mut a = lo.next_multiple_of(4);
    while a + MBOX + 12 <= hi {
        // SAFETY: `[lo, hi)` is the mapped part of the calling thread's stack just below its
        // live frame (256 KiB of a 2 MiB thread stack); racy reads of another thread's stack are
        // the point of this hostile scenario.
        let hit = unsafe {
            (0..3).all(|k| std::ptr::read_volatile((a + MBOX + 4 * k) as *const u32) == MARKER[k])
                && std::ptr::read_volatile((a + 4) as *const u32) == 0x28
                && std::ptr::read_volatile((a + 8) as *const u32) == 1
        };
        if hit {
            return Some(a);
        }
        a += 4;
    }
    None
}
