//! What the guard must not change: a well-formed tool's output (byte for byte), what reaches the
//! driver, ioctls that are not the MegaRAID management requests on the management node, and
//! `MEGASAS_IOC_GET_AEN` (passed through, and recorded). Nothing of the guard's reaches stdout,
//! whatever its log settings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

const CLEAN: [&[&str]; 8] = [
    &["ctrl-info"],
    &["pd-list"],
    &["ld-list"],
    &["event-info"],
    &["inquiry", "8"],
    &["inquiry", "42"],
    &["aen"],
    &["--repeat", "5", "rule", "pass"],
];

#[test]
fn a_clean_tool_prints_the_same_bytes_with_and_without_the_guard() {
    for args in CLEAN {
        let base = client(args).run();
        assert_eq!(base.code(), 0, "{}", base.dump());
        for (log, audit) in [("file", "findings"), ("stderr", "all"), ("syslog", "all")] {
            let mut c = client(args)
                .guard(Guard::Enforce)
                .env("MFIGUARD_AUDIT", audit)
                .env("MFIGUARD_DEBUG", "trace");
            if log != "file" {
                c = c.env("MFIGUARD_LOG", log);
            }
            let run = c.run();
            assert_eq!(run.code(), base.code(), "{}", run.dump());
            assert_eq!(
                run.stdout.as_bytes(),
                base.stdout.as_bytes(),
                "stdout differs (log={log})\n{}",
                run.dump()
            );
            assert_eq!(run.sim_stable(), base.sim_stable(), "{}", run.dump());
        }
    }
}

#[test]
fn unrelated_ioctls_pass_untouched_and_unrecorded() {
    let base = client(&["unrelated"]).run();
    let run = client(&["unrelated"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    // FIONREAD works; the MegaRAID request on a pipe reaches the pipe (ENOTTY from the kernel,
    // not EINVAL from the guard, although the packet breaks a rule); another 'M' request and
    // TCGETS on the management node reach the kernel too.
    assert_eq!(run.stdout, base.stdout, "{}", run.dump());
    assert!(run.sim.is_empty(), "{}", run.dump());
    assert!(
        run.audit_calls().is_empty(),
        "the guard recorded an ioctl that is not its business\n{}",
        run.dump()
    );
}

#[test]
fn get_aen_passes_through_and_is_recorded() {
    let base = client(&["aen"]).run();
    let run = client(&["aen"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(run.stdout, base.stdout);
    assert_eq!(run.sim_stable(), base.sim_stable(), "{}", run.dump());
    let call = run.audit_call();
    let request = format!("{}", call["request"]).to_lowercase();
    assert!(
        request.contains("get_aen") || request.contains("0x400c4d03"),
        "{}",
        run.dump()
    );
    assert_eq!(int(&call, "ret"), Some(0), "{}", run.dump());
}

#[test]
fn an_error_from_the_driver_reaches_the_tool_unchanged() {
    // A controller index the driver does not know: ENODEV from the (simulated) kernel.
    let base = client(&["--host", "3", "ctrl-info"]).run();
    let run = client(&["--host", "3", "ctrl-info"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert_eq!(run.stdout, base.stdout, "{}", run.dump());
    assert!(run.stdout.contains("errno=19 (ENODEV)"), "{}", run.dump());
    let call = run.audit_call();
    assert_eq!(int(&call, "ret"), Some(-1), "{}", run.dump());
    assert_eq!(errno(&call), Some(19), "{}", run.dump());
}

#[test]
fn the_guard_loads_into_a_process_that_never_calls_ioctl() {
    let out = std::process::Command::new("/bin/true")
        .env("LD_PRELOAD", guard_lib())
        .env("MFIGUARD_CONFIG", "/nonexistent/mfiguard.conf")
        .output()
        .expect("run /bin/true");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

/// The syscalls between each pair of `getppid()` markers the `unrelated` scenario puts around
/// its ioctls, from an strace log.
fn between_markers(trace: &str) -> Vec<Vec<String>> {
    let mut groups = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in trace.lines() {
        // "PID name(args) = ret"; strace -qq leaves out the attach/exit noise.
        let call = line
            .split_once(' ')
            .map_or(line, |(_, rest)| rest)
            .trim_start();
        if call.starts_with("getppid(") {
            match current.take() {
                Some(g) => groups.push(g),
                None => current = Some(Vec::new()),
            }
        } else if let Some(g) = current.as_mut() {
            g.push(call.to_owned());
        }
    }
    groups
}

#[test]
fn an_unrelated_ioctl_costs_no_extra_system_call() {
    let probe = std::process::Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "/bin/true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: strace is not available or cannot trace here");
        return;
    }
    let dir = Scratch::new("strace");
    let c = client(&["unrelated"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all");
    let inner = c.command(&dir);
    let trace = dir.path("trace");
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-qq", "-o"]).arg(&trace);
    // The preload goes to the traced client only, not to strace itself.
    for (k, v) in inner.get_envs() {
        match (k.to_str(), v) {
            (Some("LD_PRELOAD"), Some(v)) => {
                cmd.arg("-E")
                    .arg(format!("LD_PRELOAD={}", v.to_string_lossy()));
            }
            (_, Some(v)) => {
                cmd.env(k, v);
            }
            (_, None) => {
                cmd.env_remove(k);
            }
        }
    }
    cmd.env_remove("LD_PRELOAD");
    cmd.arg(inner.get_program()).args(inner.get_args());
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let (status, stdout, stderr) = run_with_timeout(&mut cmd, RUN_TIMEOUT);
    assert!(status.success(), "{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&trace).expect("strace output");
    let groups = between_markers(&text);
    assert_eq!(groups.len(), 5, "five marked ioctls\n{text}");
    // FIONREAD on a pipe, another 'M' request, TCGETS and the other ABI's request code on the
    // device: the ioctl and nothing else. (The MegaRAID request on a pipe, group 1, may cost
    // the guard an fstat to see that the descriptor is not the management node.)
    for i in [0, 2, 3, 4] {
        assert_eq!(groups[i].len(), 1, "group {i}: {:?}", groups[i]);
        assert!(
            groups[i][0].starts_with("ioctl("),
            "group {i}: {:?}",
            groups[i]
        );
    }
    assert!(
        groups[1].iter().filter(|c| c.starts_with("ioctl(")).count() == 1,
        "{:?}",
        groups[1]
    );
}

#[test]
fn a_descriptor_that_is_not_the_management_node_is_not_guarded() {
    // MFIGUARD_DEVICE unset, or naming another device: /dev/null is not the management node,
    // so the guard leaves even the seed's probe alone (other drivers use 'M' ioctls too).
    let base = client(&["stp-probe", "10"]).run();
    for device in [None, Some("/dev/zero")] {
        let mut c = client(&["stp-probe", "10"])
            .guard(Guard::Enforce)
            .env("MFIGUARD_AUDIT", "all");
        c = match device {
            None => c.unset("MFIGUARD_DEVICE"),
            Some(d) => c.env("MFIGUARD_DEVICE", d),
        };
        let run = c.run();
        assert_eq!(run.stdout, base.stdout, "{}", run.dump());
        assert_eq!(run.sim_stable(), base.sim_stable(), "{}", run.dump());
        assert!(run.audit_calls().is_empty(), "{}", run.dump());
    }
}
