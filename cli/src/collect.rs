//! `mfiguard-run --collect`: the root side of monitoring, run by `mfiguard-collect.timer`.
//! It reads the records written since its last run (the log the policy names: a JSON file,
//! followed across logrotate's renames, or the journal), adds them to counters kept in its
//! state (so that they survive rotation), runs the self-test as root, and writes
//!
//! - `STATE_DIR/status.json` (mode 0644): what `check_mfiguard` reads as any user: the
//!   self-test's verdict, the totals, and the last 24 hours of refusals and lost records by
//!   minute (documented in mfiguard-run(1), `--collect`);
//! - `TEXTFILE_DIR/mfiguard.prom` (mode 0644) for node_exporter's textfile collector, every
//!   metric under `mfiguard_`.
//!
//! Counting is `report`'s: one reader, one notion of a call and a refusal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mfiguard_core::audit::Rfc3339Seconds;
use serde_json::{json, Value};

use crate::report::{self, Cursor, Parsed, RefusalKey, Source, Tally};
use crate::settings::Settings;
use crate::Error;

/// Where the collector keeps its state and the status file.
pub const STATE_DIR: &str = "/var/lib/mfiguard";
/// node_exporter's textfile directories (`--collector.textfile.directory`): Debian's, then
/// the one EPEL's and the upstream examples use; the first that exists is written.
pub const TEXTFILE_DIRS: [&str; 2] = [
    "/var/lib/prometheus/node-exporter",
    "/var/lib/node_exporter/textfile_collector",
];
/// The status file's name in the state directory.
pub const STATUS_FILE: &str = "status.json";
/// The collector's own state (root only).
const STATE_FILE: &str = "collector.json";
/// The metrics file's name in the textfile directory.
pub const PROM_FILE: &str = "mfiguard.prom";
/// How long the per-minute history in the status file reaches back.
pub const HISTORY_SECONDS: i64 = 24 * 3600;

/// What the collector keeps between runs.
#[derive(Default)]
struct State {
    source: String,
    cursor: Option<Cursor>,
    journal_cursor: Option<String>,
    totals: Tally,
    /// minute (seconds since the epoch) -> (refused, would be refused in audit, records lost)
    minutes: BTreeMap<i64, (u64, u64, u64)>,
}

impl State {
    fn load(path: &Path) -> State {
        let Ok(text) = std::fs::read_to_string(path) else {
            return State::default();
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            eprintln!(
                "mfiguard-run: {}: unreadable state, counting from zero",
                path.display()
            );
            return State::default();
        };
        let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut st = State {
            source: s(&v, "source"),
            cursor: v.get("cursor").filter(|c| c.is_object()).map(|c| Cursor {
                inode: u(c, "inode"),
                offset: u(c, "offset"),
                head: u(c, "head"),
            }),
            journal_cursor: v
                .get("journal_cursor")
                .and_then(Value::as_str)
                .map(String::from),
            ..State::default()
        };
        let t = &mut st.totals;
        t.records_lost = u(&v, "records_lost");
        t.records = u(&v, "records");
        t.unparsed = u(&v, "unparsed_lines");
        for c in v
            .get("calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            t.calls
                .insert((s(c, "mode"), s(c, "verdict")), u(c, "count"));
        }
        for (field, table) in [
            ("refusals", &mut t.refusals),
            ("readonly_would_refuse", &mut t.readonly_would_refuse),
        ] {
            for r in v.get(field).and_then(Value::as_array).into_iter().flatten() {
                let key = RefusalKey {
                    rule: s(r, "rule"),
                    mode: s(r, "mode"),
                    tool: s(r, "tool"),
                    account: s(r, "account"),
                };
                table.insert(key, u(r, "count"));
            }
        }
        for m in v
            .get("minutes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let n = |i: usize| m.get(i).and_then(Value::as_u64).unwrap_or(0);
            if let Some(t) = m.get(0).and_then(Value::as_i64) {
                st.minutes.insert(t, (n(1), n(2), n(3)));
            }
        }
        st
    }

    fn to_json(&self) -> Value {
        let t = &self.totals;
        json!({
            "state_version": 1,
            "source": self.source,
            "cursor": self.cursor.map(|c| json!({"inode": c.inode, "offset": c.offset, "head": c.head})),
            "journal_cursor": self.journal_cursor,
            "records": t.records,
            "unparsed_lines": t.unparsed,
            "records_lost": t.records_lost,
            "calls": t.calls.iter().map(|((m, v), n)| json!({"mode": m, "verdict": v, "count": n})).collect::<Vec<_>>(),
            "refusals": t.refusals.iter().map(|(k, n)| json!({"rule": k.rule, "mode": k.mode, "tool": k.tool, "account": k.account, "count": n})).collect::<Vec<_>>(),
            "readonly_would_refuse": t.readonly_would_refuse.iter().map(|(k, n)| json!({"rule": k.rule, "mode": k.mode, "tool": k.tool, "account": k.account, "count": n})).collect::<Vec<_>>(),
            "minutes": self.minutes.iter().map(|(t, (r, a, l))| json!([t, r, a, l])).collect::<Vec<_>>(),
        })
    }

    /// Counts one record into the totals and its minute.
    fn add(&mut self, p: &Parsed, now: i64) {
        self.totals.add(p, None);
        let refused = p.call.as_ref().filter(|c| c.verdict == "reject");
        let (r, a) = match refused {
            Some(c) if c.mode == "audit" => (0, 1),
            Some(_) => (1, 0),
            None => (0, 0),
        };
        if r + a + p.records_lost > 0 {
            let t = p.ts.unwrap_or(now);
            let e = self.minutes.entry(t - t.rem_euclid(60)).or_default();
            e.0 += r;
            e.1 += a;
            e.2 += p.records_lost;
        }
    }
}

/// Writes `text` to `path` in one rename, with `mode`.
fn write_atomically(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A Prometheus label value, escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The host-wide guard's states, as `--check --json` names them.
#[cfg(target_arch = "x86_64")]
fn hostd_states() -> impl Iterator<Item = &'static str> {
    mfiguard_supervisor::hostd::Coverage::ALL
        .into_iter()
        .map(mfiguard_supervisor::hostd::Coverage::name)
}

/// None: mfiguard-hostd is built for x86_64 only.
#[cfg(not(target_arch = "x86_64"))]
fn hostd_states() -> impl Iterator<Item = &'static str> {
    std::iter::empty()
}

/// The metrics (documented in examples/integrations/README.md and mfiguard-run(1)).
pub fn prometheus(status: &Value, totals: &Tally) -> String {
    let mut s = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, String)>| {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} {kind}");
        for (labels, value) in lines {
            if labels.is_empty() {
                let _ = writeln!(s, "{name} {value}");
            } else {
                let _ = writeln!(s, "{name}{{{labels}}} {value}");
            }
        }
    };
    let b = |v: Option<bool>| u8::from(v == Some(true)).to_string();
    let check = &status["check"];
    metric(
        "mfiguard_guard_ok",
        "gauge",
        "1 when the self-test (mfiguard-run --check, as root) proves the guard loads, intercepts and the policy is valid.",
        vec![(String::new(), b(check["ok"].as_bool()))],
    );
    let hostd = check["hostd"]["state"].as_str().unwrap_or("unknown");
    metric(
        "mfiguard_hostd_state",
        "gauge",
        "The host-wide guard's state (mfiguard-hostd): 1 for the current one.",
        hostd_states()
            .map(|st| (format!("state=\"{st}\""), u8::from(st == hostd).to_string()))
            .collect(),
    );
    metric(
        "mfiguard_config_invalid",
        "gauge",
        "Settings a run would refuse (INVALID lines of mfiguard-run --check).",
        vec![(
            String::new(),
            check["policy"]["invalid"]
                .as_array()
                .map_or(0, Vec::len)
                .to_string(),
        )],
    );
    metric(
        "mfiguard_records_writable",
        "gauge",
        "1 when root can write the audit records where the policy sends them.",
        vec![(
            String::new(),
            b(check["policy"]["records"]["writable"].as_bool()),
        )],
    );
    metric(
        "mfiguard_calls_total",
        "counter",
        "Guarded MegaRAID calls recorded (one outcome record each), by mode and verdict; calls the guard does not record (audit = findings: clean ones) are not counted.",
        totals
            .calls
            .iter()
            .map(|((m, v), n)| (format!("mode=\"{}\",verdict=\"{}\"", label(m), label(v)), n.to_string()))
            .collect(),
    );
    let mut refusals: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for (k, n) in &totals.refusals {
        *refusals.entry((&k.rule, &k.mode, &k.tool)).or_default() += n;
    }
    metric(
        "mfiguard_refusals_total",
        "counter",
        "Calls refused (mode audit: that enforce would have refused), by rule, mode and tool.",
        refusals
            .iter()
            .map(|((r, m, t), n)| {
                (
                    format!(
                        "rule=\"{}\",mode=\"{}\",tool=\"{}\"",
                        label(r),
                        label(m),
                        label(t)
                    ),
                    n.to_string(),
                )
            })
            .collect(),
    );
    let mut would: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (k, n) in &totals.readonly_would_refuse {
        *would.entry((&k.rule, &k.tool)).or_default() += n;
    }
    metric(
        "mfiguard_would_refuse_total",
        "counter",
        "Audit-mode calls another mode would have refused, by that mode (readonly: from the records' preview of read-only), rule and tool; enforce's are mfiguard_refusals_total{mode=\"audit\"}.",
        would
            .iter()
            .map(|((r, t), n)| {
                (
                    format!("mode=\"readonly\",rule=\"{}\",tool=\"{}\"", label(r), label(t)),
                    n.to_string(),
                )
            })
            .collect(),
    );
    metric(
        "mfiguard_records_lost_total",
        "counter",
        "Audit records the guard could not write (the records_lost fields).",
        vec![(String::new(), totals.records_lost.to_string())],
    );
    metric(
        "mfiguard_log_unparsed_lines_total",
        "counter",
        "Lines of the JSON log that are not records.",
        vec![(String::new(), totals.unparsed.to_string())],
    );
    metric(
        "mfiguard_collector_source_ok",
        "gauge",
        "1 when the collector could read the audit log or journal.",
        vec![(String::new(), b(status["source_ok"].as_bool()))],
    );
    metric(
        "mfiguard_collector_last_run_timestamp_seconds",
        "gauge",
        "When the collector last ran.",
        vec![(String::new(), status["written_unix"].to_string())],
    );
    metric(
        "mfiguard_build_info",
        "gauge",
        "The mfiguard version that wrote these metrics.",
        vec![(format!("version=\"{}\"", crate::VERSION), "1".into())],
    );
    s
}

/// `--collect`.
pub fn run(
    settings: &Settings,
    state_dir: Option<&str>,
    textfile_dir: Option<&str>,
) -> Result<ExitCode, Error> {
    let state_dir = PathBuf::from(state_dir.unwrap_or(STATE_DIR));
    std::fs::create_dir_all(&state_dir)
        .and_then(|()| std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| {
            Error::Setup(format!(
                "--collect: the state directory {}: {e}",
                state_dir.display()
            ))
        })?;
    let state_path = state_dir.join(STATE_FILE);
    let mut st = State::load(&state_path);
    let now = report::now();
    let source = Source::of(settings);
    let name = source.as_ref().map_or("none".into(), Source::name);
    if name != st.source {
        // Another log: its own position; the counters go on (they count this host's calls).
        st.cursor = None;
        st.journal_cursor = None;
        st.source = name.clone();
    }
    let read: Result<(), String> = match &source {
        Some(Source::File(p)) => {
            let mut parsed = Vec::new();
            match report::read_new(p, st.cursor, |line| match report::parse_json_record(line) {
                Some(r) => parsed.push(Some(r)),
                None if line.trim().is_empty() => {}
                None => parsed.push(None),
            }) {
                Ok(c) => {
                    for r in parsed {
                        match r {
                            Some(r) => st.add(&r, now),
                            None => st.totals.unparsed += 1,
                        }
                    }
                    st.cursor = c;
                    Ok(())
                }
                Err(e) => Err(format!("{}: {e}", p.display())),
            }
        }
        Some(Source::Journal) => {
            let mut parsed = Vec::new();
            // A first run starts a day back: older history is the journal's, not a counter's.
            let since = st.journal_cursor.is_none().then_some(now - HISTORY_SECONDS);
            report::read_journal(since, st.journal_cursor.as_deref(), |p| {
                parsed.push(p.clone())
            })
            .map(|c| {
                for r in &parsed {
                    st.add(r, now);
                }
                st.journal_cursor = c;
            })
        }
        None => Err(format!(
            "the policy's log ({}) keeps no records to count",
            settings.config.log.describe()
        )),
    };
    st.minutes.retain(|t, _| *t >= now - HISTORY_SECONDS);

    let (ok, check) = crate::facts::collect(|| crate::check::check(settings, None));
    let t = &st.totals;
    let mut top: Vec<(&RefusalKey, &u64)> = t.refusals.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let status = json!({
        "status_version": 1,
        "written": Rfc3339Seconds(now).to_string(),
        "written_unix": now,
        "version": crate::VERSION,
        "source": name,
        "source_ok": read.is_ok(),
        "source_error": read.as_ref().err(),
        "check": Value::Object(check),
        "guard_ok": ok,
        "totals": {
            "calls": t.total_calls(),
            "pass": t.verdict("pass"),
            "rewrite": t.verdict("rewrite"),
            "reject": t.verdict("reject"),
            "refused": t.enforced_refusals(),
            "would_refuse_in_audit": t.refusals.iter().filter(|(k, _)| k.mode == "audit").map(|(_, n)| n).sum::<u64>(),
            "would_refuse_in_readonly": t.readonly_would_refuse.values().sum::<u64>(),
            "records_lost": t.records_lost,
        },
        "top_refusals": top.iter().take(10).map(|(k, n)| json!({"rule": k.rule, "mode": k.mode, "tool": k.tool, "count": n})).collect::<Vec<_>>(),
        "minutes": st.minutes.iter().map(|(t, (r, a, l))| json!([t, r, a, l])).collect::<Vec<_>>(),
    });
    let mut failed = Vec::new();
    if let Err(e) = write_atomically(&state_path, &st.to_json().to_string(), 0o600) {
        failed.push(format!("{}: {e}", state_path.display()));
    }
    let status_path = state_dir.join(STATUS_FILE);
    if let Err(e) = write_atomically(&status_path, &format!("{status:#}\n"), 0o644) {
        failed.push(format!("{}: {e}", status_path.display()));
    }
    let textfile = textfile_dir
        .or_else(|| TEXTFILE_DIRS.into_iter().find(|d| Path::new(d).is_dir()))
        .unwrap_or(TEXTFILE_DIRS[0]);
    if Path::new(textfile).is_dir() {
        let prom = Path::new(textfile).join(PROM_FILE);
        if let Err(e) = write_atomically(&prom, &prometheus(&status, &st.totals), 0o644) {
            failed.push(format!("{}: {e}", prom.display()));
        }
    } else if textfile_dir.is_some() {
        failed.push(format!("--textfile-dir {textfile}: not a directory"));
    }
    if let Err(e) = &read {
        failed.push(format!("reading the records: {e}"));
    }
    for f in &failed {
        eprintln!("mfiguard-run: --collect: {}", crate::printable(f));
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_tool_path_stays_one_label_value() {
        let mut t = Tally::default();
        let line = r#"{"record":"outcome","exe":"/x\"} 1\nmfiguard_guard_ok 1\n#","mode":"enforce","verdict":"reject","findings":[{"rule":"r\\n","action":"reject"}]}"#;
        t.add_line(line, None);
        assert_eq!(t.total_calls(), 1);
        let prom = prometheus(&json!({"check": {}, "written_unix": 1}), &t);
        let refusals: Vec<&str> = prom
            .lines()
            .filter(|l| l.starts_with("mfiguard_refusals_total{"))
            .collect();
        assert_eq!(
            refusals,
            [
                r#"mfiguard_refusals_total{rule="r\\n",mode="enforce",tool="/x\"} 1\nmfiguard_guard_ok 1\n#"} 1"#
            ]
        );
        assert_eq!(
            prom.lines()
                .filter(|l| l.starts_with("mfiguard_guard_ok "))
                .count(),
            1,
            "{prom}"
        );
    }
}
