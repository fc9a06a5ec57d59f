//! The supervisor's loop: answer every notification, forward signals, end with the tool.
//!
//! A notification is a MegaRAID `ioctl` of some thread of the tree, stopped in the kernel until
//! it is answered. It is never let through (`SECCOMP_USER_NOTIF_FLAG_CONTINUE` would let the
//! kernel read the tool's memory again after the check, and resolve the descriptor again after
//! another thread swapped it); it is executed here:
//!
//! 1. the tool's descriptor `args[0]` is duplicated into this process (`pidfd_getfd`) and
//!    recognised (`mfiguard_core::device::management_node`: `MFIGUARD_DEVICE`, the driver's
//!    major as `/proc/devices` said before the tool started, or `mfiguard-hostd`'s CUSE node):
//!    a management node goes to the guarded path (`mfiguard_core::guarded`) with that
//!    descriptor as the driver (for the daemon's node, the private copies live here and the
//!    daemon reads them from this process, then guards again); any other file is refused with
//!    `ENOTTY` and a `guard.unrecognised-file` record, never executed here (it would run with
//!    this process's credentials and memory);
//! 2. every read of the tool's memory is followed by `SECCOMP_IOCTL_NOTIF_ID_VALID`, so a
//!    thread that died (and a pid reused) is never mistaken for the caller;
//! 3. the answer is sent once. A call whose answer cannot be delivered after the driver ran
//!    (a signal interrupted it without `WAIT_KILLABLE_RECV`) is remembered: the kernel restarts
//!    the same call with a new id, and that restart gets the remembered answer instead of a
//!    second firmware command.

use std::ffi::c_int;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use mfiguard_core::audit::{Guard, GuardIssue};
use mfiguard_core::config::Config;
use mfiguard_core::device::{self, Known, Target};
use mfiguard_core::guarded::{
    copied, Answer, Caller, Driver, Identity, PrivateCall, Replay, Request, AEN_SIZE,
};

use mfiguard_sanitizer::{Abi, Errno};

use crate::files::KnownFiles;
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
        // The pid may have been reused by another process since the notification: what was
        // read counts only once `confirm` finds the call still pending.
        sys::read_process(self.tid, addr, out)
    }

    fn confirm(&self) -> Result<(), c_int> {
        // One check after the last read covers them all: a call that went away never comes
        // back, so pending now means pending (its thread alive, its pid its own) at each read.
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

/// How many interrupted calls keep their results for a restart (with their buffers).
const RESTARTS_WITH_RESULTS_MAX: usize = 16;
/// How many bytes of private buffers those results may hold together (a call's buffers are at
/// most `SGE_TOTAL_MAX` + `SENSE_LEN_MAX`, 64 MiB: one such call is answered without its
/// results kept, below).
const RESTART_BYTES_MAX: usize = 8 << 20;
/// How many interrupted calls are remembered at all (a packet's bytes each, about 400): a
/// restart of one whose results were dropped is refused, not run again.
const RESTARTS_MAX: usize = 256;

/// A call whose answer could not be delivered after the driver ran.
struct Undelivered {
    call: Syscall,
    /// What the driver wrote and answered; `None` once dropped to bound the memory held.
    replay: Option<Box<Replay>>,
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

/// The interrupted calls waiting for their restart, without `WAIT_KILLABLE_RECV` (Linux before
/// 5.19): a signal ends the wait for the answer after the driver ran, and the kernel restarts
/// the call with a new id (or returns `EINTR`, and no restart ever comes). Bounded: at most
/// [`RESTARTS_WITH_RESULTS_MAX`] keep their buffers, [`RESTART_BYTES_MAX`] bytes together (the
/// oldest give theirs up first), and [`RESTARTS_MAX`] are remembered at all (the oldest
/// forgotten).
#[derive(Default)]
struct Restarts {
    waiting: std::collections::VecDeque<Undelivered>,
    /// Bytes of private buffers held by `waiting`'s replays.
    bytes: usize,
}

impl Restarts {
    fn held(u: &Undelivered) -> usize {
        u.replay.as_ref().map_or(0, |r| r.held_bytes())
    }

    /// Remembers an interrupted call, dropping older results (and, past the count, older
    /// calls) to stay within the bounds.
    fn remember(&mut self, call: Syscall, replay: Box<Replay>, packet: Vec<u8>) {
        let need = replay.held_bytes();
        let mut replay = Some(replay);
        if need > RESTART_BYTES_MAX {
            // Larger than everything we keep: remembered without its results.
            replay = None;
        } else {
            let mut with = self.waiting.iter().filter(|u| u.replay.is_some()).count();
            for u in self.waiting.iter_mut() {
                if self.bytes + need <= RESTART_BYTES_MAX && with < RESTARTS_WITH_RESULTS_MAX {
                    break;
                }
                if let Some(r) = u.replay.take() {
                    self.bytes -= r.held_bytes();
                    with -= 1;
                }
            }
        }
        if self.waiting.len() >= RESTARTS_MAX {
            if let Some(old) = self.waiting.pop_front() {
                self.bytes -= Self::held(&old);
            }
        }
        let u = Undelivered {
            call,
            replay,
            packet,
        };
        self.bytes += Self::held(&u);
        self.waiting.push_back(u);
    }

    /// The remembered call `call` is a restart of (its packet unchanged, read with `read`),
    /// taken out.
    fn take(
        &mut self,
        call: &Syscall,
        mut read: impl FnMut(&mut [u8]) -> bool,
    ) -> Option<Undelivered> {
        let i = self.waiting.iter().position(|u| {
            u.call == *call && {
                let mut now = vec![0u8; u.packet.len()];
                read(&mut now) && same_packet(u, &now)
            }
        })?;
        let u = self.waiting.remove(i)?;
        self.bytes -= Self::held(&u);
        Some(u)
    }

    /// Puts back a call whose restart could not take its answer either.
    fn put_back(&mut self, u: Undelivered) {
        self.bytes += Self::held(&u);
        self.waiting.push_back(u);
    }
}

/// The supervisor's state between notifications.
pub struct Supervisor<'c> {
    cfg: &'c Config,
    listener: OwnedFd,
    /// Remembered only without `WAIT_KILLABLE_RECV` (with it, a call cannot be interrupted).
    restarts: Restarts,
    killable: bool,
    /// pidfds of the thread-group leaders that made calls, by pid (most tools are one process
    /// with one thread: one `pidfd_open` for all their calls).
    leaders: Vec<(libc::pid_t, OwnedFd)>,
    /// The management nodes, as known before the tool started.
    driver: Known,
    /// The descriptors recent calls were made on.
    files: KnownFiles,
}

/// How many leaders' pidfds are kept.
const LEADERS_MAX: usize = 32;

impl<'c> Supervisor<'c> {
    /// Serves `listener` with `cfg`; `driver` was taken before the tool started.
    pub fn new(
        cfg: &'c Config,
        listener: OwnedFd,
        killable: bool,
        driver: Known,
    ) -> Supervisor<'c> {
        Supervisor {
            cfg,
            listener,
            restarts: Restarts::default(),
            killable,
            leaders: Vec::new(),
            driver,
            files: KnownFiles::default(),
        }
    }

    /// Serves notifications and forwards signals until `child` ends; its exit. Tasks still
    /// under the filter then (a descendant that outlived it) stay guarded by a server that
    /// outlives this call: see [`Supervisor::outlive`].
    pub fn run(
        &mut self,
        child: libc::pid_t,
        signals: &OwnedFd,
        forwarded: &libc::sigset_t,
    ) -> Exit {
        let exit = self.serve_child(child, signals);
        self.outlive(exit, forwarded)
    }

    /// The guard lives as long as its filter: when the first process has ended and tasks are
    /// left under the filter, this process forks; the parent returns the first process's exit
    /// (the wrapper's caller, a cron job, sudo, NRPE, waits for that), the child serves the
    /// rest until no task is left (the listener's `POLLHUP`), then exits. A descendant's calls
    /// (and its attempts to get out) are answered and recorded as before; killing that server
    /// leaves them failing closed (`ENOSYS`).
    fn outlive(&mut self, exit: Exit, forwarded: &libc::sigset_t) -> Exit {
        if !sys::tasks_left(self.listener.as_fd()) {
            return exit;
        }
        match sys::fork_single_threaded() {
            Ok(0) => {
                sys::detach_server(forwarded);
                log::debug!("serving the tasks left under the filter");
                self.serve_until_hup();
                // The server's end; the wrapper's own exit is the parent's.
                std::process::exit(0)
            }
            Ok(_) => exit,
            Err(e) => {
                // The tasks left fail closed (no listener: ENOSYS).
                log::debug!("cannot fork a server for the tasks left: {e}");
                exit
            }
        }
    }

    /// Serves until no task is left under the filter.
    fn serve_until_hup(&mut self) {
        loop {
            let revents = match sys::poll(&[self.listener.as_fd()]) {
                Ok(r) => r[0],
                Err(_) => return,
            };
            if revents & libc::POLLIN != 0 {
                self.serve_one();
            } else if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                return;
            }
        }
    }

    /// Serves notifications and forwards signals until `child` ends; its exit.
    fn serve_child(&mut self, child: libc::pid_t, signals: &OwnedFd) -> Exit {
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
            let tool = Tool {
                listener,
                id: n.id,
                tid: n.pid as libc::pid_t,
            };
            match filter::closed_name(n.data.arch, u64::from(n.data.nr as u32)) {
                // A door the filter closes: refused, with a record naming it.
                Some(syscall) => {
                    let abi = if n.data.arch == filter::AUDIT_ARCH_I386 {
                        Abi::Ilp32
                    } else {
                        Abi::Lp64
                    };
                    copied::refuse_closed(self.cfg, Guard::Supervisor, abi, &tool, syscall);
                }
                // Cannot happen with our filter; never let an unknown call through.
                None => {
                    let _ = sys::notif_send(listener, n.id, 0, libc::EPERM);
                }
            }
            return;
        };
        let tool = Tool {
            listener,
            id: n.id,
            tid: call.tid,
        };
        if filter::is_already_guarded_probe(call.fd, &call.req) {
            let _ = tool.deliver(Answer::Errno(Errno(libc::EALREADY)));
            return;
        }
        let restart = self
            .restarts
            .take(&call, |now| tool.read(call.req.arg, now).is_ok());
        if let Some(mut u) = restart {
            // The restart of a call whose command already ran: its answer, not a second run.
            log::debug!(
                "restarted call of {}: answered from its first run",
                call.tid
            );
            let Some(replay) = u.replay.take() else {
                // Its results were given up to bound the memory: refused, never run twice.
                copied::refuse(self.cfg, call.req, &tool, GuardIssue::RestartResultsDropped);
                return;
            };
            if replay.resume(&tool).is_err() {
                u.replay = Some(replay);
                self.restarts.put_back(u);
            }
            return;
        }
        let known = known_file(
            &mut self.files,
            &mut self.leaders,
            self.cfg,
            self.driver,
            &call,
            &tool,
        );
        let delivery = match known {
            Err(errno) => {
                let _ = tool.deliver(Answer::Errno(Errno(errno)));
                return;
            }
            Ok((_, Target::Other(rdev))) => {
                // Never executed here: it would run with this process's credentials and
                // memory, on a file nobody checked.
                let issue = GuardIssue::UnrecognisedFile { rdev };
                copied::refuse(self.cfg, call.req, &tool, issue);
                return;
            }
            Ok((fd, Target::Node(_))) => {
                copied::run(self.cfg, call.req, &tool, &mut Node { fd: fd.as_fd() })
            }
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
                // more than one per thread can wait.
                self.restarts.remember(call, replay, packet);
            }
        }
    }
}

/// [`node_fd`], answered from `files` while the tool's descriptor is still the open file it
/// was.
fn known_file(
    files: &mut KnownFiles,
    leaders: &mut Vec<(libc::pid_t, OwnedFd)>,
    cfg: &Config,
    driver: Known,
    call: &Syscall,
    tool: &Tool<'_>,
) -> Result<(Rc<OwnedFd>, Target), c_int> {
    if let Some(known) = files.get(call.tid, call.fd) {
        return Ok(known);
    }
    let (fd, target) = node_fd(leaders, cfg, driver, call, tool)?;
    Ok((files.remember(call.tid, call.fd, fd, target), target))
}

/// The tool's descriptor, as ours, and which file it is (the driver's node, `mfiguard-hostd`'s,
/// or another); `leaders` caches the pidfds of thread-group leaders.
fn node_fd(
    leaders: &mut Vec<(libc::pid_t, OwnedFd)>,
    cfg: &Config,
    driver: Known,
    call: &Syscall,
    tool: &Tool<'_>,
) -> Result<(OwnedFd, Target), c_int> {
    let check = |fd: OwnedFd| -> Result<(OwnedFd, Target), c_int> {
        let file = device::management_node(fd.as_raw_fd(), cfg, driver)?;
        Ok((fd, file))
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

#[cfg(test)]
mod tests {
    use super::*;
    use mfiguard_core::config::LogTarget;
    use mfiguard_core::guarded::AEN_SIZE;
    use mfiguard_sanitizer::abi::mfi::MR_DCMD_CTRL_GET_INFO;
    use mfiguard_sanitizer::builder::samples;
    use mfiguard_sanitizer::Abi;

    const PACKET_AT: u64 = 0x1000;
    const BUF_AT: u64 = 0x10_0000;

    /// A caller interrupted before its answer: its packet and a buffer of `len` bytes; every
    /// delivery fails as for a signal without `WAIT_KILLABLE_RECV`.
    struct Interrupted {
        packet: Vec<u8>,
    }

    impl Caller for Interrupted {
        fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
            if addr == PACKET_AT {
                out.copy_from_slice(&self.packet[..out.len()]);
            } else {
                out.fill(0);
            }
            Ok(())
        }
        fn write(&self, _addr: u64, _data: &[u8]) -> Result<(), c_int> {
            Ok(())
        }
        fn identity(&self) -> Option<Identity> {
            None
        }
        fn deliver(&self, _answer: Answer) -> Result<(), c_int> {
            Err(libc::ESRCH)
        }
    }

    struct Fine;

    impl Driver for Fine {
        fn firmware(&mut self, _call: &mut PrivateCall) -> (c_int, c_int) {
            (0, 0)
        }
        fn get_aen(&mut self, _aen: &mut [u8; AEN_SIZE]) -> (c_int, c_int) {
            (0, 0)
        }
    }

    fn interrupted_call(tid: libc::pid_t, len: u32) -> (Syscall, Box<Replay>, Vec<u8>) {
        let packet = samples::dcmd_read(Abi::Lp64, MR_DCMD_CTRL_GET_INFO, BUF_AT, len).build();
        let cfg = Config {
            log: LogTarget::None,
            ..Config::FALLBACK
        };
        let req = Request::new(Guard::Supervisor, Abi::Lp64, FIRMWARE, PACKET_AT).unwrap();
        let caller = Interrupted {
            packet: packet.clone(),
        };
        let done = copied::run(&cfg, req, &caller, &mut Fine);
        assert!(!done.delivery.delivered && done.delivery.executed);
        let replay = done.replay.expect("kept for a restart");
        assert_eq!(replay.held_bytes(), len as usize);
        (Syscall { tid, fd: 3, req }, replay, packet)
    }

    #[test]
    fn interrupted_calls_hold_bounded_memory() {
        let mut r = Restarts::default();
        // 300 calls of 1 MiB each, none ever restarted (EINTR without SA_RESTART).
        let mut same = Vec::new();
        for tid in 0..300 {
            let (call, replay, packet) = interrupted_call(tid + 100, 1 << 20);
            same.clone_from(&packet);
            r.remember(call, replay, packet);
            let with = r.waiting.iter().filter(|u| u.replay.is_some()).count();
            let held: usize = r.waiting.iter().map(Restarts::held).sum();
            assert_eq!(held, r.bytes);
            assert!(r.bytes <= RESTART_BYTES_MAX, "{} bytes held", r.bytes);
            assert!(with <= RESTARTS_WITH_RESULTS_MAX);
            assert!(r.waiting.len() <= RESTARTS_MAX);
        }
        assert_eq!(r.bytes, RESTART_BYTES_MAX);
        let unchanged = |now: &mut [u8]| {
            now.copy_from_slice(&same);
            true
        };
        // The newest keep their results: a restart is answered from them.
        let newest = r.waiting.back().unwrap().call;
        let u = r.take(&newest, unchanged).expect("remembered");
        assert!(u.replay.is_some());
        // An older one gave them up, but is still known: its restart is refused, not rerun.
        let older = r.waiting[r.waiting.len() - 10].call;
        let u = r.take(&older, unchanged).expect("remembered");
        assert!(u.replay.is_none());
        // Ones past the count are forgotten altogether (the bound on what is remembered).
        let first = Syscall { tid: 100, ..newest };
        assert!(r.take(&first, unchanged).is_none());
    }

    #[test]
    fn a_call_larger_than_the_bound_keeps_nothing_but_its_identity() {
        let mut r = Restarts::default();
        let (small, replay, p) = interrupted_call(8, 4096);
        r.remember(small, replay, p);
        let (call, replay, packet) = interrupted_call(7, 16 << 20);
        r.remember(call, replay, packet.clone());
        assert_eq!(r.waiting.iter().filter(|u| u.replay.is_some()).count(), 1);
        assert_eq!(r.bytes, 4096);
        // A restart is recognised by its unchanged packet only.
        assert!(r
            .take(&call, |now| {
                now.copy_from_slice(&packet);
                now[0x20] ^= 1;
                true
            })
            .is_none());
        let u = r
            .take(&call, |now| {
                now.copy_from_slice(&packet);
                true
            })
            .expect("remembered");
        assert!(u.replay.is_none());
    }
}
