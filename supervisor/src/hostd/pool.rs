//! The worker pool: each ioctl on a thread that is free, or a new one.

use std::io;
use std::sync::{Arc, Mutex};

use mfiguard_core::config::Config;

use super::calls::{Flight, HELD_MAX};
use super::dispatch::{ioctl, Host};
use super::live::Live;
use crate::cuse::{InHeader, Op};
use crate::sys;

/// The most workers there may be busy at once, not counting those whose command the driver
/// has held for longer than [`SLOW`](super::calls::SLOW): past this many commands at once, an
/// ioctl waits in the daemon for a worker (where its caller cannot be interrupted, until the
/// command timeout) rather than a thread more.
pub const WORKERS_MAX: usize = 64;

/// The most worker threads there may be at all, slow ones included.
pub const THREADS_MAX: usize = WORKERS_MAX + 2 * HELD_MAX;

/// An ioctl read from the channel.
pub(super) type Job = (InHeader, Op, Arc<Flight>);

pub(super) fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
}

/// The workers that run ioctls. A request the daemon has read holds its caller in an
/// uninterruptible wait until the reply, so an ioctl must not wait for a worker: each goes to
/// a waiting worker, or to a new one, up to [`WORKERS_MAX`] busy ones (a worker whose command
/// the driver holds for long does not count: slow commands cannot exhaust the pool). Workers
/// stay once started.
pub(super) struct Pool {
    cfg: &'static Config,
    host: &'static Live<'static>,
    state: Mutex<PoolState>,
    ready: std::sync::Condvar,
    max: usize,
}

#[derive(Default)]
pub(super) struct PoolState {
    jobs: std::collections::VecDeque<Job>,
    /// Workers waiting for a job.
    waiting: usize,
    /// Workers started.
    threads: usize,
}

impl Pool {
    pub(super) fn new(cfg: &'static Config, host: &'static Live<'static>, max: usize) -> Pool {
        Pool {
            cfg,
            host,
            state: Mutex::new(PoolState::default()),
            ready: std::sync::Condvar::new(),
            max,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn spawn_worker(&'static self) -> io::Result<()> {
        self.lock().threads += 1;
        let started = spawn_thread("hostd-worker", move || self.work());
        if started.is_err() {
            self.lock().threads -= 1;
        }
        started
    }

    /// Hands an ioctl to a worker: one waiting, else a new one while there may be more.
    pub(super) fn submit(&'static self, job: Job) {
        let grow = {
            let mut st = self.lock();
            st.jobs.push_back(job);
            // More jobs than waiting workers (a woken worker counts as waiting until it runs),
            // and fewer busy workers than the most, the slow ones not counted.
            let busy = st.threads.saturating_sub(self.host.calls().slow());
            st.jobs.len() > st.waiting && busy < self.max && st.threads < THREADS_MAX
        };
        if grow && self.spawn_worker().is_err() {
            log::warn!("cannot start another worker: the call waits for one");
        }
        self.ready.notify_one();
    }

    pub(super) fn work(&self) {
        let me = sys::gettid();
        loop {
            let (h, op, flight) = {
                let mut st = self.lock();
                loop {
                    if let Some(job) = st.jobs.pop_front() {
                        break job;
                    }
                    st.waiting += 1;
                    st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
                    st.waiting -= 1;
                }
            };
            // A call the watchdog answered while it waited here is not run.
            if flight.take(me) {
                ioctl(self.cfg, self.host, &h, op, &flight);
            }
            self.host.calls().done(&flight);
        }
    }
}
