//! ptrace, for the fallback on kernels without seccomp user notification.

#![allow(unsafe_code)]

use std::ffi::c_int;

use super::errno;

/// `PTRACE_EVENT_STOP` (`<linux/ptrace.h>`; not in the `libc` crate): a group-stop or another
/// trap of a `PTRACE_SEIZE`d tracee.
pub const PTRACE_EVENT_STOP: c_int = 128;

/// The options every tracee gets: die with the tracer, report seccomp `RET_TRACE`, follow every
/// thread and child, report `exec`.
pub const PTRACE_OPTIONS: c_int = libc::PTRACE_O_EXITKILL
    | libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC;

fn ptrace(req: libc::c_uint, pid: libc::pid_t, addr: usize, data: usize) -> Result<(), c_int> {
    // SAFETY: every request used through this wrapper takes integers only in `addr` and
    // `data` (SEIZE, CONT, LISTEN, INTERRUPT, DETACH): the kernel dereferences no pointer.
    let ret = unsafe { libc::ptrace(req, pid, addr, data) };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `PTRACE_SEIZE` with `options` (does not stop the tracee).
pub fn ptrace_seize(pid: libc::pid_t, options: c_int) -> Result<(), c_int> {
    ptrace(libc::PTRACE_SEIZE, pid, 0, options as usize)
}

/// `PTRACE_CONT`, delivering `sig` (0: none).
pub fn ptrace_cont(pid: libc::pid_t, sig: c_int) -> Result<(), c_int> {
    ptrace(libc::PTRACE_CONT, pid, 0, sig as usize)
}

/// `PTRACE_LISTEN`: a group-stopped tracee stays stopped, but reports its next change (its
/// `SIGCONT`), as a stopped process would without a tracer.
pub fn ptrace_listen(pid: libc::pid_t) -> Result<(), c_int> {
    ptrace(libc::PTRACE_LISTEN, pid, 0, 0)
}

/// `PTRACE_GETEVENTMSG`: at a seccomp stop, the filter's `SECCOMP_RET_DATA`; at a fork, vfork
/// or clone event, the new task's id; at an exec event, the former thread id.
pub fn ptrace_geteventmsg(pid: libc::pid_t) -> Result<libc::c_ulong, c_int> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: the kernel writes one unsigned long into the live local.
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            pid,
            0usize,
            &mut msg as *mut libc::c_ulong,
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(msg)
    }
}

/// `PTRACE_GETREGS` (the x86_64 layout; a 32-bit tracee's registers are zero-extended).
pub fn ptrace_getregs(pid: libc::pid_t) -> Result<libc::user_regs_struct, c_int> {
    // SAFETY: all-zero is a valid `user_regs_struct` (integers only).
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one `user_regs_struct` into the live local.
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGS,
            pid,
            0usize,
            &mut regs as *mut libc::user_regs_struct,
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(regs)
    }
}

/// `PTRACE_SETREGS`.
pub fn ptrace_setregs(pid: libc::pid_t, regs: &libc::user_regs_struct) -> Result<(), c_int> {
    // SAFETY: the kernel reads one `user_regs_struct` from the live reference.
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGS,
            pid,
            0usize,
            regs as *const libc::user_regs_struct,
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `waitpid(-1, &status, __WALL)`, retried on `EINTR`: the next stop or end of any tracee
/// (threads included).
pub fn wait_any() -> Result<(libc::pid_t, c_int), c_int> {
    loop {
        let mut status = 0;
        // SAFETY: a live local for the status.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if pid >= 0 {
            return Ok((pid, status));
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// `PTRACE_GETSIGINFO`: the `si_code` of the signal a tracee is stopped for.
pub fn ptrace_signal_code(pid: libc::pid_t) -> Result<c_int, c_int> {
    // SAFETY: all-zero is a valid `siginfo_t`.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one `siginfo_t` into the live local.
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGINFO,
            pid,
            0usize,
            &mut info as *mut libc::siginfo_t,
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(info.si_code)
    }
}
