//! The monitoring integrations against their conventions, with a stand-in `mfiguard-run` that
//! prints a prepared self-test and appends prepared audit records (the end-to-end runs through
//! the real wrapper and guard are in `tests/wrapper.rs`):
//!
//! - `nagios/check_mfiguard`: the plugin guidelines (one first line with the status and its
//!   reason, never "see above"; OK/WARNING/CRITICAL/UNKNOWN as 0-3; perfdata counted from the
//!   audit log; `-t`; `--help`);
//! - `prometheus/mfiguard-textfile`: `_total` counters that survive log rotation, one file per
//!   job, read-only by default, exit 1 when the collector directory is missing;
//! - `systemd/smartd.service.d/mfiguard.conf`: smartd through `mfiguard-run --mode readonly`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::Scratch;

fn integration(rel: &str) -> PathBuf {
    common::root().join("examples/integrations").join(rel)
}

struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    fn first(&self) -> &str {
        self.stdout.lines().next().unwrap_or("")
    }
    fn dump(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn run(cmd: &mut Command) -> Out {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MFIGUARD_") || k.starts_with("FAKE_") {
            cmd.env_remove(&k);
        }
    }
    let (status, stdout, stderr) = common::run_with_timeout(
        cmd.env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        common::RUN_TIMEOUT,
    );
    Out {
        status,
        stdout,
        stderr,
    }
}

fn write_exec(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
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
        run(Command::new(integration("nagios/check_mfiguard"))
            .args(args)
            .env("MFIGUARD_RUN", &self.wrapper)
            .env("FAKE_CHECK", &out_file)
            .env("FAKE_CHECK_RC", rc.to_string()))
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
    let out = run(Command::new(integration("nagios/check_mfiguard"))
        .args(["-t", "1"])
        .env("MFIGUARD_RUN", &p.wrapper)
        .env("FAKE_CHECK", &out_file)
        .env("FAKE_CHECK_SLEEP", "30"));
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
    let out = run(Command::new(integration("nagios/check_mfiguard"))
        .env("MFIGUARD_RUN", p.s.path("no-such-wrapper")));
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
        let out = run(Command::new(integration("nagios/check_mfiguard")).arg(arg));
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
        run(Command::new(integration("prometheus/mfiguard-textfile"))
            .arg("-s")
            .arg(&self.state)
            .args(opts)
            .arg("--")
            .arg(&self.tool)
            .env("MFIGUARD_RUN", &self.wrapper)
            .env("FAKE_RECORDS", &rec)
            .env("FAKE_ARGS", self.s.path("args")))
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
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("smartd.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning"));
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
