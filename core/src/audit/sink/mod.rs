//! Where records go: one [`Sink`] a destination, each in its own file, and one mapping from the
//! configuration to them ([`with_sink`]). A new destination is a file here, its line in
//! `with_sink`, and its word in the configuration (`LogTarget`). A configuration may name
//! several destinations (`log = journal, /var/log/mfiguard/audit.jsonl`): each record goes to
//! each, by itself.

pub(crate) mod file;
pub(crate) mod journal;
pub(crate) mod stderr;
pub(crate) mod syslog;

use std::ffi::c_int;
use std::fmt;
use std::time::SystemTime;

use mfiguard_sanitizer::Decision;

use self::file::Refusal;
use super::invoker::Invoker;
use super::record::{Record, Who};
use crate::config::{Config, LogTarget};

/// What a sink writes for a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// One JSON object (`audit/json.rs`).
    Json,
    /// One readable line (`audit/line.rs`).
    Line,
}

/// A destination of records. Everything a sink does from a signal handler (see `emit`) must
/// be async-signal-safe and allocation-free; what is not (the journal) is left out there.
pub(crate) trait Sink {
    /// How records are written for it.
    fn format(&self) -> Format {
        Format::Line
    }

    /// What precedes each record (syslog's header).
    fn header(
        &self,
        _w: &mut dyn fmt::Write,
        _rec: &Record<'_>,
        _who: Who,
        _ts: SystemTime,
    ) -> fmt::Result {
        Ok(())
    }

    /// Whether a record ends with a newline (not in a datagram).
    fn newline(&self) -> bool {
        true
    }

    /// A structured form of the record, tried before the assembled bytes where the sink has
    /// one (the journal): `Some` with how it went when that form was used, `None` to send the
    /// assembled bytes instead. Never from a signal handler.
    fn send_structured(
        &self,
        _rec: Record<'_>,
        _who: Who,
        _by: Option<&Invoker>,
        _lost: u64,
    ) -> Option<Result<(), SinkError>> {
        None
    }

    /// Sends one assembled record, without ever waiting for a reader.
    fn send(&self, cfg: &Config, bytes: &[u8]) -> Result<(), SinkError>;

    /// Whether this is stderr, where a sink failure cannot be reported.
    fn is_stderr(&self) -> bool {
        false
    }
}

/// The one mapping from a configured destination to a sink; `None` for `none` (and for
/// `Several`, whose destinations are mapped one by one). From a signal handler (`nested`)
/// syslog and the journal are replaced by stderr: the interrupted call may be in the middle of
/// its own datagram, the journal's entry is assembled on the heap, and a failure could not be
/// reported from there.
#[inline]
pub(crate) fn with_sink<R>(
    target: &LogTarget,
    nested: bool,
    f: impl FnOnce(&dyn Sink) -> R,
) -> Option<R> {
    match target {
        LogTarget::None | LogTarget::Several(_) => None,
        LogTarget::File(path) => Some(f(&file::File(path))),
        LogTarget::Syslog | LogTarget::Journal if nested => Some(f(&stderr::Stderr)),
        LogTarget::Syslog => Some(f(&syslog::Syslog)),
        LogTarget::Journal => Some(f(&journal::Journal)),
        LogTarget::Stderr => Some(f(&stderr::Stderr)),
    }
}

/// How a sink failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SinkError {
    /// A system call failed with this errno.
    Failed(c_int),
    /// The file sink refused its path.
    Refused(Refusal),
}

impl SinkError {
    pub(crate) const fn errno(self) -> c_int {
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

/// The syslog priority a record carries, on the syslog line and in the journal alike.
///
/// `LOG_AUTHPRIV`: records name users and executables and are about refused privileged
/// operations; authpriv logs are readable by root only and watched by security tooling.
pub(crate) const LOG_AUTHPRIV: u8 = 10 << 3;
pub(crate) const LOG_WARNING: u8 = 4;
pub(crate) const LOG_NOTICE: u8 = 5;
pub(crate) const LOG_INFO: u8 = 6;

/// A record's syslog severity: warning for rejections and errors, notice for rewrites, info
/// otherwise.
pub(crate) fn severity(rec: &Record<'_>) -> u8 {
    match rec {
        Record::Call(c, _) => match c.decision {
            Decision::Reject(_) => LOG_WARNING,
            Decision::Rewrite => LOG_NOTICE,
            Decision::Pass => LOG_INFO,
        },
        Record::Error(_) => LOG_WARNING,
    }
}
