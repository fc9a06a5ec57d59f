//! The in-place strategy, for the library inside the caller's own process: nothing on its path
//! allocates or takes a lock (it also runs in a signal handler that interrupted the guard), so
//! the private copy of the packet ([`LocalPacket`]) lives on the stack, the data buffers stay
//! the caller's, and the driver writes back exactly one byte of the packet, `cmd_status`,
//! which is copied into the caller's packet through the kernel.
//!
//! Enforce (and read-only): the packet copied once -> decided -> refused (the rule's errno, the
//! driver never called), or the rewrites applied to the private copy, the decision record
//! written, the next `ioctl` called with the **private copy**, `cmd_status` copied back, the
//! outcome record written. What is checked is what is sent: another thread changing the
//! caller's packet during the call changes nothing that reaches the kernel.
//!
//! Read-only, SMP frame: the policy decides on the request's function, which is in the caller's
//! buffer at `sgl[1]`, not in the packet. That buffer is read once into a private copy on the
//! stack (at most [`SMP_REQUEST_MAX`] bytes; an unreadable one fails the call with `EFAULT`,
//! `guard.fault`; a longer one is not inspected and so refused by `readonly.smp`), its head
//! given to the policy, and the private packet's `sgl[1]` pointed at that copy: what was checked
//! is what is sent. What the driver wrote into the copy is copied on into the caller's buffer
//! before the status byte, as the driver orders its copy-backs.
//!
//! Audit: the same decision, recorded with `"enforced": false`; the next `ioctl` gets the
//! caller's own pointer, nothing is changed or refused (except under `MFIGUARD_LOG_REQUIRED=1`).
//! An unreadable packet is `EFAULT` (`guard.fault`) in enforce, passed on in audit mode.
//! `MEGASAS_IOC_GET_AEN` has no rule: passed through with the caller's pointer, always recorded.

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::time::Instant;

use mfiguard_sanitizer::abi::mfi::MFI_CMD_STATUS_OFFSET;
use mfiguard_sanitizer::decode::{IoVec, Packet, SMP_REQUEST_HEAD_LEN, SMP_REQUEST_SGE_INDEX};
use mfiguard_sanitizer::{decide_packet, decode, Abi, Decision, Errno, Verdict};
use zerocopy::byteorder::native_endian;
use zerocopy::{FromZeros, IntoBytes};

use super::caller::{Answer, Caller};
use super::copied::{readonly_preview, with_verdict};
use super::private::{AEN_SIZE, CMD_STATUS};
use super::recorder::{driver_wrote_back, latency_us, logging, Delivery, Progress, Recorder};
use super::request::Request;
use crate::audit::{CallRecord, GuardIssue};
use crate::config::{Config, GuardMode};

#[cfg(target_pointer_width = "32")]
use mfiguard_sanitizer::abi::ioctl::{
    CompatIovec as NativeIovec, CompatMegasasIocPacket as NativePacket,
};
#[cfg(target_pointer_width = "64")]
use mfiguard_sanitizer::abi::ioctl::{Iovec as NativeIovec, MegasasIocPacket as NativePacket};

/// Bytes of a `megasas_iocpacket` in this process's layout (404 on x86_64, 276 on i386).
pub const PACKET_SIZE: usize = Abi::NATIVE.packet_size();
const _: () = assert!(size_of::<NativePacket>() == PACKET_SIZE);

/// Longest SMP request the read-only policy copies into private memory: one page, about four
/// times the longest SMP request frame (1028 bytes: smp_utils `smp_write_gpio.c`,
/// `SMP_MAX_REQ_LEN (1020 + 4 + 4)`), and never more than a pipe (the library's fallback copy)
/// holds. A longer request buffer is not inspected, and the read-only policy refuses it
/// (`readonly.smp`).
pub const SMP_REQUEST_MAX: usize = 4096;

/// The private copy of a packet, in this process's layout (the declared struct). Aligned like
/// the C struct would be in the caller, in case a simulator after the guard reads it through a
/// C struct pointer.
#[repr(C, align(8))]
pub struct LocalPacket(NativePacket);

impl LocalPacket {
    /// An all-zero packet.
    pub fn zeroed() -> LocalPacket {
        LocalPacket(NativePacket::new_zeroed())
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Its bytes, to fill and to apply rewrites to.
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        self.0.as_mut_bytes()
    }

    /// The frame's `cmd_status`.
    pub fn status(&self) -> u8 {
        self.0.frame[MFI_CMD_STATUS_OFFSET]
    }

    /// The packet as it is sent: its user pointers are the caller's own.
    pub fn private(&mut self) -> PrivatePacket<'_> {
        PrivatePacket {
            packet: self,
            _lent: PhantomData,
        }
    }

    /// The packet with `sgl[index]` pointed at `buf` (base and exact length), a buffer of the
    /// guard's that stays borrowed as long as the packet is: the driver reads and writes only
    /// inside it. Past `sgl[15]` nothing is changed.
    pub fn lending<'b>(&'b mut self, index: usize, buf: &'b mut [u8]) -> PrivatePacket<'b> {
        if let Some(slot) = self.0.sgl.get_mut(index) {
            *slot = native_iovec(buf.as_mut_ptr() as usize, buf.len());
        }
        self.private()
    }
}

#[cfg(target_pointer_width = "64")]
fn native_iovec(base: usize, len: usize) -> NativeIovec {
    NativeIovec {
        iov_base: native_endian::U64::new(base as u64),
        iov_len: native_endian::U64::new(len as u64),
    }
}

#[cfg(target_pointer_width = "32")]
fn native_iovec(base: usize, len: usize) -> NativeIovec {
    NativeIovec {
        iov_base: native_endian::U32::new(base as u32),
        iov_len: native_endian::U32::new(len as u32),
    }
}

/// The read-only policy's private copy of an SMP request, sent in place of the caller's.
#[repr(C, align(8))]
struct SmpRequestBuf([u8; SMP_REQUEST_MAX]);

/// A whole packet of this process's layout, as the next `ioctl` is handed it: made only by
/// [`LocalPacket::private`] and [`LocalPacket::lending`], so every user pointer in it is either
/// the caller's own (which the caller handed over by making the call, and the kernel checks)
/// or points at a buffer of the guard's borrowed for as long as this value lives.
pub struct PrivatePacket<'a> {
    packet: &'a mut LocalPacket,
    /// The buffer lent to the driver, if any, borrowed as long.
    _lent: PhantomData<&'a mut [u8]>,
}

impl PrivatePacket<'_> {
    /// The pointer for the `ioctl`.
    pub fn as_mut_ptr(&mut self) -> *mut c_void {
        self.packet.as_mut_bytes().as_mut_ptr().cast()
    }

    /// The packet's bytes, as the driver reads and writes them (for tests and fuzzing).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.packet.as_mut_bytes()
    }
}

/// The next `ioctl` of the library's caller (glibc's, or a simulator's in the tests).
pub trait NextIoctl {
    /// The caller's descriptor (for diagnostics).
    fn fd(&self) -> c_int;
    /// Whether there is one (else a MegaRAID call fails closed).
    fn available(&self) -> bool;
    /// The caller's call, unchanged (its own pointer, its errno as it was on entry);
    /// `(ret, errno)`.
    fn pass_through(&mut self) -> (c_int, c_int);
    /// The call with the private packet instead of the caller's (its errno as it was on
    /// entry); `(ret, errno)`.
    fn send(&mut self, packet: PrivatePacket<'_>) -> (c_int, c_int);
}

/// The private SMP request lent to the driver.
struct Lent<'b> {
    /// The caller's buffer (`iov_base`), where the driver's copy-back goes on.
    caller: u64,
    /// The copy, `iov_len` bytes.
    buf: &'b mut [u8],
}

/// Guards one call of the library's caller on the management node; `(ret, errno)` for the
/// caller. `progress` keeps what a panic must not lose.
#[inline]
pub fn run<C: Caller, N: NextIoctl>(
    cfg: &Config,
    nested: bool,
    req: Request,
    caller: &C,
    next: &mut N,
    progress: &mut Progress,
) -> (c_int, c_int) {
    let mut r = Recorder::new(cfg, nested, req, caller);
    progress.seq = Some(r.seq());
    let mut call = InPlace {
        r: &mut r,
        next,
        progress,
    };
    if req.is_get_aen() {
        call.aen()
    } else {
        call.firmware()
    }
}

struct InPlace<'r, 'a, C: Caller, N: NextIoctl> {
    r: &'r mut Recorder<'a, C>,
    next: &'r mut N,
    progress: &'r mut Progress,
}

impl<'a, C: Caller, N: NextIoctl> InPlace<'_, 'a, C, N> {
    /// `MEGASAS_IOC_GET_AEN`: no rule applies; always recorded, passed through.
    fn aen(&mut self) -> (c_int, c_int) {
        let mut rec = self.r.base();
        let record = logging(self.r.cfg());
        let mut aen = [0u8; AEN_SIZE];
        if record && self.r.caller().read(self.r.request().arg, &mut aen).is_ok() {
            rec.host_no = Some(u16::from_ne_bytes([aen[0], aen[1]]));
        }
        self.pass_through(rec, record, false)
    }

    fn firmware(&mut self) -> (c_int, c_int) {
        let enforcing = self.r.enforcing();
        let arg = self.r.request().arg;
        let mut copy = LocalPacket::zeroed();
        if let Err(errno) = self.r.caller().read(arg, copy.as_mut_bytes()) {
            self.debug(format_args!("packet at {arg:#x}: {}", Errno(errno)));
            let mut rec = self.r.base();
            rec.decision = Decision::Reject(Errno::EFAULT);
            rec.issue = Some(GuardIssue::Unreadable {
                addr: usize::try_from(arg).unwrap_or(usize::MAX),
                len: PACKET_SIZE,
            });
            if enforcing {
                return answer(self.r.refuse(rec, libc::EFAULT));
            }
            return self.pass_through(rec, true, false);
        }
        let Ok(packet) = decode(Abi::NATIVE, copy.as_bytes()) else {
            return answer(self.r.issue(self.r.base(), GuardIssue::Sanitizer));
        };
        if self.r.call().mode == GuardMode::Readonly {
            if let Some(iov) = packet.smp_request_iovec() {
                return self.readonly_smp(&mut copy, packet, iov);
            }
        }
        self.decide_and_send(&mut copy, &packet, None)
    }

    /// Read-only policy, SMP frame: the request buffer (`sgl[1]`) read once into private
    /// memory, its head given to the policy, and the private copy sent (see the module docs).
    #[inline(never)]
    fn readonly_smp(
        &mut self,
        copy: &mut LocalPacket,
        mut packet: Packet,
        iov: IoVec,
    ) -> (c_int, c_int) {
        let mut buf = SmpRequestBuf([0; SMP_REQUEST_MAX]);
        let request = usize::try_from(iov.len)
            .ok()
            .and_then(|len| buf.0.get_mut(..len));
        let Some(request) = request else {
            // Longer than any SMP request: not inspected, so refused by `readonly.smp`.
            self.debug(format_args!(
                "SMP request of {} bytes is longer than {SMP_REQUEST_MAX}: not inspected",
                iov.len
            ));
            return self.decide_and_send(copy, &packet, None);
        };
        if let Err(errno) = self.r.caller().read(iov.base, request) {
            self.debug(format_args!(
                "SMP request at {:#x}: {}",
                iov.base,
                Errno(errno)
            ));
            let mut rec = self.r.base();
            rec.host_no = Some(packet.host_no);
            rec.decision = Decision::Reject(Errno::EFAULT);
            rec.issue = Some(GuardIssue::SmpRequestUnreadable {
                addr: iov.base,
                len: request.len(),
            });
            return answer(self.r.refuse(rec, libc::EFAULT));
        }
        packet.smp_request = request
            .get(..SMP_REQUEST_HEAD_LEN)
            .and_then(|head| head.try_into().ok());
        let lent = Lent {
            caller: iov.base,
            buf: request,
        };
        self.decide_and_send(copy, &packet, Some(lent))
    }

    /// The call's record with the decoded packet, the verdict and, in audit mode, read-only's
    /// preview: built only when it is written (most calls write none, and pay nothing for it).
    fn record<'v>(
        &self,
        packet: &Packet,
        verdict: &'v Verdict,
        preview: Option<&'v Verdict>,
    ) -> CallRecord<'v>
    where
        'a: 'v,
    {
        let mut rec = with_verdict(self.r.base(), packet, verdict);
        rec.host_no = Some(packet.host_no);
        rec.readonly_preview = preview;
        rec
    }

    /// Decides on the snapshot, then refuses, or sends the private copy (with `lent` in place
    /// of the caller's SMP request) and copies back what the driver writes.
    fn decide_and_send(
        &mut self,
        copy: &mut LocalPacket,
        packet: &Packet,
        mut lent: Option<Lent<'_>>,
    ) -> (c_int, c_int) {
        let call = *self.r.call();
        let verdict = decide_packet(&call.sanitizer(), packet);
        let record = self.r.record_due(&verdict);
        if !self.r.nested() {
            log::debug!(
                "#{} fd {} {} (enforced {}), {} findings",
                self.r.seq(),
                self.next.fd(),
                verdict.decision().name(),
                call.mode.enforcing(),
                verdict.findings().count()
            );
        }
        if !call.mode.enforcing() {
            let preview = if record {
                readonly_preview(&call, packet)
            } else {
                None
            };
            let rec = self.record(packet, &verdict, preview.as_ref());
            return self.pass_through(rec, record, true);
        }
        if let Decision::Reject(errno) = verdict.decision() {
            let rec = self.record(packet, &verdict, None);
            return answer(self.r.refuse(rec, errno.0));
        }
        if verdict.apply(copy.as_mut_bytes()).is_err() {
            let rec = self.record(packet, &verdict, None);
            return answer(self.r.issue(rec, GuardIssue::Sanitizer));
        }
        if !self.next.available() {
            let rec = self.record(packet, &verdict, None);
            return answer(self.r.issue(rec, GuardIssue::NoNextIoctl));
        }
        if record {
            let rec = self.record(packet, &verdict, None);
            if let Err(refused) = self.r.decision(&rec, record) {
                return answer(refused);
            }
        }
        let status_before = copy.status();
        // Timed only for the outcome record (two clock reads saved on every call not recorded).
        let start = record.then(Instant::now);
        self.r.executed = true;
        let (ret, errno) = match &mut lent {
            None => self.next.send(copy.private()),
            Some(lent) => self
                .next
                .send(copy.lending(SMP_REQUEST_SGE_INDEX, lent.buf)),
        };
        let latency = latency_us(start);
        self.progress.kernel = Some((ret, errno));
        let status = copy.status();
        // Exactly what the driver writes back, when it got that far: every `sgl[]` buffer (of
        // which only a lent SMP request is ours to copy on), then the status byte. The
        // driver's own write-back failing is `-EFAULT` (and it then skips the status byte), so
        // ours failing is too.
        let wrote_back = driver_wrote_back(ret, status_before, status);
        let caller = self.r.caller();
        let arg = self.r.request().arg;
        let request_back = match &lent {
            Some(lent) if wrote_back => caller.write(lent.caller, lent.buf),
            _ => Ok(()),
        };
        let (ret, errno) = if let Err(e) = request_back {
            self.debug(format_args!("SMP request not copied back: {}", Errno(e)));
            (-1, libc::EFAULT)
        } else if wrote_back {
            let written = arg
                .checked_add(CMD_STATUS as u64)
                .ok_or(libc::EFAULT)
                .and_then(|at| caller.write(at, &[status]));
            match written {
                Ok(()) => (ret, errno),
                Err(e) => {
                    self.debug(format_args!("cmd_status not copied back: {}", Errno(e)));
                    if ret >= 0 {
                        (-1, libc::EFAULT)
                    } else {
                        (ret, errno)
                    }
                }
            }
        } else {
            (ret, errno)
        };
        self.progress.kernel = Some((ret, errno));
        let status = wrote_back.then_some(status);
        let host_no = packet.host_no;
        let _ = self
            .r
            .finish_with(record, Answer::of(ret, errno), status, latency, |base| {
                let mut rec = with_verdict(base, packet, &verdict);
                rec.host_no = Some(host_no);
                rec
            });
        (ret, errno)
    }

    /// Calls the next `ioctl` with the caller's own pointer (audit mode, `GET_AEN`), recording
    /// the decision before and the outcome after.
    fn pass_through(
        &mut self,
        rec: CallRecord<'_>,
        record: bool,
        readable: bool,
    ) -> (c_int, c_int) {
        if let Err(refused) = self.r.decision(&rec, record) {
            return answer(refused);
        }
        let start = record.then(Instant::now);
        self.r.executed = true;
        let (ret, errno) = self.next.pass_through();
        let latency = latency_us(start);
        self.progress.kernel = Some((ret, errno));
        let mut status = None;
        if record && readable && ret >= 0 {
            let mut byte = [0u8];
            let at = self.r.request().arg.checked_add(CMD_STATUS as u64);
            if at.is_some_and(|at| self.r.caller().read(at, &mut byte).is_ok()) {
                status = Some(byte[0]);
            }
        }
        let _ = self
            .r
            .finish(rec, record, Answer::of(ret, errno), status, latency);
        (ret, errno)
    }

    /// A diagnostic (`MFIGUARD_DEBUG`), never from a signal handler.
    fn debug(&self, what: std::fmt::Arguments<'_>) {
        if !self.r.nested() {
            log::debug!("#{} {what}", self.r.seq());
        }
    }
}

/// What a refusal answers the library's caller.
fn answer(d: Delivery) -> (c_int, c_int) {
    d.answer.ret_errno()
}
