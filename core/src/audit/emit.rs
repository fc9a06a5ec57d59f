//! Delivery: a record rendered for its sink and sent, failures counted and reported once.

use std::ffi::c_int;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use mfiguard_sanitizer::Errno;

use super::buffers::{LineBuf, StackBuf, NESTED_BUF};
use super::invoker::{invoker, invoker_if_read, Invoker};
use super::json::{call_json, error_json};
use super::line::{call_line, error_line};
use super::record::{ErrorRecord, Record, Who};
use super::report::{report, SinkName};
use super::sink::stderr::Stderr;
use super::sink::{with_sink, Format, Sink, SinkError};
use crate::config::{Config, ConfigError, LogTarget, LOG_MAX};
use crate::sys;

/// For each configured destination (by its place in the `log` setting): records that could
/// not be written there since the last one that was (reported in that one).
pub(crate) static LOST: [AtomicU64; LOG_MAX] = [const { AtomicU64::new(0) }; LOG_MAX];
/// For each destination: whether a failure of it was already reported on stderr.
static FAILURE_REPORTED: [AtomicBool; LOG_MAX] = [const { AtomicBool::new(false) }; LOG_MAX];

/// In a forked child (see `fork.rs`): its parent's lost records are the parent's to report,
/// and its own first sink failure is reported again.
pub fn after_fork() {
    for slot in 0..LOG_MAX {
        LOST[slot].store(0, Ordering::Relaxed);
        FAILURE_REPORTED[slot].store(false, Ordering::Relaxed);
        // The child is a process of its own: its first record names the build too.
        BUILD_PENDING[slot].store(true, Ordering::Relaxed);
    }
}

/// The build of the program writing records (`mfiguard 0.1.0 (git 1a2b3c4d5e6f)`), set once.
static BUILD: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
/// For each destination: whether the process's first JSON record there, which names the
/// build, is still to be written.
static BUILD_PENDING: [AtomicBool; LOG_MAX] = [const { AtomicBool::new(true) }; LOG_MAX];

/// Names the build of the program whose records these are: the first record the process
/// writes to a file carries it (`"build"`), so that a log says which guard wrote it.
pub fn set_build(name: &'static str) {
    let _ = BUILD.set(name);
}

/// Assembles the bytes one `write` sends: the sink's header, the record in its format (naming
/// who ran the tool when `by` is known, and the build when `build` is given), a newline where
/// the sink wants one. Tries with details, then compact; fails only if even the compact form
/// does not fit (a [`StackBuf`] far too small).
#[allow(clippy::too_many_arguments)] // a record's parts, as emit gathers them
pub(crate) fn render<B: LineBuf>(
    buf: &mut B,
    sink: &dyn Sink,
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
            sink.header(buf, &rec, who, ts)?;
            match (sink.format(), rec) {
                (Format::Json, Record::Call(c, phase)) => {
                    call_json(buf, c, who, by, phase, ts, lost, details, build)?
                }
                (Format::Json, Record::Error(e)) => error_json(buf, e, who, by, ts, lost, build)?,
                (Format::Line, Record::Call(c, phase)) => {
                    call_line(buf, c, who, by, phase, lost, details)?
                }
                (Format::Line, Record::Error(e)) => error_line(buf, e, lost)?,
            }
            if sink.newline() {
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

/// Records a configuration problem (`"record":"error"`, its key, value and message).
pub fn emit_config_error(cfg: &Config, e: &ConfigError) -> Result<bool, c_int> {
    let rec = ErrorRecord {
        key: &e.key,
        value: &e.value,
        message: &e.message,
        exe: &cfg.exe,
    };
    emit(cfg, false, Record::Error(&rec))
}

/// Writes one record to each configured destination.
///
/// `nested`: the call arrived while this thread was already inside the guard (a signal
/// handler). Then nothing here allocates or takes a lock: the record is assembled in a
/// [`StackBuf`] and sent with `open`/`write`/`close` (file, stderr), which are
/// async-signal-safe; syslog and the journal go to stderr instead (once, however many of them
/// are configured), since the outer call may be in the middle of its own datagram and a
/// failure could not be reported from there.
///
/// No sink ever waits for a reader: the file is opened `O_NONBLOCK` and must be a regular file,
/// syslog datagrams are sent `MSG_DONTWAIT`, and stderr is written only when it can take the
/// line within a short grace period (once per stall, see `sys::write_stderr_nowait`).
///
/// `Ok(false)` when the sink is `none`. On failure of a destination the record is counted as
/// lost there and its first failure in the process is reported on stderr; the errno of the
/// first that failed is returned for `MFIGUARD_LOG_REQUIRED` (every destination must take the
/// record). A record file that is refused (`Refusal`: not a regular file, or someone else's)
/// is never written to; its records go to stderr instead, and still count as lost.
#[inline]
pub fn emit(cfg: &Config, nested: bool, rec: Record<'_>) -> Result<bool, c_int> {
    let mut written = false;
    let mut failed: Option<c_int> = None;
    let mut stderr_done = false;
    for (slot, target) in cfg.log.targets().iter().enumerate().take(LOG_MAX) {
        let to_stderr = matches!(target, LogTarget::Stderr)
            || (nested && matches!(target, LogTarget::Syslog | LogTarget::Journal));
        if to_stderr && std::mem::replace(&mut stderr_done, true) {
            continue;
        }
        let result = with_sink(target, nested, |sink| {
            emit_to(cfg, target, slot, nested, sink, rec)
        });
        match result {
            Some(Ok(true)) => written = true,
            Some(Err(e)) => failed = failed.or(Some(e)),
            _ => {}
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

fn emit_to(
    cfg: &Config,
    target: &LogTarget,
    slot: usize,
    nested: bool,
    sink: &dyn Sink,
    rec: Record<'_>,
) -> Result<bool, c_int> {
    let ts = SystemTime::now();
    let who = match rec {
        Record::Call(c, _) => c.caller.unwrap_or_else(Who::now),
        Record::Error(_) => Who::now(),
    };
    let d = Dest {
        cfg,
        target,
        slot,
        nested,
        sink,
    };
    let lost = LOST[slot].load(Ordering::Relaxed);
    if nested {
        // Who ran the tool only if it was read: reading it allocates.
        let by = invoker_if_read();
        let mut buf = StackBuf::<NESTED_BUF>::new();
        deliver(&d, &mut buf, rec, who, by, ts, lost)
    } else {
        let by = match rec {
            Record::Call(c, _) if c.invoker.is_some() => c.invoker,
            _ => Some(invoker()),
        };
        let mut buf = String::with_capacity(1024);
        deliver(&d, &mut buf, rec, who, by, ts, lost)
    }
}

/// One destination a record goes to.
struct Dest<'a> {
    cfg: &'a Config,
    target: &'a LogTarget,
    slot: usize,
    nested: bool,
    sink: &'a dyn Sink,
}

fn deliver<B: LineBuf>(
    d: &Dest<'_>,
    buf: &mut B,
    rec: Record<'_>,
    who: Who,
    by: Option<&Invoker>,
    ts: SystemTime,
    lost: u64,
) -> Result<bool, c_int> {
    let (cfg, nested, sink, slot) = (d.cfg, d.nested, d.sink, d.slot);
    // Syslog on a host with the journal: one native-protocol datagram with structured fields
    // (allocates: never from the nested path, where syslog is stderr).
    let structured = if nested {
        None
    } else {
        sink.send_structured(rec, who, by, lost)
    };
    // The first JSON record of the process names the build (the next one does if this one
    // is lost).
    let build = match (sink.format(), BUILD.get()) {
        (Format::Json, Some(b)) if BUILD_PENDING[slot].swap(false, Ordering::Relaxed) => Some(*b),
        _ => None,
    };
    let result = if let Some(done) = structured {
        done
    } else if render(buf, sink, rec, who, by, ts, lost, build) {
        sink.send(cfg, buf.bytes())
    } else {
        Err(SinkError::Failed(libc::ENOBUFS))
    };
    if result.is_err() && build.is_some() {
        BUILD_PENDING[slot].store(true, Ordering::Relaxed);
    }
    let err = match result {
        Ok(()) => {
            if lost > 0 {
                // Reported in this record: count again from what is still unreported.
                let _ = LOST[slot].compare_exchange(lost, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
            return Ok(true);
        }
        Err(err) => err,
    };
    LOST[slot].fetch_add(1, Ordering::Relaxed);
    let errno = err.errno();
    if !nested {
        log::debug!(
            "audit sink {} failed: {}",
            d.target.describe(),
            Errno(errno)
        );
    }
    let required = if cfg.log_required {
        "; MegaRAID calls fail with EIO (MFIGUARD_LOG_REQUIRED=1)"
    } else {
        ""
    };
    if !FAILURE_REPORTED[slot].swap(true, Ordering::Relaxed) {
        let stderr_failed = sink.is_stderr();
        let sink = SinkName(d.target.describe());
        match err {
            SinkError::Failed(_) => report(
                stderr_failed,
                who.pid,
                format_args!(
                    "cannot write audit records to {sink}: {}; further failures are counted in records_lost{required}",
                    Errno(errno),
                ),
            ),
            SinkError::Refused(why) => report(
                stderr_failed,
                who.pid,
                format_args!(
                    "cannot write audit records to {sink}: {why}; its records go to stderr instead and are counted in records_lost{required}",
                ),
            ),
        }
    }
    if let SinkError::Refused(_) = err {
        // The evidence is kept where the tool's output goes, never in the refused file.
        if render(buf, &Stderr, rec, who, by, ts, lost, None) {
            let _ = sys::write_stderr_nowait(buf.bytes());
        }
    }
    Err(errno)
}
