//! Reading the guard's records back: the one reader and counter behind `mfiguard-run --report`,
//! the collector (`--collect`: Prometheus metrics and the status file) and the Nagios plugin.
//!
//! A call is counted once, by its `outcome` record (doc/audit-log.md: every call has exactly
//! one; audit mode and calls that reach the kernel add a `decision` record, and a caller that
//! could not take its answer an `undelivered` one, which are not counted). A refusal is an
//! outcome whose verdict is `reject`: refused in enforce and readonly, "would be refused" in
//! audit mode (`"enforced": false`). An audit-mode outcome also says what read-only mode would
//! have done (`would.readonly`): those it would refuse are counted apart, so that a week of
//! audit records is the list of what read-only would refuse. Records are read as JSON objects
//! and only the fields named here are looked at: fields added later are ignored.
//!
//! Sources: a JSON log file with its rotations (`FILE.1`, `FILE.2.gz`, `FILE-20260101`, ...),
//! or the journal (`journalctl -o json`, the structured `MFIGUARD_*` fields).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use serde_json::{json, Value};

use mfiguard_core::audit::{parse_rfc3339, Rfc3339Seconds};
use mfiguard_core::config::LogTarget;

use crate::settings::{Cli, Settings};
use crate::Error;

/// What one outcome record says about its call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Seconds since the epoch (the record's `ts`), when readable.
    pub ts: Option<i64>,
    /// `pass`, `rewrite`, `reject` (or whatever a later version writes).
    pub verdict: String,
    /// `enforce`, `readonly`, `audit`.
    pub mode: String,
    /// The rule that refused it (a refusal only).
    pub rule: Option<String>,
    /// The calling executable.
    pub tool: String,
    /// Who: the sudo user when there is one, else the user of `uid`.
    pub account: String,
    /// Audit mode: the rule read-only mode would have refused the call by, when it would.
    pub readonly_would_refuse: Option<String>,
}

/// What one record holds that is counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The call, for an outcome record.
    pub call: Option<Call>,
    /// `records_lost` (any record may carry it).
    pub records_lost: u64,
    /// The record's time.
    pub ts: Option<i64>,
}

/// The key of one line of the refusal table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefusalKey {
    /// The refusing rule.
    pub rule: String,
    /// The mode the call ran in (`audit`: would have been refused).
    pub mode: String,
    /// The calling executable.
    pub tool: String,
    /// Who ran it.
    pub account: String,
}

/// Counts over records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Calls by (mode, verdict).
    pub calls: BTreeMap<(String, String), u64>,
    /// Refusals by rule, mode, tool and account.
    pub refusals: BTreeMap<RefusalKey, u64>,
    /// Audit-mode calls read-only mode would have refused, by rule, tool and account (`mode`
    /// is `readonly`).
    pub readonly_would_refuse: BTreeMap<RefusalKey, u64>,
    /// Records the guard could not write (the sum of `records_lost`).
    pub records_lost: u64,
    /// Records read (every kind).
    pub records: u64,
    /// Lines that are not a JSON object (a cut line, another program's text).
    pub unparsed: u64,
    /// The first and last record time seen.
    pub first_ts: Option<i64>,
    /// See `first_ts`.
    pub last_ts: Option<i64>,
}

impl Tally {
    /// Counts one record, if it is not older than `since`.
    pub fn add(&mut self, p: &Parsed, since: Option<i64>) {
        if let (Some(cut), Some(ts)) = (since, p.ts) {
            if ts < cut {
                return;
            }
        }
        self.records += 1;
        self.records_lost = self.records_lost.saturating_add(p.records_lost);
        if let Some(ts) = p.ts {
            self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        }
        let Some(c) = &p.call else { return };
        *self
            .calls
            .entry((c.mode.clone(), c.verdict.clone()))
            .or_default() += 1;
        if c.verdict == "reject" {
            let key = RefusalKey {
                rule: c.rule.clone().unwrap_or_else(|| "unknown".into()),
                mode: c.mode.clone(),
                tool: c.tool.clone(),
                account: c.account.clone(),
            };
            *self.refusals.entry(key).or_default() += 1;
        }
        if let Some(rule) = &c.readonly_would_refuse {
            let key = RefusalKey {
                rule: rule.clone(),
                mode: "readonly".into(),
                tool: c.tool.clone(),
                account: c.account.clone(),
            };
            *self.readonly_would_refuse.entry(key).or_default() += 1;
        }
    }

    /// Counts a line of a JSON log.
    pub fn add_line(&mut self, line: &str, since: Option<i64>) {
        match parse_json_record(line) {
            Some(p) => self.add(&p, since),
            None if line.trim().is_empty() => {}
            None => self.unparsed += 1,
        }
    }

    /// Calls counted, all verdicts.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Calls with this verdict, all modes.
    pub fn verdict(&self, verdict: &str) -> u64 {
        self.calls
            .iter()
            .filter(|((_, v), _)| v == verdict)
            .map(|(_, n)| n)
            .sum()
    }

    /// Refusals in modes that enforce (not audit's previews).
    pub fn enforced_refusals(&self) -> u64 {
        self.refusals
            .iter()
            .filter(|(k, _)| k.mode != "audit")
            .map(|(_, n)| n)
            .sum()
    }
}

/// The user name of `uid` (`uid N` when it has none).
fn account_of(uid: Option<u64>, sudo_user: Option<&str>) -> String {
    if let Some(u) = sudo_user.filter(|u| !u.is_empty()) {
        return u.to_string();
    }
    match uid {
        Some(u) => u32::try_from(u)
            .ok()
            .and_then(crate::sys::user_name)
            .unwrap_or_else(|| format!("uid {u}")),
        None => "unknown".into(),
    }
}

/// Reads one line of a JSON log; `None` when it is not a JSON object.
pub fn parse_json_record(line: &str) -> Option<Parsed> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    let o = v.as_object()?;
    let s = |k: &str| o.get(k).and_then(Value::as_str);
    let ts = s("ts").and_then(parse_rfc3339);
    let records_lost = o.get("records_lost").and_then(Value::as_u64).unwrap_or(0);
    let call = (s("record") == Some("outcome")).then(|| {
        let findings = o
            .get("findings")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let rule_of = |f: &Value| f.get("rule").and_then(Value::as_str).map(String::from);
        // The finding that refused: action reject and not downgraded by `allow`.
        let refusing = findings.iter().find(|f| {
            f.get("action").and_then(Value::as_str) == Some("reject")
                && f.get("downgraded").and_then(Value::as_bool) != Some(true)
        });
        let verdict = s("verdict").unwrap_or("unknown").to_string();
        let readonly = o.get("would").and_then(|w| w.get("readonly"));
        let readonly_would_refuse = readonly
            .filter(|r| r.get("verdict").and_then(Value::as_str) == Some("reject"))
            .map(|r| {
                r.get("findings")
                    .and_then(Value::as_array)
                    .and_then(|f| {
                        f.iter()
                            .find(|f| f.get("action").and_then(Value::as_str) == Some("reject"))
                    })
                    .and_then(rule_of)
                    .unwrap_or_else(|| "unknown".into())
            });
        Call {
            ts,
            readonly_would_refuse,
            rule: (verdict == "reject")
                .then(|| refusing.or(findings.first()).and_then(rule_of))
                .flatten(),
            verdict,
            mode: s("mode").unwrap_or("unknown").to_string(),
            tool: s("exe").unwrap_or("unknown").to_string(),
            account: account_of(o.get("uid").and_then(Value::as_u64), s("sudo_user")),
        }
    });
    Some(Parsed {
        call,
        records_lost,
        ts,
    })
}

/// One field of a `journalctl -o json` entry: a string, a list (a field given several times),
/// or bytes (a value that is not UTF-8, as an array of numbers).
fn journal_values(v: Option<&Value>) -> Vec<String> {
    let bytes = |a: &Vec<Value>| -> Option<String> {
        let b: Option<Vec<u8>> = a
            .iter()
            .map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect();
        b.map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_number) => bytes(a).into_iter().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Array(b) => bytes(b),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads one entry of `journalctl -o json`: (its cursor, what it holds).
pub fn parse_journal_entry(line: &str) -> Option<(Option<String>, Parsed)> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    let o = v.as_object()?;
    let one = |k: &str| journal_values(o.get(k)).into_iter().next();
    let cursor = one("__CURSOR");
    let ts = one("__REALTIME_TIMESTAMP")
        .and_then(|us| us.parse::<i64>().ok())
        .map(|us| us / 1_000_000);
    let records_lost = one("MFIGUARD_RECORDS_LOST")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let call = (one("MFIGUARD_RECORD").as_deref() == Some("outcome")).then(|| {
        let verdict = one("MFIGUARD_VERDICT").unwrap_or_else(|| "unknown".into());
        // The journal lists each finding's rule, not its action; the readable line (MESSAGE)
        // says "RULE reject: ..." for the refusing one.
        let rules = journal_values(o.get("MFIGUARD_RULE"));
        let message = one("MESSAGE").unwrap_or_default();
        let rule = (verdict == "reject")
            .then(|| {
                rules
                    .iter()
                    .find(|r| message.contains(&format!("{r} reject")))
                    .or(rules.first())
                    .cloned()
            })
            .flatten();
        let readonly_would_refuse = (one("MFIGUARD_WOULD_READONLY").as_deref() == Some("reject"))
            .then(|| one("MFIGUARD_WOULD_READONLY_RULE").unwrap_or_else(|| "unknown".into()));
        Call {
            ts,
            verdict,
            readonly_would_refuse,
            mode: one("MFIGUARD_MODE").unwrap_or_else(|| "unknown".into()),
            rule,
            tool: one("MFIGUARD_EXE").unwrap_or_else(|| "unknown".into()),
            account: account_of(
                one("MFIGUARD_UID").and_then(|u| u.parse().ok()),
                one("MFIGUARD_SUDO_USER").as_deref(),
            ),
        }
    });
    Some((
        cursor,
        Parsed {
            call,
            records_lost,
            ts,
        },
    ))
}

/// `90s`, `15m`, `1h`, `7d`, `2w` (or a plain number of seconds) in seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (90s, 15m, 1h, 7d, 2w)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (s, m, h, d, w)")),
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("'{s}' is not a duration above 0"))
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The rotated copies of `log` that logrotate leaves beside it (`log.1`, `log.2.gz`,
/// `log-20260101`, `log-20260101.gz`), oldest first, then `log` itself when it exists.
pub fn rotations(log: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else {
        return vec![log.to_path_buf()];
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut old: Vec<(i64, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let file = e.file_name();
            let Some(f) = file.to_str() else { continue };
            let Some(rest) = f.strip_prefix(name) else {
                continue;
            };
            let rest = rest.strip_suffix(".gz").unwrap_or(rest);
            // .N counts up with age; -DATE counts up with youth.
            let order = if let Some(n) = rest.strip_prefix('.') {
                n.parse::<i64>().ok().map(|n| -n)
            } else if let Some(d) = rest.strip_prefix('-') {
                (d.len() >= 8 && d.bytes().all(|c| c.is_ascii_digit()))
                    .then(|| d.parse::<i64>().ok())
                    .flatten()
                    .map(|d| d - i64::MAX / 2)
            } else {
                None
            };
            if let Some(o) = order {
                old.push((o, dir.join(f)));
            }
        }
    }
    old.sort();
    let mut out: Vec<PathBuf> = old.into_iter().map(|(_, p)| p).collect();
    if log.exists() {
        out.push(log.to_path_buf());
    }
    out
}

/// A log file's lines, gunzipped when its name ends in `.gz`.
fn open_lines(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let f = File::open(path)?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    })
}

/// Counts every record of `log` and its rotations not older than `since` (files last written
/// before it are skipped unread). Returns the files read.
pub fn read_file_log(
    log: &Path,
    since: Option<i64>,
    tally: &mut Tally,
) -> std::io::Result<Vec<PathBuf>> {
    let mut read = Vec::new();
    let files = rotations(log);
    if files.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such file, nor rotated copies", log.display()),
        ));
    }
    for f in files {
        let meta = std::fs::metadata(&f)?;
        if let Some(cut) = since {
            if meta.mtime() < cut {
                continue;
            }
        }
        let mut lines = open_lines(&f)?;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if lines.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            tally.add_line(&String::from_utf8_lossy(&buf), since);
        }
        read.push(f);
    }
    Ok(read)
}

/// The journal's records (`journalctl -o json SYSLOG_IDENTIFIER=mfiguard`), from `since` or
/// after `cursor`; `each` gets every entry; returns the last cursor seen.
pub fn read_journal(
    since: Option<i64>,
    cursor: Option<&str>,
    mut each: impl FnMut(&Parsed),
) -> Result<Option<String>, String> {
    let mut cmd = Command::new("journalctl");
    cmd.args([
        "-o",
        "json",
        "--no-pager",
        "-q",
        "SYSLOG_IDENTIFIER=mfiguard",
    ]);
    if let Some(c) = cursor {
        cmd.arg(format!("--after-cursor={c}"));
    } else if let Some(t) = since {
        cmd.arg(format!("--since=@{t}"));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("journalctl: {e}"))?;
    let mut last = cursor.map(String::from);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("journalctl: {e}"))?;
            if let Some((c, p)) = parse_journal_entry(&line) {
                each(&p);
                if c.is_some() {
                    last = c;
                }
            }
        }
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| format!("journalctl: {e}"))?;
    if !status.success() {
        return Err(format!(
            "journalctl failed ({status}): {}",
            err.lines().next().unwrap_or("")
        ));
    }
    Ok(last)
}

/// How far a log file was read: its inode, the offset of the first byte not yet counted, and a
/// hash of its first bytes (a file emptied in place by `copytruncate` keeps its inode but
/// starts with other bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The file's inode.
    pub inode: u64,
    /// Bytes already counted.
    pub offset: u64,
    /// FNV-1a of the first `min(offset, 64)` bytes.
    pub head: u64,
}

fn head_hash(path: &Path, upto: u64) -> std::io::Result<u64> {
    let mut buf = Vec::new();
    File::open(path)?.take(upto.min(64)).read_to_end(&mut buf)?;
    Ok(buf.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }))
}

/// Counts the complete lines of `path` from `from` on; returns the offset after the last one
/// (a line still being written, without its newline, is left for the next run).
fn count_from(path: &Path, from: u64, mut each: impl FnMut(&str)) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let mut r = BufReader::new(f);
    let mut off = from;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            return Ok(off);
        }
        off += n as u64;
        each(&String::from_utf8_lossy(&buf));
    }
}

/// Counts what was appended to `log` since `cursor`, following a rotation: when `log` is a new
/// file, the rest of the old one is read first from the rotated copy that has its inode
/// (`log.1` with logrotate's `delaycompress`). Returns the new cursor (`None`: no file yet).
pub fn read_new(
    log: &Path,
    cursor: Option<Cursor>,
    mut each: impl FnMut(&str),
) -> std::io::Result<Option<Cursor>> {
    let meta = match std::fs::metadata(log) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let same = match (&meta, cursor) {
        (Some(m), Some(c)) => {
            m.ino() == c.inode && m.len() >= c.offset && head_hash(log, c.offset)? == c.head
        }
        _ => false,
    };
    let from = if same {
        cursor.map_or(0, |c| c.offset)
    } else {
        if let Some(c) = cursor {
            // The old file, renamed by logrotate: its unread tail.
            if let Some(old) = rotations(log).into_iter().find(|p| {
                p != log
                    && p.extension().is_none_or(|e| e != "gz")
                    && std::fs::metadata(p).is_ok_and(|m| m.ino() == c.inode && m.len() >= c.offset)
            }) {
                count_from(&old, c.offset, &mut each)?;
            }
        }
        0
    };
    let Some(m) = meta else { return Ok(None) };
    let offset = count_from(log, from, &mut each)?;
    Ok(Some(Cursor {
        inode: m.ino(),
        offset,
        head: head_hash(log, offset)?,
    }))
}

/// The report as JSON (documented in mfiguard-run(1), `--report --json`).
pub fn to_json(t: &Tally, sources: &[String], since: Option<i64>) -> Value {
    let mut by_verdict: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_mode: BTreeMap<&str, u64> = BTreeMap::new();
    for ((mode, verdict), n) in &t.calls {
        *by_verdict.entry(verdict).or_default() += n;
        *by_mode.entry(mode).or_default() += n;
    }
    let refusals: Vec<Value> = t
        .refusals
        .iter()
        .map(|(k, n)| {
            json!({"rule": k.rule, "mode": k.mode, "enforced": k.mode != "audit",
                   "tool": k.tool, "account": k.account, "count": n})
        })
        .collect();
    json!({
        "report_version": 1,
        "sources": sources,
        "since": since.map(|t| Rfc3339Seconds(t).to_string()),
        "first_record": t.first_ts.map(|t| Rfc3339Seconds(t).to_string()),
        "last_record": t.last_ts.map(|t| Rfc3339Seconds(t).to_string()),
        "records": t.records,
        "unparsed_lines": t.unparsed,
        "calls": {"total": t.total_calls(), "by_verdict": by_verdict, "by_mode": by_mode},
        "refusals": refusals,
        "refused": t.enforced_refusals(),
        "would_refuse_in_audit": t.refusals.iter().filter(|(k, _)| k.mode == "audit").map(|(_, n)| n).sum::<u64>(),
        "would_refuse_in_readonly": t.readonly_would_refuse.values().sum::<u64>(),
        "readonly_would_refuse": t.readonly_would_refuse.iter().map(|(k, n)| {
            json!({"rule": k.rule, "tool": k.tool, "account": k.account, "count": n})
        }).collect::<Vec<_>>(),
        "records_lost": t.records_lost,
    })
}

/// The report for people.
pub fn to_text(t: &Tally, sources: &[String], since: Option<i64>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "mfiguard report: {}", sources.join(", "));
    match since {
        Some(c) => {
            let _ = writeln!(s, "since: {}", Rfc3339Seconds(c));
        }
        None => {
            let _ = writeln!(s, "since: the oldest record kept");
        }
    }
    if let (Some(f), Some(l)) = (t.first_ts, t.last_ts) {
        let _ = writeln!(
            s,
            "records: {} ({} to {})",
            t.records,
            Rfc3339Seconds(f),
            Rfc3339Seconds(l)
        );
    } else {
        let _ = writeln!(s, "records: {}", t.records);
    }
    let _ = writeln!(
        s,
        "calls: {} (pass {}, rewrite {}, reject {}); each call counted once, by its outcome record",
        t.total_calls(),
        t.verdict("pass"),
        t.verdict("rewrite"),
        t.verdict("reject")
    );
    for (title, audit, table) in [
        ("refused", Some(false), &t.refusals),
        (
            "would be refused (audit mode: let through)",
            Some(true),
            &t.refusals,
        ),
        (
            "would refuse in readonly (audit mode's preview of read-only)",
            None,
            &t.readonly_would_refuse,
        ),
    ] {
        let rows: Vec<_> = table
            .iter()
            .filter(|(k, _)| audit.is_none_or(|a| (k.mode == "audit") == a))
            .collect();
        let total: u64 = rows.iter().map(|(_, n)| **n).sum();
        let _ = writeln!(s, "{title}: {total}");
        if rows.is_empty() {
            continue;
        }
        let w = |f: &dyn Fn(&RefusalKey) -> usize, min: usize| {
            rows.iter().map(|(k, _)| f(k)).max().unwrap_or(0).max(min)
        };
        let (wr, wm, wa) = (
            w(&|k| k.rule.len(), 4),
            w(&|k| k.mode.len(), 4),
            w(&|k| k.account.len(), 7),
        );
        let _ = writeln!(
            s,
            "  {:>7}  {:wr$}  {:wm$}  {:wa$}  tool",
            "count", "rule", "mode", "account"
        );
        let mut rows = rows;
        rows.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (k, n) in rows {
            let _ = writeln!(
                s,
                "  {n:>7}  {:wr$}  {:wm$}  {:wa$}  {}",
                crate::printable(&k.rule),
                crate::printable(&k.mode),
                crate::printable(&k.account),
                crate::printable(&k.tool)
            );
        }
    }
    let _ = writeln!(s, "records lost: {}", t.records_lost);
    if t.unparsed > 0 {
        let _ = writeln!(s, "lines that are not records: {}", t.unparsed);
    }
    s
}

/// Where records come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A JSON log file (and its rotations).
    File(PathBuf),
    /// The journal (`SYSLOG_IDENTIFIER=mfiguard`).
    Journal,
}

impl Source {
    /// The source `--log` names, else the policy's log: a file (the first, of several), else
    /// the journal (`journal`, and `syslog` where journald runs). `None`: records are not kept
    /// (stderr, none).
    pub fn of(settings: &Settings) -> Option<Source> {
        let log = &settings.config.log;
        if let Some(p) = log.file() {
            return Some(Source::File(PathBuf::from(
                p.to_string_lossy().into_owned(),
            )));
        }
        log.targets()
            .iter()
            .any(|t| matches!(t, LogTarget::Syslog | LogTarget::Journal))
            .then_some(Source::Journal)
    }

    /// `file:/path` or `journal`.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => format!("file:{}", p.display()),
            Source::Journal => "journal".into(),
        }
    }
}

/// `--report`: the records of the log the policy names (or `--log FILE|syslog`: the
/// journal), rotated files included.
pub fn command(cli: &Cli, settings: &Settings) -> Result<ExitCode, Error> {
    if !cli.command.is_empty() {
        return Err(Error::Usage(
            "--report takes no TOOL (see mfiguard-run --help)".into(),
        ));
    }
    let since = match &cli.since {
        Some(d) => {
            Some(now() - parse_duration(d).map_err(|e| Error::Usage(format!("--since: {e}")))?)
        }
        None => None,
    };
    let mut tally = Tally::default();
    let sources = match Source::of(settings) {
        Some(Source::File(p)) => read_file_log(&p, since, &mut tally)
            .map_err(|e| Error::Setup(format!("--report: {}: {e}", p.display())))?
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        Some(Source::Journal) => {
            read_journal(since, None, |p| tally.add(p, since))
                .map_err(|e| Error::Setup(format!("--report: {e}")))?;
            vec!["journal (SYSLOG_IDENTIFIER=mfiguard)".to_string()]
        }
        None => {
            return Err(Error::Setup(format!(
                "--report: the log is {}: no records to read (--log FILE names one)",
                settings.config.log.describe()
            )))
        }
    };
    if cli.json {
        println!("{}", to_json(&tally, &sources, since));
    } else {
        print!("{}", to_text(&tally, &sources, since));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REJECT: &str = r#"{"record":"outcome","seq":1,"ts":"2026-11-25T06:32:54.367825Z","pid":22360,"exe":"/usr/sbin/MegaCli64","uid":0,"sudo_user":"nagios","mode":"readonly","verdict":"reject","enforced":true,"findings":[{"rule":"x.warn-rule","action":"warn","downgraded":false},{"rule":"x.reject-rule","action":"reject","downgraded":false}],"a_field_added_later":{"x":1}}"#;

    #[test]
    fn an_outcome_is_a_call_and_a_decision_is_not() {
        let p = parse_json_record(REJECT).unwrap();
        let c = p.call.unwrap();
        assert_eq!(c.rule.as_deref(), Some("x.reject-rule"));
        assert_eq!(c.account, "nagios");
        assert_eq!(c.mode, "readonly");
        let d = REJECT.replace("\"outcome\"", "\"decision\"");
        assert_eq!(parse_json_record(&d).unwrap().call, None);
    }

    #[test]
    fn audit_mode_counts_each_call_once() {
        let mut t = Tally::default();
        let dec = REJECT
            .replace("\"outcome\"", "\"decision\"")
            .replace("readonly\"", "audit\"");
        let out = REJECT.replace("readonly\"", "audit\"");
        t.add_line(&dec, None);
        t.add_line(&out, None);
        assert_eq!(t.total_calls(), 1);
        assert_eq!(t.records, 2);
        assert_eq!(t.enforced_refusals(), 0);
        assert_eq!(t.refusals.values().sum::<u64>(), 1);
    }

    #[test]
    fn since_drops_older_records() {
        let mut t = Tally::default();
        let cut = parse_rfc3339("2026-11-25T06:32:55Z");
        t.add_line(REJECT, cut);
        assert_eq!(t.records, 0);
        t.add_line(REJECT, parse_rfc3339("2026-11-25T06:32:54Z"));
        assert_eq!(t.records, 1);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn journal_entries_name_the_refusing_rule_from_the_message() {
        let e = r##"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1790000000000000","MFIGUARD_RECORD":"outcome","MFIGUARD_VERDICT":"reject","MFIGUARD_MODE":"enforce","MFIGUARD_RULE":["x.warn-rule","x.reject-rule"],"MFIGUARD_EXE":"/x","MFIGUARD_UID":"0","MESSAGE":"#1 outcome reject ...; x.warn-rule warn: a; x.reject-rule reject: b"}"##;
        let (c, p) = parse_journal_entry(e).unwrap();
        assert_eq!(c.as_deref(), Some("s=1"));
        assert_eq!(p.ts, Some(1_790_000_000));
        assert_eq!(p.call.unwrap().rule.as_deref(), Some("x.reject-rule"));
    }

    #[test]
    fn a_rotated_log_is_finished_then_the_new_one_read() {
        let dir = std::env::temp_dir().join(format!("mfiguard-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("audit.jsonl");
        std::fs::write(&log, format!("{REJECT}\n")).unwrap();
        let mut n = 0;
        let c = read_new(&log, None, |_| n += 1).unwrap();
        assert_eq!(n, 1);
        // A second record, then logrotate renames the file and a third goes to a new one.
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, format!("{REJECT}\n{{\"cut").as_bytes()).unwrap();
        std::fs::rename(&log, dir.join("audit.jsonl.1")).unwrap();
        std::fs::write(&log, format!("{REJECT}\n")).unwrap();
        let mut n = 0;
        let c2 = read_new(&log, c, |_| n += 1).unwrap();
        assert_eq!(n, 2, "the old file's new record and the new file's");
        let mut n = 0;
        read_new(&log, c2, |_| n += 1).unwrap();
        assert_eq!(n, 0, "nothing counted twice");
        // copytruncate: the same inode, emptied and written again.
        std::fs::write(&log, "{\"other\":1}\n").unwrap();
        let mut n = 0;
        read_new(&log, c2, |_| n += 1).unwrap();
        assert_eq!(n, 1);
        let mut t = Tally::default();
        let read = read_file_log(&log, None, &mut t).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(t.unparsed, 1, "the cut line");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
