//! The copying strategy, for a call made by another process (the supervisor, its ptrace
//! fallback, `mfiguard-hostd`): the packet, every data buffer and the sense buffer are copied
//! into this process once, the decision is taken on those copies (the read-only policy's SMP
//! rule on the copy of the request), the verdict's rewrites are applied to the private packet,
//! and the driver is called with a native-layout packet whose `sgl[]` and sense pointer point
//! at the private buffers ([`PrivateCall`]). Afterwards exactly what the driver would have
//! written into the caller is copied back, in the driver's order: every data buffer, then the
//! sense buffer, then the `cmd_status` byte. Nothing in the caller's memory is read after the
//! decision.
//!
//! In audit mode the unmodified packet is sent, on private copies all the same. A packet the
//! rules would refuse but the mode lets through is executed if a private copy can be made
//! within the rules' length limits; otherwise it fails with `EINVAL` (`guard.unsupported`).

use std::ffi::c_int;
use std::time::Instant;

use mfiguard_sanitizer::decode::{SMP_REQUEST_HEAD_LEN, SMP_REQUEST_SGE_INDEX};
use mfiguard_sanitizer::{decide_packet, decode, Abi, Decision, Errno, Packet, Verdict};

use super::caller::{Answer, Caller};
use super::private::{plan, PrivateCall, AEN_SIZE, CMD_STATUS, NATIVE_PACKET_SIZE};
use super::recorder::{driver_wrote_back, latency_us, logging, Delivery, Recorder};
use super::request::Request;
use crate::audit::{CallRecord, GuardIssue, Outcome, PacketInfo, Phase};
use crate::config::{CallPolicy, Config, GuardMode};

/// The management node, as this process reaches it.
pub trait Driver {
    /// `MEGASAS_IOC_FIRMWARE` (the native layout) with the private call; `(ret, errno)`.
    fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int);
    /// `MEGASAS_IOC_GET_AEN` with a private copy of the caller's `megasas_aen`.
    fn get_aen(&mut self, aen: &mut [u8; AEN_SIZE]) -> (c_int, c_int);
}

/// How a call ended, and for a firmware command that ran but whose results did not reach the
/// caller (it was interrupted, or died): what the driver wrote and answered, to give to the
/// caller's restart of the same call instead of running the command again.
pub struct Copied {
    /// How it ended for the caller.
    pub delivery: Delivery,
    /// The results kept for a restart.
    pub replay: Option<Box<Replay>>,
}

impl From<Delivery> for Copied {
    fn from(delivery: Delivery) -> Copied {
        Copied {
            delivery,
            replay: None,
        }
    }
}

/// What a firmware command that ran left for its caller: the private buffers as the driver
/// wrote them, and its answer.
pub struct Replay {
    call: PrivateCall,
    answer: Answer,
    status_at: u64,
    wrote_back: bool,
}

impl Replay {
    /// Copies back what the driver wrote and answers, as the first run would have. Err when
    /// the caller could not take it this time either.
    pub fn resume(&self, caller: &impl Caller) -> Result<(), c_int> {
        if self.wrote_back {
            self.call
                .copy_back(caller, self.status_at)
                .map_err(|(_, e)| e)?;
        }
        caller.deliver(self.answer)
    }

    /// How many bytes of private buffers it keeps alive (what its restart would copy back).
    pub fn held_bytes(&self) -> usize {
        self.call.held_bytes()
    }
}

/// Guards one `MEGASAS_IOC_FIRMWARE` or `MEGASAS_IOC_GET_AEN` call that `caller` made on the
/// management node: decides, executes it through `driver` on private copies, copies back,
/// records. Never reads the caller's memory after the decision.
pub fn run(cfg: &Config, req: Request, caller: &impl Caller, driver: &mut impl Driver) -> Copied {
    let mut r = Recorder::new(cfg, false, req, caller);
    if req.is_get_aen() {
        get_aen(&mut r, driver).into()
    } else {
        firmware(&mut r, driver)
    }
}

/// Refuses one call that `caller` made without reading its packet or calling the driver: the
/// call fails with `issue`'s errno, and the refusal is recorded (always, as every issue is).
pub fn refuse(cfg: &Config, req: Request, caller: &impl Caller, issue: GuardIssue) -> Delivery {
    let mut r = Recorder::new(cfg, false, req, caller);
    let rec = r.base();
    r.issue(rec, issue)
}

/// Refuses a system call the filter closes (`ptrace`, `CLONE_UNTRACED`, ...) that `caller`
/// made through the entry of layout `abi`: `EPERM`, and a record naming it (its `request` is
/// 0: it is not an `ioctl`).
pub fn refuse_closed(
    cfg: &Config,
    guard: crate::audit::Guard,
    abi: Abi,
    caller: &impl Caller,
    syscall: &'static str,
) -> Delivery {
    let req = Request {
        code: 0,
        arg: 0,
        abi,
        guard,
    };
    refuse(cfg, req, caller, GuardIssue::Contained { syscall })
}

fn get_aen<C: Caller>(r: &mut Recorder<'_, C>, driver: &mut impl Driver) -> Delivery {
    let mut rec = r.base();
    let record = logging(r.cfg()) && r.call().mode != GuardMode::Off;
    let arg = r.request().arg;
    let mut aen = [0u8; AEN_SIZE];
    if r.caller().read(arg, &mut aen).is_err() {
        let issue = GuardIssue::BufferFault {
            addr: arg,
            len: AEN_SIZE as u64,
        };
        return r.issue(rec, issue);
    }
    rec.host_no = Some(u16::from_ne_bytes([aen[0], aen[1]]));
    if r.caller().confirm().is_err() {
        return r.issue(rec, GuardIssue::CallerGone);
    }
    if let Err(refused) = r.decision(&rec, record) {
        return refused;
    }
    let start = record.then(Instant::now);
    r.executed = true;
    let (ret, errno) = driver.get_aen(&mut aen);
    let latency = latency_us(start);
    r.finish(rec, record, Answer::of(ret, errno), None, latency)
}

fn firmware<'a, C: Caller>(r: &mut Recorder<'a, C>, driver: &mut impl Driver) -> Copied {
    let call = *r.call();
    let req = r.request();
    let size = req.abi.packet_size();
    let mut bytes = [0u8; NATIVE_PACKET_SIZE];
    let Some(bytes) = bytes.get_mut(..size) else {
        return r.issue(r.base(), GuardIssue::Sanitizer).into();
    };
    if r.caller().read(req.arg, bytes).is_err() {
        let issue = GuardIssue::Unreadable {
            addr: usize::try_from(req.arg).unwrap_or(usize::MAX),
            len: size,
        };
        return r.issue(r.base(), issue).into();
    }
    let Ok(mut packet) = decode(req.abi, bytes) else {
        return r.issue(r.base(), GuardIssue::Sanitizer).into();
    };
    let mut rec = r.base();
    rec.host_no = Some(packet.host_no);
    let Some(plan) = plan(&packet) else {
        if r.caller().confirm().is_err() {
            return r.issue(rec, GuardIssue::CallerGone).into();
        }
        // Beyond what can be copied: the rules refuse it in enforce mode (with their errno);
        // whatever they let through is refused here.
        let verdict = decide_packet(&call.sanitizer(), &packet);
        let preview = readonly_preview(&call, &packet);
        let mut rec = with_verdict(rec, &packet, &verdict);
        rec.readonly_preview = preview.as_ref();
        if let (true, Decision::Reject(errno)) = (r.enforcing(), verdict.decision()) {
            return r.refuse(rec, errno.0).into();
        }
        return r.issue(rec, GuardIssue::Unsupported).into();
    };
    // Every buffer copied once, before the decision: the read-only policy's SMP rule decides
    // on the very request that is sent.
    let mut private = match PrivateCall::build(r.caller(), &packet, &packet.frame, &plan) {
        Ok(p) => p,
        Err(issue) => return r.issue(rec, issue).into(),
    };
    // Everything is read: it was the caller's only if its call is still pending.
    if r.caller().confirm().is_err() {
        return r.issue(rec, GuardIssue::CallerGone).into();
    }
    let host_no = packet.host_no;
    if packet.smp_request_iovec().is_some() {
        packet.smp_request = private
            .buffer(SMP_REQUEST_SGE_INDEX)
            .and_then(|b| b.get(..SMP_REQUEST_HEAD_LEN))
            .and_then(|head| head.try_into().ok());
    }
    let verdict = decide_packet(&call.sanitizer(), &packet);
    let preview = readonly_preview(&call, &packet);
    // The record, built only when it is written.
    let record_of = |base: CallRecord<'a>| {
        let mut rec = with_verdict(base, &packet, &verdict);
        rec.host_no = Some(host_no);
        rec.readonly_preview = preview.as_ref();
        rec
    };
    let record = r.record_due(&verdict);
    if r.enforcing() {
        if let Decision::Reject(errno) = verdict.decision() {
            return r.refuse(record_of(r.base()), errno.0).into();
        }
        let mut frame = packet.frame;
        if apply_to_frame(&verdict, packet.abi, bytes, &mut frame).is_err() {
            return r.issue(record_of(r.base()), GuardIssue::Sanitizer).into();
        }
        private.set_frame(&frame, &plan);
    }
    if record {
        if let Err(refused) = r.decision(&record_of(r.base()), record) {
            return refused.into();
        }
    }
    let before = private.status();
    let start = record.then(Instant::now);
    r.executed = true;
    let (ret, errno) = driver.firmware(&mut private);
    let latency = latency_us(start);
    let status = private.status();
    let wrote_back = driver_wrote_back(ret, before, status);
    let answer = Answer::of(ret, errno);
    let status_at = req.arg.wrapping_add(CMD_STATUS as u64);
    let replay = |private| {
        Box::new(Replay {
            call: private,
            answer,
            status_at,
            wrote_back,
        })
    };
    if wrote_back {
        match private.copy_back(r.caller(), status_at) {
            Ok(()) => {}
            Err((_, libc::ESRCH)) => {
                // Interrupted or gone before its results could be written: not delivered now,
                // kept for the kernel's restart of the call.
                let mut rec = record_of(r.base());
                rec.issue = Some(GuardIssue::NotDelivered { executed: true });
                let (ret, errno) = answer.ret_errno();
                rec.outcome = Some(Outcome {
                    ret,
                    errno,
                    cmd_status: Some(status),
                    latency_us: None,
                });
                let _ = r.emit(&rec, Phase::Outcome);
                return Copied {
                    delivery: Delivery {
                        answer,
                        delivered: false,
                        executed: true,
                    },
                    replay: Some(replay(private)),
                };
            }
            Err((issue, _)) => {
                // The driver's own copy to the caller would have failed: EFAULT, as it says.
                let mut rec = record_of(r.base());
                rec.issue = Some(issue);
                let answer = if ret >= 0 {
                    Answer::Errno(Errno::EFAULT)
                } else {
                    answer
                };
                return r.finish(rec, true, answer, None, latency).into();
            }
        }
    }
    let status = wrote_back.then_some(status);
    let delivery = r.finish_with(record, answer, status, latency, record_of);
    let replay = (!delivery.delivered).then(|| replay(private));
    Copied { delivery, replay }
}

/// In audit mode, what read-only mode would have decided (records carry it with enforce's, so
/// that a week of audit records lists what read-only would refuse).
#[inline]
pub(crate) fn readonly_preview(call: &CallPolicy, p: &Packet) -> Option<Verdict> {
    (call.mode == GuardMode::Audit).then(|| decide_packet(&call.readonly_preview(), p))
}

/// The record with the decoded packet and the verdict.
#[inline]
pub(crate) fn with_verdict<'v>(
    rec: CallRecord<'v>,
    p: &Packet,
    verdict: &'v Verdict,
) -> CallRecord<'v> {
    CallRecord {
        packet: Some(PacketInfo::new(p, verdict)),
        decision: verdict.decision(),
        verdict: Some(verdict),
        ..rec
    }
}

/// The verdict's rewrites, applied to the caller's-layout bytes, then the frame taken out.
fn apply_to_frame(
    verdict: &Verdict,
    abi: Abi,
    bytes: &mut [u8],
    frame: &mut [u8; 128],
) -> Result<(), ()> {
    verdict.apply(bytes).map_err(|_| ())?;
    let p = decode(abi, bytes).map_err(|_| ())?;
    *frame = p.frame;
    Ok(())
}
