//! Every rule end to end, each with its near twin: the client sends a packet that triggers
//! exactly that rule, once with no guard (what a legacy host does), once under the guard in
//! enforce mode (`MFIGUARD_MODE=readonly` for the read-only policy's rules), and once with the
//! rule in `MFIGUARD_ALLOW`. A rule that is a second line (`readonly.cmd`) is reached with its
//! first line allowed. The oracle is what reached the simulated driver, plus the client's errno
//! and the guard's audit record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use mfiguard_sanitizer::{Action, RULES};

/// Fields of the simulator's record a rewrite must not change (the packet's own fields, the
/// buffers the driver allocated).
const UNTOUCHED: [&str; 9] = [
    "host_no",
    "sgl_off",
    "sge_count",
    "sense_off",
    "sense_len",
    "iov_lens",
    "cmd",
    "target_id",
    "dma_buffers",
];

fn expected_verdict(action: Action) -> &'static str {
    match action {
        Action::Reject => "reject",
        Action::Rewrite => "rewrite",
        Action::Warn => "pass",
    }
}

/// The guard as the rule needs it: enforce, or the read-only policy for `readonly.*` rules;
/// the rule's first line allowed, if it has one.
fn guarded(id: &str) -> Client {
    let c = client(&["rule", id]);
    let c = if id.starts_with("readonly.") {
        c.guard(Guard::DefaultMode).env("MFIGUARD_MODE", "readonly")
    } else {
        c.guard(Guard::Enforce)
    };
    match rule_scenario_first_line(id) {
        first if first.is_empty() => c,
        first => c.env("MFIGUARD_ALLOW", &first.join(",")),
    }
}

fn check_rule(id: &str) {
    let rule = RULES
        .iter()
        .find(|r| r.name == id)
        .unwrap_or_else(|| panic!("{id} is not a rule of the policy"));

    // No guard: the legacy driver takes every one of these packets. It completes all but the
    // one that asks the firmware not to post its completion: that caller never returns.
    let base = client(&["rule", id]).run_may_die();
    let hangs = never_completes(&base);
    assert_eq!(hangs, id == "frame.dont-post-flag", "{}", base.dump());
    if !hangs {
        assert_eq!(base.code(), 0, "{}", base.dump());
    }
    let base_sim = base.sim_call().clone();

    let first_line = rule_scenario_first_line(id);
    if id.starts_with("readonly.") {
        // Outside the read-only policy the packet is unremarkable (its first line allowed).
        let mut c = client(&["rule", id])
            .guard(Guard::Enforce)
            .env("MFIGUARD_AUDIT", "all");
        if !first_line.is_empty() {
            c = c.env("MFIGUARD_ALLOW", &first_line.join(","));
        }
        let run = c.run();
        let call = run.audit_call();
        assert_eq!(text(&call, "verdict"), Some("pass"), "{}", run.dump());
        assert_eq!(finding_rules(&call), first_line, "{}", run.dump());
        assert_eq!(run.sim_stable(), base.sim_stable(), "{}", run.dump());
    }
    if !first_line.is_empty() {
        // Without the first line allowed it answers first, with its own errno.
        let run = client(&["rule", id])
            .guard(Guard::DefaultMode)
            .env("MFIGUARD_MODE", "readonly")
            .env("MFIGUARD_AUDIT", "all")
            .run();
        let call = run.audit_call();
        assert_eq!(
            finding_rules(&call),
            rule_scenario_findings(id),
            "{}",
            run.dump()
        );
        assert!(run.sim.is_empty(), "{}", run.dump());
        let first = RULES.iter().find(|r| r.name == first_line[0]).unwrap();
        assert_eq!(
            errno(&call),
            first.errno.map(|e| i64::from(e.0)),
            "{}",
            run.dump()
        );
        let f = finding(&call, id).expect("the second line fires too");
        assert_eq!(text(f, "action"), Some("reject"), "{}", run.dump());
    }

    // Enforce (or read-only), every call recorded.
    let run = guarded(id).env("MFIGUARD_AUDIT", "all").run();
    let call = run.audit_call();
    assert_eq!(
        finding_rules(&call),
        rule_scenario_findings(id),
        "the scenario must trigger exactly {id}\n{}",
        run.dump()
    );
    assert_eq!(
        text(&call, "verdict"),
        Some(expected_verdict(rule.action)),
        "{}",
        run.dump()
    );
    assert_eq!(call["enforced"], Value::Bool(true), "{}", run.dump());
    let f = finding(&call, id).unwrap();
    assert_eq!(
        text(f, "action"),
        Some(rule.action.name()),
        "{}",
        run.dump()
    );

    match rule.action {
        Action::Reject => {
            let e = rule.errno.expect("a rejecting rule has an errno");
            assert_eq!(run.code(), 1, "{}", run.dump());
            assert!(
                run.stdout.starts_with(&format!(
                    "ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno={} ({})\n",
                    e.0,
                    e.name()
                )),
                "{}",
                run.dump()
            );
            assert!(
                run.stdout.contains("packet_changed=none"),
                "a rejected call must leave the caller's packet alone\n{}",
                run.dump()
            );
            assert!(
                run.sim.is_empty(),
                "a rejected packet reached the driver\n{}",
                run.dump()
            );
            assert_eq!(int(&call, "ret"), Some(-1), "{}", run.dump());
            assert_eq!(errno(&call), Some(i64::from(e.0)), "{}", run.dump());
        }
        Action::Rewrite => {
            assert_eq!(run.code(), 0, "{}", run.dump());
            assert!(
                run.stdout.contains("packet_changed=0x16\n"),
                "only cmd_status may be copied back\n{}",
                run.dump()
            );
            let sim = run.sim_call();
            for field in UNTOUCHED {
                assert_eq!(
                    sim[field],
                    base_sim[field],
                    "{id} changed {field}\n{}",
                    run.dump()
                );
            }
            check_rewrite(id, &base_sim, sim, &run);
            assert_eq!(int(&call, "ret"), Some(0), "{}", run.dump());
        }
        Action::Warn => {
            assert_eq!(run.code(), 0, "{}", run.dump());
            assert_eq!(run.stdout, base.stdout, "{}", run.dump());
            assert_eq!(
                run.sim_stable(),
                base.sim_stable(),
                "a warning changed what reached the driver\n{}",
                run.dump()
            );
        }
    }

    if rule.action != Action::Warn {
        // The default audit level in enforce mode records every rewrite and reject.
        let run = guarded(id).run();
        assert_eq!(run.audit_calls().len(), 1, "{}", run.dump());

        // The twin: the same packet with the rule allowed is only a warning, and the packet
        // reaches the driver exactly as without the guard (and hangs as it does).
        let run = guarded(id)
            .env("MFIGUARD_ALLOW", &rule_scenario_findings(id).join(","))
            .env("MFIGUARD_AUDIT", "all")
            .run_may_die();
        assert_eq!(run.code(), base.code(), "{}", run.dump());
        assert_eq!(run.stdout, base.stdout, "{}", run.dump());
        assert_eq!(run.sim_stable(), base.sim_stable(), "{}", run.dump());
        assert_eq!(never_completes(&run), hangs, "{}", run.dump());
        // The decision is recorded before the call; a call that never returns has no outcome.
        let call = run.audit_call();
        assert_eq!(text(&call, "verdict"), Some("pass"), "{}", run.dump());
        assert_eq!(
            text(finding(&call, id).expect("finding"), "action"),
            Some("warn"),
            "{}",
            run.dump()
        );
    }
}

/// Whether the simulated driver's last call never completed (its record says `hang`; the
/// simulator then ends the process inside the call).
fn never_completes(run: &Run) -> bool {
    run.sim
        .last()
        .is_some_and(|s| s.get("hang").is_some_and(|h| !h.is_null()))
}

/// What each rewriting rule changes in what reaches the driver, and what that fixes.
fn check_rewrite(id: &str, base: &Value, sim: &Value, run: &Run) {
    match id {
        "frame.dont-post-flag" => {
            assert_eq!(text(base, "flags"), Some("0x0011"));
            assert!(base["hang"].is_string(), "{}", run.dump());
            assert!(base["ret"].is_null());
            assert_eq!(text(sim, "flags"), Some("0x0010"), "{}", run.dump());
            assert!(sim["hang"].is_null(), "{}", run.dump());
            assert_eq!(int(sim, "ret"), Some(0), "{}", run.dump());
            assert_eq!(firmware_addrs(sim), ["0x91dfc000"], "{}", run.dump());
            assert_eq!(int(sim, "cmd_status"), Some(0), "{}", run.dump());
        }
        "frame.addressing-flags" => {
            assert_eq!(text(base, "flags"), Some("0x0032"));
            assert_eq!(text(sim, "flags"), Some("0x0010"), "{}", run.dump());
            assert_eq!(text(sim, "firmware_sgl_format"), Some("sge32"));
            assert_eq!(firmware_addrs(sim), ["0x91dfc000"], "{}", run.dump());
            assert_eq!(int(sim, "cmd_status"), Some(0), "{}", run.dump());
        }
        "sgl.fixed-entry-unwritten" => {
            // The simulated firmware fills the STP data entry by its role: without the guard,
            // the caller's; with it, a zeroed slot, so no DMA.
            assert_eq!(int(base, "sge_count"), Some(1));
            assert_eq!(firmware_addrs(base), ["0x91dfc000", "0x12345000"]);
            let wild: Vec<&str> = base["wild_dma"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|w| w["addr"].as_str())
                .collect();
            assert_eq!(wild, ["0x12345000"], "{}", run.dump());
            assert_eq!(firmware_addrs(sim), ["0x91dfc000", "0x0"], "{}", run.dump());
            assert_eq!(
                sim["wild_dma"].as_array().unwrap().len(),
                0,
                "{}",
                run.dump()
            );
        }
        "sgl.stale-entry" => {
            assert_eq!(int(base, "hdr_sge_count"), Some(2));
            assert_eq!(firmware_addrs(base), ["0x91dfc000", "0x12345000"]);
            assert_eq!(int(sim, "hdr_sge_count"), Some(1), "{}", run.dump());
            assert_eq!(firmware_addrs(sim), ["0x91dfc000"], "{}", run.dump());
        }
        "sense.length-mismatch" => {
            assert_eq!(int(base, "hdr_sense_len"), Some(96));
            assert!(!base["wild_dma"].as_array().unwrap().is_empty());
            assert_eq!(int(sim, "hdr_sense_len"), Some(32), "{}", run.dump());
            assert_eq!(
                sim["wild_dma"].as_array().unwrap().len(),
                0,
                "{}",
                run.dump()
            );
        }
        other => panic!("no expectation written for the rewrite of {other}"),
    }
}

macro_rules! rule_tests {
    ($($name:ident => $id:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check_rule($id);
            }
        )*
        const TESTED: &[&str] = &[$($id),*];
    };
}

rule_tests! {
    frame_addressing_flags => "frame.addressing-flags",
    frame_dont_post_flag => "frame.dont-post-flag",
    sgl_fixed_entry_unwritten => "sgl.fixed-entry-unwritten",
    ioc_sge_count => "ioc.sge-count",
    frame_cmd => "frame.cmd",
    frame_cmd_forbidden => "frame.cmd-forbidden",
    sgl_bounds => "sgl.bounds",
    sense_bounds => "sense.bounds",
    sense_length => "sense.length",
    sge_length => "sge.length",
    sgl_stale_entry => "sgl.stale-entry",
    frame_raw_physical_address => "frame.raw-physical-address",
    sense_length_mismatch => "sense.length-mismatch",
    xfer_length => "xfer.length",
    sgl_offset_unusual => "sgl.offset-unusual",
    frame_layout_unknown => "frame.layout-unknown",
    sense_offset_unusual => "sense.offset-unusual",
    sgl_empty_entry_past_frame => "sgl.empty-entry-past-frame",
    dcmd_host_address => "dcmd.host-address",
    readonly_cmd => "readonly.cmd",
    readonly_dcmd => "readonly.dcmd",
    readonly_scsi => "readonly.scsi",
    readonly_ata => "readonly.ata",
    readonly_smp => "readonly.smp",
}

#[test]
fn every_rule_of_the_policy_has_an_end_to_end_test() {
    let mut policy: Vec<&str> = RULES.iter().map(|r| r.name).collect();
    let mut tested = TESTED.to_vec();
    policy.sort_unstable();
    tested.sort_unstable();
    assert_eq!(tested, policy);
}

#[test]
fn a_clean_dcmd_passes_untouched_and_unrecorded_by_default() {
    let base = client(&["rule", "pass"]).run();
    assert_eq!(base.code(), 0, "{}", base.dump());

    let run = client(&["rule", "pass"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_eq!(run.stdout, base.stdout, "{}", run.dump());
    assert_eq!(run.sim_stable(), base.sim_stable(), "{}", run.dump());
    let call = run.audit_call();
    assert_eq!(text(&call, "verdict"), Some("pass"), "{}", run.dump());
    assert!(finding_rules(&call).is_empty(), "{}", run.dump());
    assert_eq!(int(&call, "ret"), Some(0), "{}", run.dump());
    assert_eq!(int(&call, "cmd_status"), Some(0), "{}", run.dump());

    // MFIGUARD_AUDIT=findings (the default in enforce) records rewrites and rejects only.
    let run = client(&["rule", "pass"]).guard(Guard::Enforce).run();
    assert_eq!(run.stdout, base.stdout, "{}", run.dump());
    assert!(run.audit_calls().is_empty(), "{}", run.dump());
}
