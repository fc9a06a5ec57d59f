//! `mfiguard-run`'s supervisor: guards every MegaRAID management call of a tool and of all its
//! descendants from outside them, whatever their linkage (static binaries such as storcli64,
//! raw `syscall`, `int 0x80`, Python `ctypes`, children started with a clean environment).
//!
//! The tool is started under a seccomp filter (inherited across `fork` and `exec`, it cannot be
//! removed) that sends only `ioctl` with a MegaRAID request code to this process, through a
//! user-notification listener ([`filter`]). Each such call is executed here, on private copies,
//! by the same guarded path as the library's (`mfiguard_core::emulate`): the same
//! configuration, rules, modes and audit records, with `"guard":"supervisor"` and the tool's
//! pid and executable. Nothing the tool can change is read after the decision.
//!
//! Fail closed: if the supervisor dies, the kernel fails the tool's later MegaRAID calls with
//! `ENOSYS`; an internal error answers `EIO` with a record; a command never runs twice for one
//! call (see `serve`).
//!
//! Needs Linux 5.0 (user notification), 5.6 (`pidfd_getfd`), and uses
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (5.19) where the kernel has it.

#![deny(unsafe_code)]
#![deny(clippy::print_stdout)]

#[cfg(target_arch = "x86_64")]
pub mod filter;
#[cfg(target_arch = "x86_64")]
mod serve;
#[cfg(target_arch = "x86_64")]
mod spawn;
#[cfg(target_arch = "x86_64")]
mod sys;

#[cfg(target_arch = "x86_64")]
pub use imp::*;

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::ffi::c_int;

    use mfiguard_core::config::Config;

    pub use crate::spawn::{Command, SpawnError};
    pub use crate::sys::Exit;
    use crate::{filter, serve, spawn, sys};

    /// How to supervise.
    #[derive(Clone, Copy, Debug)]
    pub struct Options {
        /// Ask for `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (used when the kernel has it).
        pub killable_wait: bool,
    }

    impl Default for Options {
        fn default() -> Self {
            Options {
                killable_wait: true,
            }
        }
    }

    /// Whether this kernel offers seccomp user notification (`SECCOMP_GET_ACTION_AVAIL`); a
    /// real install in the child decides in the end (`SpawnError::Filter`).
    pub fn probe() -> Result<(), c_int> {
        sys::action_available(filter::RET_USER_NOTIF)
    }

    /// Runs `cmd` under the supervisor until it ends; its exit. Blocks the forwarded signals
    /// in the calling thread (they are passed on to the tool) and makes this process
    /// non-dumpable (so that the tool cannot take the listener).
    pub fn run(cfg: &Config, cmd: &Command, opts: Options) -> Result<Exit, SpawnError> {
        sys::set_not_dumpable();
        let set = sys::forwarded_signals();
        let old = sys::block(&set);
        let signals = sys::signalfd(&set).map_err(SpawnError::Setup)?;
        let prog = filter::build(filter::Action::Notify);
        let started = spawn::spawn(cmd, &prog, opts.killable_wait, &old)?;
        log::debug!(
            "supervising pid {} (killable wait: {})",
            started.pid,
            started.killable
        );
        let mut sup = serve::Supervisor::new(cfg, started.listener, started.killable);
        Ok(sup.run(started.pid, &signals))
    }

    /// What the benchmark compares the supervisor with (`benches/supervisor.rs`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Baseline {
        /// The same filter and a responder that answers every MegaRAID call with `ENOTTY` at
        /// once: the bare cost of a user notification's round trip.
        BareResponder,
        /// A filter that allows everything, installed the same way: the kernel's seccomp entry
        /// alone, for unrelated system calls.
        AllowAll,
    }

    /// Runs `cmd` under a [`Baseline`] instead of the supervisor (benchmarks only).
    pub fn run_baseline(cmd: &Command, baseline: Baseline) -> Result<Exit, SpawnError> {
        let old = sys::block(&sys::forwarded_signals());
        let prog = match baseline {
            Baseline::BareResponder => filter::build(filter::Action::Notify),
            Baseline::AllowAll => vec![libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: filter::RET_ALLOW,
            }],
        };
        let started = spawn::spawn(cmd, &prog, true, &old)?;
        Ok(serve::bare_responder(&started.listener, started.pid))
    }

    /// Ends this process as the tool ended: its exit code, or its signal re-raised.
    pub fn exit_like(exit: Exit) -> ! {
        match exit {
            Exit::Code(c) => std::process::exit(c),
            Exit::Signal(s) => sys::exit_like_signal(s),
        }
    }
}
