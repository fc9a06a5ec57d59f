//! The stderr sink: one readable line a record, with one `write`, only when stderr can take it
//! within a short grace period (see `sys::write_stderr_nowait`).

use std::fmt;
use std::time::SystemTime;

use super::{Sink, SinkError};
use crate::audit::record::{Record, Who};
use crate::config::Config;
use crate::sys;

/// The process's stderr.
pub(crate) struct Stderr;

impl Sink for Stderr {
    fn header(
        &self,
        w: &mut dyn fmt::Write,
        _rec: &Record<'_>,
        who: Who,
        _ts: SystemTime,
    ) -> fmt::Result {
        write!(w, "mfiguard[{}]: ", who.pid)
    }

    fn send(&self, _cfg: &Config, bytes: &[u8]) -> Result<(), SinkError> {
        Ok(sys::write_stderr_nowait(bytes)?)
    }

    fn is_stderr(&self) -> bool {
        true
    }
}
