//! Audit records and the sinks they go to.
//!
//! # Records
//!
//! A guarded call that reaches the kernel produces two records sharing a `seq`:
//!
//! - `"record":"decision"`, written **before** the kernel sees the call: who (`pid`, `exe`,
//!   `uid`), what (`request`, the packet's fields, `flags` as sent by the caller and `flags_sent`
//!   as sent to the kernel), the `verdict` and every finding. `ret`, `errno`, `cmd_status` and
//!   `latency_us` are `null`. If the host dies inside the driver (the seed's crash), this record
//!   is the evidence; with `MFIGUARD_LOG_SYNC=1` it is on disk before the call proceeds.
//! - `"record":"outcome"`, written after the call: every field again, now with the kernel's
//!   `ret`, `errno`, `cmd_status` (`null` unless the kernel wrote it back, which it does only
//!   on success) and the time the call spent below us (`latency_us`).
//!
//! A call the kernel never sees (a rejection, an unreadable packet, an internal error) has only
//! the outcome record. Every call thus has exactly one outcome record; a decision without an
//! outcome means the process died inside the call. `ts` is each record's own time.
//!
//! Configuration problems produce `"record":"error"` records (`key`, `value`, `message`).
//!
//! Who ran the tool ([`Invoker`]: `sudo_user`/`sudo_uid` when sudo set them, the kernel's
//! `login_uid`, the tool's `argv` bounded to [`ARGV_MAX`] bytes) is read once per process and
//! added to every record after `uid`, the nested path included (it only reads what was
//! published).
//!
//! Records are written by hand, not with serde: the format is small and fixed, and the same code
//! must run without allocating inside a signal handler (see [`emit`]).
//!
//! # Sinks
//!
//! - a file: one JSON object per line, each line written with a single `write` on a descriptor
//!   opened `O_APPEND` for that record and closed after it, so concurrent processes never
//!   interleave partial lines, a log rotated away is simply re-created by the next record, and
//!   no descriptor of ours stays in the host (where a daemonising host could close or reuse it).
//!   The file must be a regular file owned by root or by this process's effective uid: a FIFO
//!   (which would hang the tool), a device, a directory, a symlink (never followed) or a file
//!   someone else pre-created is refused ([`Refusal`]), never written to, and its records go
//!   to stderr instead. A file the guard creates is mode 0640, group `adm` where that exists
//!   (what logrotate's `create 0640 root adm` makes);
//! - syslog: one readable line per record, sent as a datagram to `/dev/log` without ever
//!   waiting (`MSG_DONTWAIT`), facility
//!   `authpriv`, tag `mfiguard` and the pid (what `openlog("mfiguard", LOG_PID, LOG_AUTHPRIV)`
//!   would produce); warning for rejections, notice for rewrites, info otherwise. We do not use
//!   libc's `openlog`/`syslog`: `openlog` is process-wide state the host may use for its own
//!   messages, `syslog` cannot report a failure (needed by `MFIGUARD_LOG_REQUIRED`), and it takes
//!   a lock and allocates (unusable from a signal handler);
//! - stderr: one readable line per record, with one `write`, issued only when stderr can take
//!   it within a short grace period (`poll`, 200 ms): a tool whose stderr is a pipe nobody
//!   reads loses records, it is never stalled by them (see `sys::write_stderr_nowait`).
//!
//! The syslog sink prefers the journal: when systemd-journald's native socket
//! ([`JOURNAL_SOCKET`]) exists, each record goes there as one datagram of the native protocol,
//! the readable line as `MESSAGE` plus structured fields (`SYSLOG_IDENTIFIER=mfiguard`,
//! `PRIORITY`, `SYSLOG_FACILITY=10`, `MFIGUARD_VERDICT`, `MFIGUARD_RULE` once per finding,
//! `MFIGUARD_CMD`, `MFIGUARD_OPCODE`, ...: see [`journal_entry`]), so that
//! `journalctl MFIGUARD_VERDICT=reject` finds them; without it (or when the journal refuses the
//! datagram) the record goes to `/dev/log` as before. A record from the nested path goes to
//! stderr, as for syslog.
//!
//! A sink that fails never harms the call: the record is counted as lost (`records_lost` in the
//! next record that is written), and the first failure in the process is reported on stderr.
//! With `MFIGUARD_LOG_REQUIRED=1` the guard fails the call closed instead when the record that
//! precedes the kernel call cannot be written (see `guard.rs`).

use std::ffi::c_int;
use std::fmt::{self, Display, Write as _};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mfiguard_sanitizer::abi::ioctl::request_name;
use mfiguard_sanitizer::abi::mfi::CmdDisplay;
use mfiguard_sanitizer::abi::names::{dcmd_opcode_name, mfi_status_name};
use mfiguard_sanitizer::{Abi, Decision, Errno, Packet, Verdict};

use crate::config::{Config, GuardMode, LogTarget};
use crate::sys;
use crate::sys::Published;

/// Where the local syslog daemon listens.
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// Where systemd-journald takes records in its native protocol.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// `LOG_AUTHPRIV`: records name users and executables and are about refused privileged
/// operations; authpriv logs are readable by root only and watched by security tooling.
const LOG_AUTHPRIV: u8 = 10 << 3;
const LOG_WARNING: u8 = 4;
const LOG_NOTICE: u8 = 5;
const LOG_INFO: u8 = 6;

/// Which of a call's two records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the kernel call.
    Decision,
    /// After it, or instead of it.
    Outcome,
}

impl Phase {
    const fn name(self) -> &'static str {
        match self {
            Phase::Decision => "decision",
            Phase::Outcome => "outcome",
        }
    }
}

/// A failure of the guard itself, recorded as a finding with a `guard.` rule id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardIssue {
    /// `guard.fault`: the packet could not be read.
    Unreadable {
        /// The caller's pointer.
        addr: usize,
        /// Bytes the layout needs.
        len: usize,
    },
    /// `guard.fault`: the SMP request buffer (`sgl[1]`) the read-only policy inspects could
    /// not be read.
    SmpRequestUnreadable {
        /// Its `iov_base`.
        addr: u64,
        /// Its `iov_len`.
        len: usize,
    },
    /// `guard.internal`: a panic inside the guard.
    Panicked {
        /// Whether the kernel had already been called (its result is then returned).
        after_kernel: bool,
    },
    /// `guard.internal`: there is no next `ioctl` to call.
    NoNextIoctl,
    /// `guard.internal`: the sanitizer refused a whole packet (cannot happen: it is full size).
    Sanitizer,
    /// `guard.log-required`: the decision record could not be written and
    /// `MFIGUARD_LOG_REQUIRED=1`.
    LogRequired {
        /// The sink's errno.
        errno: c_int,
    },
    /// `guard.fault`: a data or sense buffer the supervisor copies for the driver could not
    /// be read from, or written back to, the caller.
    BufferFault {
        /// Its address in the caller.
        addr: u64,
        /// Its length.
        len: u64,
    },
    /// `guard.unsupported`: the supervisor cannot make a private copy of what the packet
    /// asks for (beyond the rules' length limits, or a sense pointer outside the frame); only
    /// reached when the rules did not refuse the packet (audit mode, an allowed rule).
    Unsupported,
    /// `guard.internal`: the caller's process is gone, or its memory cannot be reached.
    CallerGone,
    /// `guard.not-delivered`: the caller could not be given its answer (it died, or a signal
    /// interrupted the call); `executed` says whether the driver had run the command.
    NotDelivered {
        /// Whether the driver was called.
        executed: bool,
    },
    /// `guard.unsupported`: `MEGASAS_IOC_GET_AEN` through the host-wide guard, refused with
    /// `EOPNOTSUPP`: the driver signals an event with `SIGIO` to the owner of the file that
    /// registered, which would be `mfiguard-hostd`, never the caller.
    AenUnsupported,
}

impl GuardIssue {
    /// The rule id.
    pub const fn rule(self) -> &'static str {
        match self {
            GuardIssue::Unreadable { .. } | GuardIssue::SmpRequestUnreadable { .. } => {
                "guard.fault"
            }
            GuardIssue::BufferFault { .. } => "guard.fault",
            GuardIssue::LogRequired { .. } => "guard.log-required",
            GuardIssue::Unsupported | GuardIssue::AenUnsupported => "guard.unsupported",
            GuardIssue::NotDelivered { .. } => "guard.not-delivered",
            GuardIssue::Panicked { .. }
            | GuardIssue::NoNextIoctl
            | GuardIssue::Sanitizer
            | GuardIssue::CallerGone => "guard.internal",
        }
    }

    /// What the guard did about it: `reject`, except for a panic after the kernel call, whose
    /// result the caller still gets (`warn`).
    pub const fn action(self) -> &'static str {
        match self {
            GuardIssue::Panicked { after_kernel: true } | GuardIssue::NotDelivered { .. } => "warn",
            _ => "reject",
        }
    }

    /// The errno the call fails with.
    pub const fn errno(self) -> Errno {
        match self {
            GuardIssue::Unreadable { .. }
            | GuardIssue::SmpRequestUnreadable { .. }
            | GuardIssue::BufferFault { .. } => Errno::EFAULT,
            GuardIssue::Unsupported => Errno::EINVAL,
            GuardIssue::AenUnsupported => Errno(libc::EOPNOTSUPP),
            _ => Errno::EIO,
        }
    }
}

impl Display for GuardIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GuardIssue::Unreadable { addr, len } => {
                write!(f, "the {len}-byte packet at {addr:#x} is not readable")
            }
            GuardIssue::SmpRequestUnreadable { addr, len } => write!(
                f,
                "the {len}-byte SMP request (sgl[1]) at {addr:#x} is not readable"
            ),
            GuardIssue::Panicked {
                after_kernel: false,
            } => f.write_str("the guard panicked; the call was not issued"),
            GuardIssue::Panicked { after_kernel: true } => {
                f.write_str("the guard panicked after the kernel call; its result is returned")
            }
            GuardIssue::NoNextIoctl => f.write_str("no next ioctl definition was found"),
            GuardIssue::Sanitizer => f.write_str("the sanitizer could not decode the packet"),
            GuardIssue::LogRequired { errno } => write!(
                f,
                "the audit record could not be written ({}); MFIGUARD_LOG_REQUIRED=1",
                ErrnoName(errno)
            ),
            GuardIssue::BufferFault { addr, len } => write!(
                f,
                "the {len}-byte buffer at {addr:#x} could not be copied to or from the caller"
            ),
            GuardIssue::Unsupported => f.write_str(
                "the supervisor makes private copies only within the rules' limits (sge.length, sense.length, sense.bounds)",
            ),
            GuardIssue::CallerGone => {
                f.write_str("the calling process went away or its memory could not be reached")
            }
            GuardIssue::NotDelivered { executed: true } => f.write_str(
                "executed, not delivered: the driver ran the command but the caller was gone or interrupted",
            ),
            GuardIssue::NotDelivered { executed: false } => {
                f.write_str("not delivered: the caller was gone or interrupted")
            }
            GuardIssue::AenUnsupported => f.write_str(
                "event notification (GET_AEN) is not carried by the host-wide guard: the driver's SIGIO would reach mfiguard-hostd, not the caller",
            ),
        }
    }
}

/// The packet's fields, as records show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// `host_no`.
    pub host_no: u16,
    /// The frame's `cmd`.
    pub cmd: u8,
    /// The DCMD opcode, for DCMD frames.
    pub opcode: Option<u32>,
    /// The frame's `target_id`.
    pub target_id: u8,
    /// The frame's `flags` as the caller sent them.
    pub flags: u16,
    /// The frame's `flags` as sent to the kernel.
    pub flags_sent: u16,
    /// `sgl_off`.
    pub sgl_off: u32,
    /// `sge_count` (the packet's).
    pub sge_count: u32,
    /// Sum of the used `iov_len`.
    pub sge_bytes: u64,
    /// `sense_off`.
    pub sense_off: u32,
    /// `sense_len` (the packet's).
    pub sense_len: u32,
    /// The frame's `data_xferlen`.
    pub data_xferlen: u32,
}

impl PacketInfo {
    /// The fields of a decoded packet and what the verdict sends.
    pub fn new(p: &Packet, verdict: &Verdict) -> PacketInfo {
        let hdr = p.header();
        let flags = hdr.flags.get();
        PacketInfo {
            host_no: p.host_no,
            cmd: hdr.cmd,
            opcode: p.dcmd_opcode(),
            target_id: hdr.target_id,
            flags,
            flags_sent: verdict.flags_sent(flags),
            sgl_off: p.sgl_off,
            sge_count: p.sge_count,
            sge_bytes: p.used_bytes(),
            sense_off: p.sense_off,
            sense_len: p.sense_len,
            data_xferlen: hdr.data_xferlen.get(),
        }
    }
}

/// What the kernel answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The return value the caller gets.
    pub ret: c_int,
    /// The errno the caller gets (0 when `ret >= 0`).
    pub errno: c_int,
    /// The frame's `cmd_status` after the call, when the kernel wrote it back.
    pub cmd_status: Option<u8>,
    /// Microseconds spent in the next `ioctl`; `None` when it was not called.
    pub latency_us: Option<u64>,
}

/// One guarded call, as far as it is known.
#[derive(Clone, Copy, Debug)]
pub struct CallRecord<'a> {
    /// Shared by the call's decision and outcome records.
    pub seq: u64,
    /// Which entry of the guard saw the call.
    pub guard: Guard,
    /// The calling process, when it is not this one (the supervisor records for its tool);
    /// `None`: this process, taken when the record is written.
    pub caller: Option<Who>,
    /// Who ran the calling process, when it is not this one; `None`: this process's.
    pub invoker: Option<&'a Invoker>,
    /// The packet layout of the caller's request.
    pub abi: Abi,
    /// `/proc/self/exe`.
    pub exe: &'a str,
    /// The guard's mode.
    pub mode: GuardMode,
    /// The request code (its low 32 bits, as the kernel reads it).
    pub request: u32,
    /// Whether the call arrived while this thread was already inside the guard.
    pub nested: bool,
    /// `host_no`, when known (a readable packet, or a `megasas_aen`).
    pub host_no: Option<u16>,
    /// The packet's fields, when it was readable.
    pub packet: Option<PacketInfo>,
    /// `pass`, `rewrite` or `reject` (what enforce does, or would do in audit mode).
    pub decision: Decision,
    /// Whether the guard acted on the decision.
    pub enforced: bool,
    /// The sanitizer's verdict, for its findings.
    pub verdict: Option<&'a Verdict>,
    /// A failure of the guard itself.
    pub issue: Option<GuardIssue>,
    /// The kernel's answer (outcome records only).
    pub outcome: Option<Outcome>,
}

/// Which entry of the guard saw a call (`"guard"` in records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// `libmfiguard.so`, inside the tool.
    Preload,
    /// `mfiguard-run`'s seccomp user-notification supervisor, outside the tool.
    Supervisor,
    /// `mfiguard-run`'s ptrace fallback (seccomp `RET_TRACE`), outside the tool.
    Ptrace,
    /// `mfiguard-hostd`: the host-wide guard, serving the node path itself (CUSE).
    Hostd,
}

impl Guard {
    /// The name used in records.
    pub const fn name(self) -> &'static str {
        match self {
            Guard::Preload => "preload",
            Guard::Supervisor => "supervisor",
            Guard::Ptrace => "ptrace",
            Guard::Hostd => "hostd",
        }
    }
}

/// A configuration problem.
#[derive(Clone, Copy, Debug)]
pub struct ErrorRecord<'a> {
    /// The setting.
    pub key: &'a str,
    /// Its value.
    pub value: &'a str,
    /// What was wrong and what is used instead.
    pub message: &'a str,
    /// `/proc/self/exe`.
    pub exe: &'a str,
}

/// Anything a sink accepts.
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    /// A call's decision or outcome.
    Call(&'a CallRecord<'a>, Phase),
    /// A configuration problem.
    Error(&'a ErrorRecord<'a>),
}

impl Record<'_> {
    fn severity(&self) -> u8 {
        match self {
            Record::Call(c, _) => match c.decision {
                Decision::Reject(_) => LOG_WARNING,
                Decision::Rewrite => LOG_NOTICE,
                Decision::Pass => LOG_INFO,
            },
            Record::Error(_) => LOG_WARNING,
        }
    }
}

/// The process and its real user, taken when a record is written (not per call: a call that
/// is not recorded costs no `getpid`/`getuid`; not cached: a forked child has its own pid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Who {
    /// `getpid()`.
    pub pid: u32,
    /// `getuid()`.
    pub uid: u32,
}

impl Who {
    /// This process, now.
    pub fn now() -> Who {
        Who {
            pid: std::process::id(),
            uid: sys::uid(),
        }
    }
}

/// Longest `argv` kept for records, in bytes (the arguments' own bytes, without separators).
pub const ARGV_MAX: usize = 256;
/// Longest `sudo_user` kept (user names are at most 32 bytes on Linux).
pub const SUDO_USER_MAX: usize = 64;

/// Who started the tool, for records. Read once per process, outside a signal handler, and
/// kept: a child forked without exec is the same invocation; one that execs reads its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invoker {
    /// `SUDO_USER`, when the environment has it (sudo sets it; anyone can, so it is a claim
    /// that the login uid can confirm), at most [`SUDO_USER_MAX`] bytes.
    pub sudo_user: Option<String>,
    /// `SUDO_UID`, when it is a number.
    pub sudo_uid: Option<u32>,
    /// `/proc/self/loginuid`: the uid the session logged in as, kept by the kernel across
    /// su and sudo; `None` when unset (4294967295: daemons, containers) or unreadable.
    pub login_uid: Option<u32>,
    /// `/proc/self/cmdline`, at most [`ARGV_MAX`] bytes of arguments in all: the argument that
    /// crosses the bound is cut (at a character boundary) and the rest dropped.
    pub argv: Vec<String>,
    /// Whether `argv` was cut.
    pub argv_truncated: bool,
}

/// Cuts `s` to at most `max` bytes, at a character boundary; whether it cut.
fn cut_to(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at = at.saturating_sub(1);
    }
    s.truncate(at);
    true
}

impl Invoker {
    /// From its sources: the `SUDO_USER` and `SUDO_UID` values, `/proc/self/loginuid`'s
    /// content and `/proc/self/cmdline`'s (NUL-terminated arguments).
    pub fn from_parts(
        sudo_user: Option<&[u8]>,
        sudo_uid: Option<&[u8]>,
        loginuid: Option<&[u8]>,
        cmdline: &[u8],
    ) -> Invoker {
        let number = |b: &[u8]| -> Option<u32> { std::str::from_utf8(b).ok()?.trim().parse().ok() };
        let sudo_user = sudo_user.filter(|u| !u.is_empty()).map(|u| {
            let mut u = String::from_utf8_lossy(u).into_owned();
            cut_to(&mut u, SUDO_USER_MAX);
            u
        });
        let mut argv = Vec::new();
        let mut left = ARGV_MAX;
        let mut argv_truncated = false;
        let args = cmdline.strip_suffix(b"\0").unwrap_or(cmdline);
        if !args.is_empty() {
            for arg in args.split(|&b| b == 0) {
                let mut a = String::from_utf8_lossy(arg).into_owned();
                if cut_to(&mut a, left) {
                    argv_truncated = true;
                    argv.push(a);
                    break;
                }
                left = left.saturating_sub(a.len());
                argv.push(a);
            }
        }
        Invoker {
            sudo_user,
            sudo_uid: sudo_uid.and_then(number),
            // The kernel's "unset" is (uid_t)-1.
            login_uid: loginuid.and_then(number).filter(|&u| u != u32::MAX),
            argv,
            argv_truncated,
        }
    }

    /// This process's. Allocates: never from the nested path.
    pub fn read() -> Invoker {
        use std::os::unix::ffi::OsStrExt;
        let env = |k: &str| std::env::var_os(k);
        let (user, uid) = (env("SUDO_USER"), env("SUDO_UID"));
        let loginuid = std::fs::read("/proc/self/loginuid").ok();
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
        Invoker::from_parts(
            user.as_deref().map(|u| u.as_bytes()),
            uid.as_deref().map(|u| u.as_bytes()),
            loginuid.as_deref(),
            &cmdline,
        )
    }

    /// Another process's, from `/proc/PID/` (the supervisor's tool): its environment's
    /// `SUDO_USER`/`SUDO_UID` as it started, its login uid, its command line.
    pub fn of_process(pid: u32) -> Invoker {
        let read = |f: &str| std::fs::read(format!("/proc/{pid}/{f}")).ok();
        let environ = read("environ").unwrap_or_default();
        let var = |k: &[u8]| {
            environ
                .split(|&b| b == 0)
                .find_map(|kv| kv.strip_prefix(k).and_then(|rest| rest.strip_prefix(b"=")))
        };
        let loginuid = read("loginuid");
        let cmdline = read("cmdline").unwrap_or_default();
        Invoker::from_parts(
            var(b"SUDO_USER"),
            var(b"SUDO_UID"),
            loginuid.as_deref(),
            &cmdline,
        )
    }

    /// Writes the members after `uid` (what is known; `argv` only with `details`, so that the
    /// compact form of a nested record stays as small as it was).
    fn json<W: fmt::Write>(&self, o: &mut Obj<'_, W>, details: bool) -> fmt::Result {
        if let Some(u) = &self.sudo_user {
            o.str("sudo_user", u)?;
        }
        if let Some(u) = self.sudo_uid {
            o.num("sudo_uid", u)?;
        }
        if let Some(u) = self.login_uid {
            o.num("login_uid", u)?;
        }
        if details {
            o.key("argv")?;
            o.w.write_char('[')?;
            for (i, a) in self.argv.iter().enumerate() {
                if i > 0 {
                    o.w.write_char(',')?;
                }
                json_string(o.w, a)?;
            }
            o.w.write_char(']')?;
            if self.argv_truncated {
                o.bool("argv_truncated", true)?;
            }
        }
        Ok(())
    }

    /// The readable line's part: only what sudo or the login uid add to `uid`.
    fn line<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        if let Some(u) = &self.sudo_user {
            write!(w, " sudo_user {u}")?;
        }
        if let Some(u) = self.sudo_uid {
            write!(w, " sudo_uid {u}")?;
        }
        if let Some(u) = self.login_uid {
            write!(w, " login_uid {u}")?;
        }
        Ok(())
    }
}

/// This process's [`Invoker`], once read (fork-safe: see `sys::Published`).
static INVOKER: Published<Invoker> = Published::new();

/// This process's [`Invoker`], read on the first call (allocates: not from the nested path).
pub fn invoker() -> &'static Invoker {
    INVOKER.get_or_init(Invoker::read)
}

/// This process's [`Invoker`] if it was read; never waits, never allocates.
pub fn invoker_if_read() -> Option<&'static Invoker> {
    INVOKER.get()
}

/// Records that could not be written since the last one that was (reported in that one).
static LOST: AtomicU64 = AtomicU64::new(0);
/// Whether a sink failure was already reported on stderr.
static FAILURE_REPORTED: AtomicBool = AtomicBool::new(false);

/// In a forked child (see `fork.rs`): its parent's lost records are the parent's to report,
/// and its own first sink failure is reported again.
pub fn after_fork() {
    LOST.store(0, Ordering::Relaxed);
    FAILURE_REPORTED.store(false, Ordering::Relaxed);
    // The child is a process of its own: its first record names the build too.
    BUILD_PENDING.store(true, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------------
// Text helpers

/// An errno as `ENAME` or its number.
#[derive(Clone, Copy, Debug)]
pub struct ErrnoName(pub c_int);

impl Display for ErrnoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The sanitizer names the errnos a call can return; these are the ones a sink meets.
        let sink = match self.0 {
            libc::ENOSPC => "ENOSPC",
            libc::EROFS => "EROFS",
            libc::ELOOP => "ELOOP",
            libc::EDQUOT => "EDQUOT",
            libc::EPIPE => "EPIPE",
            libc::EAGAIN => "EAGAIN",
            libc::ENOBUFS => "ENOBUFS",
            libc::EMSGSIZE => "EMSGSIZE",
            libc::ECONNREFUSED => "ECONNREFUSED",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::ENOSYS => "ENOSYS",
            libc::EMFILE => "EMFILE",
            libc::ENFILE => "ENFILE",
            libc::ENXIO => "ENXIO",
            libc::EPERM => "EPERM",
            _ => Errno(self.0).name(),
        };
        match sink {
            "errno" => write!(f, "errno {}", self.0),
            name => f.write_str(name),
        }
    }
}

/// A fmt adapter that escapes what passes through it for a JSON string.
struct Escape<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escape<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let esc: Option<&str> = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => None,
                _ => continue,
            };
            self.0.write_str(s.get(start..i).unwrap_or_default())?;
            match esc {
                Some(e) => self.0.write_str(e)?,
                None => write!(self.0, "\\u{:04x}", c as u32)?,
            }
            start = i.saturating_add(c.len_utf8());
        }
        self.0.write_str(s.get(start..).unwrap_or_default())
    }
}

/// Writes `value` as a JSON string.
fn json_string<W: fmt::Write>(w: &mut W, value: impl Display) -> fmt::Result {
    w.write_char('"')?;
    write!(Escape(w), "{value}")?;
    w.write_char('"')
}

/// A JSON object being written, member by member.
struct Obj<'w, W: fmt::Write> {
    w: &'w mut W,
    first: bool,
}

impl<'w, W: fmt::Write> Obj<'w, W> {
    fn open(w: &'w mut W) -> Result<Self, fmt::Error> {
        w.write_char('{')?;
        Ok(Obj { w, first: true })
    }

    /// Starts a member; keys are fixed identifiers that need no escaping.
    fn key(&mut self, key: &str) -> fmt::Result {
        if !self.first {
            self.w.write_char(',')?;
        }
        self.first = false;
        write!(self.w, "\"{key}\":")
    }

    fn str(&mut self, key: &str, value: impl Display) -> fmt::Result {
        self.key(key)?;
        json_string(self.w, value)
    }

    fn opt_str(&mut self, key: &str, value: Option<impl Display>) -> fmt::Result {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    fn num(&mut self, key: &str, value: impl Display) -> fmt::Result {
        self.key(key)?;
        write!(self.w, "{value}")
    }

    fn opt_num(&mut self, key: &str, value: Option<impl Display>) -> fmt::Result {
        match value {
            Some(v) => self.num(key, v),
            None => self.null(key),
        }
    }

    fn bool(&mut self, key: &str, value: bool) -> fmt::Result {
        self.key(key)?;
        self.w.write_str(if value { "true" } else { "false" })
    }

    fn null(&mut self, key: &str) -> fmt::Result {
        self.key(key)?;
        self.w.write_str("null")
    }

    fn close(self) -> fmt::Result {
        self.w.write_char('}')
    }
}

/// RFC 3339 UTC with microseconds: `2024-05-01T12:34:56.123456Z`.
pub struct Rfc3339(pub SystemTime);

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds and microseconds since the epoch (0 for a clock before it).
fn unix_parts(t: SystemTime) -> (i64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        d.subsec_micros(),
    )
}

impl Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, micros) = unix_parts(self.0);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )
    }
}

/// The RFC 3164 timestamp of a syslog header (`May  1 12:34:56`), in UTC: local syslog
/// daemons (journald, rsyslog's imuxsock) replace it with the time of reception anyway.
struct Rfc3164(SystemTime);

impl Display for Rfc3164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let (secs, _) = unix_parts(self.0);
        let (_, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        let month = MONTHS
            .get(mo.saturating_sub(1) as usize)
            .copied()
            .unwrap_or("Jan");
        write!(
            f,
            "{month} {d:2} {:02}:{:02}:{:02}",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn findings_json<W: fmt::Write>(w: &mut W, c: &CallRecord<'_>, details: bool) -> fmt::Result {
    w.write_char('[')?;
    let mut first = true;
    let mut sep = |w: &mut W| -> fmt::Result {
        if !first {
            w.write_char(',')?;
        }
        first = false;
        Ok(())
    };
    if let Some(issue) = c.issue {
        sep(w)?;
        let mut o = Obj::open(w)?;
        o.str("rule", issue.rule())?;
        o.str("action", issue.action())?;
        o.bool("downgraded", false)?;
        if details {
            o.str("detail", issue)?;
        }
        o.close()?;
    }
    for f in c.verdict.into_iter().flat_map(Verdict::findings) {
        sep(w)?;
        let mut o = Obj::open(w)?;
        o.str("rule", f.rule.name())?;
        o.str("action", f.action.name())?;
        o.bool("downgraded", f.downgraded)?;
        if details {
            o.str("detail", f.detail)?;
        }
        o.close()?;
    }
    w.write_char(']')
}

fn hex16(v: u16) -> impl Display {
    struct H(u16);
    impl Display for H {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:#06x}", self.0)
        }
    }
    H(v)
}

fn hex32(v: u32) -> impl Display {
    struct H(u32);
    impl Display for H {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:#010x}", self.0)
        }
    }
    H(v)
}

/// Writes a call record as one JSON object (no newline). Without `details`, findings carry
/// only their rule and action (the compact form used when a signal-context buffer is too small).
pub fn call_json<W: fmt::Write>(
    w: &mut W,
    c: &CallRecord<'_>,
    who: Who,
    phase: Phase,
    ts: SystemTime,
    lost: u64,
    details: bool,
) -> fmt::Result {
    call_json_by(w, c, who, None, phase, ts, lost, details, None)
}

/// [`call_json`], naming who ran the tool after `uid` when `by` is known.
#[allow(clippy::too_many_arguments)] // the record's parts, as call_json takes them
pub fn call_json_by<W: fmt::Write>(
    w: &mut W,
    c: &CallRecord<'_>,
    who: Who,
    by: Option<&Invoker>,
    phase: Phase,
    ts: SystemTime,
    lost: u64,
    details: bool,
    build: Option<&str>,
) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.str("record", phase.name())?;
    o.num("seq", c.seq)?;
    o.str("ts", Rfc3339(ts))?;
    o.num("pid", who.pid)?;
    o.str("exe", c.exe)?;
    o.num("uid", who.uid)?;
    if let Some(by) = by {
        by.json(&mut o, details)?;
    }
    if let Some(b) = build {
        o.str("build", b)?;
    }
    o.str("guard", c.guard.name())?;
    o.str("mode", c.mode.name())?;
    o.str("request", request_name(c.request).unwrap_or("unknown"))?;
    o.str("request_code", hex32(c.request))?;
    o.str("abi", c.abi.name())?;
    o.opt_num("host_no", c.host_no)?;
    let p = c.packet;
    o.opt_str("cmd", p.map(|p| CmdDisplay(p.cmd)))?;
    let opcode = p.and_then(|p| p.opcode);
    o.opt_str("opcode", opcode.map(hex32))?;
    o.opt_str("opcode_name", opcode.and_then(dcmd_opcode_name))?;
    o.opt_num("target_id", p.map(|p| p.target_id))?;
    o.opt_str("flags", p.map(|p| hex16(p.flags)))?;
    o.opt_str("flags_sent", p.map(|p| hex16(p.flags_sent)))?;
    o.opt_num("sgl_off", p.map(|p| p.sgl_off))?;
    o.opt_num("sge_count", p.map(|p| p.sge_count))?;
    o.opt_num("sge_bytes", p.map(|p| p.sge_bytes))?;
    o.opt_num("sense_off", p.map(|p| p.sense_off))?;
    o.opt_num("sense_len", p.map(|p| p.sense_len))?;
    o.opt_num("data_xferlen", p.map(|p| p.data_xferlen))?;
    o.str("verdict", c.decision.name())?;
    o.bool("enforced", c.enforced)?;
    o.key("findings")?;
    findings_json(o.w, c, details)?;
    let out = if phase == Phase::Outcome {
        c.outcome
    } else {
        None
    };
    o.opt_num("ret", out.map(|r| r.ret))?;
    o.opt_num("errno", out.map(|r| r.errno))?;
    o.opt_str(
        "errno_name",
        out.filter(|r| r.errno != 0).map(|r| ErrnoName(r.errno)),
    )?;
    let status = out.and_then(|r| r.cmd_status);
    o.opt_num("cmd_status", status)?;
    o.opt_str(
        "cmd_status_name",
        status.map(|s| mfi_status_name(s).unwrap_or("UNKNOWN")),
    )?;
    o.opt_num("latency_us", out.and_then(|r| r.latency_us))?;
    if c.nested {
        o.bool("nested", true)?;
    }
    if lost > 0 {
        o.num("records_lost", lost)?;
    }
    o.close()
}

/// Writes a configuration error as one JSON object (no newline).
pub fn error_json<W: fmt::Write>(
    w: &mut W,
    e: &ErrorRecord<'_>,
    who: Who,
    ts: SystemTime,
    lost: u64,
) -> fmt::Result {
    error_json_by(w, e, who, None, ts, lost, None)
}

/// [`error_json`], naming who ran the tool after `uid` when `by` is known.
pub fn error_json_by<W: fmt::Write>(
    w: &mut W,
    e: &ErrorRecord<'_>,
    who: Who,
    by: Option<&Invoker>,
    ts: SystemTime,
    lost: u64,
    build: Option<&str>,
) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.str("record", "error")?;
    o.str("ts", Rfc3339(ts))?;
    o.num("pid", who.pid)?;
    o.str("exe", e.exe)?;
    o.num("uid", who.uid)?;
    if let Some(by) = by {
        by.json(&mut o, true)?;
    }
    if let Some(b) = build {
        o.str("build", b)?;
    }
    o.str("key", e.key)?;
    o.str("value", e.value)?;
    o.str("message", e.message)?;
    if lost > 0 {
        o.num("records_lost", lost)?;
    }
    o.close()
}

/// Writes a call record as one readable line (no newline), for syslog and stderr.
pub fn call_line<W: fmt::Write>(
    w: &mut W,
    c: &CallRecord<'_>,
    who: Who,
    phase: Phase,
    lost: u64,
    details: bool,
) -> fmt::Result {
    call_line_by(w, c, who, None, phase, lost, details)
}

/// [`call_line`], adding `sudo_user`, `sudo_uid` and `login_uid` after `uid` when `by` knows
/// them (the line already names the `exe`; `argv` is in the JSON records).
pub fn call_line_by<W: fmt::Write>(
    w: &mut W,
    c: &CallRecord<'_>,
    who: Who,
    by: Option<&Invoker>,
    phase: Phase,
    lost: u64,
    details: bool,
) -> fmt::Result {
    write!(w, "#{} {} {}", c.seq, phase.name(), c.decision.name())?;
    if let Decision::Reject(errno) = c.decision {
        write!(w, " {}", ErrnoName(errno.0))?;
    }
    if !c.enforced {
        w.write_str(" (not enforced)")?;
    }
    write!(w, " {}", request_name(c.request).unwrap_or("unknown"))?;
    if let Some(p) = c.packet {
        write!(w, " {}", CmdDisplay(p.cmd))?;
        if let Some(op) = p.opcode {
            match dcmd_opcode_name(op) {
                Some(name) => write!(w, " {name}")?,
                None => write!(w, " opcode {op:#010x}")?,
            }
        }
        write!(
            w,
            " host {} target {} flags {:#06x}",
            p.host_no, p.target_id, p.flags
        )?;
        if p.flags_sent != p.flags {
            write!(w, "->{:#06x}", p.flags_sent)?;
        }
        write!(
            w,
            " sgl_off {:#x} sge_count {} sge_bytes {} sense {:#x}/{} xferlen {}",
            p.sgl_off, p.sge_count, p.sge_bytes, p.sense_off, p.sense_len, p.data_xferlen
        )?;
    } else if let Some(host) = c.host_no {
        write!(w, " host {host}")?;
    }
    if let Some(issue) = c.issue {
        write!(w, "; {} {}", issue.rule(), issue.action())?;
        if details {
            write!(w, ": {issue}")?;
        }
    }
    for f in c.verdict.into_iter().flat_map(Verdict::findings) {
        write!(w, "; {} {}", f.rule.name(), f.action.name())?;
        if f.downgraded {
            w.write_str(" (allowed)")?;
        }
        if details {
            write!(w, ": {}", f.detail)?;
        }
    }
    if let (Phase::Outcome, Some(r)) = (phase, c.outcome) {
        write!(w, "; ret {}", r.ret)?;
        if r.errno != 0 {
            write!(w, " {}", ErrnoName(r.errno))?;
        }
        if let Some(s) = r.cmd_status {
            write!(
                w,
                " cmd_status {s:#04x} {}",
                mfi_status_name(s).unwrap_or("UNKNOWN")
            )?;
        }
        if let Some(us) = r.latency_us {
            write!(w, " {us}us")?;
        }
    }
    write!(w, "; exe {} uid {}", c.exe, who.uid)?;
    if let Some(by) = by {
        by.line(w)?;
    }
    if c.nested {
        w.write_str(" (in a signal handler)")?;
    }
    if lost > 0 {
        write!(w, " ({lost} records lost)")?;
    }
    Ok(())
}

/// Writes a configuration error as one readable line (no newline).
pub fn error_line<W: fmt::Write>(w: &mut W, e: &ErrorRecord<'_>, lost: u64) -> fmt::Result {
    write!(w, "configuration: {}={:?}: {}", e.key, e.value, e.message)?;
    if lost > 0 {
        write!(w, " ({lost} records lost)")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Buffers

/// Where a line is assembled before its single `write`.
pub trait LineBuf: fmt::Write {
    /// Empties the buffer.
    fn clear(&mut self);
    /// The bytes written so far.
    fn bytes(&self) -> &[u8];
}

impl LineBuf for String {
    fn clear(&mut self) {
        String::clear(self);
    }
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// A fixed buffer on the stack, for signal-handler context where nothing may allocate.
/// A write that does not fit fails whole, so the contents stay valid UTF-8.
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> LineBuf for StackBuf<N> {
    fn clear(&mut self) {
        self.len = 0;
    }
    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Signal-context records are assembled in this many bytes of stack.
pub const NESTED_BUF: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Sinks

/// Where a record actually goes: syslog from a signal handler goes to stderr instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target<'a> {
    File(&'a std::ffi::CStr),
    Syslog,
    Stderr,
}

fn target(cfg: &Config, nested: bool) -> Option<Target<'_>> {
    match &cfg.log {
        LogTarget::None => None,
        LogTarget::File(path) => Some(Target::File(path)),
        LogTarget::Syslog if nested => Some(Target::Stderr),
        LogTarget::Syslog => Some(Target::Syslog),
        LogTarget::Stderr => Some(Target::Stderr),
    }
}

/// Assembles the bytes one `write` sends: the header for the target, the record, a newline
/// (not for syslog datagrams). Tries with details, then compact; fails only if even the compact
/// form does not fit (a [`StackBuf`] far too small).
#[cfg(test)]
fn render<B: LineBuf>(
    buf: &mut B,
    t: Target<'_>,
    rec: Record<'_>,
    who: Who,
    ts: SystemTime,
    lost: u64,
) -> bool {
    render_by(buf, t, rec, who, None, ts, lost, None)
}

/// The build of the program writing records (`mfiguard 0.1.0 (git 1a2b3c4d5e6f)`), set once.
static BUILD: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
/// Whether the process's first JSON record, which names the build, is still to be written.
static BUILD_PENDING: AtomicBool = AtomicBool::new(true);

/// Names the build of the program whose records these are: the first record the process
/// writes to a file carries it (`"build"`), so that a log says which guard wrote it.
pub fn set_build(name: &'static str) {
    let _ = BUILD.set(name);
}

/// [`render`], naming who ran the tool when `by` is known.
#[allow(clippy::too_many_arguments)] // a record's parts, as emit gathers them
fn render_by<B: LineBuf>(
    buf: &mut B,
    t: Target<'_>,
    rec: Record<'_>,
    who: Who,
    by: Option<&Invoker>,
    ts: SystemTime,
    lost: u64,
    build: Option<&str>,
) -> bool {
    for details in [true, false] {
        buf.clear();
        let done = (|| -> fmt::Result {
            match t {
                Target::Syslog => write!(
                    buf,
                    "<{}>{} mfiguard[{}]: ",
                    LOG_AUTHPRIV | rec.severity(),
                    Rfc3164(ts),
                    who.pid
                )?,
                Target::Stderr => write!(buf, "mfiguard[{}]: ", who.pid)?,
                Target::File(_) => {}
            }
            match (t, rec) {
                (Target::File(_), Record::Call(c, phase)) => {
                    call_json_by(buf, c, who, by, phase, ts, lost, details, build)?
                }
                (Target::File(_), Record::Error(e)) => {
                    error_json_by(buf, e, who, by, ts, lost, build)?
                }
                (_, Record::Call(c, phase)) => call_line_by(buf, c, who, by, phase, lost, details)?,
                (_, Record::Error(e)) => error_line(buf, e, lost)?,
            }
            if t != Target::Syslog {
                buf.write_char('\n')?;
            }
            Ok(())
        })();
        if done.is_ok() {
            return true;
        }
    }
    false
}

/// Why the file sink refused its path. Nothing is written to it; each record goes to stderr
/// instead (and is still counted in `records_lost`, since it missed the configured sink).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A symbolic link (`O_NOFOLLOW`): never followed, whoever made it.
    Symlink,
    /// A FIFO: with no reader it would hang the tool, with one it hands the records to
    /// whoever opened it.
    Fifo,
    /// A character device (`/dev/null`, a terminal, `/dev/watchdog`...).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix socket.
    Socket,
    /// A directory.
    Directory,
    /// Anything else that is not a regular file.
    NotRegular,
    /// Owned by someone who is neither root nor this process (a file pre-created in `/tmp` or a
    /// shared directory by another user, who could read, truncate or forge the records).
    ForeignOwner {
        /// The file's owner.
        owner: u32,
        /// This process's effective uid.
        euid: u32,
    },
}

impl Refusal {
    /// What a file of this kind is refused for, if it is refused: not a regular file, or not
    /// owned by root or this process's effective uid.
    pub fn of(kind: sys::FileKind, euid: u32) -> Option<Refusal> {
        let refusal = match kind.mode & libc::S_IFMT {
            libc::S_IFREG => None,
            libc::S_IFLNK => Some(Refusal::Symlink),
            libc::S_IFIFO => Some(Refusal::Fifo),
            libc::S_IFCHR => Some(Refusal::CharDevice),
            libc::S_IFBLK => Some(Refusal::BlockDevice),
            libc::S_IFSOCK => Some(Refusal::Socket),
            libc::S_IFDIR => Some(Refusal::Directory),
            _ => Some(Refusal::NotRegular),
        };
        refusal.or_else(|| {
            (kind.uid != 0 && kind.uid != euid).then_some(Refusal::ForeignOwner {
                owner: kind.uid,
                euid,
            })
        })
    }

    /// The errno a refusal counts as (for `MFIGUARD_LOG_REQUIRED`'s report).
    pub const fn errno(self) -> c_int {
        match self {
            Refusal::Symlink => libc::ELOOP,
            Refusal::Directory => libc::EISDIR,
            Refusal::ForeignOwner { .. } => libc::EPERM,
            _ => libc::ENXIO,
        }
    }
}

impl Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match *self {
            Refusal::Symlink => return f.write_str("it is a symbolic link (never followed)"),
            Refusal::NotRegular => return f.write_str("it is not a regular file"),
            Refusal::ForeignOwner { owner, euid } => {
                return write!(
                    f,
                    "it is owned by uid {owner}, neither root nor this process (uid {euid}): \
                     refused, not written to"
                )
            }
            Refusal::Fifo => "a FIFO",
            Refusal::CharDevice => "a character device",
            Refusal::BlockDevice => "a block device",
            Refusal::Socket => "a socket",
            Refusal::Directory => "a directory",
        };
        write!(f, "it is {what}, not a regular file")
    }
}

/// How a sink failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SinkError {
    /// A system call failed with this errno.
    Failed(c_int),
    /// The file sink refused its path.
    Refused(Refusal),
}

impl SinkError {
    const fn errno(self) -> c_int {
        match self {
            SinkError::Failed(e) => e,
            SinkError::Refused(r) => r.errno(),
        }
    }
}

impl From<c_int> for SinkError {
    fn from(errno: c_int) -> Self {
        SinkError::Failed(errno)
    }
}

/// The mode of a record file the guard creates: the owner writes, the group reads (logrotate's
/// `create 0640 root adm`, which the shipped configuration uses too).
pub const CREATE_MODE: u32 = 0o640;
/// The group a created record file gets when it exists and the process may give it.
const LOG_GROUP: &[u8] = b"adm";
const GROUP_FILE: &str = "/etc/group";

/// The gid of group `adm`, from `/etc/group`, read without allocating (the group is always a
/// local one; NSS modules are not something to load into a host from a signal handler).
fn log_group_gid() -> Option<u32> {
    let file = std::fs::File::open(GROUP_FILE).ok()?;
    crate::device::scan_lines(file, |line, cut| {
        // name:password:gid:members; a cut line still has its first three fields.
        let mut fields = line.split(|&b| b == b':');
        if fields.next()? != LOG_GROUP {
            return None;
        }
        let _password = fields.next()?;
        let gid = fields.next()?;
        // An uncut line has the member list after the gid; a cut one may end inside it.
        if !cut && fields.next().is_none() {
            return None;
        }
        std::str::from_utf8(gid).ok()?.parse().ok()
    })
    .ok()
    .flatten()
}

/// Opens the record file for one append, or says why not.
///
/// The path is looked at first (`lstat`), so that a FIFO, a device or a symlink is refused
/// without being opened at all (opening a device can have effects of its own:
/// `/dev/watchdog`), until it has once been acceptable; then opened
/// `O_WRONLY|O_APPEND|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC`, and the opened descriptor checked
/// (`fstat`), which is what counts: the path may have been replaced in between. A missing file is created with `O_EXCL`, mode 0640, group `adm` when
/// that group exists and the process may give it.
fn open_log(path: &std::ffi::CStr) -> Result<std::os::fd::OwnedFd, SinkError> {
    // The path is looked at before it is opened until it has once been an acceptable file:
    // after that only what is opened is checked (one system call less per record; the path of
    // a process's log does not change, and replacing a checked regular file by a device node
    // takes root). A rotation (the file missing) is no reason to look again: O_EXCL creates.
    if !LOG_PATH_CHECKED.load(Ordering::Relaxed) {
        match sys::lstat(path) {
            Ok(kind) => {
                if let Some(r) = Refusal::of(kind, owner_check_euid(kind.uid)) {
                    return Err(SinkError::Refused(r));
                }
            }
            Err(libc::ENOENT) => {}
            Err(e) => return Err(SinkError::Failed(e)),
        }
    }
    // A file removed between the open and the create (a rotation) is looked at again; three
    // rounds of that in a row is a directory being played with, and the record is lost.
    for _ in 0..3 {
        let (fd, created) = match sys::open_existing(path) {
            Ok(fd) => (fd, false),
            Err(libc::ENOENT) => match sys::create_new(path, CREATE_MODE) {
                Ok(fd) => (fd, true),
                Err(libc::EEXIST) => continue,
                Err(e) => return Err(SinkError::Failed(e)),
            },
            Err(libc::ELOOP) => return Err(refused(Refusal::Symlink)),
            Err(libc::EISDIR) => return Err(refused(Refusal::Directory)),
            // O_NONBLOCK: a FIFO with no reader (or a device with no driver) fails at once.
            Err(libc::ENXIO) => {
                let why = match sys::lstat(path) {
                    Ok(kind) => Refusal::of(kind, owner_check_euid(kind.uid)),
                    Err(_) => None,
                };
                return Err(refused(why.unwrap_or(Refusal::NotRegular)));
            }
            Err(e) => return Err(SinkError::Failed(e)),
        };
        let kind = sys::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
        // A file this call created (O_EXCL) is ours whoever the file system says owns it (an
        // NFS export squashing root to nobody): only its type is checked.
        let kind = if created {
            sys::FileKind { uid: 0, ..kind }
        } else {
            kind
        };
        if let Some(r) = Refusal::of(kind, owner_check_euid(kind.uid)) {
            return Err(refused(r));
        }
        if created {
            // Best effort: a process that may not give the group keeps its own, and the mode
            // is exact whatever the umask (0640 is already no more than the umask allows
            // others: nothing).
            if let Some(gid) = log_group_gid() {
                let _ = sys::fchown_group(fd.as_fd(), gid);
            }
            let _ = sys::fchmod(fd.as_fd(), CREATE_MODE);
        }
        LOG_PATH_CHECKED.store(true, Ordering::Relaxed);
        return Ok(fd);
    }
    Err(SinkError::Failed(libc::EAGAIN))
}

/// Whether the record file's path has been an acceptable file once in this process (see
/// `open_log`); cleared by any refusal.
static LOG_PATH_CHECKED: AtomicBool = AtomicBool::new(false);

fn refused(r: Refusal) -> SinkError {
    LOG_PATH_CHECKED.store(false, Ordering::Relaxed);
    SinkError::Refused(r)
}

/// The effective uid to compare a file's owner with: only asked for when the owner is not
/// root (a root-owned file is always acceptable), to spare a system call per record.
fn owner_check_euid(owner: u32) -> u32 {
    if owner == 0 {
        0
    } else {
        sys::euid()
    }
}

/// `/dev/log`, for the system call.
const SYSLOG_SOCKET_C: &std::ffi::CStr = c"/dev/log";
/// The journal's socket, for the system call.
const JOURNAL_SOCKET_C: &std::ffi::CStr = c"/run/systemd/journal/socket";
const _: () = assert!(JOURNAL_SOCKET_C.to_bytes().len() == JOURNAL_SOCKET.len());
const _: () = assert!(SYSLOG_SOCKET_C.to_bytes().len() == SYSLOG_SOCKET.len());

fn send(cfg: &Config, t: Target<'_>, bytes: &[u8]) -> Result<(), SinkError> {
    match t {
        Target::File(path) => {
            let fd = open_log(path)?;
            sys::write_once(std::os::fd::AsRawFd::as_raw_fd(&fd), bytes)?;
            if cfg.log_sync {
                sys::fdatasync(fd.as_fd())?;
            }
            Ok(())
        }
        Target::Stderr => Ok(sys::write_stderr_nowait(bytes)?),
        // Never waits: a syslog daemon that stopped reading costs a lost record.
        Target::Syslog => Ok(sys::send_datagram_nowait(SYSLOG_SOCKET_C, bytes)?),
    }
}

/// One field of the journal's native protocol, in its binary-safe form (`KEY`, a newline, the
/// value's length as a little-endian u64, the value, a newline), so that no value (a path with
/// a newline in it) can end a field early or add one.
fn journal_field(out: &mut Vec<u8>, key: &str, value: impl Display) {
    let mut v = String::new();
    let _ = write!(v, "{value}");
    out.extend_from_slice(key.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    out.extend_from_slice(v.as_bytes());
    out.push(b'\n');
}

/// A record as one journal entry (systemd's native protocol): the readable line as `MESSAGE`,
/// `PRIORITY`, `SYSLOG_FACILITY` (10, authpriv), `SYSLOG_IDENTIFIER=mfiguard`, `SYSLOG_PID`,
/// and the record's own fields: `MFIGUARD_RECORD` (decision, outcome, error), `MFIGUARD_SEQ`,
/// `MFIGUARD_MODE`, `MFIGUARD_VERDICT`, `MFIGUARD_RULE` (one per finding), `MFIGUARD_REQUEST`,
/// `MFIGUARD_CMD`, `MFIGUARD_OPCODE`, `MFIGUARD_OPCODE_NAME`, `MFIGUARD_TARGET_ID`,
/// `MFIGUARD_FLAGS`, `MFIGUARD_FLAGS_SENT`, `MFIGUARD_RET`, `MFIGUARD_ERRNO`,
/// `MFIGUARD_CMD_STATUS`, `MFIGUARD_EXE`, `MFIGUARD_UID`, who ran it (`MFIGUARD_SUDO_USER`,
/// `MFIGUARD_SUDO_UID`, `MFIGUARD_LOGIN_UID`), `MFIGUARD_RECORDS_LOST`; for an error record
/// `MFIGUARD_KEY` and `MFIGUARD_VALUE`. Allocates: not for the nested path.
pub fn journal_entry(rec: Record<'_>, who: Who, by: Option<&Invoker>, lost: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let mut message = String::with_capacity(512);
    let _ = match rec {
        Record::Call(c, phase) => call_line_by(&mut message, c, who, by, phase, lost, true),
        Record::Error(e) => error_line(&mut message, e, lost),
    };
    let f = &mut out;
    journal_field(f, "MESSAGE", &message);
    journal_field(f, "PRIORITY", rec.severity());
    journal_field(f, "SYSLOG_FACILITY", LOG_AUTHPRIV >> 3);
    journal_field(f, "SYSLOG_IDENTIFIER", "mfiguard");
    journal_field(f, "SYSLOG_PID", who.pid);
    match rec {
        Record::Call(c, phase) => {
            journal_field(f, "MFIGUARD_RECORD", phase.name());
            journal_field(f, "MFIGUARD_SEQ", c.seq);
            journal_field(f, "MFIGUARD_MODE", c.mode.name());
            journal_field(f, "MFIGUARD_VERDICT", c.decision.name());
            if let Some(issue) = c.issue {
                journal_field(f, "MFIGUARD_RULE", issue.rule());
            }
            for finding in c.verdict.into_iter().flat_map(Verdict::findings) {
                journal_field(f, "MFIGUARD_RULE", finding.rule.name());
            }
            journal_field(
                f,
                "MFIGUARD_REQUEST",
                request_name(c.request).unwrap_or("unknown"),
            );
            if let Some(p) = c.packet {
                journal_field(f, "MFIGUARD_CMD", CmdDisplay(p.cmd));
                if let Some(op) = p.opcode {
                    journal_field(f, "MFIGUARD_OPCODE", hex32(op));
                    if let Some(name) = dcmd_opcode_name(op) {
                        journal_field(f, "MFIGUARD_OPCODE_NAME", name);
                    }
                }
                journal_field(f, "MFIGUARD_TARGET_ID", p.target_id);
                journal_field(f, "MFIGUARD_FLAGS", hex16(p.flags));
                journal_field(f, "MFIGUARD_FLAGS_SENT", hex16(p.flags_sent));
            }
            if let (Phase::Outcome, Some(r)) = (phase, c.outcome) {
                journal_field(f, "MFIGUARD_RET", r.ret);
                if r.errno != 0 {
                    journal_field(f, "MFIGUARD_ERRNO", ErrnoName(r.errno));
                }
                if let Some(s) = r.cmd_status {
                    journal_field(
                        f,
                        "MFIGUARD_CMD_STATUS",
                        mfi_status_name(s).unwrap_or("UNKNOWN"),
                    );
                }
            }
            journal_field(f, "MFIGUARD_EXE", c.exe);
        }
        Record::Error(e) => {
            journal_field(f, "MFIGUARD_RECORD", "error");
            journal_field(f, "MFIGUARD_KEY", e.key);
            journal_field(f, "MFIGUARD_VALUE", e.value);
            journal_field(f, "MFIGUARD_EXE", e.exe);
        }
    }
    journal_field(f, "MFIGUARD_UID", who.uid);
    if let Some(by) = by {
        if let Some(u) = &by.sudo_user {
            journal_field(f, "MFIGUARD_SUDO_USER", u);
        }
        if let Some(u) = by.sudo_uid {
            journal_field(f, "MFIGUARD_SUDO_UID", u);
        }
        if let Some(u) = by.login_uid {
            journal_field(f, "MFIGUARD_LOGIN_UID", u);
        }
    }
    if lost > 0 {
        journal_field(f, "MFIGUARD_RECORDS_LOST", lost);
    }
    out
}

/// Writes one record to the configured sink.
///
/// `nested`: the call arrived while this thread was already inside the guard (a signal
/// handler). Then nothing here allocates or takes a lock: the record is assembled in a
/// [`StackBuf`] and sent with `open`/`write`/`close` (file, stderr), which are
/// async-signal-safe; syslog goes to stderr instead, since the outer call may be in the middle
/// of its own datagram and a syslog failure could not be reported from there.
///
/// No sink ever waits for a reader: the file is opened `O_NONBLOCK` and must be a regular file,
/// syslog datagrams are sent `MSG_DONTWAIT`, and stderr is written only when it can take the
/// line within a short grace period (once per stall, see `sys::write_stderr_nowait`).
///
/// `Ok(false)` when the sink is `none`. On failure the record is counted as lost and the first
/// failure in the process is reported on stderr; the errno is returned for
/// `MFIGUARD_LOG_REQUIRED`. A record file that is refused ([`Refusal`]: not a regular file, or
/// someone else's) is never written to; its records go to stderr instead, and still count as
/// lost.
pub fn emit(cfg: &Config, nested: bool, rec: Record<'_>) -> Result<bool, c_int> {
    let Some(t) = target(cfg, nested) else {
        return Ok(false);
    };
    let ts = SystemTime::now();
    let who = match rec {
        Record::Call(c, _) => c.caller.unwrap_or_else(Who::now),
        Record::Error(_) => Who::now(),
    };
    let lost = LOST.load(Ordering::Relaxed);
    if nested {
        // Who ran the tool only if it was read: reading it allocates.
        let by = invoker_if_read();
        let mut buf = StackBuf::<NESTED_BUF>::new();
        deliver(cfg, nested, t, &mut buf, rec, who, by, ts, lost)
    } else {
        let by = match rec {
            Record::Call(c, _) if c.invoker.is_some() => c.invoker,
            _ => Some(invoker()),
        };
        let mut buf = String::with_capacity(1024);
        deliver(cfg, nested, t, &mut buf, rec, who, by, ts, lost)
    }
}

#[allow(clippy::too_many_arguments)] // emit's locals, shared by its two buffer types
fn deliver<B: LineBuf>(
    cfg: &Config,
    nested: bool,
    t: Target<'_>,
    buf: &mut B,
    rec: Record<'_>,
    who: Who,
    by: Option<&Invoker>,
    ts: SystemTime,
    lost: u64,
) -> Result<bool, c_int> {
    // Syslog on a host with the journal: one native-protocol datagram with structured fields
    // (allocates: not from the nested path, which falls back to the syslog line).
    let journal = match t {
        Target::Syslog if !nested && std::path::Path::new(JOURNAL_SOCKET).exists() => {
            let entry = journal_entry(rec, who, by, lost);
            sys::send_datagram_nowait(JOURNAL_SOCKET_C, &entry).ok()
        }
        _ => None,
    };
    // The first JSON record of the process names the build (the next one does if this one
    // is lost).
    let build = match (t, BUILD.get()) {
        (Target::File(_), Some(b)) if BUILD_PENDING.swap(false, Ordering::Relaxed) => Some(*b),
        _ => None,
    };
    let result = match journal {
        Some(()) => Ok(()),
        None if render_by(buf, t, rec, who, by, ts, lost, build) => send(cfg, t, buf.bytes()),
        None => Err(SinkError::Failed(libc::ENOBUFS)),
    };
    if result.is_err() && build.is_some() {
        BUILD_PENDING.store(true, Ordering::Relaxed);
    }
    let err = match result {
        Ok(()) => {
            if lost > 0 {
                // Reported in this record: count again from what is still unreported.
                let _ = LOST.compare_exchange(lost, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
            return Ok(true);
        }
        Err(err) => err,
    };
    LOST.fetch_add(1, Ordering::Relaxed);
    let errno = err.errno();
    if !nested {
        log::debug!(
            "audit sink {} failed: {}",
            cfg.log.describe(),
            ErrnoName(errno)
        );
    }
    let required = if cfg.log_required {
        "; MegaRAID calls fail with EIO (MFIGUARD_LOG_REQUIRED=1)"
    } else {
        ""
    };
    if !FAILURE_REPORTED.swap(true, Ordering::Relaxed) {
        let sink = SinkName(cfg.log.describe());
        match err {
            SinkError::Failed(_) => report(
                t,
                who.pid,
                format_args!(
                    "cannot write audit records to {sink}: {}; further failures are counted in records_lost{required}",
                    ErrnoName(errno),
                ),
            ),
            SinkError::Refused(why) => report(
                t,
                who.pid,
                format_args!(
                    "cannot write audit records to {sink}: {why}; its records go to stderr instead and are counted in records_lost{required}",
                ),
            ),
        }
    }
    if let SinkError::Refused(_) = err {
        // The evidence is kept where the tool's output goes, never in the refused file.
        if render_by(buf, Target::Stderr, rec, who, by, ts, lost, None) {
            let _ = sys::write_stderr_nowait(buf.bytes());
        }
    }
    Err(errno)
}

/// Reports, on stderr, a problem that the sink could not record (a call failed closed under
/// `MFIGUARD_LOG_REQUIRED=1`); nothing when stderr is itself the sink that failed. One line,
/// assembled on the stack, one `write`.
pub fn report_elsewhere(cfg: &Config, nested: bool, pid: u32, message: fmt::Arguments<'_>) {
    match target(cfg, nested) {
        Some(t) => report(t, pid, message),
        None => report(Target::Syslog, pid, message),
    }
}

/// A sink's name in a one-line report. A name longer than 240 bytes (a long log path) keeps its
/// first and last 100 characters around `...`, so that the line still has room for the errno
/// and the policy after it.
pub struct SinkName<'a>(pub &'a str);

impl Display for SinkName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s.len() <= 240 {
            return f.write_str(s);
        }
        let head = s.char_indices().nth(100).map_or(s.len(), |(i, _)| i);
        let tail = s.char_indices().rev().nth(99).map_or(0, |(i, _)| i);
        match (s.get(..head), s.get(tail..)) {
            (Some(h), Some(t)) => write!(f, "{h}...{t}"),
            _ => f.write_str(s),
        }
    }
}

/// A line buffer that keeps what fits and marks the cut with `...`: a report is never dropped
/// for being too long.
struct CutLine<const N: usize> {
    buf: StackBuf<N>,
    cut: bool,
}

impl<const N: usize> fmt::Write for CutLine<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Room for the "...\n" that ends a cut line.
        let room = N.saturating_sub(4).saturating_sub(self.buf.len);
        if s.len() <= room {
            return self.buf.write_str(s);
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        let _ = self.buf.write_str(s.get(..end).unwrap_or_default());
        self.cut = true;
        Err(fmt::Error)
    }
}

fn report(failed: Target<'_>, pid: u32, message: fmt::Arguments<'_>) {
    if failed == Target::Stderr {
        return;
    }
    let mut line = CutLine::<1024> {
        buf: StackBuf::new(),
        cut: false,
    };
    if writeln!(line, "mfiguard[{pid}]: {message}").is_err() {
        if !line.cut {
            return;
        }
        let _ = line.buf.write_str("...\n");
    }
    let _ = sys::write_stderr_nowait(line.buf.bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfiguard_sanitizer::builder::samples;
    use mfiguard_sanitizer::{decide_packet, decode, Policy, RuleId, RuleSet};

    const WHO: Who = Who { pid: 4242, uid: 0 };

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        json_string(&mut out, s).unwrap();
        out
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(escaped("plain"), "\"plain\"");
        assert_eq!(escaped("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escaped("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(
            escaped("\u{0}\u{1f}\u{7f}\u{8}\u{c}"),
            r#""\u0000\u001f\u007f\b\f""#
        );
        assert_eq!(escaped("café ✓ \u{2028}"), "\"café ✓ \u{2028}\"");
        assert_eq!(escaped(""), "\"\"");
        // Every escaped string is valid JSON that decodes back (checked by a tiny decoder).
        for s in ["\"\\\"", "x\u{1}y", "/usr/sbin/Mega\"Cli\n64"] {
            assert_eq!(unescape(&escaped(s)), s);
        }
    }

    /// Decodes a JSON string literal produced by `json_string` (enough for the tests).
    fn unescape(lit: &str) -> String {
        let inner = &lit[1..lit.len() - 1];
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                assert!(c as u32 >= 0x20 && c != '"', "raw {c:?} in {lit}");
                out.push(c);
                continue;
            }
            match chars.next().unwrap() {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                other => panic!("bad escape {other}"),
            }
        }
        out
    }

    #[test]
    fn timestamps() {
        let t = |s: u64, us: u32| {
            UNIX_EPOCH
                + std::time::Duration::from_secs(s)
                + std::time::Duration::from_micros(u64::from(us))
        };
        assert_eq!(Rfc3339(t(0, 0)).to_string(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            Rfc3339(t(951_782_400, 7)).to_string(),
            "2000-02-29T00:00:00.000007Z"
        );
        assert_eq!(
            Rfc3339(t(1_714_566_896, 123_456)).to_string(),
            "2024-05-01T12:34:56.123456Z"
        );
        assert_eq!(
            Rfc3339(t(4_102_444_799, 999_999)).to_string(),
            "2099-12-31T23:59:59.999999Z"
        );
        assert_eq!(Rfc3164(t(1_714_566_896, 0)).to_string(), "May  1 12:34:56");
    }

    fn seed_record<'a>(verdict: &'a Verdict, info: PacketInfo) -> CallRecord<'a> {
        CallRecord {
            guard: Guard::Preload,
            caller: None,
            invoker: None,
            abi: Abi::NATIVE,
            seq: 7,
            exe: "/opt/MegaRAID/MegaCli/MegaCli64",
            mode: GuardMode::Enforce,
            request: Abi::NATIVE.firmware_request(),
            nested: false,
            host_no: Some(info.host_no),
            packet: Some(info),
            decision: verdict.decision(),
            enforced: verdict.enforced(),
            verdict: Some(verdict),
            issue: None,
            outcome: None,
        }
    }

    fn stp_probe() -> (Verdict, PacketInfo) {
        let bytes =
            samples::megacli_8_01_06_stp_probe(Abi::NATIVE, 3, 0x7f00_0000_1000, 0x7f00_0000_2000)
                .build();
        let p = decode(Abi::NATIVE, &bytes).unwrap();
        let v = decide_packet(&Policy::default(), &p);
        let info = PacketInfo::new(&p, &v);
        (v, info)
    }

    #[test]
    fn a_decision_and_its_outcome_as_json() {
        let (v, info) = stp_probe();
        assert_eq!(v.decision(), Decision::Rewrite);
        let mut rec = seed_record(&v, info);
        let ts = UNIX_EPOCH + std::time::Duration::from_secs(1_714_566_896);
        let mut decision = String::new();
        call_json(&mut decision, &rec, WHO, Phase::Decision, ts, 0, true).unwrap();
        let (request, code, abi) = match Abi::NATIVE {
            Abi::Lp64 => ("MEGASAS_IOC_FIRMWARE", "0xc1944d01", "x86_64"),
            Abi::Ilp32 => ("MEGASAS_IOC_FIRMWARE32", "0xc1144d01", "i386"),
        };
        let expected = format!(
            r#"{{"record":"decision","seq":7,"ts":"2024-05-01T12:34:56.000000Z","pid":4242,"exe":"/opt/MegaRAID/MegaCli/MegaCli64","uid":0,"guard":"preload","mode":"enforce","request":"{request}","request_code":"{code}","abi":"{abi}","host_no":0,"cmd":"STP","opcode":null,"opcode_name":null,"target_id":3,"flags":"0x0032","flags_sent":"0x0010","sgl_off":48,"sge_count":2,"#
        );
        assert!(decision.starts_with(&expected), "{decision}");
        assert!(decision.contains(r#""verdict":"rewrite","enforced":true,"findings":[{"rule":"frame.addressing-flags","action":"rewrite","downgraded":false,"detail":"flags 0x0032 (IEEE|SGL64|DIR_READ): cleared IEEE|SGL64"#), "{decision}");
        assert!(decision.ends_with(r#""ret":null,"errno":null,"errno_name":null,"cmd_status":null,"cmd_status_name":null,"latency_us":null}"#), "{decision}");
        rec.outcome = Some(Outcome {
            ret: 0,
            errno: 0,
            cmd_status: Some(0),
            latency_us: Some(153),
        });
        let mut outcome = String::new();
        call_json(&mut outcome, &rec, WHO, Phase::Outcome, ts, 3, true).unwrap();
        assert!(outcome.starts_with(r#"{"record":"outcome","seq":7,"#));
        assert!(outcome.ends_with(r#""ret":0,"errno":0,"errno_name":null,"cmd_status":0,"cmd_status_name":"MFI_STAT_OK","latency_us":153,"records_lost":3}"#), "{outcome}");
        // The decision record never shows an outcome, even if one is known.
        let mut again = String::new();
        call_json(&mut again, &rec, WHO, Phase::Decision, ts, 0, true).unwrap();
        assert_eq!(again, decision);
    }

    #[test]
    fn a_rejection_as_a_readable_line() {
        let bytes = samples::dcmd_read(Abi::NATIVE, 0x0101_0000, 0x1000, 2048)
            .sgl_off(0x40000)
            .build();
        let p = decode(Abi::NATIVE, &bytes).unwrap();
        let v = decide_packet(&Policy::default(), &p);
        let mut rec = seed_record(&v, PacketInfo::new(&p, &v));
        rec.outcome = Some(Outcome {
            ret: -1,
            errno: libc::EINVAL,
            cmd_status: None,
            latency_us: None,
        });
        let mut line = String::new();
        call_line(&mut line, &rec, WHO, Phase::Outcome, 0, true).unwrap();
        assert!(
            line.starts_with("#7 outcome reject EINVAL MEGASAS_IOC_FIRMWARE"),
            "{line}"
        );
        assert!(line.contains(" DCMD MR_DCMD_CTRL_GET_INFO host 0 target 0 flags 0x0010 sgl_off 0x40000 sge_count 1"), "{line}");
        assert!(
            line.contains("; sgl.bounds reject: SGL region [0x40000, 0x4000c)"),
            "{line}"
        );
        assert!(
            line.ends_with("; ret -1 EINVAL; exe /opt/MegaRAID/MegaCli/MegaCli64 uid 0"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn allowed_rules_and_guard_issues_are_findings() {
        let bytes = samples::dcmd_read(Abi::NATIVE, 0x0101_0000, 0x1000, 2048)
            .sgl_off(0x40000)
            .build();
        let p = decode(Abi::NATIVE, &bytes).unwrap();
        let policy = Policy {
            allow: RuleSet::EMPTY.with(RuleId::SglBounds),
            ..Policy::default()
        };
        let v = decide_packet(&policy, &p);
        let rec = seed_record(&v, PacketInfo::new(&p, &v));
        let mut json = String::new();
        call_json(&mut json, &rec, WHO, Phase::Outcome, UNIX_EPOCH, 0, false).unwrap();
        assert!(
            json.contains(r#"{"rule":"sgl.bounds","action":"warn","downgraded":true}"#),
            "{json}"
        );
        let fault = CallRecord {
            packet: None,
            host_no: None,
            verdict: None,
            decision: Decision::Reject(Errno::EFAULT),
            issue: Some(GuardIssue::Unreadable { addr: 0, len: 404 }),
            outcome: Some(Outcome {
                ret: -1,
                errno: libc::EFAULT,
                cmd_status: None,
                latency_us: None,
            }),
            ..rec
        };
        let mut json = String::new();
        call_json(&mut json, &fault, WHO, Phase::Outcome, UNIX_EPOCH, 0, true).unwrap();
        assert!(json.contains(r#""cmd":null,"#));
        assert!(json.contains(r#""verdict":"reject","enforced":true,"findings":[{"rule":"guard.fault","action":"reject","downgraded":false,"detail":"the 404-byte packet at 0x0 is not readable"}],"ret":-1,"errno":14,"errno_name":"EFAULT""#), "{json}");
    }

    /// Every rule firing at once: the largest record a packet can make.
    fn every_rule_at_once() -> (Verdict, PacketInfo) {
        let bytes = samples::scsi_inquiry(Abi::NATIVE, 1, 0x1000, 36, 0x2000)
            .sge_count(40)
            .sgl_off(0x1_0000)
            .sense_off(0x4_0000)
            .sense_len(0x10_0000)
            .header(|h| {
                h.cmd = 0x42;
                h.flags = 0xffff.into();
                h.sge_count = 200;
                h.data_xferlen = u32::MAX.into();
            })
            .build();
        let p = decode(Abi::NATIVE, &bytes).unwrap();
        let v = decide_packet(&Policy::default(), &p);
        let info = PacketInfo::new(&p, &v);
        (v, info)
    }

    #[test]
    fn the_worst_record_fits_the_signal_context_buffer_or_degrades_to_compact() {
        // Every rule firing at once, the longest exe kept, audit mode.
        let (v, info) = every_rule_at_once();
        let exe = "\u{1}".repeat(crate::config::EXE_MAX);
        let rec = CallRecord {
            exe: &exe,
            ..seed_record(&v, info)
        };
        let mut big = String::new();
        call_json(
            &mut big,
            &rec,
            WHO,
            Phase::Outcome,
            UNIX_EPOCH,
            u64::MAX,
            true,
        )
        .unwrap();
        let mut buf = StackBuf::<NESTED_BUF>::new();
        let file = std::ffi::CString::new("/x").unwrap();
        assert!(render(
            &mut buf,
            Target::File(&file),
            Record::Call(&rec, Phase::Outcome),
            WHO,
            UNIX_EPOCH,
            u64::MAX
        ));
        assert!(buf.bytes().ends_with(b"}\n"));
        if big.len() < NESTED_BUF {
            assert_eq!(&buf.bytes()[..big.len()], big.as_bytes());
        }
        // A buffer too small for anything fails cleanly.
        let mut tiny = StackBuf::<16>::new();
        assert!(!render(
            &mut tiny,
            Target::Stderr,
            Record::Call(&rec, Phase::Outcome),
            WHO,
            UNIX_EPOCH,
            0
        ));
    }

    #[test]
    fn stack_buffers_refuse_whole_writes() {
        let mut b = StackBuf::<8>::new();
        b.write_str("12345").unwrap();
        assert!(b.write_str("6789").is_err());
        assert_eq!(b.bytes(), b"12345");
        b.write_str("678").unwrap();
        assert_eq!(b.bytes(), b"12345678");
    }

    #[test]
    fn error_records() {
        let e = ErrorRecord {
            key: "MFIGUARD_MODE",
            value: "enf\"orec",
            message: "unknown mode (enforce, readonly, audit, off); using readonly",
            exe: "/bin/x",
        };
        let mut json = String::new();
        error_json(&mut json, &e, Who { pid: 1, uid: 2 }, UNIX_EPOCH, 0).unwrap();
        assert_eq!(
            json,
            r#"{"record":"error","ts":"1970-01-01T00:00:00.000000Z","pid":1,"exe":"/bin/x","uid":2,"key":"MFIGUARD_MODE","value":"enf\"orec","message":"unknown mode (enforce, readonly, audit, off); using readonly"}"#
        );
        let mut buf = String::new();
        assert!(render(
            &mut buf,
            Target::Syslog,
            Record::Error(&e),
            Who { pid: 1, uid: 2 },
            UNIX_EPOCH,
            0
        ));
        assert_eq!(buf, "<84>Jan  1 00:00:00 mfiguard[1]: configuration: MFIGUARD_MODE=\"enf\\\"orec\": unknown mode (enforce, readonly, audit, off); using readonly");
    }

    #[test]
    fn long_sink_names_are_elided_and_long_reports_cut_not_dropped() {
        let short = "/var/log/mfiguard/audit.jsonl";
        assert_eq!(SinkName(short).to_string(), short);
        let long = format!("/nonexistent/{}é/audit.jsonl", "d".repeat(1000));
        let shown = SinkName(&long).to_string();
        assert_eq!(shown.chars().count(), 203, "{shown}");
        assert!(shown.starts_with("/nonexistent/ddd") && shown.ends_with("dé/audit.jsonl"));
        assert!(shown.contains("..."));
        let mut line = CutLine::<64> {
            buf: StackBuf::new(),
            cut: false,
        };
        assert!(write!(line, "mfiguard[1]: {}é{}", "x".repeat(45), "y".repeat(100)).is_err());
        assert!(line.cut);
        let text = std::str::from_utf8(line.buf.bytes()).unwrap();
        assert_eq!(text.len(), 60, "{text}");
        assert!(text.ends_with("xé"), "{text}");
        // Never half a character.
        let mut line = CutLine::<64> {
            buf: StackBuf::new(),
            cut: false,
        };
        assert!(write!(line, "{}é", "x".repeat(59)).is_err());
        assert_eq!(line.buf.bytes(), "x".repeat(59).as_bytes());
    }

    #[test]
    fn the_record_file_must_be_a_regular_file_of_root_or_ours() {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("mfiguard-open-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let c = |p: &std::path::Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();

        // Created: a regular file, mode 0640 whatever the umask, group adm if there is one and
        // we may give it (root may).
        let new = dir.join("new.jsonl");
        assert!(open_log(&c(&new)).is_ok());
        let meta = std::fs::metadata(&new).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        if let (Some(adm), 0) = (log_group_gid(), sys::euid()) {
            assert_eq!(meta.gid(), adm);
        }
        // Existing and ours: opened, mode untouched.
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(open_log(&c(&new)).is_ok());
        assert_eq!(
            std::fs::metadata(&new).unwrap().permissions().mode() & 0o7777,
            0o600
        );

        // A FIFO with no reader: refused at once, never opened (no hang).
        let fifo = dir.join("fifo");
        let fifo_c = c(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        assert_eq!(
            open_log(&fifo_c).unwrap_err(),
            SinkError::Refused(Refusal::Fifo)
        );
        // Also once the path was found acceptable (no look before the open): the open fails
        // at once (ENXIO) and says why; with a reader, the opened descriptor is refused.
        LOG_PATH_CHECKED.store(true, Ordering::Relaxed);
        assert_eq!(
            open_log(&fifo_c).unwrap_err(),
            SinkError::Refused(Refusal::Fifo)
        );
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        LOG_PATH_CHECKED.store(true, Ordering::Relaxed);
        assert_eq!(
            open_log(&fifo_c).unwrap_err(),
            SinkError::Refused(Refusal::Fifo)
        );
        drop(reader);
        LOG_PATH_CHECKED.store(true, Ordering::Relaxed);
        assert_eq!(
            open_log(c"/dev/null").unwrap_err(),
            SinkError::Refused(Refusal::CharDevice)
        );
        assert_eq!(
            open_log(c"/dev/null").unwrap_err(),
            SinkError::Refused(Refusal::CharDevice)
        );
        assert_eq!(
            open_log(&c(&dir)).unwrap_err(),
            SinkError::Refused(Refusal::Directory)
        );
        let link = dir.join("link");
        std::os::unix::fs::symlink(&new, &link).unwrap();
        assert_eq!(
            open_log(&c(&link)).unwrap_err(),
            SinkError::Refused(Refusal::Symlink)
        );
        // A dangling symlink is not created through either.
        let dangling = dir.join("dangling");
        std::os::unix::fs::symlink(dir.join("target"), &dangling).unwrap();
        assert_eq!(
            open_log(&c(&dangling)).unwrap_err(),
            SinkError::Refused(Refusal::Symlink)
        );
        assert!(!dir.join("target").exists());

        // Someone else's file (root can make one to test with).
        if sys::euid() == 0 {
            let theirs = dir.join("theirs.jsonl");
            std::fs::write(&theirs, "").unwrap();
            std::os::unix::fs::chown(&theirs, Some(4321), None).unwrap();
            assert_eq!(
                open_log(&c(&theirs)).unwrap_err(),
                SinkError::Refused(Refusal::ForeignOwner {
                    owner: 4321,
                    euid: 0
                })
            );
            assert_eq!(std::fs::read(&theirs).unwrap(), b"");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refusals_read_clearly() {
        assert_eq!(
            Refusal::Fifo.to_string(),
            "it is a FIFO, not a regular file"
        );
        assert_eq!(
            Refusal::ForeignOwner {
                owner: 1000,
                euid: 0
            }
            .to_string(),
            "it is owned by uid 1000, neither root nor this process (uid 0): refused, not written to"
        );
        let kind = |mode, uid| sys::FileKind { mode, rdev: 0, uid };
        assert_eq!(Refusal::of(kind(libc::S_IFREG | 0o600, 0), 1000), None);
        assert_eq!(Refusal::of(kind(libc::S_IFREG | 0o600, 1000), 1000), None);
        assert_eq!(
            Refusal::of(kind(libc::S_IFREG | 0o666, 1001), 1000),
            Some(Refusal::ForeignOwner {
                owner: 1001,
                euid: 1000
            })
        );
        assert_eq!(
            Refusal::of(kind(libc::S_IFSOCK, 0), 0),
            Some(Refusal::Socket)
        );
        assert_eq!(
            Refusal::of(kind(libc::S_IFBLK, 0), 0),
            Some(Refusal::BlockDevice)
        );
    }

    #[test]
    fn a_file_sink_appends_whole_lines_and_reports_failure() {
        let dir = std::env::temp_dir().join(format!("mfiguard-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.jsonl");
        let _ = std::fs::remove_file(&path);
        let cfg = Config {
            log: LogTarget::File(std::ffi::CString::new(path.to_str().unwrap()).unwrap()),
            log_sync: true,
            ..Config::FALLBACK
        };
        let e = ErrorRecord {
            key: "K",
            value: "V",
            message: "M",
            exe: "",
        };
        assert_eq!(emit(&cfg, false, Record::Error(&e)), Ok(true));
        assert_eq!(emit(&cfg, true, Record::Error(&e)), Ok(true));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text
            .lines()
            .all(|l| l.starts_with("{\"record\":\"error\"") && l.ends_with('}')));
        // A symlink is not followed. The failure is reported on stderr, past the test harness's
        // capture: the file's name says that this one is expected.
        let link = dir.join("expected-failure-symlink.jsonl");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let cfg = Config {
            log: LogTarget::File(std::ffi::CString::new(link.to_str().unwrap()).unwrap()),
            ..Config::FALLBACK
        };
        assert_eq!(emit(&cfg, false, Record::Error(&e)), Err(libc::ELOOP));
        assert!(LOST.load(Ordering::Relaxed) >= 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn who_ran_it_from_sudo_the_login_uid_and_a_bounded_argv() {
        let by = Invoker::from_parts(
            Some(b"alice"),
            Some(b"1000"),
            Some(b"1000\n"),
            b"/opt/MegaRAID/MegaCli/MegaCli64\0-AdpAllInfo\0-aALL\0",
        );
        assert_eq!(by.sudo_user.as_deref(), Some("alice"));
        assert_eq!(by.sudo_uid, Some(1000));
        assert_eq!(by.login_uid, Some(1000));
        assert_eq!(
            by.argv,
            ["/opt/MegaRAID/MegaCli/MegaCli64", "-AdpAllInfo", "-aALL"]
        );
        assert!(!by.argv_truncated);
        // No sudo, the kernel's unset login uid, an empty argument kept.
        let by = Invoker::from_parts(None, Some(b"x"), Some(b"4294967295"), b"tool\0\0-v\0");
        assert_eq!(
            (by.sudo_user, by.sudo_uid, by.login_uid),
            (None, None, None)
        );
        assert_eq!(by.argv, ["tool", "", "-v"]);
        // Bounded: the argument that crosses ARGV_MAX is cut at a character boundary.
        let long = "é".repeat(ARGV_MAX);
        // "tool1" leaves 251 bytes: the 126th two-byte "é" does not fit.
        let cmdline = format!("tool1\0{long}\0after\0");
        let by = Invoker::from_parts(
            Some("ü".repeat(SUDO_USER_MAX).as_bytes()),
            None,
            None,
            cmdline.as_bytes(),
        );
        assert!(by.argv_truncated);
        assert_eq!(by.argv.len(), 2, "nothing after the cut argument");
        assert_eq!(by.argv.iter().map(String::len).sum::<usize>(), ARGV_MAX - 1);
        assert!(by.sudo_user.unwrap().len() <= SUDO_USER_MAX);
        assert_eq!(
            Invoker::from_parts(None, None, None, b"").argv,
            Vec::<String>::new()
        );
    }

    #[test]
    fn records_name_who_ran_the_tool_after_uid() {
        let (v, info) = stp_probe();
        let rec = seed_record(&v, info);
        let by = Invoker::from_parts(
            Some(b"alice"),
            Some(b"1000"),
            Some(b"1000"),
            b"MegaCli64\0-a\"x\0",
        );
        let mut json = String::new();
        call_json_by(
            &mut json,
            &rec,
            WHO,
            Some(&by),
            Phase::Outcome,
            UNIX_EPOCH,
            0,
            true,
            None,
        )
        .unwrap();
        assert!(
            json.contains(r#""uid":0,"sudo_user":"alice","sudo_uid":1000,"login_uid":1000,"argv":["MegaCli64","-a\"x"],"guard":"preload","mode":"#),
            "{json}"
        );
        // Without it, the record is as it always was.
        let mut plain = String::new();
        call_json(&mut plain, &rec, WHO, Phase::Outcome, UNIX_EPOCH, 0, true).unwrap();
        let mut none = String::new();
        call_json_by(
            &mut none,
            &rec,
            WHO,
            None,
            Phase::Outcome,
            UNIX_EPOCH,
            0,
            true,
            None,
        )
        .unwrap();
        assert_eq!(plain, none);
        // The first record of a process names the build, after who ran it.
        let mut first = String::new();
        call_json_by(
            &mut first,
            &rec,
            WHO,
            Some(&by),
            Phase::Outcome,
            UNIX_EPOCH,
            0,
            true,
            Some("mfiguard 0.1.0 (git 1a2b3c4d5e6f)"),
        )
        .unwrap();
        assert!(
            first.contains(r#""argv":["MegaCli64","-a\"x"],"build":"mfiguard 0.1.0 (git 1a2b3c4d5e6f)","guard":"preload","#),
            "{first}"
        );
        // The compact form leaves argv out; the readable line names sudo and the login uid.
        let mut compact = String::new();
        call_json_by(
            &mut compact,
            &rec,
            WHO,
            Some(&by),
            Phase::Outcome,
            UNIX_EPOCH,
            0,
            false,
            None,
        )
        .unwrap();
        assert!(
            compact.contains(r#""login_uid":1000,"guard":"preload","mode":"#),
            "{compact}"
        );
        let mut line = String::new();
        call_line_by(&mut line, &rec, WHO, Some(&by), Phase::Outcome, 0, true).unwrap();
        assert!(
            line.ends_with("uid 0 sudo_user alice sudo_uid 1000 login_uid 1000"),
            "{line}"
        );
        let mut err = String::new();
        let e = ErrorRecord {
            key: "MFIGUARD_MODE",
            value: "x",
            message: "m",
            exe: "/bin/x",
        };
        error_json_by(&mut err, &e, WHO, Some(&by), UNIX_EPOCH, 0, None).unwrap();
        assert!(err.contains(r#""uid":0,"sudo_user":"alice","#), "{err}");
    }

    #[test]
    fn the_worst_invoker_still_fits_the_signal_context_buffer() {
        // The longest argv of characters JSON escapes six-fold, the longest sudo user.
        let cmdline = "\u{1}".repeat(2 * ARGV_MAX);
        let by = Invoker::from_parts(
            Some("\u{1}".repeat(SUDO_USER_MAX).as_bytes()),
            Some(b"4294967294"),
            Some(b"4294967294"),
            cmdline.as_bytes(),
        );
        let (v, info) = every_rule_at_once();
        let exe = "\u{1}".repeat(crate::config::EXE_MAX);
        let rec = CallRecord {
            exe: &exe,
            ..seed_record(&v, info)
        };
        let file = std::ffi::CString::new("/x").unwrap();
        for t in [Target::File(&file), Target::Stderr] {
            let mut buf = StackBuf::<NESTED_BUF>::new();
            assert!(render_by(
                &mut buf,
                t,
                Record::Call(&rec, Phase::Outcome),
                WHO,
                Some(&by),
                UNIX_EPOCH,
                u64::MAX,
                Some("mfiguard 0.1.0 (git 1a2b3c4d5e6f) and then some more")
            ));
            assert!(buf.bytes().ends_with(b"\n"));
        }
    }

    /// Parses a datagram of the journal's native protocol as journald does: `KEY=value\n`, or
    /// `KEY\n`, a little-endian u64 length, the value and `\n`.
    fn journal_fields(mut d: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut fields = Vec::new();
        while !d.is_empty() {
            let nl = d
                .iter()
                .position(|&b| b == b'\n')
                .expect("a field ends in a newline");
            let (line, rest) = (&d[..nl], &d[nl + 1..]);
            if let Some(eq) = line.iter().position(|&b| b == b'=') {
                fields.push((
                    String::from_utf8(line[..eq].to_vec()).unwrap(),
                    line[eq + 1..].to_vec(),
                ));
                d = rest;
            } else {
                let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
                let value = rest[8..8 + len].to_vec();
                assert_eq!(rest[8 + len], b'\n', "the value is followed by a newline");
                fields.push((String::from_utf8(line.to_vec()).unwrap(), value));
                d = &rest[8 + len + 1..];
            }
        }
        fields
    }

    #[test]
    fn a_refusal_as_a_journal_entry_through_a_socket() {
        let bytes = samples::dcmd_read(Abi::NATIVE, 0x0101_0000, 0x1000, 2048)
            .sgl_off(0x40000)
            .build();
        let p = decode(Abi::NATIVE, &bytes).unwrap();
        let v = decide_packet(&Policy::default(), &p);
        let mut rec = seed_record(&v, PacketInfo::new(&p, &v));
        rec.outcome = Some(Outcome {
            ret: -1,
            errno: libc::EINVAL,
            cmd_status: None,
            latency_us: None,
        });
        // A newline in a value cannot end its field early, nor add a field.
        rec.exe = "/opt/x\nMFIGUARD_VERDICT=pass";
        let by = Invoker::from_parts(Some(b"alice"), Some(b"1000"), Some(b"1000"), b"x\0");

        // Through a real datagram socket, as journald receives it.
        let dir = std::env::temp_dir().join(format!("mfiguard-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let journal = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let entry = journal_entry(Record::Call(&rec, Phase::Outcome), WHO, Some(&by), 3);
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        sys::send_datagram_nowait(&c_path, &entry).unwrap();
        let mut got = vec![0u8; 65536];
        let n = journal.recv(&mut got).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(&got[..n], &entry[..]);

        let fields = journal_fields(&got[..n]);
        let all = |k: &str| -> Vec<String> {
            fields
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                .collect()
        };
        let one = |k: &str| -> String {
            let v = all(k);
            assert_eq!(v.len(), 1, "{k}: {v:?}");
            v[0].clone()
        };
        let mut line = String::new();
        call_line_by(&mut line, &rec, WHO, Some(&by), Phase::Outcome, 3, true).unwrap();
        assert_eq!(one("MESSAGE"), line);
        assert_eq!(one("PRIORITY"), "4", "a refusal is a warning");
        assert_eq!(one("SYSLOG_FACILITY"), "10");
        assert_eq!(one("SYSLOG_IDENTIFIER"), "mfiguard");
        assert_eq!(one("SYSLOG_PID"), "4242");
        assert_eq!(one("MFIGUARD_RECORD"), "outcome");
        assert_eq!(one("MFIGUARD_SEQ"), "7");
        assert_eq!(one("MFIGUARD_VERDICT"), "reject");
        assert_eq!(all("MFIGUARD_RULE"), ["sgl.bounds", "sgl.offset-unusual"]);
        assert_eq!(one("MFIGUARD_CMD"), "DCMD");
        assert_eq!(one("MFIGUARD_OPCODE"), "0x01010000");
        assert_eq!(one("MFIGUARD_OPCODE_NAME"), "MR_DCMD_CTRL_GET_INFO");
        assert_eq!(one("MFIGUARD_RET"), "-1");
        assert_eq!(one("MFIGUARD_ERRNO"), "EINVAL");
        assert_eq!(one("MFIGUARD_EXE"), "/opt/x\nMFIGUARD_VERDICT=pass");
        assert_eq!(one("MFIGUARD_UID"), "0");
        assert_eq!(one("MFIGUARD_SUDO_USER"), "alice");
        assert_eq!(one("MFIGUARD_LOGIN_UID"), "1000");
        assert_eq!(one("MFIGUARD_RECORDS_LOST"), "3");
        // Every key is what journald accepts: upper case, digits and '_', not starting with '_'.
        for (k, _) in &fields {
            assert!(
                !k.starts_with('_')
                    && k.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{k}"
            );
        }

        // An error record.
        let e = ErrorRecord {
            key: "MFIGUARD_MODE",
            value: "readonyl",
            message: "unknown mode (enforce, readonly, audit, off); using readonly",
            exe: "/bin/x",
        };
        let fields = journal_fields(&journal_entry(Record::Error(&e), WHO, None, 0));
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert!(
            keys.contains(&"MFIGUARD_KEY") && !keys.contains(&"MFIGUARD_RECORDS_LOST"),
            "{keys:?}"
        );
        assert!(fields.contains(&("MFIGUARD_RECORD".into(), b"error".to_vec())));
        assert!(fields.contains(&("PRIORITY".into(), b"4".to_vec())));
    }
}
