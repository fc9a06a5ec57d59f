//! The policy: `mfiguard-run` and the library read one configuration the same way
//! (`core/src/config/`):
//! an unknown key is refused by the wrapper (exit 125, one line naming FILE:LINE or the
//! variable, the key, the value and the valid keys, closest first) and makes the library take
//! the strictest mode (readonly) with an error record; values are read in any case wherever
//! they come from; a config file that is not a small regular file nobody else can change is
//! refused, without waiting on it or reading it whole. The oracle of the library's side is the
//! simulator's record: what reached the (simulated) driver.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common::wrapper::*;
use crate::common::*;
use std::ffi::CString;
use std::time::{Duration, Instant};

use super::cli::{show_env, SHOW_ENV};

/// `--check`'s line about where records go.
fn records_line(out: &Out) -> &str {
    out.stdout
        .lines()
        .find(|l| l.starts_with("  ") && l.contains("records: "))
        .unwrap_or_else(|| panic!("no records line\n{}", out.dump()))
}

/// The config file is read by the library's rule (`core/src/config/file.rs`): comments, a `#`
/// after a blank, quotes, keys in any case with or without the prefix, the last one wins.
#[test]
fn config_file_lines_are_read_by_the_librarys_rule() {
    let s = Scratch::new("conf-rule");
    let lib = stand_in(&s);
    let conf = s.path("mfiguard.conf");
    let conf_s = conf.to_str().unwrap();
    std::fs::write(
        &conf,
        [
            "# site policy",
            "   # an indented comment = x",
            "mode = audit",
            "MFIGUARD_Mode = readonly   # monitoring host",
            "log = /var/log/a#b.jsonl",
            "allow = \"sgl.bounds, sgl.offset-unusual\"\t# two rules",
            "AUDIT='all'",
            "log_sync = \"yes\"",
            "log_required=off#not a comment, but off# is not a boolean",
            "log_required = 'on' # the last one wins",
            "",
        ]
        .join("\n"),
    )
    .unwrap();
    let p = policy(wrap(&lib, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(
        p,
        format!(
            "policy for runs (config {conf_s}):\n  mode:  readonly (from {conf_s}:4)\n  log:   /var/log/a#b.jsonl (from {conf_s}:5)\n  allow: sgl.bounds,sgl.offset-unusual (from {conf_s}:6)\n  audit: all (from {conf_s}:7)\n  log_sync:     on (from {conf_s}:8)\n  log_required: on (from {conf_s}:10)\n"
        )
    );
    // A run with that file is not refused: every value is one the library can use.
    let out = run(wrap(&lib, &["true"]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(out.stderr, "", "{}", out.dump());

    // A `#` in a quoted value is not a comment; one pair of quotes only; lines the library
    // ignores are shown.
    std::fs::write(
        &conf,
        "log = \"/srv/a # b.jsonl\"  # quoted\nmode='\"off\"'\nmdoe = readonly\njust words\n",
    )
    .unwrap();
    let p = policy(wrap(&lib, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
    assert!(
        p.contains(&format!("  log:   /srv/a # b.jsonl (from {conf_s}:1)\n")),
        "{p}"
    );
    assert!(
        p.contains(&format!(
            "  INVALID: MFIGUARD_MODE=\"\"off\"\" (from {conf_s}:2): unknown mode"
        )),
        "{p}"
    );
    // A key the library does not know, and a line it cannot read, refuse the run too (the
    // library takes the strictest mode for them).
    assert!(
        p.contains(&format!(
            "  INVALID: mdoe=\"readonly\" (from {conf_s}:3): unknown key; valid keys: mode, "
        )),
        "{p}"
    );
    assert!(
        p.contains(&format!(
            "  INVALID: {conf_s}:4: \"just words\" is not a \"key = value\" line"
        )),
        "{p}"
    );
    assert!(!p.contains("WARNING"), "{p}");
}

/// A variable set in the environment wins over the file even when it is empty.
#[test]
fn an_empty_variable_wins_over_the_config_file() {
    let s = Scratch::new("conf-empty");
    let lib = stand_in(&s);
    let conf = s.path("mfiguard.conf");
    let conf_s = conf.to_str().unwrap();
    std::fs::write(&conf, "allow = sgl.bounds\nlog_sync = 1\nmode = audit\n").unwrap();
    let p = policy(
        wrap(&lib, &["--check"])
            .env("MFIGUARD_CONFIG", conf_s)
            .env("MFIGUARD_ALLOW", "")
            .env("MFIGUARD_LOG_SYNC", ""),
    );
    assert!(p.contains("  allow: none (from MFIGUARD_ALLOW)\n"), "{p}");
    assert!(
        p.contains("  log_sync:     off (from MFIGUARD_LOG_SYNC)\n"),
        "{p}"
    );
    assert!(
        p.contains(&format!("  mode:  audit (from {conf_s}:3)\n")),
        "{p}"
    );
    assert!(!p.contains("INVALID"), "{p}");
    // An empty mode is not "no mode": the library cannot use it (it falls back to readonly).
    let out = run(wrap(&lib, &["true"])
        .env("MFIGUARD_CONFIG", conf_s)
        .env("MFIGUARD_MODE", ""));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert_eq!(
        out.stderr,
        "mfiguard-run: MFIGUARD_MODE=\"\" (from the environment): unknown mode; use off, audit, enforce or readonly\n"
    );
}

/// A setting from the environment or the file that the library cannot use refuses the run
/// (125, one line naming it, the tool never starts) and shows in `--check` as INVALID; every
/// value the library accepts is accepted.
#[test]
fn invalid_settings_from_the_environment_or_the_file_refuse_the_run() {
    let s = Scratch::new("conf-invalid");
    let lib = stand_in(&s);
    let conf = s.path("mfiguard.conf");
    let conf_s = conf.to_str().unwrap();
    let marker = s.path("ran");
    let tool = s.path("tool");
    write_exec(&tool, &format!("#!/bin/sh\ntouch {}\n", marker.display()));
    let tool_s = tool.to_str().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "MFIGUARD_MODE",
            "readonyl",
            "unknown mode; use readonly, enforce, audit or off",
        ),
        (
            "MFIGUARD_AUDIT",
            "some",
            "unknown audit level; use all or findings",
        ),
        (
            "MFIGUARD_LOG",
            "audit.jsonl",
            "'audit.jsonl' is not a log target; use none, syslog, journal, stderr or an absolute path (several separated by commas)",
        ),
        (
            "MFIGUARD_ALLOW",
            "sgl.bounds, sgl.bound",
            "unknown rule id 'sgl.bound' (one unknown id voids the whole list); known: sgl.bounds, ",
        ),
        (
            "MFIGUARD_LOG_SYNC",
            "2",
            "not a boolean; use 1, 0, no, on, yes, off, true or false",
        ),
        (
            "MFIGUARD_LOG_REQUIRED",
            "maybe",
            "not a boolean; use false, true, yes, 1, 0, no, on or off",
        ),
    ];
    for (var, value, why) in cases {
        let key = var.trim_start_matches("MFIGUARD_").to_ascii_lowercase();
        // From the environment.
        let out = run(wrap(&lib, &[tool_s]).env(var, value));
        assert_eq!(out.code(), 125, "{var}={value}\n{}", out.dump());
        assert_eq!(out.stdout, "");
        let want = format!("mfiguard-run: {var}=\"{value}\" (from the environment): {why}");
        assert!(
            out.stderr.starts_with(&want) && out.stderr.lines().count() == 1,
            "{want}\n{}",
            out.dump()
        );
        // From line 2 of the file.
        std::fs::write(&conf, format!("# site\n{key} = {value}   # typo\n")).unwrap();
        let out = run(wrap(&lib, &[tool_s]).env("MFIGUARD_CONFIG", conf_s));
        assert_eq!(out.code(), 125, "{key} = {value}\n{}", out.dump());
        let want = format!("mfiguard-run: {var}=\"{value}\" (from {conf_s}:2): {why}");
        assert!(out.stderr.starts_with(&want), "{want}\n{}", out.dump());
        assert!(!marker.exists(), "the tool ran with {var}={value}");
        // --check shows the same reason and fails.
        let out = run(wrap(&lib, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
        assert_eq!(out.code(), 1, "{}", out.dump());
        let want = format!("\n  INVALID: {var}=\"{value}\" (from {conf_s}:2): {why}");
        assert!(out.stdout.contains(&want), "{want}\n{}", out.dump());
        assert!(out.stdout.contains("\nresult: FAILED"), "{}", out.dump());
        // An option overrides the bad value: the library never sees it.
        let opt: Option<&[&str]> = match *var {
            "MFIGUARD_MODE" => Some(&["--mode", "enforce"]),
            "MFIGUARD_LOG" => Some(&["--log", "none"]),
            "MFIGUARD_ALLOW" => Some(&["--allow", "sgl.bounds"]),
            "MFIGUARD_AUDIT" => Some(&["--audit-all"]),
            _ => None,
        };
        if let Some(opt) = opt {
            let out = run(wrap(&lib, &[opt, &[tool_s]].concat()).env(var, value));
            assert_eq!(out.code(), 0, "{opt:?} over {var}={value}\n{}", out.dump());
            assert!(marker.exists());
            std::fs::remove_file(&marker).unwrap();
        }
    }

    // Several problems: one line each.
    let out = run(wrap(&lib, &[tool_s])
        .env("MFIGUARD_MODE", "strict")
        .env("MFIGUARD_AUDIT", "every"));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.dump());

    // What the library accepts passes: case, blanks, empty allow items, every boolean.
    // A log path with blanks around it, in a directory that exists.
    let padded_log = format!(" {} ", s.path("audit.jsonl").display());
    let ok: &[(&str, &str)] = &[
        ("MFIGUARD_MODE", " Readonly "),
        ("MFIGUARD_MODE", "AUDIT"),
        ("MFIGUARD_AUDIT", "All"),
        ("MFIGUARD_LOG", "Syslog"),
        ("MFIGUARD_LOG", &padded_log),
        ("MFIGUARD_LOG", "none"),
        ("MFIGUARD_ALLOW", " sgl.bounds ,, xfer.length ,"),
        ("MFIGUARD_ALLOW", ""),
        ("MFIGUARD_LOG_SYNC", "YES"),
        ("MFIGUARD_LOG_SYNC", ""),
        ("MFIGUARD_LOG_REQUIRED", "off"),
        ("MFIGUARD_LOG_REQUIRED", "1"),
        ("MFIGUARD_DEBUG", "nonsense is the library's business"),
    ];
    for (var, value) in ok {
        let out = run(wrap(&lib, &[tool_s]).env(var, value));
        assert_eq!(out.code(), 0, "{var}={value:?}\n{}", out.dump());
        assert_eq!(out.stderr, "", "{var}={value:?}\n{}", out.dump());
        assert!(marker.exists(), "{var}={value:?}");
        std::fs::remove_file(&marker).unwrap();
    }

    // A config file this user cannot read: its policy would not apply.
    std::fs::write(&conf, "mode = readonly\n").unwrap();
    let unreadable = s.path("dir.conf");
    std::fs::create_dir_all(&unreadable).unwrap();
    let out = run(wrap(&lib, &[tool_s]).env("MFIGUARD_CONFIG", &unreadable));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert!(
        out.stderr.contains("cannot read this config file"),
        "{}",
        out.dump()
    );
    assert!(!marker.exists());
}

/// `--allow` takes a list written with blanks after the commas.
#[test]
fn allow_trims_blanks_around_each_rule_id() {
    let s = Scratch::new("allow-blanks");
    let lib = stand_in(&s);
    let got = show_env(&mut wrap(
        &lib,
        &[
            "--allow",
            "sgl.bounds, sgl.offset-unusual",
            "--allow= xfer.length\t",
            "sh",
            "-c",
            SHOW_ENV,
        ],
    ));
    assert!(
        got.contains("|sgl.bounds,sgl.offset-unusual,xfer.length|"),
        "{got}"
    );
    // A blank list is still not a list, and an unknown id is still named.
    for (arg, msg) in [
        (" ", "is not a comma-separated list"),
        ("sgl.bounds, sgl.bound", "unknown rule id 'sgl.bound'"),
    ] {
        let out = run(&mut wrap(&lib, &["--allow", arg, "true"]));
        assert_eq!(out.code(), 125, "{arg:?}\n{}", out.dump());
        assert!(out.stderr.contains(msg), "{arg:?}\n{}", out.dump());
    }
}

/// `--check` says where records go and whether this user can write them: a warning when it
/// cannot, a failure when log_required is on. It never creates nor writes the log.
#[test]
fn check_says_whether_records_can_be_written() {
    let s = Scratch::new("check-sink");
    let lib = stand_in(&s);
    let check = |log: &str, required: Option<&str>| -> Out {
        let mut cmd = wrap(&lib, &["--log", log, "--check"]);
        if let Some(r) = required {
            cmd.env("MFIGUARD_LOG_REQUIRED", r);
        }
        run(&mut cmd)
    };
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };

    let existing = s.path("audit.jsonl");
    std::fs::write(&existing, "{\"seq\":1}\n").unwrap();
    let out = check(existing.to_str().unwrap(), None);
    assert_eq!(
        records_line(&out),
        format!(
            "  records: {}: exists, can be appended to by uid {uid}",
            existing.display()
        )
    );
    assert_eq!(
        read(&existing),
        "{\"seq\":1}\n",
        "the check wrote to the log"
    );

    let fresh = s.path("fresh.jsonl");
    let out = check(fresh.to_str().unwrap(), None);
    assert_eq!(
        records_line(&out),
        format!(
            "  records: {}: does not exist yet; uid {uid} can create it in {}",
            fresh.display(),
            s.0.display()
        )
    );
    assert!(!fresh.exists(), "the check created the log");

    let nodir = s.path("nodir/audit.jsonl");
    let out = check(nodir.to_str().unwrap(), None);
    let line = records_line(&out);
    assert!(
        line.starts_with(&format!(
            "  WARNING: records: {}: the directory {} does not exist: records would be lost",
            nodir.display(),
            s.path("nodir").display()
        )) && line.contains("'cannot write audit records'"),
        "{line}"
    );
    assert!(!out.stdout.contains("  FAILED: records"), "{}", out.dump());
    let out = check(nodir.to_str().unwrap(), Some("yes"));
    let line = records_line(&out);
    assert!(
        line.starts_with("  FAILED: records: ")
            && line
                .ends_with("with log_required on, every guarded MegaRAID call would fail with EIO"),
        "{line}"
    );
    assert!(out.stdout.contains("\nresult: FAILED"), "{}", out.dump());

    let out = check(s.0.to_str().unwrap(), None);
    assert!(
        records_line(&out).starts_with(&format!(
            "  WARNING: records: {} is a directory",
            s.0.display()
        )),
        "{}",
        out.dump()
    );

    // syslog: judged by /dev/log on this host.
    let out = check("syslog", None);
    let socket = std::fs::metadata("/dev/log")
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
    if socket {
        assert_eq!(
            records_line(&out),
            "  records: syslog: /dev/log is a socket"
        );
    } else {
        assert!(
            records_line(&out).starts_with("  WARNING: records: syslog: /dev/log is not a socket"),
            "{}",
            out.dump()
        );
    }
    let out = check("stderr", Some("1"));
    assert_eq!(records_line(&out), "  records: the tool's standard error");
}

/// `--help` and the man page document the two log settings, and the 125 of a tool nothing
/// guards (and of --allow-unguarded's absence).
#[test]
fn help_and_man_page_document_every_setting() {
    let s = Scratch::new("help-settings");
    let help = run(&mut wrap(&s.0, &["--help"])).stdout;
    let man = read(&root().join("doc/mfiguard-run.1"));
    for word in [
        "MFIGUARD_LOG_REQUIRED",
        "MFIGUARD_LOG_SYNC",
        "log_required",
        "log_sync",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
        assert!(man.contains(word), "the man page lacks {word}");
    }
    let exit = help
        .split("\nEXIT STATUS\n")
        .nth(1)
        .and_then(|t| t.split("\nEXAMPLES\n").next())
        .unwrap();
    assert!(
        exit.contains("125") && exit.contains("--allow-unguarded") && exit.contains("invalid"),
        "{exit}"
    );
    assert!(man.contains("readonly") && man.contains("the strictest mode"));
}

/// A tool that leaves a marker when it runs.
fn marker_tool(s: &Scratch) -> (PathBuf, PathBuf) {
    let marker = s.path("ran");
    let tool = s.path("tool");
    std::fs::write(&tool, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    (tool, marker)
}

#[test]
fn an_unknown_key_refuses_the_run_naming_where_and_the_closest_key() {
    let s = Scratch::new("unknown-key");
    let lib = stand_in(&s);
    let (tool, marker) = marker_tool(&s);
    let tool = tool.to_str().unwrap();
    let conf = s.path("mfiguard.conf");
    let conf_s = conf.to_str().unwrap();

    // In the file: FILE:LINE, the key as written, its value, the valid keys (mode first).
    std::fs::write(&conf, "# site\nmode = readonly\nmoed = audit   # typo\n").unwrap();
    let out = run(wrap(&lib, &[tool]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "mfiguard-run: moed=\"audit\" (from {conf_s}:3): unknown key; valid keys: mode, log, audit, allow, debug, device, preview, log_sync, lowest_mode, log_required\n"
        )
    );
    assert!(!marker.exists(), "the tool ran");
    // Prefixed and in capitals: the same key.
    std::fs::write(&conf, "MFIGUARD_LOG_SINK = stderr\n").unwrap();
    let out = run(wrap(&lib, &[tool]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert!(
        out.stderr.starts_with(&format!(
            "mfiguard-run: MFIGUARD_LOG_SINK=\"stderr\" (from {conf_s}:1): unknown key; valid keys: log_sync, "
        )),
        "{}",
        out.dump()
    );
    // --check shows it and fails.
    let out = run(wrap(&lib, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout.contains(&format!(
            "\n  INVALID: MFIGUARD_LOG_SINK=\"stderr\" (from {conf_s}:1): unknown key"
        )),
        "{}",
        out.dump()
    );

    // In the environment: the variable, its value, the valid ones (MFIGUARD_MODE first).
    let out = run(wrap(&lib, &[tool]).env("MFIGUARD_MOED", "audit"));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert!(
        out.stderr.starts_with(
            "mfiguard-run: MFIGUARD_MOED=\"audit\" (from the environment): unknown variable; valid: MFIGUARD_MODE, "
        ) && out.stderr.lines().count() == 1,
        "{}",
        out.dump()
    );
    assert!(!marker.exists(), "the tool ran");
    // An option does not make an unknown key go away: the library would still see it.
    let out = run(wrap(&lib, &["--mode", "enforce", tool]).env("MFIGUARD_MOED", "audit"));
    assert_eq!(out.code(), 125, "{}", out.dump());

    // Variables that are not settings pass.
    let out = run(wrap(&lib, &[tool])
        .env("MFIGUARD_LIB32_DIR", s.path("none"))
        .env("MFIGUARD_RUN", "/usr/bin/mfiguard-run")
        .env("MFIGUARD_KERNEL_RELEASE", "6.1.0"));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(marker.exists());
}

/// `mode = Readonly`, `MFIGUARD_MODE=READONLY` and `--mode Readonly` are one mode: `--check`
/// shows readonly, and the library refuses a writing DCMD for each (the simulator sees
/// nothing), while `--mode Enforce` lets it through.
#[test]
fn values_in_any_case_agree_across_file_environment_and_options_with_the_guard() {
    let s = Scratch::new("case");
    let dir = guard_dir(&s);
    let conf = s.path("mfiguard.conf");
    std::fs::write(&conf, "mode = Readonly\n").unwrap();
    let conf_s = conf.to_str().unwrap().to_string();
    let ex = examples();
    // (options, environment, what --check shows, whether the writing DCMD is refused)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str, bool);
    let cases: Vec<Case> = vec![
        (
            vec!["--mode", "Readonly"],
            vec![],
            "readonly (from --mode)",
            true,
        ),
        (
            vec![],
            vec![("MFIGUARD_CONFIG", conf_s.as_str())],
            "readonly (from ",
            true,
        ),
        (
            vec![],
            vec![("MFIGUARD_MODE", "READONLY")],
            "readonly (from MFIGUARD_MODE)",
            true,
        ),
        (
            vec!["--mode", "Enforce"],
            vec![],
            "enforce (from --mode)",
            false,
        ),
    ];
    for (i, (opts, env, shown, refused)) in cases.iter().enumerate() {
        let mut check = wrap(&dir, &[opts.as_slice(), &["--check"]].concat());
        for (k, v) in env {
            check.env(k, v);
        }
        let out = run(&mut check);
        assert!(
            out.stdout.contains(&format!("\n  mode:  {shown}")),
            "{opts:?} {env:?}\n{}",
            out.dump()
        );
        assert!(!out.stdout.contains("INVALID"), "{}", out.dump());

        let record = s.path(&format!("sim-{i}.jsonl"));
        let log = s.path(&format!("audit-{i}.jsonl"));
        let mut args = opts.clone();
        args.extend(["--log", log.to_str().unwrap(), "--"]);
        let mut cmd = wrap(&dir, &args);
        cmd.arg(&ex.client)
            .args(["--device", "/dev/null", "rule", "readonly.dcmd"])
            .env("LD_PRELOAD", &ex.sim)
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFISIM_RECORD", &record);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        let sim = parse_lines(
            &std::fs::read_to_string(&record).unwrap_or_default(),
            "simulator",
        );
        if *refused {
            assert!(out.stdout.contains("errno=1 (EPERM)"), "{}", out.dump());
            assert!(
                sim.is_empty(),
                "{opts:?} {env:?}: reached the driver\n{sim:?}"
            );
        } else {
            assert_eq!(sim.len(), 1, "{opts:?}: {}", out.dump());
        }
    }
}

/// The library cannot refuse: given an unknown key (in the file or as a variable) it takes
/// the strictest mode, readonly, and records the key; its near twin with the key spelt right
/// lets the same writing command through.
#[test]
fn the_library_given_an_unknown_key_is_readonly_and_records_it() {
    let dir = Scratch::new("lib-unknown");
    let conf = dir.path("typo.conf");
    std::fs::write(&conf, "moed = enforce\n").unwrap();
    let good = dir.path("good.conf");
    std::fs::write(&good, "mode = enforce\n").unwrap();
    let (conf_s, good_s) = (conf.to_str().unwrap(), good.to_str().unwrap());

    let run = client(&["rule", "readonly.dcmd"])
        .guard(Guard::Off)
        .env("MFIGUARD_CONFIG", conf_s)
        .run();
    assert!(run.stdout.contains("errno=1 (EPERM)"), "{}", run.dump());
    assert!(run.sim.is_empty(), "{}", run.dump());
    let error = run
        .audit
        .iter()
        .find(|r| text(r, "record") == Some("error"))
        .unwrap_or_else(|| panic!("no error record\n{}", run.dump()));
    assert_eq!(text(error, "key"), Some("moed"), "{error}");
    assert!(
        text(error, "message").is_some_and(|m| m.contains("readonly") && m.contains(":1")),
        "{error}"
    );

    let run = client(&["rule", "readonly.dcmd"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_CONFIG", good_s)
        .run();
    assert_eq!(run.sim.len(), 1, "{}", run.dump());

    // The same as a variable.
    let run = client(&["rule", "readonly.dcmd"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_MOED", "audit")
        .run();
    assert!(run.sim.is_empty(), "{}", run.dump());
    assert!(
        run.audit_text.contains("\"key\":\"MFIGUARD_MOED\""),
        "{}",
        run.dump()
    );
}

/// Config files that must not be waited on, read whole, or trusted, and what each reason says.
fn hostile_configs(s: &Scratch) -> Vec<(String, PathBuf, &'static str)> {
    let mut out = Vec::new();
    let fifo = s.path("fifo.conf");
    let c = CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    out.push((
        "a FIFO with no writer".into(),
        fifo,
        "a FIFO, not a regular file",
    ));
    out.push((
        "/dev/zero".into(),
        PathBuf::from("/dev/zero"),
        "a character device, not a regular file",
    ));
    let big = s.path("big.conf");
    std::fs::write(&big, "#".repeat(65 * 1024)).unwrap();
    out.push((
        "a 65 KiB file".into(),
        big,
        "66560 bytes, more than the 65536",
    ));
    let open = s.path("open.conf");
    std::fs::write(&open, "mode = off\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
    out.push((
        "a world-writable file".into(),
        open,
        "writable by others (mode 0666)",
    ));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let other = s.path("other.conf");
        std::fs::write(&other, "mode = off\n").unwrap();
        let c = CString::new(other.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        out.push((
            "a file owned by another user".into(),
            other,
            "owned by uid 65534, neither root nor uid 0",
        ));
    } else {
        eprintln!("note: not root: a config file owned by another uid is not exercised");
    }
    out
}

#[test]
fn a_config_file_that_is_not_a_small_private_regular_file_refuses_the_run() {
    let s = Scratch::new("conf-hostile");
    let lib = stand_in(&s);
    let (tool, marker) = marker_tool(&s);
    for (what, path, reason) in hostile_configs(&s) {
        let out = run(wrap(&lib, &[tool.to_str().unwrap()]).env("MFIGUARD_CONFIG", &path));
        assert_eq!(out.code(), 125, "{what}\n{}", out.dump());
        assert!(
            out.took < Duration::from_secs(10),
            "{what}: took {:?}",
            out.took
        );
        assert_eq!(out.stderr.lines().count(), 1, "{what}\n{}", out.dump());
        assert!(
            out.stderr.starts_with(&format!(
                "mfiguard-run: {}: cannot read this config file as uid ",
                path.display()
            )) && out.stderr.contains(reason),
            "{what}: expected {reason:?}\n{}",
            out.dump()
        );
        assert!(!marker.exists(), "{what}: the tool ran");
        // --config names it too, as a usage error.
        let out = run(&mut wrap(
            &lib,
            &["--config", path.to_str().unwrap(), tool.to_str().unwrap()],
        ));
        assert_eq!(out.code(), 125, "{what}\n{}", out.dump());
        assert!(out.stderr.contains(reason), "{what}\n{}", out.dump());
    }
    // The near twin: the same small file, private, is read.
    let ok = s.path("ok.conf");
    std::fs::write(&ok, "mode = audit\n").unwrap();
    std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(wrap(&lib, &[tool.to_str().unwrap()]).env("MFIGUARD_CONFIG", &ok));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(marker.exists());
}

/// The library, given those files, neither hangs nor grows: it takes readonly and says why.
#[test]
fn the_library_given_a_hostile_config_file_is_readonly_and_records_why() {
    let s = Scratch::new("lib-hostile");
    // What a run builds on first use (the client, the records' validator), outside the timing.
    examples();
    for (what, path, reason) in hostile_configs(&s) {
        let start = Instant::now();
        let run = client(&["rule", "readonly.dcmd"])
            .guard(Guard::DefaultMode)
            .env("MFIGUARD_CONFIG", path.to_str().unwrap())
            .run();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: took {:?}",
            start.elapsed()
        );
        assert!(
            run.stdout.contains("errno=1 (EPERM)"),
            "{what}\n{}",
            run.dump()
        );
        assert!(
            run.sim.is_empty(),
            "{what}: reached the driver\n{}",
            run.dump()
        );
        assert!(
            run.audit_text.contains("\"key\":\"MFIGUARD_CONFIG\"")
                && run.audit_text.contains(reason),
            "{what}: expected {reason:?}\n{}",
            run.dump()
        );
    }
}
