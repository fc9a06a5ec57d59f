//! A raw logical-drive read sent through the management ioctl (`mfi_client ld-read 0`: one
//! well-formed block read), end to end against the legacy-driver simulator. Every driver
//! completes an LD read/write frame through the block layer's SCSI command, which a frame from
//! the ioctl has not: the NULL dereference in interrupt kills the kernel. The simulator records
//! the oops and ends the process inside the call, as the host would end.
//!
//! Without the guard, in audit mode, and in enforce mode with `frame.cmd-forbidden` allowed, the
//! frame reaches the driver and the host dies; in enforce and read-only mode the call fails with
//! EINVAL before the driver; with `frame.cmd-forbidden` allowed, read-only mode still refuses it,
//! with EPERM (`readonly.cmd`, the second line).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::os::unix::process::ExitStatusExt;

const ARGS: [&str; 2] = ["ld-read", "0"];

/// The frame reached the driver, which oopsed completing it; the process died in the call.
fn assert_oopsed(run: &Run) {
    assert_eq!(
        run.status.signal(),
        Some(libc::SIGKILL),
        "the host should die in the driver\n{}",
        run.dump()
    );
    let sim = run.sim_call();
    assert_eq!(text(sim, "cmd_name"), Some("LD_READ"), "{}", run.dump());
    assert!(
        text(sim, "oops").is_some_and(|o| o.contains("megasas_complete_cmd")),
        "{}",
        run.dump()
    );
    assert!(!run.stdout.contains("ret="), "{}", run.dump());
}

/// Refused before the driver (the client printed `result`), recorded in `mode` with these
/// findings, in order.
fn assert_refused(run: &Run, mode: &str, result: &str, rules: &[&str]) {
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert!(run.stdout.contains(result), "{}", run.dump());
    assert!(
        run.sim.is_empty(),
        "the frame reached the driver\n{}",
        run.dump()
    );
    let call = run.audit_call();
    assert_eq!(text(&call, "mode"), Some(mode), "{}", run.dump());
    assert_eq!(text(&call, "cmd"), Some("LD_READ"), "{}", run.dump());
    assert_eq!(text(&call, "verdict"), Some("reject"), "{}", run.dump());
    assert_eq!(finding_rules(&call), rules, "{}", run.dump());
}

#[test]
fn without_the_guard_an_ld_read_kills_the_host() {
    assert_oopsed(&client(&ARGS).run_may_die());
}

#[test]
fn the_guard_refuses_an_ld_read_before_the_driver() {
    let run = client(&ARGS)
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_refused(
        &run,
        "enforce",
        "ret=-1 errno=22 (EINVAL)",
        &["frame.cmd-forbidden"],
    );
    let call = run.audit_call();
    let detail = text(finding(&call, "frame.cmd-forbidden").unwrap(), "detail").unwrap();
    assert!(detail.contains("crashes the kernel"), "{detail}");

    // Read-only mode: the structural rule answers first, the second line fires too.
    let run = client(&ARGS)
        .guard(Guard::DefaultMode)
        .env("MFIGUARD_MODE", "readonly")
        .run();
    assert_refused(
        &run,
        "readonly",
        "ret=-1 errno=22 (EINVAL)",
        &["frame.cmd-forbidden", "readonly.cmd"],
    );

    // With the structural rule allowed, read-only mode still refuses it.
    let run = client(&ARGS)
        .guard(Guard::DefaultMode)
        .env("MFIGUARD_MODE", "readonly")
        .env("MFIGUARD_ALLOW", "frame.cmd-forbidden")
        .run();
    assert_refused(
        &run,
        "readonly",
        "ret=-1 errno=1 (EPERM)",
        &["frame.cmd-forbidden", "readonly.cmd"],
    );
    let call = run.audit_call();
    let f = finding(&call, "frame.cmd-forbidden").unwrap();
    assert_eq!(text(f, "action"), Some("warn"), "{}", run.dump());
}

/// Audit mode changes nothing, and so saves nothing: the decision record, written before the
/// driver runs, is what is left.
#[test]
fn audit_mode_and_an_allowed_rule_let_it_kill_the_host() {
    let run = client(&ARGS).guard(Guard::Audit).run_may_die();
    assert_oopsed(&run);
    let calls = run.audit_calls();
    assert_eq!(calls.len(), 1, "{}", run.dump());
    let call = &calls[0];
    assert_eq!(call["enforced"], Value::Bool(false), "{}", run.dump());
    assert_eq!(
        finding_rules(call),
        ["frame.cmd-forbidden"],
        "{}",
        run.dump()
    );
    // The decision, written before the driver ran, and no outcome.
    assert!(call.get("ret").is_none_or(Value::is_null), "{}", run.dump());

    let run = client(&ARGS)
        .guard(Guard::Enforce)
        .env("MFIGUARD_ALLOW", "frame.cmd-forbidden")
        .run_may_die();
    assert_oopsed(&run);
}
