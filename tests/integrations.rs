//! The monitoring integrations against their conventions, with a stand-in `mfiguard-run` that
//! prints a prepared self-test and appends prepared audit records (and, below, the same
//! integrations run end to end through the real wrapper, with a stand-in library or the guard):
//!
//! - `nagios/check_mfiguard`: the plugin guidelines (one first line with the status and its
//!   reason, never "see above"; OK/WARNING/CRITICAL/UNKNOWN as 0-3; perfdata counted from the
//!   audit log; `-t`; `--help`);
//! - `prometheus/mfiguard-textfile`: `_total` counters that survive log rotation, one file per
//!   job, read-only by default, exit 1 when the collector directory is missing;
//! - `systemd/smartd.service.d/mfiguard.conf`: smartd through `mfiguard-run --mode readonly`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::wrapper::*;
use common::*;

/// `cmd` with nothing of the test runner's environment: the stand-in wrapper's runs.
fn run_scrubbed(cmd: &mut Command) -> Out {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MFIGUARD_") || k.starts_with("FAKE_") {
            cmd.env_remove(&k);
        }
    }
    run(cmd.env_remove("LD_PRELOAD").stdin(Stdio::null()))
}

/// A stand-in for `mfiguard-run`: `--check` prints the file `$FAKE_CHECK` and exits
/// `$FAKE_CHECK_RC` (after `$FAKE_CHECK_SLEEP` seconds); a run writes its arguments to
/// `$FAKE_ARGS`, appends the file `$FAKE_RECORDS` to its `--log` file, and execs the tool.
const FAKE_WRAPPER: &str = r#"#!/bin/sh
if [ "$1" = --check ]; then
	[ -z "${FAKE_CHECK_SLEEP:-}" ] || sleep "$FAKE_CHECK_SLEEP"
	[ -z "${FAKE_CHECK:-}" ] || cat "$FAKE_CHECK"
	exit "${FAKE_CHECK_RC:-0}"
fi
[ -z "${FAKE_ARGS:-}" ] || printf '%s\n' "$*" >"$FAKE_ARGS"
log=
while [ "$1" != -- ]; do
	[ "$1" != --log ] || log=$2
	shift
done
shift
[ ! -s "${FAKE_RECORDS:-}" ] || cat "$FAKE_RECORDS" >>"$log"
exec "$@"
"#;

fn fake_wrapper(s: &Scratch) -> PathBuf {
    let p = s.path("mfiguard-run");
    write_exec(&p, FAKE_WRAPPER);
    p
}

/// What `mfiguard-run --check TOOL` prints on a 6.1 host (its format, shortened).
fn self_test(tool: &str, lines: &[&str], log: &str, result: &str) -> String {
    let mut t = format!(
        "mfiguard-run 0.1.0: self-test\ntool: {tool}\n    ELF 64-bit, dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)\n    setuid/setgid: no\n"
    );
    for l in lines {
        t.push_str(l);
        t.push('\n');
    }
    t.push_str(&format!(
        "kernel: Linux 6.1.0-28-amd64\n\
         kernel protections (judged by version; distribution kernels may carry backports):\n  \
         flag fix (2012, Linux 3.3):              present: the driver clears SGL64/SENSE64/IEEE\n  \
         sense_off check (2020, Linux 5.11):      present: sense_off > 56 is refused (commit 381d34e376e3)\n  \
         sgl_off bound:                           ABSENT: no kernel checks sgl_off; rule sgl.bounds\n\
         policy for runs (no config file at /etc/mfiguard.conf):\n  \
         mode:  readonly (from the environment)\n  \
         log:   {log}\n  \
         allow: none (default)\n\
         {result}\n"
    ));
    t
}

const INTERCEPTED: &str =
    "library (64-bit): /usr/lib/mfiguard/libmfiguard.so\n    intercepted: yes (EINVAL from mfiguard)";

/// An audit log: three recorded calls (a refusal, a rewrite with its decision record, a pass
/// after two lost records) and a configuration error.
const RECORDS: &str = concat!(
    "{\"record\":\"error\",\"key\":\"MFIGUARD_MODE\",\"value\":\"x\"}\n",
    "{\"record\":\"outcome\",\"seq\":1,\"verdict\":\"reject\",\"ret\":-1}\n",
    "{\"record\":\"decision\",\"seq\":2,\"verdict\":\"rewrite\",\"ret\":null}\n",
    "{\"record\": \"outcome\",\"seq\":2,\"verdict\": \"rewrite\",\"ret\":0}\n",
    "{\"record\":\"outcome\",\"seq\":3,\"verdict\":\"pass\",\"ret\":0,\"records_lost\":2}\n",
);

struct Plugin {
    s: Scratch,
    wrapper: PathBuf,
}

impl Plugin {
    fn new(tag: &str) -> Plugin {
        let s = Scratch::new(tag);
        let wrapper = fake_wrapper(&s);
        Plugin { s, wrapper }
    }
    /// check_mfiguard ARGS against a self-test that prints `check` and exits `rc`.
    fn run(&self, check: &str, rc: i32, args: &[&str]) -> Out {
        let out_file = self.s.path("check.out");
        std::fs::write(&out_file, check).unwrap();
        run_scrubbed(
            Command::new(integration("nagios/check_mfiguard"))
                .args(args)
                .env("MFIGUARD_RUN", &self.wrapper)
                .env("FAKE_CHECK", &out_file)
                .env("FAKE_CHECK_RC", rc.to_string()),
        )
    }
}

/// The first line: `MFIGUARD STATUS - reason[ | perfdata]`, the reason never pointing elsewhere.
fn status_line(out: &Out) -> (String, String, Option<String>) {
    let first = out.first();
    assert!(first.matches('|').count() <= 1, "{first}");
    let (text, perf) = match first.split_once(" | ") {
        Some((t, p)) => (t, Some(p.to_owned())),
        None => (first, None),
    };
    let rest = text
        .strip_prefix("MFIGUARD ")
        .unwrap_or_else(|| panic!("{}", out.dump()));
    let (status, reason) = rest.split_once(" - ").unwrap();
    assert!(
        !reason.is_empty() && !reason.contains("see above") && !reason.contains("see below"),
        "the reason is on the first line: {first}"
    );
    assert!(reason.len() <= 200, "a short first line: {first}");
    let want = match status {
        "OK" => 0,
        "WARNING" => 1,
        "CRITICAL" => 2,
        "UNKNOWN" => 3,
        other => panic!("status {other}"),
    };
    assert_eq!(out.code(), want, "{}", out.dump());
    (status.to_owned(), reason.to_owned(), perf)
}

/// Perfdata as `label=value[UOM]` items.
fn perf_items(perf: &str) -> BTreeMap<String, String> {
    perf.split(' ')
        .map(|item| {
            let (label, value) = item.split_once('=').unwrap();
            assert!(
                label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{item}"
            );
            assert!(
                value.ends_with('c') && value.trim_end_matches('c').parse::<u64>().is_ok(),
                "a counter: {item}"
            );
            (label.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn check_mfiguard_is_ok_with_counters_from_the_audit_log() {
    let p = Plugin::new("plugin-ok");
    let log = p.s.path("audit.jsonl");
    std::fs::write(&log, RECORDS).unwrap();
    let check = self_test(
        "/opt/MegaRAID/MegaCli/MegaCli64",
        &[INTERCEPTED],
        "syslog (default)",
        "result: OK: the guard loads, intercepts, and can apply to /opt/MegaRAID/MegaCli/MegaCli64",
    );
    let out = p.run(
        &check,
        0,
        &[
            "-l",
            log.to_str().unwrap(),
            "/opt/MegaRAID/MegaCli/MegaCli64",
        ],
    );
    let (status, reason, perf) = status_line(&out);
    assert_eq!(status, "OK");
    assert_eq!(
        reason,
        "the guard loads and intercepts and can apply to /opt/MegaRAID/MegaCli/MegaCli64; kernel lacks: sgl_off bound"
    );
    let perf = perf_items(&perf.expect("perfdata"));
    // Calls by their outcome record: the rewrite's decision record is not counted again.
    assert_eq!(perf["calls"], "3c");
    assert_eq!(perf["rewrites"], "1c");
    assert_eq!(perf["rejects"], "1c");
    assert_eq!(perf["records_lost"], "2c");
    // The self-test follows as long output.
    assert!(out.stdout.contains("\nmfiguard-run 0.1.0: self-test\n"));

    // Without -l, the log the policy names is counted when it is a file.
    let check = self_test(
        "/opt/MegaRAID/MegaCli/MegaCli64",
        &[INTERCEPTED],
        &format!("{} (from /etc/mfiguard.conf:2)", log.display()),
        "result: OK: the guard loads, intercepts, and can apply to /opt/MegaRAID/MegaCli/MegaCli64",
    );
    let out = p.run(&check, 0, &["/opt/MegaRAID/MegaCli/MegaCli64"]);
    let (_, _, perf) = status_line(&out);
    assert_eq!(perf_items(&perf.expect("perfdata"))["calls"], "3c");
    // With syslog, there is nothing to count: no perfdata rather than zeros.
    let out = p.run(
        &self_test("x", &[INTERCEPTED], "syslog (default)", "result: OK"),
        0,
        &[],
    );
    assert_eq!(status_line(&out).2, None, "{}", out.dump());
}

#[test]
fn check_mfiguard_warns_when_records_would_be_lost() {
    let p = Plugin::new("plugin-warning");
    let warning = "  WARNING: records: /var/log/mfiguard/audit.jsonl: the directory /var/log/mfiguard does not exist: records would be lost (the tool's stderr gets a 'cannot write audit records' line)";
    let check = self_test(
        "/opt/MegaRAID/MegaCli/MegaCli64",
        &[INTERCEPTED, warning],
        "/var/log/mfiguard/audit.jsonl (from /etc/mfiguard.conf:2)",
        "result: OK: the guard loads, intercepts, and can apply to /opt/MegaRAID/MegaCli/MegaCli64",
    );
    let out = p.run(&check, 0, &["/opt/MegaRAID/MegaCli/MegaCli64"]);
    let (status, reason, _) = status_line(&out);
    assert_eq!(status, "WARNING");
    assert!(
        reason.starts_with("records: /var/log/mfiguard/audit.jsonl: the directory"),
        "{reason}"
    );
    assert!(reason.contains("records would be lost"), "{reason}");
}

#[test]
fn check_mfiguard_is_critical_with_the_reason_on_the_first_line() {
    let p = Plugin::new("plugin-critical");
    let not_intercepted = "library (64-bit): /usr/lib/mfiguard/libmfiguard.so\n    intercepted: no (ENOTTY: the call reached the kernel)";
    let check = self_test(
        "/opt/MegaRAID/MegaCli/MegaCli64",
        &[not_intercepted],
        "syslog (default)",
        "result: FAILED: see above",
    );
    let out = p.run(&check, 1, &["/opt/MegaRAID/MegaCli/MegaCli64"]);
    let (status, reason, _) = status_line(&out);
    assert_eq!(status, "CRITICAL");
    assert_eq!(
        reason,
        "intercepted: no (ENOTTY: the call reached the kernel)"
    );

    // Two problems: the first is named, the others counted.
    let invalid = "  INVALID: MFIGUARD_MODE=\"readonyl\" (from /etc/mfiguard.conf:3): unknown mode; use enforce, readonly, audit or off";
    let check = self_test(
        "/opt/storcli64",
        &[
            "    ELF 64-bit, statically linked (no PT_INTERP): the dynamic loader never runs, LD_PRELOAD is ignored: the guard CANNOT apply",
            INTERCEPTED,
            invalid,
        ],
        "syslog (default)",
        "result: FAILED: see above",
    );
    let out = p.run(&check, 1, &["/opt/storcli64"]);
    let (status, reason, _) = status_line(&out);
    assert_eq!(status, "CRITICAL");
    assert!(
        reason.starts_with("ELF 64-bit, statically linked"),
        "{reason}"
    );
    assert!(reason.ends_with("(and 1 more)"), "{reason}");

    // A failure of a kind the plugin does not know still names a line of the self-test.
    let check =
        "mfiguard-run 0.1.0: self-test\n  something new went wrong\nresult: FAILED: see above\n";
    let out = p.run(check, 1, &[]);
    let (status, reason, _) = status_line(&out);
    assert_eq!(status, "CRITICAL");
    assert_eq!(reason, "self-test failed: something new went wrong");
}

#[test]
fn check_mfiguard_is_unknown_on_its_own_errors_and_honours_its_timeout() {
    let p = Plugin::new("plugin-unknown");
    let ok = self_test("x", &[INTERCEPTED], "syslog (default)", "result: OK");

    let started = Instant::now();
    let out_file = p.s.path("check.out");
    std::fs::write(&out_file, &ok).unwrap();
    let out = run_scrubbed(
        Command::new(integration("nagios/check_mfiguard"))
            .args(["-t", "1"])
            .env("MFIGUARD_RUN", &p.wrapper)
            .env("FAKE_CHECK", &out_file)
            .env("FAKE_CHECK_SLEEP", "30"),
    );
    let (status, reason, _) = status_line(&out);
    assert_eq!(status, "UNKNOWN");
    assert_eq!(reason, "mfiguard-run --check did not finish within 1 s");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "-t 1 took {:?}",
        started.elapsed()
    );

    for args in [
        &["-x"][..],
        &["-t", "soon"],
        &["-t"],
        &["-l", "/nonexistent/audit.jsonl"],
        &["tool1", "tool2"],
    ] {
        let out = p.run(&ok, 0, args);
        let (status, _, _) = status_line(&out);
        assert_eq!(status, "UNKNOWN", "{args:?}\n{}", out.dump());
    }
    let out = run_scrubbed(
        Command::new(integration("nagios/check_mfiguard"))
            .env("MFIGUARD_RUN", p.s.path("no-such-wrapper")),
    );
    let (status, reason, _) = status_line(&out);
    assert_eq!(status, "UNKNOWN");
    assert!(reason.ends_with("no-such-wrapper not found"), "{reason}");
    // An exit status --check never gives.
    let out = p.run(&ok, 7, &[]);
    assert_eq!(status_line(&out).0, "UNKNOWN");
}

#[test]
fn check_mfiguard_help_documents_options_and_states() {
    for arg in ["--help", "-h"] {
        let out = run_scrubbed(Command::new(integration("nagios/check_mfiguard")).arg(arg));
        assert_eq!(out.code(), 3, "like the standard plugins\n{}", out.dump());
        for want in [
            "Usage: check_mfiguard [-t SECONDS] [-l AUDIT_LOG] [TOOL]",
            "-t SECONDS",
            "-l FILE",
            "OK ",
            "WARNING ",
            "CRITICAL ",
            "UNKNOWN ",
            "records_lost",
        ] {
            assert!(out.stdout.contains(want), "{want:?} in\n{}", out.stdout);
        }
    }
}

// ---- the Prometheus textfile collector ---------------------------------------------------------

struct Collector {
    s: Scratch,
    wrapper: PathBuf,
    dir: PathBuf,
    state: PathBuf,
    tool: PathBuf,
}

impl Collector {
    fn new(tag: &str) -> Collector {
        let s = Scratch::new(tag);
        let wrapper = fake_wrapper(&s);
        let dir = s.path("textfile");
        std::fs::create_dir_all(&dir).unwrap();
        let state = s.path("state");
        let tool = s.path("MegaCli64");
        write_exec(
            &tool,
            "#!/bin/sh\necho 'State               : Optimal'\necho 'a tool warning' >&2\nexit 0\n",
        );
        Collector {
            s,
            wrapper,
            dir,
            state,
            tool,
        }
    }
    /// mfiguard-textfile OPTS -- TOOL, whose guard appends `records` to the log.
    fn run(&self, opts: &[&str], records: &str) -> Out {
        let rec = self.s.path("records.jsonl");
        std::fs::write(&rec, records).unwrap();
        run_scrubbed(
            Command::new(integration("prometheus/mfiguard-textfile"))
                .arg("-s")
                .arg(&self.state)
                .args(opts)
                .arg("--")
                .arg(&self.tool)
                .env("MFIGUARD_RUN", &self.wrapper)
                .env("FAKE_RECORDS", &rec)
                .env("FAKE_ARGS", self.s.path("args")),
        )
    }
    fn prom_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
    /// The samples of one .prom file, checked against the text format as they are read.
    fn samples(&self, file: &str) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap();
        let mut types = BTreeMap::new();
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(
                    kind == "counter",
                    name.ends_with("_total"),
                    "counters, and only they, end in _total: {line}"
                );
                types.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with("# HELP ") {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert!(types.contains_key(name), "{name} has no # TYPE");
                value.parse::<f64>().unwrap();
                assert!(samples
                    .insert(series.to_owned(), value.to_owned())
                    .is_none());
            }
        }
        samples
    }
}

fn calls(samples: &BTreeMap<String, String>, job: &str, verdict: &str) -> String {
    samples[&format!("mfiguard_calls_total{{job_name=\"{job}\",verdict=\"{verdict}\"}}")].clone()
}

#[test]
fn the_collector_runs_read_only_and_writes_one_file_per_job() {
    let c = Collector::new("prom-jobs");
    let log = c.s.path("audit.jsonl");
    let out = c.run(
        &["-d", c.dir.to_str().unwrap(), "-l", log.to_str().unwrap()],
        "",
    );
    assert_eq!(out.code(), 0, "{}", out.dump());
    let args = std::fs::read_to_string(c.s.path("args")).unwrap();
    assert_eq!(
        args,
        format!(
            "--mode readonly --log {} -- {}\n",
            log.display(),
            c.tool.display()
        )
    );
    // The tool's stderr is not swallowed (cron mails it).
    assert!(out.stderr.contains("a tool warning"), "{}", out.dump());

    // A second job with the same tool: its own file, label and (by default) its own log.
    let out = c.run(&["-d", c.dir.to_str().unwrap(), "-j", "ld info"], "");
    assert_eq!(out.code(), 0, "{}", out.dump());
    let args = std::fs::read_to_string(c.s.path("args")).unwrap();
    assert!(
        args.starts_with("--mode readonly --log /var/log/mfiguard/ld_info.jsonl -- "),
        "{args}"
    );
    assert_eq!(
        c.prom_files(),
        ["mfiguard_MegaCli64.prom", "mfiguard_ld_info.prom"],
        "no temporary file left behind"
    );
    let a = c.samples("mfiguard_MegaCli64.prom");
    let b = c.samples("mfiguard_ld_info.prom");
    assert!(
        a.keys().all(|k| k.contains("job_name=\"MegaCli64\"")),
        "{a:?}"
    );
    assert!(
        b.keys().all(|k| k.contains("job_name=\"ld_info\"")),
        "{b:?}"
    );
    assert_eq!(
        a["megaraid_virtual_drives{job_name=\"MegaCli64\",state=\"Optimal\"}"],
        "1"
    );

    // Another mode on request.
    let out = c.run(
        &[
            "-d",
            c.dir.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-m",
            "enforce",
        ],
        "",
    );
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(std::fs::read_to_string(c.s.path("args"))
        .unwrap()
        .starts_with("--mode enforce "));
}

#[test]
fn the_collector_fails_clearly_without_its_directory() {
    let c = Collector::new("prom-nodir");
    let missing = c.s.path("no-such-dir");
    let out = c.run(&["-d", missing.to_str().unwrap(), "-l", "/tmp/x.jsonl"], "");
    assert_eq!(out.code(), 1, "{}", out.dump());
    let line = out.stderr.lines().next().unwrap_or("");
    assert!(
        line.starts_with("mfiguard-textfile: ")
            && line.contains(missing.to_str().unwrap())
            && line.contains("does not exist"),
        "{}",
        out.dump()
    );
    assert!(
        !c.s.path("args").exists(),
        "the tool must not run when its metrics cannot be written"
    );
}

#[test]
fn the_collectors_counters_survive_log_rotation() {
    let c = Collector::new("prom-rotate");
    let log = c.s.path("audit.jsonl");
    let opts = ["-d", c.dir.to_str().unwrap(), "-l", log.to_str().unwrap()];
    let file = "mfiguard_MegaCli64.prom";
    let job = "MegaCli64";
    let run = |records: &str| {
        let out = c.run(&opts, records);
        assert_eq!(out.code(), 0, "{}", out.dump());
        c.samples(file)
    };

    let s = run(RECORDS);
    assert_eq!(
        (
            calls(&s, job, "pass"),
            calls(&s, job, "rewrite"),
            calls(&s, job, "reject")
        ),
        ("1".into(), "1".into(), "1".into())
    );
    assert_eq!(
        s["mfiguard_records_lost_total{job_name=\"MegaCli64\"}"],
        "2"
    );

    // A run that adds nothing counts nothing again.
    let s = run("");
    assert_eq!(calls(&s, job, "pass"), "1");

    // A record still being written (no newline yet) waits for the next run.
    let s = run("{\"record\":\"outcome\",\"seq\":4,\"verdict\":\"rej");
    assert_eq!(calls(&s, job, "reject"), "1");
    // It is completed, more is appended, then logrotate renames the log (create: a new empty
    // file); the next run's records go to the new file. Nothing is lost or counted twice.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| {
            std::io::Write::write_all(
                &mut f,
                b"ect\"}\n{\"record\":\"outcome\",\"seq\":5,\"verdict\":\"pass\",\"records_lost\":1}\n",
            )
        })
        .unwrap();
    std::fs::rename(&log, c.s.path("audit.jsonl.1")).unwrap();
    std::fs::write(&log, "").unwrap();
    let s = run("{\"record\":\"outcome\",\"seq\":1,\"verdict\":\"reject\"}\n");
    assert_eq!(calls(&s, job, "reject"), "3", "{s:?}");
    assert_eq!(calls(&s, job, "pass"), "2", "{s:?}");
    assert_eq!(calls(&s, job, "rewrite"), "1", "{s:?}");
    assert_eq!(
        s["mfiguard_records_lost_total{job_name=\"MegaCli64\"}"],
        "3"
    );

    // copytruncate instead: the same file, emptied.
    std::fs::write(&log, "").unwrap();
    let s = run("{\"record\":\"outcome\",\"seq\":2,\"verdict\":\"rewrite\"}\n");
    assert_eq!(calls(&s, job, "rewrite"), "2", "{s:?}");
    assert_eq!(calls(&s, job, "reject"), "3", "{s:?}");
}

// ---- smartd ---------------------------------------------------------------------------------

#[test]
fn the_smartd_drop_in_runs_smartd_read_only_through_the_wrapper() {
    let text =
        std::fs::read_to_string(integration("systemd/smartd.service.d/mfiguard.conf")).unwrap();
    let body: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    // A drop-in must clear the unit's ExecStart= before it sets its own; under the supervisor
    // smartd is mfiguard-run's child, so its readiness message needs NotifyAccess=all.
    assert_eq!(body[0], "[Service]", "{body:?}");
    let reset = body.iter().position(|l| *l == "ExecStart=");
    let first_set = body
        .iter()
        .position(|l| l.starts_with("ExecStart=") && *l != "ExecStart=");
    assert!(
        matches!((reset, first_set), (Some(r), Some(f)) if r < f),
        "{body:?}"
    );
    assert!(body.contains(&"NotifyAccess=all"), "{body:?}");
    let exec: Vec<&str> = body
        .iter()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .collect();
    assert_eq!(exec.len(), 2, "{exec:?}");
    assert!(
        exec[1].starts_with("/usr/bin/mfiguard-run --mode readonly --log /var/log/mfiguard/")
            && exec[1].contains(" -- /usr/sbin/smartd -n "),
        "{}",
        exec[1]
    );

    // systemd reads it: a smartd.service with the drop-in next to it verifies.
    let have = Command::new("sh")
        .args(["-c", "command -v systemd-analyze >/dev/null"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!("note: systemd-analyze not installed: the drop-in was not verified");
        return;
    }
    let s = Scratch::new("smartd");
    let units = s.path("units");
    std::fs::create_dir_all(units.join("smartd.service.d")).unwrap();
    let smartd = s.path("smartd");
    write_exec(&smartd, "#!/bin/sh\nexit 0\n");
    std::fs::write(
        units.join("smartd.service"),
        format!(
            "[Unit]\nDescription=stand-in smartd\n\n[Service]\nType=notify\nExecStart={} -n\n",
            smartd.display()
        ),
    )
    .unwrap();
    let wrapper = fake_wrapper(&s);
    std::fs::write(
        units.join("smartd.service.d/mfiguard.conf"),
        text.replace("/usr/bin/mfiguard-run", wrapper.to_str().unwrap())
            .replace("/usr/sbin/smartd", smartd.to_str().unwrap()),
    )
    .unwrap();
    let out = run_scrubbed(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(units.join("smartd.service"))
            .env("SYSTEMD_LOG_LEVEL", "warning"),
    );
    let complaints: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("smartd"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify:\n{}",
        out.dump()
    );
}

// ---- the integrations ---------------------------------------------------------------------------

/// Replaces the installed paths in an integration file with this test's.
fn localize(text: &str, wrapper_path: &Path, tool: &Path, logdir: &Path) -> String {
    text.replace("/usr/bin/mfiguard-run", wrapper_path.to_str().unwrap())
        .replace("/opt/MegaRAID/MegaCli/MegaCli64", tool.to_str().unwrap())
        .replace("/var/log/mfiguard", logdir.to_str().unwrap())
}

fn fake_record(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|_| panic!("the fake MegaCli64 did not run ({})", p.display()))
}

#[test]
fn the_cron_line_runs_megacli_under_the_guard() {
    let s = Scratch::new("cron");
    let lib = stand_in(&s);
    let tool = fake_megacli(&s);
    let text = read(&integration("cron.d/mfiguard-megacli"));
    let jobs: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.contains('='))
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let fields: Vec<&str> = jobs[0].splitn(7, ' ').collect();
    assert_eq!(fields.len(), 7);
    for (f, max) in fields[..5].iter().zip([59, 23, 31, 12, 7]) {
        assert!(
            *f == "*" || f.parse::<u32>().is_ok_and(|n| n <= max) || f.starts_with("*/"),
            "schedule field {f:?}"
        );
    }
    assert_eq!(fields[5], "root", "/etc/cron.d lines name the user");
    let command = localize(fields[6], &wrapper(), &tool, &s.0);
    let record = s.path("record");
    let out = run(scrub(Command::new("sh").arg("-c").arg(&command))
        .env("MFIGUARD_LIB_DIR", &lib)
        .env("FAKE_RECORD", &record));
    assert_eq!(out.code(), 0, "{command}\n{}", out.dump());
    let rec = fake_record(&record);
    assert!(rec.contains("args: -AdpAllInfo -aALL -NoLog\n"), "{rec}");
    assert!(
        rec.contains(&format!("LD_PRELOAD={}/libmfiguard.so\n", lib.display())),
        "{rec}"
    );
    assert!(
        rec.contains(&format!("MFIGUARD_LOG={}/audit.jsonl\n", s.0.display())),
        "{rec}"
    );
    assert!(
        read(&s.path("adpallinfo.txt")).contains("Virtual Drive: 0"),
        "the snapshot file"
    );
}

#[test]
fn the_systemd_units_verify_and_run_megacli_under_the_guard() {
    let s = Scratch::new("systemd");
    let lib = stand_in(&s);
    let tool = fake_megacli(&s);
    let service = read(&integration("systemd/mfiguard-megacli.service"));
    let timer = read(&integration("systemd/mfiguard-megacli.timer"));
    assert!(timer.contains("\n[Timer]\n") && timer.contains("\nOnCalendar=hourly\n"));
    assert!(timer.contains("\nWantedBy=timers.target\n"));
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(
        exec.starts_with("/usr/bin/mfiguard-run ") && exec.contains(" -- /"),
        "{exec}"
    );
    assert!(
        !exec.contains(['"', '\'', '$', '%']),
        "ExecStart is split the same by systemd and sh"
    );

    let units = s.path("units");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("mfiguard-megacli.service"),
        localize(&service, &wrapper(), &tool, &s.0),
    )
    .unwrap();
    std::fs::write(units.join("mfiguard-megacli.timer"), &timer).unwrap();
    if have("systemd-analyze") {
        // `Documentation=man:mfiguard-run(1)` is checked with man(1): show it the page.
        let man1 = s.path("man/man1");
        std::fs::create_dir_all(&man1).unwrap();
        std::fs::copy(
            root().join("doc/mfiguard-run.1"),
            man1.join("mfiguard-run.1"),
        )
        .unwrap();
        let out = run(Command::new("systemd-analyze")
            .env("MANPATH", s.path("man"))
            .arg("verify")
            .arg(units.join("mfiguard-megacli.service"))
            .arg(units.join("mfiguard-megacli.timer"))
            .env("SYSTEMD_LOG_LEVEL", "warning"));
        let complaints: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("mfiguard-megacli"))
            .collect();
        assert!(
            complaints.is_empty(),
            "systemd-analyze verify:\n{}",
            out.dump()
        );
    } else {
        eprintln!("note: systemd-analyze not installed: the units were not verified");
    }
    let record = s.path("record");
    let out = run(scrub(
        Command::new("sh")
            .arg("-c")
            .arg(localize(exec, &wrapper(), &tool, &s.0)),
    )
    .current_dir(&s.0)
    .env("MFIGUARD_LIB_DIR", &lib)
    .env("FAKE_RECORD", &record));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout.contains("State               : Degraded"));
    let rec = fake_record(&record);
    assert!(
        rec.contains(&format!("LD_PRELOAD={}/libmfiguard.so\n", lib.display())),
        "{rec}"
    );
}

#[test]
fn the_nrpe_commands_and_check_mfiguard_report_the_guard() {
    let s = Scratch::new("nrpe");
    let lib = stand_in(&s);
    let cfg = read(&integration("nagios/mfiguard.cfg"));
    let commands: Vec<(&str, &str)> = cfg
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let rest = l
                .strip_prefix("command[")
                .unwrap_or_else(|| panic!("not an NRPE command: {l}"));
            let (name, cmd) = rest.split_once("]=").unwrap();
            (name, cmd)
        })
        .collect();
    assert_eq!(
        commands.iter().map(|c| c.0).collect::<Vec<_>>(),
        ["check_mfiguard", "check_megaraid"]
    );
    // sudo must start the wrapper, never the plugin.
    let megaraid = commands[1].1;
    assert!(
        megaraid.starts_with("/usr/bin/sudo -n /usr/bin/mfiguard-run --mode readonly -- /"),
        "{megaraid}"
    );
    // ... and exactly that command is allowed by the sudoers example.
    let sudoers = read(&integration("sudoers.d/mfiguard"));
    assert!(
        sudoers.contains(megaraid.trim_start_matches("/usr/bin/sudo -n ")),
        "{megaraid}"
    );

    let plugin = integration("nagios/check_mfiguard");
    let tool = fake_megacli(&s);
    let check = |lib_dir: &Path, wrapper_path: &Path| -> Out {
        run(scrub(Command::new(&plugin).arg(&tool))
            .env("MFIGUARD_RUN", wrapper_path)
            .env("MFIGUARD_LIB_DIR", lib_dir)
            .env("MFIGUARD_CONFIG", NO_CONFIG))
    };
    let out = check(&lib, &wrapper());
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(
        out.stdout
            .starts_with("MFIGUARD CRITICAL - intercepted: no (ENOTTY"),
        "{}",
        out.dump()
    );
    assert!(
        out.stdout.contains("\nresult: FAILED"),
        "long output: the self-test"
    );
    let out = check(&lib, &s.path("no-wrapper"));
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(
        out.stdout.starts_with("MFIGUARD UNKNOWN - "),
        "{}",
        out.dump()
    );
}

#[test]
fn check_mfiguard_is_ok_with_the_guard() {
    let s = Scratch::new("nrpe-real");
    let dir = guard_dir(&s);
    let tool = guarded_tool(&s);
    let out = run(
        scrub(Command::new(integration("nagios/check_mfiguard")).arg(&tool))
            .env("MFIGUARD_RUN", wrapper())
            .env("MFIGUARD_LIB_DIR", &dir)
            // Records this user can write: without a syslog daemon (/dev/log) they would be
            // lost, which the plugin reports as WARNING.
            .env("MFIGUARD_LOG", "stderr")
            .env("MFIGUARD_KERNEL_RELEASE", "3.2.0-4-amd64"),
    );
    assert_eq!(out.code(), 0, "{}", out.dump());
    let first = out.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("MFIGUARD OK - the guard loads and intercepts and can apply to "),
        "{first}"
    );
    assert!(
        first.ends_with("kernel lacks: flag fix, sense_off check, sgl_off bound"),
        "{first}"
    );
}

/// The NRPE plugin goes CRITICAL when runs would be refused (an invalid setting) or every
/// guarded call would fail (records that cannot be written, log_required on), and stays OK
/// with a warning when records would only be lost.
#[test]
fn check_mfiguard_is_critical_for_an_invalid_policy_with_the_guard() {
    let s = Scratch::new("nrpe-policy");
    let dir = guard_dir(&s);
    let tool = guarded_tool(&s);
    let conf = s.path("mfiguard.conf");
    let nodir = s.path("nodir/audit.jsonl");
    let check = |conf_text: &str, env: &[(&str, &str)]| -> Out {
        std::fs::write(&conf, conf_text).unwrap();
        let mut cmd = Command::new(integration("nagios/check_mfiguard"));
        scrub(&mut cmd)
            .arg(&tool)
            .env("MFIGUARD_RUN", wrapper())
            .env("MFIGUARD_LIB_DIR", &dir)
            .env("MFIGUARD_CONFIG", &conf)
            .env("MFIGUARD_KERNEL_RELEASE", "6.1.0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    let first = |out: &Out| out.stdout.lines().next().unwrap_or("").to_owned();

    let out = check("mode = readonly   # monitoring host\nlog = none\n", &[]);
    assert_eq!(out.code(), 0, "{}", out.dump());

    let out = check("mode = readonyl\nlog = none\n", &[]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert_eq!(
        first(&out),
        format!(
            "MFIGUARD CRITICAL - INVALID: MFIGUARD_MODE=\"readonyl\" (from {}:1): unknown mode; use readonly, enforce, audit or off",
            conf.display()
        )
    );
    let out = check(
        "log = none\n",
        &[("MFIGUARD_ALLOW", "sgl.bounds,sgl.bound")],
    );
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(
        first(&out).starts_with("MFIGUARD CRITICAL - INVALID: MFIGUARD_ALLOW="),
        "{}",
        out.dump()
    );

    let log_line = format!("log = {}\n", nodir.display());
    let out = check(&log_line, &[]);
    assert_eq!(out.code(), 1, "a lost record is a WARNING\n{}", out.dump());
    assert!(
        first(&out).starts_with("MFIGUARD WARNING - records: ")
            && first(&out).contains(" would be lost"),
        "{}",
        out.dump()
    );
    assert!(
        out.stdout.contains("\n  WARNING: records: "),
        "{}",
        out.dump()
    );
    let out = check(&format!("{log_line}log_required = yes\n"), &[]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(
        first(&out).starts_with("MFIGUARD CRITICAL - FAILED: records: "),
        "{}",
        out.dump()
    );
}

/// The wrapper's reading of the config file is the library's: for each file, the mode that
/// `--check` shows is the one the guard applies to the probe, and a `#` inside a path is
/// kept by both (the log is created under that name).
#[test]
fn the_wrapper_and_the_library_read_the_config_file_alike_with_the_guard() {
    let s = Scratch::new("conf-alike");
    let dir = guard_dir(&s);
    let conf = s.path("mfiguard.conf");
    let log = s.path("a#b.jsonl");
    for (text, mode, intercepted) in [
        ("mode = audit   # roll-out first\n", "audit", "no"),
        ("mode = \"off\"\t# quoted\n", "off", "no"),
        ("MFIGUARD_MODE = 'Audit'\n", "audit", "no"),
        (
            "mode = audit\nmode = enforce # audit later\n",
            "enforce",
            "yes",
        ),
        ("  # mode = audit\nmode = readonly\n", "readonly", "yes"),
    ] {
        let body = format!("{text}log = {}\naudit = all # every call\n", log.display());
        std::fs::write(&conf, &body).unwrap();
        let p = policy(
            wrap(&dir, &["--check"])
                .env("MFIGUARD_CONFIG", &conf)
                .env("MFIGUARD_DEVICE", "/dev/null"),
        );
        assert!(
            p.contains(&format!("\n  mode:  {mode} (from ")),
            "{body}\n{p}"
        );
        assert!(
            !p.contains("INVALID") && !p.contains("WARNING"),
            "{body}\n{p}"
        );
        let _ = std::fs::remove_file(&log);
        let out = run(wrap(&dir, &["--", target_probe().to_str().unwrap()])
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFIGUARD_CONFIG", &conf));
        assert!(
            out.stdout
                .starts_with(&format!("intercepted: {intercepted}")),
            "{body}\n{}",
            out.dump()
        );
        if mode == "off" {
            // Off records nothing.
            continue;
        }
        let records = std::fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("{body}: no record in {}: {e}", log.display()));
        assert!(
            !records.contains("\"record\":\"error\""),
            "the library could not use a line the wrapper accepted:\n{body}\n{records}"
        );
    }
}

#[test]
fn the_sudoers_example_keeps_wrapper_options_out_of_the_callers_reach() {
    let text = read(&integration("sudoers.d/mfiguard"));
    // Join continuation lines, then look at every command of the alias.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let alias = joined
        .lines()
        .find(|l| l.starts_with("Cmnd_Alias "))
        .expect("a Cmnd_Alias");
    let (_, cmds) = alias.split_once('=').unwrap();
    let cmds: Vec<&str> = cmds.split(',').map(str::trim).collect();
    assert!(cmds.len() >= 3, "{cmds:?}");
    for c in &cmds {
        assert!(
            c.starts_with("/usr/bin/mfiguard-run --mode readonly -- /"),
            "a caller could add wrapper options, or the mode is not read-only: {c}"
        );
        assert!(!c.contains('*'), "arguments are pinned: {c}");
    }
    assert!(joined.contains("\nnagios ALL=(root) NOPASSWD: MFIGUARD_MEGACLI_READ"));
    if have("visudo") {
        let out = run(Command::new("visudo")
            .arg("-cf")
            .arg(integration("sudoers.d/mfiguard")));
        assert_eq!(out.code(), 0, "visudo -cf:\n{}", out.dump());
    } else {
        eprintln!("note: visudo (sudo) not installed: syntax not checked by sudo itself");
    }
}

#[test]
fn logrotate_rotates_the_json_log_without_losing_a_line() {
    let s = Scratch::new("logrotate");
    let text = read(&integration("logrotate.d/mfiguard"));
    assert!(text.contains("/var/log/mfiguard/*.jsonl {"));
    for directive in [
        "create 0640 root adm",
        "delaycompress",
        "missingok",
        "notifempty",
    ] {
        assert!(text.contains(&format!("\t{directive}\n")), "{directive}");
    }
    assert!(
        !text.lines().any(|l| l.trim() == "copytruncate"),
        "copytruncate can lose records"
    );
    if !have("logrotate") {
        eprintln!("note: logrotate not installed: the file was not run");
        return;
    }
    let logdir = s.path("log");
    std::fs::create_dir_all(&logdir).unwrap();
    std::fs::set_permissions(&logdir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let mut conf = text.replace("/var/log/mfiguard", logdir.to_str().unwrap());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !read(Path::new("/etc/group")).contains("\nadm:") {
        conf = conf.replace("create 0640 root adm", "create 0640");
    }
    let conf_path = s.path("mfiguard.logrotate");
    std::fs::write(&conf_path, conf).unwrap();
    std::fs::set_permissions(&conf_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = logdir.join("audit.jsonl");
    let lines = "{\"seq\":1,\"verdict\":\"reject\"}\n{\"seq\":2,\"verdict\":\"pass\"}\n";
    std::fs::write(&log, lines).unwrap();
    let out = run(Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(s.path("state"))
        .arg(&conf_path));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(
        read(&logdir.join("audit.jsonl.1")),
        lines,
        "delaycompress keeps .1 plain"
    );
    let fresh = std::fs::metadata(&log).expect("create made a new log");
    assert_eq!(fresh.len(), 0);
    assert_eq!(fresh.permissions().mode() & 0o777, 0o640);
}

#[test]
fn the_textfile_collector_writes_valid_metrics() {
    let s = Scratch::new("prom");
    let lib = stand_in(&s);
    let tool = fake_megacli(&s);
    let outdir = s.path("textfile");
    std::fs::create_dir_all(&outdir).unwrap();
    let log = s.path("audit.jsonl");
    // Three calls: two refused (outcome only), one rewritten (a decision, then its outcome);
    // and a configuration error record.
    std::fs::write(
        &log,
        [
            "{\"record\":\"error\",\"key\":\"MFIGUARD_MODE\",\"value\":\"x\"}",
            "{\"record\":\"outcome\",\"seq\":1,\"verdict\":\"reject\"}",
            "{\"record\":\"decision\",\"seq\":2,\"verdict\":\"rewrite\",\"ret\":null}",
            "{\"record\": \"outcome\",\"seq\":2,\"verdict\": \"rewrite\",\"ret\":0}",
            "{\"record\":\"outcome\",\"seq\":3,\"verdict\":\"reject\"}",
            "",
        ]
        .join("\n"),
    )
    .unwrap();
    let record = s.path("record");
    let out = run(scrub(&mut Command::new(integration(
        "prometheus/mfiguard-textfile",
    )))
    .args([
        "-d",
        outdir.to_str().unwrap(),
        "-l",
        log.to_str().unwrap(),
        "-s",
        s.path("state").to_str().unwrap(),
        "--",
    ])
    .arg(&tool)
    .args(["-LDInfo", "-Lall", "-aALL", "-NoLog"])
    .env("MFIGUARD_RUN", wrapper())
    .env("MFIGUARD_LIB_DIR", &lib)
    .env("FAKE_RECORD", &record)
    .env("FAKE_STATUS", "4"));
    assert_eq!(
        out.code(),
        4,
        "the collector passes the tool's status on\n{}",
        out.dump()
    );
    let rec = fake_record(&record);
    assert!(
        rec.contains(&format!("LD_PRELOAD={}/libmfiguard.so\n", lib.display())),
        "{rec}"
    );
    let names: Vec<_> = std::fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["mfiguard_MegaCli64.prom"],
        "one file for the job, no temporary file left behind"
    );
    let prom = read(&outdir.join("mfiguard_MegaCli64.prom"));
    let mut typed = BTreeSet::new();
    let mut samples = std::collections::BTreeMap::new();
    for line in prom.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            typed.insert(name.to_owned());
        } else if line.starts_with("# HELP ") {
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit()),
                "metric name {name:?}"
            );
            if let Some(labels) = series.strip_prefix(name) {
                assert!(
                    labels.is_empty() || (labels.starts_with('{') && labels.ends_with("\"}")),
                    "{line}"
                );
            }
            assert!(typed.contains(name), "{name} has no # TYPE before it");
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("value of {line}"));
            samples.insert(series.to_owned(), value.to_owned());
        }
    }
    let job = "job_name=\"MegaCli64\"";
    assert_eq!(
        samples[&format!("mfiguard_guard_ok{{{job}}}")],
        "0",
        "the stand-in library does not intercept"
    );
    assert_eq!(
        samples[&format!("mfiguard_tool_exit_status{{{job},tool=\"MegaCli64\"}}")],
        "4"
    );
    // Calls, not lines: the rewritten call's decision record is not counted again.
    let calls =
        |v: &str| samples[&format!("mfiguard_calls_total{{{job},verdict=\"{v}\"}}")].clone();
    assert_eq!(calls("reject"), "2");
    assert_eq!(calls("rewrite"), "1");
    assert_eq!(calls("pass"), "0");
    assert!(
        prom.contains("# TYPE mfiguard_calls_total counter\n") && prom.contains("outcome record"),
        "{prom}"
    );
    assert_eq!(
        samples[&format!("megaraid_virtual_drives{{{job},state=\"Optimal\"}}")],
        "2"
    );
    assert_eq!(
        samples[&format!("megaraid_virtual_drives{{{job},state=\"Degraded\"}}")],
        "1"
    );
    assert!(samples.contains_key(&format!(
        "mfiguard_tool_duration_seconds{{{job},tool=\"MegaCli64\"}}"
    )));
}

#[test]
fn the_textfile_collector_sees_the_guard_with_the_guard() {
    let s = Scratch::new("prom-real");
    let dir = guard_dir(&s);
    let tool = guarded_tool(&s);
    let outdir = s.path("textfile");
    std::fs::create_dir_all(&outdir).unwrap();
    let out = run(scrub(&mut Command::new(integration(
        "prometheus/mfiguard-textfile",
    )))
    .args([
        "-d",
        outdir.to_str().unwrap(),
        "-l",
        s.path("audit.jsonl").to_str().unwrap(),
        "-s",
        s.path("state").to_str().unwrap(),
        "-j",
        "guarded",
        "--",
    ])
    .arg(&tool)
    .env("MFIGUARD_RUN", wrapper())
    .env("MFIGUARD_LIB_DIR", &dir)
    .env("MFIGUARD_DEVICE", "/dev/null"));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(read(&outdir.join("mfiguard_guarded.prom"))
        .contains("\nmfiguard_guard_ok{job_name=\"guarded\"} 1\n"));
}

#[test]
fn the_path_shim_puts_the_guard_in_front_of_scripts_that_call_megacli() {
    let s = Scratch::new("shim");
    let lib = stand_in(&s);
    let tool = fake_megacli(&s);
    let shims = s.path("shims");
    std::fs::create_dir_all(&shims).unwrap();
    let shim_text = read(&integration("path-shim/MegaCli64"));
    assert!(shim_text.contains(
        "exec /usr/bin/mfiguard-run --mode readonly -- /opt/MegaRAID/MegaCli/MegaCli64 \"$@\""
    ));
    write_exec(
        &shims.join("MegaCli64"),
        &localize(&shim_text, &wrapper(), &tool, &s.0),
    );
    // A monitoring script that knows nothing about the guard.
    let monitor = s.path("monitor.sh");
    write_exec(
        &monitor,
        "#!/bin/sh\nMegaCli64 -LDInfo -Lall -aALL -NoLog | grep -c Optimal\n",
    );
    let record = s.path("record");
    let out = run(scrub(&mut Command::new(&monitor))
        .env("PATH", format!("{}:/usr/bin:/bin", shims.display()))
        .env("MFIGUARD_LIB_DIR", &lib)
        .env("FAKE_RECORD", &record));
    assert_eq!(out.stdout, "2\n", "{}", out.dump());
    let rec = fake_record(&record);
    assert!(rec.contains("args: -LDInfo -Lall -aALL -NoLog\n"), "{rec}");
    assert!(
        rec.contains(&format!("LD_PRELOAD={}/libmfiguard.so\n", lib.display())),
        "{rec}"
    );
}

#[test]
fn bash_completes_options_values_rule_ids_and_the_tool() {
    let file = integration("bash-completion/mfiguard-run");
    let complete = |words: &[&str]| -> Vec<String> {
        let script = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; _mfiguard_run; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            words.len() - 1
        );
        let out = run(Command::new("bash").arg("-c").arg(script));
        assert_eq!(out.code(), 0, "{words:?}\n{}", out.dump());
        out.stdout
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        complete(&["mfiguard-run", "--mode", ""]),
        ["enforce", "audit", "off", "readonly"]
    );
    assert_eq!(
        complete(&["mfiguard-run", "--log", "s"]),
        ["syslog", "stderr"]
    );
    assert_eq!(
        complete(&["mfiguard-run", "--allow", "sgl.bounds,sense.length-"]),
        ["sgl.bounds,sense.length-mismatch"]
    );
    assert_eq!(complete(&["mfiguard-run", "--req"]), ["--require-guard"]);
    assert!(
        complete(&["mfiguard-run", "--mode", "audit", "--", "das"]).contains(&"dash".to_owned())
    );
    assert!(complete(&["mfiguard-run", "--mode", "audit", "dash"]).contains(&"dash".to_owned()));
    assert!(complete(&["mfiguard-run", "--check", "dash"]).contains(&"dash".to_owned()));
}
