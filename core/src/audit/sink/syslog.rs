//! The syslog sink: one readable line a datagram to `/dev/log`, sent without ever waiting
//! (`MSG_DONTWAIT`), facility `authpriv`, tag `mfiguard` and the pid (what
//! `openlog("mfiguard", LOG_PID, LOG_AUTHPRIV)` would produce). Where systemd-journald runs,
//! each record goes to the journal first, with structured fields (`journal.rs`).

use std::fmt;
use std::time::SystemTime;

use super::journal;
use super::{severity, Sink, SinkError, LOG_AUTHPRIV};
use crate::audit::invoker::Invoker;
use crate::audit::record::{Record, Who};
use crate::audit::time::Rfc3164;
use crate::config::Config;
use crate::sys;

/// Where the local syslog daemon listens.
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// `/dev/log`, for the system call.
pub(crate) const SYSLOG_SOCKET_C: &std::ffi::CStr = c"/dev/log";
const _: () = assert!(SYSLOG_SOCKET_C.to_bytes().len() == SYSLOG_SOCKET.len());
/// The local syslog daemon.
pub(crate) struct Syslog;

impl Sink for Syslog {
    fn header(
        &self,
        w: &mut dyn fmt::Write,
        rec: &Record<'_>,
        who: Who,
        ts: SystemTime,
    ) -> fmt::Result {
        write!(
            w,
            "<{}>{} mfiguard[{}]: ",
            LOG_AUTHPRIV | severity(rec),
            Rfc3164(ts),
            who.pid
        )
    }

    fn newline(&self) -> bool {
        false
    }

    fn send_structured(
        &self,
        rec: Record<'_>,
        who: Who,
        by: Option<&Invoker>,
        lost: u64,
    ) -> Option<Result<(), SinkError>> {
        // The journal where it takes the record; else the datagram to /dev/log.
        journal::send(rec, who, by, lost).ok().map(Ok)
    }

    fn send(&self, _cfg: &Config, bytes: &[u8]) -> Result<(), SinkError> {
        // Never waits: a syslog daemon that stopped reading costs a lost record.
        Ok(sys::send_datagram_nowait(SYSLOG_SOCKET_C, bytes)?)
    }
}
