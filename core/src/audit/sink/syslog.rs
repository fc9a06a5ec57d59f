//! The syslog sink: one readable line a datagram to `/dev/log`.

use mfiguard_sanitizer::Decision;

use crate::audit::record::Record;

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
