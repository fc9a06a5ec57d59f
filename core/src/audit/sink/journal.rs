//! The journal: systemd-journald's native protocol, preferred by the syslog sink where it runs.

use std::fmt::{Display, Write as _};

use mfiguard_sanitizer::abi::ioctl::request_name;
use mfiguard_sanitizer::abi::mfi::CmdDisplay;
use mfiguard_sanitizer::abi::names::{dcmd_opcode_name, mfi_status_name};
use mfiguard_sanitizer::{Errno, Verdict};

use std::ffi::c_int;

use super::{severity, Sink, SinkError, LOG_AUTHPRIV};
use crate::audit::invoker::Invoker;
use crate::audit::line::{call_line, error_line};
use crate::audit::record::{Record, Who};
use crate::audit::text::{hex16, hex32};
use crate::config::Config;
use crate::sys;

/// Where systemd-journald takes records in its native protocol.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// The journal's socket, for the system call.
const JOURNAL_SOCKET_C: &std::ffi::CStr = c"/run/systemd/journal/socket";
const _: () = assert!(JOURNAL_SOCKET_C.to_bytes().len() == JOURNAL_SOCKET.len());

/// One field of the journal's native protocol, in its binary-safe form (`KEY`, a newline, the
/// value's length as a little-endian u64, the value, a newline), so that no value (a path with
/// a newline in it) can end a field early or add one.
fn journal_field(out: &mut Vec<u8>, key: &str, value: impl Display) {
    let mut v = String::new();
    let _ = write!(v, "{value}");
    out.extend_from_slice(key.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    out.extend_from_slice(v.as_bytes());
    out.push(b'\n');
}

/// A record as one journal entry (systemd's native protocol): the readable line as `MESSAGE`,
/// `PRIORITY`, `SYSLOG_FACILITY` (10, authpriv), `SYSLOG_IDENTIFIER=mfiguard`, `SYSLOG_PID`,
/// and the record's own fields: `MFIGUARD_RECORD` (decision, outcome, error), `MFIGUARD_SEQ`,
/// `MFIGUARD_MODE`, `MFIGUARD_VERDICT`, `MFIGUARD_RULE` (one per finding), `MFIGUARD_REQUEST`,
/// `MFIGUARD_CMD`, `MFIGUARD_OPCODE`, `MFIGUARD_OPCODE_NAME`, `MFIGUARD_TARGET_ID`,
/// `MFIGUARD_FLAGS`, `MFIGUARD_FLAGS_SENT`, `MFIGUARD_RET`, `MFIGUARD_ERRNO`,
/// `MFIGUARD_CMD_STATUS`, `MFIGUARD_EXE`, `MFIGUARD_UID`, who ran it (`MFIGUARD_SUDO_USER`,
/// `MFIGUARD_SUDO_UID`, `MFIGUARD_LOGIN_UID`), `MFIGUARD_RECORDS_LOST`; for an error record
/// `MFIGUARD_KEY` and `MFIGUARD_VALUE`. Allocates: not for the nested path.
pub fn journal_entry(rec: Record<'_>, who: Who, by: Option<&Invoker>, lost: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let mut message = String::with_capacity(512);
    let _ = match rec {
        Record::Call(c, phase) => call_line(&mut message, c, who, by, phase, lost, true),
        Record::Error(e) => error_line(&mut message, e, lost),
    };
    let f = &mut out;
    journal_field(f, "MESSAGE", &message);
    journal_field(f, "PRIORITY", severity(&rec));
    journal_field(f, "SYSLOG_FACILITY", LOG_AUTHPRIV >> 3);
    journal_field(f, "SYSLOG_IDENTIFIER", "mfiguard");
    journal_field(f, "SYSLOG_PID", who.pid);
    match rec {
        Record::Call(c, phase) => {
            journal_field(f, "MFIGUARD_RECORD", phase.name());
            journal_field(f, "MFIGUARD_SEQ", c.seq);
            journal_field(f, "MFIGUARD_MODE", c.mode.name());
            if let Some(m) = c.preview_of {
                journal_field(f, "MFIGUARD_PREVIEW_OF", m.name());
            }
            journal_field(f, "MFIGUARD_VERDICT", c.decision.name());
            if let (Some(enforce), Some(readonly)) = (c.verdict, c.readonly_preview) {
                journal_field(f, "MFIGUARD_WOULD_ENFORCE", enforce.decision().name());
                journal_field(f, "MFIGUARD_WOULD_READONLY", readonly.decision().name());
                for r in readonly
                    .findings()
                    .filter(|x| x.action == mfiguard_sanitizer::Action::Reject)
                {
                    journal_field(f, "MFIGUARD_WOULD_READONLY_RULE", r.rule.name());
                }
            }
            if let Some(issue) = c.issue {
                journal_field(f, "MFIGUARD_RULE", issue.rule());
            }
            for finding in c.verdict.into_iter().flat_map(Verdict::findings) {
                journal_field(f, "MFIGUARD_RULE", finding.rule.name());
            }
            journal_field(
                f,
                "MFIGUARD_REQUEST",
                request_name(c.request).unwrap_or("unknown"),
            );
            if let Some(p) = c.packet {
                journal_field(f, "MFIGUARD_CMD", CmdDisplay(p.cmd));
                if let Some(op) = p.opcode {
                    journal_field(f, "MFIGUARD_OPCODE", hex32(op));
                    if let Some(name) = dcmd_opcode_name(op) {
                        journal_field(f, "MFIGUARD_OPCODE_NAME", name);
                    }
                }
                journal_field(f, "MFIGUARD_TARGET_ID", p.target_id);
                journal_field(f, "MFIGUARD_FLAGS", hex16(p.flags));
                journal_field(f, "MFIGUARD_FLAGS_SENT", hex16(p.flags_sent));
            }
            if let (true, Some(r)) = (phase.answered(), c.outcome) {
                journal_field(f, "MFIGUARD_RET", r.ret);
                if r.errno != 0 {
                    journal_field(f, "MFIGUARD_ERRNO", Errno(r.errno));
                }
                if let Some(s) = r.cmd_status {
                    journal_field(
                        f,
                        "MFIGUARD_CMD_STATUS",
                        mfi_status_name(s).unwrap_or("UNKNOWN"),
                    );
                }
            }
            journal_field(f, "MFIGUARD_EXE", c.exe);
        }
        Record::Error(e) => {
            journal_field(f, "MFIGUARD_RECORD", "error");
            journal_field(f, "MFIGUARD_KEY", e.key);
            journal_field(f, "MFIGUARD_VALUE", e.value);
            journal_field(f, "MFIGUARD_EXE", e.exe);
        }
    }
    journal_field(f, "MFIGUARD_UID", who.uid);
    if let Some(by) = by {
        if let Some(u) = &by.sudo_user {
            journal_field(f, "MFIGUARD_SUDO_USER", u);
        }
        if let Some(u) = by.sudo_uid {
            journal_field(f, "MFIGUARD_SUDO_UID", u);
        }
        if let Some(u) = by.login_uid {
            journal_field(f, "MFIGUARD_LOGIN_UID", u);
        }
    }
    if lost > 0 {
        journal_field(f, "MFIGUARD_RECORDS_LOST", lost);
    }
    out
}

/// Sends the record to the journal (allocates: not from a signal handler); the errno when the
/// journal did not take it (`ENOENT`: no journald here).
pub(crate) fn send(
    rec: Record<'_>,
    who: Who,
    by: Option<&Invoker>,
    lost: u64,
) -> Result<(), c_int> {
    if !std::path::Path::new(JOURNAL_SOCKET).exists() {
        return Err(libc::ENOENT);
    }
    let entry = journal_entry(rec, who, by, lost);
    sys::send_datagram_nowait(JOURNAL_SOCKET_C, &entry)
}

/// The journal alone (`log = journal`): each record one entry with structured fields; no
/// fallback to `/dev/log` (that is `syslog`). From a signal handler its records go to stderr,
/// as syslog's do.
pub(crate) struct Journal;

impl Sink for Journal {
    fn send_structured(
        &self,
        rec: Record<'_>,
        who: Who,
        by: Option<&Invoker>,
        lost: u64,
    ) -> Option<Result<(), SinkError>> {
        Some(send(rec, who, by, lost).map_err(SinkError::Failed))
    }

    fn send(&self, _cfg: &Config, _bytes: &[u8]) -> Result<(), SinkError> {
        // Only reached without the structured form, which the journal always has.
        Err(SinkError::Failed(libc::ENOSYS))
    }
}
