//! The client's hardening scenarios (issue 9): many threads with a packet mutated in flight,
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

use super::{
    add_flags, ctrl_info_with, errno_name, issue, last_errno, rule_call, Call, Opts, Outcome, ABI,
    CMD_STATUS, DIR_READ, FLAGS, IEEE_SGL64, STATUS_UNSET,
};

/// `MFI_FRAME_SENSE64`: the third addressing flag the guard clears.
const SENSE64: u16 = 0x0004;

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
        errno_name(o.errno),
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
    // SAFETY: a zeroed sigaction with an empty mask; the handler only does async-signal-safe
    // work (ioctl on leaked packets, atomics). No SA_RESTART unless MFI_CLIENT_SA_RESTART=1:
    // an interrupted system call in the guard or the simulator must cope with EINTR.
    let restart = std::env::var_os("MFI_CLIENT_SA_RESTART").is_some_and(|v| v == "1");
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

// ---- processes ----------------------------------------------------------------------------------

fn fork() -> libc::pid_t {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fork; the child only issues ioctls, allocates (single-threaded parent) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    pid
}

fn exit_now(code: c_int) -> ! {
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the child without running the parent's atexit handlers twice.
    unsafe { libc::_exit(code) }
}

/// `waitpid` and the status as text: `exit=N` or `signal=N`.
fn wait_for(pid: libc::pid_t) -> String {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r != pid {
        return "lost".into();
    }
    if libc::WIFEXITED(status) {
        format!("exit={}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal={}", libc::WTERMSIG(status))
    } else {
        format!("status={status:#x}")
    }
}

fn getpid() -> libc::pid_t {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// One ieee-dcmd in the parent (which reads the configuration), then CHILDREN forked children
/// running at once, each issuing CALLS calls on the inherited descriptor: ieee-dcmd (ret 0,
/// status OK) and sgl.bounds (EINVAL) in turn; a child exits 0 when all ended so. Then one more
/// ieee-dcmd in the parent.
pub fn fork_children(fd: c_int, host: u16, children: usize, calls: u64) -> i32 {
    let mut first = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
    let mut parent_ok = u32::from(ok(&issue(fd, first.request, &mut first.packet)));
    let mut pids = Vec::new();
    for _ in 0..children {
        let pid = fork();
        if pid == 0 {
            let mut rewrite = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
            let mut reject = rule_call(host, "sgl.bounds").expect("rule packet");
            let mut bad = 0;
            for i in 0..calls {
                let good = if i % 2 == 0 {
                    ok(&issue(fd, rewrite.request, &mut rewrite.packet))
                } else {
                    refused(&issue(fd, reject.request, &mut reject.packet), libc::EINVAL)
                };
                bad += u32::from(!good);
            }
            exit_now(i32::from(bad != 0));
        }
        pids.push(pid);
    }
    let statuses: Vec<String> = pids.iter().map(|&p| wait_for(p)).collect();
    let children_ok = statuses.iter().filter(|s| *s == "exit=0").count();
    parent_ok += u32::from(ok(&issue(fd, first.request, &mut first.packet)));
    println!(
        "children={children} calls_each={calls} children_ok={children_ok} parent_calls=2 \
         parent_ok={parent_ok}"
    );
    eprintln!(
        "mfi_client: fork: parent={} children={}",
        getpid(),
        pids.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    i32::from(children_ok != children || parent_ok != 2)
}

/// The configuration a process uses: ieee-dcmd in the parent (the configuration is read),
/// `setenv(KEY, VALUE)`, then a forked child's ieee-dcmd (it keeps what its parent read) and
/// an exec'd child's (`/proc/self/exe ... ieee-dcmd`: a new program reads it afresh). Prints
/// what each saw: on a legacy driver cmd_status OK means the flags were cleared.
pub fn config_inherit(fd: c_int, opts: &Opts, key: &str, value: &str) -> i32 {
    let host = opts.host;
    let mut call = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
    let o = issue(fd, call.request, &mut call.packet);
    println!("parent {}", describe(&o));
    std::env::set_var(key, value);
    let forked = fork();
    if forked == 0 {
        let o = issue(fd, call.request, &mut call.packet);
        println!("fork {}", describe(&o));
        exit_now(o.ret.abs());
    }
    let forked_status = wait_for(forked);
    let exe = std::env::current_exe().expect("current_exe");
    let device = opts
        .device
        .clone()
        .unwrap_or_else(|| super::DEFAULT_DEVICE.to_owned());
    let argv: Vec<CString> = [
        exe.to_str().expect("exe path"),
        "--device",
        &device,
        "--host",
        &host.to_string(),
        "ieee-dcmd",
    ]
    .iter()
    .map(|s| CString::new(*s).expect("arg"))
    .collect();
    let exec = fork();
    if exec == 0 {
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: a NUL-terminated argv of valid C strings; execv only returns on failure.
        unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
        eprintln!(
            "mfi_client: execv failed: {}",
            std::io::Error::last_os_error()
        );
        exit_now(127);
    }
    let exec_status = wait_for(exec);
    println!("fork {forked_status}");
    println!("exec {exec_status}");
    eprintln!(
        "mfi_client: config-inherit: parent={} fork={forked} exec={exec}",
        getpid()
    );
    i32::from(o.ret != 0 || forked_status != "exit=0" || exec_status != "exit=0")
}

/// A thread's first guarded call blocks while the guard reads its configuration (the test
/// makes `MFIGUARD_CONFIG` a FIFO and writes it later); meanwhile the main thread forks. The
/// child issues ieee-dcmd under `alarm(10)`: a child whose copy of the half-read configuration
/// can never complete is killed by SIGALRM instead of hanging the test.
pub fn fork_during_load(fd: c_int, host: u16) -> i32 {
    let tid = Arc::new(AtomicI32::new(0));
    let loader = {
        let tid = Arc::clone(&tid);
        std::thread::spawn(move || {
            let mut call = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
            tid.store(gettid(), SeqCst);
            issue(fd, call.request, &mut call.packet)
        })
    };
    let start = Instant::now();
    while tid.load(SeqCst) == 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let blocked = wait_until_sleeping(tid.load(SeqCst), Duration::from_secs(10));
    let child = fork();
    if child == 0 {
        // SAFETY: alarm only arms a timer; SIGALRM's default action ends the child.
        unsafe { libc::alarm(10) };
        let mut call = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
        let o = issue(fd, call.request, &mut call.packet);
        exit_now(i32::from(!ok(&o)));
    }
    let child_status = wait_for(child);
    let o = loader.join().expect("loader thread");
    println!(
        "loader_blocked={} thread {}",
        u8::from(blocked),
        describe(&o)
    );
    println!("child {child_status}");
    i32::from(!ok(&o) || child_status != "exit=0")
}

// ---- signals --------------------------------------------------------------------------------

/// What the handlers use: the descriptor, a pipe and leaked packets, by address.
static H_FD: AtomicI32 = AtomicI32::new(-1);
static H_PIPE: AtomicI32 = AtomicI32::new(-1);
static H_REJECT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static H_CLEAN: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static H_REWRITE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
/// Whether the main thread is inside its ioctl right now.
static IN_CALL: AtomicBool = AtomicBool::new(false);

/// The handlers' tallies.
static H_SIGNALS: AtomicU64 = AtomicU64::new(0);
static H_INSIDE: AtomicU64 = AtomicU64::new(0);
static H_REJECT_EINVAL: AtomicU64 = AtomicU64::new(0);
static H_UNRELATED_OK: AtomicU64 = AtomicU64::new(0);
static H_UNEXPECTED: AtomicU64 = AtomicU64::new(0);
/// signal-in-kernel: each nested call's outcome (ret, errno, cmd_status).
static H_CLEAN_OUT: AtomicU64 = AtomicU64::new(u64::MAX);
static H_REWRITE_OUT: AtomicU64 = AtomicU64::new(u64::MAX);
static H_REJECT_OUT: AtomicU64 = AtomicU64::new(u64::MAX);
/// signals: the first handler call that did not end as it must.
static H_FIRST_BAD: AtomicU64 = AtomicU64::new(u64::MAX);

fn handler_call(slot: &AtomicPtr<u8>) -> Outcome {
    RawCall {
        packet: slot.load(Relaxed),
        request: c_ulong::from(ABI.firmware_request()),
    }
    .issue(H_FD.load(Relaxed))
}

fn pack(o: &Outcome) -> u64 {
    (u64::from(o.ret as u32) << 32) | (u64::from(o.errno as u16) << 8) | u64::from(o.cmd_status)
}

fn unpack(v: u64) -> Outcome {
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

fn set_handler_calls(fd: c_int, host: u16) {
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
pub fn signals(fd: c_int, host: u16, calls: u64, us: u64) -> i32 {
    set_handler_calls(fd, host);
    let calls_v = [
        RawCall::leak(ctrl_info_with(host, 2048, |b| b)),
        RawCall::leak(ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64))),
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
    for i in 0..calls {
        let kind = (i % 3) as usize;
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

// ---- stdin-driven -----------------------------------------------------------------------------

/// Reads rule ids (or `pass`) from stdin and issues each as it is read, printing one line per
/// call (`RULE ret=.. errno=.. (NAME) cmd_status=..`), flushed, so that a test can act between
/// calls (rotate the log, make the sink fail or recover).
pub fn lines(fd: c_int, host: u16) -> i32 {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        match rule_call(host, id) {
            Ok(mut c) => {
                let o = issue(fd, c.request, &mut c.packet);
                let _ = writeln!(out, "{id} {}", describe(&o));
            }
            Err(e) => {
                let _ = writeln!(out, "{id} error={e}");
            }
        }
        let _ = out.flush();
    }
    0
}

// ---- issue 17: the soak, and the preload's in-process window ---------------------------------

/// `soak THREADS SECONDS [PACE_US]` and `private-race N`: the issue-17 scenarios, which parse
/// their own arguments.
pub fn issue17(fd: c_int, opts: &Opts) -> i32 {
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
fn rss_kb() -> u64 {
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
fn writing_dcmd(host: u16) -> Call {
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
        report: super::Report::Nothing,
        label: None,
    }
}

#[derive(Default)]
struct SoakTally {
    megaraid: u64,
    ok: u64,
    einval: u64,
    eperm: u64,
    enosys: u64,
    other: u64,
    unrelated: u64,
    unrelated_failed: u64,
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
const MARKER: [u32; 3] = [0x6d66_6967, 0x7561_7264, 0x2d31_3721];
/// Where the mbox is in the packet (frame + 0x1C), and `sgl_off`/`sge_count`.
const MBOX: usize = 0x14 + 0x1C;

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
fn find_copy(lo: usize, hi: usize) -> Option<usize> {
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

// ---- issue 17: ioctl found by name ------------------------------------------------------------

/// The libc version of `ioctl` a versioned lookup names on this architecture.
#[cfg(target_pointer_width = "64")]
const IOCTL_VERSION: &std::ffi::CStr = c"GLIBC_2.2.5";
#[cfg(target_pointer_width = "32")]
const IOCTL_VERSION: &std::ffi::CStr = c"GLIBC_2.0";

/// The file name (last component) of the object holding `p`, as `dladdr` tells it.
fn object_of(p: *mut c_void) -> String {
    if p.is_null() {
        return "null".into();
    }
    // SAFETY: dladdr only reads `p` and fills `info`.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::dladdr(p, &mut info) } == 0 || info.dli_fname.is_null() {
        return "unknown".into();
    }
    // SAFETY: dladdr's file name is a NUL-terminated string owned by the loader.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy();
    let base = name.rsplit('/').next().unwrap_or_default();
    if base.is_empty() || base == "mfi_client" {
        "main".into()
    } else {
        base.into()
    }
}

/// `dl-ioctl HOW`: finds `ioctl` by name, as Python's ctypes and hand-written loaders do, and
/// issues ieee-dcmd through the pointer found. HOW: `libc` (`dlsym(dlopen("libc.so.6"),
/// "ioctl")`), `libc-vsym` (`dlvsym` on that handle with the libc version), `next-vsym`
/// (`dlvsym(RTLD_NEXT, "ioctl", version)`), `default` (`dlsym(RTLD_DEFAULT, "ioctl")`).
/// `dl-lookups`: where this program's own `dlsym(RTLD_NEXT, NAME)` lands for a few names,
/// which no guard may change. Stdout: the outcome, or one `NAME=object` line per lookup.
pub fn dl_scenario(fd: c_int, opts: &Opts) -> i32 {
    if opts.scenario == "dl-limit" {
        return dl_limit(fd, opts);
    }
    if opts.scenario == "dl-lookups" {
        for name in [c"malloc", c"getpid", c"dlsym", c"dlvsym", c"ioctl"] {
            // SAFETY: RTLD_NEXT and a NUL-terminated name.
            let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
            println!("next {}={}", name.to_string_lossy(), object_of(p));
        }
        // A version nobody defines is still not found.
        // SAFETY: as above, with a NUL-terminated version.
        let none =
            unsafe { libc::dlvsym(libc::RTLD_NEXT, c"ioctl".as_ptr(), c"NOPE_1.0".as_ptr()) };
        println!("next ioctl@NOPE_1.0={}", object_of(none));
        // SAFETY: dlopen of a NUL-terminated name; the handle is never closed (kept loaded).
        let m = unsafe { libc::dlopen(c"libm.so.6".as_ptr(), libc::RTLD_NOW) };
        // SAFETY: a handle from dlopen (or null, which dlsym reports as an error).
        let cos = unsafe { libc::dlsym(m, c"cos".as_ptr()) };
        println!("libm cos={}", object_of(cos));
        return 0;
    }
    let how = opts.args.first().map(String::as_str).unwrap_or("");
    // SAFETY: dlopen/dlsym/dlvsym with NUL-terminated names; the handle stays open.
    let f = unsafe {
        let libc_handle = || libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW);
        match how {
            "libc" => libc::dlsym(libc_handle(), c"ioctl".as_ptr()),
            "libc-vsym" => libc::dlvsym(libc_handle(), c"ioctl".as_ptr(), IOCTL_VERSION.as_ptr()),
            "next-vsym" => libc::dlvsym(libc::RTLD_NEXT, c"ioctl".as_ptr(), IOCTL_VERSION.as_ptr()),
            "default" => libc::dlsym(libc::RTLD_DEFAULT, c"ioctl".as_ptr()),
            _ => {
                eprintln!("mfi_client: dl-ioctl needs libc, libc-vsym, next-vsym or default");
                return 2;
            }
        }
    };
    println!("found={}", object_of(f));
    if f.is_null() {
        return 1;
    }
    type Ioctl = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;
    // SAFETY: a definition of `ioctl`, whose C type this is.
    let f = unsafe { std::mem::transmute::<*mut c_void, Ioctl>(f) };
    let mut call = ctrl_info_with(opts.host, 2048, |b| add_flags(b, IEEE_SGL64));
    call.packet[CMD_STATUS] = STATUS_UNSET;
    // SAFETY: a whole packet whose buffer lives across the call.
    let ret = unsafe { f(fd, call.request, call.packet.as_mut_ptr().cast::<c_void>()) };
    let errno = if ret < 0 { super::last_errno() } else { 0 };
    println!(
        "ret={ret} errno={errno} ({}) cmd_status={:#04x}",
        errno_name(errno),
        call.packet[CMD_STATUS]
    );
    i32::from(ret != 0)
}

/// `dl-limit HOW LIB`: ieee-dcmd issued by a function of another library, `LIB`, which calls
/// `ioctl` itself: `mfiguard_test_ioctl(fd, request, packet)` (tests/hardening_dl_limits.rs
/// builds it). HOW: `plain` (`dlopen`), `deepbind` (`dlopen` with `RTLD_DEEPBIND`: the library
/// binds to its own libc's `ioctl` first), `dlmopen` (a new link-map namespace, with its own
/// libc and no preload). Shows what the preload cannot reach. Stdout: the outcome.
pub fn dl_limit(fd: c_int, opts: &Opts) -> i32 {
    let (Some(how), Some(lib)) = (opts.args.first(), opts.args.get(1)) else {
        eprintln!("mfi_client: dl-limit needs plain|deepbind|dlmopen LIB");
        return 2;
    };
    let Ok(lib) = CString::new(lib.as_str()) else {
        return 2;
    };
    // SAFETY: dlopen/dlmopen of a NUL-terminated path; the handle stays open.
    let handle = unsafe {
        match how.as_str() {
            "plain" => libc::dlopen(lib.as_ptr(), libc::RTLD_NOW),
            "deepbind" => libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_DEEPBIND),
            "dlmopen" => libc::dlmopen(libc::LM_ID_NEWLM, lib.as_ptr(), libc::RTLD_NOW),
            _ => {
                eprintln!("mfi_client: dl-limit: unknown way {how}");
                return 2;
            }
        }
    };
    if handle.is_null() {
        eprintln!(
            "mfi_client: dl-limit: cannot load {}",
            lib.to_string_lossy()
        );
        return 3;
    }
    // SAFETY: a handle and a NUL-terminated name.
    let f = unsafe { libc::dlsym(handle, c"mfiguard_test_ioctl".as_ptr()) };
    if f.is_null() {
        eprintln!("mfi_client: dl-limit: no mfiguard_test_ioctl");
        return 3;
    }
    type Helper = unsafe extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int;
    // SAFETY: the helper's C type.
    let f = unsafe { std::mem::transmute::<*mut c_void, Helper>(f) };
    let mut call = ctrl_info_with(opts.host, 2048, |b| add_flags(b, IEEE_SGL64));
    call.packet[CMD_STATUS] = STATUS_UNSET;
    // SAFETY: a whole packet whose buffer lives across the call; the helper passes it to ioctl.
    let ret = unsafe { f(fd, call.request, call.packet.as_mut_ptr().cast::<c_void>()) };
    let errno = if ret < 0 { super::last_errno() } else { 0 };
    println!(
        "ret={ret} errno={errno} ({}) cmd_status={:#04x}",
        errno_name(errno),
        call.packet[CMD_STATUS]
    );
    i32::from(ret != 0)
}
