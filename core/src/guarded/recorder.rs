//! The recorder: one for every guarded call, whatever the entry and the memory strategy. It
//! numbers the call (one counter a process), settles the policy for its caller (the mode and
//! the allow list the site gives who made the call), builds its record, writes the decision
//! record before the driver is called (failing the call closed under
//! `MFIGUARD_LOG_REQUIRED=1`, with a line on stderr), and writes the outcome record before the
//! caller is answered: a refusal, a guard's own failure ([`GuardIssue`]), or the driver's
//! answer. So a log cut by a crash reads true for every entry: a decision without an outcome
//! is a call whose caller never got its answer. A caller that then cannot take its answer
//! (it died, or a signal interrupted the call) gets an `undelivered` record after the outcome.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mfiguard_sanitizer::{Decision, Errno, Verdict};

use super::caller::{Answer, Caller, Identity};
use super::request::Request;
use crate::audit::{self, CallRecord, GuardIssue, Outcome, Phase, Record, SinkName};
use crate::config::{AuditLevel, CallPolicy, Config, GuardMode};

/// Shared by a call's records; counts from 1 in each process (a forked child of a process
/// that loaded the library starts again: see [`after_fork`]).
static SEQ: AtomicU64 = AtomicU64::new(1);

/// In a forked child: its records count from 1 again.
pub fn after_fork() {
    SEQ.store(1, Ordering::Relaxed);
}

/// Whether a call with this verdict is recorded: the sink is not `none`, the mode is not
/// `off`, and the audit level is `all` or the verdict has findings. (Refusals and the guard's
/// own failures always are.)
pub fn record_due(cfg: &Config, call: &CallPolicy, verdict: &Verdict) -> bool {
    logging(cfg)
        && call.mode != GuardMode::Off
        && (call.audit == AuditLevel::All || verdict.findings().next().is_some())
}

/// Whether records are written at all (`log` is not `none`).
#[inline]
pub fn logging(cfg: &Config) -> bool {
    !cfg.log.targets().is_empty()
}

/// Whether the driver got as far as copying its results back to the caller: it does after a
/// command that completed (a result), and after one the firmware answered with a status it
/// wrote; not when it failed before (its own `copy_to_user` then never ran).
pub const fn driver_wrote_back(ret: c_int, status_before: u8, status_after: u8) -> bool {
    ret >= 0 || status_after != status_before
}

/// Microseconds since `start` (the driver's call), when the call is timed: only a call that
/// is recorded is (two clock reads saved on every other).
pub fn latency_us(start: Option<Instant>) -> Option<u64> {
    start.map(|s| u64::try_from(s.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// How a call ended for the caller.
#[derive(Debug)]
pub struct Delivery {
    /// What the call answered.
    pub answer: Answer,
    /// Whether the caller got it.
    pub delivered: bool,
    /// Whether the driver was called.
    pub executed: bool,
}

/// What survives a panic inside the guarded path (the library catches it at its boundary).
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// The call's number, once it had one.
    pub seq: Option<u64>,
    /// The driver's `(ret, errno)`, once it was called.
    pub kernel: Option<(c_int, c_int)>,
}

/// A call being guarded: its request, its caller, its number and its record's common part.
pub struct Recorder<'a, C: Caller> {
    cfg: &'a Config,
    caller: &'a C,
    req: Request,
    nested: bool,
    seq: u64,
    /// The mode, allow list and audit level for this call's caller.
    call: CallPolicy,
    /// Asked of the caller once: when the policy depends on who calls, or a record is written.
    identity: Option<Option<Identity>>,
    /// Whether the driver was called.
    pub(crate) executed: bool,
}

impl<'a, C: Caller> Recorder<'a, C> {
    /// Numbers the call and settles its policy. `nested`: it arrived while this thread was
    /// already inside the guard (a signal handler: nothing may allocate; see `audit::emit`).
    /// The library's caller is this process, whose policy the configuration already holds;
    /// another process's (the supervisor's tool, a caller of `mfiguard-hostd`) is judged for
    /// who it is when the policy has sections, its identity read now (the caller waits: its
    /// process cannot have gone, and an entry that reads its memory checks that afterwards).
    #[inline]
    pub fn new(cfg: &'a Config, nested: bool, req: Request, caller: &'a C) -> Self {
        let mut identity = None;
        let call = if cfg.site.per_caller() && !nested {
            let id = caller.identity();
            let call = id
                .as_ref()
                .map_or_else(|| cfg.own_calls(), |id| cfg.for_caller(&id.subject()));
            identity = Some(id);
            call
        } else {
            cfg.own_calls()
        };
        Recorder {
            cfg,
            caller,
            req,
            nested,
            seq: SEQ.fetch_add(1, Ordering::Relaxed),
            call,
            identity,
            executed: false,
        }
    }

    /// The mode, allow list and audit level of this call.
    #[inline]
    pub fn call(&self) -> &CallPolicy {
        &self.call
    }

    /// Whether the guard acts on this call's verdict.
    #[inline]
    pub fn enforcing(&self) -> bool {
        self.call.mode.enforcing()
    }

    /// Whether a call with this verdict is recorded.
    #[inline]
    pub fn record_due(&self, verdict: &Verdict) -> bool {
        record_due(self.cfg, &self.call, verdict)
    }

    /// The call's number.
    #[inline]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The configuration the call is guarded with.
    #[inline]
    pub fn cfg(&self) -> &'a Config {
        self.cfg
    }

    /// The caller.
    #[inline]
    pub fn caller(&self) -> &'a C {
        self.caller
    }

    /// The call as its entry received it.
    #[inline]
    pub fn request(&self) -> Request {
        self.req
    }

    /// Whether the call arrived inside the guard (a signal handler).
    #[inline]
    pub fn nested(&self) -> bool {
        self.nested
    }

    /// The call's record so far: who made it is filled in when it is written.
    #[inline]
    pub fn base(&self) -> CallRecord<'a> {
        CallRecord {
            seq: self.seq,
            guard: self.req.guard,
            caller: None,
            invoker: None,
            abi: self.req.abi,
            exe: &self.cfg.exe,
            mode: self.call.mode,
            preview_of: self.call.preview_of,
            request: self.req.code,
            nested: self.nested,
            host_no: None,
            packet: None,
            decision: Decision::Pass,
            enforced: self.call.mode.enforcing(),
            verdict: None,
            readonly_preview: None,
            issue: None,
            outcome: None,
        }
    }

    fn identity(&mut self) -> Option<&Identity> {
        let caller = self.caller;
        self.identity
            .get_or_insert_with(|| caller.identity())
            .as_ref()
    }

    /// Writes one of the call's records, naming the caller; the sink's errno when it failed.
    #[inline]
    pub fn emit(&mut self, rec: &CallRecord<'_>, phase: Phase) -> Result<bool, c_int> {
        if !logging(self.cfg) {
            return Ok(false);
        }
        let (cfg, nested) = (self.cfg, self.nested);
        match self.identity() {
            None => audit::emit(cfg, nested, Record::Call(rec, phase)),
            Some(id) => {
                let rec = CallRecord {
                    caller: Some(id.who),
                    exe: &id.exe,
                    invoker: Some(&id.invoker),
                    ..*rec
                };
                audit::emit(cfg, nested, Record::Call(&rec, phase))
            }
        }
    }

    /// The decision record, written before the driver is called when a record is due. When it
    /// cannot be written and `MFIGUARD_LOG_REQUIRED=1`, the call is refused instead (`EIO`,
    /// `guard.log-required`), said on stderr too: `Err` is that refusal's delivery.
    #[inline]
    pub fn decision(&mut self, rec: &CallRecord<'_>, record: bool) -> Result<(), Delivery> {
        if !record {
            return Ok(());
        }
        match self.emit(rec, Phase::Decision) {
            Err(errno) if self.cfg.log_required => Err(self.log_required(*rec, errno)),
            _ => Ok(()),
        }
    }

    /// The decision record could not be written and a record is required: fail closed, and say
    /// so where the tool's output goes (unless stderr is the sink that failed).
    fn log_required(&mut self, rec: CallRecord<'_>, sink_errno: c_int) -> Delivery {
        let (cfg, nested, seq) = (self.cfg, self.nested, self.seq);
        let pid = self
            .identity()
            .map_or_else(std::process::id, |id| id.who.pid);
        audit::report_elsewhere(
            cfg,
            nested,
            pid,
            format_args!(
                "#{seq} refused with EIO (guard.log-required): the audit record could not be written to {} ({}) and MFIGUARD_LOG_REQUIRED=1",
                SinkName(cfg.log.describe()),
                Errno(sink_errno)
            ),
        );
        self.issue(rec, GuardIssue::LogRequired { errno: sink_errno })
    }

    /// Fails the call with `errno` without calling the driver; always recorded.
    pub fn refuse(&mut self, rec: CallRecord<'_>, errno: c_int) -> Delivery {
        self.finish(rec, true, Answer::Errno(Errno(errno)), None, None)
    }

    /// Fails the call with the errno of a failure of the guard itself (acted on whatever the
    /// mode); always recorded.
    pub fn issue(&mut self, mut rec: CallRecord<'_>, issue: GuardIssue) -> Delivery {
        rec.issue = Some(issue);
        rec.decision = Decision::Reject(issue.errno());
        rec.enforced = true;
        self.refuse(rec, issue.errno().0)
    }

    /// [`finish`](Self::finish) with the record built from the base record only when it is
    /// written: most calls write none, and pay nothing for it.
    #[inline]
    pub fn finish_with<'r>(
        &mut self,
        record: bool,
        answer: Answer,
        status: Option<u8>,
        latency: Option<u64>,
        rec: impl FnOnce(CallRecord<'a>) -> CallRecord<'r>,
    ) -> Delivery {
        if !record {
            return self.finish_unrecorded(answer, status, latency, rec);
        }
        let rec = rec(self.base());
        self.finish(rec, true, answer, status, latency)
    }

    /// Writes the outcome record (when `record`: a record is due, or the call was refused),
    /// then answers the caller; when the caller cannot take the answer, says so in one more
    /// record (`undelivered` after an outcome record, else the call's only outcome record,
    /// marked `guard.not-delivered`). `status`: the frame's `cmd_status` when the driver wrote
    /// it back; `latency`: the microseconds the driver took, when it was called and timed
    /// ([`latency_us`]).
    #[inline]
    pub fn finish(
        &mut self,
        rec: CallRecord<'_>,
        record: bool,
        answer: Answer,
        status: Option<u8>,
        latency: Option<u64>,
    ) -> Delivery {
        if !record {
            return self.finish_unrecorded(answer, status, latency, |_| rec);
        }
        let rec = self.outcome(rec, answer, status, latency);
        let delivered = self.caller.deliver(answer).is_ok();
        if !delivered {
            self.undelivered(rec, Phase::Undelivered);
        }
        self.delivery(answer, delivered)
    }

    /// A call no record is due for: answered, and recorded only when the answer could not be
    /// delivered.
    #[inline]
    fn finish_unrecorded<'r>(
        &mut self,
        answer: Answer,
        status: Option<u8>,
        latency: Option<u64>,
        rec: impl FnOnce(CallRecord<'a>) -> CallRecord<'r>,
    ) -> Delivery {
        if self.caller.deliver(answer).is_ok() {
            return self.delivery(answer, true);
        }
        let rec = rec(self.base());
        let rec = self.with_outcome(rec, answer, status, latency);
        self.undelivered(rec, Phase::Outcome);
        self.delivery(answer, false)
    }

    /// The record with the answer.
    #[inline]
    fn with_outcome<'r>(
        &self,
        mut rec: CallRecord<'r>,
        answer: Answer,
        status: Option<u8>,
        latency: Option<u64>,
    ) -> CallRecord<'r> {
        let (ret, errno) = answer.ret_errno();
        rec.outcome = Some(Outcome {
            ret,
            errno,
            cmd_status: status,
            latency_us: latency,
        });
        rec
    }

    /// Writes the outcome record; the record, for an `undelivered` one after it.
    #[inline]
    fn outcome<'r>(
        &mut self,
        rec: CallRecord<'r>,
        answer: Answer,
        status: Option<u8>,
        latency: Option<u64>,
    ) -> CallRecord<'r> {
        let rec = self.with_outcome(rec, answer, status, latency);
        let _ = self.emit(&rec, Phase::Outcome);
        rec
    }

    /// Records that the caller did not take its answer.
    fn undelivered(&mut self, mut rec: CallRecord<'_>, phase: Phase) {
        if rec.issue.is_none() {
            rec.issue = Some(GuardIssue::NotDelivered {
                executed: self.executed,
            });
        }
        let _ = self.emit(&rec, phase);
    }

    #[inline]
    fn delivery(&self, answer: Answer, delivered: bool) -> Delivery {
        Delivery {
            answer,
            delivered,
            executed: self.executed,
        }
    }

    /// The outcome record of a call that panicked inside the guard, built from what survived:
    /// `EIO` (`guard.internal`) before the driver was called; after it, the driver's answer
    /// with a `warn` finding (the command has run: a tool told `EIO` might retry it).
    pub fn panicked(cfg: &'a Config, nested: bool, req: Request, caller: &'a C, p: Progress) {
        let mut r = Recorder::new(cfg, nested, req, caller);
        let mut rec = r.base();
        rec.seq = p.seq.unwrap_or(rec.seq);
        let after_kernel = p.kernel.is_some();
        rec.issue = Some(GuardIssue::Panicked { after_kernel });
        // After the kernel call the command has run: the record must not claim it was refused.
        rec.decision = if after_kernel {
            Decision::Pass
        } else {
            Decision::Reject(Errno::EIO)
        };
        let (ret, errno) = p.kernel.unwrap_or((-1, libc::EIO));
        rec.outcome = Some(Outcome {
            ret,
            errno,
            cmd_status: None,
            latency_us: None,
        });
        let _ = r.emit(&rec, Phase::Outcome);
    }
}
