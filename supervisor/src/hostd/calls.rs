//! The ioctls in the daemon's hands, and the deadline that keeps a stuck one from stopping the
//! guard.
//!
//! The driver waits for every firmware command without a time limit
//! (`megasas_issue_blocked_cmd(instance, cmd, 0)`: `wait_event`, uninterruptible), and a FUSE
//! request the daemon has read holds its caller uninterruptibly until the reply. A command the
//! firmware never completes (an event wait, a hung controller) would hold a worker and its
//! caller for ever. So each call is tracked from the moment it is read:
//!
//! - a call in the driver for longer than [`SLOW`] no longer counts against the pool's
//!   [`WORKERS_MAX`](super::pool::WORKERS_MAX): the next call gets a new worker, so slow
//!   commands cannot exhaust the pool;
//! - a call not answered within the command timeout (`--command-timeout`) is answered
//!   `ETIMEDOUT` by the watchdog, and its caller is free again. Its worker stays in the driver
//!   (nothing can take a command back from the firmware); when the driver returns, its results
//!   are dropped, never written into a caller that has moved on, and the outcome record says
//!   the command ran and was not delivered. A worker still waiting for one of the driver's
//!   command slots (`down_interruptible(&instance->ioctl_sem)`, before the command is built) is
//!   interrupted by a signal and freed: its command never reached the firmware.
//!
//! The state of a call moves one way, each step a compare-and-swap, so that exactly one of the
//! worker and the watchdog answers it, and the caller's memory is never touched after the
//! watchdog answered: `Queued` (read, waiting for a worker) -> `Deciding` (a worker copies and
//! decides) -> `InDriver` -> `Returned` (copying back) -> `Replied`; or `Queued`/`InDriver` ->
//! `Abandoned` (the watchdog answered).

use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a call may be in the driver before it stops counting against the pool.
pub const SLOW: Duration = Duration::from_secs(1);

/// The command timeout by default: longer than a management command takes (a firmware flash
/// takes minutes), far shorter than forever.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// How many commands may be held by the driver past their timeout before new ones are refused
/// (`EBUSY`, `guard.stuck`) rather than sent to join them. The driver itself lets only a few
/// commands of a controller into the firmware at once (27 on MFI controllers, 5 on skinny
/// ones, 3 on Fusion ones: `ioctl_sem`); the rest wait interruptibly and are freed.
pub const HELD_MAX: usize = 64;

/// Where a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// Read from the channel, waiting for a worker.
    Queued = 0,
    /// A worker copies the caller's packet and decides.
    Deciding = 1,
    /// The driver has it.
    InDriver = 2,
    /// The driver returned: its results are being copied back.
    Returned = 3,
    /// Answered by the watchdog: nothing may touch the caller any more.
    Abandoned = 4,
    /// Answered by its worker.
    Replied = 5,
}

impl Stage {
    const fn of(v: u8) -> Stage {
        match v {
            0 => Stage::Queued,
            1 => Stage::Deciding,
            2 => Stage::InDriver,
            3 => Stage::Returned,
            4 => Stage::Abandoned,
            _ => Stage::Replied,
        }
    }
}

/// One call in the daemon's hands.
#[derive(Debug)]
pub struct Flight {
    /// The request's id.
    pub unique: u64,
    /// The calling thread.
    pub tid: libc::pid_t,
    stage: AtomicU8,
    /// Milliseconds from the registry's start to the call's read.
    read_ms: u64,
    /// Milliseconds from the registry's start to the driver's call (0: not yet).
    driver_ms: AtomicU64,
    /// The worker thread that has it (0: none yet).
    worker: AtomicI32,
}

impl Flight {
    /// Where it is.
    pub fn stage(&self) -> Stage {
        Stage::of(self.stage.load(Ordering::Acquire))
    }

    fn step(&self, from: Stage, to: Stage) -> bool {
        self.stage
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// A worker takes the call (false: the watchdog answered it while it was queued).
    pub fn take(&self, worker: libc::pid_t) -> bool {
        self.worker.store(worker, Ordering::Release);
        self.step(Stage::Queued, Stage::Deciding)
    }

    /// The call goes to the driver now.
    pub fn to_driver(&self, since: Instant) {
        self.driver_ms.store(ms(since).max(1), Ordering::Release);
        self.step(Stage::Deciding, Stage::InDriver);
    }

    /// The driver returned; false when the watchdog answered the call meanwhile (its results
    /// are then dropped).
    pub fn back(&self) -> bool {
        self.step(Stage::InDriver, Stage::Returned) || self.stage() != Stage::Abandoned
    }

    /// Whether the caller may still be read and written.
    pub fn reachable(&self) -> bool {
        matches!(
            self.stage(),
            Stage::Queued | Stage::Deciding | Stage::Returned
        )
    }

    /// Marks the call answered by its worker; false when it already was (by the watchdog).
    pub fn reply(&self) -> bool {
        [Stage::Deciding, Stage::Returned, Stage::Queued]
            .into_iter()
            .any(|from| self.step(from, Stage::Replied))
    }
}

/// Milliseconds since `since`.
fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A call the watchdog answered.
#[derive(Debug)]
pub struct Expired {
    /// The call.
    pub flight: Arc<Flight>,
    /// How long its caller had waited.
    pub waited: Duration,
    /// Whether the driver had it (else it was still queued).
    pub in_driver: bool,
}

/// The calls in the daemon's hands.
#[derive(Debug)]
pub struct Calls {
    start: Instant,
    list: Mutex<Vec<Arc<Flight>>>,
    /// `None`: calls are never answered before the driver returns.
    pub timeout: Option<Duration>,
}

impl Calls {
    /// An empty registry; calls answered `ETIMEDOUT` after `timeout`.
    pub fn new(timeout: Option<Duration>) -> Calls {
        Calls {
            start: Instant::now(),
            list: Mutex::new(Vec::new()),
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Flight>>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call read from the channel.
    pub fn read(&self, unique: u64, tid: libc::pid_t) -> Arc<Flight> {
        let f = Arc::new(Flight {
            unique,
            tid,
            stage: AtomicU8::new(Stage::Queued as u8),
            read_ms: ms(self.start),
            driver_ms: AtomicU64::new(0),
            worker: AtomicI32::new(0),
        });
        self.lock().push(Arc::clone(&f));
        f
    }

    /// The call is over for its worker.
    pub fn done(&self, f: &Arc<Flight>) {
        self.lock().retain(|g| !Arc::ptr_eq(g, f));
    }

    /// The moment the registry started (calls' times count from it).
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Calls in the driver for longer than [`SLOW`], or still being decided that long after
    /// they were read (a caller whose memory cannot be read: a FUSE mapping whose server does
    /// not answer): their workers do not count against the pool.
    pub fn slow(&self) -> usize {
        let now = ms(self.start);
        let slow = u64::try_from(SLOW.as_millis()).unwrap_or(u64::MAX);
        self.lock()
            .iter()
            .filter(|f| match f.stage() {
                Stage::InDriver | Stage::Abandoned => {
                    let at = f.driver_ms.load(Ordering::Acquire);
                    at != 0 && now.saturating_sub(at) >= slow
                }
                Stage::Deciding => now.saturating_sub(f.read_ms) >= slow,
                _ => false,
            })
            .count()
    }

    /// Calls answered by the watchdog whose command the driver still holds.
    pub fn held(&self) -> usize {
        self.lock()
            .iter()
            .filter(|f| f.stage() == Stage::Abandoned && f.driver_ms.load(Ordering::Acquire) != 0)
            .count()
    }

    /// Answers (marks abandoned) every call its caller has waited for longer than the timeout,
    /// queued or in the driver; the caller of each is to be answered `ETIMEDOUT` now. A call
    /// still queued leaves the registry: no worker will run it.
    pub fn expire(&self) -> Vec<Expired> {
        let Some(timeout) = self.timeout else {
            return Vec::new();
        };
        let now = ms(self.start);
        let limit = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut list = self.lock();
        let mut out = Vec::new();
        list.retain(|f| {
            let waited = now.saturating_sub(f.read_ms);
            if waited < limit {
                return true;
            }
            let queued = f.step(Stage::Queued, Stage::Abandoned);
            let in_driver = !queued && f.step(Stage::InDriver, Stage::Abandoned);
            if queued || in_driver {
                out.push(Expired {
                    flight: Arc::clone(f),
                    waited: Duration::from_millis(waited),
                    in_driver,
                });
            }
            !queued
        });
        out
    }

    /// The worker thread of a call (0: none).
    pub fn worker(f: &Flight) -> libc::pid_t {
        f.worker.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_of_the_worker_and_the_watchdog_answers() {
        // The watchdog first: the worker finds the call answered and leaves the caller alone.
        let calls = Calls::new(Some(Duration::ZERO));
        let f = calls.read(7, 100);
        assert!(f.take(200));
        f.to_driver(calls.start());
        assert_eq!(f.stage(), Stage::InDriver);
        let e = calls.expire();
        assert_eq!(e.len(), 1);
        assert!(e[0].in_driver && e[0].flight.unique == 7);
        assert_eq!(Calls::worker(&f), 200);
        assert!(!f.back(), "the driver returned after the watchdog answered");
        assert!(!f.reachable());
        assert!(!f.reply());
        assert_eq!(calls.held(), 1, "its worker is still in the driver");
        calls.done(&f);
        assert_eq!(calls.held(), 0);
        // The worker first: the watchdog finds nothing to answer.
        let f = calls.read(8, 100);
        assert!(f.take(200));
        f.to_driver(calls.start());
        assert!(f.back());
        assert!(f.reachable());
        assert!(calls.expire().is_empty());
        assert!(f.reply());
        assert!(!f.reply(), "one reply");
        calls.done(&f);
    }

    #[test]
    fn a_queued_call_past_its_timeout_is_answered_and_never_run() {
        let calls = Calls::new(Some(Duration::ZERO));
        let f = calls.read(9, 100);
        let e = calls.expire();
        assert_eq!(e.len(), 1);
        assert!(!e[0].in_driver);
        assert!(!f.take(300), "the worker skips it");
        assert_eq!(calls.held(), 0);
        // Without a timeout nothing expires.
        let calls = Calls::new(None);
        let f = calls.read(10, 100);
        assert!(f.take(200));
        f.to_driver(calls.start());
        assert!(calls.expire().is_empty());
        assert!(f.back());
    }

    #[test]
    fn a_call_in_the_driver_for_long_stops_counting_against_the_pool() {
        let calls = Calls::new(None);
        let f = calls.read(11, 100);
        assert!(f.take(200));
        assert_eq!(calls.slow(), 0);
        // Entered the driver SLOW ago (the registry's clock counted from then).
        let long_ago = Instant::now()
            .checked_sub(SLOW + Duration::from_millis(50))
            .unwrap();
        let calls_then = Calls {
            start: long_ago,
            list: Mutex::new(vec![Arc::clone(&f)]),
            timeout: None,
        };
        f.driver_ms.store(1, Ordering::Release);
        f.step(Stage::Deciding, Stage::InDriver);
        assert_eq!(calls_then.slow(), 1);
        assert!(f.back());
        assert_eq!(calls_then.slow(), 0);
    }

    /// A call whose worker is still reading its caller SLOW after it was read (memory that
    /// cannot be read: a FUSE mapping whose server does not answer) stops counting too.
    #[test]
    fn a_call_decided_for_long_stops_counting_against_the_pool() {
        let long_ago = Instant::now()
            .checked_sub(SLOW + Duration::from_millis(50))
            .unwrap();
        let calls = Calls {
            start: long_ago,
            list: Mutex::new(Vec::new()),
            timeout: None,
        };
        // Read at the registry's start, SLOW ago.
        let f = Arc::new(Flight {
            unique: 12,
            tid: 100,
            stage: AtomicU8::new(Stage::Queued as u8),
            read_ms: 0,
            driver_ms: AtomicU64::new(0),
            worker: AtomicI32::new(0),
        });
        calls.lock().push(Arc::clone(&f));
        assert_eq!(calls.slow(), 0, "queued: no worker holds it");
        assert!(f.take(200));
        assert_eq!(calls.slow(), 1);
        // A call just read is not slow.
        let g = calls.read(13, 100);
        assert!(g.take(201));
        assert_eq!(calls.slow(), 1);
    }
}
