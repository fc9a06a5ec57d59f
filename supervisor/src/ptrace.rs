//! The ptrace fallback: the same guard on kernels without seccomp user notification (RHEL 7's
//! 3.10, RHEL 8's 4.18).
//!
//! The tool runs under the same filter with `SECCOMP_RET_TRACE` ([`crate::filter`]), the
//! arch in `SECCOMP_RET_DATA`, as a tracee of this thread (`PTRACE_SEIZE` with `EXITKILL`,
//! `TRACESECCOMP`, `TRACEFORK`, `TRACEVFORK`, `TRACECLONE`, `TRACEEXEC`: every thread and
//! descendant is traced from its first instruction). Only a MegaRAID `ioctl` stops a tracee;
//! nothing else is traced (no `PTRACE_SYSCALL`), so unrelated system calls pay only the filter.
//!
//! At a seccomp stop the call is executed here exactly as the notification supervisor does:
//! the tool's descriptor is duplicated (`pidfd_getfd`, Linux 5.6; before that `/proc/<tid>/fd/N`
//! is opened again, see [`Tracer::node_fd`]), checked with the library's node test, and the
//! call goes through `mfiguard_core::guarded::copied::run` (records say `"guard":"ptrace"`); a
//! MegaRAID code on any other file is refused (`ENOTTY`, `guard.unrecognised-file`), and the
//! system calls the filter closes (its data `DATA_CONTAINED`) with `EPERM` and a
//! `guard.contained` record. The tool's system call is then skipped
//! (`orig_rax = -1`) and its return value set, in the same stop: seccomp(2) says "If the
//! tracer asks to skip the system call, then the system call will appear to return the value
//! that the tracer puts in the return value register", which holds for x86_64 since seccomp
//! came to it (3.5: `RAX` is set to `-ENOSYS` before the tracer runs and kept for a skipped
//! call). One stop per call instead of two (no `PTRACE_SYSCALL` to an exit stop).
//!
//! A stopped tracee cannot run, and its pid cannot be reused until this thread reaps it, so
//! no `ID_VALID` is needed: what is read from its memory is read while its call is pending.
//! Other threads of the tool still run (the private copies guard against them as before).
//! A call answered here is never restarted: the skipped system call returns our value, so a
//! firmware command runs once per call whatever signals arrive.
//!
//! Signals: a signal-delivery-stop is resumed with its signal (injected); a group-stop
//! (`PTRACE_EVENT_STOP` with a stopping signal) gets `PTRACE_LISTEN`, so the tool stays stopped
//! until `SIGCONT` as without a tracer; other traps are resumed. The tracer is a process of its
//! own (see `run_ptrace_with`): signals sent to `mfiguard-run` are passed on to the tool there;
//! here every forwarded and job-control signal is blocked. A terminal's stop (Ctrl-Z,
//! `SIGTTIN`, `SIGTTOU`) reaches the tool, and once the tool's first process is stopped the
//! tracer stops `mfiguard-run` too: the shell sees the job stopped, and `fg` continues both.
//!
//! When the tool's first process ends, its exit is reported at once (`mfiguard-run` returns
//! it); the descendants still running stay traced and guarded until the last one ends. A tool
//! that uses ptrace itself is refused by the filter.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_int, CString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;

use mfiguard_core::audit::Guard;
use mfiguard_core::audit::GuardIssue;
use mfiguard_core::config::Config;
use mfiguard_core::device::{self, Known, Target};
use mfiguard_core::guarded::{copied, Answer, Caller, Identity, Request};
use mfiguard_sanitizer::{Abi, Errno};

use crate::files::KnownFiles;
use crate::filter;
use crate::proc::{self, identity};
use crate::serve::Node;
use crate::sys::{self, Exit};

/// `__USER32_CS`: the code segment of a 32-bit process on x86_64.
const USER32_CS: u64 = 0x23;

/// A wait status, classified once (ptrace(2)'s names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The task ended.
    Ended(Exit),
    /// `PTRACE_EVENT_SECCOMP`: a guarded call.
    Seccomp,
    /// `PTRACE_EVENT_FORK`, `VFORK` or `CLONE`: a new task, traced already.
    NewTask,
    /// `PTRACE_EVENT_EXEC`.
    Exec,
    /// `PTRACE_EVENT_STOP` with a stopping signal: a group-stop.
    GroupStop(c_int),
    /// `PTRACE_EVENT_STOP` otherwise: a new task's first stop, a `PTRACE_INTERRUPT`, the end
    /// of a group-stop seen under `PTRACE_LISTEN`.
    Trap,
    /// A signal-delivery-stop: the signal is pending for the task.
    Signal(c_int),
    /// Another event (not asked for).
    Other,
}

impl Stop {
    /// Classifies a `waitpid` status.
    pub fn of(status: c_int) -> Stop {
        if libc::WIFEXITED(status) {
            return Stop::Ended(Exit::Code(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Stop::Ended(Exit::Signal(libc::WTERMSIG(status)));
        }
        if !libc::WIFSTOPPED(status) {
            return Stop::Other;
        }
        let sig = libc::WSTOPSIG(status);
        match status >> 16 {
            0 => Stop::Signal(sig),
            libc::PTRACE_EVENT_SECCOMP => Stop::Seccomp,
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                Stop::NewTask
            }
            libc::PTRACE_EVENT_EXEC => Stop::Exec,
            sys::PTRACE_EVENT_STOP => match sig {
                libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => {
                    Stop::GroupStop(sig)
                }
                _ => Stop::Trap,
            },
            _ => Stop::Other,
        }
    }
}

/// A guarded call, as the registers at its seccomp stop say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracedCall {
    /// The descriptor, in the tool's table.
    pub fd: c_int,
    /// The call.
    pub req: Request,
}

impl TracedCall {
    /// The call the filter's data (`DATA_X86_64`, `DATA_I386`) and the registers describe, if
    /// the filter could have sent it.
    pub fn from_regs(data: u32, r: &libc::user_regs_struct) -> Option<TracedCall> {
        let arch = filter::arch_of_data(data)?;
        let abi = filter::ioctl_abi(arch, r.orig_rax)?;
        // The i386 entry's arguments are ebx, ecx, edx (zero-extended in the 64-bit layout).
        let (fd, code, arg) = match abi {
            Abi::Lp64 => (r.rdi, r.rsi, r.rdx),
            Abi::Ilp32 => (r.rbx, r.rcx, r.rdx),
        };
        let req = Request::new(Guard::Ptrace, abi, code as u32, arg)?;
        Some(TracedCall {
            fd: fd as u32 as c_int,
            req,
        })
    }
}

/// A tracee stopped at the seccomp stop of its call: its memory, and its answer (the call
/// skipped, the return register set).
struct Tracee {
    tid: libc::pid_t,
    regs: RefCell<libc::user_regs_struct>,
    answered: Cell<bool>,
}

impl Tracee {
    fn answer(&self, answer: Answer) -> Result<(), c_int> {
        let mut regs = self.regs.borrow_mut();
        regs.orig_rax = u64::MAX; // -1: skip the system call
        regs.rax = match answer {
            Answer::Value(v) => i64::from(v) as u64,
            Answer::Errno(e) => (-i64::from(e.0)) as u64,
        };
        sys::ptrace_setregs(self.tid, &regs)?;
        self.answered.set(true);
        Ok(())
    }
}

impl Caller for Tracee {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        // The calling thread is stopped and cannot be reaped but by us: the tid is its own.
        sys::read_process(self.tid, addr, out)
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int> {
        sys::write_process(self.tid, addr, data)
    }

    fn identity(&self) -> Option<Identity> {
        Some(identity(self.tid))
    }

    fn deliver(&self, answer: Answer) -> Result<(), c_int> {
        self.answer(answer)
    }
}

/// The tracer's state: the tasks it traces, the thread groups' pidfds.
pub struct Tracer<'c> {
    cfg: &'c Config,
    /// The tool's first process.
    child: libc::pid_t,
    /// Every traced task: its thread group, once known.
    tasks: HashMap<libc::pid_t, Option<libc::pid_t>>,
    /// pidfds of the thread groups that made calls.
    pidfds: HashMap<libc::pid_t, OwnedFd>,
    /// Whether `pidfd_getfd` is tried (until the kernel says `ENOSYS`).
    use_pidfd: bool,
    /// The management nodes, as known before the tool started.
    driver: Known,
    /// The descriptors recent calls were made on.
    files: KnownFiles,
    /// The first process's end, once seen (the rest are traced until they end).
    exit: Option<Exit>,
    /// A stop from the terminal (Ctrl-Z, a background read or write) reached the tool's first
    /// process: when it group-stops, the wrapper stops too, so that the shell sees the job
    /// stopped and its `fg` (`SIGCONT` to the process group) resumes both.
    terminal_stop: bool,
    /// The wrapper (`mfiguard-run`) the shell waits for, while the first process runs.
    wrapper: libc::pid_t,
}

impl<'c> Tracer<'c> {
    /// Traces `child` (seized by this thread, see `ptrace_spawn`) with `cfg`; `use_pidfd`
    /// false reopens descriptors through `/proc` as on kernels before 5.6.
    pub fn new(cfg: &'c Config, child: libc::pid_t, use_pidfd: bool, driver: Known) -> Tracer<'c> {
        let mut tasks = HashMap::new();
        tasks.insert(child, Some(child));
        Tracer {
            cfg,
            child,
            tasks,
            pidfds: HashMap::new(),
            use_pidfd,
            driver,
            files: KnownFiles::default(),
            exit: None,
            terminal_stop: false,
            wrapper: 0,
        }
    }

    /// Traces until no tracee is left: `first_ended` is told the first process's exit as soon
    /// as it ends (the wrapper returns it), while its descendants stay traced and guarded.
    /// `wrapper` is the process a terminal's stop of the first process stops too (0: none).
    pub fn run(&mut self, first_ended: &mut dyn FnMut(Exit), wrapper: libc::pid_t) -> Exit {
        self.wrapper = wrapper;
        self.trace(first_ended)
    }

    fn trace(&mut self, first_ended: &mut dyn FnMut(Exit)) -> Exit {
        loop {
            let (tid, status) = match sys::wait_any() {
                Ok(v) => v,
                // ECHILD: nothing left to wait for.
                Err(_) => return self.exit.unwrap_or(Exit::Code(125)),
            };
            let stop = Stop::of(status);
            if let Stop::Ended(exit) = stop {
                self.forget(tid);
                if tid == self.child && self.exit.is_none() {
                    self.exit = Some(exit);
                    first_ended(exit);
                }
                if let (Some(exit), true) = (self.exit, self.tasks.is_empty()) {
                    return exit;
                }
                continue;
            }
            self.tasks.entry(tid).or_insert(None);
            let resume = match stop {
                Stop::Seccomp => {
                    self.seccomp_stop(tid);
                    0
                }
                Stop::NewTask => {
                    if let Ok(new) = sys::ptrace_geteventmsg(tid) {
                        self.tasks.entry(new as libc::pid_t).or_insert(None);
                    }
                    0
                }
                Stop::Exec => {
                    // The thread that called exec now has the thread group's id; its former
                    // id is gone.
                    if let Ok(former) = sys::ptrace_geteventmsg(tid) {
                        let former = former as libc::pid_t;
                        if former != tid {
                            self.forget(former);
                        }
                    }
                    self.tasks.insert(tid, Some(tid));
                    0
                }
                Stop::GroupStop(_) => {
                    // Stay stopped until SIGCONT, as without a tracer.
                    let _ = sys::ptrace_listen(tid);
                    if self.terminal_stop && self.tgid(tid) == Some(self.child) {
                        self.terminal_stop = false;
                        // The shell waits for the wrapper: it stops too, and `fg` (SIGCONT to
                        // the process group) resumes both.
                        if self.wrapper > 0 && self.exit.is_none() {
                            sys::kill(self.wrapper, libc::SIGSTOP);
                        }
                    }
                    continue;
                }
                Stop::Signal(sig) => {
                    if sys::JOB_CONTROL.contains(&sig)
                        && sys::ptrace_signal_code(tid) == Ok(libc::SI_KERNEL)
                        && self.tgid(tid) == Some(self.child)
                    {
                        self.terminal_stop = true;
                    }
                    sig
                }
                Stop::Trap | Stop::Other | Stop::Ended(_) => 0,
            };
            let _ = sys::ptrace_cont(tid, resume);
            if let (Some(exit), true) = (self.exit, self.tasks.is_empty()) {
                return exit;
            }
        }
    }

    fn forget(&mut self, tid: libc::pid_t) {
        self.tasks.remove(&tid);
        self.pidfds.remove(&tid);
    }

    /// Guards the call of `tid`, stopped at its seccomp stop, and sets its answer.
    fn seccomp_stop(&mut self, tid: libc::pid_t) {
        let Ok(data) = sys::ptrace_geteventmsg(tid) else {
            return;
        };
        let Ok(regs) = sys::ptrace_getregs(tid) else {
            // ESRCH: killed while stopped; nothing runs.
            return;
        };
        let tracee = Tracee {
            tid,
            regs: RefCell::new(regs),
            answered: Cell::new(false),
        };
        if data as u32 & filter::RET_DATA_MASK == filter::DATA_CONTAINED {
            // A door the filter closes: refused, with a record naming it. The filter's data
            // does not say the entry; the tool's code segment does, but for `int 0x80` from a
            // 64-bit tool (then the name may be the other table's: the answer is EPERM alike).
            let (arch, abi) = if regs.cs == USER32_CS {
                (filter::AUDIT_ARCH_I386, Abi::Ilp32)
            } else {
                (filter::AUDIT_ARCH_X86_64, Abi::Lp64)
            };
            let name = filter::closed_name(arch, regs.orig_rax).unwrap_or("a closed system call");
            copied::refuse_closed(self.cfg, Guard::Ptrace, abi, &tracee, name);
            if !tracee.answered.get() {
                let _ = tracee.answer(Answer::Errno(Errno::EPERM));
            }
            return;
        }
        let Some(call) = TracedCall::from_regs(data as u32, &regs) else {
            // Cannot happen with our filter; never let an unknown call through.
            let _ = tracee.answer(Answer::Errno(Errno::EPERM));
            return;
        };
        if filter::is_already_guarded_probe(call.fd, &call.req) {
            let _ = tracee.answer(Answer::Errno(Errno(libc::EALREADY)));
            return;
        }
        let known = match self.files.get(tid, call.fd) {
            Some((fd, file)) => Ok(Own {
                fd,
                file,
                reopened: false,
            }),
            None => self.node_fd(tid, call.fd),
        };
        match known {
            Err(errno) => {
                let _ = tracee.answer(Answer::Errno(Errno(errno)));
            }
            Ok(Own {
                file: Target::Other(rdev),
                ..
            }) => {
                // Never executed here (this process's credentials and memory): refused.
                let issue = GuardIssue::UnrecognisedFile { rdev };
                copied::refuse(self.cfg, call.req, &tracee, issue);
            }
            Ok(Own {
                fd,
                file: Target::Node(_),
                reopened,
            }) => {
                if reopened && call.req.is_get_aen() && has_async(tid, call.fd) {
                    // The driver answers GET_AEN only on a description registered with
                    // F_SETOWN + O_ASYNC: the tool's is, ours is a new one. Registered the
                    // same way (SIGIO to the tool) for the call; closed right after, which
                    // takes it out of the driver's queue again.
                    let owner = self.tgid(tid).unwrap_or(tid);
                    if let Err(e) = sys::set_async_owner(fd.as_fd(), owner) {
                        log::debug!("GET_AEN: cannot register our description: {e}");
                    }
                }
                copied::run(self.cfg, call.req, &tracee, &mut Node { fd: fd.as_fd() });
            }
        }
        if !tracee.answered.get() {
            // Fail closed: a call whose answer could not be set is never resumed as it was.
            // (The task is gone if SETREGS failed; this is for a path that forgot to answer.)
            let _ = tracee.answer(Answer::Errno(Errno::EIO));
        }
    }

    fn tgid(&mut self, tid: libc::pid_t) -> Option<libc::pid_t> {
        if let Some(Some(t)) = self.tasks.get(&tid) {
            return Some(*t);
        }
        let t = proc::tgid(tid)?;
        self.tasks.insert(tid, Some(t));
        Some(t)
    }

    /// The tool's descriptor `fd`, as ours, and whether it is the management node.
    ///
    /// With `pidfd_getfd` (5.6) it is the tool's own open file description (its flags, its
    /// `F_SETOWN`). Before 5.6, `/proc/<tid>/fd/<fd>` is opened again: a new open file
    /// description of the same file. For `MEGASAS_IOC_FIRMWARE` that changes nothing (the
    /// driver keys nothing on the file); for `MEGASAS_IOC_GET_AEN` neither: the driver
    /// registers the event mask with the controller instance, and the `SIGIO` that announces
    /// an event goes to every file that asked for it with `O_ASYNC`/`F_SETOWN` (`fcntl`, not
    /// filtered, on the tool's own file), not to the file that issued `GET_AEN`. A file that
    /// cannot be opened again (a socket) or must not be (one opened with `O_PATH`, see
    /// [`reopen`]) is not the node: its call is answered `ENOTTY`, as non-MegaRAID files
    /// answer these codes.
    ///
    /// `MEGASAS_IOC_GET_AEN` is the exception: the driver refuses it (`EINVAL`) on a
    /// description that did not register with `F_SETOWN` + `O_ASYNC` (its fasync handler
    /// marks the file). On a reopened description, the tool's registration is mirrored when
    /// `/proc/<tid>/fdinfo/<fd>` shows `O_ASYNC` on its own (the node has an fasync handler,
    /// so the flag stays there); see [`Tracer::seccomp_stop`].
    fn node_fd(&mut self, tid: libc::pid_t, fd: c_int) -> Result<Own, c_int> {
        let own = if self.use_pidfd {
            match self.getfd(tid, fd) {
                Ok(own) => Some(own),
                Err(libc::ENOSYS) => {
                    self.use_pidfd = false;
                    None
                }
                Err(libc::EBADF) => return Err(libc::EBADF),
                // The group's leader gone (a zombie has no files), or another refusal: the
                // calling thread's table, through /proc.
                Err(_) => None,
            }
        } else {
            None
        };
        let reopened = own.is_none();
        let own = match own {
            Some(own) => own,
            None => match reopen(tid, fd) {
                Ok(own) => own,
                Err(libc::ENOENT) => return Err(libc::EBADF),
                Err(_) => return Err(libc::ENOTTY),
            },
        };
        let file = device::management_node(own.as_raw_fd(), self.cfg, self.driver)?;
        // A reopened description is never the tool's own: kcmp would never find it again.
        let fd = if reopened {
            Rc::new(own)
        } else {
            self.files.remember(tid, fd, own, file)
        };
        Ok(Own { fd, file, reopened })
    }

    fn getfd(&mut self, tid: libc::pid_t, fd: c_int) -> Result<OwnedFd, c_int> {
        let tgid = self.tgid(tid).ok_or(libc::ESRCH)?;
        let pidfd = match self.pidfds.entry(tgid) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(sys::pidfd_open(tgid, 0)?),
        };
        sys::pidfd_getfd(pidfd.as_fd(), fd)
    }
}

/// The tool's descriptor, as ours.
struct Own {
    fd: Rc<OwnedFd>,
    /// Which file it is.
    file: Target,
    /// Whether it is a new open file description (`/proc/<tid>/fd/N` opened again).
    reopened: bool,
}

/// Whether the tool's descriptor `fd` has `O_ASYNC` (`/proc/<tid>/fdinfo/<fd>`, `flags:` in
/// octal).
fn has_async(tid: libc::pid_t, fd: c_int) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| fdinfo_flags(&info))
        .is_some_and(|f| f & libc::O_ASYNC != 0)
}

/// The `flags:` line of an fdinfo file.
fn fdinfo_flags(info: &str) -> Option<c_int> {
    let v = info.lines().find_map(|l| l.strip_prefix("flags:"))?.trim();
    c_int::from_str_radix(v, 8).ok()
}

/// `/proc/<tid>/fd/<fd>` opened again, read-write if it can be, else read-only. An `O_PATH`
/// descriptor is not: it never opened the file (the driver's open wants `CAP_SYS_ADMIN`, which
/// an unprivileged tool can name a path without), and the tracer's open would do it with the
/// tracer's credentials.
fn reopen(tid: libc::pid_t, fd: c_int) -> Result<OwnedFd, c_int> {
    let info =
        std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}")).map_err(|_| libc::ENOENT)?;
    if fdinfo_flags(&info).is_none_or(|f| f & libc::O_PATH != 0) {
        return Err(libc::ENOTTY);
    }
    let path = CString::new(format!("/proc/{tid}/fd/{fd}")).map_err(|_| libc::EINVAL)?;
    let flags = libc::O_NOCTTY | libc::O_NONBLOCK;
    sys::open(&path, libc::O_RDWR | flags).or_else(|e| match e {
        libc::EACCES | libc::EROFS | libc::EISDIR | libc::EPERM => {
            sys::open(&path, libc::O_RDONLY | flags)
        }
        e => Err(e),
    })
}

/// The floor the benchmark compares the tracer with: the same filter, a tracer that only
/// resumes (the guarded call then runs as it is: `ENOTTY` on a stand-in node).
pub fn bare_tracer(child: libc::pid_t) -> Exit {
    loop {
        let Ok((tid, status)) = sys::wait_any() else {
            return Exit::Code(125);
        };
        match Stop::of(status) {
            Stop::Ended(exit) if tid == child => return exit,
            Stop::Ended(_) => {}
            Stop::GroupStop(_) => {
                let _ = sys::ptrace_listen(tid);
            }
            Stop::Signal(sig) => {
                let _ = sys::ptrace_cont(tid, sig);
            }
            _ => {
                let _ = sys::ptrace_cont(tid, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{DATA_I386, DATA_X86_64, FIRMWARE, FIRMWARE32};

    fn regs() -> libc::user_regs_struct {
        let mut r = zero_regs();
        r.orig_rax = 16;
        r.rdi = 3;
        r.rsi = u64::from(FIRMWARE);
        r.rdx = 0x7fff_0000_1000;
        r
    }

    fn zero_regs() -> libc::user_regs_struct {
        libc::user_regs_struct {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            rbp: 0,
            rbx: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rax: 0,
            rcx: 0,
            rdx: 0,
            rsi: 0,
            rdi: 0,
            orig_rax: 0,
            rip: 0,
            cs: 0,
            eflags: 0,
            rsp: 0,
            ss: 0,
            fs_base: 0,
            gs_base: 0,
            ds: 0,
            es: 0,
            fs: 0,
            gs: 0,
        }
    }

    #[test]
    fn the_filter_data_names_the_registers() {
        let r = regs();
        let c = TracedCall::from_regs(DATA_X86_64, &r).expect("x86_64 call");
        assert_eq!(
            (c.req.code, c.fd, c.req.arg, c.req.abi),
            (FIRMWARE, 3, r.rdx, Abi::Lp64)
        );
        // The same registers through the i386 entry are not a guarded call: wrong nr, code.
        assert_eq!(TracedCall::from_regs(DATA_I386, &r), None);
        let mut i = zero_regs();
        i.orig_rax = 54;
        i.rbx = 4;
        i.rcx = u64::from(FIRMWARE32);
        i.rdx = 0xffff_ffff_0804_a000;
        let c = TracedCall::from_regs(DATA_I386, &i).expect("i386 call");
        assert_eq!(
            (c.req.code, c.fd, c.req.arg, c.req.abi),
            (FIRMWARE32, 4, 0x0804_a000, Abi::Ilp32)
        );
        // Unknown data (not from our filter), or a code it does not trace: refused.
        assert_eq!(TracedCall::from_regs(0, &r), None);
        let mut other = r;
        other.rsi = 0x541b;
        assert_eq!(TracedCall::from_regs(DATA_X86_64, &other), None);
    }

    #[test]
    fn fdinfo_flags_are_octal() {
        let info = "pos:\t0\nflags:\t02120002\nmnt_id:\t24\nino:\t3\n";
        let f = fdinfo_flags(info).expect("flags");
        assert_ne!(f & libc::O_ASYNC, 0);
        assert_eq!(f & libc::O_ACCMODE, libc::O_RDWR);
        let f = fdinfo_flags("flags:\t02100002\n").expect("flags");
        assert_eq!(f & libc::O_ASYNC, 0);
        assert_eq!(fdinfo_flags("pos:\t0\n"), None);
    }

    /// An `O_PATH` descriptor of a device is not opened again with the tracer's credentials.
    #[test]
    fn an_o_path_descriptor_is_not_reopened() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let tid = crate::sys::gettid();
        let path = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open("/dev/null")
            .unwrap();
        assert_eq!(reopen(tid, path.as_raw_fd()).err(), Some(libc::ENOTTY));
        let opened = std::fs::File::open("/dev/null").unwrap();
        assert!(reopen(tid, opened.as_raw_fd()).is_ok());
    }

    #[test]
    fn wait_statuses_are_classified() {
        // Built as the kernel builds them: (event << 16) | (sig << 8) | 0x7f for a stop.
        let stopped = |sig: c_int, event: c_int| (event << 16) | (sig << 8) | 0x7f;
        assert_eq!(
            Stop::of(stopped(libc::SIGTRAP, libc::PTRACE_EVENT_SECCOMP)),
            Stop::Seccomp
        );
        assert_eq!(
            Stop::of(stopped(libc::SIGTRAP, libc::PTRACE_EVENT_CLONE)),
            Stop::NewTask
        );
        assert_eq!(
            Stop::of(stopped(libc::SIGSTOP, sys::PTRACE_EVENT_STOP)),
            Stop::GroupStop(libc::SIGSTOP)
        );
        assert_eq!(
            Stop::of(stopped(libc::SIGTRAP, sys::PTRACE_EVENT_STOP)),
            Stop::Trap
        );
        assert_eq!(
            Stop::of(stopped(libc::SIGSTOP, 0)),
            Stop::Signal(libc::SIGSTOP)
        );
        assert_eq!(Stop::of(7 << 8), Stop::Ended(Exit::Code(7)));
        assert_eq!(
            Stop::of(libc::SIGKILL),
            Stop::Ended(Exit::Signal(libc::SIGKILL))
        );
    }
}
