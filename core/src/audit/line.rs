//! Records as readable lines (syslog, stderr, the journal's MESSAGE).

use std::fmt;

use mfiguard_sanitizer::abi::ioctl::request_name;
use mfiguard_sanitizer::abi::mfi::CmdDisplay;
use mfiguard_sanitizer::abi::names::{dcmd_opcode_name, mfi_status_name};
use mfiguard_sanitizer::{Decision, Errno, Verdict};

use super::invoker::Invoker;
use super::record::{CallRecord, ErrorRecord, Phase, Who};
use super::text::Escaped;

/// Writes a call record as one readable line (no newline), for syslog and stderr, adding
/// `sudo_user`, `sudo_uid` and `login_uid` after `uid` when `by` knows them (the line already
/// names the `exe`; `argv` is in the JSON records).
pub(crate) fn call_line<W: fmt::Write>(
    w: &mut W,
    c: &CallRecord<'_>,
    who: Who,
    by: Option<&Invoker>,
    phase: Phase,
    lost: u64,
    details: bool,
) -> fmt::Result {
    write!(w, "#{} {} {}", c.seq, phase.name(), c.decision.name())?;
    if let Decision::Reject(errno) = c.decision {
        write!(w, " {}", errno)?;
    }
    if !c.enforced {
        w.write_str(" (not enforced)")?;
    }
    if let Some(m) = c.preview_of {
        write!(w, " (preview of {})", m.name())?;
    }
    write!(w, " {}", request_name(c.request).unwrap_or("unknown"))?;
    if let Some(p) = c.packet {
        write!(w, " {}", CmdDisplay(p.cmd))?;
        if let Some(op) = p.opcode {
            match dcmd_opcode_name(op) {
                Some(name) => write!(w, " {name}")?,
                None => write!(w, " opcode {op:#010x}")?,
            }
        }
        write!(
            w,
            " host {} target {} flags {:#06x}",
            p.host_no, p.target_id, p.flags
        )?;
        if p.flags_sent != p.flags {
            write!(w, "->{:#06x}", p.flags_sent)?;
        }
        write!(
            w,
            " sgl_off {:#x} sge_count {} sge_bytes {} sense {:#x}/{} xferlen {}",
            p.sgl_off, p.sge_count, p.sge_bytes, p.sense_off, p.sense_len, p.data_xferlen
        )?;
    } else if let Some(host) = c.host_no {
        write!(w, " host {host}")?;
    }
    if let Some(issue) = c.issue {
        write!(w, "; {} {}", issue.rule(), issue.action())?;
        if details {
            write!(w, ": {issue}")?;
        }
    }
    for f in c.verdict.into_iter().flat_map(Verdict::findings) {
        write!(w, "; {} {}", f.rule.name(), f.action.name())?;
        if f.downgraded {
            w.write_str(" (allowed)")?;
        }
        if details {
            write!(w, ": {}", f.detail)?;
        }
    }
    if let (Some(enforce), Some(readonly)) = (c.verdict, c.readonly_preview) {
        write!(w, "; would: enforce {}", enforce.decision().name())?;
        write!(w, ", readonly {}", readonly.decision().name())?;
        for f in readonly.findings().filter(|f| f.rule.is_readonly()) {
            write!(w, " {}", f.rule.name())?;
        }
    }
    if let (true, Some(r)) = (phase.answered(), c.outcome) {
        write!(w, "; ret {}", r.ret)?;
        if r.errno != 0 {
            write!(w, " {}", Errno(r.errno))?;
        }
        if let Some(s) = r.cmd_status {
            write!(
                w,
                " cmd_status {s:#04x} {}",
                mfi_status_name(s).unwrap_or("UNKNOWN")
            )?;
        }
        if let Some(us) = r.latency_us {
            write!(w, " {us}us")?;
        }
    }
    write!(w, "; exe {} uid {}", Escaped(c.exe), who.uid)?;
    if let Some(by) = by {
        invoker(w, by)?;
    }
    if c.nested {
        w.write_str(" (in a signal handler)")?;
    }
    if lost > 0 {
        write!(w, " ({lost} records lost)")?;
    }
    Ok(())
}

/// Writes a configuration error as one readable line (no newline).
pub(crate) fn error_line<W: fmt::Write>(w: &mut W, e: &ErrorRecord<'_>, lost: u64) -> fmt::Result {
    write!(
        w,
        "configuration: {}={:?}: {}",
        Escaped(e.key),
        e.value,
        Escaped(e.message)
    )?;
    if lost > 0 {
        write!(w, " ({lost} records lost)")?;
    }
    Ok(())
}

/// The readable line's part: only what sudo or the login uid add to `uid`.
fn invoker<W: fmt::Write>(w: &mut W, by: &Invoker) -> fmt::Result {
    if let Some(u) = &by.sudo_user {
        write!(w, " sudo_user {}", Escaped(u))?;
    }
    if let Some(u) = by.sudo_uid {
        write!(w, " sudo_uid {u}")?;
    }
    if let Some(u) = by.login_uid {
        write!(w, " login_uid {u}")?;
    }
    Ok(())
}
