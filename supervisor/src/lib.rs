//! `mfiguard-run`'s supervisor: guards every MegaRAID management call of a tool and of all its
//! descendants from outside them, whatever their linkage (static binaries such as storcli64,
//! raw `syscall`, `int 0x80`, Python `ctypes`, children started with a clean environment).
//!
//! The tool is started under a seccomp filter (inherited across `fork` and `exec`, it cannot be
//! removed) that sends only `ioctl` with a MegaRAID request code to this process, through a
//! user-notification listener ([`filter`]). Each such call is executed here, on private copies,
//! by the same guarded path as the library's (`mfiguard_core::guarded`): the same
//! configuration, rules, modes and audit records, with `"guard":"supervisor"` and the tool's
//! pid and executable. Nothing the tool can change is read after the decision.
//!
//! Fail closed: if the supervisor dies, the kernel fails the tool's later MegaRAID calls with
//! `ENOSYS`; an internal error answers `EIO` with a record; a command never runs twice for one
//! call (see `serve`).
//!
//! Needs Linux 5.0 (user notification), 5.6 (`pidfd_getfd`), and uses
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (5.19) where the kernel has it. Where user
//! notification is missing (RHEL 7 and 8), [`run_ptrace`] guards the same way as a tracer
//! ([`ptrace`]: seccomp filters 3.5, `PTRACE_SEIZE` 3.4, `PTRACE_O_EXITKILL` 3.8,
//! `process_vm_readv` 3.2); [`probe_notify`] and [`choose`] decide between them.

#![deny(unsafe_code)]
#![deny(clippy::print_stdout)]

#[cfg(target_arch = "x86_64")]
pub mod cuse;
#[cfg(target_arch = "x86_64")]
pub mod ebpf;
#[cfg(target_arch = "x86_64")]
pub mod filter;
#[cfg(target_arch = "x86_64")]
pub mod hostd;
#[cfg(target_arch = "x86_64")]
mod proc;
#[cfg(target_arch = "x86_64")]
pub mod ptrace;
#[cfg(target_arch = "x86_64")]
mod ptrace_spawn;
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

    use mfiguard_core::audit::Guard;
    use mfiguard_core::config::Config;

    pub use crate::spawn::{Command, SpawnError};
    pub use crate::sys::Exit;
    use crate::{filter, ptrace, ptrace_spawn, serve, spawn, sys};

    /// `--via auto`'s choice of the guard from outside from [`probe_notify`]'s result: the
    /// supervisor (seccomp user notification, [`run`]) where it can be installed, its ptrace
    /// fallback ([`run_ptrace`]) otherwise (no such action, a kernel that refuses the install,
    /// or `EBUSY`: the tool's tree is already under another listener).
    pub fn choose(notify: Result<(), c_int>) -> Guard {
        match notify {
            Ok(()) => Guard::Supervisor,
            Err(_) => Guard::Ptrace,
        }
    }

    /// Whether seccomp user notification works here: `SECCOMP_GET_ACTION_AVAIL` for
    /// `SECCOMP_RET_USER_NOTIF`, then a real install of the filter with a listener in a forked
    /// child (a kernel may know the action and still refuse, and distributions backport). The
    /// errno of the first refusal. Costs one fork.
    pub fn probe_notify() -> Result<(), c_int> {
        sys::action_available(filter::RET_USER_NOTIF)?;
        sys::try_install_in_child(
            &filter::build(filter::Handler::UserNotif),
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
        )
    }

    /// Whether the ptrace fallback's filter can be installed here (a real install in a forked
    /// child; `SECCOMP_GET_ACTION_AVAIL` is itself 4.14). Whether this process may trace its
    /// children (Yama `ptrace_scope` 3, an LSM) shows only when the tool starts
    /// (`SpawnError::Setup(EPERM)`).
    pub fn probe_ptrace() -> Result<(), c_int> {
        sys::try_install_in_child(&filter::build(filter::Handler::Trace), 0)
    }

    /// Runs `cmd` under the ptrace fallback until it ends; its exit. The tool is traced by
    /// the calling thread (which must not be traced by it in turn, and must be the only one
    /// to wait for children meanwhile); the forwarded signals are blocked in it and passed on
    /// to the tool by a helper thread. Makes this process non-dumpable.
    pub fn run_ptrace(cfg: &Config, cmd: &Command) -> Result<Exit, SpawnError> {
        run_ptrace_with(cfg, cmd, true)
    }

    /// [`run_ptrace`]; `use_pidfd` false takes the tool's descriptors through `/proc` as on
    /// kernels before 5.6 (tests).
    pub fn run_ptrace_with(
        cfg: &Config,
        cmd: &Command,
        use_pidfd: bool,
    ) -> Result<Exit, SpawnError> {
        sys::set_not_dumpable();
        let set = sys::with_job_control(&sys::forwarded_signals());
        // SIGPIPE blocked too, not waited for (see `run`).
        let mut blocked = set;
        sys::add_signal(&mut blocked, libc::SIGPIPE);
        let old = sys::block(&blocked);
        let prog = filter::build(filter::Handler::Trace);
        let pid = ptrace_spawn::spawn_traced(cmd, &prog, &old)?;
        log::debug!("tracing pid {pid}");
        Ok(ptrace::Tracer::new(cfg, pid, use_pidfd).run(&set))
    }

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
        // SIGPIPE blocked too (in this thread only; the tool gets the old mask): a record
        // written to a stderr nobody reads any more must fail with EPIPE, not kill the
        // supervisor and with it every later MegaRAID call of the tool.
        let mut blocked = set;
        sys::add_signal(&mut blocked, libc::SIGPIPE);
        let old = sys::block(&blocked);
        let signals = sys::signalfd(&set).map_err(SpawnError::Setup)?;
        let prog = filter::build(filter::Handler::UserNotif);
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
        /// The ptrace filter and a tracer that only resumes every stop (the call then runs
        /// as it is): the bare cost of a seccomp trace stop's round trip.
        BareTracer,
    }

    /// Runs `cmd` under a [`Baseline`] instead of the supervisor (benchmarks only).
    pub fn run_baseline(cmd: &Command, baseline: Baseline) -> Result<Exit, SpawnError> {
        let old = sys::block(&sys::forwarded_signals());
        if baseline == Baseline::BareTracer {
            let prog = filter::build(filter::Handler::Trace);
            let pid = ptrace_spawn::spawn_traced(cmd, &prog, &old)?;
            return Ok(ptrace::bare_tracer(pid));
        }
        let prog = match baseline {
            Baseline::BareResponder | Baseline::BareTracer => {
                filter::build(filter::Handler::UserNotif)
            }
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

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn auto_chooses_ptrace_where_user_notification_is_missing() {
            assert_eq!(choose(Ok(())), Guard::Supervisor);
            // No such action (before 5.0), no SECCOMP_GET_ACTION_AVAIL (before 4.14), another
            // listener already there.
            for e in [libc::EOPNOTSUPP, libc::EINVAL, libc::EBUSY, libc::ENOSYS] {
                assert_eq!(choose(Err(e)), Guard::Ptrace);
            }
        }

        #[test]
        fn this_kernel_has_both() {
            // The project's machines run Linux >= 6.1: both probes must succeed here (a
            // failure means a probe is wrong, not the kernel).
            assert_eq!(probe_notify(), Ok(()));
            assert_eq!(probe_ptrace(), Ok(()));
            assert_eq!(choose(probe_notify()), Guard::Supervisor);
        }
    }
}
