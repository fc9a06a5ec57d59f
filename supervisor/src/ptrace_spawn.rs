//! Starting the tool as a tracee: fork, `PTRACE_SEIZE` the child while it waits on a pipe,
//! then let it install the filter (`SECCOMP_RET_TRACE`) and `exec`. Everything is prepared
//! before `fork`; the child makes system calls only (`pthread_sigmask`, `read`, `prctl`,
//! `seccomp`, `write`, `execve`, `_exit`), as in `spawn`.
//!
//! The child is seized before its filter exists, so no guarded call can ever run without a
//! tracer (a `RET_TRACE` without one fails with `ENOSYS`), and `PTRACE_O_EXITKILL` is set from
//! the start: if this process dies, the tool dies.
//!
//! Two pipes: "go" (parent to child: the seize is done; end of file means the parent gave up,
//! and the child exits) and "report" (child to parent, close-on-exec: an 8-byte message
//! `[stage, errno]` if the install or the `exec` failed; end of file means the `exec`
//! succeeded).
#![allow(unsafe_code)]

use std::ffi::c_int;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd};
use std::ptr;

use crate::spawn::{Command, Prepared, SpawnError};
use crate::sys::{self, errno};

/// The report's first word: which stage failed.
const STAGE_FILTER: c_int = 1;
const STAGE_EXEC: c_int = 2;

/// Forks and executes `cmd` under `filter` as a tracee of the calling thread (which must do
/// all later ptrace requests for it), with `child_mask` as its signal mask; its pid.
pub fn spawn_traced(
    cmd: &Command,
    filter: &[libc::sock_filter],
    child_mask: &libc::sigset_t,
) -> Result<libc::pid_t, SpawnError> {
    let Prepared { argv, envp, prog } = Prepared::new(cmd, filter);
    let (go_r, go_w) = sys::pipe().map_err(SpawnError::Setup)?;
    let (rep_r, rep_w) = sys::pipe().map_err(SpawnError::Setup)?;
    // SAFETY: the child runs only `child` (see its contract), which never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SpawnError::Setup(errno()));
    }
    if pid == 0 {
        // SAFETY: we are the child of a fork; every pointer was prepared before it.
        unsafe {
            child(
                go_r.as_raw_fd(),
                go_w.as_raw_fd(),
                rep_r.as_raw_fd(),
                rep_w.as_raw_fd(),
                cmd,
                &argv,
                &envp,
                &prog,
                child_mask,
            )
        }
    }
    drop(go_r);
    drop(rep_w);
    let fail = |e: SpawnError| {
        sys::kill(pid, libc::SIGKILL);
        reap(pid);
        Err(e)
    };
    if let Err(e) = sys::ptrace_seize(pid, sys::PTRACE_OPTIONS) {
        return fail(SpawnError::Setup(e));
    }
    if let Err(e) = sys::write(go_w.as_fd(), &[1]) {
        return fail(SpawnError::Setup(e));
    }
    drop(go_w);
    // Until the exec, the child may stop (a signal from the terminal): resume it, or the report
    // would never come.
    let mut report = [0u8; 2 * size_of::<c_int>()];
    let n = loop {
        if sys::readable_within(rep_r.as_fd(), 20) {
            break sys::read(rep_r.as_fd(), &mut report).unwrap_or(0);
        }
        match sys::wait_nohang(pid) {
            Ok(Some(status)) if libc::WIFSTOPPED(status) => {
                let sig = libc::WSTOPSIG(status);
                let deliver = if status >> 16 == 0 { sig } else { 0 };
                let _ = sys::ptrace_cont(pid, deliver);
            }
            Ok(Some(_)) => return Err(SpawnError::Setup(libc::ECHILD)),
            Ok(None) => {}
            Err(e) => return Err(SpawnError::Setup(e)),
        }
    };
    if n == report.len() {
        let word = |i: usize| {
            let mut b = [0u8; size_of::<c_int>()];
            b.copy_from_slice(&report[i * 4..i * 4 + 4]);
            c_int::from_ne_bytes(b)
        };
        let e = word(1);
        reap(pid);
        return Err(if word(0) == STAGE_FILTER {
            SpawnError::Filter(e)
        } else {
            SpawnError::Exec(e)
        });
    }
    Ok(pid)
}

/// Waits for a failed child's end, resuming whatever stops it reports first.
fn reap(pid: libc::pid_t) {
    loop {
        let mut status = 0;
        // SAFETY: our own child; a live local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        if r < 0 || !libc::WIFSTOPPED(status) {
            return;
        }
        let _ = sys::ptrace_cont(pid, 0);
    }
}

/// The child's whole life after `fork`.
///
/// # Safety
///
/// Called only in the child of `fork`: it must not allocate, take a lock, or unwind. It makes
/// system calls only, on memory prepared before the fork, and ends in `execve` or `_exit`.
#[allow(clippy::too_many_arguments)]
unsafe fn child(
    go_r: c_int,
    go_w: c_int,
    rep_r: c_int,
    rep_w: c_int,
    cmd: &Command,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    prog: &libc::sock_fprog,
    mask: &libc::sigset_t,
) -> ! {
    // SAFETY: system calls on prepared memory (this function's contract).
    unsafe {
        libc::close(go_w);
        libc::close(rep_r);
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, ptr::null_mut());
        let report = |stage: c_int, e: c_int| {
            let msg = [stage, e];
            libc::write(rep_w, msg.as_ptr().cast(), size_of::<[c_int; 2]>());
        };
        // Wait until the parent is our tracer.
        let mut b = 0u8;
        loop {
            let n = libc::read(go_r, (&mut b as *mut u8).cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            libc::_exit(125);
        }
        libc::close(go_r);
        sys::drop_ptrace_capability();
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || sys::install_filter_no_flags(prog) < 0
        {
            report(STAGE_FILTER, errno());
            libc::_exit(125);
        }
        libc::execve(cmd.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        report(STAGE_EXEC, errno());
        libc::_exit(127)
    }
}
