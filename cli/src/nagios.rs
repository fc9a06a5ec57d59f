//! `check_mfiguard`, the Nagios/Icinga plugin (`mfiguard-run --nagios-plugin ARGS`; the
//! installed `check_mfiguard` script execs that). It reads the status file that the root-side
//! collector (`mfiguard-run --collect`, `mfiguard-collect.timer`) writes world-readable, so its
//! answer does not depend on who runs it: the NRPE user needs neither the audit log nor the
//! right to write records. Thresholds follow the Monitoring Plugins guidelines
//! (<https://www.monitoring-plugins.org/doc/guidelines.html>): ranges `[@][START:][END]`,
//! `~` for minus infinity; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; one status line with
//! perfdata after `|`, long output after it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::collect::{HISTORY_SECONDS, STATE_DIR, STATUS_FILE};
use crate::report;

const ME: &str = "check_mfiguard";

/// A Monitoring Plugins range: alert when the value is outside `[start, end]` (inside with
/// `@`).
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    start: f64,
    end: f64,
    inside: bool,
    text: String,
}

impl Range {
    /// Parses `10`, `10:`, `~:10`, `10:20`, `@10:20`.
    pub fn parse(text: &str) -> Result<Range, String> {
        let bad = || format!("'{text}' is not a range ([@][START:][END], e.g. 10, 5:, ~:3, @1:2)");
        let (inside, r) = match text.strip_prefix('@') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let num = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
        let (start, end) = match r.split_once(':') {
            None => (0.0, num(r).ok_or_else(bad)?),
            Some((s, e)) => (
                match s {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    s => num(s).ok_or_else(bad)?,
                },
                if e.is_empty() {
                    f64::INFINITY
                } else {
                    num(e).ok_or_else(bad)?
                },
            ),
        };
        if r.is_empty() || start > end {
            return Err(bad());
        }
        Ok(Range {
            start,
            end,
            inside,
            text: text.to_string(),
        })
    }

    /// Whether `v` raises the alert.
    pub fn alerts(&self, v: f64) -> bool {
        let within = self.start <= v && v <= self.end;
        within == self.inside
    }
}

/// The plugin's states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// 0
    Ok,
    /// 1
    Warning,
    /// 2
    Critical,
    /// 3
    Unknown,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }
    fn code(self) -> u8 {
        self as u8
    }
}

const HELP: &str = "\
Usage: check_mfiguard [-w RANGE] [-c RANGE] [--window DURATION] [--audit]
                      [-s STATUS_FILE] [--max-age DURATION] [-t SECONDS] [-v]
       check_mfiguard -h | --help | -V | --version

Is the mfiguard guard in place on this host, and has it refused calls lately?

Reads the status file that the root-side collector writes (mfiguard-run --collect, run by
mfiguard-collect.timer every 5 minutes; default /var/lib/mfiguard/status.json, mode 0644),
so the answer does not depend on the user that runs the plugin: the NRPE user needs neither
the audit log nor the right to write records.

  OK        the guard works (the self-test as root passed), no threshold is crossed
  WARNING   -w crossed; records were lost in the window; the self-test warns (records
            would be lost); the collector could not read the log
  CRITICAL  -c crossed; the self-test failed: the guard does not load or intercept, a
            setting is invalid (runs are refused), mfiguard-hostd's node was replaced,
            records cannot be written while log_required is on
  UNKNOWN   no status file, a status older than --max-age (the collector stopped), a
            bad option, -t expired

Options:
  -w, --warning RANGE    refusals in the window that make it WARNING (e.g. 1 = more than 1)
  -c, --critical RANGE   refusals in the window that make it CRITICAL
                         RANGE is [@][START:][END] (Monitoring Plugins): alert outside
                         START..END (START 0 by default, ~ for minus infinity), inside with @
  --window DURATION      the window the thresholds count in: 90s, 15m, 1h (default), 24h at most
  --audit                count audit mode's \"would be refused\" calls as refusals too
  -s, --status FILE      the status file (default /var/lib/mfiguard/status.json)
  --max-age DURATION     older status is UNKNOWN (default 15m)
  -t, --timeout SECONDS  give up after SECONDS (default 10): UNKNOWN
  -v, --verbose          more long output (the most frequent refusals)
  -h, --help             this text (exit 3, as the Monitoring Plugins' plugins do)
  -V, --version          the version (exit 3)

Perfdata: refusals (in the window, with -w/-c), would_refuse (audit mode, in the window),
records_lost (in the window), and counters that survive log rotation (kept by the
collector): calls, rewrites, rejects, records_lost_total; status_age in seconds.

Example (NRPE): command[check_mfiguard]=/usr/lib/nagios/plugins/check_mfiguard -w 0 -c 10 --window 1h
";

struct Args {
    warning: Option<Range>,
    critical: Option<Range>,
    window: i64,
    audit: bool,
    status: PathBuf,
    max_age: i64,
    timeout: u64,
    verbose: bool,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut a = Args {
        warning: None,
        critical: None,
        window: 3600,
        audit: false,
        status: PathBuf::from(STATE_DIR).join(STATUS_FILE),
        max_age: 900,
        timeout: 10,
        verbose: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ if arg.len() > 2 && arg.starts_with('-') && !arg.starts_with("--") => {
                (&arg[..2], Some(arg[2..].to_string()))
            }
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{opt} needs a value"))
        };
        match opt {
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("{ME} {}", crate::VERSION);
                return Ok(None);
            }
            "-w" | "--warning" => a.warning = Some(Range::parse(&value()?)?),
            "-c" | "--critical" => a.critical = Some(Range::parse(&value()?)?),
            "--window" => {
                a.window =
                    report::parse_duration(&value()?).map_err(|e| format!("--window: {e}"))?;
                if a.window > HISTORY_SECONDS {
                    return Err("--window: the status file holds 24h at most".into());
                }
            }
            "--audit" => a.audit = true,
            "-s" | "--status" => a.status = PathBuf::from(value()?),
            "--max-age" => {
                a.max_age =
                    report::parse_duration(&value()?).map_err(|e| format!("--max-age: {e}"))?
            }
            "-t" | "--timeout" => {
                let v = value()?;
                a.timeout =
                    v.parse().ok().filter(|&t| t > 0).ok_or_else(|| {
                        format!("-t: '{v}' is not a whole number of seconds above 0")
                    })?;
            }
            "-v" | "--verbose" => a.verbose = true,
            _ => return Err(format!("unknown option '{arg}' (see {ME} --help)")),
        }
    }
    Ok(Some(a))
}

/// One perfdata item.
fn perf(
    label: &str,
    value: impl std::fmt::Display,
    uom: &str,
    w: &Option<Range>,
    c: &Option<Range>,
) -> String {
    let r = |x: &Option<Range>| x.as_ref().map_or(String::new(), |r| r.text.clone());
    format!("{label}={value}{uom};{};{};0;", r(w), r(c))
}

/// The plugin; `args` are the words after `--nagios-plugin`.
pub fn main(args: &[String]) -> ExitCode {
    let a = match parse(args) {
        Ok(Some(a)) => a,
        // As the Monitoring Plugins' own plugins do: --help and --version are no check.
        Ok(None) => return ExitCode::from(State::Unknown.code()),
        Err(e) => {
            println!("MFIGUARD UNKNOWN - {}", crate::printable(&e));
            return ExitCode::from(State::Unknown.code());
        }
    };
    // -t: whatever happens, an answer in time.
    let t = a.timeout;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(t));
        println!("MFIGUARD UNKNOWN - no answer within {t} s (-t)");
        let _ = std::io::stdout().flush();
        std::process::exit(i32::from(State::Unknown.code()));
    });
    let (state, text) = evaluate(&a, report::now());
    print!("{text}");
    let _ = std::io::stdout().flush();
    ExitCode::from(state.code())
}

/// The state and the output for the status file as it is at `now`.
fn evaluate(a: &Args, now: i64) -> (State, String) {
    let shown = a.status.display();
    let status: Value = match std::fs::read_to_string(&a.status) {
        Ok(t) => match serde_json::from_str(&t) {
            Ok(v) => v,
            Err(e) => return (State::Unknown, format!("MFIGUARD UNKNOWN - {shown}: not a status file: {e}\n")),
        },
        Err(e) => {
            return (
                State::Unknown,
                format!("MFIGUARD UNKNOWN - cannot read {shown}: {e} (is mfiguard-collect.timer enabled? systemctl enable --now mfiguard-collect.timer)\n"),
            )
        }
    };
    let written = status["written_unix"].as_i64().unwrap_or(0);
    let age = now - written;
    if age > a.max_age {
        return (
            State::Unknown,
            format!(
                "MFIGUARD UNKNOWN - the status is {age} s old (--max-age {} s): the collector has stopped (systemctl status mfiguard-collect.timer) | status_age={age}s;;{};0;\n",
                a.max_age, a.max_age
            ),
        );
    }
    let from = now - a.window;
    let (mut refused, mut audit, mut lost) = (0u64, 0u64, 0u64);
    for m in status["minutes"].as_array().into_iter().flatten() {
        let n = |i: usize| m.get(i).and_then(Value::as_u64).unwrap_or(0);
        // A minute counts when it ends inside the window.
        if m.get(0)
            .and_then(Value::as_i64)
            .is_some_and(|t| t + 60 > from)
        {
            refused += n(1);
            audit += n(2);
            lost += n(3);
        }
    }
    let counted = if a.audit { refused + audit } else { refused };
    let check = &status["check"];
    let window = format_window(a.window);
    let mut reasons: Vec<(State, String)> = Vec::new();
    if check["ok"].as_bool() != Some(true) {
        reasons.push((
            State::Critical,
            format!("the self-test fails: {}", why_check_failed(check)),
        ));
    }
    if let Some(c) = &a.critical {
        if c.alerts(counted as f64) {
            reasons.push((
                State::Critical,
                format!(
                    "{counted} refusals in the last {window} (critical {})",
                    c.text
                ),
            ));
        }
    }
    if let Some(w) = &a.warning {
        if w.alerts(counted as f64)
            && !reasons
                .iter()
                .any(|(s, r)| *s == State::Critical && r.contains("refusals"))
        {
            reasons.push((
                State::Warning,
                format!(
                    "{counted} refusals in the last {window} (warning {})",
                    w.text
                ),
            ));
        }
    }
    if lost > 0 {
        reasons.push((
            State::Warning,
            format!("{lost} audit records lost in the last {window}"),
        ));
    }
    if status["source_ok"].as_bool() == Some(false) {
        reasons.push((
            State::Warning,
            format!(
                "the collector cannot read the records: {}",
                status["source_error"].as_str().unwrap_or("?")
            ),
        ));
    }
    if let Some(p) = check["policy"]["records"]["problem"].as_str() {
        reasons.push((State::Warning, format!("records: {p}")));
    }
    for w in check["policy"]["warnings"].as_array().into_iter().flatten() {
        reasons.push((State::Warning, w.as_str().unwrap_or("").to_string()));
    }
    let state = reasons.iter().map(|(s, _)| *s).max().unwrap_or(State::Ok);
    let summary = match reasons.iter().find(|(s, _)| *s == state) {
        Some((_, r)) => {
            let more = reasons.iter().filter(|(s, _)| *s != State::Ok).count() - 1;
            if more > 0 {
                format!("{r} (and {more} more)")
            } else {
                r.clone()
            }
        }
        None => format!(
            "the guard works (host-wide: {}); {counted} refusals in the last {window}",
            check["hostd"]["state"].as_str().unwrap_or("unknown")
        ),
    };
    let t = &status["totals"];
    let c = |k: &str| t[k].as_u64().unwrap_or(0);
    let perfdata = [
        perf("refusals", counted, "", &a.warning, &a.critical),
        perf("would_refuse", audit, "", &None, &None),
        perf("records_lost", lost, "", &None, &None),
        format!("calls={}c", c("calls")),
        format!("rewrites={}c", c("rewrite")),
        format!("rejects={}c", c("reject")),
        format!("records_lost_total={}c", c("records_lost")),
        format!("status_age={age}s;;{};0;", a.max_age),
    ]
    .join(" ");
    let mut out = format!(
        "MFIGUARD {} - {} | {perfdata}\n",
        state.name(),
        crate::printable(&summary.chars().take(250).collect::<String>())
    );
    for (s, r) in &reasons {
        out.push_str(&format!("{}: {}\n", s.name(), crate::printable(r)));
    }
    out.push_str(&format!(
        "status: {} ({age} s old), records from {}\n",
        status["written"].as_str().unwrap_or("?"),
        status["source"].as_str().unwrap_or("?")
    ));
    if a.verbose {
        for r in status["top_refusals"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "refused since counting began: {} x {} ({}) {}\n",
                r["count"],
                crate::printable(r["rule"].as_str().unwrap_or("?")),
                crate::printable(r["mode"].as_str().unwrap_or("?")),
                crate::printable(r["tool"].as_str().unwrap_or("?"))
            ));
        }
    }
    (state, out)
}

fn format_window(s: i64) -> String {
    match s {
        _ if s % 3600 == 0 => format!("{}h", s / 3600),
        _ if s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// The first reason the self-test gives for failing.
fn why_check_failed(check: &Value) -> String {
    if let Some(i) = check["policy"]["invalid"]
        .as_array()
        .and_then(|a| a.first())
    {
        return format!("invalid setting: {}", i.as_str().unwrap_or("?"));
    }
    for class in ["64", "32"] {
        let l = &check["libraries"][class];
        if l["installed"].as_bool() == Some(true) && l["intercepted"].as_bool() != Some(true) {
            return format!("the {class}-bit library does not intercept");
        }
    }
    if check["libraries"]["64"]["installed"].as_bool() == Some(false) {
        return "the 64-bit library is not installed".into();
    }
    if let Some(s @ ("bypassed" | "displaced" | "stuck")) = check["hostd"]["state"].as_str() {
        return format!(
            "mfiguard-hostd's node is {s}: tools that open it now are not guarded host-wide"
        );
    }
    if check["policy"]["records"]["writable"].as_bool() == Some(false) {
        return format!(
            "records cannot be written with log_required on: {}",
            check["policy"]["records"]["problem"]
                .as_str()
                .unwrap_or("?")
        );
    }
    "see mfiguard-run --check".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_the_guidelines() {
        let r = |t: &str| Range::parse(t).unwrap();
        assert!(!r("10").alerts(10.0) && r("10").alerts(11.0) && r("10").alerts(-1.0));
        assert!(r("10:").alerts(9.0) && !r("10:").alerts(1e9));
        assert!(!r("~:10").alerts(-1e9) && r("~:10").alerts(11.0));
        assert!(r("10:20").alerts(9.0) && !r("10:20").alerts(15.0) && r("10:20").alerts(21.0));
        assert!(r("@10:20").alerts(15.0) && !r("@10:20").alerts(21.0));
        assert!(r("0").alerts(1.0) && !r("0").alerts(0.0));
        for bad in ["", "x", "20:10", "1:2:3", "@", "nan"] {
            assert!(Range::parse(bad).is_err(), "{bad}");
        }
    }

    fn args(w: Option<&str>, c: Option<&str>, status: PathBuf) -> Args {
        Args {
            warning: w.map(|w| Range::parse(w).unwrap()),
            critical: c.map(|c| Range::parse(c).unwrap()),
            window: 3600,
            audit: false,
            status,
            max_age: 900,
            timeout: 10,
            verbose: false,
        }
    }

    #[test]
    fn thresholds_count_refusals_in_the_window_only() {
        let now = 1_799_999_940; // a whole minute
        let p = std::env::temp_dir().join(format!("mfiguard-nagios-{}.json", std::process::id()));
        let status = serde_json::json!({
            "written_unix": now - 30, "written": "x", "source": "file:/l", "source_ok": true,
            "check": {"ok": true, "hostd": {"state": "off"}, "policy": {"records": {"writable": true}, "warnings": []}},
            "totals": {"calls": 9, "rewrite": 1, "reject": 5, "records_lost": 0},
            // 3 refusals 10 minutes ago, 2 two hours ago (outside a 1h window).
            "minutes": [[now - 7200, 2, 0, 0], [now - 600, 3, 1, 0]],
        });
        std::fs::write(&p, status.to_string()).unwrap();
        let (s, out) = evaluate(&args(Some("0"), Some("5"), p.clone()), now);
        assert_eq!(s, State::Warning, "{out}");
        assert!(out.contains("| refusals=3;0;5;0;"), "{out}");
        let (s, _) = evaluate(&args(Some("0"), Some("2"), p.clone()), now);
        assert_eq!(s, State::Critical);
        let (s, out) = evaluate(&args(Some("3"), None, p.clone()), now);
        assert_eq!(s, State::Ok, "{out}");
        // Records lost in the window: WARNING, whatever the thresholds.
        let mut lost = status.clone();
        lost["minutes"] = serde_json::json!([[now - 120, 0, 0, 2]]);
        std::fs::write(&p, lost.to_string()).unwrap();
        let (s, out) = evaluate(&args(None, Some("5"), p.clone()), now);
        assert_eq!(s, State::Warning, "{out}");
        assert!(
            out.starts_with("MFIGUARD WARNING - 2 audit records lost in the last 1h"),
            "{out}"
        );
        // The self-test failing as root: CRITICAL, with its reason.
        let mut broken = status.clone();
        broken["check"]["ok"] = false.into();
        broken["check"]["hostd"]["state"] = "bypassed".into();
        std::fs::write(&p, broken.to_string()).unwrap();
        let (s, out) = evaluate(&args(None, None, p.clone()), now);
        assert_eq!(s, State::Critical, "{out}");
        assert!(out.contains("mfiguard-hostd's node is bypassed"), "{out}");
        std::fs::write(&p, status.to_string()).unwrap();
        // Stale status.
        let (s, _) = evaluate(&args(None, None, p.clone()), now + 3600);
        assert_eq!(s, State::Unknown);
        std::fs::remove_file(&p).unwrap();
        let (s, _) = evaluate(&args(None, None, p), now);
        assert_eq!(s, State::Unknown);
    }
}
