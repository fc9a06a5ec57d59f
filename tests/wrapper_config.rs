//! `mfiguard-run` and the library read one configuration the same way (`core/src/config.rs`):
//! an unknown key is refused by the wrapper (exit 125, one line naming FILE:LINE or the
//! variable, the key, the value and the valid keys, closest first) and makes the library take
//! the strictest mode (readonly) with an error record; values are read in any case wherever
//! they come from; a config file that is not a small regular file nobody else can change is
//! refused, without waiting on it or reading it whole. The oracle of the library's side is the
//! simulator's record: what reached the (simulated) driver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::ffi::CString;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A library directory whose `libmfiguard.so` loads but guards nothing (the C library).
fn stand_in(s: &Scratch) -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let libc = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            let n = p.rsplit('/').next().unwrap_or("");
            n.starts_with("libc.so") || n.starts_with("libc-")
        })
        .expect("libc in /proc/self/maps");
    let dir = s.path("stand-in");
    std::fs::create_dir_all(&dir).unwrap();
    symlink(libc, dir.join("libmfiguard.so")).unwrap();
    dir
}

/// A library directory with the real guard where the wrapper looks for its ELF class.
fn guard_dir(s: &Scratch) -> PathBuf {
    let lib = guard_lib();
    let mut class = [0u8; 5];
    use std::io::Read;
    std::fs::File::open(lib)
        .unwrap()
        .read_exact(&mut class)
        .unwrap();
    let dir = s.path("guard");
    let sub = if class[4] == 1 {
        dir.join("i386")
    } else {
        dir.clone()
    };
    std::fs::create_dir_all(&sub).unwrap();
    symlink(lib, sub.join("libmfiguard.so")).unwrap();
    dir
}

/// `mfiguard-run ARGS` with nothing from the test runner's environment.
fn wrap(lib_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(wrapper_bin());
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MFIGUARD_") || k.starts_with("MFISIM_") {
            cmd.env_remove(&k);
        }
    }
    // The library's reading of the policy is what these tests are about: the preload.
    cmd.stdin(Stdio::null())
        .env("MFIGUARD_VIA", "preload")
        .env("MFIGUARD_LIB_DIR", lib_dir)
        .env("MFIGUARD_CONFIG", "/dev/null")
        .args(args);
    cmd
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Out {
    fn dump(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(cmd: &mut Command) -> Out {
    let start = Instant::now();
    let (status, stdout, stderr) = run_with_timeout(
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()),
        RUN_TIMEOUT,
    );
    Out {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        took: start.elapsed(),
    }
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
    assert_eq!(out.code, 125, "{}", out.dump());
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "mfiguard-run: moed=\"audit\" (from {conf_s}:3): unknown key; valid keys: mode, log, audit, allow, debug, device, log_sync, log_required\n"
        )
    );
    assert!(!marker.exists(), "the tool ran");
    // Prefixed and in capitals: the same key.
    std::fs::write(&conf, "MFIGUARD_LOG_SINK = stderr\n").unwrap();
    let out = run(wrap(&lib, &[tool]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(out.code, 125, "{}", out.dump());
    assert!(
        out.stderr.starts_with(&format!(
            "mfiguard-run: MFIGUARD_LOG_SINK=\"stderr\" (from {conf_s}:1): unknown key; valid keys: log_sync, "
        )),
        "{}",
        out.dump()
    );
    // --check shows it and fails.
    let out = run(wrap(&lib, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(out.code, 1, "{}", out.dump());
    assert!(
        out.stdout.contains(&format!(
            "\n  INVALID: MFIGUARD_LOG_SINK=\"stderr\" (from {conf_s}:1): unknown key"
        )),
        "{}",
        out.dump()
    );

    // In the environment: the variable, its value, the valid ones (MFIGUARD_MODE first).
    let out = run(wrap(&lib, &[tool]).env("MFIGUARD_MOED", "audit"));
    assert_eq!(out.code, 125, "{}", out.dump());
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
    assert_eq!(out.code, 125, "{}", out.dump());

    // Variables that are not settings pass.
    let out = run(wrap(&lib, &[tool])
        .env("MFIGUARD_LIB32_DIR", s.path("none"))
        .env("MFIGUARD_RUN", "/usr/bin/mfiguard-run")
        .env("MFIGUARD_KERNEL_RELEASE", "6.1.0"));
    assert_eq!(out.code, 0, "{}", out.dump());
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
        assert_eq!(out.code, 125, "{what}\n{}", out.dump());
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
        assert_eq!(out.code, 125, "{what}\n{}", out.dump());
        assert!(out.stderr.contains(reason), "{what}\n{}", out.dump());
    }
    // The near twin: the same small file, private, is read.
    let ok = s.path("ok.conf");
    std::fs::write(&ok, "mode = audit\n").unwrap();
    std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(wrap(&lib, &[tool.to_str().unwrap()]).env("MFIGUARD_CONFIG", &ok));
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(marker.exists());
}

/// The library, given those files, neither hangs nor grows: it takes readonly and says why.
#[test]
fn the_library_given_a_hostile_config_file_is_readonly_and_records_why() {
    let s = Scratch::new("lib-hostile");
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
