//! Signals: sets, masks, `signalfd`, sending them to processes and threads.

#![allow(unsafe_code)]

use std::ffi::c_int;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::errno;

/// What a wrapper passes on to the tool (as `timeout(1)` and `env(1)`-like wrappers do).
pub const FORWARDED: [c_int; 8] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGALRM,
];

/// The terminal's job-control stops, which a tracer in the tool's process group also gets.
pub const JOB_CONTROL: [c_int; 3] = [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];

/// `pidfd_send_signal(pidfd, sig)`: a signal to the process the pidfd names, never to another
/// that got its pid since.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: c_int) {
    let _ = pidfd_signal(pidfd, sig);
}

/// [`pidfd_send_signal`], saying whether the kernel sent it.
pub fn pidfd_signal(pidfd: BorrowedFd<'_>, sig: c_int) -> Result<(), c_int> {
    // SAFETY: integers only (no siginfo).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(errno());
    }
    Ok(())
}

/// The signals forwarded to the tool, blocked here and read through a signalfd.
pub fn forwarded_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset takes valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Adds `sig` to `set`.
pub fn add_signal(set: &mut libc::sigset_t, sig: c_int) {
    // SAFETY: an initialised set and a valid signal number.
    unsafe { libc::sigaddset(set, sig) };
}

/// Blocks `set` in this thread; returns the previous mask.
pub fn block(set: &libc::sigset_t) -> libc::sigset_t {
    // SAFETY: valid sets, a live local for the old mask.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, set, &mut old);
        old
    }
}

/// A signalfd for `set` (non-blocking, close-on-exec).
pub fn signalfd(set: &libc::sigset_t) -> Result<OwnedFd, c_int> {
    // SAFETY: a valid set; a new descriptor.
    let fd = unsafe { libc::signalfd(-1, set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: just returned by the kernel, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal from a signalfd.
pub fn read_signal(fd: BorrowedFd<'_>) -> Option<libc::signalfd_siginfo> {
    // SAFETY: all-zero is valid; the kernel writes whole records.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: a live local of `size` bytes.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    (n == size as isize).then_some(info)
}

/// `kill(pid, sig)`.
pub fn kill(pid: libc::pid_t, sig: c_int) {
    // SAFETY: plain integers.
    unsafe { libc::kill(pid, sig) };
}

/// Ends this process the way `sig` ended the tool: the default action re-raised (a shell
/// then sees the same status), else `128 + sig`.
pub fn exit_like_signal(sig: c_int) -> ! {
    // SAFETY: resetting a disposition, unblocking and raising are valid for any signal number;
    // `_exit` ends the process.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
        libc::_exit(128 + sig)
    }
}

/// The set of signals `sigs`.
pub fn signal_set(sigs: &[c_int]) -> libc::sigset_t {
    // SAFETY: all-zero is a valid `sigset_t`, initialised by `sigemptyset`.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a live set.
    unsafe { libc::sigemptyset(&mut set) };
    for &sig in sigs {
        add_signal(&mut set, sig);
    }
    set
}

/// `tgkill(tgid, tid, sig)`: `sig` to one thread of another process.
pub fn tgkill(tgid: libc::pid_t, tid: libc::pid_t, sig: c_int) -> Result<(), c_int> {
    // SAFETY: plain integers.
    if unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// `set` with the terminal's job-control stops added.
pub fn with_job_control(set: &libc::sigset_t) -> libc::sigset_t {
    let mut s = *set;
    for sig in JOB_CONTROL {
        // SAFETY: a valid set and signal number.
        unsafe { libc::sigaddset(&mut s, sig) };
    }
    s
}

/// The calling thread's id.
pub fn gettid() -> libc::pid_t {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// `tgkill(getpid(), tid, sig)`: `sig` to one thread of this process.
pub fn tgkill_self(tid: libc::pid_t, sig: c_int) {
    // SAFETY: plain integers.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) };
}

/// A handler that does nothing: its signal only interrupts the system call it lands in.
extern "C" fn interrupt_only(_: c_int) {}

/// Installs, for `sig`, a handler that does nothing and without `SA_RESTART`: a thread that
/// receives `sig` while it waits interruptibly in a system call returns from it with `EINTR`,
/// and nothing else happens.
pub fn interrupt_on(sig: c_int) -> Result<(), c_int> {
    // SAFETY: all-zero is a valid `sigaction`; the handler is an `extern "C" fn(c_int)` that
    // touches nothing (async-signal-safe); a valid set and signal number.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = interrupt_only as extern "C" fn(c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// For tests: a child that opens `path`, makes the file asynchronous and its own (`F_SETOWN`,
/// `O_ASYNC`), writes the descriptor's number to `ready`, and waits up to `secs` seconds for
/// `SIGIO` (blocked): it exits 0 when it came, 1 when not. Its pid.
#[cfg(test)]
pub fn sigio_waiter(
    path: &std::ffi::CStr,
    ready: c_int,
    secs: libc::time_t,
) -> Result<libc::pid_t, c_int> {
    let set = signal_set(&[libc::SIGIO]);
    // SAFETY: the child makes system calls only, on memory prepared before the fork, and ends
    // in `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno());
    }
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
            libc::fcntl(fd, libc::F_SETOWN, libc::getpid());
            libc::fcntl(
                fd,
                libc::F_SETFL,
                libc::fcntl(fd, libc::F_GETFL) | libc::O_ASYNC,
            );
            libc::write(ready, (&fd as *const c_int).cast(), 4);
            let ts = libc::timespec {
                tv_sec: secs,
                tv_nsec: 0,
            };
            let sig = libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
            libc::_exit(if sig == libc::SIGIO { 0 } else { 1 })
        }
    }
    Ok(pid)
}

/// For tests: `rt_sigqueueinfo(pid, sig, info)` with a `siginfo` of code `code` (the kernel
/// refuses a code of 0 or more, which only it sends, to another process).
#[cfg(test)]
pub fn queue_signal_with_code(pid: libc::pid_t, sig: c_int, code: c_int) -> Result<(), c_int> {
    // SAFETY: all-zero is a valid `siginfo_t`; the kernel reads it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    info.si_signo = sig;
    info.si_code = code;
    // SAFETY: plain integers and a live `siginfo_t`.
    if unsafe {
        libc::syscall(
            libc::SYS_rt_sigqueueinfo,
            pid,
            sig,
            &info as *const libc::siginfo_t,
        )
    } < 0
    {
        return Err(errno());
    }
    Ok(())
}
