//! Signal handlers that issue ioctls while the thread is inside the guard, or waits in the
//! driver.

use super::*;

// ---- signals --------------------------------------------------------------------------------

/// `megasas_iocpacket.frame` (0x14) + `megasas_header.context` (4).
const FRAME_CONTEXT: usize = 0x18;

/// What the handlers use: the descriptor, a pipe and leaked packets, by address.
pub(crate) static H_FD: AtomicI32 = AtomicI32::new(-1);
pub(crate) static H_PIPE: AtomicI32 = AtomicI32::new(-1);
pub(crate) static H_REJECT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
pub(crate) static H_CLEAN: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
pub(crate) static H_REWRITE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
/// Whether the main thread is inside its ioctl right now.
pub(crate) static IN_CALL: AtomicBool = AtomicBool::new(false);

/// The handlers' tallies.
pub(crate) static H_SIGNALS: AtomicU64 = AtomicU64::new(0);
pub(crate) static H_INSIDE: AtomicU64 = AtomicU64::new(0);
pub(crate) static H_REJECT_EINVAL: AtomicU64 = AtomicU64::new(0);
pub(crate) static H_UNRELATED_OK: AtomicU64 = AtomicU64::new(0);
pub(crate) static H_UNEXPECTED: AtomicU64 = AtomicU64::new(0);
/// signal-in-kernel: each nested call's outcome (ret, errno, cmd_status).
pub(crate) static H_CLEAN_OUT: AtomicU64 = AtomicU64::new(u64::MAX);
pub(crate) static H_REWRITE_OUT: AtomicU64 = AtomicU64::new(u64::MAX);
pub(crate) static H_REJECT_OUT: AtomicU64 = AtomicU64::new(u64::MAX);
/// signals: the first handler call that did not end as it must.
pub(crate) static H_FIRST_BAD: AtomicU64 = AtomicU64::new(u64::MAX);

pub(crate) fn handler_call(slot: &AtomicPtr<u8>) -> Outcome {
    RawCall {
        packet: slot.load(Relaxed),
        request: c_ulong::from(ABI.firmware_request()),
    }
    .issue(H_FD.load(Relaxed))
}

pub(crate) fn pack(o: &Outcome) -> u64 {
    (u64::from(o.ret as u32) << 32) | (u64::from(o.errno as u16) << 8) | u64::from(o.cmd_status)
}

pub(crate) fn unpack(v: u64) -> Outcome {
    Outcome {
        ret: (v >> 32) as u32 as c_int,
        errno: ((v >> 8) & 0xFFFF) as c_int,
        cmd_status: (v & 0xFF) as u8,
    }
}

/// SIGALRM during `signals`: a refused MegaRAID call (sgl.bounds: EINVAL, whether or not it
/// interrupted the guard), FIONREAD on a pipe and TCGETS on stderr.
extern "C" fn on_alarm(_: c_int) {
    errno_guard(|| {
        H_SIGNALS.fetch_add(1, Relaxed);
        if IN_CALL.load(Relaxed) {
            H_INSIDE.fetch_add(1, Relaxed);
        }
        let o = handler_call(&H_REJECT);
        if refused(&o, libc::EINVAL) {
            H_REJECT_EINVAL.fetch_add(1, Relaxed);
        } else {
            H_UNEXPECTED.fetch_add(1, Relaxed);
            let _ = H_FIRST_BAD.compare_exchange(u64::MAX, pack(&o), Relaxed, Relaxed);
        }
        if fionread(H_PIPE.load(Relaxed)) && tcgets_answered(libc::STDERR_FILENO) {
            H_UNRELATED_OK.fetch_add(1, Relaxed);
        } else {
            H_UNEXPECTED.fetch_add(1, Relaxed);
        }
    })
}

pub(crate) fn set_handler_calls(fd: c_int, host: u16) {
    H_FD.store(fd, Relaxed);
    H_PIPE.store(pipe_with_bytes(), Relaxed);
    let reject = RawCall::leak(rule_call(host, "sgl.bounds").expect("rule packet"));
    H_REJECT.store(reject.packet, Relaxed);
    let clean = RawCall::leak(ctrl_info_with(host, 2048, |b| b));
    H_CLEAN.store(clean.packet, Relaxed);
    let rewrite = RawCall::leak(ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64)));
    H_REWRITE.store(rewrite.packet, Relaxed);
}

/// CALLS calls in turn: clean (ret 0, status OK), ieee-dcmd (rewritten: ret 0, status OK),
/// ioc.sge-count (EINVAL), while SIGALRM fires every US microseconds (`setitimer`). Nothing in
/// the loop allocates, so a handler that interrupts it outside the guard cannot deadlock on
/// the allocator either.
///
/// `MFI_CLIENT_SIGNALS_LEN`: the data buffer of the first two (2048 bytes by default).
/// `MFI_CLIENT_SIGNALS_DISTINCT=1`: each call stamps its index into the frame's `context`
/// (which the driver overwrites in its own copy), so that no two calls have the same packet.
pub fn signals(fd: c_int, host: u16, calls: u64, us: u64) -> i32 {
    set_handler_calls(fd, host);
    let len = std::env::var("MFI_CLIENT_SIGNALS_LEN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let calls_v = [
        RawCall::leak(ctrl_info_with(host, len, |b| b)),
        RawCall::leak(ctrl_info_with(host, len, |b| add_flags(b, IEEE_SGL64))),
        RawCall::leak(rule_call(host, "ioc.sge-count").expect("rule packet")),
    ];
    install(libc::SIGALRM, on_alarm);
    let every = libc::timeval {
        tv_sec: (us / 1_000_000) as libc::time_t,
        tv_usec: (us % 1_000_000) as libc::suseconds_t,
    };
    let timer = libc::itimerval {
        it_interval: every,
        it_value: every,
    };
    // SAFETY: arming this process's real-time interval timer.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
    let start = Instant::now();
    let (mut ok_n, mut einval, mut unexpected) = (0u64, 0u64, 0u64);
    let mut first_bad: Option<(u64, Outcome)> = None;
    let distinct = std::env::var_os("MFI_CLIENT_SIGNALS_DISTINCT").is_some();
    for i in 0..calls {
        let kind = (i % 3) as usize;
        if distinct {
            calls_v[kind].u32_at(FRAME_CONTEXT).store(i as u32, Relaxed);
        }
        IN_CALL.store(true, Relaxed);
        let o = calls_v[kind].issue(fd);
        IN_CALL.store(false, Relaxed);
        let good = if kind == 2 {
            refused(&o, libc::EINVAL)
        } else {
            ok(&o)
        };
        match (good, kind) {
            (true, 2) => einval += 1,
            (true, _) => ok_n += 1,
            (false, _) => {
                unexpected += 1;
                first_bad.get_or_insert((i, o));
            }
        }
    }
    let off = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    // SAFETY: disarming the timer, then blocking SIGALRM so that a last pending one is not
    // delivered while we print.
    unsafe {
        libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let elapsed = start.elapsed();
    let h_unexpected = H_UNEXPECTED.load(SeqCst);
    println!(
        "calls={calls} ok={ok_n} einval={einval} unexpected={unexpected} signals={} inside={} \
         handler_reject_einval={} handler_unrelated_ok={} handler_unexpected={h_unexpected}",
        H_SIGNALS.load(SeqCst),
        H_INSIDE.load(SeqCst),
        H_REJECT_EINVAL.load(SeqCst),
        H_UNRELATED_OK.load(SeqCst),
    );
    if let Some((i, o)) = first_bad {
        eprintln!("mfi_client: signals: call {i}: {}", describe(&o));
    }
    let bad = H_FIRST_BAD.load(SeqCst);
    if bad != u64::MAX {
        eprintln!(
            "mfi_client: signals: a handler's refused call: {}",
            describe(&unpack(bad))
        );
    }
    eprintln!("mfi_client: signals: {calls} calls in {elapsed:?}");
    i32::from(unexpected != 0 || h_unexpected != 0)
}

/// SIGUSR1 during `signal-in-kernel`: a clean DCMD, an ieee-dcmd, a refused packet and FIONREAD,
/// each outcome kept for the main thread to print.
extern "C" fn on_usr1(_: c_int) {
    errno_guard(|| {
        H_SIGNALS.fetch_add(1, Relaxed);
        if IN_CALL.load(Relaxed) {
            H_INSIDE.fetch_add(1, Relaxed);
        }
        H_CLEAN_OUT.store(pack(&handler_call(&H_CLEAN)), Relaxed);
        H_REWRITE_OUT.store(pack(&handler_call(&H_REWRITE)), Relaxed);
        H_REJECT_OUT.store(pack(&handler_call(&H_REJECT)), Relaxed);
        if fionread(H_PIPE.load(Relaxed)) {
            H_UNRELATED_OK.fetch_add(1, Relaxed);
        }
    })
}

/// One ieee-dcmd whose thread is interrupted while it waits inside the driver (run with
/// MFISIM_DELAY_US): a helper thread waits until the main thread sleeps there, then sends it
/// SIGUSR1. Every call, the interrupted one and the handler's, must end as it would alone.
pub fn signal_in_kernel(fd: c_int, host: u16) -> i32 {
    set_handler_calls(fd, host);
    install(libc::SIGUSR1, on_usr1);
    let main_tid = gettid();
    let pid = getpid();
    let helper = std::thread::spawn(move || {
        let start = Instant::now();
        while !IN_CALL.load(SeqCst) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if !wait_until_sleeping(main_tid, Duration::from_secs(10)) {
            return false;
        }
        // SAFETY: tgkill to a thread of our own process.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, main_tid, libc::SIGUSR1) == 0 }
    });
    let mut call = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
    IN_CALL.store(true, SeqCst);
    let o = issue(fd, call.request, &mut call.packet);
    IN_CALL.store(false, SeqCst);
    let sent = helper.join().unwrap_or(false);
    println!("outer {}", describe(&o));
    println!(
        "signal sent={} handled={} inside={}",
        u8::from(sent),
        H_SIGNALS.load(SeqCst),
        H_INSIDE.load(SeqCst)
    );
    let outs = [
        ("clean", H_CLEAN_OUT.load(SeqCst)),
        ("rewrite", H_REWRITE_OUT.load(SeqCst)),
        ("reject", H_REJECT_OUT.load(SeqCst)),
    ];
    for (name, v) in outs {
        if v == u64::MAX {
            println!("nested {name} not issued");
        } else {
            println!("nested {name} {}", describe(&unpack(v)));
        }
    }
    println!("nested unrelated ok={}", H_UNRELATED_OK.load(SeqCst));
    let good = ok(&o)
        && H_INSIDE.load(SeqCst) == 1
        && ok(&unpack(outs[0].1))
        && ok(&unpack(outs[1].1))
        && refused(&unpack(outs[2].1), libc::EINVAL)
        && H_UNRELATED_OK.load(SeqCst) == 1;
    i32::from(!good)
}
