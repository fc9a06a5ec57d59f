//! Request dispatch: each request read from the channel answered once, an ioctl through the
//! shared guarded path.

use std::ffi::c_int;
use std::time::Instant;

use mfiguard_core::audit::{AenGap, Guard, GuardIssue};
use mfiguard_core::config::Config;
use mfiguard_core::guarded::{
    copied, Answer, Caller, Driver, Identity, PrivateCall, Request, AEN_SIZE,
};
use mfiguard_sanitizer::{Abi, Errno};

use super::calls::{Calls, Flight, Stage, HELD_MAX};
use super::events::{AenFile, Events};
use super::node::record;
use crate::cuse::{self, InHeader, Op};
use crate::sys;

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
    /// [`Host::identity`] from what the kernel holds only, never the caller's memory: for the
    /// watchdog, which must not wait on a caller.
    fn kernel_identity(&self, tid: libc::pid_t) -> Identity {
        self.identity(tid)
    }
    /// Whether thread `tid` may open the node as the driver decides it (`CAP_SYS_ADMIN`).
    fn may_open(&self, tid: libc::pid_t) -> Result<(), c_int>;
    /// The driver's node, opened on first use: `ENXIO` while the driver is not loaded.
    fn driver(&self) -> Result<Self::Driver<'_>, c_int>;
    /// Writes one reply to the channel.
    fn send(&self, reply: &[u8]) -> Result<(), c_int>;
    /// The controller's events: the driver's poll flag relayed, the files registered for its
    /// `SIGIO`.
    fn events(&self) -> &Events;
    /// The caller's open file of the node, for an event registration (`MEGASAS_IOC_GET_AEN`):
    /// taken while thread `tid` waits in the call; why it cannot be carried otherwise.
    fn aen_file(&self, tid: libc::pid_t) -> Result<AenFile, AenGap>;
    /// The calls in the daemon's hands.
    fn calls(&self) -> &Calls;
    /// Interrupts worker thread `worker` if it waits interruptibly in the driver (for a
    /// command slot): its ioctl returns `EINTR`.
    fn interrupt(&self, worker: libc::pid_t);
}

/// The caller of one `FUSE_IOCTL`: its thread, and the reply that answers it.
pub(super) struct CuseCaller<'h, H: Host> {
    host: &'h H,
    tid: libc::pid_t,
    /// Where the call is: the caller is read and written only while it waits for this worker,
    /// never after the watchdog answered it.
    flight: &'h Flight,
}

impl<H: Host> CuseCaller<'_, H> {
    /// Answers the request once; a reply the kernel refuses is replaced by `EIO`.
    fn reply(&self, answer: Answer) -> Result<(), c_int> {
        if !self.flight.reply() {
            return Err(libc::EALREADY);
        }
        let bytes = match answer {
            Answer::Value(v) => cuse::reply_ioctl(self.flight.unique, v),
            Answer::Errno(e) => cuse::reply_error(self.flight.unique, reply_errno(e.0)),
        };
        match self.host.send(&bytes) {
            Ok(()) => Ok(()),
            // The request is gone (its caller was killed before the reply): nothing waits.
            Err(libc::ENOENT) => Err(libc::ESRCH),
            Err(e) => {
                let _ = self
                    .host
                    .send(&cuse::reply_error(self.flight.unique, libc::EIO));
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
        if self.tid <= 0 || !self.flight.reachable() {
            return Err(libc::ESRCH);
        }
        self.host.read(self.tid, addr, out)
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int> {
        if self.tid <= 0 || !self.flight.reachable() {
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
        Op::Ioctl { .. } => {
            let flight = host.calls().read(h.unique, tid);
            if flight.take(sys::gettid()) {
                ioctl(cfg, host, h, op, &flight);
            }
            host.calls().done(&flight);
            return;
        }
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
                if host.events().poll(kh, notify) {
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

/// Guards one ioctl a worker took (`flight`): answered exactly once, by it or by the watchdog.
pub(super) fn ioctl(cfg: &Config, host: &impl Host, h: &InHeader, op: Op, flight: &Flight) {
    let Op::Ioctl { flags, cmd, arg } = op else {
        return;
    };
    let abi = if flags & cuse::FUSE_IOCTL_COMPAT != 0 {
        Abi::Ilp32
    } else {
        Abi::Lp64
    };
    let caller = CuseCaller {
        host,
        tid: libc::pid_t::try_from(h.pid).unwrap_or(0),
        flight,
    };
    // The driver's own dispatch: the native entry knows FIRMWARE and GET_AEN, the compat entry
    // FIRMWARE32 and GET_AEN (and an x32 caller neither); anything else is ENOTTY and never
    // reaches the firmware.
    let req = Request::new(Guard::Hostd, abi, cmd, arg)
        .filter(|_| flags & cuse::FUSE_IOCTL_COMPAT_X32 == 0);
    let Some(req) = req else {
        let _ = caller.reply(Answer::Errno(Errno(libc::ENOTTY)));
        return;
    };
    guard_ioctl(cfg, host, &caller, req);
    // Not answered (its copy-back found the caller gone): the request still gets its one
    // reply, unless the watchdog gave it.
    let _ = caller.reply(Answer::Errno(Errno::EIO));
}

pub(super) fn guard_ioctl<H: Host>(
    cfg: &Config,
    host: &H,
    caller: &CuseCaller<'_, H>,
    req: Request,
) {
    if caller.tid <= 0 {
        // A caller outside this daemon's pid namespace: its memory cannot be named.
        copied::refuse(cfg, req, caller, GuardIssue::CallerGone);
        return;
    }
    if req.is_get_aen() {
        let file = match host.aen_file(caller.tid) {
            Ok(file) => file,
            Err(why) => {
                copied::refuse(cfg, req, caller, GuardIssue::AenUnsupported { why });
                return;
            }
        };
        match host.driver() {
            Ok(driver) => {
                let mut driver = Timed {
                    inner: Registering {
                        inner: driver,
                        file: Some(file),
                        events: host.events(),
                    },
                    flight: caller.flight,
                    start: host.calls().start(),
                };
                copied::run(cfg, req, caller, &mut driver);
            }
            Err(_) => {
                copied::refuse(cfg, req, caller, GuardIssue::NoNextIoctl);
            }
        }
        return;
    }
    if host.calls().held() >= HELD_MAX {
        // The driver holds as many commands past their timeout as it may: another would join
        // them rather than reach the firmware.
        copied::refuse(cfg, req, caller, GuardIssue::Stuck);
        return;
    }
    match host.driver() {
        Ok(driver) => {
            let mut driver = Timed {
                inner: driver,
                flight: caller.flight,
                start: host.calls().start(),
            };
            copied::run(cfg, req, caller, &mut driver);
        }
        Err(_) => {
            copied::refuse(cfg, req, caller, GuardIssue::NoNextIoctl);
        }
    }
}

/// The driver, for one event registration: the caller's file is checked as the driver checks
/// its own (`EINVAL` unless its `fasync` was called: `O_ASYNC`), the registration made on the
/// daemon's descriptor, and the caller's file kept to be sent the driver's `SIGIO`.
struct Registering<'e, D: Driver> {
    inner: D,
    file: Option<AenFile>,
    events: &'e Events,
}

impl<D: Driver> Driver for Registering<'_, D> {
    fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int) {
        self.inner.firmware(call)
    }

    fn get_aen(&mut self, aen: &mut [u8; AEN_SIZE]) -> (c_int, c_int) {
        if !self.file.as_ref().is_some_and(|f| f.asynchronous) {
            return (-1, libc::EINVAL);
        }
        let (ret, errno) = self.inner.get_aen(aen);
        if ret == 0 {
            if let Some(file) = self.file.take() {
                if !self.events.register(file) {
                    // Registered with the firmware, but the daemon has no room to carry its
                    // signal: the caller is told, as the driver's own failure would be.
                    return (-1, libc::ENOMEM);
                }
            }
        }
        (ret, errno)
    }
}

/// The driver, for one call: the call is marked in the driver while it is, so that the
/// watchdog can answer its caller when it takes too long. A call interrupted while it waited
/// for one of the driver's command slots (`EINTR`: it never reached the firmware) is sent
/// again, unless the watchdog answered its caller meanwhile.
struct Timed<'f, D: Driver> {
    inner: D,
    flight: &'f Flight,
    start: Instant,
}

impl<D: Driver> Timed<'_, D> {
    fn call(&mut self, mut f: impl FnMut(&mut D) -> (c_int, c_int)) -> (c_int, c_int) {
        self.flight.to_driver(self.start);
        loop {
            let (ret, errno) = f(&mut self.inner);
            if ret < 0 && errno == libc::EINTR && self.flight.stage() == Stage::InDriver {
                continue;
            }
            // Whether the caller still waits for these results: `Flight::reachable` says so to
            // the copy-back.
            self.flight.back();
            return (ret, errno);
        }
    }
}

impl<D: Driver> Driver for Timed<'_, D> {
    fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int) {
        self.call(|d| d.firmware(call))
    }

    fn get_aen(&mut self, aen: &mut [u8; AEN_SIZE]) -> (c_int, c_int) {
        self.call(|d| d.get_aen(aen))
    }
}

/// The watchdog's round: every call its caller has waited for longer than the command timeout
/// is answered `ETIMEDOUT`, said on stderr and recorded (`hostd.timeout`); a worker that has it
/// is interrupted in case it waits for one of the driver's command slots (it then never sends
/// the command). A command already in the firmware stays there: its worker keeps waiting and
/// drops the results. Returns how many calls it answered.
pub(super) fn expire(cfg: &Config, host: &impl Host) -> usize {
    let expired = host.calls().expire();
    for e in &expired {
        let f = &e.flight;
        let _ = host.send(&cuse::reply_error(f.unique, libc::ETIMEDOUT));
        let worker = Calls::worker(f);
        if e.in_driver && worker > 0 {
            host.interrupt(worker);
        }
        let id = host.kernel_identity(f.tid);
        let where_ = if e.in_driver {
            "the driver still holds the command (a worker waits for it and will drop its results)"
        } else {
            "it never reached the driver"
        };
        let message = format!(
            "a call of pid {} ({}) waited {} s: answered ETIMEDOUT; {where_}",
            id.who.pid,
            id.exe,
            e.waited.as_secs()
        );
        eprintln!("mfiguard-hostd: WARNING: {message}");
        record(cfg, "hostd.timeout", &id.who.pid.to_string(), &message);
    }
    expired.len()
}
