//! Monitoring a host: `mfiguard-run --report`, `--check --json`, the collector (`--collect`:
//! its status file and its Prometheus metrics) and the Nagios plugin, over records the real
//! guard wrote for a client whose calls the simulator saw (or did not); the plugin run as an
//! unprivileged user; the scripts and units of examples/integrations/ that feed them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::wrapper::{integration, write_exec};
use common::{as_nobody, client, guard_lib, have, wrapper_bin, Guard, Out, Scratch};
use serde_json::Value;

/// `cmd` run to its end with nothing on its standard input.
fn run(cmd: &mut Command) -> Out {
    common::run(cmd.stdin(Stdio::null()))
}

/// The wrapper's library directory: the 64-bit guard and probe beside it. The tests' guard
/// when it is the host's; with a 32-bit guard under test (`MFIGUARD_TEST_TARGET`), the host's
/// build (the records the clients write come from the guard under test either way).
fn lib_dir() -> &'static Path {
    static D: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        if common::cross_target().is_none() {
            return guard_lib().parent().unwrap().to_path_buf();
        }
        common::try_cargo_build(None, &["-p", "mfiguard-preload", "--lib"]).unwrap();
        common::try_cargo_build(None, &["-p", "mfiguard", "--bin", "mfiguard-probe"]).unwrap()
    })
}

/// `mfiguard-run ARGS` with the build tree's library, no site config, nothing inherited.
fn wrapper(args: &[&str]) -> Command {
    let mut cmd = Command::new(wrapper_bin());
    scrub(&mut cmd)
        .env("MFIGUARD_LIB_DIR", lib_dir())
        .args(args);
    cmd
}

fn scrub(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MFIGUARD_") || k.starts_with("MFISIM_") || k == "SUDO_USER" {
            cmd.env_remove(&k);
        }
    }
    cmd.env("MFIGUARD_CONFIG", "/dev/null")
}

fn outcomes(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"record\":\"outcome\""))
        .count()
}

/// Three guarded calls into `log`, each checked against what reached the simulated driver:
/// an out-of-frame `sgl_off` in audit mode (let through: the simulator sees it; "would be
/// refused"), a configuration clear in readonly by a sudo user "nagios" (refused: the simulator
/// sees nothing), a controller-info read in enforce (passes). Every call is recorded
/// (`MFIGUARD_AUDIT=all`): audit mode and the read write a decision and an outcome each.
fn three_calls(log: &Path) {
    let l = log.to_str().unwrap();
    let r = client(&["sgl-off", "0x40000"])
        .guard(Guard::Audit)
        .env("MFIGUARD_LOG", l)
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_eq!(r.sim.len(), 1, "audit lets it through\n{}", r.dump());
    let r = client(&["dcmd", "0x04030000", "none", "0"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_MODE", "readonly")
        .env("MFIGUARD_LOG", l)
        .env("MFIGUARD_AUDIT", "all")
        .env("SUDO_USER", "nagios")
        .run();
    assert_eq!(r.sim.len(), 0, "readonly refuses it\n{}", r.dump());
    let r = client(&["ctrl-info"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", l)
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_eq!(r.sim.len(), 1, "{}", r.dump());
}

/// `mfiguard-run --report --json EXTRA... --log LOG`, which must succeed.
fn report_json(log: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--report", "--json"];
    args.extend_from_slice(extra);
    args.extend(["--log", log.to_str().unwrap()]);
    let out = run(&mut wrapper(&args));
    assert_eq!(out.code(), 0, "{}", out.dump());
    out.json()
}

/// A scratch directory with a log of `three_calls`, and the log's text.
fn logged(tag: &str) -> (Scratch, PathBuf, String) {
    let s = Scratch::new(tag);
    let log = s.path("audit.jsonl");
    three_calls(&log);
    let text = std::fs::read_to_string(&log).unwrap();
    (s, log, text)
}

fn refusal<'a>(report: &'a Value, rule: &str, mode: &str) -> Option<&'a Value> {
    report["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule && r["mode"] == mode)
}

#[test]
fn the_report_counts_each_call_once_across_rotated_logs() {
    let (s, log, text) = logged("report");
    let records = text.lines().count();
    assert_eq!(outcomes(&log), 3);
    assert_eq!(
        records, 5,
        "two decisions (audit, the read) and three outcomes\n{text}"
    );

    let r = report_json(&log, &[]);
    assert_eq!(r["report_version"], 1);
    assert_eq!(r["records"], 5);
    assert_eq!(r["calls"]["total"], 3, "each call once: {r:#}");
    assert_eq!(r["calls"]["by_verdict"]["reject"], 2);
    assert_eq!(r["calls"]["by_verdict"]["pass"], 1);
    assert_eq!(r["refused"], 1);
    assert_eq!(r["would_refuse_in_audit"], 1);
    let ro = refusal(&r, "readonly.dcmd", "readonly").expect("the readonly refusal");
    assert_eq!(ro["account"], "nagios");
    assert_eq!(ro["enforced"], true);
    assert!(
        ro["tool"].as_str().unwrap().ends_with("/mfi_client"),
        "{ro}"
    );
    let au = refusal(&r, "sgl.bounds", "audit").expect("the audit preview");
    assert_eq!(au["enforced"], false);
    assert_eq!(au["account"], "root");

    // logrotate: the log renamed to .1, an older week compressed to .2.gz, new records in a
    // new file: all three are read, in order, each call once.
    std::fs::rename(&log, s.path("audit.jsonl.1")).unwrap();
    let gz = Command::new("sh")
        .arg("-c")
        .arg("gzip -c audit.jsonl.1 > audit.jsonl.2.gz && touch -d '30 days ago' audit.jsonl.2.gz")
        .current_dir(&s.0)
        .status()
        .unwrap();
    assert!(gz.success());
    three_calls(&log);
    let r = report_json(&log, &[]);
    assert_eq!(r["calls"]["total"], 9, "{r:#}");
    assert_eq!(r["sources"].as_array().unwrap().len(), 3, "{r:#}");
    assert_eq!(
        refusal(&r, "readonly.dcmd", "readonly").unwrap()["count"],
        3
    );
    // --since skips the file last written 30 days ago without reading it.
    let r = report_json(&log, &["--since", "7d"]);
    assert_eq!(r["calls"]["total"], 6, "{r:#}");
    // The text form names the same.
    let out = run(&mut wrapper(&["--report", "--log", log.to_str().unwrap()]));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout.contains("refused: 3\n"), "{}", out.stdout);
    assert!(
        out.stdout.lines().any(|l| l.contains("readonly.dcmd")
            && l.contains("nagios")
            && l.trim_start().starts_with('3')),
        "{}",
        out.stdout
    );
    // Bad input is refused clearly.
    let out = run(&mut wrapper(&[
        "--report",
        "--since",
        "7y",
        "--log",
        log.to_str().unwrap(),
    ]));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert!(out.stderr.contains("--since: "), "{}", out.dump());
    let out = run(&mut wrapper(&[
        "--report",
        "--log",
        s.path("none.jsonl").to_str().unwrap(),
    ]));
    assert_eq!(out.code(), 125, "{}", out.dump());
    let out = run(&mut wrapper(&["--json", "--", "/bin/true"]));
    assert_eq!(out.code(), 125, "{}", out.dump());
    // --collect writes files: never because a word was taken for a TOOL.
    let out = run(&mut wrapper(&["--collect", "x", "true"]));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert!(
        out.stderr.contains("--collect takes no TOOL"),
        "{}",
        out.dump()
    );
}

/// A record written by a later version (more fields, a schema version, a host name) counts
/// the same.
#[test]
fn the_report_ignores_fields_it_does_not_know() {
    let (_s, log, text) = logged("report-fields");
    let widened: String = text
        .lines()
        .map(|l| {
            format!(
                "{{\"schema\":2,\"host\":\"db1\",\"previews\":{{\"readonly\":{{\"verdict\":\"reject\"}}}},{}\n",
                &l[1..]
            )
        })
        .collect();
    std::fs::write(&log, widened + "a line that is not a record\n").unwrap();
    let r = report_json(&log, &[]);
    assert_eq!(r["calls"]["total"], 3, "{r:#}");
    assert_eq!(r["refused"], 1);
    assert_eq!(r["unparsed_lines"], 1);
}

fn collect(s: &Scratch, log: &Path) -> Out {
    run(&mut wrapper(&[
        "--collect",
        "--log",
        log.to_str().unwrap(),
        "--state-dir",
        s.path("state").to_str().unwrap(),
        "--textfile-dir",
        s.path("textfile").to_str().unwrap(),
    ]))
}

fn samples(prom: &Path) -> Vec<(String, f64)> {
    std::fs::read_to_string(prom)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn sample(all: &[(String, f64)], key: &str) -> f64 {
    all.iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("{key} not in {all:?}"))
        .1
}

#[test]
fn the_collector_counts_across_rotation_and_every_metric_is_mfiguards() {
    let s = Scratch::new("collect");
    std::fs::create_dir_all(s.path("textfile")).unwrap();
    let log = s.path("audit.jsonl");
    three_calls(&log);
    let out = collect(&s, &log);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let prom = s.path("textfile/mfiguard.prom");
    let m = samples(&prom);
    for (k, _) in &m {
        assert!(
            k.starts_with("mfiguard_"),
            "{k}: every metric is mfiguard_'s"
        );
    }
    assert_eq!(sample(&m, "mfiguard_guard_ok"), 1.0);
    assert_eq!(
        sample(
            &m,
            "mfiguard_calls_total{mode=\"readonly\",verdict=\"reject\"}"
        ),
        1.0
    );
    let tool = m
        .iter()
        .find(|(k, _)| {
            k.starts_with(
                "mfiguard_refusals_total{rule=\"readonly.dcmd\",mode=\"readonly\",tool=\"",
            )
        })
        .expect("refusals by rule, mode and tool");
    assert!(tool.0.contains("/mfi_client\"}"), "{tool:?}");
    let audit_key = tool.0.replace(
        "rule=\"readonly.dcmd\",mode=\"readonly\"",
        "rule=\"sgl.bounds\",mode=\"audit\"",
    );
    assert_eq!(
        sample(&m, &audit_key),
        1.0,
        "audit mode's preview, labelled audit"
    );
    assert_eq!(sample(&m, "mfiguard_records_lost_total"), 0.0);
    if have("promtool") {
        let out = run(Command::new("sh")
            .arg("-c")
            .arg(format!("promtool check metrics < {}", prom.display())));
        assert_eq!(out.code(), 0, "promtool check metrics\n{}", out.dump());
    } else {
        eprintln!("note: promtool (prometheus) not installed: the metrics were not linted");
    }

    // Nothing new: nothing counted twice.
    assert_eq!(collect(&s, &log).code(), 0);
    let readonly = "mfiguard_calls_total{mode=\"readonly\",verdict=\"reject\"}";
    assert_eq!(sample(&samples(&prom), readonly), 1.0);
    // logrotate renames the log (delaycompress keeps it as .1) after more records went into
    // it; the next ones go to a new file: the counters go on, nothing lost, nothing twice.
    three_calls(&log);
    std::fs::rename(&log, s.path("audit.jsonl.1")).unwrap();
    three_calls(&log);
    assert_eq!(collect(&s, &log).code(), 0);
    let m = samples(&prom);
    assert_eq!(sample(&m, readonly), 3.0, "{m:?}");
    assert_eq!(sample(&m, &audit_key), 3.0);
    // The status file: what the plugin reads, world-readable; the state root's.
    let status_path = s.path("state/status.json");
    let mode = std::fs::metadata(&status_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);
    let state_mode = std::fs::metadata(s.path("state/collector.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(state_mode, 0o600);
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(&status_path).unwrap()).unwrap();
    assert_eq!(status["status_version"], 1);
    assert_eq!(status["totals"]["refused"], 3);
    assert_eq!(status["totals"]["would_refuse_in_audit"], 3);
    assert_eq!(status["check"]["ok"], true);
    assert_eq!(status["source_ok"], true);
}

#[test]
fn the_collector_says_when_it_cannot_read_the_records() {
    let s = Scratch::new("collect-fail");
    std::fs::create_dir_all(s.path("textfile")).unwrap();
    let dir = s.path("logs");
    std::fs::create_dir_all(&dir).unwrap();
    // A directory where the log should be.
    let log = dir.join("audit.jsonl");
    std::fs::create_dir_all(&log).unwrap();
    let out = collect(&s, &log);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stderr.contains("reading the records: "),
        "{}",
        out.dump()
    );
    let m = samples(&s.path("textfile/mfiguard.prom"));
    assert_eq!(sample(&m, "mfiguard_collector_source_ok"), 0.0);
}

/// check_mfiguard as NRPE runs it: another user, who can read neither the audit log (0600,
/// root's) nor write records; its answer comes from the status root's collector wrote.
#[test]
fn check_mfiguard_judges_the_root_written_status_as_an_unprivileged_user() {
    let s = Scratch::new("nagios");
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(s.path("textfile")).unwrap();
    let log = s.path("audit.jsonl");
    three_calls(&log);
    assert_eq!(collect(&s, &log).code(), 0);
    let status = s.path("state/status.json");
    let plugin = |args: &[&str]| -> Command {
        let mut cmd = Command::new(integration("nagios/check_mfiguard"));
        scrub(&mut cmd)
            .env("MFIGUARD_RUN", wrapper_bin())
            .arg("-s")
            .arg(&status)
            .args(args);
        cmd
    };
    let Some(mut c) = as_nobody(&plugin(&["-w", "0", "-c", "5", "--window", "1h"])) else {
        return;
    };
    // The old way fails for this user: the log is root's.
    let report = wrapper(&["--report", "--log", log.to_str().unwrap()]);
    let denied = run(&mut as_nobody(&report).unwrap());
    assert_eq!(denied.code(), 125, "{}", denied.dump());
    assert!(
        denied.stderr.contains("Permission denied"),
        "{}",
        denied.dump()
    );

    let out = run(&mut c);
    assert_eq!(out.code(), 1, "one refusal > 0: WARNING\n{}", out.dump());
    let first = out.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("MFIGUARD WARNING - 1 refusals in the last 1h (warning 0) | "),
        "{first}"
    );
    assert!(first.contains(" refusals=1;0;5;0; "), "{first}");
    assert!(first.contains(" rejects=2c "), "counters: {first}");
    let out = run(&mut as_nobody(&plugin(&["-w", "1", "-c", "5"])).unwrap());
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(
        out.stdout.starts_with("MFIGUARD OK - the guard works"),
        "{}",
        out.dump()
    );
    let out = run(&mut as_nobody(&plugin(&["-c", "0"])).unwrap());
    assert_eq!(out.code(), 2, "{}", out.dump());
    // Audit mode's previews count with --audit.
    let out = run(&mut as_nobody(&plugin(&["-w", "1", "--audit"])).unwrap());
    assert_eq!(out.code(), 1, "{}", out.dump());
    // A stale status (the collector stopped) is UNKNOWN; so is a missing one.
    std::thread::sleep(Duration::from_millis(2100));
    let out = run(&mut as_nobody(&plugin(&["--max-age", "1s"])).unwrap());
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(
        out.stdout.contains("the collector has stopped"),
        "{}",
        out.dump()
    );
    let mut missing = Command::new(integration("nagios/check_mfiguard"));
    scrub(&mut missing)
        .env("MFIGUARD_RUN", wrapper_bin())
        .args(["-s", "/nonexistent/status.json"]);
    let out = run(&mut as_nobody(&missing).unwrap());
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(
        out.stdout.starts_with("MFIGUARD UNKNOWN - cannot read"),
        "{}",
        out.dump()
    );
    // -t: a status that never ends (a FIFO nobody writes) gives UNKNOWN in time.
    let fifo = s.path("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut slow = Command::new(integration("nagios/check_mfiguard"));
    scrub(&mut slow)
        .env("MFIGUARD_RUN", wrapper_bin())
        .arg("-s")
        .arg(&fifo)
        .args(["-t", "1"]);
    let t0 = std::time::Instant::now();
    let out = run(&mut as_nobody(&slow).unwrap());
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(
        out.stdout.contains("no answer within 1 s"),
        "{}",
        out.dump()
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    // Bad options, --help and --version.
    for (args, code, start) in [
        (&["-w", "x"][..], 3, "MFIGUARD UNKNOWN - 'x' is not a range"),
        (&["-t", "0"][..], 3, "MFIGUARD UNKNOWN - -t: "),
        (&["--window", "2d"][..], 3, "MFIGUARD UNKNOWN - --window: "),
        (&["--bogus"][..], 3, "MFIGUARD UNKNOWN - unknown option"),
        (
            &["--help"][..],
            3,
            "Usage: check_mfiguard [-w RANGE] [-c RANGE]",
        ),
        (&["-V"][..], 3, "check_mfiguard "),
    ] {
        let out = run(&mut plugin(args));
        assert_eq!(out.code(), code, "{args:?}\n{}", out.dump());
        assert!(out.stdout.starts_with(start), "{args:?}\n{}", out.dump());
    }
}

/// The plugin goes CRITICAL when the self-test root's collector ran fails: an invalid setting.
#[test]
fn check_mfiguard_is_critical_when_the_policy_is_invalid() {
    let s = Scratch::new("nagios-invalid");
    let conf = s.path("mfiguard.conf");
    std::fs::write(&conf, "mode = readonyl\n").unwrap();
    let log = s.path("audit.jsonl");
    std::fs::write(&log, "").unwrap();
    let out = run(wrapper(&[
        "--collect",
        "--log",
        log.to_str().unwrap(),
        "--state-dir",
        s.path("state").to_str().unwrap(),
        "--textfile-dir",
        s.0.to_str().unwrap(),
    ])
    .env("MFIGUARD_CONFIG", &conf));
    assert_eq!(out.code(), 0, "{}", out.dump());
    let mut cmd = Command::new(integration("nagios/check_mfiguard"));
    scrub(&mut cmd)
        .env("MFIGUARD_RUN", wrapper_bin())
        .arg("-s")
        .arg(s.path("state/status.json"));
    let out = run(&mut cmd);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(
        out.stdout.starts_with(
            "MFIGUARD CRITICAL - the self-test fails: invalid setting: MFIGUARD_MODE=\"readonyl\""
        ),
        "{}",
        out.dump()
    );
}

#[test]
fn mfiguard_hostd_has_help() {
    let out = run(Command::new(common::hostd_bin()).arg("--help"));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(
        out.stdout.contains("Usage: mfiguard-hostd [OPTIONS]") && out.stdout.contains("--status"),
        "{}",
        out.dump()
    );
}

#[test]
fn check_json_is_the_self_tests_facts() {
    let out = run(&mut wrapper(&["--check", "--json"]));
    let j = out.json();
    assert_eq!(j["check_version"], 1);
    assert_eq!(j["ok"], out.code() == 0, "{}", out.dump());
    assert_eq!(j["libraries"]["64"]["installed"], true);
    assert_eq!(j["libraries"]["64"]["intercepted"], true, "{j:#}");
    assert_eq!(j["policy"]["mode"]["value"], "enforce");
    assert_eq!(j["policy"]["mode"]["from"], "default");
    for p in ["flag_fix", "sense_off_check", "sgl_off_bound"] {
        let v = j["kernel"]["protections"][p].as_str().unwrap();
        assert!(["present", "absent", "unknown"].contains(&v), "{p}: {v}");
    }
    assert!(j["hostd"]["state"].is_string());
    // The host-wide guard's object is mfiguard-hostd --status --json's (one reader, one shape).
    let status = run(Command::new(common::hostd_bin())
        .args(["--status", "--json"])
        .env("MFIGUARD_CONFIG", "/dev/null"));
    let mut st = status.json();
    let o = st.as_object_mut().unwrap();
    assert_eq!(o.remove("status_version"), Some(1.into()));
    assert!(o.remove("version").is_some());
    assert_eq!(j["hostd"], st, "{j:#}");
    for key in ["node", "driver", "daemons", "lock"] {
        assert!(j["hostd"].get(key).is_some(), "hostd.{key}");
    }
    assert!(j["hostd"]["lock"]["state"].is_string());
    // Its text twin agrees on the verdict.
    let text = run(&mut wrapper(&["--check"]));
    assert_eq!(text.code(), out.code());

    // A library that does not intercept, an invalid setting: not ok, and why.
    let s = Scratch::new("check-json");
    let conf = s.path("c.conf");
    std::fs::write(&conf, "mode = readonyl\n").unwrap();
    let out = run(wrapper(&["--check", "--json"]).env("MFIGUARD_CONFIG", &conf));
    assert_eq!(out.code(), 1, "{}", out.dump());
    let j = out.json();
    assert_eq!(j["ok"], false);
    let invalid = j["policy"]["invalid"].as_array().unwrap();
    assert!(
        invalid
            .iter()
            .any(|i| i.as_str().unwrap().contains("readonyl")),
        "{j:#}"
    );
    // With a tool: its kind and mechanism.
    let out = run(&mut wrapper(&[
        "--check",
        "--json",
        "--via",
        "preload",
        "/bin/true",
    ]));
    let j = out.json();
    assert_eq!(j["tool"]["path"], "/bin/true");
    assert_eq!(j["tool"]["kind"], "elf");
    assert_eq!(j["tool"]["mechanism"], "preload");
    assert_eq!(j["tool"]["ok"], true, "{j:#}");
}

/// A monitoring script that runs sudo itself, under the guard as a non-root user: the
/// supervisor sets no_new_privs, so sudo cannot gain root. `--check SCRIPT` says so, and a
/// run warns before the script starts.
#[test]
fn a_script_that_runs_sudo_is_named_before_it_fails() {
    let s = Scratch::new("sudo");
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = s.path("check_lsi_raid");
    std::fs::write(
        &script,
        "#!/bin/sh\n# needs sudo for storcli\nsudo -n /bin/true && echo 'sudo worked'\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let check = wrapper(&["--check", "--via", "supervise", script.to_str().unwrap()]);
    let Some(mut c) = as_nobody(&check) else {
        return;
    };
    let out = run(&mut c);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout
            .contains("    CANNOT: the script runs sudo (line 3: sudo -n /bin/true")
            && out.stdout.contains("no_new_privs")
            && out.stdout.contains("sudo mfiguard-run --mode readonly -- "),
        "{}",
        out.dump()
    );
    // As root the same script is fine under the supervisor (no privilege to gain).
    let out = run(&mut wrapper(&[
        "--check",
        "--json",
        "--via",
        "supervise",
        script.to_str().unwrap(),
    ]));
    assert!(
        out.json()["tool"]["privilege_problem"].is_null(),
        "{}",
        out.dump()
    );
    // Under the preload sudo drops LD_PRELOAD: what it starts is not guarded, even for root.
    let out = run(&mut wrapper(&[
        "--check",
        "--via",
        "preload",
        script.to_str().unwrap(),
    ]));
    assert!(
        out.stdout
            .contains("drops LD_PRELOAD, so what it starts is NOT guarded"),
        "{}",
        out.dump()
    );
    // The run warns first; with sudo installed, the script's sudo then fails as foretold.
    let run_it = wrapper(&[
        "--via",
        "supervise",
        "--log",
        "none",
        "--",
        script.to_str().unwrap(),
    ]);
    let out = run(&mut as_nobody(&run_it).unwrap());
    assert!(
        out.stderr
            .starts_with("mfiguard-run: warning: the script runs sudo (line 3"),
        "{}",
        out.dump()
    );
    assert!(!out.stdout.contains("sudo worked"), "{}", out.dump());
    if have("sudo") {
        assert!(
            out.stderr.contains("no new privileges")
                || out.stderr.contains("effective uid is not 0"),
            "sudo's own words under no_new_privs\n{}",
            out.dump()
        );
    }
}

// ---- the scripts and units that feed the monitoring --------------------------------------------

/// A script standing in for MegaCli64: records its arguments and LD_PRELOAD in
/// `$FAKE_RECORD`, prints -LDInfo-like output.
fn fake_megacli(s: &Scratch, name: &str) -> PathBuf {
    let p = s.path(name);
    write_exec(
        &p,
        "#!/bin/sh\n{ printf 'args:'; printf ' %s' \"$@\"; printf '\\nLD_PRELOAD=%s\\nMFIGUARD_RUN_TOOL=%s\\n' \"${LD_PRELOAD-}\" \"${MFIGUARD_RUN_TOOL-}\"; } > \"${FAKE_RECORD:-/dev/null}\"\nprintf 'Virtual Drive: 0\\nState               : Optimal\\nVirtual Drive: 1\\nState               : Degraded\\n'\n",
    );
    p
}

#[test]
fn find_raid_tool_and_the_snapshot_find_the_tool_and_write_a_file() {
    let s = Scratch::new("snapshot");
    let find = integration("libexec/find-raid-tool");
    let tool = fake_megacli(&s, "megacli");
    let out = run(Command::new(&find).env("MFIGUARD_RAID_TOOL", &tool));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(out.stdout, format!("megacli {}\n", tool.display()));
    let out = run(Command::new(&find).env("MFIGUARD_RAID_TOOL", s.path("none")));
    assert_eq!(out.code(), 1, "{}", out.dump());
    let out = run(Command::new(&find).args(["--name", "no-such-raid-tool-here"]));
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr
            .contains("no no-such-raid-tool-here found in /opt/MegaRAID/MegaCli "),
        "{}",
        out.dump()
    );

    let snap = s.path("lib/snapshot.txt");
    let record = s.path("record");
    let snapshot = |tool: &Path| {
        run(
            scrub(&mut Command::new(integration("libexec/mfiguard-snapshot")))
                .arg("-o")
                .arg(&snap)
                .env("MFIGUARD_RAID_TOOL", tool)
                .env("MFIGUARD_RUN", wrapper_bin())
                .env("MFIGUARD_LIB_DIR", lib_dir())
                .env("MFIGUARD_VIA", "preload")
                .env("MFIGUARD_LOG", "none")
                .env("FAKE_RECORD", &record),
        )
    };
    let out = snapshot(&tool);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(
        out.stdout, "",
        "the snapshot goes to its file, not to the journal"
    );
    let text = std::fs::read_to_string(&snap).unwrap();
    assert!(text.contains("State               : Degraded"), "{text}");
    assert_eq!(
        std::fs::metadata(&snap).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let rec = std::fs::read_to_string(&record).unwrap();
    assert!(rec.starts_with("args: -AdpAllInfo -aALL -NoLog\n"), "{rec}");
    assert!(
        rec.contains(&format!(
            "LD_PRELOAD={}/libmfiguard.so",
            lib_dir().display()
        )),
        "{rec}"
    );
    // The snapshot names itself as the program the run is for: the policy's
    // [tool /usr/libexec/mfiguard/mfiguard-snapshot] section gives it its mode.
    let me = std::fs::canonicalize(integration("libexec/mfiguard-snapshot")).unwrap();
    assert!(
        rec.contains(&format!("\nMFIGUARD_RUN_TOOL={}\n", me.display())),
        "{rec}"
    );
    // A StorCLI gets its own syntax.
    let storcli = fake_megacli(&s, "storcli64");
    let out = snapshot(&storcli);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(
        std::fs::read_to_string(&record).unwrap().lines().next(),
        Some("args: /call show all")
    );
}

#[test]
fn the_textfile_collector_names_its_metrics_mfiguard() {
    let s = Scratch::new("textfile");
    let dir = s.path("tf");
    std::fs::create_dir_all(&dir).unwrap();
    let tool = fake_megacli(&s, "MegaCli64");
    let out = run(scrub(&mut Command::new(integration(
        "prometheus/mfiguard-textfile",
    )))
    .arg("-d")
    .arg(&dir)
    .args(["-l", s.path("a.jsonl").to_str().unwrap(), "--"])
    .arg(&tool)
    .args(["-LDInfo", "-Lall", "-aALL"])
    .env("MFIGUARD_RUN", wrapper_bin())
    .env("MFIGUARD_LIB_DIR", lib_dir())
    .env("MFIGUARD_VIA", "preload"));
    assert_eq!(out.code(), 0, "{}", out.dump());
    let m = samples(&dir.join("mfiguard_MegaCli64.prom"));
    for (k, _) in &m {
        assert!(k.starts_with("mfiguard_"), "{k}");
    }
    assert_eq!(
        sample(
            &m,
            "mfiguard_megaraid_virtual_drives{job_name=\"MegaCli64\",state=\"Degraded\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "mfiguard_tool_exit_status{job_name=\"MegaCli64\",tool=\"MegaCli64\"}"
        ),
        0.0
    );
    if have("promtool") {
        let out = run(Command::new("sh").arg("-c").arg(format!(
            "promtool check metrics < {}",
            dir.join("mfiguard_MegaCli64.prom").display()
        )));
        assert_eq!(out.code(), 0, "{}", out.dump());
    }
}

#[test]
fn the_new_shell_scripts_pass_their_linters() {
    let scripts = [
        "libexec/find-raid-tool",
        "libexec/mfiguard-snapshot",
        "nagios/check_mfiguard",
        "prometheus/mfiguard-textfile",
        "path-shim/MegaCli64",
    ];
    for rel in scripts {
        let p = integration(rel);
        let st = Command::new("dash")
            .arg("-n")
            .arg(&p)
            .status()
            .expect("dash");
        assert!(st.success(), "dash -n {rel}");
        for (tool, args) in [
            ("shellcheck", &["-s", "sh"][..]),
            ("checkbashisms", &["-f"][..]),
        ] {
            if have(tool) {
                let out = run(Command::new(tool).args(args).arg(&p));
                assert_eq!(out.code(), 0, "{tool} {rel}\n{}", out.dump());
            } else {
                eprintln!("note: {tool} not installed");
            }
        }
    }
}

/// With `log = syslog` the records are the journal's: `--report` and `--collect` read them
/// with `journalctl -o json` (a stand-in here, which prints entries shaped as journald gives
/// the guard's fields and records how it was called): each call once, the refusing rule from
/// the line, and the collector goes on after its last cursor.
#[test]
fn the_journal_is_read_through_journalctl() {
    let s = Scratch::new("journal");
    let bin = s.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let entries = s.path("entries.json");
    let entry = |cursor: &str, record: &str, mode: &str, rules: &str, message: &str| {
        format!(
            r#"{{"__CURSOR":"{cursor}","__REALTIME_TIMESTAMP":"{}000000","SYSLOG_IDENTIFIER":"mfiguard","MFIGUARD_RECORD":"{record}","MFIGUARD_VERDICT":"reject","MFIGUARD_MODE":"{mode}","MFIGUARD_RULE":{rules},"MFIGUARD_EXE":"/usr/sbin/megacli","MFIGUARD_UID":"0","MFIGUARD_SUDO_USER":"nagios","MESSAGE":"{message}"}}"#,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        ) + "\n"
    };
    std::fs::write(
        &entries,
        entry(
            "c1",
            "decision",
            "audit",
            r#"["sgl.offset-unusual","sgl.bounds"]"#,
            "#1 decision reject; sgl.offset-unusual warn: a; sgl.bounds reject: b",
        ) + &entry(
            "c2",
            "outcome",
            "audit",
            r#"["sgl.offset-unusual","sgl.bounds"]"#,
            "#1 outcome reject; sgl.offset-unusual warn: a; sgl.bounds reject: b",
        ) + &entry(
            "c3",
            "outcome",
            "readonly",
            r#""readonly.dcmd""#,
            "#1 outcome reject; readonly.dcmd reject: c",
        ),
    )
    .unwrap();
    let calls = s.path("journalctl-calls");
    write_exec(
        &bin.join("journalctl"),
        &format!(
            "#!/bin/sh\necho \"$*\" >> {}\ncase \"$*\" in *--after-cursor=c3*) exit 0 ;; esac\ncat {}\n",
            calls.display(),
            entries.display()
        ),
    );
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = run(
        wrapper(&["--report", "--json", "--since", "1d", "--log", "syslog"]).env("PATH", &path),
    );
    assert_eq!(out.code(), 0, "{}", out.dump());
    let r = out.json();
    assert_eq!(r["calls"]["total"], 2, "{r:#}");
    assert_eq!(
        refusal(&r, "sgl.bounds", "audit").unwrap()["account"],
        "nagios"
    );
    assert_eq!(
        refusal(&r, "readonly.dcmd", "readonly").unwrap()["count"],
        1
    );
    let called = std::fs::read_to_string(&calls).unwrap();
    assert!(
        called.starts_with("-o json --no-pager -q SYSLOG_IDENTIFIER=mfiguard --since=@"),
        "{called}"
    );

    let collect = || {
        run(wrapper(&[
            "--collect",
            "--log",
            "syslog",
            "--state-dir",
            s.path("state").to_str().unwrap(),
            "--textfile-dir",
            s.0.to_str().unwrap(),
        ])
        .env("PATH", &path))
    };
    assert_eq!(collect().code(), 0);
    assert_eq!(collect().code(), 0, "the second run reads after the cursor");
    let called = std::fs::read_to_string(&calls).unwrap();
    assert!(
        called
            .lines()
            .last()
            .unwrap()
            .ends_with("--after-cursor=c3"),
        "{called}"
    );
    let m = samples(&s.path("mfiguard.prom"));
    assert_eq!(
        sample(
            &m,
            "mfiguard_calls_total{mode=\"readonly\",verdict=\"reject\"}"
        ),
        1.0,
        "{m:?}"
    );
}
