//! Processes: forked children using the descriptor their parent opened, exec chains, and what
//! each process does with the library's constructor and configuration.
//!
//! - Children forked without exec are guarded and recorded under their own pid, each counting
//!   its records from seq 1; a sink failure is reported once by each process.
//! - A forked child keeps the configuration its parent read (a changed `MFIGUARD_MODE` in the
//!   parent's environment does not reach it); a program exec'd with that environment reads it
//!   afresh. That is the documented policy (README.md, Configuration).
//! - A child forked while another thread is still reading the configuration (its opening
//!   slowed by the simulator's `MFISIM_SLOW_OPEN`) does not hang on its first guarded call.
//! - The wrapper -> `sh -c` -> client chain keeps the guard in every tool the shell runs, each
//!   with its own configuration, and the last one exec'd in place of the shell keeps the
//!   wrapper's pid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::hardening::*;
use common::*;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// `name=pid,pid,...` pairs from the client's `mfi_client: SCENARIO: ...` stderr line.
fn pids(stderr: &str, scenario: &str) -> BTreeMap<String, Vec<i64>> {
    let prefix = format!("mfi_client: {scenario}: ");
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no pid line in stderr:\n{stderr}"));
    fields(line)
        .into_iter()
        .map(|(k, v)| (k, v.split(',').map(|p| p.parse().unwrap()).collect()))
        .collect()
}

fn sim_by_pid(sim: &[Value]) -> BTreeMap<i64, Vec<&Value>> {
    let mut m: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for r in sim {
        m.entry(int(r, "pid").unwrap()).or_default().push(r);
    }
    m
}

#[test]
fn forked_children_are_guarded_and_recorded_under_their_own_pid() {
    const CHILDREN: usize = 6;
    const CALLS: usize = 20;
    let run = run_within(
        client(&["fork", &CHILDREN.to_string(), &CALLS.to_string()])
            .guard(Guard::Enforce)
            .env("MFIGUARD_AUDIT", "all"),
        LIMIT,
    );
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(
        run.stdout,
        format!(
            "children={CHILDREN} calls_each={CALLS} children_ok={CHILDREN} parent_calls=2 parent_ok=2\n"
        )
    );
    let p = pids(&run.stderr, "fork");
    let parent = p["parent"][0];
    let children = &p["children"];
    assert_eq!(children.len(), CHILDREN);

    // Each process's records under its own pid, seqs from 1 (check_calls checks 1..=N).
    let calls = check_calls(&run.audit);
    assert_eq!(calls.len(), CHILDREN + 1, "{:?}", calls.keys());
    assert_eq!(calls[&parent].calls, 2);
    assert_eq!(calls[&parent].verdicts.get("rewrite"), Some(&2));
    for c in children {
        let pc = &calls[c];
        assert_eq!(pc.calls, CALLS, "child {c}");
        assert_eq!(pc.verdicts.get("rewrite"), Some(&(CALLS / 2)), "child {c}");
        assert_eq!(pc.verdicts.get("reject"), Some(&(CALLS / 2)), "child {c}");
    }
    let exe = examples().client.to_str().unwrap();
    assert!(run.audit.iter().all(|r| text(r, "exe") == Some(exe)));

    // The kernel saw each child's rewritten calls, from that child, flags cleared.
    let sim = sim_by_pid(&run.sim);
    assert_eq!(sim[&parent].len(), 2);
    for c in children {
        assert_eq!(sim[c].len(), CALLS / 2, "child {c}");
    }
    for r in &run.sim {
        assert_eq!(dangerous(r), None, "{r}");
    }
}

#[test]
fn a_failing_sink_is_reported_once_by_each_process() {
    let run = run_within(
        client(&["fork", "3", "4"])
            .guard(Guard::Enforce)
            .env("MFIGUARD_LOG", "/dev/full"),
        LIMIT,
    );
    assert_eq!(run.code(), 0, "{}", run.dump());
    let p = pids(&run.stderr, "fork");
    let mut expected: Vec<i64> = p["children"].clone();
    expected.push(p["parent"][0]);
    expected.sort_unstable();
    let mut reported: Vec<i64> = run
        .stderr
        .lines()
        // /dev/full is refused as a device (its records go to stderr): still
        // one report per process.
        .filter(|l| {
            l.contains(
                "cannot write audit records to /dev/full: it is a character device, not a \
                 regular file",
            )
        })
        .map(|l| {
            l.strip_prefix("mfiguard[")
                .and_then(|r| r.split(']').next())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    reported.sort_unstable();
    assert_eq!(reported, expected, "{}", run.stderr);
}

#[test]
fn a_forked_child_keeps_its_parents_configuration_an_execd_program_reads_its_own() {
    for mode in ["audit", "off"] {
        let run = run_within(
            client(&["config-inherit", &format!("MFIGUARD_MODE={mode}")])
                .guard(Guard::Enforce)
                .env("MFIGUARD_AUDIT", "all"),
            LIMIT,
        );
        assert_eq!(run.code(), 0, "{}", run.dump());
        let p = pids(&run.stderr, "config-inherit");
        let (parent, forked, execd) = (p["parent"][0], p["fork"][0], p["exec"][0]);
        assert!(run.stdout.starts_with(
            "parent ret=0 errno=0 (0) cmd_status=0x00\nfork ret=0 errno=0 (0) cmd_status=0x00\n"
        ));
        assert!(run.stdout.ends_with("fork exit=0\nexec exit=0\n"));

        // Parent and forked child enforce (the child kept what the parent read): the driver
        // got their flags cleared. The exec'd program read MFIGUARD_MODE afresh.
        let sim = sim_by_pid(&run.sim);
        for pid in [parent, forked] {
            assert_eq!(sim[&pid].len(), 1);
            assert_eq!(text(sim[&pid][0], "flags"), Some("0x0010"), "{mode}");
        }
        assert_eq!(text(sim[&execd][0], "flags"), Some("0x0032"), "{mode}");

        let calls = check_calls(&run.audit);
        let mode_of = |pid: i64| text(&calls[&pid].by_seq[&1], "mode").map(str::to_owned);
        assert_eq!(mode_of(parent).as_deref(), Some("enforce"));
        assert_eq!(mode_of(forked).as_deref(), Some("enforce"));
        match mode {
            "audit" => {
                assert_eq!(mode_of(execd).as_deref(), Some("audit"));
                assert_eq!(calls[&execd].by_seq[&1]["enforced"], Value::Bool(false));
            }
            _ => assert!(!calls.contains_key(&execd), "off records nothing"),
        }
    }
}

#[test]
fn a_child_forked_while_the_configuration_is_being_read_does_not_hang() {
    let dir = Scratch::new("fork-load");
    let conf = dir.path("mfiguard.conf");
    std::fs::write(&conf, "mode = enforce\n").unwrap();
    // The loader thread's first call waits a second in opening the file (the simulator's
    // MFISIM_SLOW_OPEN: a FIFO no longer holds the guard up, it is refused at once), and so
    // does the child reading its own.
    let run = run_within(
        client(&["fork-during-load"])
            .guard(Guard::Enforce)
            .env("MFIGUARD_AUDIT", "all")
            .env("MFIGUARD_CONFIG", conf.to_str().unwrap())
            .env("MFISIM_SLOW_OPEN", &format!("{}:1000", conf.display())),
        LIMIT,
    );
    assert_eq!(
        run.stdout,
        "loader_blocked=1 thread ret=0 errno=0 (0) cmd_status=0x00\nchild exit=0\n",
        "a child forked during the configuration read must not wait for a thread it does not \
         have (exit=signal 14: it hung until alarm(10))\n{}",
        run.dump()
    );
    assert_eq!(run.code(), 0);
    // Two processes, one guarded call each, both rewritten on the way to the driver.
    let calls = check_calls(&run.audit);
    assert_eq!(calls.len(), 2, "{}", run.dump());
    assert!(calls
        .values()
        .all(|p| p.verdicts.get("rewrite") == Some(&1)));
    assert_eq!(run.sim.len(), 2);
    assert!(run.sim.iter().all(|r| text(r, "flags") == Some("0x0010")));
}

fn wrapper() -> PathBuf {
    common::wrapper_bin().to_path_buf()
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn an_exec_chain_wrapper_shell_tool_keeps_the_guard_in_every_tool() {
    let s = Scratch::new("chain");
    let conf = s.path("empty.conf");
    std::fs::write(&conf, "").unwrap();
    let log = s.path("audit.jsonl");
    let sim_rec = s.path("sim.jsonl");
    let c = format!(
        "{} --device /dev/null",
        sh_quote(examples().client.to_str().unwrap())
    );
    // Three tools: enforce, audit (the shell sets MFIGUARD_MODE for that one tool only), and
    // the last exec'd in place of the shell.
    let script = format!(
        "{c} rule frame.addressing-flags; MFIGUARD_MODE=audit {c} rule frame.addressing-flags; \
         exec {c} rule sgl.bounds"
    );
    let mut cmd = Command::new(wrapper());
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MFIGUARD_") || k.starts_with("MFISIM_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("LD_PRELOAD", &examples().sim)
        .env("MFIGUARD_LIB_DIR", guard_lib().parent().unwrap())
        .env("MFIGUARD_CONFIG", &conf)
        .env("MFIGUARD_DEVICE", "/dev/null")
        .env("MFISIM_RECORD", &sim_rec)
        .args([
            "--via",
            "preload",
            "--mode",
            "enforce",
            "--audit-all",
            "--log",
        ])
        .arg(&log)
        .args(["--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn the wrapper");
    let wrapper_pid = i64::from(child.id());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The last tool's status is the chain's: sgl.bounds is refused.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.ends_with("ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=22 (EINVAL)\nrule=sgl.bounds\npacket_changed=none\n"), "{stdout}");

    let records = parse_records(&std::fs::read_to_string(&log).unwrap(), "audit log");
    let calls = check_calls(&records);
    assert_eq!(calls.len(), 3, "one process per tool: {:?}", calls.keys());
    let by_mode = |mode: &str, verdict: &str| -> Vec<i64> {
        calls
            .iter()
            .filter(|(_, p)| {
                text(&p.by_seq[&1], "mode") == Some(mode)
                    && text(&p.by_seq[&1], "verdict") == Some(verdict)
            })
            .map(|(pid, _)| *pid)
            .collect()
    };
    let enforced = by_mode("enforce", "rewrite");
    let audited = by_mode("audit", "rewrite");
    let refused = by_mode("enforce", "reject");
    assert_eq!((enforced.len(), audited.len(), refused.len()), (1, 1, 1));
    assert_eq!(
        refused[0], wrapper_pid,
        "the tool exec'd in place of the shell keeps the wrapper's pid"
    );
    let exe = examples().client.to_str().unwrap();
    assert!(records.iter().all(|r| text(r, "exe") == Some(exe)));

    let sim = parse_lines(
        &std::fs::read_to_string(&sim_rec).unwrap_or_default(),
        "simulator record",
    );
    let sim = sim_by_pid(&sim);
    assert_eq!(sim.len(), 2, "the refused call never reached the driver");
    assert_eq!(text(sim[&enforced[0]][0], "flags"), Some("0x0010"));
    assert_eq!(text(sim[&audited[0]][0], "flags"), Some("0x0032"));
}
