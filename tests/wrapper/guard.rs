//! With the real guard: the probe and a client intercepted through the wrapper, the seed's STP
//! probe fixed, both ELF classes at once.

use std::path::Path;
use std::process::Command;

use crate::common::wrapper::*;
use crate::common::*;

// ---- with the real guard ------------------------------------------------------------------------

#[test]
fn the_probe_under_the_library_is_intercepted_with_the_guard() {
    let out = run(scrub(&mut Command::new(target_probe()))
        .env("LD_PRELOAD", guard_lib())
        .env("MFIGUARD_DEVICE", "/dev/null")
        .env("MFIGUARD_MODE", "enforce")
        .env("MFIGUARD_LOG", "none")
        .env("MFIGUARD_CONFIG", NO_CONFIG));
    assert_eq!(
        out.stdout,
        "intercepted: yes (EINVAL from mfiguard)\n",
        "{}",
        out.dump()
    );
    assert_eq!(out.code(), 0);
    assert_eq!(out.stderr, "");
}

#[test]
fn check_proves_interception_with_the_guard() {
    let s = Scratch::new("check-real");
    let dir = guard_dir(&s);
    let class = guard_class();
    let proven = format!(
        "library ({class}-bit): {}\n    intercepted: yes (EINVAL from mfiguard)\n",
        class_lib(&dir, class).display()
    );
    // Without TOOL the 64-bit library is the one under test; a 32-bit one is checked too.
    let has64 = class_lib(&dir, 64).is_file();
    let out = run(&mut wrap(&dir, &["--check"]));
    assert!(out.stdout.contains(&proven), "{}", out.dump());
    if has64 {
        assert!(
            out.stdout
                .ends_with("result: OK: the guard loads and intercepts\n"),
            "{}",
            out.dump()
        );
        assert_eq!(out.code(), 0, "{}", out.dump());
    } else {
        assert!(
            out.stdout.contains(&format!(
                "library (64-bit): {}: not installed\n",
                class_lib(&dir, 64).display()
            )) && out.stdout.ends_with("result: FAILED: see above\n"),
            "{}",
            out.dump()
        );
        assert_eq!(out.code(), 1, "{}", out.dump());
    }
    assert_eq!(out.stderr, "");

    // ... and for a tool: the probe itself (of the guard's class), and a script (whose
    // interpreter, /bin/sh, is a 64-bit program).
    let script = s.path("monitor.sh");
    write_exec(&script, "#!/bin/sh\nexit 0\n");
    for tool in [target_probe(), script] {
        let out = run(&mut wrap(&dir, &["--check", tool.to_str().unwrap()]));
        let tool_class = if tool == target_probe() { class } else { 64 };
        if tool_class == 32 || has64 {
            assert_eq!(out.code(), 0, "{}", out.dump());
            assert!(
                out.stdout
                    .contains("result: OK: the guard loads, intercepts, and can apply to"),
                "{}",
                out.dump()
            );
            assert!(
                out.stdout.contains(&format!(
                    "library ({tool_class}-bit): {}\n    intercepted: yes",
                    class_lib(&dir, tool_class).display()
                )),
                "{}",
                out.dump()
            );
        } else {
            assert_eq!(out.code(), 1, "{}", out.dump());
            assert!(
                out.stdout.contains("library (64-bit): ") && out.stdout.contains("not installed"),
                "{}",
                out.dump()
            );
        }
    }
    // A site policy that would let the probe through does not fool the self-test.
    let conf = s.path("lax.conf");
    std::fs::write(&conf, "mode = off\nallow = ioc.sge-count\n").unwrap();
    let probe = target_probe();
    let out = run(wrap(&dir, &["--check", probe.to_str().unwrap()])
        .env("MFIGUARD_CONFIG", &conf)
        .env("MFIGUARD_MODE", "audit")
        .env("MFIGUARD_ALLOW", "ioc.sge-count"));
    assert!(out.stdout.contains(&proven), "{}", out.dump());
    assert_eq!(out.code(), 0, "{}", out.dump());
}

/// The probe as the wrapped tool: the options reach the real library.
#[test]
fn the_wrapper_guards_a_client_with_the_guard() {
    let s = Scratch::new("guarded");
    let dir = guard_dir(&s);
    let probe = target_probe();
    let probe_s = probe.to_str().unwrap();
    let log = s.path("audit.jsonl");
    let log_s = log.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--log", "none"], "intercepted: yes"),
        (&["--log", "none", "--mode", "enforce"], "intercepted: yes"),
        (&["--log", "none", "--mode", "readonly"], "intercepted: yes"),
        (&["--log", "none", "--mode", "audit"], "intercepted: no"),
        (&["--log", "none", "--mode", "off"], "intercepted: no"),
        (
            &["--log", "none", "--allow", "ioc.sge-count"],
            "intercepted: no",
        ),
        (&["--log", log_s, "--mode", "enforce"], "intercepted: yes"),
    ];
    for (opts, want) in cases {
        let mut args = opts.to_vec();
        args.extend(["--", probe_s]);
        let out = run(wrap(&dir, &args).env("MFIGUARD_DEVICE", "/dev/null"));
        assert!(out.stdout.starts_with(want), "{opts:?}\n{}", out.dump());
        assert_eq!(
            out.code(),
            i32::from(*want == "intercepted: no"),
            "{opts:?}\n{}",
            out.dump()
        );
    }
    // The file log has the rejected call, with the rule that rejected it.
    let records = parse_records(&read(&log), "audit log");
    let calls = merge_calls(&records);
    assert_eq!(calls.len(), 1, "{records:?}");
    assert_eq!(text(&calls[0], "verdict"), Some("reject"), "{:?}", calls[0]);
    assert!(
        calls[0].to_string().contains("ioc.sge-count"),
        "{:?}",
        calls[0]
    );

    // The same through a script that runs the probe: LD_PRELOAD is inherited.
    let script = s.path("cron-job.sh");
    write_exec(&script, &format!("#!/bin/sh\nexec {probe_s}\n"));
    let out = run(wrap(&dir, &["--log", "none", script.to_str().unwrap()])
        .env("MFIGUARD_DEVICE", "/dev/null"));
    if guard_class() == 64 {
        assert_eq!(
            out.stdout,
            "intercepted: yes (EINVAL from mfiguard)\n",
            "{}",
            out.dump()
        );
    } else if !class_lib(&dir, 64).is_file() {
        // The script's interpreter is 64-bit: with no 64-bit library nothing runs.
        assert_eq!(out.code(), 125, "{}", out.dump());
        assert!(
            out.stderr.contains(&format!(
                "the guard library {} is not installed",
                class_lib(&dir, 64).display()
            )),
            "{}",
            out.dump()
        );
        assert_eq!(out.stdout, "");
    } else {
        // With both libraries: the script gets the 64-bit one, which ld.so cannot load into
        // the 32-bit program the script starts (the limit `--check SCRIPT` warns about).
        assert!(
            out.stdout.starts_with("intercepted: no") && out.stderr.contains("wrong ELF class"),
            "{}",
            out.dump()
        );
    }
    // A script that runs a 32-bit tool through the wrapper itself (as the README advises):
    // the tool gets its own class's library.
    if guard_class() == 32 {
        let script = s.path("cron-job32.sh");
        write_exec(
            &script,
            &format!(
                "#!/bin/sh\nexec {} --log none {probe_s}\n",
                wrapper().display()
            ),
        );
        let out = run(scrub(&mut Command::new(&script))
            .env("MFIGUARD_LIB_DIR", &dir)
            .env("MFIGUARD_CONFIG", NO_CONFIG)
            .env("MFIGUARD_DEVICE", "/dev/null"));
        assert_eq!(
            out.stdout,
            "intercepted: yes (EINVAL from mfiguard)\n",
            "{}",
            out.dump()
        );
        assert_eq!(out.stderr, "", "{}", out.dump());
    }
}

/// The site config's key names are the library's: a commented-out line of the packaged
/// `/etc/mfiguard.conf`, switched on, changes what the library does.
#[test]
fn the_packaged_config_keys_reach_the_library_with_the_guard() {
    let s = Scratch::new("conf");
    let dir = guard_dir(&s);
    let packaged = read(&root().join("packaging/mfiguard.conf"));
    for key_line in [
        "#mode = enforce",
        "#lowest_mode = enforce",
        "#preview = yes",
        "#log = journal, /var/log/mfiguard/audit.jsonl",
        "#audit = findings",
        "#allow = sgl.offset-unusual",
        "#log_sync = 0",
        "#log_required = 0",
    ] {
        assert!(
            packaged.contains(&format!("\n{key_line}\n")),
            "{key_line} is not in the packaged config"
        );
    }
    // Nothing is switched on before the sections: the built-in defaults apply to everyone the
    // shipped jobs' sections do not name.
    let (top, sections) = packaged
        .split_once("\n[")
        .expect("the shipped jobs' sections");
    assert!(
        top.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "the packaged config sets something before its sections"
    );
    for l in format!("[{sections}").lines() {
        assert!(
            l.is_empty() || l.starts_with('#') || l.starts_with("[tool ") || l == "mode = readonly",
            "the packaged config's sections set {l:?}"
        );
    }
    for (line, want) in [
        ("mode = audit", "intercepted: no"),
        ("mode = off", "intercepted: no"),
        ("allow = ioc.sge-count", "intercepted: no"),
        ("mode = enforce", "intercepted: yes"),
        ("mode = readonly", "intercepted: yes"),
    ] {
        let conf = s.path("mfiguard.conf");
        std::fs::write(
            &conf,
            packaged
                .replace(
                    "#log = journal, /var/log/mfiguard/audit.jsonl",
                    "log = none",
                )
                .replacen("\n#mode = enforce\n", &format!("\n{line}\n"), 1),
        )
        .unwrap();
        let out = run(wrap(&dir, &["--", target_probe().to_str().unwrap()])
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFIGUARD_CONFIG", &conf));
        assert!(
            out.stdout.starts_with(want),
            "config line {line:?}\n{}",
            out.dump()
        );
    }
}

/// MegaCli 8.01.06's STP probe by `client` against the simulator `sim`, bare (`dir` is `None`)
/// or through the wrapper with `MFIGUARD_LIB_DIR=dir` and a file log: what ran, the simulator's
/// one record, and the guarded calls of the audit log.
fn stp_run(
    s: &Scratch,
    dir: Option<&Path>,
    client: &Path,
    sim: &Path,
    tag: &str,
) -> (Out, Value, Vec<Value>) {
    let record = s.path(&format!("sim-{tag}.jsonl"));
    let log = s.path(&format!("audit-{tag}.jsonl"));
    let mut cmd = match dir {
        Some(dir) => {
            let mut c = wrap(dir, &["--log", log.to_str().unwrap(), "--"]);
            c.arg(client);
            c
        }
        None => {
            let mut c = Command::new(client);
            scrub(&mut c);
            c
        }
    };
    // The simulator is loaded after the guard (the wrapper keeps it in LD_PRELOAD).
    cmd.args(["--device", "/dev/null", "stp-probe", "10"])
        .env("LD_PRELOAD", sim)
        .env("MFIGUARD_DEVICE", "/dev/null")
        .env("MFISIM_RECORD", &record);
    let out = run(&mut cmd);
    let recs = parse_lines(
        &std::fs::read_to_string(&record).unwrap_or_default(),
        "simulator",
    );
    assert_eq!(recs.len(), 1, "{}", out.dump());
    let audit = parse_records(&std::fs::read_to_string(&log).unwrap_or_default(), "audit");
    (out, recs[0].clone(), merge_calls(&audit))
}

/// A guarded STP probe by a `class`-bit client: repaired, by the library of that class (the
/// audit record names the process's ABI and request code), with nothing from ld.so.
fn assert_stp_guarded(class: u8, (out, sim, calls): &(Out, Value, Vec<Value>)) {
    assert_eq!(out.code(), 0, "{}", out.dump());
    // (ld.so may complain about the 32-bit simulator in the wrapper's own 64-bit shell.)
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.contains("ld.so") && l.contains("libmfiguard")),
        "ld.so refused the guard\n{}",
        out.dump()
    );
    assert_eq!(firmware_addrs(sim)[0], "0x91dfc000", "{}", out.dump());
    assert_eq!(sim["wild_dma"].as_array().map(Vec::len), Some(0), "{sim}");
    assert_eq!(calls.len(), 1, "{calls:?}\n{}", out.dump());
    let call = &calls[0];
    assert_eq!(text(call, "verdict"), Some("rewrite"), "{call:?}");
    assert!(
        call.to_string().contains("frame.addressing-flags"),
        "{call:?}"
    );
    let (abi, code) = if class == 32 {
        ("i386", "0xc1144d01")
    } else {
        ("x86_64", "0xc1944d01")
    };
    assert_eq!(text(call, "abi"), Some(abi), "{call:?}");
    assert_eq!(text(call, "request_code"), Some(code), "{call:?}");
}

/// The seed's bug, through the wrapper: MegaCli 8.01.06's STP probe against the legacy-driver
/// simulator, by a client of the guard's class.
#[test]
fn the_wrapper_fixes_the_seed_stp_probe_with_the_guard() {
    let s = Scratch::new("stp");
    let dir = guard_dir(&s);
    let ex = examples();
    let (bare, sim, _) = stp_run(&s, None, &ex.client, &ex.sim, "bare");
    assert_eq!(firmware_addrs(&sim)[0], "0x1491dfc000", "{}", bare.dump());
    let guarded = stp_run(&s, Some(&dir), &ex.client, &ex.sim, "wrapped");
    assert_stp_guarded(guard_class(), &guarded);
}

/// With both libraries installed, as the packages install them, one wrapper guards a 64-bit
/// and a 32-bit MegaCli-like client, each with the library of its own class: the 32-bit one
/// through `i386/libmfiguard.so`, on the compat layout (276-byte packet).
#[test]
fn both_libraries_guard_a_64_and_a_32_bit_client_each_with_the_guard() {
    let s = Scratch::new("both");
    let (dir, a64, a32) = match both_dir(&s) {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "note: SKIPPED: the other ELF class cannot be built here ({e}); install it \
                 with `rustup target add i686-unknown-linux-gnu` and gcc-multilib"
            );
            return;
        }
    };
    eprintln!(
        "note: both libraries under {}; 32-bit client {}",
        dir.display(),
        a32.client.display()
    );
    // The self-test proves both libraries.
    let out = run(&mut wrap(&dir, &["--check"]));
    for c in [64, 32] {
        assert!(
            out.stdout.contains(&format!(
                "library ({c}-bit): {}\n    intercepted: yes (EINVAL from mfiguard)\n",
                class_lib(&dir, c).display()
            )),
            "{}",
            out.dump()
        );
    }
    assert_eq!(out.code(), 0, "{}", out.dump());
    // --check on each client names its class, and that class's library comes first.
    for (c, a) in [(64, a64), (32, a32)] {
        let out = run(&mut wrap(&dir, &["--check", a.client.to_str().unwrap()]));
        assert_eq!(out.code(), 0, "{}", out.dump());
        let first_lib = out
            .stdout
            .lines()
            .find(|l| l.starts_with("library ("))
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            first_lib,
            format!("library ({c}-bit): {}", class_lib(&dir, c).display()),
            "{}",
            out.dump()
        );
        assert!(
            out.stdout
                .contains(&format!("ELF {c}-bit, dynamically linked")),
            "{}",
            out.dump()
        );
    }
    // The seed's STP probe, by each client: each repaired by its own library.
    for (c, a) in [(64, a64), (32, a32)] {
        let (bare, sim, _) = stp_run(&s, None, &a.client, &a.sim, &format!("bare{c}"));
        assert_eq!(firmware_addrs(&sim)[0], "0x1491dfc000", "{}", bare.dump());
        let guarded = stp_run(&s, Some(&dir), &a.client, &a.sim, &format!("wrapped{c}"));
        assert_stp_guarded(c, &guarded);
    }
    // Each class's probe, run through the wrapper, is intercepted (ld.so says nothing).
    for (c, a) in [(64, a64), (32, a32)] {
        let out = run(wrap(&dir, &["--", a.probe.to_str().unwrap()])
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFIGUARD_LOG", "none"));
        assert_eq!(
            out.stdout,
            "intercepted: yes (EINVAL from mfiguard)\n",
            "{c}-bit probe\n{}",
            out.dump()
        );
        assert_eq!(out.stderr, "", "{}", out.dump());
    }
}
