//! The supervisor's loop: answer every notification, forward signals, end with the tool.
//!
//! A notification is a MegaRAID `ioctl` of some thread of the tree, stopped in the kernel until
//! it is answered. It is never let through (`SECCOMP_USER_NOTIF_FLAG_CONTINUE` would let the
//! kernel read the tool's memory again after the check, and resolve the descriptor again after
//! another thread swapped it); it is executed here:
//!
//! 1. the tool's descriptor `args[0]` is duplicated into this process (`pidfd_getfd`) and
//!    `fstat`ed: the management node (as the library decides it: `MFIGUARD_DEVICE`, or the
//!    driver's major) goes to the guarded path (`mfiguard_core::guarded`) with that descriptor
//!    as the driver; any other file gets the call on a private copy of the argument (the size
//!    and direction the request code encodes), unchanged;
//! 2. every read of the tool's memory is followed by `SECCOMP_IOCTL_NOTIF_ID_VALID`, so a
//!    thread that died (and a pid reused) is never mistaken for the caller;
//! 3. the answer is sent once. A call whose answer cannot be delivered after the driver ran
//!    (a signal interrupted it without `WAIT_KILLABLE_RECV`) is remembered: the kernel restarts
//!    the same call with a new id, and that restart gets the remembered answer instead of a
//!    second firmware command.

use std::ffi::c_int;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use mfiguard_core::audit::Guard;
use mfiguard_core::config::Config;
use mfiguard_core::device;
use mfiguard_core::guarded::{
    copied, Answer, Caller, Driver, Identity, PrivateCall, Replay, Request, AEN_SIZE,
};

use mfiguard_sanitizer::Errno;

use crate::filter::{self, FIRMWARE, GET_AEN};
use crate::proc::{identity, tgid};
use crate::sys::{self, Exit};

/// A notification's call, identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Syscall {
    tid: libc::pid_t,
    fd: c_int,
    req: Request,
}

impl Syscall {
    /// The call a notification stands for, if the filter could have sent it.
    fn from_notif(n: &libc::seccomp_notif) -> Option<Syscall> {
        let d = &n.data;
        let abi = filter::ioctl_abi(d.arch, u64::from(d.nr as u32))?;
        let req = Request::new(Guard::Supervisor, abi, d.args[1] as u32, d.args[2])?;
        Some(Syscall {
            tid: n.pid as libc::pid_t,
            fd: d.args[0] as u32 as c_int,
            req,
        })
    }
}

/// The tool, as one pending notification sees it.
struct Tool<'a> {
    listener: BorrowedFd<'a>,
    id: u64,
    tid: libc::pid_t,
}

impl Tool<'_> {
    fn valid(&self) -> Result<(), c_int> {
        if sys::notif_id_valid(self.listener, self.id) {
            Ok(())
        } else {
            Err(libc::ESRCH)
        }
    }
}

impl Caller for Tool<'_> {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        sys::read_process(self.tid, addr, out)?;
        // The pid may have been reused by another process since the notification: what was
        // read counts only if the call is still pending.
        self.valid()
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int> {
        self.valid()?;
        sys::write_process(self.tid, addr, data)
    }

    fn identity(&self) -> Option<Identity> {
        Some(identity(self.tid))
    }

    fn deliver(&self, answer: Answer) -> Result<(), c_int> {
        let (val, error) = match answer {
            Answer::Value(v) => (i64::from(v), 0),
            Answer::Errno(e) => (0, e.0),
        };
        sys::notif_send(self.listener, self.id, val, error)
    }
}

/// The node, through the tool's own open file (duplicated): its flags, its `F_SETOWN`.
pub(crate) struct Node<'a> {
    pub(crate) fd: BorrowedFd<'a>,
}

#[allow(unsafe_code)]
impl Driver for Node<'_> {
    fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int) {
        // SAFETY: a `PrivateCall` points only at buffers it owns, and it is borrowed mutably
        // for the whole call.
        unsafe { sys::ioctl(self.fd, FIRMWARE, call.as_mut_ptr().cast()) }
    }

    fn get_aen(&mut self, aen: &mut [u8; AEN_SIZE]) -> (c_int, c_int) {
        // SAFETY: `megasas_aen` is 12 bytes of integers, read by the driver from our copy.
        unsafe { sys::ioctl(self.fd, GET_AEN, aen.as_mut_ptr().cast()) }
    }
}

/// How many undelivered answers are kept for restarts.
const UNDELIVERED_MAX: usize = 64;

/// A call whose answer could not be delivered after the driver ran.
struct Undelivered {
    call: Syscall,
    replay: Box<Replay>,
    /// The packet as the driver left it in the caller (its status byte written back).
    packet: Vec<u8>,
}

/// Whether `packet`, read now, is the packet of `u` untouched since (a restart of the same
/// call): the kernel restarts a call with the same registers and the caller's memory as the
/// first run left it. A caller that issues the same call again itself changes nothing either,
/// and gets the first run's answer too: the command ran once for what it asked twice.
fn same_packet(u: &Undelivered, packet: &[u8]) -> bool {
    u.packet == packet
}

/// The supervisor's state between notifications.
pub struct Supervisor<'c> {
    cfg: &'c Config,
    listener: OwnedFd,
    /// Remembered only without `WAIT_KILLABLE_RECV` (with it, a call cannot be interrupted).
    undelivered: Vec<Undelivered>,
    killable: bool,
    /// pidfds of the thread-group leaders that made calls, by pid (most tools are one process
    /// with one thread: one `pidfd_open` for all their calls).
    leaders: Vec<(libc::pid_t, OwnedFd)>,
}

/// How many leaders' pidfds are kept.
const LEADERS_MAX: usize = 32;

impl<'c> Supervisor<'c> {
    /// Serves `listener` with `cfg`.
    pub fn new(cfg: &'c Config, listener: OwnedFd, killable: bool) -> Supervisor<'c> {
        Supervisor {
            cfg,
            listener,
            undelivered: Vec::new(),
            killable,
            leaders: Vec::new(),
        }
    }

    /// Serves notifications and forwards signals until `child` ends; its exit.
    pub fn run(&mut self, child: libc::pid_t, signals: &OwnedFd) -> Exit {
        let child_fd = sys::pidfd_open(child, 0).ok();
        let mut first = true;
        loop {
            // With a pidfd, the child's end is a poll event; without one (Linux < 5.3), look
            // every time round.
            if first || child_fd.is_none() {
                if let Ok(Some(exit)) = sys::try_wait(child) {
                    return exit;
                }
                first = false;
            }
            let mut fds = vec![self.listener.as_fd(), signals.as_fd()];
            if let Some(c) = &child_fd {
                fds.push(c.as_fd());
            }
            let revents = match sys::poll(&fds) {
                Ok(r) => r,
                Err(_) => return wait_blocking(child),
            };
            if revents.get(2).is_some_and(|r| r & libc::POLLIN != 0) {
                if let Ok(Some(exit)) = sys::try_wait(child) {
                    return exit;
                }
            }
            if revents[0] & libc::POLLIN != 0 {
                self.serve_one();
            } else if revents[0] & (libc::POLLHUP | libc::POLLERR) != 0 {
                // No task is left under the filter: only the child's exit remains.
                if child_fd.is_none() {
                    return wait_blocking(child);
                }
            }
            if revents[1] & libc::POLLIN != 0 {
                while let Some(info) = sys::read_signal(signals.as_fd()) {
                    // A signal from the terminal (Ctrl-C, SI_KERNEL) reached the tool too: it
                    // is in our process group. One sent to us alone is passed on.
                    if info.ssi_code != libc::SI_KERNEL {
                        sys::kill(child, info.ssi_signo as c_int);
                    }
                }
            }
        }
    }

    /// Receives and answers one notification.
    fn serve_one(&mut self) {
        let n = match sys::notif_recv(self.listener.as_fd()) {
            Ok(n) => n,
            // ENOENT: the call went away between poll and receive.
            Err(_) => return,
        };
        let listener = self.listener.as_fd();
        let Some(call) = Syscall::from_notif(&n) else {
            // Cannot happen with our filter; never let an unknown call through.
            let _ = sys::notif_send(listener, n.id, 0, libc::EPERM);
            return;
        };
        let tool = Tool {
            listener,
            id: n.id,
            tid: call.tid,
        };
        let restart = self.undelivered.iter().position(|u| {
            u.call == call && {
                let mut now = vec![0u8; u.packet.len()];
                tool.read(call.req.arg, &mut now).is_ok() && same_packet(u, &now)
            }
        });
        if let Some(i) = restart {
            // The restart of a call whose command already ran: its answer, not a second run.
            let u = self.undelivered.swap_remove(i);
            log::debug!(
                "restarted call of {}: answered from its first run",
                call.tid
            );
            if u.replay.resume(&tool).is_err() {
                self.undelivered.push(u);
            }
            return;
        }
        let delivery = match node_fd(&mut self.leaders, self.cfg, &call, &tool) {
            Err(errno) => {
                let _ = tool.deliver(Answer::Errno(Errno(errno)));
                return;
            }
            Ok((fd, false)) => {
                let _ = tool.deliver(other_file_call(&tool, fd.as_fd(), &call));
                return;
            }
            Ok((fd, true)) => copied::run(self.cfg, call.req, &tool, &mut Node { fd: fd.as_fd() }),
        };
        let replay = delivery
            .replay
            .filter(|_| !self.killable && !call.req.is_get_aen());
        if let Some(replay) = replay {
            // The call is no longer pending, so its memory is read without the validity check:
            // it is only compared with the restart's, never used for a decision.
            let mut packet = vec![0u8; call.req.abi.packet_size()];
            if sys::read_process(call.tid, call.req.arg, &mut packet).is_ok() {
                // A signal handler's own calls may come between a call and its restart, so
                // more than one per thread can wait; the oldest are forgotten past a bound.
                if self.undelivered.len() >= UNDELIVERED_MAX {
                    self.undelivered.remove(0);
                }
                self.undelivered.push(Undelivered {
                    call,
                    replay,
                    packet,
                });
            }
        }
    }
}

/// The tool's descriptor, as ours, and whether it is the management node; `leaders` caches
/// the pidfds of thread-group leaders.
fn node_fd(
    leaders: &mut Vec<(libc::pid_t, OwnedFd)>,
    cfg: &Config,
    call: &Syscall,
    tool: &Tool<'_>,
) -> Result<(OwnedFd, bool), c_int> {
    let check = |fd: OwnedFd| -> Result<(OwnedFd, bool), c_int> {
        let node = device::is_mgmt_node(fd.as_raw_fd(), cfg)?;
        Ok((fd, node))
    };
    if let Some(i) = leaders.iter().position(|(pid, _)| *pid == call.tid) {
        match sys::pidfd_getfd(leaders[i].1.as_fd(), call.fd) {
            // The cached pidfd names a thread-group leader with this pid: while that
            // process lives no other can have the pid, and the call shows it is alive.
            Ok(fd) => return check(fd),
            Err(libc::ESRCH) => {
                leaders.swap_remove(i);
            }
            Err(e) => return Err(e),
        }
    }
    let (pidfd, leader) = match sys::pidfd_open(call.tid, 0) {
        Ok(p) => (p, true),
        // Not a thread-group leader (a pidfd without PIDFD_THREAD names a process: EINVAL,
        // ENOENT on recent kernels, 6.18 here): its process, from /proc, each time (a
        // thread's id may go to another process).
        Err(libc::EINVAL | libc::ENOENT) => (
            sys::pidfd_open(tgid(call.tid).ok_or(libc::ESRCH)?, 0)?,
            false,
        ),
        Err(e) => return Err(e),
    };
    // The pidfd names the process that made the call only if the call is still pending.
    tool.valid()?;
    let fd = sys::pidfd_getfd(pidfd.as_fd(), call.fd)?;
    if leader {
        if leaders.len() >= LEADERS_MAX {
            leaders.remove(0);
        }
        leaders.push((call.tid, pidfd));
    }
    check(fd)
}

/// The call on a file that is not the management node: executed here on a private copy of the
/// argument (the size and direction the request code encodes), so that no descriptor swap or
/// memory change by another thread can turn it into an unguarded MegaRAID call.
fn other_file_call(tool: &Tool<'_>, fd: BorrowedFd<'_>, call: &Syscall) -> Answer {
    other_file(tool, fd, call.req.code, call.req.arg)
}

/// [`other_file_call`] for any caller: `code` and `arg` as the tool passed them.
pub(crate) fn other_file(tool: &impl Caller, fd: BorrowedFd<'_>, code: u32, arg: u64) -> Answer {
    let size = ((code >> 16) & 0x3fff) as usize;
    let dir = code >> 30;
    // A page of slack beyond the encoded size, for a driver that writes more than it says.
    let mut buf = vec![0u8; size + 4096];
    let readable = tool.read(arg, &mut buf[..size]).is_ok();
    // An unreadable argument: the driver would have faulted on it, so does a null pointer.
    let private = readable.then_some(&mut buf[..]);
    let (ret, errno) = sys::ioctl_private(fd, code, private);
    if ret < 0 {
        return Answer::Errno(Errno(errno));
    }
    // _IOC_READ: the driver wrote the argument back.
    if readable && dir & 2 != 0 && tool.write(arg, &buf[..size]).is_err() {
        return Answer::Errno(Errno::EFAULT);
    }
    Answer::Value(ret)
}

fn wait_blocking(child: libc::pid_t) -> Exit {
    loop {
        match sys::try_wait(child) {
            Ok(Some(exit)) => return exit,
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(_) => return Exit::Code(125),
        }
    }
}

/// The floor the benchmark compares the supervisor with: a responder that answers every
/// notification at once with `ENOTTY`, deciding nothing.
pub fn bare_responder(listener: &OwnedFd, child: libc::pid_t) -> Exit {
    let child_fd = sys::pidfd_open(child, 0).ok();
    loop {
        if let Ok(Some(exit)) = sys::try_wait(child) {
            return exit;
        }
        let mut fds = vec![listener.as_fd()];
        if let Some(c) = &child_fd {
            fds.push(c.as_fd());
        }
        match sys::poll(&fds) {
            Ok(r) if r[0] & libc::POLLIN != 0 => {
                if let Ok(n) = sys::notif_recv(listener.as_fd()) {
                    let _ = sys::notif_send(listener.as_fd(), n.id, 0, libc::ENOTTY);
                }
            }
            Ok(_) => {}
            Err(_) => return wait_blocking(child),
        }
    }
}
