//! Concurrent processes appending to one JSON log file produce only whole lines: each record is
//! one `write` on an `O_APPEND` descriptor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const PROCESSES: usize = 8;
const CALLS: usize = 250;

#[test]
fn concurrent_processes_write_only_whole_lines() {
    let dir = Scratch::new("log");
    let log = dir.path("shared.jsonl");
    let log_s = log.display().to_string();
    let n = CALLS.to_string();
    let handles: Vec<_> = (0..PROCESSES)
        .map(|i| {
            // Half rewrites (each logged), half clean calls logged because of MFIGUARD_AUDIT=all.
            let rule = if i % 2 == 0 {
                "frame.addressing-flags"
            } else {
                "pass"
            };
            let c = client(&["--repeat", &n, "rule", rule])
                .guard(Guard::Enforce)
                .env("MFIGUARD_AUDIT", "all")
                .env("MFIGUARD_LOG", &log_s);
            let own = Scratch::new("proc");
            let mut cmd = c.command(&own);
            std::thread::spawn(move || {
                let out = run_with_timeout(&mut cmd, Duration::from_secs(300));
                drop(own);
                out
            })
        })
        .collect();
    for h in handles {
        let (status, stdout, stderr) = h.join().unwrap();
        assert!(status.success(), "{status:?}\n{stdout}\n{stderr}");
        assert!(
            stdout.contains(&format!("calls={CALLS} failed=0")),
            "{stdout}"
        );
    }

    let text = std::fs::read_to_string(&log).expect("shared log");
    assert!(text.ends_with('\n'), "the log ends inside a line");
    // parse_lines fails on any line that is not one whole JSON object.
    let records = parse_records(&text, "shared log");
    // Each process's first record, and only that one, names the library's build.
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    for r in &records {
        let pid = int(r, "pid").expect("pid in every record");
        let build = r.get("build").and_then(|b| b.as_str());
        if seen.insert(pid) {
            let b = build.unwrap_or_else(|| panic!("pid {pid}'s first record names no build: {r}"));
            assert!(
                b.starts_with(concat!("mfiguard ", env!("CARGO_PKG_VERSION"))),
                "{b}"
            );
        } else {
            assert!(
                build.is_none(),
                "a later record of {pid} names the build: {r}"
            );
        }
    }
    let calls = merge_calls(&records);
    let mut per_pid: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for c in &calls {
        let pid = int(c, "pid").expect("pid in every record");
        per_pid
            .entry(pid)
            .or_default()
            .insert(format!("{}", c.get("seq").cloned().unwrap_or(Value::Null)));
        assert!(c.get("verdict").is_some(), "{c}");
        assert!(c.get("ret").is_some(), "{c}");
    }
    assert_eq!(per_pid.len(), PROCESSES, "records from every process");
    for (pid, seqs) in per_pid {
        assert_eq!(seqs.len(), CALLS, "process {pid}: one call record per call");
    }
}
