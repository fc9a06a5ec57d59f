//! The seed: MegaCli 8.01.06's STP probe of a SATA SSD on a pre-3.3 driver. Without the guard
//! the firmware DMAs the response FIS to 0x1491dfc000; with it, to the driver's 0x91dfc000.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

#[test]
fn the_guard_turns_0x1491dfc000_into_0x91dfc000() {
    let without = client(&["stp-probe", "10"]).run();
    assert_eq!(without.code(), 0, "{}", without.dump());
    assert_eq!(
        firmware_addrs(without.sim_call())[0],
        "0x1491dfc000",
        "{}",
        without.dump()
    );

    let with = client(&["stp-probe", "10"]).guard(Guard::Enforce).run();
    assert_eq!(with.code(), 0, "{}", with.dump());
    let sim = with.sim_call();
    assert_eq!(text(sim, "flags"), Some("0x0010"), "{}", with.dump());
    assert_eq!(text(sim, "firmware_sgl_format"), Some("sge32"));
    assert_eq!(
        firmware_addrs(sim),
        ["0x91dfc000", "0x91dfd000"],
        "{}",
        with.dump()
    );
    assert!(
        sim["wild_dma"].as_array().unwrap().is_empty(),
        "{}",
        with.dump()
    );
    // The probe now works: the IDENTIFY data reached the tool.
    assert!(
        with.stdout
            .contains("fis_type=0x34 fis_status=0x50\nmodel=SIM SATA SSD 240GB\n"),
        "{}",
        with.dump()
    );
    assert!(
        with.stdout.contains("packet_changed=0x16\n"),
        "{}",
        with.dump()
    );
}

#[test]
fn the_audit_record_tells_what_was_rewritten() {
    let run = client(&["stp-probe", "10"]).guard(Guard::Enforce).run();
    let call = run.audit_call();
    assert_eq!(text(&call, "verdict"), Some("rewrite"), "{}", run.dump());
    assert_eq!(call["enforced"], Value::Bool(true));
    assert_eq!(
        finding_rules(&call),
        ["frame.addressing-flags"],
        "{}",
        run.dump()
    );
    assert_eq!(text(&call, "cmd"), Some("STP"), "{}", run.dump());
    assert_eq!(int(&call, "flags"), Some(0x32), "{}", run.dump());
    assert_eq!(int(&call, "flags_sent"), Some(0x10), "{}", run.dump());
    assert_eq!(int(&call, "target_id"), Some(10), "{}", run.dump());
    assert_eq!(int(&call, "sgl_off"), Some(0x30), "{}", run.dump());
    assert_eq!(int(&call, "sge_count"), Some(2), "{}", run.dump());
    assert_eq!(int(&call, "sge_bytes"), Some(532), "{}", run.dump());
    assert_eq!(int(&call, "ret"), Some(0), "{}", run.dump());
    assert_eq!(errno(&call), Some(0), "{}", run.dump());
    assert_eq!(int(&call, "cmd_status"), Some(0), "{}", run.dump());
    assert_eq!(
        int(&call, "pid").map(|p| p > 0),
        Some(true),
        "{}",
        run.dump()
    );
    for field in [
        "ts",
        "exe",
        "uid",
        "request",
        "abi",
        "latency_us",
        "findings",
    ] {
        assert!(call.get(field).is_some(), "no {field}\n{}", run.dump());
    }
    // The decision is on disk before the kernel sees the call: the first line of the call
    // already says what the guard decided.
    let first = &run.audit[0];
    assert!(first.get("verdict").is_some(), "{}", run.dump());
}

#[test]
fn the_default_mode_is_enforce() {
    let run = client(&["stp-probe", "10"]).guard(Guard::DefaultMode).run();
    assert_eq!(
        firmware_addrs(run.sim_call())[0],
        "0x91dfc000",
        "{}",
        run.dump()
    );
}

#[test]
fn an_unknown_mode_is_readonly_and_says_so() {
    // A typo in `readonly` must not let a monitoring job change the controller: the strictest
    // mode applies, which also enforces every other rule.
    let run = client(&["stp-probe", "10"])
        .guard(Guard::DefaultMode)
        .env("MFIGUARD_MODE", "readonyl")
        .run();
    assert_eq!(
        firmware_addrs(run.sim_call())[0],
        "0x91dfc000",
        "{}",
        run.dump()
    );
    assert!(
        run.audit_text.contains("readonyl") || run.stderr.contains("readonyl"),
        "no error record names the unknown mode\n{}",
        run.dump()
    );
    let run = client(&["rule", "readonly.dcmd"])
        .guard(Guard::DefaultMode)
        .env("MFIGUARD_MODE", "readonyl")
        .run();
    assert!(run.stdout.contains("errno=1 (EPERM)"), "{}", run.dump());
    assert!(run.sim.is_empty(), "{}", run.dump());
}
