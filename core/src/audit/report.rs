//! One-line reports on stderr of what a sink could not record.

use std::fmt::{self, Display, Write as _};

use super::buffers::{LineBuf, StackBuf};
use super::sink::with_sink;
use crate::config::Config;
use crate::sys;

/// Reports, on stderr, a problem that the sink could not record (a call failed closed under
/// `MFIGUARD_LOG_REQUIRED=1`); nothing when stderr is itself the sink that failed. One line,
/// assembled on the stack, one `write`.
pub fn report_elsewhere(cfg: &Config, nested: bool, pid: u32, message: fmt::Arguments<'_>) {
    let targets = cfg.log.targets();
    let stderr_only = !targets.is_empty()
        && targets
            .iter()
            .all(|t| with_sink(t, nested, |sink| sink.is_stderr()).unwrap_or(false));
    report(stderr_only, pid, message);
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

/// Writes `message` on stderr as one line, unless stderr is the sink that failed.
pub(crate) fn report(stderr_failed: bool, pid: u32, message: fmt::Arguments<'_>) {
    if stderr_failed {
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
