//! The client's hardening scenarios: many threads with a packet mutated in flight,
//! forked and exec'd children, signal handlers that issue ioctls while the thread is inside the
//! guard, and a stdin-driven sequence of calls for the sink tests.
//!
//! Stdout carries counts and outcomes only; pids and timings go to stderr. A scenario exits 0
//! when every call ended the way it must (see each function), 1 otherwise.

use std::ffi::{c_int, c_ulong, c_void, CString};
use std::io::{BufRead, Write};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU16, AtomicU32, AtomicU64};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mfiguard_sanitizer::Errno;

use super::{
    add_flags, ctrl_info_with, issue, last_errno, rule_call, Call, Opts, Outcome, ABI, CMD_STATUS,
    DIR_READ, FLAGS, IEEE_SGL64, STATUS_UNSET,
};

/// `MFI_FRAME_SENSE64`: the third addressing flag the guard clears.
const SENSE64: u16 = mfiguard_sanitizer::abi::mfi::MfiFrameFlags::SENSE64.bits();

// ---- calls usable by address only ------------------------------------------------------------

/// A call whose packet and buffers are leaked: usable by address from a signal handler (nothing
/// to allocate or borrow) or while another thread changes the packet (no Rust reference to it).
#[derive(Clone, Copy)]
struct RawCall {
    packet: *mut u8,
    request: c_ulong,
}

// SAFETY: the packet is leaked (lives for the process) and only ever accessed through raw
// pointers, atomics or the kernel; sharing its address between threads is the point.
unsafe impl Send for RawCall {}

impl RawCall {
    /// Leaks `call`'s packet and buffers (in 8-byte aligned memory, so that a mutator can use
    /// atomics on the packet's fields).
    fn leak(call: Call) -> RawCall {
        for b in call.bufs {
            // The packet holds these buffers' addresses: they must never move or be freed.
            std::mem::forget(b);
        }
        let words = call.packet.len().div_ceil(8);
        let mem: &'static mut [u64] = Box::leak(vec![0u64; words].into_boxed_slice());
        let packet = mem.as_mut_ptr().cast::<u8>();
        // SAFETY: `mem` has at least `call.packet.len()` bytes and does not overlap the Vec.
        unsafe { std::ptr::copy_nonoverlapping(call.packet.as_ptr(), packet, call.packet.len()) };
        RawCall {
            packet,
            request: call.request,
        }
    }

    /// Issues the call; async-signal-safe (no allocation, no lock).
    fn issue(self, fd: c_int) -> Outcome {
        // SAFETY: the packet is a whole leaked megasas_iocpacket whose buffers are leaked too;
        // only the status byte is written here, through a raw pointer.
        unsafe {
            std::ptr::write_volatile(self.packet.add(CMD_STATUS), STATUS_UNSET);
            let ret = libc::ioctl(fd, self.request, self.packet.cast::<c_void>());
            let errno = if ret < 0 { last_errno() } else { 0 };
            Outcome {
                ret,
                errno,
                cmd_status: std::ptr::read_volatile(self.packet.add(CMD_STATUS)),
            }
        }
    }

    /// A field of the packet as an atomic, for the mutator. `off` must be a multiple of 4.
    fn u32_at(self, off: usize) -> &'static AtomicU32 {
        // SAFETY: the packet is leaked and 8-byte aligned, `off` is 4-aligned and inside it;
        // every concurrent access to these bytes is atomic or by the kernel's copy.
        unsafe { &*self.packet.add(off).cast::<AtomicU32>() }
    }

    fn u16_at(self, off: usize) -> &'static AtomicU16 {
        // SAFETY: as in `u32_at`, 2-aligned.
        unsafe { &*self.packet.add(off).cast::<AtomicU16>() }
    }
}

fn ok(o: &Outcome) -> bool {
    o.ret == 0 && o.cmd_status == 0
}

fn refused(o: &Outcome, errno: c_int) -> bool {
    o.ret == -1 && o.errno == errno
}

fn describe(o: &Outcome) -> String {
    format!(
        "ret={} errno={} ({}) cmd_status={:#04x}",
        o.ret,
        o.errno,
        Errno(o.errno).name(),
        o.cmd_status
    )
}

/// A pipe holding five bytes: FIONREAD on its read end answers 5.
fn pipe_with_bytes() -> c_int {
    let mut p = [0; 2];
    // SAFETY: pipe writes two descriptors; we write five bytes from a static buffer.
    unsafe {
        assert_eq!(libc::pipe(p.as_mut_ptr()), 0, "pipe");
        libc::write(p[1], b"hello".as_ptr().cast(), 5);
    }
    p[0]
}

/// FIONREAD on a pipe made by `pipe_with_bytes`; async-signal-safe.
fn fionread(rd: c_int) -> bool {
    let mut n: c_int = -1;
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { libc::ioctl(rd, libc::FIONREAD, &mut n) };
    r == 0 && n == 5
}

/// TCGETS: 0 on a terminal, ENOTTY on anything else; async-signal-safe.
fn tcgets_answered(fd: c_int) -> bool {
    // SAFETY: a zeroed termios is a valid buffer for TCGETS to fill.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: TCGETS writes one termios.
    let r = unsafe { libc::ioctl(fd, libc::TCGETS, &mut t) };
    r == 0 || last_errno() == libc::ENOTTY
}

fn gettid() -> c_int {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as c_int }
}

/// Whether thread `tid` of this process is blocked in an interruptible sleep (`S`): inside the
/// simulator's wait or a FIFO read, for the scenarios that use it.
fn thread_sleeping(tid: c_int) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            after.split_whitespace().next().map(|st| st == "S")
        })
        .unwrap_or(false)
}

/// Waits (at most `limit`) until thread `tid` has been sleeping for two looks in a row.
fn wait_until_sleeping(tid: c_int, limit: Duration) -> bool {
    let start = Instant::now();
    let mut seen = 0;
    while start.elapsed() < limit {
        if thread_sleeping(tid) {
            seen += 1;
            if seen >= 2 {
                return true;
            }
        } else {
            seen = 0;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn install(sig: c_int, handler: extern "C" fn(c_int)) {
    // No SA_RESTART unless MFI_CLIENT_SA_RESTART=1: an interrupted system call in the guard or
    // the simulator must cope with EINTR.
    let restart = std::env::var_os("MFI_CLIENT_SA_RESTART").is_some_and(|v| v == "1");
    // SAFETY: a zeroed sigaction with an empty mask; the handler only does async-signal-safe
    // work (ioctl on leaked packets, atomics).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = if restart { libc::SA_RESTART } else { 0 };
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

fn errno_guard<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: this thread's errno slot.
    let saved = unsafe { *libc::__errno_location() };
    let r = f();
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
    r
}

// ---- stress: many threads, one mutator -----------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Tally {
    clean: u64,
    clean_ok: u64,
    rewrite: u64,
    rewrite_ok: u64,
    reject: u64,
    reject_einval: u64,
    mutated: u64,
    mutated_ok: u64,
    mutated_einval: u64,
    unrelated: u64,
    unrelated_ok: u64,
    unexpected: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.clean += o.clean;
        self.clean_ok += o.clean_ok;
        self.rewrite += o.rewrite;
        self.rewrite_ok += o.rewrite_ok;
        self.reject += o.reject;
        self.reject_einval += o.reject_einval;
        self.mutated += o.mutated;
        self.mutated_ok += o.mutated_ok;
        self.mutated_einval += o.mutated_einval;
        self.unrelated += o.unrelated;
        self.unrelated_ok += o.unrelated_ok;
        self.unexpected += o.unexpected;
    }
}

/// THREADS threads for MS milliseconds, each cycling six calls: a clean CTRL_GET_INFO (must
/// pass: ret 0, status OK), an ieee-dcmd (rewritten: ret 0, status OK), a refused packet
/// (sgl.bounds, ioc.sge-count, sense.bounds in turn: EINVAL), a CTRL_GET_INFO that the mutator
/// thread keeps changing while it is in flight (either ret 0 with status OK, or EINVAL: never
/// anything else), FIONREAD on a pipe (5) and TCGETS on the device (ENOTTY).
pub fn stress(fd: c_int, host: u16, threads: usize, ms: u64) -> i32 {
    let rejects = ["sgl.bounds", "ioc.sge-count", "sense.bounds"];
    let victims: Vec<RawCall> = (0..threads)
        .map(|_| RawCall::leak(ctrl_info_with(host, 2048, |b| b)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mutator = {
        let stop = Arc::clone(&stop);
        let victims = victims.clone();
        std::thread::spawn(move || {
            // xorshift: each field independently good or bad, every step.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            let mut steps = 0u64;
            while !stop.load(Relaxed) {
                for v in &victims {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let flags = match x & 3 {
                        0 => DIR_READ,
                        1 => DIR_READ | IEEE_SGL64,
                        2 => DIR_READ | SENSE64,
                        _ => DIR_READ | IEEE_SGL64 | SENSE64,
                    };
                    v.u16_at(FLAGS).store(flags, Relaxed);
                    let sgl_off = if x & 4 == 0 { 0x28 } else { 0x4_0000 };
                    v.u32_at(0x04).store(sgl_off, Relaxed);
                    let sge_count = if x & 8 == 0 { 1 } else { 17 };
                    v.u32_at(0x08).store(sge_count, Relaxed);
                }
                steps += 1;
            }
            steps
        })
    };
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = victims
        .iter()
        .map(|&victim| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut clean = ctrl_info_with(host, 2048, |b| b);
                let mut rewrite = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
                let mut refuse: Vec<Call> = rejects
                    .iter()
                    .map(|id| rule_call(host, id).expect("rule packet"))
                    .collect();
                let pipe = pipe_with_bytes();
                let mut t = Tally::default();
                let mut shown = 0;
                let mut unexpected = |t: &mut Tally, what: &str, o: &Outcome| {
                    t.unexpected += 1;
                    if shown < 3 {
                        shown += 1;
                        eprintln!("mfi_client: stress: unexpected {what}: {}", describe(o));
                    }
                };
                barrier.wait();
                let deadline = Instant::now() + Duration::from_millis(ms);
                let mut i = 0u64;
                while Instant::now() < deadline {
                    match i % 6 {
                        0 => {
                            t.clean += 1;
                            let o = issue(fd, clean.request, &mut clean.packet);
                            if ok(&o) {
                                t.clean_ok += 1;
                            } else {
                                unexpected(&mut t, "clean", &o);
                            }
                        }
                        1 => {
                            t.rewrite += 1;
                            let o = issue(fd, rewrite.request, &mut rewrite.packet);
                            if ok(&o) {
                                t.rewrite_ok += 1;
                            } else {
                                unexpected(&mut t, "rewrite", &o);
                            }
                        }
                        2 => {
                            t.reject += 1;
                            let c = &mut refuse[(i / 6 % 3) as usize];
                            let o = issue(fd, c.request, &mut c.packet);
                            if refused(&o, libc::EINVAL) {
                                t.reject_einval += 1;
                            } else {
                                unexpected(&mut t, "reject", &o);
                            }
                        }
                        3 => {
                            t.mutated += 1;
                            let o = victim.issue(fd);
                            if ok(&o) {
                                t.mutated_ok += 1;
                            } else if refused(&o, libc::EINVAL) {
                                t.mutated_einval += 1;
                            } else {
                                unexpected(&mut t, "mutated", &o);
                            }
                        }
                        4 => {
                            t.unrelated += 1;
                            if fionread(pipe) {
                                t.unrelated_ok += 1;
                            } else {
                                t.unexpected += 1;
                            }
                        }
                        _ => {
                            t.unrelated += 1;
                            // SAFETY: a zeroed termios is a valid buffer for TCGETS to fill.
                            let mut tio: libc::termios = unsafe { std::mem::zeroed() };
                            // SAFETY: TCGETS writes one termios.
                            let r = unsafe { libc::ioctl(fd, libc::TCGETS, &mut tio) };
                            if r == -1 && last_errno() == libc::ENOTTY {
                                t.unrelated_ok += 1;
                            } else {
                                t.unexpected += 1;
                            }
                        }
                    }
                    i += 1;
                }
                t
            })
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        match w.join() {
            Ok(t) => total.add(&t),
            Err(_) => total.unexpected += 1,
        }
    }
    stop.store(true, Relaxed);
    let steps = mutator.join().unwrap_or(0);
    let t = total;
    let megaraid = t.clean + t.rewrite + t.reject + t.mutated;
    println!(
        "threads={threads} calls={} megaraid={megaraid} clean={} clean_ok={} rewrite={} \
         rewrite_ok={} reject={} reject_einval={} mutated={} mutated_ok={} mutated_einval={} \
         unrelated={} unrelated_ok={} unexpected={}",
        megaraid + t.unrelated,
        t.clean,
        t.clean_ok,
        t.rewrite,
        t.rewrite_ok,
        t.reject,
        t.reject_einval,
        t.mutated,
        t.mutated_ok,
        t.mutated_einval,
        t.unrelated,
        t.unrelated_ok,
        t.unexpected
    );
    eprintln!("mfi_client: stress: {steps} mutation rounds over {threads} packets in {ms} ms");
    i32::from(t.unexpected != 0)
}

#[path = "hardening/dl.rs"]
mod dl;
#[path = "hardening/processes.rs"]
mod processes;
#[path = "hardening/signals.rs"]
mod signals;
#[path = "hardening/soak.rs"]
mod soak;

pub use dl::*;
pub use processes::*;
pub use signals::*;
pub use soak::*;
