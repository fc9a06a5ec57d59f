//! Delivery: a record rendered for its sink and sent, failures counted and reported once.

use std::ffi::c_int;
use std::fmt::{self, Display, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use mfiguard_sanitizer::Errno;

use super::buffers::{LineBuf, StackBuf, NESTED_BUF};
use super::invoker::{invoker, invoker_if_read, Invoker};
use super::json::{call_json_by, error_json_by};
use super::line::{call_line_by, error_line};
use super::record::{Record, Who};
use super::sink::journal::{journal_entry, JOURNAL_SOCKET, JOURNAL_SOCKET_C};
use super::sink::syslog::{severity, LOG_AUTHPRIV};
use super::sink::{send, target, SinkError, Target};
use super::time::Rfc3164;
use crate::config::Config;
use crate::sys;

/// Records that could not be written since the last one that was (reported in that one).
pub(crate) static LOST: AtomicU64 = AtomicU64::new(0);
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

/// The build of the program writing records (`mfiguard 0.1.0 (git 1a2b3c4d5e6f)`), set once.
static BUILD: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
/// Whether the process's first JSON record, which names the build, is still to be written.
static BUILD_PENDING: AtomicBool = AtomicBool::new(true);

/// Names the build of the program whose records these are: the first record the process
/// writes to a file carries it (`"build"`), so that a log says which guard wrote it.
pub fn set_build(name: &'static str) {
    let _ = BUILD.set(name);
}

/// Assembles the bytes one `write` sends: the header for the target, the record, a newline
/// (not for syslog datagrams). Tries with details, then compact; fails only if even the compact
/// form does not fit (a [`StackBuf`] far too small).
#[cfg(test)]
pub(crate) fn render<B: LineBuf>(
    buf: &mut B,
    t: Target<'_>,
    rec: Record<'_>,
    who: Who,
    ts: SystemTime,
    lost: u64,
) -> bool {
    render_by(buf, t, rec, who, None, ts, lost, None)
}

/// [`render`], naming who ran the tool when `by` is known.
#[allow(clippy::too_many_arguments)] // a record's parts, as emit gathers them
pub(crate) fn render_by<B: LineBuf>(
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
                    LOG_AUTHPRIV | severity(&rec),
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
        log::debug!("audit sink {} failed: {}", cfg.log.describe(), Errno(errno));
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
                    Errno(errno),
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
pub(crate) struct CutLine<const N: usize> {
    pub(crate) buf: StackBuf<N>,
    pub(crate) cut: bool,
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
