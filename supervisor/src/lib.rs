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
mod files;
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
    use std::os::fd::AsFd;

    use mfiguard_core::audit::Guard;
    use mfiguard_core::config::Config;
    use mfiguard_core::device::Known;

    pub use crate::filter::already_guarded;
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

    /// Runs `cmd` under the ptrace fallback until its first process ends; that exit. The tool
    /// is traced by a process forked from this one (which must be single-threaded), which goes
    /// on tracing the tool's descendants after this function returned; the forwarded signals
    /// are blocked here and passed on to the tool. Makes this process non-dumpable.
    pub fn run_ptrace(cfg: &Config, cmd: &Command) -> Result<Exit, SpawnError> {
        run_ptrace_with(cfg, cmd, true)
    }

    /// [`run_ptrace`]; `use_pidfd` false takes the tool's descriptors through `/proc` as on
    /// kernels before 5.6 (tests).
    ///
    /// The tracer is a process of its own, forked from this one before the tool: a tracee cannot
    /// be handed to another tracer, and the guard must live as long as its tracees while the
    /// wrapper returns when the first process ends. This process (the one the shell, cron or
    /// sudo waits for) passes the forwarded signals on to the tool and returns the first
    /// process's exit as the tracer reports it; the tracer traces until no tracee is left (with
    /// stdin and stdout on `/dev/null` once the tool has them), then exits. If the tracer dies,
    /// its tracees die with it (`PTRACE_O_EXITKILL`) and this process ends with exit 125.
    pub fn run_ptrace_with(
        cfg: &Config,
        cmd: &Command,
        use_pidfd: bool,
    ) -> Result<Exit, SpawnError> {
        sys::set_not_dumpable();
        sys::map_large_buffers();
        let set = sys::with_job_control(&sys::forwarded_signals());
        // SIGPIPE blocked too, not waited for (see `run`).
        let mut blocked = set;
        sys::add_signal(&mut blocked, libc::SIGPIPE);
        let old = sys::block(&blocked);
        let signals = sys::signalfd(&set).map_err(SpawnError::Setup)?;
        let prog = filter::build(filter::Handler::Trace);
        let driver = Known::before_start();
        let (from_tracer, to_wrapper) = sys::pipe().map_err(SpawnError::Setup)?;
        let wrapper = std::process::id() as libc::pid_t;
        match sys::fork_single_threaded().map_err(SpawnError::Setup)? {
            0 => {
                drop(from_tracer);
                drop(signals);
                let mut report = std::fs::File::from(to_wrapper);
                let code = tracer_process(
                    cfg,
                    cmd,
                    &prog,
                    &old,
                    use_pidfd,
                    driver,
                    wrapper,
                    &mut report,
                );
                std::process::exit(code)
            }
            _tracer => {
                drop(to_wrapper);
                wrapper_process(std::fs::File::from(from_tracer), &signals)
            }
        }
    }

    /// One message from the tracer to the wrapper: a kind and two numbers.
    type Message = [i32; 3];
    const STARTED: i32 = 1;
    const SPAWN_FAILED: i32 = 2;
    const EXITED: i32 = 3;
    const KILLED: i32 = 4;

    fn send(to: &mut std::fs::File, m: Message) {
        use std::io::Write;
        let mut bytes = [0u8; 12];
        for (chunk, v) in bytes.chunks_exact_mut(4).zip(m) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        let _ = to.write_all(&bytes);
    }

    fn receive(from: &mut std::fs::File) -> Option<Message> {
        use std::io::Read;
        let mut bytes = [0u8; 12];
        from.read_exact(&mut bytes).ok()?;
        let mut m = [0i32; 3];
        for (v, chunk) in m.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = i32::from_ne_bytes(chunk.try_into().ok()?);
        }
        Some(m)
    }

    /// The tracer's life: start the tool, report it, trace until no tracee is left; its exit
    /// code.
    #[allow(clippy::too_many_arguments)] // what the fork hands over
    fn tracer_process(
        cfg: &Config,
        cmd: &Command,
        prog: &[libc::sock_filter],
        old: &libc::sigset_t,
        use_pidfd: bool,
        driver: Known,
        wrapper: libc::pid_t,
        report: &mut std::fs::File,
    ) -> i32 {
        let pid = match ptrace_spawn::spawn_traced(cmd, prog, old) {
            Ok(pid) => pid,
            Err(e) => {
                let (kind, errno) = match e {
                    SpawnError::Setup(e) => (0, e),
                    SpawnError::Filter(e) => (1, e),
                    SpawnError::Exec(e) => (2, e),
                };
                send(report, [SPAWN_FAILED, kind, errno]);
                return 125;
            }
        };
        send(report, [STARTED, pid, 0]);
        log::debug!("tracing pid {pid}");
        // The tool has its stdin and stdout: a `$(...)` must end when the tool's processes
        // close theirs, not when the tracer does.
        sys::release_stdio();
        let mut first_ended = |exit: Exit| {
            let m = match exit {
                Exit::Code(c) => [EXITED, c, 0],
                Exit::Signal(s) => [KILLED, s, 0],
            };
            send(report, m);
        };
        ptrace::Tracer::new(cfg, pid, use_pidfd, driver).run(&mut first_ended, wrapper);
        0
    }

    /// The wrapper's side: pass the forwarded signals on to the tool until the tracer reports
    /// how its first process ended.
    fn wrapper_process(
        mut from: std::fs::File,
        signals: &std::os::fd::OwnedFd,
    ) -> Result<Exit, SpawnError> {
        let tool = match receive(&mut from) {
            Some([STARTED, pid, _]) => pid,
            Some([SPAWN_FAILED, kind, errno]) => {
                return Err(match kind {
                    0 => SpawnError::Setup(errno),
                    1 => SpawnError::Filter(errno),
                    _ => SpawnError::Exec(errno),
                })
            }
            _ => return Err(SpawnError::Setup(libc::EPROTO)),
        };
        // A pidfd, so that a signal never reaches another process that got the tool's pid.
        let tool_fd = sys::pidfd_open(tool, 0).ok();
        loop {
            let revents = match sys::poll(&[from.as_fd(), signals.as_fd()]) {
                Ok(r) => r,
                Err(_) => return Ok(Exit::Code(125)),
            };
            if revents[1] & libc::POLLIN != 0 {
                while let Some(info) = sys::read_signal(signals.as_fd()) {
                    // A signal from the terminal reached the tool too (its process group).
                    if info.ssi_code != libc::SI_KERNEL {
                        match &tool_fd {
                            Some(fd) => sys::pidfd_send_signal(fd.as_fd(), info.ssi_signo as c_int),
                            None => sys::kill(tool, info.ssi_signo as c_int),
                        }
                    }
                }
            }
            if revents[0] & (libc::POLLIN | libc::POLLHUP) != 0 {
                return Ok(match receive(&mut from) {
                    Some([EXITED, code, _]) => Exit::Code(code),
                    Some([KILLED, sig, _]) => Exit::Signal(sig),
                    // The tracer died: its tracees died with it (EXITKILL).
                    _ => Exit::Code(125),
                });
            }
        }
    }

    /// How to supervise.
    #[derive(Clone, Copy, Debug)]
    pub struct Options {
        /// Ask for `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (used when the kernel has it).
        pub killable_wait: bool,
        /// Ask for `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6; used when the kernel has
        /// it).
        pub sync_wake_up: bool,
    }

    impl Default for Options {
        fn default() -> Self {
            Options {
                killable_wait: true,
                sync_wake_up: true,
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
        sys::map_large_buffers();
        let set = sys::forwarded_signals();
        // SIGPIPE blocked too (in this thread only; the tool gets the old mask): a record
        // written to a stderr nobody reads any more must fail with EPIPE, not kill the
        // supervisor and with it every later MegaRAID call of the tool.
        let mut blocked = set;
        sys::add_signal(&mut blocked, libc::SIGPIPE);
        let old = sys::block(&blocked);
        let signals = sys::signalfd(&set).map_err(SpawnError::Setup)?;
        let prog = filter::build(filter::Handler::UserNotif);
        // Before the tool starts: nothing it does afterwards changes what the driver is.
        let driver = Known::before_start();
        let started = spawn::spawn(cmd, &prog, opts.killable_wait, &old)?;
        let sync = opts.sync_wake_up && sys::notif_sync_wake_up(started.listener.as_fd()).is_ok();
        log::debug!(
            "supervising pid {} (killable wait: {}, synchronous wake-up: {sync})",
            started.pid,
            started.killable
        );
        let mut sup = serve::Supervisor::new(cfg, started.listener, started.killable, driver);
        Ok(sup.run(started.pid, &signals, &set))
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

    /// Runs `cmd` under a [`Baseline`] instead of the supervisor (benchmarks only), with the
    /// supervisor's synchronous wake-up when `opts` ask for it.
    pub fn run_baseline(
        cmd: &Command,
        baseline: Baseline,
        opts: Options,
    ) -> Result<Exit, SpawnError> {
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
        if opts.sync_wake_up {
            let _ = sys::notif_sync_wake_up(started.listener.as_fd());
        }
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
