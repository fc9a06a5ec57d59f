//! Audit mode changes nothing: for every rule's packet, the seed's probe and a clean DCMD, the
//! simulator sees exactly what it sees with no guard, the client prints the same bytes, and the
//! guard records what enforce mode would have done with `"enforced": false`. `off` does nothing
//! and records nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use mfiguard_sanitizer::{Action, RULES};

fn scenarios() -> Vec<(Vec<&'static str>, &'static str, Vec<&'static str>)> {
    // (client args, verdict enforce would reach, rules it would find)
    let mut v: Vec<(Vec<&str>, &str, Vec<&str>)> = RULES
        .iter()
        .map(|r| {
            if r.id.is_readonly() {
                // Audit mode does not turn the read-only policy on: only a second line's first
                // line (the structural rule that refuses its packet first) is found.
                let first = rule_scenario_first_line(r.name);
                let verdict = if first.is_empty() { "pass" } else { "reject" };
                return (vec!["rule", r.name], verdict, first);
            }
            let verdict = match r.action {
                Action::Reject => "reject",
                Action::Rewrite => "rewrite",
                Action::Warn => "pass",
            };
            (
                vec!["rule", r.name],
                verdict,
                rule_scenario_findings(r.name),
            )
        })
        .collect();
    v.push((vec!["rule", "pass"], "pass", vec![]));
    v.push((
        vec!["stp-probe", "10"],
        "rewrite",
        vec!["frame.addressing-flags"],
    ));
    v.push((vec!["ctrl-info"], "pass", vec![]));
    v
}

#[test]
fn audit_mode_changes_nothing_and_records_what_enforce_would_do() {
    for (args, verdict, rules) in scenarios() {
        // A frame the firmware posts no completion for never returns (the simulator ends the
        // process inside the call): in audit mode as without the guard.
        let hangs = args == ["rule", "frame.dont-post-flag"];
        let (base, run) = if hangs {
            let base = client(&args).run_may_die();
            let run = client(&args).guard(Guard::Audit).run_may_die();
            assert!(
                run.sim.last().is_some_and(|s| s["hang"].is_string()),
                "{}",
                run.dump()
            );
            (base, run)
        } else {
            (client(&args).run(), client(&args).guard(Guard::Audit).run())
        };
        assert_eq!(run.code(), base.code(), "{}", run.dump());
        assert_eq!(run.stdout, base.stdout, "{}", run.dump());
        assert_eq!(
            run.sim_stable(),
            base.sim_stable(),
            "audit mode changed what reached the driver\n{}",
            run.dump()
        );
        // MFIGUARD_AUDIT defaults to `all` in audit mode: clean calls are recorded too.
        let call = run.audit_call();
        assert_eq!(call["enforced"], Value::Bool(false), "{}", run.dump());
        assert_eq!(text(&call, "verdict"), Some(verdict), "{}", run.dump());
        assert_eq!(finding_rules(&call), rules, "{}", run.dump());
        if hangs {
            // Only the decision, recorded before the call; the call has no outcome.
            assert!(call["ret"].is_null(), "{}", run.dump());
            continue;
        }
        assert_eq!(
            int(&call, "ret"),
            Some(0),
            "the call went through, so the record says so\n{}",
            run.dump()
        );
    }
}

#[test]
fn off_mode_does_nothing_and_records_nothing() {
    for args in [vec!["stp-probe", "10"], vec!["rule", "ioc.sge-count"]] {
        let base = client(&args).run();
        let run = client(&args)
            .guard(Guard::Off)
            .env("MFIGUARD_AUDIT", "all")
            .run();
        assert_eq!(run.code(), base.code(), "{}", run.dump());
        assert_eq!(run.stdout, base.stdout, "{}", run.dump());
        assert_eq!(run.sim_stable(), base.sim_stable(), "{}", run.dump());
        assert!(run.audit_calls().is_empty(), "{}", run.dump());
    }
}
