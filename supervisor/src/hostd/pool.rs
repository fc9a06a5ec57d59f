//! The worker pool: each ioctl on a thread that is free, or a new one.

use std::io;
use std::sync::Mutex;

use mfiguard_core::config::Config;

use super::dispatch::handle;
use super::live::Live;
use crate::cuse::{InHeader, Op};

/// The most workers there may be: past this many firmware commands at once, an ioctl waits in
/// the daemon for a worker (where its caller cannot be interrupted) rather than a thread more.
pub const WORKERS_MAX: usize = 64;

pub(super) fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
}

/// The workers that run ioctls. A request the daemon has read holds its caller in an
/// uninterruptible wait until the reply, so an ioctl must not wait for a worker: each goes to
/// a waiting worker, or to a new one, up to [`WORKERS_MAX`]. Workers stay once started.
pub(super) struct Pool {
    cfg: &'static Config,
    host: &'static Live<'static>,
    state: Mutex<PoolState>,
    ready: std::sync::Condvar,
    max: usize,
}

#[derive(Default)]
pub(super) struct PoolState {
    jobs: std::collections::VecDeque<(InHeader, Op)>,
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
    pub(super) fn submit(&'static self, job: (InHeader, Op)) {
        let grow = {
            let mut st = self.lock();
            st.jobs.push_back(job);
            // More jobs than waiting workers (a woken worker counts as waiting until it runs).
            st.jobs.len() > st.waiting && st.threads < self.max
        };
        if grow && self.spawn_worker().is_err() {
            log::warn!("cannot start another worker: the call waits for one");
        }
        self.ready.notify_one();
    }

    pub(super) fn work(&self) {
        loop {
            let (h, op) = {
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
            handle(self.cfg, self.host, &h, op);
        }
    }
}
