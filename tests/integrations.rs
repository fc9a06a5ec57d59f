//! The integrations against their conventions: the smartd drop-in with a stand-in
//! `mfiguard-run` (`systemd/smartd.service.d/mfiguard.conf`: smartd through `mfiguard-run`, its
//! mode from the policy file), and, below, the config file, the sudoers example, logrotate and the bash
//! completion, run through the real wrapper where they need it. The Nagios plugin, the
//! collectors, the units and the shims: `tests/monitoring.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
        exec[1].starts_with("/usr/bin/mfiguard-run --log /var/log/mfiguard/")
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
            c.starts_with("/usr/bin/mfiguard-run -- /"),
            "a caller could add wrapper options, or a mode is pinned here that the policy file should give: {c}"
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
