//! The command line: help, version, usage errors, exit statuses, what the tool keeps of its
//! own, the options and the environment the library gets, and the lints of what ships with it.

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::common::wrapper::*;
use crate::common::*;

// ---- help, version, usage ----------------------------------------------------------------------

#[test]
fn help_is_a_man_page_summary_on_stdout() {
    let s = Scratch::new("help");
    for flag in ["--help", "-h"] {
        let out = run(&mut wrap(&s.0, &[flag]));
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert_eq!(out.stderr, "", "{}", out.dump());
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "ENVIRONMENT",
            "EXIT STATUS",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                out.stdout.contains(&format!("\n{section}\n")) || out.stdout.starts_with(section),
                "--help lacks {section}\n{}",
                out.dump()
            );
        }
    }
}

#[test]
fn version_is_the_package_version() {
    let s = Scratch::new("version");
    for flag in ["--version", "-V"] {
        let out = run(&mut wrap(&s.0, &[flag]));
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert_eq!(
            out.stdout,
            format!("mfiguard-run {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(out.stderr, "");
    }
    let man = read(&root().join("doc/mfiguard-run.1"));
    assert!(
        man.contains(&format!("\"mfiguard {}\"", env!("CARGO_PKG_VERSION"))),
        "the man page's .TH names another version"
    );
}

/// The options of `--help`, of the man page, of the option parser and of the bash completion
/// are the same set.
#[test]
fn help_man_page_parser_and_completion_know_the_same_options() {
    let s = Scratch::new("opts");
    let help = run(&mut wrap(&s.0, &["--help"])).stdout;
    let long = |text: &str| -> BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '\\'))
            .map(|w| w.replace("\\-", "-"))
            .filter(|w| w.starts_with("--") && w.len() > 2 && !w.starts_with("---"))
            .collect()
    };
    let help_opts = long(&help);
    let man_opts = long(&read(&root().join("doc/mfiguard-run.1")));
    let completion_opts = long(&read(&integration("bash-completion/mfiguard-run")));
    // The parser's options: the `long` fields of the clap struct in cli/src/settings.rs.
    let src = read(&root().join("cli/src/settings.rs"));
    let cli = src
        .split("pub struct Cli {")
        .nth(1)
        .and_then(|t| t.split("\n}").next())
        .expect("the Cli struct");
    let mut parser_opts = BTreeSet::new();
    let mut long = false;
    for line in cli.lines().map(str::trim) {
        if line.starts_with("#[arg(") {
            long = line.contains("long");
        } else if let Some(field) = line.strip_prefix("pub ") {
            if long {
                let name = field.split(':').next().unwrap().trim();
                parser_opts.insert(format!("--{}", name.replace('_', "-")));
            }
            long = false;
        }
    }
    assert!(parser_opts.contains("--require-guard"), "{parser_opts:?}");
    // Each is an option the wrapper knows (not "unknown option"), and a bogus one is not.
    for opt in parser_opts.iter().chain(["--bogus".to_string()].iter()) {
        let out = run(&mut wrap(&s.0, &[opt.as_str(), "x", "true"]));
        assert_eq!(
            out.stderr.contains("unknown option"),
            opt == "--bogus",
            "{opt}\n{}",
            out.dump()
        );
    }
    assert_eq!(help_opts, parser_opts, "--help vs the option parser");
    assert_eq!(man_opts, parser_opts, "the man page vs the option parser");
    assert_eq!(
        completion_opts, parser_opts,
        "the bash completion vs the option parser"
    );
}

#[test]
fn usage_errors_exit_125_and_print_nothing_on_stdout() {
    let s = Scratch::new("usage");
    let lib = stand_in(&s);
    let cases: &[(&[&str], &str)] = &[
        (&[], "no TOOL"),
        (&["--bogus", "true"], "unknown option '--bogus'"),
        (&["--mode"], "--mode needs a value"),
        (&["--mode", "strict", "true"], "'strict' is not one of"),
        (&["--mode=", "true"], "'' is not one of"),
        (
            &["--log", "audit.jsonl", "true"],
            "not syslog, stderr, none or an absolute path",
        ),
        (
            &["--allow", "sgl.bound", "true"],
            "unknown rule id 'sgl.bound'",
        ),
        (
            &["--allow", "sgl.bounds,", "true"],
            "not a comma-separated list",
        ),
        (&["--allow=", "true"], "not a comma-separated list"),
        (
            &["--config", "relative.conf", "true"],
            "not an absolute path",
        ),
        (&["--config", "/nonexistent/x.conf", "true"], "cannot read"),
        (&["--check", "true", "false"], "at most one TOOL"),
    ];
    for (args, msg) in cases {
        let out = run(&mut wrap(&lib, args));
        assert_eq!(out.code(), 125, "{args:?}\n{}", out.dump());
        assert_eq!(out.stdout, "", "{args:?}\n{}", out.dump());
        assert!(
            out.stderr.starts_with("mfiguard-run: ") && out.stderr.contains(msg),
            "{args:?}: expected {msg:?}\n{}",
            out.dump()
        );
    }
    // "--mode=" is empty, not unset: refused above. The valid values all pass.
    for mode in ["enforce", "audit", "off", "readonly"] {
        let out = run(&mut wrap(&lib, &["--mode", mode, "true"]));
        assert_eq!(out.code(), 0, "{mode}\n{}", out.dump());
    }
}

#[test]
fn a_missing_tool_is_127_and_a_non_executable_one_126() {
    let s = Scratch::new("notfound");
    let lib = stand_in(&s);
    let out = run(wrap(&lib, &["mfiguard-no-such-tool"]).env("PATH", "/usr/bin:/bin"));
    assert_eq!(out.code(), 127, "{}", out.dump());
    assert!(out
        .stderr
        .contains("mfiguard-no-such-tool: command not found"));
    let out = run(&mut wrap(&lib, &["/nonexistent/MegaCli64"]));
    assert_eq!(out.code(), 127, "{}", out.dump());
    let plain = s.path("plain");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let out = run(&mut wrap(&lib, &[plain.to_str().unwrap()]));
    assert_eq!(out.code(), 126, "{}", out.dump());
    assert!(out.stderr.contains("not an executable file"));
    let out = run(&mut wrap(&lib, &[s.0.to_str().unwrap()]));
    assert_eq!(out.code(), 126, "a directory\n{}", out.dump());
    assert_eq!(out.stdout, "");
}

#[test]
fn a_missing_library_is_a_clear_error_before_the_tool_runs() {
    let s = Scratch::new("nolib");
    let marker = s.path("ran");
    let tool = s.path("tool");
    write_exec(&tool, &format!("#!/bin/sh\ntouch {}\n", marker.display()));
    let empty = s.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(&mut wrap(&empty, &[tool.to_str().unwrap()]));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains(&format!(
            "{}/libmfiguard.so is not installed",
            empty.display()
        )) && out.stderr.contains("MFIGUARD_LIB_DIR"),
        "{}",
        out.dump()
    );
    assert!(!marker.exists(), "the tool ran without its guard");
}

// ---- exec: the tool's status, output and process are its own -------------------------------

#[test]
fn the_tool_keeps_its_pid_exit_status_stdout_and_stderr_byte_for_byte() {
    let s = Scratch::new("exec");
    let lib = stand_in(&s);
    // Bytes a text-mangling wrapper would break: NUL, 0xff, CR, no final newline.
    let script = r"printf 'out\000\377\r\nlast'; printf 'err\001\n' >&2; exit 42";
    let direct: Output = scrub(Command::new("sh").args(["-c", script]))
        .output()
        .unwrap();
    let wrapped: Output = wrap(&lib, &["sh", "-c", script]).output().unwrap();
    assert_eq!(direct.status.code(), Some(42));
    assert_eq!(wrapped.status.code(), Some(42));
    assert_eq!(wrapped.stdout, direct.stdout);
    assert_eq!(wrapped.stderr, direct.stderr);
    assert_eq!(wrapped.stdout, b"out\0\xff\r\nlast");

    // exec, not fork: the tool runs as the very process that was started.
    let child = wrap(&lib, &["sh", "-c", "echo $$"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());

    // stdin reaches the tool.
    let mut child = wrap(&lib, &["cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"to the tool\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"to the tool\n");
}

#[test]
fn a_tool_killed_by_a_signal_looks_killed_by_that_signal() {
    use std::os::unix::process::ExitStatusExt;
    let s = Scratch::new("signal");
    let lib = stand_in(&s);
    let out = run(&mut wrap(&lib, &["sh", "-c", "kill -TERM $$"]));
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{}", out.dump());
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");
}

// ---- options and the environment ---------------------------------------------------------------

pub(crate) const SHOW_ENV: &str = r#"printf '%s|%s|%s|%s|%s|%s|' "${LD_PRELOAD-unset}" "${MFIGUARD_MODE-unset}" "${MFIGUARD_LOG-unset}" "${MFIGUARD_ALLOW-unset}" "${MFIGUARD_AUDIT-unset}" "${MFIGUARD_CONFIG-unset}"; printf '%s,' "$@""#;

pub(crate) fn show_env(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert_eq!(out.code(), 0, "{}", out.dump());
    out.stdout
}

#[test]
fn options_become_the_libraries_environment() {
    let s = Scratch::new("env");
    let lib = stand_in(&s);
    let so = lib.join("libmfiguard.so");
    let conf = s.path("site.conf");
    std::fs::write(&conf, "mode = audit\n").unwrap();
    let conf_s = conf.to_str().unwrap();
    // A log in a directory that exists (the wrapper refuses a log whose directory is missing).
    let log = s.path("audit.jsonl");
    let log_s = log.to_str().unwrap();

    // No option: nothing is set for the library but LD_PRELOAD (the config path is the test's).
    let got = show_env(&mut wrap(&lib, &["sh", "-c", SHOW_ENV, "sh", "a", "b"]));
    assert_eq!(
        got,
        format!("{}|unset|unset|unset|unset|/dev/null|a,b,", so.display())
    );

    // Every option, both spellings; --allow accumulates.
    let got = show_env(&mut wrap(
        &lib,
        &[
            "--mode",
            "audit",
            &format!("--log={log_s}"),
            "--allow",
            "sgl.offset-unusual",
            "--allow=xfer.length,sense.length",
            "--audit-all",
            "--config",
            conf_s,
            "--",
            "sh",
            "-c",
            SHOW_ENV,
            "sh",
            "--mode",
            "off",
        ],
    ));
    assert_eq!(
        got,
        format!(
            "{}|audit|{log_s}|sgl.offset-unusual,xfer.length,sense.length|all|{conf_s}|--mode,off,",
            so.display()
        )
    );

    // Options override the environment; without an option the environment passes through.
    let got = show_env(
        wrap(&lib, &["--mode", "enforce", "sh", "-c", SHOW_ENV, "sh"])
            .env("MFIGUARD_MODE", "off")
            .env("MFIGUARD_LOG", "stderr"),
    );
    assert!(
        got.starts_with(&format!("{}|enforce|stderr|", so.display())),
        "{got}"
    );

    // An option given twice takes its last value (flags may be repeated).
    let got = show_env(&mut wrap(
        &lib,
        &[
            "--mode",
            "audit",
            "--audit-all",
            "--mode=off",
            "--audit-all",
            "sh",
            "-c",
            SHOW_ENV,
        ],
    ));
    assert!(got.contains("|off|") && got.contains("|all|"), "{got}");

    // The first word that is not an option is the tool; what follows is the tool's.
    let got = show_env(&mut wrap(
        &lib,
        &[
            "--mode", "off", "sh", "-c", SHOW_ENV, "sh", "--mode", "audit", "--",
        ],
    ));
    assert!(
        got.contains("|off|") && got.ends_with("|--mode,audit,--,"),
        "{got}"
    );

    // "--" lets a tool name start with a dash.
    let dash_tool = s.path("-tool");
    write_exec(&dash_tool, "#!/bin/sh\necho dash-tool \"$@\"\n");
    let out =
        run(wrap(&lib, &["--", "-tool", "x"])
            .env("PATH", format!("{}:/usr/bin:/bin", s.0.display())));
    assert_eq!(out.stdout, "dash-tool x\n", "{}", out.dump());
}

#[test]
fn the_guard_goes_first_in_ld_preload_and_replaces_another_guard() {
    let s = Scratch::new("preload");
    let lib = stand_in(&s);
    let so = lib.join("libmfiguard.so");
    // Libraries that really load, so that ld.so prints nothing.
    let other = s.path("libother.so");
    symlink(libc_path(), &other).unwrap();
    let old_guard_dir = s.path("old");
    std::fs::create_dir_all(&old_guard_dir).unwrap();
    let old_guard = old_guard_dir.join("libmfiguard.so");
    symlink(libc_path(), &old_guard).unwrap();

    let show = ["sh", "-c", r#"printf '%s' "$LD_PRELOAD""#];
    let cases = [
        (
            format!("{}", other.display()),
            format!("{}:{}", so.display(), other.display()),
        ),
        (
            format!("{} {}", old_guard.display(), other.display()),
            format!("{}:{}", so.display(), other.display()),
        ),
        (
            format!("{}:{}:", other.display(), old_guard.display()),
            format!("{}:{}", so.display(), other.display()),
        ),
        (String::new(), format!("{}", so.display())),
    ];
    for (before, after) in cases {
        let out = run(wrap(&lib, &show).env("LD_PRELOAD", &before));
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert_eq!(out.stdout, after, "LD_PRELOAD={before:?}");
        assert_eq!(out.stderr, "", "{}", out.dump());
    }
}

/// The caller's `LD_PRELOAD` is kept for the tool, behind the guard: a library ld.so cannot
/// load (one of a 32-bit tool's class, here a missing one) costs one complaint from ld.so in
/// the wrapper's own process and one in the tool's, and nothing more.
#[test]
fn the_callers_ld_preload_is_for_the_tool_not_for_the_wrappers_helpers() {
    let s = Scratch::new("preload-helpers");
    let lib = stand_in(&s);
    let missing = s.path("libvendor32.so");
    let out =
        run(wrap(&lib, &["sh", "-c", r#"printf '%s' "$LD_PRELOAD""#]).env("LD_PRELOAD", &missing));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(
        out.stdout,
        format!(
            "{}:{}",
            lib.join("libmfiguard.so").display(),
            missing.display()
        )
    );
    let complaints = out
        .stderr
        .lines()
        .filter(|l| l.contains("libvendor32.so"))
        .count();
    assert_eq!(complaints, 2, "{}", out.dump());
}

/// The wrapper takes its rule ids from the sanitizer (no copied list in its source), and each
/// id is accepted by `--allow`.
#[test]
fn allow_knows_exactly_the_sanitizers_rule_ids() {
    let sanitizer_ids: BTreeSet<&str> = mfiguard_sanitizer::RuleId::ALL
        .iter()
        .map(|r| r.name())
        .collect();
    let src = root().join("cli/src");
    let files = std::fs::read_dir(&src)
        .unwrap()
        .chain(std::fs::read_dir(src.join("bin")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file());
    for p in files {
        let text = read(&p);
        for id in &sanitizer_ids {
            assert!(
                !text.contains(&format!("\"{id}\"")),
                "{} copies the rule id {id}",
                p.display()
            );
        }
    }

    let completion = read(&integration("bash-completion/mfiguard-run"));
    for id in &sanitizer_ids {
        assert!(completion.contains(id), "the bash completion lacks {id}");
    }

    let s = Scratch::new("allow");
    let lib = stand_in(&s);
    let all = sanitizer_ids.iter().copied().collect::<Vec<_>>().join(",");
    let got = show_env(&mut wrap(&lib, &["--allow", &all, "sh", "-c", SHOW_ENV]));
    assert!(got.contains(&format!("|{all}|")), "{got}");
}

// ---- portability and lint ---------------------------------------------------------------------

/// The wrapper is a native program: it needs no shell or helper programs, and works with the
/// bare environment cron or sudo give it (no PATH: the default one; no HOME, no locale).
#[test]
fn the_wrapper_runs_with_an_empty_environment() {
    let s = Scratch::new("bare-env");
    let lib = stand_in(&s);
    let so = lib.join("libmfiguard.so");
    let w = wrapper();
    let head = std::fs::read(&w).unwrap();
    assert_eq!(
        &head[..4],
        b"\x7fELF",
        "{} is not a native program",
        w.display()
    );
    let mut cmd = Command::new(&w);
    cmd.env_clear()
        .env("MFIGUARD_VIA", "preload")
        .stdin(Stdio::null())
        .args([
            "--mode",
            "audit",
            "--allow",
            "sgl.bounds",
            "--",
            "sh",
            "-c",
            SHOW_ENV,
            "sh",
            "x y",
        ])
        .env("MFIGUARD_LIB_DIR", &lib);
    let out = run(&mut cmd);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(
        out.stdout,
        format!("{}|audit|unset|sgl.bounds|unset|unset|x y,", so.display())
    );
    let mut cmd = Command::new(&w);
    cmd.env_clear()
        .stdin(Stdio::null())
        .args(["--check", "/bin/sh"])
        .env("MFIGUARD_LIB_DIR", &lib)
        .env("MFIGUARD_CONFIG", NO_CONFIG)
        .env(
            "MFIGUARD_KERNEL_RELEASE",
            "5.10.0-30-amd64 Debian 5.10.218-1",
        );
    let out = run(&mut cmd);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout.contains("ELF 64-bit, dynamically linked")
            && out.stdout.contains("present: backported in 5.10.4")
            && out.stdout.contains("intercepted: no (ENOTTY"),
        "{}",
        out.dump()
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn the_shell_scripts_pass_their_linters() {
    let scripts = [
        integration("nagios/check_mfiguard"),
        integration("prometheus/mfiguard-textfile"),
        integration("path-shim/MegaCli64"),
        root().join("packaging/build-packages.sh"),
    ];
    for p in &scripts {
        let st = Command::new("dash")
            .arg("-n")
            .arg(p)
            .status()
            .expect("dash");
        assert!(st.success(), "dash -n {}", p.display());
    }
    let posix: Vec<&PathBuf> = scripts.iter().collect();
    if have("checkbashisms") {
        for p in &posix {
            let out = run(Command::new("checkbashisms").arg("-f").arg(p));
            assert_eq!(
                out.code(),
                0,
                "checkbashisms {}\n{}",
                p.display(),
                out.dump()
            );
        }
    } else {
        eprintln!("note: checkbashisms (devscripts) not installed");
    }
    if have("shellcheck") {
        for p in &posix {
            let out = run(Command::new("shellcheck").args(["-s", "sh"]).arg(p));
            assert_eq!(out.code(), 0, "shellcheck {}\n{}", p.display(), out.dump());
        }
        let out = run(Command::new("shellcheck")
            .args(["-s", "bash"])
            .arg(integration("bash-completion/mfiguard-run")));
        assert_eq!(out.code(), 0, "{}", out.dump());
    } else {
        eprintln!("note: shellcheck not installed");
    }
}

#[test]
fn the_man_page_renders_without_warnings() {
    let page = root().join("doc/mfiguard-run.1");
    let man = read(&page);
    assert!(man.starts_with(".\\\"") && man.contains("\n.TH MFIGUARD-RUN 1 "));
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            man.contains(&format!("\n.SH {section}\n"))
                || man.contains(&format!("\n.SH \"{section}\"\n")),
            "{section}"
        );
    }
    if have("groff") {
        let out = run(Command::new("groff").args(["-man", "-ww", "-z"]).arg(&page));
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert_eq!(out.stderr, "", "groff warnings:\n{}", out.stderr);
    } else {
        eprintln!("note: groff not installed: the page was not rendered");
    }
}
