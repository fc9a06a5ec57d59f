//! The system calls of the supervisor: seccomp, its notification ioctls, pidfds, the tool's
//! memory. Each function is a thin, typed wrapper; the rest of the crate is safe code.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub use mfiguard_core::sys::{errno, euid, fstat, pipe};

mod ptrace;
mod signal;
pub use ptrace::*;
pub use signal::*;

fn check(ret: libc::c_long) -> Result<libc::c_long, c_int> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// `seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &action)`: whether the kernel knows `action`.
pub fn action_available(action: u32) -> Result<(), c_int> {
    // SAFETY: the kernel reads one u32 from a live local.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    check(ret).map(drop)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`; the listener's descriptor when `flags`
/// asks for one, else 0. Async-signal-safe: one system call, no allocation.
///
/// # Safety
///
/// `prog` must point to a valid `sock_fprog` whose filter lives for the call.
pub unsafe fn install_filter(prog: *const libc::sock_fprog, flags: libc::c_ulong) -> c_int {
    // SAFETY: the caller guarantees `prog`; the kernel copies the program.
    unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            prog,
        ) as c_int
    }
}

/// [`install_filter`] without flags, and where the `seccomp` system call is missing (before
/// Linux 3.17: RHEL 7's 3.10 unless backported) `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)`,
/// which installs the same filter since 3.5. 0 or -1 (errno set). Async-signal-safe.
///
/// # Safety
///
/// As [`install_filter`].
pub unsafe fn install_filter_no_flags(prog: *const libc::sock_fprog) -> c_int {
    // SAFETY: the caller's contract.
    let ret = unsafe { install_filter(prog, 0) };
    if ret >= 0 || errno() != libc::ENOSYS {
        return ret;
    }
    // SAFETY: as above; prctl copies the program.
    unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            prog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    }
}

/// `SECCOMP_IOCTL_NOTIF_RECV`: blocks until a notification arrives.
pub fn notif_recv(listener: BorrowedFd<'_>) -> Result<libc::seccomp_notif, c_int> {
    // SAFETY: all-zero is a valid `seccomp_notif` (integers only), and the kernel requires it.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: the kernel writes one `seccomp_notif` into the live local.
        let ret = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut n as *mut libc::seccomp_notif,
            )
        };
        if ret == 0 {
            return Ok(n);
        }
        match errno() {
            libc::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// `SECCOMP_IOCTL_NOTIF_SEND`: answers notification `id` with `val` or `-error`.
pub fn notif_send(listener: BorrowedFd<'_>, id: u64, val: i64, error: c_int) -> Result<(), c_int> {
    let resp = libc::seccomp_notif_resp {
        id,
        val,
        error: -error,
        flags: 0,
    };
    // SAFETY: the kernel reads one `seccomp_notif_resp` from the live local.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &resp as *const libc::seccomp_notif_resp,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// `kcmp(getpid(), pid, KCMP_FILE, ours, theirs) == 0`: whether descriptor `theirs` of process
/// `pid` is the very open file description `ours` is (Linux 3.5, `CONFIG_KCMP`; false on any
/// error, and the caller then duplicates the descriptor again).
pub fn same_file(ours: BorrowedFd<'_>, pid: libc::pid_t, theirs: c_int) -> bool {
    const KCMP_FILE: c_int = 0;
    // SAFETY: integers only; the kernel compares two entries of two descriptor tables.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            libc::getpid(),
            pid,
            KCMP_FILE,
            ours.as_raw_fd() as libc::c_ulong,
            theirs as libc::c_ulong,
        )
    };
    ret == 0
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6).
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: libc::c_ulong = 1;

/// `SECCOMP_IOCTL_NOTIF_SET_FLAGS` with `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6): the
/// kernel then hands the CPU straight from the waiting tool to the supervisor and back (a
/// synchronous wake-up), instead of waking the other on any CPU. `EINVAL` before 6.6.
pub fn notif_sync_wake_up(listener: BorrowedFd<'_>) -> Result<(), c_int> {
    // SAFETY: the flags travel by value; the kernel reads nothing else.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: whether notification `id` is still pending (its thread
/// alive and still waiting in that call).
pub fn notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: the kernel reads one u64 from the live local.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &id as *const u64,
        )
    };
    ret == 0
}

/// `pidfd_open(pid, flags)`.
pub fn pidfd_open(pid: libc::pid_t, flags: libc::c_uint) -> Result<OwnedFd, c_int> {
    // SAFETY: plain integers.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) })?;
    // SAFETY: a new descriptor the kernel just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_getfd(pidfd, fd, 0)`: a duplicate of another process's descriptor `fd` (a number in
/// *its* table), as ours.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: c_int) -> Result<OwnedFd, c_int> {
    // SAFETY: plain integers.
    let new = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })?;
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(new as RawFd) })
}

/// Reads `out.len()` bytes at `addr` in process `pid` (`process_vm_readv`); a short read is
/// `EFAULT`.
pub fn read_process(pid: libc::pid_t, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
    if out.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast::<c_void>(),
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut c_void,
        iov_len: out.len(),
    };
    // SAFETY: `local` describes memory we own for the call; `remote` is only interpreted by
    // the kernel in the other process's address space.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    match n {
        n if n < 0 => Err(errno()),
        n if n as usize != out.len() => Err(libc::EFAULT),
        _ => Ok(()),
    }
}

/// Writes `data` at `addr` in process `pid` (`process_vm_writev`); a short write is `EFAULT`.
pub fn write_process(pid: libc::pid_t, addr: u64, data: &[u8]) -> Result<(), c_int> {
    if data.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut c_void,
        iov_len: data.len(),
    };
    // SAFETY: the kernel only reads `local` (memory we own) and writes the other process.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    match n {
        n if n < 0 => Err(errno()),
        n if n as usize != data.len() => Err(libc::EFAULT),
        _ => Ok(()),
    }
}

/// `ioctl(fd, request, arg)` through libc (so that a simulator preloaded into this process
/// answers it, as the driver would); `(ret, errno)`.
///
/// # Safety
///
/// `arg` must be what `request` expects on `fd`: memory this process owns, valid for the
/// reads and writes the driver makes, and nothing else may use it during the call.
pub unsafe fn ioctl(fd: BorrowedFd<'_>, request: u32, arg: *mut c_void) -> (c_int, c_int) {
    // SAFETY: the caller's contract.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::c_ulong::from(request), arg) };
    (ret, if ret < 0 { errno() } else { 0 })
}

/// Fixes glibc's mmap threshold at its default (128 KiB), so that every large private buffer
/// is mapped and unmapped on its own: glibc otherwise raises the threshold after the first such
/// buffer is freed, and later ones come from the heap, which keeps freed memory (a supervisor's
/// peak would grow with the calls it served, not with what it holds).
pub fn map_large_buffers() {
    #[cfg(target_env = "gnu")]
    // SAFETY: plain integers; glibc's documented tunable.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// `CAP_SYS_PTRACE`.
const CAP_SYS_PTRACE: c_int = 19;

/// Takes `CAP_SYS_PTRACE` out of this process's bounding, ambient and inheritable sets, so
/// that the program it `exec`s never has it, even as root (root's new permitted set is the
/// bounding set together with the inheritable one): without it, the non-dumpable supervisor's
/// memory (`/proc/PID/mem`, `process_vm_*`), its descriptors and its tracing are out of reach
/// (`ptrace_may_access` wants `CAP_SYS_PTRACE` for a non-dumpable process). A RAID tool never
/// needs it (it needs `CAP_SYS_ADMIN` to open the node, `CAP_MKNOD` to create it). Without
/// `CAP_SETPCAP` (not root) the bounding drop fails, and there is nothing to drop.
///
/// # Safety
///
/// Async-signal-safe (`prctl`s, `capget`, `capset` on the stack): for the child of a fork,
/// before `execve`.
pub unsafe fn drop_ptrace_capability() {
    // SAFETY: plain integers.
    unsafe {
        libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0);
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_LOWER,
            CAP_SYS_PTRACE,
            0,
            0,
        );
    }
    // `<linux/capability.h>`: `_LINUX_CAPABILITY_VERSION_3`, two 32-bit words per set.
    let mut header: [u32; 2] = [0x2008_0522, 0];
    // Per word: effective, permitted, inheritable.
    let mut data = [[0u32; 3]; 2];
    // SAFETY: a live header and two data words, as version 3 wants.
    let got = unsafe { libc::syscall(libc::SYS_capget, header.as_mut_ptr(), data.as_mut_ptr()) };
    if got == 0 && data[0][2] & (1 << CAP_SYS_PTRACE) != 0 {
        data[0][2] &= !(1 << CAP_SYS_PTRACE);
        // SAFETY: as above; lowering the inheritable set needs no privilege.
        unsafe { libc::syscall(libc::SYS_capset, header.as_mut_ptr(), data.as_ptr()) };
    }
}

/// `prctl(PR_SET_DUMPABLE, 0)`: processes of our uid without `CAP_SYS_PTRACE` (the tool) can
/// neither ptrace us nor take our listener with `pidfd_getfd`.
pub fn set_not_dumpable() {
    // SAFETY: plain integers.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// Waits for any of `fds` to become readable (`poll`, retried on `EINTR`); the `revents`.
pub fn poll(fds: &[BorrowedFd<'_>]) -> Result<Vec<libc::c_short>, c_int> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: a live array of `pfds.len()` entries.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if n >= 0 {
            return Ok(pfds.iter().map(|p| p.revents).collect());
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// Whether a task is still under the filter of `listener`: the kernel reports `POLLHUP` on it
/// once none is left (Linux 5.8; before that it never does, and this answers true).
pub fn tasks_left(listener: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd; no wait.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    !(n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR) != 0)
}

/// `fork()` of a single-threaded process (the supervisor): 0 in the child, its pid in the
/// parent.
pub fn fork_single_threaded() -> Result<libc::pid_t, c_int> {
    // SAFETY: the supervisor runs its loop on its only thread (signals through a signalfd,
    // no helper thread), so the child may go on as the parent would.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(errno())
    } else {
        Ok(pid)
    }
}

/// stdin and stdout on `/dev/null`, for a guard process that outlives its wrapper (stderr
/// stays: the records may go there).
pub fn release_stdio() {
    // SAFETY: a constant path; descriptors of our own.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, libc::STDIN_FILENO);
            libc::dup2(null, libc::STDOUT_FILENO);
            libc::close(null);
        }
    }
}

/// In a server that outlives its wrapper: stdin and stdout on `/dev/null` (a `$(...)` or a
/// pipe must see its end when the tool's own processes close theirs; stderr stays, the
/// records may go there), the forwarded signals unblocked (a `kill` ends it as any process:
/// the calls left then fail closed), in a session of its own (no terminal's signals).
pub fn detach_server(forwarded: &libc::sigset_t) {
    release_stdio();
    // SAFETY: a live signal set; setsid has no arguments.
    unsafe {
        libc::pthread_sigmask(libc::SIG_UNBLOCK, forwarded, std::ptr::null_mut());
        libc::setsid();
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(c_int),
    /// Killed by this signal.
    Signal(c_int),
}

/// Reaps `pid` if it has ended (`WNOHANG`); `None` while it runs (or is only stopped).
pub fn try_wait(pid: libc::pid_t) -> Result<Option<Exit>, c_int> {
    let mut status = 0;
    // SAFETY: a live local for the status.
    let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if ret < 0 {
        return Err(errno());
    }
    if ret == 0 {
        return Ok(None);
    }
    if libc::WIFEXITED(status) {
        Ok(Some(Exit::Code(libc::WEXITSTATUS(status))))
    } else if libc::WIFSIGNALED(status) {
        Ok(Some(Exit::Signal(libc::WTERMSIG(status))))
    } else {
        Ok(None)
    }
}

/// `open(path, flags | O_CLOEXEC)`.
pub fn open(path: &std::ffi::CStr, flags: c_int) -> Result<OwnedFd, c_int> {
    // SAFETY: a NUL-terminated path; a new descriptor on success.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: just returned by the kernel, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether a real install of `prog` with `flags` succeeds, tried in a forked child (the filter
/// stays with the child, which ends at once); the errno of the install otherwise.
pub fn try_install_in_child(prog: &[libc::sock_filter], flags: libc::c_ulong) -> Result<(), c_int> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the child makes system calls only, on memory prepared before the fork, and ends
    // in `_exit` (no allocation, no lock, no unwinding).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno());
    }
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(errno() & 0xff);
            }
            let fd = if flags == 0 {
                install_filter_no_flags(&fprog)
            } else {
                install_filter(&fprog, flags)
            };
            libc::_exit(if fd < 0 { errno() & 0xff } else { 0 })
        }
    }
    let status = wait_child(pid)?;
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, e) => Err(e),
        _ => Err(libc::EIO),
    }
}

/// `waitpid(pid, &status, 0)`, retried on `EINTR`: the status of our child `pid` once it ended.
pub fn wait_child(pid: libc::pid_t) -> Result<c_int, c_int> {
    let mut status = 0;
    loop {
        // SAFETY: a live local for the status.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// `poll` for readability of one descriptor, for at most `ms` milliseconds; whether it is
/// readable (or at end of file).
pub fn readable_within(fd: BorrowedFd<'_>, ms: c_int) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live `pollfd`.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0 && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// `waitpid(pid, &status, WNOHANG | __WALL)`: its status if it has one to report.
pub fn wait_nohang(pid: libc::pid_t) -> Result<Option<c_int>, c_int> {
    let mut status = 0;
    // SAFETY: a live local for the status.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
    match r {
        r if r < 0 => Err(errno()),
        0 => Ok(None),
        _ => Ok(Some(status)),
    }
}

/// `read` into `buf`, retried on `EINTR`; the byte count.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, c_int> {
    loop {
        // SAFETY: a live buffer of `buf.len()` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// `write` of a few bytes (a pipe takes them at once).
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<(), c_int> {
    // SAFETY: a live buffer of `buf.len()` bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n == buf.len() as isize {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Asks for `SIGIO` to `owner` on `fd` (`F_SETOWN`, then `O_ASYNC` with `F_SETFL`): the
/// driver's fasync handler registers the open file description.
pub fn set_async_owner(fd: BorrowedFd<'_>, owner: libc::pid_t) -> Result<(), c_int> {
    // SAFETY: fcntl with integer arguments on a descriptor we own.
    unsafe {
        if libc::fcntl(fd.as_raw_fd(), libc::F_SETOWN, owner) < 0 {
            return Err(errno());
        }
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_ASYNC) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// `fcntl(fd, F_GETFL)`: the open file's status flags.
pub fn file_flags(fd: BorrowedFd<'_>) -> Result<c_int, c_int> {
    // SAFETY: an integer command on a descriptor we own.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        Err(errno())
    } else {
        Ok(fl)
    }
}

/// `F_GETSIG` (`include/uapi/asm-generic/fcntl.h`, glibc's `bits/fcntl-linux.h`; not in the
/// `libc` crate).
const F_GETSIG: c_int = 11;
/// `F_GETOWN_EX`.
const F_GETOWN_EX: c_int = 16;
/// `F_OWNER_TID`: the owner is a thread.
pub const F_OWNER_TID: c_int = 0;
/// `F_OWNER_PGRP`: the owner is a process group.
pub const F_OWNER_PGRP: c_int = 2;

/// `struct f_owner_ex`.
#[repr(C)]
struct FOwnerEx {
    kind: c_int,
    pid: libc::pid_t,
}

/// `fcntl(fd, F_GETOWN_EX)` and `F_GETSIG`: who the open file's `SIGIO` goes to (its kind,
/// `F_OWNER_TID`, `F_OWNER_PID` or `F_OWNER_PGRP`, and its id; 0: nobody) and which signal
/// (0: `SIGIO`).
pub fn async_owner(fd: BorrowedFd<'_>) -> Result<(c_int, libc::pid_t, c_int), c_int> {
    let mut owner = FOwnerEx { kind: 0, pid: 0 };
    // SAFETY: `owner` is a live `struct f_owner_ex` the kernel writes.
    if unsafe { libc::fcntl(fd.as_raw_fd(), F_GETOWN_EX, &mut owner as *mut FOwnerEx) } < 0 {
        return Err(errno());
    }
    // SAFETY: an integer command on a descriptor we own.
    let sig = unsafe { libc::fcntl(fd.as_raw_fd(), F_GETSIG) };
    if sig < 0 {
        return Err(errno());
    }
    Ok((owner.kind, owner.pid, sig))
}

/// What a child found of one open file of another process ([`files_in_child`]).
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
)]
pub struct FileFacts {
    /// 1: the file was taken; 0: not (the process gone, the descriptor closed).
    pub found: u32,
    /// `st_mode`.
    pub mode: u32,
    /// `st_rdev`.
    pub rdev: u64,
    /// `F_GETFL`.
    pub flags: i32,
    /// `F_GETOWN_EX`'s kind.
    pub owner_kind: i32,
    /// `F_GETOWN_EX`'s id (0: no owner).
    pub owner: i32,
    /// `F_GETSIG` (0: `SIGIO`).
    pub sig: i32,
}

/// For each `(pidfd, fd)`, what descriptor `fd` of the process of `pidfd` is: read in a forked
/// child, which takes each file (`pidfd_getfd`), reads it and exits. The files are never this
/// process's: when the last reference to one of this daemon's own CUSE files is dropped, the
/// kernel sends the daemon a `FUSE_RELEASE` and waits for its answer, and a daemon that did that
/// itself while it is killed would wait for ever. The child makes system calls only, on memory
/// prepared before the fork.
pub fn files_in_child(files: &[(RawFd, c_int)]) -> Result<Vec<FileFacts>, c_int> {
    let mut facts = vec![FileFacts::default(); files.len()];
    let size = std::mem::size_of_val(facts.as_slice());
    let (r, w) = pipe()?;
    // SAFETY: the child makes system calls only (pidfd_getfd, fstat, fcntl, write, _exit), on
    // `files`, `facts` and the pipe, all made before the fork; no allocation, no lock.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno());
    }
    if pid == 0 {
        // SAFETY: as above; `facts` is this child's copy.
        unsafe {
            for (out, &(pidfd, fd)) in facts.iter_mut().zip(files) {
                let got = libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0);
                if got < 0 {
                    continue;
                }
                let got = got as c_int;
                let mut st: libc::stat = std::mem::zeroed();
                let mut owner = FOwnerEx { kind: 0, pid: 0 };
                if libc::fstat(got, &mut st) == 0 {
                    out.found = 1;
                    out.mode = st.st_mode;
                    out.rdev = st.st_rdev;
                    out.flags = libc::fcntl(got, libc::F_GETFL);
                    if libc::fcntl(got, F_GETOWN_EX, &mut owner as *mut FOwnerEx) == 0 {
                        out.owner_kind = owner.kind;
                        out.owner = owner.pid;
                    }
                    out.sig = libc::fcntl(got, F_GETSIG);
                }
                libc::close(got);
            }
            let bytes = facts.as_ptr().cast::<u8>();
            let mut done = 0;
            while done < size {
                let n = libc::write(w.as_raw_fd(), bytes.add(done).cast(), size - done);
                if n <= 0 {
                    break;
                }
                done += n as usize;
            }
            libc::_exit(0)
        }
    }
    drop(w);
    let mut buf = vec![0u8; size];
    let mut done = 0;
    while done < size {
        match read(std::os::fd::AsFd::as_fd(&r), &mut buf[done..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => done += n,
        }
    }
    // The child may still be releasing a file (answered by this daemon's readers): reaped
    // when it is done, not waited for here.
    reap_later(pid);
    if done < size {
        return Err(libc::EIO);
    }
    for (out, chunk) in facts
        .iter_mut()
        .zip(buf.chunks_exact(std::mem::size_of::<FileFacts>()))
    {
        if let Ok(f) = <FileFacts as zerocopy::FromBytes>::read_from_bytes(chunk) {
            *out = f;
        }
    }
    Ok(facts)
}

/// Children to reap, each reaped at a later call once it has ended.
fn reap_later(pid: libc::pid_t) {
    static CHILDREN: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());
    let mut kids = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    kids.push(pid);
    kids.retain(|&k| matches!(wait_nohang(k), Ok(None)));
}

/// Clock ticks a second (`sysconf(_SC_CLK_TCK)`: the unit of `/proc`'s start times).
pub fn clock_ticks() -> i64 {
    // SAFETY: no pointer.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        i64::from(hz as i32)
    } else {
        100
    }
}

/// `mknod(path, S_IFCHR | mode, dev)`: a character device node (the umask applies; callers
/// set the mode afterwards).
pub fn mknod_char(
    path: &std::ffi::CStr,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> Result<(), c_int> {
    // SAFETY: a NUL-terminated path and integer arguments.
    if unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | (mode & 0o7777), dev) } < 0 {
        return Err(errno());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The `prctl` form of the install (kernels without the `seccomp` system call) takes the
    /// trace program; tried in a forked child, as the ptrace fallback does.
    #[test]
    fn the_trace_filter_installs_through_prctl() {
        let prog = crate::filter::build(crate::filter::Handler::Trace);
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the child makes system calls only and ends in `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                let ok = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                    && libc::prctl(
                        libc::PR_SET_SECCOMP,
                        libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                        &fprog as *const libc::sock_fprog,
                        0 as libc::c_ulong,
                        0 as libc::c_ulong,
                    ) == 0
                    // Filtered now: an unrelated call is still allowed.
                    && libc::getppid() > 0
                    && libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) == 2;
                libc::_exit(if ok { 0 } else { 1 })
            }
        }
        let mut status = 0;
        // SAFETY: our child; a live local.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
    }
}
