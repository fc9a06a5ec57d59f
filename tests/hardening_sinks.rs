//! Sinks that fail, end to end: the documented policy (README.md, "When a sink fails").
//!
//! - By default the call always completes, exactly as it would with a working log: a log file
//!   that cannot be opened (its directory missing: ENOENT) or
//!   syslog with no `/dev/log` loses records, not calls. The first failure in the process is
//!   reported once on stderr; the lost records are counted in `records_lost` of the next record
//!   written once the sink works again.
//! - With `MFIGUARD_LOG_REQUIRED=1` a MegaRAID call whose record cannot be written fails closed
//!   with EIO without reaching the driver, and each refusal is reported on stderr; a call a rule
//!   refuses keeps the rule's errno; ioctls that are not the guard's business are untouched.
//!
//! - A log rotated by logrotate (the shipped configuration) while two processes write to it
//!   loses no record: each is whole, in the old file or the new one.
//!
//! (A failing sink reported once per forked process is in tests/hardening_processes.rs; the
//! logrotate configuration's own checks in tests/integrations.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::hardening::*;
use common::*;

use std::path::Path;
use std::process::Command;

/// Where the guard sends syslog datagrams (core/src/audit/sink/syslog.rs `SYSLOG_SOCKET`).
const SYSLOG_SOCKET: &str = "/dev/log";

/// The guard's own lines on stderr (`mfiguard[PID]: ...`).
fn guard_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("mfiguard["))
        .collect()
}

/// The one line a process writes about its first sink failure, without the pid.
fn first_failure(sink: &str, errno: &str, required: bool) -> String {
    format!(
        "cannot write audit records to {sink}: {errno}; further failures are counted in \
         records_lost{}",
        if required {
            "; MegaRAID calls fail with EIO (MFIGUARD_LOG_REQUIRED=1)"
        } else {
            ""
        }
    )
}

/// The line a refusal under `MFIGUARD_LOG_REQUIRED=1` writes, without the pid.
/// The guard's stderr after three calls refused because `sink` failed with ENOENT: the sink's
/// first failure, then one line per refused call.
fn assert_three_refused(run: &Run, sink: &str) {
    let mut expected = vec![first_failure(sink, "ENOENT", true)];
    expected.extend((1..=3).map(|s| refused_line(s, sink, "ENOENT")));
    assert_eq!(
        without_pid(&guard_lines(&run.stderr)),
        expected,
        "{}",
        run.dump()
    );
}

fn refused_line(seq: u64, sink: &str, errno: &str) -> String {
    format!(
        "#{seq} refused with EIO (guard.log-required): the audit record could not be written to \
         {sink} ({errno}) and MFIGUARD_LOG_REQUIRED=1"
    )
}

/// Strips `mfiguard[PID]: `, checking that every line names the client's own pid.
fn without_pid<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let pids: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once("]: ").unwrap().0)
        .collect();
    assert!(pids.windows(2).all(|w| w[0] == w[1]), "{lines:?}");
    lines
        .iter()
        .map(|l| l.split_once("]: ").unwrap().1)
        .collect()
}

/// `--repeat 3 ieee-dcmd`: three calls the guard rewrites (each recorded, decision and outcome).
const REWRITES: [&str; 3] = ["--repeat", "3", "ieee-dcmd"];

/// The calls completed exactly as with a working log, and each reached the driver rewritten.
fn assert_completed_as_with_a_log(run: &Run, reference: &Run) {
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(run.stdout, reference.stdout, "{}", run.dump());
    assert_eq!(run.sim_stable(), reference.sim_stable(), "{}", run.dump());
    assert_eq!(run.sim.len(), 3, "{}", run.dump());
    assert!(
        run.sim.iter().all(|r| text(r, "flags") == Some("0x0010")),
        "{}",
        run.dump()
    );
}

#[test]
fn a_log_that_cannot_be_opened_loses_records_not_calls() {
    let reference = client(&REWRITES).guard(Guard::Enforce).run();
    assert_eq!(reference.audit_calls().len(), 3, "{}", reference.dump());
    let dir = Scratch::new("unopenable");
    let missing = dir.path("no-such-dir/audit.jsonl");
    // A path under a regular file. (A path that is a directory is refused, its records sent to
    // stderr: tests/hardening_log_file.rs.)
    let under_file = dir.path("a-file/audit.jsonl");
    std::fs::write(dir.path("a-file"), "").unwrap();
    for (path, errno) in [(&missing, "ENOENT"), (&under_file, "ENOTDIR")] {
        let path = path.to_str().unwrap();
        let run = client(&REWRITES)
            .guard(Guard::Enforce)
            .env("MFIGUARD_LOG", path)
            .run();
        assert_completed_as_with_a_log(&run, &reference);
        // Six records lost (three calls, a decision and an outcome each), one line about it.
        assert_eq!(
            without_pid(&guard_lines(&run.stderr)),
            [first_failure(path, errno, false)],
            "{}",
            run.dump()
        );
    }
    assert!(!missing.exists());
}

#[test]
fn syslog_absent_loses_records_not_calls() {
    if Path::new(SYSLOG_SOCKET).exists() {
        eprintln!(
            "skipped: {} exists here, so syslog is not absent (this test needs a machine or \
             container without a syslog socket)",
            SYSLOG_SOCKET
        );
        return;
    }
    let reference = client(&REWRITES).guard(Guard::Enforce).run();
    let run = client(&REWRITES)
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", "syslog")
        .run();
    assert_completed_as_with_a_log(&run, &reference);
    assert_eq!(
        without_pid(&guard_lines(&run.stderr)),
        [first_failure("syslog", "ENOENT", false)],
        "{}",
        run.dump()
    );
    // And with MFIGUARD_LOG_REQUIRED=1: refused, each refusal reported.
    let run = client(&REWRITES)
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", "syslog")
        .env("MFIGUARD_LOG_REQUIRED", "1")
        .run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert!(
        run.stdout
            .starts_with("ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=5 (EIO)\ncalls=3 failed=3\n"),
        "{}",
        run.dump()
    );
    assert!(run.sim.is_empty(), "{}", run.dump());
    assert_three_refused(&run, "syslog");
}

#[test]
fn records_lost_while_the_log_directory_was_missing_are_counted_once_it_exists() {
    let dir = Scratch::new("lost");
    let logdir = dir.path("later");
    let log = logdir.join("audit.jsonl");
    let cmd = client(&["lines"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", log.to_str().unwrap())
        .command(&dir);
    let mut c = Interactive::spawn(cmd);
    // Three rewritten calls while the directory is missing: six records lost, the calls fine.
    for _ in 0..3 {
        assert_eq!(
            c.call("frame.addressing-flags"),
            "frame.addressing-flags ret=0 errno=0 (0) cmd_status=0x00"
        );
    }
    std::fs::create_dir(&logdir).unwrap();
    // The next record written says so, the one after it does not repeat it.
    assert_eq!(
        c.call("frame.addressing-flags"),
        "frame.addressing-flags ret=0 errno=0 (0) cmd_status=0x00"
    );
    assert_eq!(
        c.call("sgl.bounds"),
        "sgl.bounds ret=-1 errno=22 (EINVAL) cmd_status=0xff"
    );
    let (status, stderr) = c.finish();
    assert!(status.success(), "{status:?}\n{stderr}");
    let path = log.to_str().unwrap();
    assert_eq!(
        without_pid(&guard_lines(&stderr)),
        [first_failure(path, "ENOENT", false)],
        "{stderr}"
    );
    let records = parse_records(&std::fs::read_to_string(&log).unwrap(), "audit log");
    let seen: Vec<(String, u64, Option<i64>)> = records
        .iter()
        .map(|r| {
            (
                text(r, "record").unwrap().to_owned(),
                r["seq"].as_u64().unwrap(),
                int(r, "records_lost"),
            )
        })
        .collect();
    let o = |k: &str, s: u64, lost: Option<i64>| (k.to_owned(), s, lost);
    assert_eq!(
        seen,
        [
            o("decision", 4, Some(6)),
            o("outcome", 4, None),
            o("outcome", 5, None),
        ],
        "{records:?}"
    );
}

#[test]
fn log_required_fails_megaraid_calls_closed_and_leaves_other_ioctls_alone() {
    let dir = Scratch::new("required");
    let missing = dir.path("no-such-dir/audit.jsonl");
    let path = missing.to_str().unwrap();
    let required = |args: &[&str]| {
        client(args)
            .guard(Guard::Enforce)
            .env("MFIGUARD_LOG", path)
            .env("MFIGUARD_LOG_REQUIRED", "1")
    };

    // A call the guard records (a rewrite): refused with EIO, nothing reaches the driver, the
    // first failure and each refusal on stderr.
    let run = required(&REWRITES).run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert_eq!(
        run.stdout,
        "ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=5 (EIO)\ncalls=3 failed=3\npacket_changed=none\n",
        "{}",
        run.dump()
    );
    assert!(run.sim.is_empty(), "{}", run.dump());
    assert_three_refused(&run, path);

    // GET_AEN is always recorded: EIO too.
    let run = required(&["aen"]).run();
    assert_eq!(
        run.stdout,
        "ioctl=MEGASAS_IOC_GET_AEN ret=-1 errno=5 (EIO)\n",
        "{}",
        run.dump()
    );

    // Every call recorded (MFIGUARD_AUDIT=all): a clean call is refused as well.
    let run = required(&["ctrl-info"]).env("MFIGUARD_AUDIT", "all").run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert!(run.sim.is_empty(), "{}", run.dump());
    // The documented limit: under the default MFIGUARD_AUDIT=findings a clean call writes no
    // record, so it does not depend on the sink.
    let clean = client(&["ctrl-info"]).guard(Guard::Enforce).run();
    let run = required(&["ctrl-info"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(run.stdout, clean.stdout, "{}", run.dump());
    assert!(guard_lines(&run.stderr).is_empty(), "{}", run.dump());

    // A call a rule refuses keeps the rule's errno (its record is lost, and reported).
    let run = required(&["rule", "sgl.bounds"]).run();
    assert_eq!(
        run.stdout,
        "ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=22 (EINVAL)\nrule=sgl.bounds\npacket_changed=none\n",
        "{}",
        run.dump()
    );
    assert!(run.sim.is_empty(), "{}", run.dump());
    assert_eq!(
        without_pid(&guard_lines(&run.stderr)),
        [first_failure(path, "ENOENT", true)],
        "{}",
        run.dump()
    );

    // Audit mode too: the site asked for evidence of every recorded call.
    let run = required(&REWRITES).guard(Guard::Audit).run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert!(run.sim.is_empty(), "{}", run.dump());

    // Ioctls that are not the guard's business: exactly as without the guard, nothing said.
    let base = client(&["unrelated"]).run();
    let run = required(&["unrelated"]).env("MFIGUARD_AUDIT", "all").run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(run.stdout, base.stdout, "{}", run.dump());
    assert!(guard_lines(&run.stderr).is_empty(), "{}", run.dump());
    assert!(!missing.exists());
}

#[test]
fn log_required_calls_go_through_again_once_the_sink_works() {
    let dir = Scratch::new("required-recovers");
    let logdir = dir.path("later");
    let log = logdir.join("audit.jsonl");
    let cmd = client(&["lines"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", log.to_str().unwrap())
        .env("MFIGUARD_LOG_REQUIRED", "1")
        .command(&dir);
    let mut c = Interactive::spawn(cmd);
    assert_eq!(
        c.call("frame.addressing-flags"),
        "frame.addressing-flags ret=-1 errno=5 (EIO) cmd_status=0xff"
    );
    std::fs::create_dir(&logdir).unwrap();
    assert_eq!(
        c.call("frame.addressing-flags"),
        "frame.addressing-flags ret=0 errno=0 (0) cmd_status=0x00"
    );
    let (status, stderr) = c.finish();
    assert!(status.success(), "{status:?}\n{stderr}");
    let path = log.to_str().unwrap();
    assert_eq!(
        without_pid(&guard_lines(&stderr)),
        [
            first_failure(path, "ENOENT", true),
            refused_line(1, path, "ENOENT")
        ],
        "{stderr}"
    );
    // The refused call's decision and outcome records were both lost; the next call's
    // decision says so.
    let records = parse_records(&std::fs::read_to_string(&log).unwrap(), "audit log");
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(int(&records[0], "seq"), Some(2), "{records:?}");
    assert_eq!(int(&records[0], "records_lost"), Some(2), "{records:?}");
    assert_eq!(text(&records[1], "verdict"), Some("rewrite"), "{records:?}");
}

#[test]
fn a_failure_with_a_long_log_path_is_still_reported() {
    // A 1 KiB path under a missing directory: the report names it shortened, and keeps the
    // errno and the policy (it used to be dropped whole for not fitting its line).
    let mut path = String::from("/nonexistent");
    for _ in 0..5 {
        path.push('/');
        path.push_str(&"d".repeat(200));
    }
    path.push_str("/audit.jsonl");
    let shown = format!(
        "/nonexistent/{}...{}/audit.jsonl",
        "d".repeat(87),
        "d".repeat(88)
    );
    let run = client(&REWRITES)
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", &path)
        .run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(
        without_pid(&guard_lines(&run.stderr)),
        [first_failure(&shown, "ENOENT", false)],
        "{}",
        run.dump()
    );
    let run = client(&REWRITES)
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", &path)
        .env("MFIGUARD_LOG_REQUIRED", "1")
        .run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert_three_refused(&run, &shown);
}

#[test]
fn a_log_rotated_by_logrotate_while_processes_write_to_it_loses_no_record() {
    if Command::new("logrotate").arg("--version").output().is_err() {
        eprintln!("skipped: logrotate is not installed");
        return;
    }
    const BURST: u64 = 10_000;
    let s = Scratch::new("rotate");
    let logdir = s.path("log");
    std::fs::create_dir(&logdir).unwrap();
    let log = logdir.join("audit.jsonl");
    let log_s = log.to_str().unwrap().to_owned();
    // The shipped configuration, pointed at the scratch directory (owner: whoever runs this).
    let shipped =
        std::fs::read_to_string(root().join("examples/integrations/logrotate.d/mfiguard")).unwrap();
    assert!(shipped.contains("\tcreate 0640 root adm\n"));
    assert!(!shipped.lines().any(|l| l.trim() == "copytruncate"));
    let conf = shipped
        .replace("/var/log/mfiguard", logdir.to_str().unwrap())
        .replace("\tcreate 0640 root adm\n", "\tcreate 0640\n");
    let conf_path = s.path("mfiguard.logrotate");
    std::fs::write(&conf_path, conf).unwrap();

    // A burst of recorded calls in one process, and a client issuing calls one at a time in
    // another; the log is rotated between the latter's fifth and sixth call.
    let burst_dir = Scratch::new("burst");
    let mut burst = client(&[
        "--repeat",
        &BURST.to_string(),
        "rule",
        "frame.addressing-flags",
    ])
    .guard(Guard::Enforce)
    .env("MFIGUARD_LOG", &log_s)
    .command(&burst_dir);
    let burst = std::thread::spawn(move || {
        run_with_timeout(&mut burst, std::time::Duration::from_secs(300))
    });
    let mut c = Interactive::spawn(
        client(&["lines"])
            .guard(Guard::Enforce)
            .env("MFIGUARD_LOG", &log_s)
            .command(&s),
    );
    let ok = "frame.addressing-flags ret=0 errno=0 (0) cmd_status=0x00";
    for _ in 0..5 {
        assert_eq!(c.call("frame.addressing-flags"), ok);
    }
    // The burst has written too (a loaded machine may start it late): two writers before the
    // rotation.
    let writers = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.split("\"pid\":").nth(1))
            .filter_map(|r| r.split(',').next())
            .map(str::to_owned)
            .collect()
    };
    let started = std::time::Instant::now();
    while writers(&std::fs::read_to_string(&log).unwrap_or_default()).len() < 2
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let rotated = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(s.path("state"))
        .arg(&conf_path)
        .output()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(c.call("frame.addressing-flags"), ok);
    }
    let (status, stderr) = c.finish();
    assert!(status.success(), "{status:?}\n{stderr}");
    let (status, stdout, stderr) = burst.join().unwrap();
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("calls={BURST} failed=0")),
        "{stdout}"
    );
    // logrotate renames the log, then creates a fresh one. Should a record land in between, the
    // guard creates the file itself and logrotate sets it aside as `audit.jsonl-<date>.backup`
    // (and says so): still no record lost.
    let said = String::from_utf8_lossy(&rotated.stderr).into_owned();
    assert!(
        rotated.status.success() || said.contains("already exists, renaming"),
        "logrotate: {:?}\n{said}",
        rotated.status
    );

    // Every record, oldest file first: each whole, each call's records complete, seqs without
    // a gap in both processes.
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&logdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let rank = |p: &Path| {
        let n = p.file_name().unwrap().to_str().unwrap();
        match n {
            "audit.jsonl.1" => 0,
            "audit.jsonl" => 2,
            _ if n.ends_with(".backup") => 1,
            _ => panic!("unexpected file {n} in the log directory"),
        }
    };
    files.sort_by_key(|p| rank(p));
    assert_eq!(rank(&files[0]), 0, "no rotated log: {files:?}");
    assert_eq!(rank(files.last().unwrap()), 2, "no fresh log: {files:?}");
    let per_file: Vec<Vec<Value>> = files
        .iter()
        .map(|f| parse_records(&std::fs::read_to_string(f).unwrap(), "audit log"))
        .collect();
    let all: Vec<Value> = per_file.iter().flatten().cloned().collect();
    let calls = check_calls(&all);
    let mut counts: Vec<usize> = calls.values().map(|p| p.calls).collect();
    counts.sort_unstable();
    assert_eq!(counts, [10, BURST as usize], "calls per process");
    // The rotation really happened while both were writing: each has records on both sides.
    let pids = |recs: &[Value]| -> std::collections::BTreeSet<i64> {
        recs.iter().filter_map(|r| int(r, "pid")).collect()
    };
    let (old, new) = (pids(&per_file[0]), pids(per_file.last().unwrap()));
    assert_eq!(old.len(), 2, "both processes wrote before the rotation");
    assert_eq!(new, old, "both processes wrote after the rotation");
    eprintln!(
        "figures: {} records in {} files across the rotation",
        all.len(),
        files.len()
    );
}
