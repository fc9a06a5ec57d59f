//! Request dispatch: each request read from the channel answered once, an ioctl through the
//! shared guarded path.

use std::cell::Cell;
use std::ffi::c_int;

use mfiguard_core::audit::Guard;
use mfiguard_core::audit::GuardIssue;
use mfiguard_core::config::Config;
use mfiguard_core::guarded::{copied, Answer, Caller, Driver, Identity, Request};
use mfiguard_sanitizer::{Abi, Errno};

use crate::cuse::{self, InHeader, Op};

/// Everything a request needs from the host: the caller's memory and identity, the channel,
/// the driver. The daemon's is [`Live`]; the tests' is in memory.
pub(super) trait Host {
    /// The driver, as this daemon reaches it.
    type Driver<'a>: Driver
    where
        Self: 'a;
    /// Reads `out.len()` bytes at `addr` of thread `tid`.
    fn read(&self, tid: libc::pid_t, addr: u64, out: &mut [u8]) -> Result<(), c_int>;
    /// Writes `data` at `addr` of thread `tid`.
    fn write(&self, tid: libc::pid_t, addr: u64, data: &[u8]) -> Result<(), c_int>;
    /// Who thread `tid` is, for records.
    fn identity(&self, tid: libc::pid_t) -> Identity;
    /// Whether thread `tid` may open the node as the driver decides it (`CAP_SYS_ADMIN`).
    fn may_open(&self, tid: libc::pid_t) -> Result<(), c_int>;
    /// The driver's node, opened on first use: `ENXIO` while the driver is not loaded.
    fn driver(&self) -> Result<Self::Driver<'_>, c_int>;
    /// Writes one reply to the channel.
    fn send(&self, reply: &[u8]) -> Result<(), c_int>;
    /// The controller's event flag, as the driver's poll reports it: whether an event came
    /// since the last poll that saw one (seeing it clears it); when none has and `notify` is
    /// set, `kh` is woken (`FUSE_NOTIFY_POLL`) at the next.
    fn poll_event(&self, kh: u64, notify: bool) -> bool;
}

/// The caller of one `FUSE_IOCTL`: its thread, and the reply that answers it.
pub(super) struct CuseCaller<'h, H: Host> {
    host: &'h H,
    tid: libc::pid_t,
    unique: u64,
    /// Whether the reply was written: every request read gets exactly one, or its caller
    /// would wait for it uninterruptibly.
    replied: Cell<bool>,
}

impl<H: Host> CuseCaller<'_, H> {
    /// Answers the request once; a reply the kernel refuses is replaced by `EIO`.
    fn reply(&self, answer: Answer) -> Result<(), c_int> {
        if self.replied.replace(true) {
            return Err(libc::EALREADY);
        }
        let bytes = match answer {
            Answer::Value(v) => cuse::reply_ioctl(self.unique, v),
            Answer::Errno(e) => cuse::reply_error(self.unique, reply_errno(e.0)),
        };
        match self.host.send(&bytes) {
            Ok(()) => Ok(()),
            // The request is gone (its caller was killed before the reply): nothing waits.
            Err(libc::ENOENT) => Err(libc::ESRCH),
            Err(e) => {
                let _ = self.host.send(&cuse::reply_error(self.unique, libc::EIO));
                Err(e)
            }
        }
    }
}

/// The errno a reply may carry: the kernel takes 1..=511 only (it refuses the reply otherwise,
/// and the caller would wait forever). The driver's `ENOTSUPP` (524, a kernel-internal code it
/// returns for commands it does not know) becomes `EOPNOTSUPP`, anything else out of range `EIO`.
pub(super) fn reply_errno(e: c_int) -> c_int {
    match e {
        1..=511 => e,
        524 => libc::EOPNOTSUPP,
        _ => libc::EIO,
    }
}

impl<H: Host> Caller for CuseCaller<'_, H> {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        if self.tid <= 0 {
            return Err(libc::ESRCH);
        }
        self.host.read(self.tid, addr, out)
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int> {
        if self.tid <= 0 {
            return Err(libc::ESRCH);
        }
        self.host.write(self.tid, addr, data)
    }

    fn identity(&self) -> Option<Identity> {
        Some(self.host.identity(self.tid))
    }

    fn deliver(&self, answer: Answer) -> Result<(), c_int> {
        self.reply(answer)
    }
}

/// Handles one request read from the channel; answers it unless it is an interrupt.
pub(super) fn handle(cfg: &Config, host: &impl Host, h: &InHeader, op: Op) {
    let tid = libc::pid_t::try_from(h.pid).unwrap_or(0);
    let reply = match op {
        Op::Ioctl { flags, cmd, arg } => return ioctl(cfg, host, h, flags, cmd, arg),
        // The kernel holds the caller until its own request is answered; nothing to do.
        Op::Interrupt => return,
        Op::Open { .. } => match host.may_open(tid).and_then(|()| host.driver().map(drop)) {
            Ok(()) => cuse::reply_open(h.unique, 0),
            Err(e) => cuse::reply_error(h.unique, e),
        },
        Op::Release => cuse::reply_empty(h.unique),
        // The driver has no read or write: the VFS answers EINVAL for it.
        Op::Other(cuse::FUSE_READ | cuse::FUSE_WRITE) => cuse::reply_error(h.unique, libc::EINVAL),
        // The driver's poll reports a controller event (readable) once; the daemon polls the
        // driver's node for the callers and wakes their polls (ENOSYS would make the kernel
        // answer "readable" to every later poll).
        Op::Poll { kh, flags } => {
            let notify = flags & cuse::FUSE_POLL_SCHEDULE_NOTIFY != 0;
            let ready = (libc::POLLIN | libc::POLLRDNORM) as u32;
            cuse::reply_poll(
                h.unique,
                if host.poll_event(kh, notify) {
                    ready
                } else {
                    0
                },
            )
        }
        Op::Other(_) | Op::Init { .. } => cuse::reply_error(h.unique, libc::ENOSYS),
    };
    let _ = host.send(&reply);
}

pub(super) fn ioctl(cfg: &Config, host: &impl Host, h: &InHeader, flags: u32, cmd: u32, arg: u64) {
    let abi = if flags & cuse::FUSE_IOCTL_COMPAT != 0 {
        Abi::Ilp32
    } else {
        Abi::Lp64
    };
    // The driver's own dispatch: the native entry knows FIRMWARE and GET_AEN, the compat entry
    // FIRMWARE32 and GET_AEN (and an x32 caller neither); anything else is ENOTTY and never
    // reaches the firmware.
    let req = Request::new(Guard::Hostd, abi, cmd, arg)
        .filter(|_| flags & cuse::FUSE_IOCTL_COMPAT_X32 == 0);
    let Some(req) = req else {
        let _ = host.send(&cuse::reply_error(h.unique, libc::ENOTTY));
        return;
    };
    let caller = CuseCaller {
        host,
        tid: libc::pid_t::try_from(h.pid).unwrap_or(0),
        unique: h.unique,
        replied: Cell::new(false),
    };
    guard_ioctl(cfg, host, &caller, req);
    if !caller.replied.get() {
        // Not answered (its copy-back found the caller gone): the request still gets its one
        // reply.
        let _ = caller.reply(Answer::Errno(Errno::EIO));
    }
}

pub(super) fn guard_ioctl<H: Host>(
    cfg: &Config,
    host: &H,
    caller: &CuseCaller<'_, H>,
    req: Request,
) {
    if req.is_get_aen() {
        copied::refuse(cfg, req, caller, GuardIssue::AenUnsupported);
        return;
    }
    if caller.tid <= 0 {
        // A caller outside this daemon's pid namespace: its memory cannot be named.
        copied::refuse(cfg, req, caller, GuardIssue::CallerGone);
        return;
    }
    match host.driver() {
        Ok(mut driver) => {
            copied::run(cfg, req, caller, &mut driver);
        }
        Err(_) => {
            copied::refuse(cfg, req, caller, GuardIssue::NoNextIoctl);
        }
    }
}
