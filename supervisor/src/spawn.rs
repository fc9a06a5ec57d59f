//! Starting the tool under the filter: everything is allocated before `fork`; the child makes
//! only system calls (`pthread_sigmask`, `prctl` (`CAP_SYS_PTRACE` dropped, no new privileges),
//! `seccomp`, `sendmsg`, `close`, `execve`,
//! `_exit`), so that nothing it inherited from this process (a lock held by another thread, the
//! allocator's state) can stop it.
//!
//! One `SOCK_SEQPACKET` pair carries two messages from the child: first the listener (with
//! `SCM_RIGHTS`) and the filter flags that were accepted, or the errno of the install; then, if
//! `execve` fails, its errno. End of file without the second message means the exec succeeded
//! (the child's end is close-on-exec).
#![allow(unsafe_code)]

use std::ffi::{c_int, CString};
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use crate::sys::errno;

/// What to run.
#[derive(Clone, Debug)]
pub struct Command {
    /// The executable's path (already looked up in `PATH`).
    pub path: CString,
    /// `argv`, `argv[0]` included.
    pub argv: Vec<CString>,
    /// The environment.
    pub envp: Vec<CString>,
}

/// A started tool.
#[derive(Debug)]
pub struct Started {
    /// Its pid.
    pub pid: libc::pid_t,
    /// The notification listener of its filter.
    pub listener: OwnedFd,
    /// Whether `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` was accepted.
    pub killable: bool,
}

/// Why the tool did not start.
#[derive(Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// Preparing (socketpair, fork) failed.
    Setup(c_int),
    /// The filter could not be installed in the child (`EBUSY`: another listener already
    /// guards it; `EINVAL`/`ENOSYS`: no user notification in this kernel).
    Filter(c_int),
    /// `execve` failed with this errno.
    Exec(c_int),
}

/// The child's first message.
#[repr(C)]
#[derive(Clone, Copy)]
struct Hello {
    /// 0, or the errno of the install.
    error: c_int,
    /// Whether the killable-wait flag was accepted.
    killable: c_int,
}

/// Space for one `SCM_RIGHTS` descriptor, aligned as `cmsghdr`.
#[repr(C)]
union CmsgBuf {
    _align: libc::cmsghdr,
    bytes: [u8; 64],
}

/// What the child of a fork needs, made before the fork: `execve`'s null-terminated arrays
/// (pointing into the `Command`, which outlives them) and the filter's `sock_fprog`.
pub(crate) struct Prepared {
    pub(crate) argv: Vec<*const libc::c_char>,
    pub(crate) envp: Vec<*const libc::c_char>,
    pub(crate) prog: libc::sock_fprog,
}

impl Prepared {
    pub(crate) fn new(cmd: &Command, filter: &[libc::sock_filter]) -> Prepared {
        let nul_terminated = |v: &[CString]| -> Vec<*const libc::c_char> {
            v.iter().map(|a| a.as_ptr()).chain([ptr::null()]).collect()
        };
        Prepared {
            argv: nul_terminated(&cmd.argv),
            envp: nul_terminated(&cmd.envp),
            prog: libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            },
        }
    }
}

/// Forks and executes `cmd` under `filter`, with `child_mask` as its signal mask.
pub fn spawn(
    cmd: &Command,
    filter: &[libc::sock_filter],
    want_killable: bool,
    child_mask: &libc::sigset_t,
) -> Result<Started, SpawnError> {
    let Prepared { argv, envp, prog } = Prepared::new(cmd, filter);
    let mut pair = [0 as c_int; 2];
    // SAFETY: a live array of two descriptors for the kernel to fill.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    } < 0
    {
        return Err(SpawnError::Setup(errno()));
    }
    // SAFETY: both descriptors were just created and are owned here alone.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // SAFETY: the child runs only `child` (see its contract), which uses memory prepared above
    // and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SpawnError::Setup(errno()));
    }
    if pid == 0 {
        // SAFETY: we are the child of a fork; every pointer was prepared before it.
        unsafe {
            child(
                theirs.as_raw_fd(),
                &cmd.path,
                &argv,
                &envp,
                &prog,
                want_killable,
                child_mask,
            )
        }
    }
    drop(theirs);
    let reap = |e: SpawnError| {
        let mut status = 0;
        // SAFETY: our own child; a live local.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        Err(e)
    };
    let (hello, listener) = match receive_hello(&ours) {
        Ok(v) => v,
        Err(e) => return reap(SpawnError::Setup(e)),
    };
    if hello.error != 0 {
        return reap(SpawnError::Filter(hello.error));
    }
    let Some(listener) = listener else {
        return reap(SpawnError::Setup(libc::EPROTO));
    };
    let mut exec_errno: c_int = 0;
    // SAFETY: a live local of the right size.
    let n = unsafe {
        libc::recv(
            ours.as_raw_fd(),
            (&mut exec_errno as *mut c_int).cast(),
            size_of::<c_int>(),
            0,
        )
    };
    if n == size_of::<c_int>() as isize {
        return reap(SpawnError::Exec(exec_errno));
    }
    Ok(Started {
        pid,
        listener,
        killable: hello.killable != 0,
    })
}

fn receive_hello(sock: &OwnedFd) -> Result<(Hello, Option<OwnedFd>), c_int> {
    let mut hello = Hello {
        error: 0,
        killable: 0,
    };
    let mut iov = libc::iovec {
        iov_base: (&mut hello as *mut Hello).cast(),
        iov_len: size_of::<Hello>(),
    };
    // SAFETY: a union of plain bytes.
    let mut cbuf: CmsgBuf = unsafe { zeroed() };
    // SAFETY: all-zero is a valid msghdr; fields set below.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: reading the address of a union field.
    msg.msg_control = unsafe { cbuf.bytes.as_mut_ptr() }.cast();
    msg.msg_controllen = size_of::<CmsgBuf>() as _;
    let n = loop {
        // SAFETY: `msg` points at live locals for the kernel to fill.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 || errno() != libc::EINTR {
            break n;
        }
    };
    if n < 0 {
        return Err(errno());
    }
    if n as usize != size_of::<Hello>() {
        return Err(libc::EPROTO);
    }
    let mut listener = None;
    // SAFETY: CMSG_FIRSTHDR/NXTHDR walk the control buffer the kernel filled, within
    // `msg_controllen`.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !c.is_null() {
        // SAFETY: `c` is a header inside the buffer (see above).
        let h = unsafe { &*c };
        if h.cmsg_level == libc::SOL_SOCKET
            && h.cmsg_type == libc::SCM_RIGHTS
            // SAFETY: pure arithmetic.
            && h.cmsg_len as usize == unsafe { libc::CMSG_LEN(size_of::<c_int>() as u32) } as usize
        {
            // SAFETY: the length says one descriptor follows the header.
            let fd = unsafe { ptr::read_unaligned(libc::CMSG_DATA(c).cast::<c_int>()) };
            // SAFETY: SCM_RIGHTS installed it in our table just now; nobody else owns it.
            listener = Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        // SAFETY: as above.
        c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
    }
    Ok((hello, listener))
}

/// The child's whole life after `fork`.
///
/// # Safety
///
/// Called only in the child of `fork` of a process that may have had other threads: it must
/// not allocate, take a lock, use `std::env` or `std::io`, or unwind. It makes system calls
/// only, on memory prepared before the fork, and ends in `execve` or `_exit`.
unsafe fn child(
    sock: c_int,
    path: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    prog: &libc::sock_fprog,
    want_killable: bool,
    mask: &libc::sigset_t,
) -> ! {
    // SAFETY: system calls on prepared memory (this function's contract).
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, ptr::null_mut());
        let mut hello = Hello {
            error: 0,
            killable: 0,
        };
        let mut listener: c_int = -1;
        crate::sys::drop_ptrace_capability();
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            hello.error = errno();
        } else {
            let base = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
            if want_killable {
                listener = crate::sys::install_filter(
                    prog,
                    base | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                );
                hello.killable = c_int::from(listener >= 0);
            }
            if listener < 0 {
                listener = crate::sys::install_filter(prog, base);
            }
            if listener < 0 {
                hello.error = errno();
            }
        }
        let mut iov = libc::iovec {
            iov_base: (&mut hello as *mut Hello).cast(),
            iov_len: size_of::<Hello>(),
        };
        let mut cbuf: CmsgBuf = zeroed();
        let mut msg: libc::msghdr = zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if listener >= 0 {
            msg.msg_control = cbuf.bytes.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(size_of::<c_int>() as u32) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<c_int>() as u32) as _;
            ptr::write_unaligned(libc::CMSG_DATA(c).cast::<c_int>(), listener);
        }
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) < 0 || listener < 0 {
            libc::_exit(125);
        }
        // The tool must not keep the listener: it could answer its own calls.
        libc::close(listener);
        libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        let e = errno();
        libc::send(
            sock,
            (&e as *const c_int).cast(),
            size_of::<c_int>(),
            libc::MSG_NOSIGNAL,
        );
        libc::_exit(127)
    }
}
