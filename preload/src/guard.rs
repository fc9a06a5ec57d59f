//! The guarded path: a MegaRAID request code arrived; decide whether it is for the management
//! node, take the snapshot, decide on it, enforce, record.
//!
//! # Enforce (and readonly, for now)
//!
//! snapshot -> decide on the private copy -> reject: `-1` with the rule's errno, the kernel never
//! called; rewrite or pass: the rewrites applied to the private copy, the decision record
//! written, the next `ioctl` called with the **private copy**, then exactly the byte the kernel
//! writes back (`cmd_status`, frame byte 2, packet offset 0x16) copied into the caller's packet,
//! the outcome record written, the kernel's errno restored last, its result returned. What is
//! checked is what is sent: a second thread changing the caller's packet during the call changes
//! nothing that reaches the kernel.
//!
//! # Read-only: the SMP request
//!
//! The read-only policy decides an SMP frame on its request's function, which is not in the
//! packet but in the caller's buffer at `sgl[1]`. So, in that mode only, the guard reads that
//! buffer once into private memory (at most `SMP_REQUEST_MAX` bytes; an unreadable one fails the
//! call with `EFAULT`, rule `guard.fault`; a longer one is not inspected and so refused by
//! `readonly.smp`), gives its first bytes to the policy, and points the private packet's
//! `sgl[1]` at that copy. What was checked is what is sent: a thread rewriting the caller's
//! request during the call cannot get another function to the kernel. After the call, what the
//! kernel copied back into the private request is copied on into the caller's buffer (before the
//! status byte, as the driver orders its copy-backs), so the caller sees what it would have
//! without the guard.
//!
//! # Audit
//!
//! The same decision, recorded with `"enforced": false`; the next `ioctl` gets the caller's own
//! pointer, nothing is changed or refused (except under `MFIGUARD_LOG_REQUIRED=1`).
//!
//! # Failures
//!
//! - unreadable packet: `-1`/`EFAULT`, rule `guard.fault` (audit: passed on, the kernel answers);
//! - anything internal, including a panic (caught around the whole path): `-1`/`EIO`, rule
//!   `guard.internal`, the kernel not called. A panic *after* the kernel call returns the
//!   kernel's result instead, since the command has run and the tool must not retry it blindly;
//! - no next `ioctl`: `-1`/`EIO`, `guard.internal`;
//! - `MFIGUARD_LOG_REQUIRED=1` and the decision record cannot be written: `-1`/`EIO`, rule
//!   `guard.log-required`, reported on stderr.
//!
//! # Reentrancy
//!
//! A thread-local depth counter marks the thread as inside the guard. A MegaRAID call that
//! arrives while it is set (from a signal handler that interrupted the guard) is still checked
//! and enforced in full: the sanitizer does not allocate, the snapshot and the device check are
//! system calls. Only the parts that could deadlock change: it never reads the configuration
//! (it uses it if already read, else the built-in defaults: enforce, records to stderr, and
//! every character device taken for the node, since `MFIGUARD_DEVICE` is not known yet), never
//! logs diagnostics, and its records are assembled on the stack and written with
//! `open`/`write`/`close` (file, stderr; syslog is replaced by stderr). Nothing in that path
//! allocates or takes a lock, so it cannot deadlock against the call it interrupted.

use std::cell::Cell;
use std::ffi::{c_int, c_ulong};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use mfiguard_sanitizer::abi::ioctl::{MEGASAS_IOC_FRAME_OFFSET, MEGASAS_IOC_GET_AEN};
use mfiguard_sanitizer::abi::mfi::MFI_CMD_STATUS_OFFSET;
use mfiguard_sanitizer::decode::{IoVec, Packet, SMP_REQUEST_HEAD_LEN, SMP_REQUEST_SGE_INDEX};
use mfiguard_sanitizer::{decide_packet, decode, Abi, Decision, Errno};

use crate::audit::{
    self, CallRecord, ErrorRecord, Guard, GuardIssue, Outcome, PacketInfo, Phase, Record,
};
use crate::config::{self, AuditLevel, Config, GuardMode, LogTarget};
use crate::snapshot::{self, CallerArg, PacketBuf, SmpRequestBuf, PACKET_SIZE, SMP_REQUEST_MAX};
use crate::{device, real, sys};

/// The read-only policy's private copy of an SMP request, sent in place of the caller's.
struct Lent<'b> {
    /// The caller's buffer (`iov_base`), where the kernel's copy-back goes on.
    caller: u64,
    /// The copy, `iov_len` bytes.
    buf: &'b mut [u8],
}

/// The caller's `cmd_status` byte: frame byte 2.
const CMD_STATUS: usize = MEGASAS_IOC_FRAME_OFFSET + MFI_CMD_STATUS_OFFSET;
const _: () = assert!(CMD_STATUS == 0x16);

/// Used when the configuration is not available (see the module docs).
static FALLBACK: Config = Config::FALLBACK;

/// Shared by a call's two records; counts per process from 1 (reset in a forked child).
static SEQ: AtomicU64 = AtomicU64::new(1);

/// In a forked child (see `fork.rs`): its records count from 1 again.
pub fn after_fork() {
    SEQ.store(1, Ordering::Relaxed);
}

/// Whether the configuration's errors were recorded and the debug log set up.
static STARTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// How many guarded calls this thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Marks the thread as inside the guard for as long as it lives.
struct Depth {
    nested: bool,
}

impl Depth {
    fn enter() -> Depth {
        // A thread whose thread-locals are being destroyed is treated as nested: the
        // allocation-free path is safe in every context.
        let nested = DEPTH
            .try_with(|d| {
                let n = d.get();
                d.set(n.saturating_add(1));
                n > 0
            })
            .unwrap_or(true);
        Depth { nested }
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// What survives a panic inside the guarded path.
#[derive(Default)]
struct Progress {
    seq: Option<u64>,
    /// The kernel's `(ret, errno)`, once it was called.
    kernel: Option<(c_int, c_int)>,
}

/// Handles a call whose request code is `MEGASAS_IOC_FIRMWARE` (this process's layout) or
/// `MEGASAS_IOC_GET_AEN`. Never panics, never unwinds.
pub fn guarded(fd: c_int, request: c_ulong, arg: CallerArg) -> c_int {
    guarded_with(fd, request, arg, |call| call.run())
}

/// `guarded` with the path to run as a parameter, so that tests can make it panic.
fn guarded_with(
    fd: c_int,
    request: c_ulong,
    arg: CallerArg,
    path: impl FnOnce(&mut Call<'_>) -> c_int,
) -> c_int {
    let caller_errno = sys::errno();
    let depth = Depth::enter();
    let mut progress = Progress::default();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        path(&mut Call {
            fd,
            request,
            code: crate::request_code(request),
            arg,
            nested: depth.nested,
            caller_errno,
            progress: &mut progress,
        })
    }));
    match result {
        Ok(ret) => ret,
        Err(_) => {
            let (ret, errno) = progress.kernel.unwrap_or((-1, libc::EIO));
            let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                record_panic(crate::request_code(request), depth.nested, &progress)
            }));
            sys::set_errno(errno);
            ret
        }
    }
}

fn record_panic(code: u32, nested: bool, progress: &Progress) {
    let cfg = config::get().unwrap_or(&FALLBACK);
    let after_kernel = progress.kernel.is_some();
    let mut rec = base_record(cfg, code, nested);
    rec.seq = progress.seq.unwrap_or(rec.seq);
    rec.issue = Some(GuardIssue::Panicked { after_kernel });
    // After the kernel call the command has run: the record must not claim it was refused.
    rec.decision = if after_kernel {
        Decision::Pass
    } else {
        Decision::Reject(Errno::EIO)
    };
    let (ret, errno) = progress.kernel.unwrap_or((-1, libc::EIO));
    rec.outcome = Some(Outcome {
        ret,
        errno,
        cmd_status: None,
        latency_us: None,
    });
    let _ = audit::emit(cfg, nested, Record::Call(&rec, Phase::Outcome));
}

fn base_record(cfg: &Config, code: u32, nested: bool) -> CallRecord<'_> {
    CallRecord {
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
        guard: Guard::Preload,
        caller: None,
        invoker: None,
        abi: Abi::NATIVE,
        exe: &cfg.exe,
        mode: cfg.mode,
        request: code,
        nested,
        host_no: None,
        packet: None,
        decision: Decision::Pass,
        enforced: cfg.enforcing(),
        verdict: None,
        issue: None,
        outcome: None,
    }
}

/// The configuration, read on the first guarded call; its errors recorded once.
fn startup() -> &'static Config {
    let cfg = config::get_or_load();
    if !STARTED.load(Ordering::Acquire) && !STARTED.swap(true, Ordering::AcqRel) {
        audit::set_build(crate::BUILD_NAME);
        if let Some(filter) = &cfg.debug {
            let pid = std::process::id();
            let _ = env_logger::Builder::new()
                .parse_filters(filter)
                .target(env_logger::Target::Stderr)
                .format(move |buf, r| {
                    use std::io::Write;
                    writeln!(
                        buf,
                        "mfiguard[{pid}] {} {}: {}",
                        r.level(),
                        r.target(),
                        r.args()
                    )
                })
                .try_init();
            log::debug!(
                "mode {} log {} audit {:?} allow [{}] sync {} required {} device {:?} exe {:?}",
                cfg.mode.name(),
                cfg.log.describe(),
                cfg.audit,
                cfg.allow
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(","),
                cfg.log_sync,
                cfg.log_required,
                cfg.device,
                cfg.exe
            );
        }
        if cfg.mode != GuardMode::Off {
            for e in &cfg.errors {
                log::debug!("configuration: {e}");
                let rec = ErrorRecord {
                    key: &e.key,
                    value: &e.value,
                    message: &e.message,
                    exe: &cfg.exe,
                };
                let _ = audit::emit(cfg, false, Record::Error(&rec));
            }
        }
    }
    cfg
}

struct Call<'p> {
    fd: c_int,
    request: c_ulong,
    /// The request as the kernel reads it.
    code: u32,
    arg: CallerArg,
    nested: bool,
    caller_errno: c_int,
    progress: &'p mut Progress,
}

impl Call<'_> {
    fn run(&mut self) -> c_int {
        let (cfg, configured) = if self.nested {
            match config::get() {
                Some(cfg) => (cfg, true),
                None => (&FALLBACK, false),
            }
        } else {
            (startup(), true)
        };
        if cfg.mode == GuardMode::Off {
            return self.forward();
        }
        // Without the configuration, `MFIGUARD_DEVICE` is unknown: any character device is
        // treated as the node rather than letting a packet through unchecked.
        let node = if configured {
            device::is_mgmt_node(self.fd, cfg)
        } else {
            device::is_char_device(self.fd)
        };
        match node {
            Ok(true) => {}
            Ok(false) => return self.forward(),
            Err(errno) => {
                if !self.nested {
                    log::debug!("fd {}: fstat failed: {}", self.fd, Errno(errno));
                }
                sys::set_errno(errno);
                return -1;
            }
        }
        let rec = base_record(cfg, self.code, self.nested);
        self.progress.seq = Some(rec.seq);
        if self.code == MEGASAS_IOC_GET_AEN {
            self.aen(cfg, rec)
        } else {
            self.firmware(cfg, rec)
        }
    }

    /// The caller's call, unchanged, with the caller's errno as it was on entry.
    fn forward(&mut self) -> c_int {
        sys::set_errno(self.caller_errno);
        real::forward(self.fd, self.request, self.arg)
    }

    /// `MEGASAS_IOC_GET_AEN`: no rule applies; always recorded, passed through.
    fn aen(&mut self, cfg: &Config, mut rec: CallRecord<'_>) -> c_int {
        let record = cfg.log != LogTarget::None;
        let mut aen = [0u8; 12];
        if record && snapshot::read(self.arg, 0, &mut aen).is_ok() {
            rec.host_no = Some(u16::from_ne_bytes([aen[0], aen[1]]));
        }
        self.pass_through(cfg, rec, record, false)
    }

    fn firmware(&mut self, cfg: &Config, rec: CallRecord<'_>) -> c_int {
        let mut rec = rec;
        let mut copy = PacketBuf::zeroed();
        if let Err(errno) = snapshot::read(self.arg, 0, &mut copy.0) {
            if !self.nested {
                log::debug!(
                    "#{} packet at {:#x}: {}",
                    rec.seq,
                    self.arg.addr(),
                    Errno(errno)
                );
            }
            rec.decision = Decision::Reject(Errno::EFAULT);
            rec.issue = Some(GuardIssue::Unreadable {
                addr: self.arg.addr(),
                len: PACKET_SIZE,
            });
            if cfg.enforcing() {
                return self.refuse(cfg, rec, libc::EFAULT);
            }
            return self.pass_through(cfg, rec, true, false);
        }
        let Ok(packet) = decode(Abi::NATIVE, &copy.0) else {
            return self.internal(cfg, rec, GuardIssue::Sanitizer);
        };
        if cfg.mode == GuardMode::Readonly {
            if let Some(iov) = packet.smp_request_iovec() {
                return self.readonly_smp(cfg, rec, &mut copy, packet, iov);
            }
        }
        self.decide_and_send(cfg, rec, &mut copy, &packet, None)
    }

    /// Read-only policy, SMP frame: the request buffer (`sgl[1]`) read once into private
    /// memory, its head given to the policy, and the private copy sent (see the module docs).
    #[inline(never)]
    fn readonly_smp(
        &mut self,
        cfg: &Config,
        mut rec: CallRecord<'_>,
        copy: &mut PacketBuf,
        mut packet: Packet,
        iov: IoVec,
    ) -> c_int {
        let mut buf = SmpRequestBuf::zeroed();
        let request = usize::try_from(iov.len)
            .ok()
            .and_then(|len| buf.0.get_mut(..len));
        let Some(request) = request else {
            // Longer than any SMP request: not inspected, so refused by `readonly.smp`.
            if !self.nested {
                log::debug!(
                    "#{} SMP request of {} bytes is longer than {SMP_REQUEST_MAX}: not inspected",
                    rec.seq,
                    iov.len
                );
            }
            return self.decide_and_send(cfg, rec, copy, &packet, None);
        };
        let read = self
            .arg
            .packet_iovec(iov.base)
            .ok_or(libc::EFAULT)
            .and_then(|caller| snapshot::read(caller, 0, request));
        if let Err(errno) = read {
            if !self.nested {
                log::debug!(
                    "#{} SMP request at {:#x}: {}",
                    rec.seq,
                    iov.base,
                    Errno(errno)
                );
            }
            rec.host_no = Some(packet.host_no);
            rec.decision = Decision::Reject(Errno::EFAULT);
            rec.issue = Some(GuardIssue::SmpRequestUnreadable {
                addr: iov.base,
                len: request.len(),
            });
            return self.refuse(cfg, rec, libc::EFAULT);
        }
        packet.smp_request = request
            .get(..SMP_REQUEST_HEAD_LEN)
            .and_then(|head| head.try_into().ok());
        let lent = Lent {
            caller: iov.base,
            buf: request,
        };
        self.decide_and_send(cfg, rec, copy, &packet, Some(lent))
    }

    /// Decides on the snapshot, then refuses, or sends the private copy (with `lent` in place
    /// of the caller's SMP request) and copies back what the kernel writes.
    fn decide_and_send(
        &mut self,
        cfg: &Config,
        rec: CallRecord<'_>,
        copy: &mut PacketBuf,
        packet: &Packet,
        mut lent: Option<Lent<'_>>,
    ) -> c_int {
        let verdict = decide_packet(&cfg.policy(), packet);
        let mut rec = CallRecord {
            host_no: Some(packet.host_no),
            packet: Some(PacketInfo::new(packet, &verdict)),
            decision: verdict.decision(),
            verdict: Some(&verdict),
            ..rec
        };
        let record = cfg.log != LogTarget::None
            && (cfg.audit == AuditLevel::All || verdict.findings().next().is_some());
        if !self.nested {
            log::debug!(
                "#{} fd {} {} (enforced {}), {} findings",
                rec.seq,
                self.fd,
                rec.decision.name(),
                cfg.enforcing(),
                verdict.findings().count()
            );
        }
        if !cfg.enforcing() {
            return self.pass_through(cfg, rec, record, true);
        }
        if let Decision::Reject(errno) = verdict.decision() {
            return self.refuse(cfg, rec, errno.0);
        }
        if verdict.apply(&mut copy.0).is_err() {
            return self.internal(cfg, rec, GuardIssue::Sanitizer);
        }
        if !real::available() {
            return self.internal(cfg, rec, GuardIssue::NoNextIoctl);
        }
        if record {
            if let Err(errno) = self.decision(cfg, &rec) {
                return self.log_required(cfg, rec, errno);
            }
        }
        let original_status = copy.0[CMD_STATUS];
        sys::set_errno(self.caller_errno);
        // Timed only for the outcome record (two clock reads saved on every call not recorded).
        let start = record.then(Instant::now);
        let ret = match &mut lent {
            None => real::call_private(self.fd, self.request, copy),
            Some(lent) => real::call_private_lending(
                self.fd,
                self.request,
                copy,
                SMP_REQUEST_SGE_INDEX,
                lent.buf,
            ),
        }
        .unwrap_or(-1);
        let errno = sys::errno();
        let latency = start.map(|s| s.elapsed());
        self.progress.kernel = Some((ret, errno));
        let status = copy.0[CMD_STATUS];
        // Exactly what the kernel writes back, when it got that far: every `sgl[]` buffer (of
        // which only a lent SMP request is ours to copy on), then the status byte. The
        // kernel's own write-back failing is `-EFAULT` from the driver (and it then skips the
        // status byte), so ours failing is too.
        let wrote_back = ret >= 0 || status != original_status;
        let request_back = match &lent {
            Some(lent) if wrote_back => self
                .arg
                .packet_iovec(lent.caller)
                .ok_or(libc::EFAULT)
                .and_then(|caller| snapshot::write(caller, 0, lent.buf)),
            _ => Ok(()),
        };
        let (ret, errno) = if let Err(e) = request_back {
            if !self.nested {
                log::debug!("#{} SMP request not copied back: {}", rec.seq, Errno(e));
            }
            (-1, libc::EFAULT)
        } else if wrote_back {
            match snapshot::write(self.arg, CMD_STATUS, &[status]) {
                Ok(()) => (ret, errno),
                Err(e) => {
                    if !self.nested {
                        log::debug!("#{} cmd_status not copied back: {}", rec.seq, Errno(e));
                    }
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
        rec.outcome = Some(Outcome {
            ret,
            errno: if ret < 0 { errno } else { 0 },
            cmd_status: wrote_back.then_some(status),
            latency_us: latency.map(|l| u64::try_from(l.as_micros()).unwrap_or(u64::MAX)),
        });
        if record {
            let _ = audit::emit(cfg, self.nested, Record::Call(&rec, Phase::Outcome));
        }
        sys::set_errno(errno);
        ret
    }

    /// Calls the next `ioctl` with the caller's own pointer (audit mode, `GET_AEN`), recording
    /// the decision before and the outcome after.
    fn pass_through(
        &mut self,
        cfg: &Config,
        mut rec: CallRecord<'_>,
        record: bool,
        readable: bool,
    ) -> c_int {
        if record {
            if let Err(errno) = self.decision(cfg, &rec) {
                return self.log_required(cfg, rec, errno);
            }
        }
        sys::set_errno(self.caller_errno);
        let start = record.then(Instant::now);
        let ret = real::forward(self.fd, self.request, self.arg);
        let errno = sys::errno();
        let latency = start.map(|s| s.elapsed());
        self.progress.kernel = Some((ret, errno));
        let mut status = None;
        if record && readable && ret >= 0 {
            let mut byte = [0u8];
            if snapshot::read(self.arg, CMD_STATUS, &mut byte).is_ok() {
                status = Some(byte[0]);
            }
        }
        rec.outcome = Some(Outcome {
            ret,
            errno: if ret < 0 { errno } else { 0 },
            cmd_status: status,
            latency_us: latency.map(|l| u64::try_from(l.as_micros()).unwrap_or(u64::MAX)),
        });
        if record {
            let _ = audit::emit(cfg, self.nested, Record::Call(&rec, Phase::Outcome));
        }
        sys::set_errno(errno);
        ret
    }

    /// Writes the decision record; `Err` only when that failed and a record is required.
    fn decision(&self, cfg: &Config, rec: &CallRecord<'_>) -> Result<(), c_int> {
        match audit::emit(cfg, self.nested, Record::Call(rec, Phase::Decision)) {
            Err(errno) if cfg.log_required => Err(errno),
            _ => Ok(()),
        }
    }

    /// Fails the call without calling the kernel; always recorded.
    fn refuse(&mut self, cfg: &Config, mut rec: CallRecord<'_>, errno: c_int) -> c_int {
        rec.outcome = Some(Outcome {
            ret: -1,
            errno,
            cmd_status: None,
            latency_us: None,
        });
        let _ = audit::emit(cfg, self.nested, Record::Call(&rec, Phase::Outcome));
        sys::set_errno(errno);
        -1
    }

    fn internal(&mut self, cfg: &Config, mut rec: CallRecord<'_>, issue: GuardIssue) -> c_int {
        rec.issue = Some(issue);
        rec.decision = Decision::Reject(issue.errno());
        rec.enforced = true;
        self.refuse(cfg, rec, issue.errno().0)
    }

    /// The decision record could not be written and `MFIGUARD_LOG_REQUIRED=1`: fail closed.
    fn log_required(&mut self, cfg: &Config, rec: CallRecord<'_>, sink_errno: c_int) -> c_int {
        let seq = rec.seq;
        audit::report_elsewhere(
            cfg,
            self.nested,
            std::process::id(),
            format_args!(
                "#{seq} refused with EIO (guard.log-required): the audit record could not be written to {} ({}) and MFIGUARD_LOG_REQUIRED=1",
                audit::SinkName(cfg.log.describe()),
                Errno(sink_errno)
            ),
        );
        self.internal(cfg, rec, GuardIssue::LogRequired { errno: sink_errno })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_FIRMWARE;

    fn null_arg() -> CallerArg {
        CallerArg::null_for_tests()
    }

    #[test]
    fn a_panic_before_the_kernel_call_is_eio() {
        sys::set_errno(0);
        let ret = guarded_with(-1, c_ulong::from(MEGASAS_IOC_FIRMWARE), null_arg(), |_| {
            panic!("injected")
        });
        assert_eq!((ret, sys::errno()), (-1, libc::EIO));
        // The depth counter was unwound too: the next call is not "nested".
        assert_eq!(DEPTH.with(Cell::get), 0);
    }

    #[test]
    fn a_panic_after_the_kernel_call_returns_the_kernels_answer() {
        let ret = guarded_with(
            -1,
            c_ulong::from(MEGASAS_IOC_FIRMWARE),
            null_arg(),
            |call| {
                call.progress.kernel = Some((0, 0));
                panic!("injected after the call")
            },
        );
        assert_eq!(ret, 0);
        let ret = guarded_with(
            -1,
            c_ulong::from(MEGASAS_IOC_FIRMWARE),
            null_arg(),
            |call| {
                call.progress.kernel = Some((-1, libc::ENOTTY));
                panic!("injected after a failed call")
            },
        );
        assert_eq!((ret, sys::errno()), (-1, libc::ENOTTY));
    }

    #[test]
    fn calls_inside_the_guard_are_nested() {
        let outer = guarded_with(-1, 0, null_arg(), |call| {
            assert!(!call.nested);
            guarded_with(-1, 0, null_arg(), |inner| {
                assert!(inner.nested);
                7
            })
        });
        assert_eq!(outer, 7);
        assert_eq!(DEPTH.with(Cell::get), 0);
    }

    #[test]
    fn a_bad_descriptor_is_ebadf_without_a_kernel_call() {
        sys::set_errno(0);
        let ret = guarded_with(
            -1,
            c_ulong::from(MEGASAS_IOC_FIRMWARE),
            null_arg(),
            |call| {
                call.nested = true; // use the built-in defaults, not this process's configuration
                call.run()
            },
        );
        assert_eq!((ret, sys::errno()), (-1, libc::EBADF));
    }
}
