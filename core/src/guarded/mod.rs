//! The guarded path of a call made by another process: snapshot, decode, decide, apply, call
//! the driver on private copies, copy back what the driver writes, record.
//!
//! The supervisor (`mfiguard-run`, seccomp user notification) enters here for every MegaRAID
//! call of its tool. Nothing in the tool's memory is read after the decision: the packet, every
//! data buffer and the sense buffer are copied into this process once, the decision is taken on
//! those copies (the read-only policy's SMP rule on the copy of the request), the verdict's
//! rewrites are applied to the private packet, and the driver is called with a native-layout
//! packet whose `sgl[]` and sense pointer point at the private buffers. Afterwards exactly what
//! the driver would have written into the tool is copied back, in the driver's order: every
//! data buffer, then the sense buffer, then the `cmd_status` byte.
//!
//! Two seams keep this code free of system calls: [`Caller`] (the tool's memory and identity:
//! `process_vm_readv`/`writev` and `/proc` for the supervisor) and [`Driver`] (the `ioctl` on
//! the supervisor's own descriptor of the node). The private call ([`PrivateCall`]) can only be
//! built here, so every address a driver is handed points into buffers it owns.
//!
//! In audit mode the unmodified packet is sent, on private copies all the same. A packet the
//! rules would refuse but the mode lets through is executed if a private copy can be made
//! within the rules' length limits; otherwise it fails with `EINVAL` (`guard.unsupported`).

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mfiguard_sanitizer::abi::ioctl::{
    MEGASAS_IOC_FRAME_OFFSET, MEGASAS_IOC_GET_AEN, MEGASAS_IOC_SGL_OFFSET,
};
use mfiguard_sanitizer::abi::mfi::MFI_CMD_STATUS_OFFSET;
use mfiguard_sanitizer::decode::{IoVec, SMP_REQUEST_HEAD_LEN, SMP_REQUEST_SGE_INDEX};
use mfiguard_sanitizer::policy::{SENSE_LEN_MAX, SGE_LEN_MAX, SGE_TOTAL_MAX};
use mfiguard_sanitizer::{decide_packet, decode, Abi, Decision, Packet, Verdict};

use crate::audit::{
    self, CallRecord, Guard, GuardIssue, Invoker, Outcome, PacketInfo, Phase, Record, Who,
};
use crate::config::{AuditLevel, Config, LogTarget};

/// The caller's `cmd_status` byte, the same offset in both layouts.
const CMD_STATUS: usize = MEGASAS_IOC_FRAME_OFFSET + MFI_CMD_STATUS_OFFSET;
/// Size of the native (x86_64) packet the driver is handed.
pub const NATIVE_PACKET_SIZE: usize = Abi::Lp64.packet_size();
/// Size of `struct megasas_aen`.
pub const AEN_SIZE: usize = 12;

/// The calling process: its memory and who it is.
pub trait Caller {
    /// Copies `out.len()` bytes at `addr` of the caller into `out`; an errno when they cannot
    /// all be read (or the call is no longer pending: the caller died, the request is stale).
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int>;
    /// Writes `data` at `addr` of the caller.
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int>;
    /// Who the caller is, for records; asked only when a record is written.
    fn identity(&self) -> Identity;
    /// Gives the caller its answer; an errno when it can no longer take it (it died, or a
    /// signal interrupted its call). Called once per call, before the outcome record.
    fn deliver(&self, answer: Answer) -> Result<(), c_int>;
}

/// The calling process, as records name it.
pub struct Identity {
    /// Its pid (thread group) and real uid.
    pub who: Who,
    /// Its executable.
    pub exe: String,
    /// Who ran it (sudo, login uid, argv).
    pub invoker: Invoker,
}

/// The management node, as this process reaches it.
pub trait Driver {
    /// `MEGASAS_IOC_FIRMWARE` (the native layout) with the private call; `(ret, errno)`.
    fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int);
    /// `MEGASAS_IOC_GET_AEN` with a private copy of the caller's `megasas_aen`.
    fn get_aen(&mut self, aen: &mut [u8; AEN_SIZE]) -> (c_int, c_int);
}

/// What the caller gets: a return value, or an errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The driver's non-negative result.
    Value(c_int),
    /// The call fails with this errno.
    Errno(c_int),
}

/// How a call ended for the caller.
pub struct Delivery {
    /// What the call answered.
    pub answer: Answer,
    /// Whether the caller got it.
    pub delivered: bool,
    /// Whether the driver was called.
    pub executed: bool,
    /// For a firmware command that ran but whose results did not reach the caller (it was
    /// interrupted, or died): what the driver wrote and answered, to give to the caller's
    /// restart of the same call instead of running the command again.
    pub replay: Option<Box<Replay>>,
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
}

/// A call, as the supervisor received it.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// The request code (the low 32 bits of the syscall's argument).
    pub code: u32,
    /// The caller's packet or `megasas_aen` address.
    pub arg: u64,
    /// The packet layout: the caller's system-call ABI decides it.
    pub abi: Abi,
    /// Which entry saw the call.
    pub guard: Guard,
}

/// A packet and the private buffers it points at, built only by [`PrivateCall::build`]: every
/// address in `packet` (the used `sgl[]` entries, the sense pointer) is the address of one of
/// `bufs` or of `sense`, so a driver handed `as_mut_ptr()` writes only into memory this value
/// owns. The buffers are never resized after the addresses are taken.
pub struct PrivateCall {
    packet: [u8; NATIVE_PACKET_SIZE],
    bufs: Vec<Vec<u8>>,
    /// For each buffer, its caller's address.
    caller_addrs: Vec<u64>,
    sense: Vec<u8>,
    /// Where the caller wants the sense data.
    caller_sense: Option<u64>,
}

impl PrivateCall {
    /// The native packet to hand to `ioctl(MEGASAS_IOC_FIRMWARE)`.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.packet.as_mut_ptr()
    }

    /// The packet bytes (for tests and records).
    pub fn packet(&self) -> &[u8; NATIVE_PACKET_SIZE] {
        &self.packet
    }

    /// The private data buffers, in `sgl[]` order (empty for entries of length 0), and the
    /// sense buffer: what a driver may write (for tests and the fuzz target).
    pub fn buffers_mut(&mut self) -> (&mut [Vec<u8>], &mut [u8]) {
        (&mut self.bufs, &mut self.sense)
    }

    /// The `cmd_status` byte of the private packet.
    fn status(&self) -> u8 {
        self.packet[CMD_STATUS]
    }

    /// Copies the caller's buffers in and lays out the native packet: `frame` is the frame to
    /// send (rewrites applied, or unmodified in audit mode).
    fn build(
        caller: &impl Caller,
        p: &Packet,
        frame: &[u8; 128],
        plan: &Plan,
    ) -> Result<PrivateCall, GuardIssue> {
        let mut call = PrivateCall {
            packet: [0; NATIVE_PACKET_SIZE],
            bufs: Vec::with_capacity(plan.used),
            caller_addrs: Vec::with_capacity(plan.used),
            sense: Vec::new(),
            caller_sense: None,
        };
        let pk = &mut call.packet;
        pk[0..2].copy_from_slice(&p.host_no.to_ne_bytes());
        pk[4..8].copy_from_slice(&p.sgl_off.to_ne_bytes());
        pk[8..12].copy_from_slice(&p.sge_count.to_ne_bytes());
        pk[12..16].copy_from_slice(&p.sense_off.to_ne_bytes());
        pk[16..20].copy_from_slice(&p.sense_len.to_ne_bytes());
        pk[MEGASAS_IOC_FRAME_OFFSET..MEGASAS_IOC_FRAME_OFFSET + 128].copy_from_slice(frame);
        for iov in p.sgl.iter().take(plan.used) {
            let mut buf = Vec::new();
            if iov.len > 0 {
                // Bounded by `plan` (at most SGE_LEN_MAX each).
                let len = usize::try_from(iov.len).map_err(|_| GuardIssue::Unsupported)?;
                buf = vec![0u8; len];
                caller
                    .read(iov.base, &mut buf)
                    .map_err(|_| GuardIssue::BufferFault {
                        addr: iov.base,
                        len: iov.len,
                    })?;
            }
            call.bufs.push(buf);
            call.caller_addrs.push(iov.base);
        }
        if let Some((at, user)) = plan.sense {
            call.sense = vec![0u8; p.sense_len as usize];
            call.caller_sense = Some(user);
            let addr = call.sense.as_mut_ptr() as u64;
            let off = MEGASAS_IOC_FRAME_OFFSET + at;
            call.packet[off..off + 8].copy_from_slice(&addr.to_le_bytes());
        }
        for (i, buf) in call.bufs.iter_mut().enumerate() {
            let off = MEGASAS_IOC_SGL_OFFSET + i * 16;
            let (base, len) = if buf.is_empty() {
                (0u64, 0u64)
            } else {
                (buf.as_mut_ptr() as u64, buf.len() as u64)
            };
            call.packet[off..off + 8].copy_from_slice(&base.to_ne_bytes());
            call.packet[off + 8..off + 16].copy_from_slice(&len.to_ne_bytes());
        }
        Ok(call)
    }

    /// Copies back what the driver wrote, in its order: data buffers, sense, `cmd_status`.
    /// On failure, the buffer and the caller's errno (`ESRCH`: the call is no longer pending).
    fn copy_back(&self, caller: &impl Caller, status_at: u64) -> Result<(), (GuardIssue, c_int)> {
        let write = |addr: u64, data: &[u8]| {
            caller.write(addr, data).map_err(|e| {
                let len = data.len() as u64;
                (GuardIssue::BufferFault { addr, len }, e)
            })
        };
        for (buf, &addr) in self.bufs.iter().zip(&self.caller_addrs) {
            if !buf.is_empty() {
                write(addr, buf)?;
            }
        }
        if let Some(addr) = self.caller_sense {
            write(addr, &self.sense)?;
        }
        write(status_at, &[self.status()])
    }
}

/// Which of the caller's buffers a private call copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `sgl[..used]` are copied (entries of length 0 stay empty).
    pub used: usize,
    /// The sense pointer's frame offset and the caller's sense buffer, when `sense_len != 0`.
    pub sense: Option<(usize, u64)>,
}

/// What a private call would copy, or `None` when it cannot be made within the rules' limits
/// (`sge.length`, `sense.length`) or the sense pointer is not inside the frame.
pub fn plan(p: &Packet) -> Option<Plan> {
    let used = p.used_iovecs();
    let mut total = 0u64;
    for v in used {
        if v.len > SGE_LEN_MAX {
            return None;
        }
        total = total.checked_add(v.len)?;
    }
    if total > SGE_TOTAL_MAX {
        return None;
    }
    let sense = if p.sense_len == 0 {
        None
    } else {
        if p.sense_len > SENSE_LEN_MAX {
            return None;
        }
        let at = usize::try_from(p.sense_off).ok()?;
        // The driver reads (and the private packet gets) an 8-byte pointer there.
        if at.checked_add(8)? > p.frame.len() {
            return None;
        }
        let user = match p.abi {
            Abi::Lp64 => p.frame_u64(at)?,
            Abi::Ilp32 => {
                let b: [u8; 4] = p.frame.get(at..at + 4)?.try_into().ok()?;
                u64::from(u32::from_le_bytes(b))
            }
        };
        Some((at, user))
    };
    Some(Plan {
        used: used.len(),
        sense,
    })
}

/// Shared by a call's two records; counts from 1 per guarding process.
static SEQ: AtomicU64 = AtomicU64::new(1);

/// A call in progress: its request, the caller, and its record.
struct Call<'a, C: Caller> {
    cfg: &'a Config,
    caller: &'a C,
    req: Request,
    seq: u64,
    identity: Option<Identity>,
    executed: bool,
}

impl<C: Caller> Call<'_, C> {
    fn identity(&mut self) -> &Identity {
        self.identity.get_or_insert_with(|| self.caller.identity())
    }

    /// The call's record so far; who made it is filled in when it is written.
    fn record(&self) -> CallRecord<'static> {
        let cfg = self.cfg;
        CallRecord {
            seq: self.seq,
            guard: self.req.guard,
            caller: None,
            invoker: None,
            abi: self.req.abi,
            exe: "",
            mode: cfg.mode,
            request: self.req.code,
            nested: false,
            host_no: None,
            packet: None,
            decision: Decision::Pass,
            enforced: cfg.enforcing(),
            verdict: None,
            issue: None,
            outcome: None,
        }
    }

    fn emit(&mut self, rec: &CallRecord<'_>, phase: Phase) -> Result<bool, c_int> {
        if self.cfg.log == LogTarget::None {
            return Ok(false);
        }
        let cfg = self.cfg;
        let id = self.identity();
        let rec = CallRecord {
            caller: Some(id.who),
            exe: &id.exe,
            invoker: Some(&id.invoker),
            ..*rec
        };
        audit::emit(cfg, false, Record::Call(&rec, phase))
    }

    /// Fails the call without calling the driver; always recorded.
    fn refuse(&mut self, rec: CallRecord<'_>, errno: c_int) -> Delivery {
        self.finish(rec, true, Answer::Errno(errno), None, None)
    }

    /// Answers the caller, then writes the outcome record (when due, and always when the
    /// answer could not be delivered after the driver ran).
    fn finish(
        &mut self,
        mut rec: CallRecord<'_>,
        record: bool,
        answer: Answer,
        status: Option<u8>,
        start: Option<Instant>,
    ) -> Delivery {
        let (ret, errno) = match answer {
            Answer::Value(v) => (v, 0),
            Answer::Errno(e) => (-1, e),
        };
        let latency = start.map(|s| u64::try_from(s.elapsed().as_micros()).unwrap_or(u64::MAX));
        if record && self.cfg.log != LogTarget::None {
            // Who called, while it still waits: once answered it may exit at once.
            self.identity();
        }
        let delivered = self.caller.deliver(answer).is_ok();
        rec.outcome = Some(Outcome {
            ret,
            errno,
            cmd_status: status,
            latency_us: latency,
        });
        if !delivered && rec.issue.is_none() {
            rec.issue = Some(GuardIssue::NotDelivered {
                executed: self.executed,
            });
        }
        if record || !delivered {
            let _ = self.emit(&rec, Phase::Outcome);
        }
        Delivery {
            answer,
            delivered,
            executed: self.executed,
            replay: None,
        }
    }

    fn issue(&mut self, mut rec: CallRecord<'_>, issue: GuardIssue) -> Delivery {
        rec.issue = Some(issue);
        rec.decision = Decision::Reject(issue.errno());
        rec.enforced = true;
        self.refuse(rec, issue.errno().0)
    }

    /// The decision record, when one is due; `Err` answers the call (log required).
    fn decision(&mut self, rec: &CallRecord<'_>, record: bool) -> Result<(), Delivery> {
        if !record {
            return Ok(());
        }
        match self.emit(rec, Phase::Decision) {
            Err(errno) if self.cfg.log_required => {
                let rec = CallRecord { ..*rec };
                Err(self.issue(rec, GuardIssue::LogRequired { errno }))
            }
            _ => Ok(()),
        }
    }
}

/// Guards one `MEGASAS_IOC_FIRMWARE` or `MEGASAS_IOC_GET_AEN` call that `caller` made on the
/// management node: decides, executes it through `driver` on private copies, copies back,
/// records. Never reads the caller's memory after the decision.
pub fn guard_call(
    cfg: &Config,
    req: Request,
    caller: &impl Caller,
    driver: &mut impl Driver,
) -> Delivery {
    let mut call = Call {
        cfg,
        caller,
        req,
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
        identity: None,
        executed: false,
    };
    if req.code == MEGASAS_IOC_GET_AEN {
        get_aen(&mut call, driver)
    } else {
        firmware(&mut call, driver)
    }
}

/// Refuses one call that `caller` made without reading its packet or calling the driver: the
/// call fails with `issue`'s errno, and the refusal is recorded (always, as every issue is).
pub fn refuse(cfg: &Config, req: Request, caller: &impl Caller, issue: GuardIssue) -> Delivery {
    let mut call = Call {
        cfg,
        caller,
        req,
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
        identity: None,
        executed: false,
    };
    let rec = call.record();
    call.issue(rec, issue)
}

fn get_aen<C: Caller>(call: &mut Call<'_, C>, driver: &mut impl Driver) -> Delivery {
    let mut rec = call.record();
    let record = call.cfg.log != LogTarget::None;
    let mut aen = [0u8; AEN_SIZE];
    if call.caller.read(call.req.arg, &mut aen).is_err() {
        let issue = GuardIssue::BufferFault {
            addr: call.req.arg,
            len: AEN_SIZE as u64,
        };
        return call.issue(rec, issue);
    }
    rec.host_no = Some(u16::from_ne_bytes([aen[0], aen[1]]));
    if let Err(answer) = call.decision(&rec, record) {
        return answer;
    }
    let start = record.then(Instant::now);
    call.executed = true;
    let (ret, errno) = driver.get_aen(&mut aen);
    let answer = if ret < 0 {
        Answer::Errno(errno)
    } else {
        Answer::Value(ret)
    };
    call.finish(rec, record, answer, None, start)
}

fn firmware<C: Caller>(call: &mut Call<'_, C>, driver: &mut impl Driver) -> Delivery {
    let cfg = call.cfg;
    let mut rec = call.record();
    let size = call.req.abi.packet_size();
    let mut bytes = [0u8; NATIVE_PACKET_SIZE];
    let Some(bytes) = bytes.get_mut(..size) else {
        return call.issue(rec, GuardIssue::Sanitizer);
    };
    if call.caller.read(call.req.arg, bytes).is_err() {
        let issue = GuardIssue::Unreadable {
            addr: usize::try_from(call.req.arg).unwrap_or(usize::MAX),
            len: size,
        };
        return call.issue(rec, issue);
    }
    let Ok(mut packet) = decode(call.req.abi, bytes) else {
        return call.issue(rec, GuardIssue::Sanitizer);
    };
    rec.host_no = Some(packet.host_no);
    let Some(plan) = plan(&packet) else {
        // Beyond what can be copied: the rules refuse it in enforce mode (with their errno);
        // whatever they let through is refused here.
        let verdict = decide_packet(&cfg.policy(), &packet);
        let rec = with_verdict(rec, &packet, &verdict);
        if let (true, Decision::Reject(errno)) = (cfg.enforcing(), verdict.decision()) {
            return call.refuse(rec, errno.0);
        }
        return call.issue(rec, GuardIssue::Unsupported);
    };
    // Every buffer copied once, before the decision: the read-only policy's SMP rule decides
    // on the very request that is sent.
    let private = PrivateCall::build(call.caller, &packet, &packet.frame, &plan);
    let mut private = match private {
        Ok(p) => p,
        Err(issue) => return call.issue(rec, issue),
    };
    if packet.smp_request_iovec().is_some() {
        packet.smp_request = private
            .bufs
            .get(SMP_REQUEST_SGE_INDEX)
            .and_then(|b| b.get(..SMP_REQUEST_HEAD_LEN))
            .and_then(|head| head.try_into().ok());
    }
    let verdict = decide_packet(&cfg.policy(), &packet);
    let rec = with_verdict(rec, &packet, &verdict);
    let record = cfg.log != LogTarget::None
        && (cfg.audit == AuditLevel::All || verdict.findings().next().is_some());
    if cfg.enforcing() {
        if let Decision::Reject(errno) = verdict.decision() {
            return call.refuse(rec, errno.0);
        }
        let mut frame = packet.frame;
        if apply_to_frame(&verdict, packet.abi, bytes, &mut frame).is_err() {
            return call.issue(rec, GuardIssue::Sanitizer);
        }
        private.set_frame(&frame, &plan);
    }
    if let Err(answer) = call.decision(&rec, record) {
        return answer;
    }
    let before = private.status();
    let start = record.then(Instant::now);
    call.executed = true;
    let (ret, errno) = driver.firmware(&mut private);
    let status = private.status();
    // The driver copies back only when it got that far (see the preload's guard for the same
    // rule): a result, or a status it wrote.
    let wrote_back = ret >= 0 || status != before;
    let answer = if ret < 0 {
        Answer::Errno(errno)
    } else {
        Answer::Value(ret)
    };
    let status_at = call.req.arg.wrapping_add(CMD_STATUS as u64);
    let replay = |private| {
        Box::new(Replay {
            call: private,
            answer,
            status_at,
            wrote_back,
        })
    };
    if wrote_back {
        match private.copy_back(call.caller, status_at) {
            Ok(()) => {}
            Err((_, libc::ESRCH)) => {
                // Interrupted or gone before its results could be written: not delivered now,
                // kept for the kernel's restart of the call.
                let mut rec = rec;
                rec.issue = Some(GuardIssue::NotDelivered { executed: true });
                rec.outcome = Some(Outcome {
                    ret: if ret < 0 { -1 } else { ret },
                    errno: if ret < 0 { errno } else { 0 },
                    cmd_status: Some(status),
                    latency_us: None,
                });
                let _ = call.emit(&rec, Phase::Outcome);
                return Delivery {
                    answer,
                    delivered: false,
                    executed: true,
                    replay: Some(replay(private)),
                };
            }
            Err((issue, _)) => {
                // The driver's own copy to the caller would have failed: EFAULT, as it says.
                let mut rec = rec;
                rec.issue = Some(issue);
                let answer = if ret >= 0 {
                    Answer::Errno(libc::EFAULT)
                } else {
                    answer
                };
                return call.finish(rec, true, answer, None, start);
            }
        }
    }
    let mut delivery = call.finish(rec, record, answer, wrote_back.then_some(status), start);
    if !delivery.delivered {
        delivery.replay = Some(replay(private));
    }
    delivery
}

fn with_verdict<'v>(rec: CallRecord<'_>, p: &Packet, verdict: &'v Verdict) -> CallRecord<'v> {
    CallRecord {
        packet: Some(PacketInfo::new(p, verdict)),
        decision: verdict.decision(),
        verdict: Some(verdict),
        exe: "",
        invoker: None,
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

impl PrivateCall {
    /// Replaces the frame (after the verdict's rewrites), keeping the sense pointer the plan
    /// placed in it.
    fn set_frame(&mut self, frame: &[u8; 128], plan: &Plan) {
        let start = MEGASAS_IOC_FRAME_OFFSET;
        let mut sense_ptr = [0u8; 8];
        if let Some((at, _)) = plan.sense {
            sense_ptr.copy_from_slice(&self.packet[start + at..start + at + 8]);
        }
        self.packet[start..start + 128].copy_from_slice(frame);
        if let Some((at, _)) = plan.sense {
            self.packet[start + at..start + at + 8].copy_from_slice(&sense_ptr);
        }
    }
}

/// The `sgl[]` entries of a native private packet (for tests).
pub fn private_iovecs(packet: &[u8; NATIVE_PACKET_SIZE]) -> Vec<IoVec> {
    (0..16)
        .map(|i| {
            let off = MEGASAS_IOC_SGL_OFFSET + i * 16;
            let mut b = [0u8; 8];
            let mut l = [0u8; 8];
            b.copy_from_slice(&packet[off..off + 8]);
            l.copy_from_slice(&packet[off + 8..off + 16]);
            IoVec {
                base: u64::from_ne_bytes(b),
                len: u64::from_ne_bytes(l),
            }
        })
        .collect()
}
