//! Where records go.

pub(super) mod file;
pub(super) mod journal;
pub(super) mod syslog;

use std::ffi::c_int;
use std::os::fd::AsFd;

use self::file::{open_log, Refusal};
use self::syslog::SYSLOG_SOCKET_C;
use crate::config::{Config, LogTarget};
use crate::sys;

/// Where a record actually goes: syslog from a signal handler goes to stderr instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    File(&'a std::ffi::CStr),
    Syslog,
    Stderr,
}

pub(crate) fn target(cfg: &Config, nested: bool) -> Option<Target<'_>> {
    match &cfg.log {
        LogTarget::None => None,
        LogTarget::File(path) => Some(Target::File(path)),
        LogTarget::Syslog if nested => Some(Target::Stderr),
        LogTarget::Syslog => Some(Target::Syslog),
        LogTarget::Stderr => Some(Target::Stderr),
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

pub(crate) fn send(cfg: &Config, t: Target<'_>, bytes: &[u8]) -> Result<(), SinkError> {
    match t {
        Target::File(path) => {
            let fd = open_log(path)?;
            sys::write_once(std::os::fd::AsRawFd::as_raw_fd(&fd), bytes)?;
            if cfg.log_sync {
                sys::fdatasync(fd.as_fd())?;
            }
            Ok(())
        }
        Target::Stderr => Ok(sys::write_stderr_nowait(bytes)?),
        // Never waits: a syslog daemon that stopped reading costs a lost record.
        Target::Syslog => Ok(sys::send_datagram_nowait(SYSLOG_SOCKET_C, bytes)?),
    }
}
