//! Policy by who and what, end to end: one config change moves a host from its preview to
//! read-only for the monitoring account and enforce for root, with no command line touched,
//! for the library and for `mfiguard-run` under sudo as another user; a command line may make
//! a run stricter, never weaker; `--check --config` and `--check --json` say what is wrong and
//! what applies; audit mode records what read-only would refuse and `--report` counts it; and a
//! log cut by killing each mechanism mid-run reads true. The oracle is the legacy-driver
//! simulator's record of what reached the (simulated) driver, besides the records, each
//! validated against the shipped schema.
//!
//! The monitoring account is `nobody` (uid 65534, on every Linux): `setpriv` runs the client as
//! it, and a temporary sudoers drop-in lets it run the wrapper as root through sudo. Root only;
//! skipped loudly elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::wrapper::write_exec;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `MR_DCMD_CFG_CLEAR`, which wipes the RAID configuration: passes enforce, read-only refuses.
const CFG_CLEAR: [&str; 4] = ["dcmd", "0x04030000", "none", "0"];

fn is_root() -> bool {
    own_uid() == 0
}

/// This test's real uid, from /proc.
fn own_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// Whether this test can run as another user; says why not.
fn can_switch_users() -> bool {
    if !is_root() {
        eprintln!("SKIPPED: not root: cannot run the client as another user");
        return false;
    }
    if !have("setpriv") {
        eprintln!("SKIPPED: setpriv (util-linux) not installed");
        return false;
    }
    true
}

/// A scratch directory the monitoring account can write its records into.
fn shared_scratch(tag: &str) -> Scratch {
    let s = Scratch::new(tag);
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
    s
}

/// Writes the policy file (root's, 0644: the guard reads it as any user).
fn policy_file(s: &Scratch, text: &str) -> PathBuf {
    let p = s.path("mfiguard.conf");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

/// What one run left: its exit, what reached the simulator, the guarded calls recorded.
struct Ran {
    out: Out,
    sim: Vec<Value>,
    calls: Vec<Value>,
}

impl Ran {
    fn read(out: Out, s: &Scratch) -> Ran {
        let text = |f: &str| std::fs::read_to_string(s.path(f)).unwrap_or_default();
        let sim = parse_lines(&text("sim.jsonl"), "simulator record");
        let calls = merge_calls(&parse_records(&text("audit.jsonl"), "audit log"));
        Ran { out, sim, calls }
    }

    fn dump(&self) -> String {
        format!(
            "{}\n--- simulator\n{:?}\n--- calls\n{:#?}",
            self.out.dump(),
            self.sim,
            self.calls
        )
    }

    /// The one call recorded.
    fn call(&self) -> &Value {
        assert_eq!(self.calls.len(), 1, "{}", self.dump());
        &self.calls[0]
    }

    /// Whether the configuration clear reached the (simulated) driver.
    fn reached_driver(&self) -> bool {
        self.sim
            .iter()
            .any(|r| text(r, "opcode") == Some("0x04030000"))
    }
}

/// CFG_CLEAR under the library, as root or as nobody, with the policy `conf`; its records in
/// `s`.
fn library_run(s: &Scratch, conf: &Path, nobody: bool) -> Ran {
    for f in ["audit.jsonl", "sim.jsonl"] {
        let _ = std::fs::remove_file(s.path(f));
    }
    let cmd = client(&CFG_CLEAR)
        .guard(Guard::DefaultMode)
        .env("MFIGUARD_CONFIG", conf.to_str().unwrap())
        .command(s);
    let mut cmd = if nobody {
        as_nobody(&cmd).expect("setpriv")
    } else {
        cmd
    };
    Ran::read(run(&mut cmd), s)
}

/// The line a site's sudoers file would hold for the monitoring account, for this test: a
/// script that runs `mfiguard-run` with the arguments sudo passes, its policy file and, for the
/// oracle, the simulator in the supervisor's process. Removed when dropped.
struct SudoLine {
    file: PathBuf,
    script: PathBuf,
}

impl SudoLine {
    fn new(s: &Scratch, conf: &Path) -> Option<SudoLine> {
        if !have("sudo") || !Path::new("/etc/sudoers.d").is_dir() {
            eprintln!("SKIPPED part: sudo not installed: mfiguard-run not run through sudo");
            return None;
        }
        let script = s.path("sudo-line.sh");
        let body = format!(
            "#!/bin/sh\n# What sudo runs for the monitoring account: the wrapper, its arguments as given.\n\
             export MFIGUARD_CONFIG='{}' MFIGUARD_LOG='{}' LD_PRELOAD='{}' MFISIM_ONLY_IN=mfiguard-run MFISIM_RECORD='{}'\n\
             export MFIGUARD_LIB_DIR='{lib}' MFIGUARD_LIB32_DIR='{lib}'\n\
             exec '{}' \"$@\"\n",
            conf.display(),
            s.path("audit.jsonl").display(),
            host_sim().display(),
            s.path("sim.jsonl").display(),
            wrapper_bin().display(),
            lib = guard_lib().parent().unwrap().display(),
        );
        write_exec(&script, &body);
        let file = PathBuf::from(format!(
            "/etc/sudoers.d/mfiguard-test-{}-{}",
            std::process::id(),
            s.0.file_name().unwrap().to_string_lossy().len()
        ));
        std::fs::write(
            &file,
            format!("nobody ALL=(root) NOPASSWD: {}\n", script.display()),
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o440)).unwrap();
        let line = SudoLine { file, script };
        if have("visudo") {
            let out = run(Command::new("visudo").arg("-cf").arg(&line.file));
            assert_eq!(out.code(), 0, "visudo -cf:\n{}", out.dump());
        }
        Some(line)
    }

    /// `sudo SCRIPT ARGS` as nobody (sudo sets SUDO_USER=nobody, SUDO_UID=65534, and the
    /// process is root), or the script as root without sudo.
    fn run(&self, s: &Scratch, args: &[&str], nobody: bool) -> Ran {
        for f in ["audit.jsonl", "sim.jsonl"] {
            let _ = std::fs::remove_file(s.path(f));
        }
        let mut cmd = if nobody {
            let mut c = Command::new("sudo");
            c.arg("-n").arg(&self.script);
            as_nobody(&c).expect("setpriv")
        } else {
            let mut c = Command::new(&self.script);
            c.env_remove("SUDO_USER").env_remove("SUDO_UID");
            c
        };
        cmd.args(args).stdin(Stdio::null());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MFIGUARD_") {
                cmd.env_remove(&k);
            }
        }
        Ran::read(run(&mut cmd), s)
    }
}

impl Drop for SudoLine {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The arguments after the wrapper's: the client's configuration clear.
fn wrapped_cfg_clear(extra: &[&'static str]) -> Vec<&'static str> {
    let client = Box::leak(
        examples()
            .client
            .to_str()
            .unwrap()
            .to_string()
            .into_boxed_str(),
    );
    let mut a: Vec<&str> = extra.to_vec();
    a.extend(["--", client, "--device", "/dev/null"]);
    a.extend(CFG_CLEAR);
    a
}

/// The site's policy with the preview line, and the same without it: the one change.
const PREVIEW: &str = "preview = yes   # the roll-out: delete this line to enforce\n";

fn site(preview: bool) -> String {
    format!(
        "mode = enforce\naudit = all\ndevice = /dev/null\n{}\n[user nobody]\nmode = readonly\n",
        if preview { PREVIEW } else { "" }
    )
}

/// What the preview records: every call let through, its record naming the mode it would have
/// had and what read-only would do.
fn assert_previewed(r: &Ran, preview_of: &str) {
    assert_eq!(r.out.code(), 0, "{}", r.dump());
    assert!(r.reached_driver(), "{}", r.dump());
    let c = r.call();
    assert_eq!(text(c, "mode"), Some("audit"), "{}", r.dump());
    assert_eq!(text(c, "preview_of"), Some(preview_of), "{}", r.dump());
    assert_eq!(c["would"]["readonly"]["verdict"], "reject", "{}", r.dump());
    assert_eq!(
        c["would"]["readonly"]["findings"][0]["rule"],
        "readonly.dcmd"
    );
    assert_eq!(c["would"]["enforce"]["verdict"], "pass", "{}", r.dump());
}

fn assert_refused_readonly(r: &Ran) {
    assert_eq!(r.out.code(), 1, "{}", r.dump());
    assert!(
        !r.reached_driver(),
        "read-only let CFG_CLEAR through\n{}",
        r.dump()
    );
    let c = r.call();
    assert_eq!(text(c, "mode"), Some("readonly"), "{}", r.dump());
    assert!(c.get("preview_of").is_none(), "{}", r.dump());
    assert_eq!(text(c, "verdict"), Some("reject"));
    assert_eq!(text(c, "errno_name"), Some("EPERM"));
    assert!(finding(c, "readonly.dcmd").is_some(), "{}", r.dump());
}

fn assert_enforced_passed(r: &Ran) {
    assert_eq!(r.out.code(), 0, "{}", r.dump());
    assert!(r.reached_driver(), "{}", r.dump());
    let c = r.call();
    assert_eq!(text(c, "mode"), Some("enforce"), "{}", r.dump());
    assert!(c.get("preview_of").is_none() && c.get("would").is_none());
}

/// The roll-out the README describes: the policy written with `preview = yes`, a week of
/// records saying what it would do, then one line deleted. The library (a tool that loads it,
/// run as the monitoring account and as root) and `mfiguard-run` (under sudo as the monitoring
/// account, and as root) follow the same file; no command line changes.
#[test]
fn one_line_moves_the_host_to_readonly_for_the_monitoring_account_and_enforce_for_root() {
    if !can_switch_users() {
        return;
    }
    let s = shared_scratch("rollout");
    let conf = policy_file(&s, &site(true));
    let sudo = SudoLine::new(&s, &conf);
    let args = wrapped_cfg_clear(&[]);

    // The preview: nothing refused, each record says what the policy will do.
    assert_previewed(&library_run(&s, &conf, true), "readonly");
    assert_previewed(&library_run(&s, &conf, false), "enforce");
    if let Some(sudo) = &sudo {
        let r = sudo.run(&s, &args, true);
        assert_previewed(&r, "readonly");
        assert_eq!(text(r.call(), "guard"), Some("supervisor"), "{}", r.dump());
        assert_eq!(text(r.call(), "sudo_user"), Some("nobody"), "{}", r.dump());
        assert_eq!(int(r.call(), "uid"), Some(0));
        assert_previewed(&sudo.run(&s, &args, false), "enforce");
    }

    // The change: the preview line goes. Nothing else.
    let before = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, before.replace(PREVIEW, "")).unwrap();
    assert_eq!(
        before.lines().count() - std::fs::read_to_string(&conf).unwrap().lines().count(),
        1
    );
    assert_refused_readonly(&library_run(&s, &conf, true));
    assert_enforced_passed(&library_run(&s, &conf, false));
    if let Some(sudo) = &sudo {
        let r = sudo.run(&s, &args, true);
        assert_refused_readonly(&r);
        assert_eq!(text(r.call(), "sudo_user"), Some("nobody"));
        assert_enforced_passed(&sudo.run(&s, &args, false));
    }
}

/// A command line may make a run stricter than the policy, never weaker: the monitoring
/// account's environment cannot turn the library off, through sudo it cannot pass --mode off
/// (refused before the tool runs), root can ask for readonly; and where the policy gives root a lowest mode of off, root's one-off run in
/// mode off is taken while the monitoring account's (root too, through sudo) still is not.
#[test]
fn a_command_line_may_make_a_run_stricter_never_weaker() {
    if !can_switch_users() {
        return;
    }
    let s = shared_scratch("stricter");
    let conf = policy_file(
        &s,
        "mode = enforce\naudit = all\ndevice = /dev/null\n[user root]\nlowest_mode = off\n[user nobody]\nmode = readonly\n",
    );
    // The library: the monitoring account's environment asks for off; the policy's readonly is
    // used, and the refused request is recorded.
    for f in ["audit.jsonl", "sim.jsonl"] {
        let _ = std::fs::remove_file(s.path(f));
    }
    let cmd = client(&CFG_CLEAR)
        .guard(Guard::Off)
        .env("MFIGUARD_CONFIG", conf.to_str().unwrap())
        .command(&s);
    let out = run(&mut as_nobody(&cmd).expect("setpriv"));
    let text = |f: &str| std::fs::read_to_string(s.path(f)).unwrap_or_default();
    let records = parse_records(&text("audit.jsonl"), "audit log");
    assert_eq!(out.code(), 1, "{}\n{records:?}", out.dump());
    assert!(text("sim.jsonl").is_empty(), "CFG_CLEAR reached the driver");
    assert!(
        records
            .iter()
            .any(|r| text_field(r, "record") == Some("error")
                && text_field(r, "key") == Some("MFIGUARD_MODE")
                && text_field(r, "message").is_some_and(|m| m.contains("weaker than the policy"))),
        "{records:?}"
    );
    let Some(sudo) = SudoLine::new(&s, &conf) else {
        return;
    };
    let r = sudo.run(&s, &wrapped_cfg_clear(&["--mode", "off"]), true);
    assert_eq!(r.out.code(), 125, "{}", r.dump());
    assert!(
        r.out.stderr.contains("mfiguard-run: MFIGUARD_MODE=\"off\" (from --mode): --mode asks for mode off, weaker than the policy lets this caller choose (at least readonly"),
        "{}",
        r.dump()
    );
    assert!(r.sim.is_empty() && r.calls.is_empty(), "{}", r.dump());
    // Stricter: taken (root in readonly for one run).
    let r = sudo.run(&s, &wrapped_cfg_clear(&["--mode", "readonly"]), false);
    assert_refused_readonly_as_asked(&r);
    // root's one-off off: the tool runs (the library, preloaded, passes everything on: the
    // kernel answers the call on /dev/null with ENOTTY), nothing refused nor recorded.
    let r = sudo.run(&s, &wrapped_cfg_clear(&["--mode", "off"]), false);
    assert_eq!(r.out.code(), 1, "{}", r.dump());
    assert!(r.out.stdout.contains("ENOTTY"), "{}", r.dump());
    assert!(r.calls.is_empty(), "{}", r.dump());
}

/// root asked for readonly: refused like the policy's readonly.
/// A record's text field (`text` is shadowed where a closure reads files).
fn text_field<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    text(v, field)
}

fn assert_refused_readonly_as_asked(r: &Ran) {
    assert_eq!(r.out.code(), 1, "{}", r.dump());
    assert!(!r.reached_driver(), "{}", r.dump());
    let c = r.call();
    assert_eq!(text(c, "mode"), Some("readonly"), "{}", r.dump());
    assert_eq!(text(c, "errno_name"), Some("EPERM"), "{}", r.dump());
}

/// `--check --config FILE` names each mistake of the policy syntax by line, word and what is
/// accepted, and fails; `--check --json` gives the policy that applies (the sections, which
/// apply, the mode and why) and the errors with their lines.
#[test]
fn check_validates_the_policy_syntax_and_reports_it_as_json() {
    let s = Scratch::new("check-policy");
    let bad = s.path("bad.conf");
    std::fs::write(
        &bad,
        "mode = enforce\n\n[usr nagios]\nmode = readonly\n[user root]\nlog = stderr\n[tool storcli64]\nmode = readonyl\n",
    )
    .unwrap();
    let out = run(Command::new(wrapper_bin())
        .args(["--check", "--config", bad.to_str().unwrap()])
        .env_remove("MFIGUARD_MODE"));
    assert_eq!(out.code(), 1, "{}", out.dump());
    let b = bad.display();
    for line in [
        format!("  INVALID: {b}:3: \"[usr nagios]\": 'usr' is not a section kind; use user, tool or group"),
        format!("  INVALID: log=\"stderr\" (from {b}:6): 'log' applies to the whole host, not to [user root]: put it before the first section; a section takes mode, allow or lowest_mode"),
        format!("  INVALID: MFIGUARD_MODE=\"readonyl\" (from {b}:8): unknown mode; use readonly, enforce, audit or off"),
    ] {
        assert!(out.stdout.contains(&line), "{line}\n{}", out.dump());
    }
    assert!(
        out.stdout.contains("  runs are refused (exit 125)"),
        "{}",
        out.dump()
    );
    let out = run(Command::new(wrapper_bin()).args([
        "--check",
        "--json",
        "--config",
        bad.to_str().unwrap(),
    ]));
    assert_eq!(out.code(), 1);
    let j = out.json();
    let errors = j["policy"]["errors"].as_array().unwrap();
    let lines: Vec<i64> = errors.iter().filter_map(|e| e["line"].as_i64()).collect();
    assert_eq!(lines, [3, 6, 8], "{j:#}");
    assert_eq!(errors[0]["kind"], "bad-line");
    // Until it is fixed, everyone is held to readonly.
    assert_eq!(j["policy"]["mode"]["value"], "readonly");

    // A good one: what applies to root, and why.
    let good = s.path("good.conf");
    std::fs::write(
        &good,
        "mode = readonly\n[user root]\nmode = enforce\nlowest_mode = audit\n[user nobody]\nmode = readonly\n",
    )
    .unwrap();
    let out = run(Command::new(wrapper_bin())
        .args(["--check", "--json", "--config", good.to_str().unwrap()])
        .env_remove("SUDO_USER")
        .env_remove("SUDO_UID"));
    let j = out.json();
    let p = &j["policy"];
    assert!(p["errors"].as_array().unwrap().is_empty(), "{p:#}");
    let sections = p["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 2);
    assert_eq!(sections[0]["section"], "user root");
    assert_eq!(sections[0]["from"], format!("{}:2", good.display()));
    assert_eq!(sections[0]["lowest_mode"], "audit");
    assert_eq!(p["default"]["mode"], "readonly");
    assert_eq!(p["preview"], false);
    if is_root() {
        assert_eq!(sections[0]["applies"], true, "{p:#}");
        assert_eq!(sections[1]["applies"], false, "{p:#}");
        assert_eq!(p["mode"]["value"], "enforce");
        assert_eq!(
            p["mode"]["from"],
            format!("from {}:2 [user root]", good.display())
        );
        assert_eq!(p["lowest_mode"], "audit");
        assert_eq!(p["caller"]["uid"], 0);
    }
    // The text says the same.
    let out =
        run(Command::new(wrapper_bin()).args(["--check", "--config", good.to_str().unwrap()]));
    assert!(out.stdout.contains("  sections: 2 (the strictest of those a caller matches applies; else the default readonly)"), "{}", out.dump());
    assert!(
        out.stdout.contains(&format!(
            "    [user nobody] {}:5: mode readonly, lowest readonly, allow none",
            good.display()
        )),
        "{}",
        out.dump()
    );
}

/// An audit-mode run of `MR_DCMD_CFG_CLEAR` lets it through and records that read-only would
/// refuse it (rule readonly.dcmd), under the library and under the supervisor; `--report`
/// counts it, each call once.
#[test]
fn audit_mode_records_that_readonly_would_refuse_a_configuration_clear() {
    let lib = client(&CFG_CLEAR).guard(Guard::Audit).run();
    assert_eq!(lib.code(), 0, "{}", lib.dump());
    assert_eq!(
        lib.sim.len(),
        1,
        "audit mode changes nothing\n{}",
        lib.dump()
    );
    let c = lib.audit_call();
    assert_eq!(
        c["would"]["readonly"]["verdict"],
        "reject",
        "{}",
        lib.dump()
    );
    assert_eq!(
        c["would"]["readonly"]["findings"][0]["rule"],
        "readonly.dcmd"
    );
    assert_eq!(text(&c, "opcode_name"), Some("MR_DCMD_CFG_CLEAR"));
    // The log's two records (decision, outcome), counted once; the preview in its own table.
    let s = Scratch::new("would-report");
    let log = s.path("audit.jsonl");
    std::fs::write(&log, &lib.audit_text).unwrap();
    let out = run(Command::new(wrapper_bin()).args([
        "--report",
        "--json",
        "--log",
        log.to_str().unwrap(),
    ]));
    let r = out.json();
    assert_eq!(r["calls"]["total"], 1, "{r:#}");
    assert_eq!(r["would_refuse_in_readonly"], 1, "{r:#}");
    assert_eq!(r["readonly_would_refuse"][0]["rule"], "readonly.dcmd");
    let out = run(Command::new(wrapper_bin()).args(["--report", "--log", log.to_str().unwrap()]));
    assert!(
        out.stdout
            .contains("would refuse in readonly (audit mode's preview of read-only): 1\n"),
        "{}",
        out.dump()
    );
    assert!(out.stdout.contains("  readonly.dcmd"), "{}", out.dump());

    // The supervisor says the same of the same call.
    let s = Scratch::new("would-sup");
    let conf = s.path("empty.conf");
    std::fs::write(&conf, "").unwrap();
    let out = run(Command::new(wrapper_bin())
        .args(wrapped_cfg_clear(&["--mode", "audit", "--audit-all"]))
        .env("MFIGUARD_CONFIG", &conf)
        .env("MFIGUARD_DEVICE", "/dev/null")
        .env("MFIGUARD_LOG", s.path("audit.jsonl"))
        .env("LD_PRELOAD", host_sim())
        .env("MFISIM_ONLY_IN", "mfiguard-run")
        .env("MFISIM_RECORD", s.path("sim.jsonl")));
    let r = Ran::read(out, &s);
    assert!(r.reached_driver(), "{}", r.dump());
    assert_eq!(text(r.call(), "guard"), Some("supervisor"));
    assert_eq!(
        r.call()["would"]["readonly"]["verdict"],
        "reject",
        "{}",
        r.dump()
    );
}

// ---- a cut log reads true -------------------------------------------------------------------

/// A guarded client issuing clean calls back to back (`mfi_client lines`, one output line per
/// call it got back, with the number of outcome records the log held at that moment); `kill`
/// ends the mechanism mid-run. Each call found its outcome record written when it returned
/// (the client looked: `outcomes=N`, at least its own count), every call the client saw return
/// has its outcome record, and a decision without an outcome is only ever the call in flight.
fn cut_mid_run(how: &str) {
    let s = Scratch::new(&format!("cut-{how}"));
    let log = s.path("audit.jsonl");
    let conf = s.path("empty.conf");
    std::fs::write(&conf, "").unwrap();
    let mut cmd = match how {
        "library" => client(&["lines"]).guard(Guard::Enforce).command(&s),
        via => {
            let mut c = Command::new(wrapper_bin());
            c.args(["--via", via, "--", examples().client.to_str().unwrap()])
                .args(["--device", "/dev/null", "lines"])
                .env("MFIGUARD_CONFIG", &conf)
                .env("MFIGUARD_DEVICE", "/dev/null")
                .env("MFIGUARD_LOG", &log)
                .env("LD_PRELOAD", host_sim())
                .env("MFISIM_ONLY_IN", "mfiguard-run")
                .env("MFISIM_RECORD", s.path("sim.jsonl"));
            c
        }
    };
    cmd.env("MFIGUARD_AUDIT", "all")
        .env("MFIGUARD_LOG_SYNC", "1")
        .env("MFI_CLIENT_OUTCOMES", &log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for _ in 0..2_000 {
            if stdin.write_all(b"pass\n").is_err() {
                break;
            }
        }
    });
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let lines =
        std::thread::spawn(move || stdout.lines().map_while(Result::ok).collect::<Vec<_>>());
    // Killed once it has made some calls: the library's process is the client; the
    // supervisor's and the tracer's, mfiguard-run (the client then fails or dies).
    let start = Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{how}: no records"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(u64::from(std::process::id() % 7)));
    child.kill().unwrap();
    let _ = child.wait();
    let printed = lines.join().unwrap();
    let _ = feeder.join();
    let returned = printed
        .iter()
        .take_while(|l| l.starts_with("pass ret=0 "))
        .count();
    for (i, l) in printed.iter().take(returned).enumerate() {
        let seen: usize = l
            .rsplit_once(" outcomes=")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("{how}: {l}"));
        assert!(
            seen > i,
            "{how}: call #{} returned before its outcome record was written ({seen} outcome records then)",
            i + 1
        );
    }
    let records = parse_records(&std::fs::read_to_string(&log).unwrap(), "audit log");
    let with = |kind: &str| -> Vec<i64> {
        records
            .iter()
            .filter(|r| text(r, "record") == Some(kind))
            .filter_map(|r| int(r, "seq"))
            .collect()
    };
    let (decisions, outcomes) = (with("decision"), with("outcome"));
    assert!(returned >= 10, "{how}: only {returned} calls returned");
    for seq in 1..=returned as i64 {
        assert!(
            outcomes.contains(&seq),
            "{how}: call #{seq} returned to the client but has no outcome record (the log was cut after {returned} returns)"
        );
    }
    let open: Vec<i64> = decisions
        .iter()
        .filter(|d| !outcomes.contains(d))
        .copied()
        .collect();
    assert!(
        open.iter().all(|&d| d > returned as i64) && open.len() <= 1,
        "{how}: decisions without an outcome {open:?}, {returned} calls returned"
    );
}

#[test]
fn a_log_cut_by_killing_the_library_reads_true() {
    cut_mid_run("library");
}

#[test]
fn a_log_cut_by_killing_the_supervisor_reads_true() {
    cut_mid_run("supervise");
}

#[test]
fn a_log_cut_by_killing_the_tracer_reads_true() {
    cut_mid_run("ptrace");
}

/// The shipped /etc/mfiguard.conf holds the shipped monitoring jobs to read-only by their
/// sections, their command lines asking for no mode: the snapshot and the PATH shim name
/// themselves as the program the run is for (MFIGUARD_RUN_TOOL), smartd is the tool itself;
/// anything else gets the default, and the file is valid.
#[test]
fn the_shipped_policy_holds_the_shipped_jobs_to_readonly() {
    let packaged = root().join("packaging/mfiguard.conf");
    let check = |run_tool: Option<&str>, tool: Option<&str>| -> Value {
        let mut c = Command::new(wrapper_bin());
        c.args(["--check", "--json", "--config", packaged.to_str().unwrap()])
            .args(tool)
            .env_remove("MFIGUARD_MODE")
            .env_remove("MFIGUARD_RUN_TOOL");
        if let Some(t) = run_tool {
            c.env("MFIGUARD_RUN_TOOL", t);
        }
        let j = run(&mut c).json();
        assert!(
            j["policy"]["invalid"].as_array().unwrap().is_empty(),
            "{j:#}"
        );
        j
    };
    for job in [
        "/usr/libexec/mfiguard/mfiguard-snapshot",
        "/usr/libexec/mfiguard/mfiguard-textfile",
        "/usr/local/sbin/MegaCli64",
        "/usr/sbin/smartd",
    ] {
        let j = check(Some(job), None);
        assert_eq!(
            j["policy"]["mode"]["value"], "readonly",
            "{job}: {:#}",
            j["policy"]
        );
    }
    let j = check(None, Some("/opt/MegaRAID/MegaCli/MegaCli64"));
    assert_eq!(j["policy"]["mode"]["value"], "enforce", "{:#}", j["policy"]);
    assert_eq!(
        j["policy"]["lowest_mode"], "off",
        "no mode in the file: a run may choose"
    );
}

/// The records the docs show are valid by the shipped schema, and every recipe the docs give
/// for counting refusals (jq over the JSON log, journalctl over the journal) counts a call once:
/// by its outcome record (audit mode writes a decision and an outcome record for each call).
#[test]
fn the_docs_examples_match_the_schema_and_their_recipes_count_each_call_once() {
    let mut docs = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("doc")).unwrap() {
        let p = e.unwrap().path();
        // testing.md describes what a test checks, not a recipe; the man pages too.
        let doc = p
            .extension()
            .is_some_and(|x| ["md", "1", "5", "8"].iter().any(|e| x == *e));
        if doc && !p.ends_with("testing.md") {
            docs.push(p);
        }
    }
    let (mut examples, mut recipes) = (0, 0);
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with("{\"record\":") {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{name}:{}: not JSON: {e}", i + 1));
                assert_valid_record(&v, &format!("{name}:{}", i + 1));
                examples += 1;
            }
            if line.contains("journalctl")
                && (line.contains("MFIGUARD_VERDICT=") || line.contains("MFIGUARD_WOULD_"))
            {
                assert!(
                    line.contains("MFIGUARD_RECORD=outcome"),
                    "{name}:{}: counts decision records too: {line}",
                    i + 1
                );
                recipes += 1;
            }
        }
        // A jq select that looks at a verdict, whatever lines it spans.
        for (at, _) in text.match_indices("select(") {
            let sel = &text[at..];
            let sel = &sel[..sel.find(')').map_or(sel.len(), |e| e + 1)];
            let sel = sel.split_whitespace().collect::<Vec<_>>().join(" ");
            if sel.contains(".verdict") || sel.contains(".would") {
                assert!(
                    sel.contains(".record == \"outcome\""),
                    "{name}: counts decision records too: {sel}"
                );
                recipes += 1;
            }
        }
    }
    assert!(
        examples >= 5 && recipes >= 5,
        "{examples} examples, {recipes} recipes"
    );
}
