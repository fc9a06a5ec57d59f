//! Records as JSON objects, one a line (the file sink).

use std::fmt::{self, Display, Write as _};
use std::time::SystemTime;

use mfiguard_sanitizer::abi::ioctl::request_name;
use mfiguard_sanitizer::abi::mfi::CmdDisplay;
use mfiguard_sanitizer::abi::names::{dcmd_opcode_name, mfi_status_name};
use mfiguard_sanitizer::{Errno, Verdict};

use super::invoker::Invoker;
use super::record::{CallRecord, ErrorRecord, Phase, Who, SCHEMA_VERSION};
use super::text::{hex16, hex32};
use super::time::Rfc3339;

/// A fmt adapter that escapes what passes through it for a JSON string.
struct Escape<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escape<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let esc: Option<&str> = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => None,
                _ => continue,
            };
            self.0.write_str(s.get(start..i).unwrap_or_default())?;
            match esc {
                Some(e) => self.0.write_str(e)?,
                None => write!(self.0, "\\u{:04x}", c as u32)?,
            }
            start = i.saturating_add(c.len_utf8());
        }
        self.0.write_str(s.get(start..).unwrap_or_default())
    }
}

/// Writes `value` as a JSON string.
pub(crate) fn json_string<W: fmt::Write>(w: &mut W, value: impl Display) -> fmt::Result {
    w.write_char('"')?;
    write!(Escape(w), "{value}")?;
    w.write_char('"')
}

/// A JSON object being written, member by member.
struct Obj<'w, W: fmt::Write> {
    w: &'w mut W,
    first: bool,
}

impl<'w, W: fmt::Write> Obj<'w, W> {
    fn open(w: &'w mut W) -> Result<Self, fmt::Error> {
        w.write_char('{')?;
        Ok(Obj { w, first: true })
    }

    /// Starts a member; keys are fixed identifiers that need no escaping.
    fn key(&mut self, key: &str) -> fmt::Result {
        if !self.first {
            self.w.write_char(',')?;
        }
        self.first = false;
        write!(self.w, "\"{key}\":")
    }

    fn str(&mut self, key: &str, value: impl Display) -> fmt::Result {
        self.key(key)?;
        json_string(self.w, value)
    }

    fn opt_str(&mut self, key: &str, value: Option<impl Display>) -> fmt::Result {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    fn num(&mut self, key: &str, value: impl Display) -> fmt::Result {
        self.key(key)?;
        write!(self.w, "{value}")
    }

    fn opt_num(&mut self, key: &str, value: Option<impl Display>) -> fmt::Result {
        match value {
            Some(v) => self.num(key, v),
            None => self.null(key),
        }
    }

    fn bool(&mut self, key: &str, value: bool) -> fmt::Result {
        self.key(key)?;
        self.w.write_str(if value { "true" } else { "false" })
    }

    fn null(&mut self, key: &str) -> fmt::Result {
        self.key(key)?;
        self.w.write_str("null")
    }

    fn close(self) -> fmt::Result {
        self.w.write_char('}')
    }
}

fn findings_json<W: fmt::Write>(w: &mut W, c: &CallRecord<'_>, details: bool) -> fmt::Result {
    w.write_char('[')?;
    let mut first = true;
    let mut sep = |w: &mut W| -> fmt::Result {
        if !first {
            w.write_char(',')?;
        }
        first = false;
        Ok(())
    };
    if let Some(issue) = c.issue {
        sep(w)?;
        let mut o = Obj::open(w)?;
        o.str("rule", issue.rule())?;
        o.str("action", issue.action())?;
        o.bool("downgraded", false)?;
        if details {
            o.str("detail", issue)?;
        }
        o.close()?;
    }
    for f in c.verdict.into_iter().flat_map(Verdict::findings) {
        sep(w)?;
        let mut o = Obj::open(w)?;
        o.str("rule", f.rule.name())?;
        o.str("action", f.action.name())?;
        o.bool("downgraded", f.downgraded)?;
        if details {
            o.str("detail", f.detail)?;
        }
        o.close()?;
    }
    w.write_char(']')
}

/// What one mode would have done: `{"verdict":..,"findings":[{"rule":..,"action":..}]}` (the
/// details are the top-level findings').
fn preview_json<W: fmt::Write>(w: &mut W, v: &Verdict) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.str("verdict", v.decision().name())?;
    o.key("findings")?;
    o.w.write_char('[')?;
    for (i, f) in v.findings().enumerate() {
        if i > 0 {
            o.w.write_char(',')?;
        }
        let mut fo = Obj::open(o.w)?;
        fo.str("rule", f.rule.name())?;
        fo.str("action", f.action.name())?;
        fo.close()?;
    }
    o.w.write_char(']')?;
    o.close()
}

/// Writes a call record as one JSON object (no newline), naming who ran the tool after `uid`
/// when `by` is known, and the build when `build` is given. Without `details`, findings carry
/// only their rule and action and `argv` is left out (the compact form used when a
/// signal-context buffer is too small).
#[allow(clippy::too_many_arguments)] // the record's parts, as emit gathers them
pub(crate) fn call_json<W: fmt::Write>(
    w: &mut W,
    c: &CallRecord<'_>,
    who: Who,
    by: Option<&Invoker>,
    phase: Phase,
    ts: SystemTime,
    lost: u64,
    details: bool,
    build: Option<&str>,
) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.str("record", phase.name())?;
    o.num("schema_version", SCHEMA_VERSION)?;
    o.num("seq", c.seq)?;
    o.str("ts", Rfc3339(ts))?;
    o.str("host", crate::sys::NodeName::now().as_str())?;
    o.num("pid", who.pid)?;
    o.str("exe", c.exe)?;
    o.num("uid", who.uid)?;
    if let Some(by) = by {
        invoker(&mut o, by, details)?;
    }
    if let Some(b) = build {
        o.str("build", b)?;
    }
    o.str("guard", c.guard.name())?;
    o.str("mode", c.mode.name())?;
    if let Some(m) = c.preview_of {
        o.str("preview_of", m.name())?;
    }
    o.str("request", request_name(c.request).unwrap_or("unknown"))?;
    o.str("request_code", hex32(c.request))?;
    o.str("abi", c.abi.name())?;
    o.opt_num("host_no", c.host_no)?;
    let p = c.packet;
    o.opt_str("cmd", p.map(|p| CmdDisplay(p.cmd)))?;
    let opcode = p.and_then(|p| p.opcode);
    o.opt_str("opcode", opcode.map(hex32))?;
    o.opt_str("opcode_name", opcode.and_then(dcmd_opcode_name))?;
    o.opt_num("target_id", p.map(|p| p.target_id))?;
    o.opt_str("flags", p.map(|p| hex16(p.flags)))?;
    o.opt_str("flags_sent", p.map(|p| hex16(p.flags_sent)))?;
    o.opt_num("sgl_off", p.map(|p| p.sgl_off))?;
    o.opt_num("sge_count", p.map(|p| p.sge_count))?;
    o.opt_num("sge_bytes", p.map(|p| p.sge_bytes))?;
    o.opt_num("sense_off", p.map(|p| p.sense_off))?;
    o.opt_num("sense_len", p.map(|p| p.sense_len))?;
    o.opt_num("data_xferlen", p.map(|p| p.data_xferlen))?;
    o.str("verdict", c.decision.name())?;
    o.bool("enforced", c.enforced)?;
    o.key("findings")?;
    findings_json(o.w, c, details)?;
    if let (Some(enforce), Some(readonly)) = (c.verdict, c.readonly_preview) {
        o.key("would")?;
        let mut would = Obj::open(o.w)?;
        for (mode, v) in [("enforce", enforce), ("readonly", readonly)] {
            would.key(mode)?;
            preview_json(would.w, v)?;
        }
        would.close()?;
    }
    let out = if phase.answered() { c.outcome } else { None };
    o.opt_num("ret", out.map(|r| r.ret))?;
    o.opt_num("errno", out.map(|r| r.errno))?;
    o.opt_str(
        "errno_name",
        out.filter(|r| r.errno != 0).map(|r| Errno(r.errno)),
    )?;
    let status = out.and_then(|r| r.cmd_status);
    o.opt_num("cmd_status", status)?;
    o.opt_str(
        "cmd_status_name",
        status.map(|s| mfi_status_name(s).unwrap_or("UNKNOWN")),
    )?;
    o.opt_num("latency_us", out.and_then(|r| r.latency_us))?;
    if c.nested {
        o.bool("nested", true)?;
    }
    if lost > 0 {
        o.num("records_lost", lost)?;
    }
    o.close()
}

/// Writes a configuration error as one JSON object (no newline), naming who ran the tool
/// after `uid` when `by` is known, and the build when `build` is given.
pub(crate) fn error_json<W: fmt::Write>(
    w: &mut W,
    e: &ErrorRecord<'_>,
    who: Who,
    by: Option<&Invoker>,
    ts: SystemTime,
    lost: u64,
    build: Option<&str>,
) -> fmt::Result {
    let mut o = Obj::open(w)?;
    o.str("record", "error")?;
    o.num("schema_version", SCHEMA_VERSION)?;
    o.str("ts", Rfc3339(ts))?;
    o.str("host", crate::sys::NodeName::now().as_str())?;
    o.num("pid", who.pid)?;
    o.str("exe", e.exe)?;
    o.num("uid", who.uid)?;
    if let Some(by) = by {
        invoker(&mut o, by, true)?;
    }
    if let Some(b) = build {
        o.str("build", b)?;
    }
    o.str("key", e.key)?;
    o.str("value", e.value)?;
    o.str("message", e.message)?;
    if lost > 0 {
        o.num("records_lost", lost)?;
    }
    o.close()
}

/// Writes the members after `uid` (what is known; `argv` only with `details`, so that the
/// compact form of a nested record stays as small as it was).
fn invoker<W: fmt::Write>(o: &mut Obj<'_, W>, by: &Invoker, details: bool) -> fmt::Result {
    if let Some(u) = &by.sudo_user {
        o.str("sudo_user", u)?;
    }
    if let Some(u) = by.sudo_uid {
        o.num("sudo_uid", u)?;
    }
    if let Some(u) = by.login_uid {
        o.num("login_uid", u)?;
    }
    if details {
        o.key("argv")?;
        o.w.write_char('[')?;
        for (i, a) in by.argv.iter().enumerate() {
            if i > 0 {
                o.w.write_char(',')?;
            }
            json_string(o.w, a)?;
        }
        o.w.write_char(']')?;
        if by.argv_truncated {
            o.bool("argv_truncated", true)?;
        }
    }
    Ok(())
}
