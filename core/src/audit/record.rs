//! The records: a call's decision and outcome, a configuration error, and their parts.

use std::ffi::c_int;
use std::fmt::{self, Display};

use mfiguard_sanitizer::{Abi, Decision, Errno, Packet, Verdict};

use super::invoker::Invoker;
use crate::config::GuardMode;
use crate::sys;

/// Which of a call's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the kernel call.
    Decision,
    /// After it, or instead of it: written before the caller is answered.
    Outcome,
    /// After the outcome record, when the caller could not take the answer that record gives
    /// (it died, or a signal interrupted its call): rare, and never counted as a call.
    Undelivered,
}

impl Phase {
    /// The name records give it (`"record"`).
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Decision => "decision",
            Phase::Outcome => "outcome",
            Phase::Undelivered => "undelivered",
        }
    }

    /// Whether the record carries the call's answer (`ret`, `errno`, ...).
    pub const fn answered(self) -> bool {
        matches!(self, Phase::Outcome | Phase::Undelivered)
    }
}

/// The version of the records' shape (`"schema_version"`), described by
/// `doc/audit-record.schema.json`: raised whenever a field is added, changed or removed.
pub const SCHEMA_VERSION: u32 = 1;

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
    /// `guard.not-delivered`: the restart of a call whose command already ran, whose results
    /// were no longer kept (more interrupted calls than the supervisor keeps answers for):
    /// refused rather than run a second time.
    RestartResultsDropped,
    /// `guard.unrecognised-file`: a MegaRAID request code on a file that is neither the
    /// driver's node nor `mfiguard-hostd`'s: refused with `ENOTTY`, never executed by a guard
    /// outside the tool (it would run with the guard's credentials and memory).
    UnrecognisedFile {
        /// The file's device number when it is a character device.
        rdev: Option<u64>,
    },
    /// `guard.contained`: a system call a RAID tool never makes and that would let it take the
    /// guard's place (`ptrace`, `clone` with `CLONE_UNTRACED`, `pidfd_getfd`,
    /// `process_vm_writev`, a seccomp filter with a listener of its own): refused with `EPERM`.
    Contained {
        /// The system call, as records name it.
        syscall: &'static str,
    },
    /// `guard.unsupported`: `MEGASAS_IOC_GET_AEN` through the host-wide guard, refused with
    /// `EOPNOTSUPP`: the daemon registers on its own descriptor and sends the driver's `SIGIO`
    /// on to the owner the caller set on its file, which it must be able to reach (`why`).
    AenUnsupported {
        /// What it could not do.
        why: AenGap,
    },
    /// `guard.stuck`: `mfiguard-hostd` refused a command with `EBUSY` because the driver
    /// still holds as many commands past their timeout as it may (a hung controller): another
    /// would only join them.
    Stuck,
}

/// Why `mfiguard-hostd` cannot carry an event registration (`MEGASAS_IOC_GET_AEN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AenGap {
    /// The kernel has no `pidfd_getfd` (Linux 5.6): the daemon cannot reach the caller's open
    /// file, whose owner (`F_SETOWN`) the driver's `SIGIO` goes to.
    NoPidfdGetfd,
    /// The caller's descriptor of the node could not be told (`/proc/TID/syscall` unreadable,
    /// or not this call), or taken.
    DescriptorUnknown,
    /// As many files are registered as the daemon keeps.
    Full,
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
            GuardIssue::Unsupported | GuardIssue::AenUnsupported { .. } => "guard.unsupported",
            GuardIssue::NotDelivered { .. } | GuardIssue::RestartResultsDropped => {
                "guard.not-delivered"
            }
            GuardIssue::UnrecognisedFile { .. } => "guard.unrecognised-file",
            GuardIssue::Contained { .. } => "guard.contained",
            GuardIssue::Stuck => "guard.stuck",
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
            GuardIssue::AenUnsupported { .. } => Errno(libc::EOPNOTSUPP),
            GuardIssue::UnrecognisedFile { .. } => Errno(libc::ENOTTY),
            GuardIssue::Contained { .. } => Errno::EPERM,
            GuardIssue::Stuck => Errno(libc::EBUSY),
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
                Errno(errno)
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
            GuardIssue::UnrecognisedFile { rdev: Some(rdev) } => write!(
                f,
                "a MegaRAID request on character device {}:{}, neither the driver's node nor mfiguard-hostd's: refused, not executed",
                libc::major(rdev as libc::dev_t),
                libc::minor(rdev as libc::dev_t)
            ),
            GuardIssue::UnrecognisedFile { rdev: None } => f.write_str(
                "a MegaRAID request on a file that is not a character device: refused, not executed",
            ),
            GuardIssue::Contained { syscall } => write!(
                f,
                "{syscall} refused: a tool under the guard never needs it, and it would let the tool take the guard's place"
            ),
            GuardIssue::RestartResultsDropped => f.write_str(
                "the restart of a call whose command already ran, its results no longer kept: refused rather than run twice",
            ),
            GuardIssue::AenUnsupported { why } => f.write_str(match why {
                AenGap::NoPidfdGetfd => "event notification (GET_AEN) is not carried: this kernel has no pidfd_getfd (Linux 5.6), so mfiguard-hostd cannot reach the file whose owner gets the driver's SIGIO",
                AenGap::DescriptorUnknown => "event notification (GET_AEN) is not carried: mfiguard-hostd could not tell or take the caller's descriptor of the node",
                AenGap::Full => "event notification (GET_AEN) is not carried: mfiguard-hostd already keeps as many registered files as it may",
            }),
            GuardIssue::Stuck => f.write_str(
                "the driver still holds commands the firmware never completed (past mfiguard-hostd's command timeout): no new command is sent until it returns one",
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
    #[inline]
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
    /// Under `preview = yes`: the mode the call would have been guarded in without it.
    pub preview_of: Option<GuardMode>,
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
    /// In audit mode: what read-only mode would have decided (what enforce would have decided
    /// is `verdict`).
    pub readonly_preview: Option<&'a Verdict>,
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
