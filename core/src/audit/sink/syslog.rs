//! The syslog sink: one readable line a datagram to `/dev/log`, sent without ever waiting
//! (`MSG_DONTWAIT`), facility `authpriv`, tag `mfiguard` and the pid (what
//! `openlog("mfiguard", LOG_PID, LOG_AUTHPRIV)` would produce). Where systemd-journald runs,
//! each record goes to the journal first, with structured fields (`journal.rs`).

use std::fmt;
use std::time::SystemTime;

use mfiguard_sanitizer::Decision;

use super::journal;
use super::{Sink, SinkError};
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

    fn send_structured(&self, rec: Record<'_>, who: Who, by: Option<&Invoker>, lost: u64) -> bool {
        journal::send(rec, who, by, lost)
    }

    fn send(&self, _cfg: &Config, bytes: &[u8]) -> Result<(), SinkError> {
        // Never waits: a syslog daemon that stopped reading costs a lost record.
        Ok(sys::send_datagram_nowait(SYSLOG_SOCKET_C, bytes)?)
    }
}
