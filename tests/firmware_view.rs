//! What the firmware reads, end to end against the legacy-driver simulator: for every frame type
//! whose firmware reads its SGL (or sense address) at a fixed place, a packet that hides a
//! caller-chosen address there (`mfi_client firmware-view KIND 0x12345000`). Without the guard
//! the simulated firmware DMAs to that address (`wild_dma`); with it, in enforce and read-only
//! mode, the call fails with EINVAL before the driver, and the record names the rule; in audit
//! mode the packet goes on unchanged and the record says what enforce would have done.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

/// The address the client hides where the firmware reads.
const PHYS: &str = "0x12345000";

/// (kind, the rule that refuses it, the address the unguarded firmware DMAs to)
/// (LD read/write frames never reach the driver, whatever their SGL: `tests/ld_io.rs`.)
const KINDS: [(&str, &str, Option<&str>); 7] = [
    ("dcmd", "sgl.offset-unusual", Some(PHYS)),
    ("pthru", "sgl.offset-unusual", Some(PHYS)),
    ("stp", "sgl.offset-unusual", Some(PHYS)),
    ("smp", "sgl.offset-unusual", Some(PHYS)),
    // The firmware writes sense to the 0 it finds at 0x18.
    ("sense", "sense.offset-unusual", Some("0x0")),
    // The sixteen empty entries: the firmware takes the first call's stale entries.
    ("past-frame", "sgl.empty-entry-past-frame", None),
    // The simulator does not model the registration: refused all the same.
    ("crash-dump", "dcmd.host-address", None),
];

fn args(kind: &str) -> Vec<&str> {
    // The simulator's first disk is target 8.
    vec!["firmware-view", kind, PHYS, "8"]
}

/// The addresses of the simulated firmware's DMAs outside the driver's buffers, in the last call.
fn wild(run: &Run) -> Vec<String> {
    let sim = run.sim.last().expect("the simulator saw a call");
    sim["wild_dma"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w["addr"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_hidden_address_never_reaches_the_firmware_behind_the_guard() {
    for (kind, rule, addr) in KINDS {
        let base = client(&args(kind)).run();
        assert_eq!(base.code(), 0, "{}", base.dump());
        let hit = wild(&base);
        match addr {
            Some(a) => assert!(
                hit.iter().any(|w| w == a),
                "{kind}: without the guard the firmware should DMA to {a}\n{}",
                base.dump()
            ),
            None if kind == "past-frame" => assert!(
                !hit.is_empty(),
                "{kind}: without the guard the firmware should use stale entries\n{}",
                base.dump()
            ),
            None => {}
        }
        // The calls before the last (past-frame's first) reach the driver either way.
        let before = base.sim.len() - 1;

        for (guard, mode) in [
            (Guard::Enforce, "enforce"),
            (Guard::DefaultMode, "readonly"),
        ] {
            let run = client(&args(kind))
                .guard(guard)
                .env("MFIGUARD_MODE", mode)
                .env("MFIGUARD_AUDIT", "all")
                .run();
            assert_eq!(run.code(), 1, "{kind} {mode}: {}", run.dump());
            assert!(
                run.stdout.contains("ret=-1 errno=22 (EINVAL)"),
                "{kind} {mode}: {}",
                run.dump()
            );
            assert_eq!(
                run.sim.len(),
                before,
                "{kind} {mode}: the packet reached the driver\n{}",
                run.dump()
            );
            let call = run.audit_calls().pop().expect("a record of the refusal");
            assert_eq!(text(&call, "verdict"), Some("reject"), "{}", run.dump());
            assert_eq!(text(&call, "mode"), Some(mode), "{}", run.dump());
            let f = finding(&call, rule)
                .unwrap_or_else(|| panic!("{kind} {mode}: no {rule}\n{}", run.dump()));
            assert_eq!(text(f, "action"), Some("reject"), "{}", run.dump());
        }

        // Audit mode: sent on as it is (the same DMA), recorded as what enforce would refuse.
        let run = client(&args(kind)).guard(Guard::Audit).run();
        assert_eq!(run.stdout, base.stdout, "{kind}: {}", run.dump());
        assert_eq!(
            run.sim_stable(),
            base.sim_stable(),
            "{kind}: {}",
            run.dump()
        );
        let call = run.audit_calls().pop().expect("a record");
        assert_eq!(text(&call, "verdict"), Some("reject"), "{}", run.dump());
        assert_eq!(call["enforced"], Value::Bool(false), "{}", run.dump());
        assert!(finding(&call, rule).is_some(), "{kind}: {}", run.dump());
    }
}

/// The same packets with the frame type's own offsets pass, and the firmware uses only the
/// driver's buffers: the refusal is about the offset, not the command.
#[test]
fn the_same_commands_at_their_own_offsets_pass() {
    for args in [
        vec!["ctrl-info"],
        vec!["inquiry", "8"],
        vec!["stp-probe", "8"],
        vec!["smp", "0x10"],
    ] {
        let run = client(&args)
            .guard(Guard::Enforce)
            .env("MFIGUARD_AUDIT", "all")
            .run();
        assert_eq!(run.code(), 0, "{}", run.dump());
        assert!(wild(&run).is_empty(), "{}", run.dump());
        let call = run.audit_call();
        assert_ne!(text(&call, "verdict"), Some("reject"), "{}", run.dump());
    }
}
