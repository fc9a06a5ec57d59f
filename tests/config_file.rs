//! Settings from the configuration file (`MFIGUARD_CONFIG`, normally /etc/mfiguard.conf): how a
//! site sets policy for runs whose environment sudo or cron stripped. The environment wins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

fn conf(dir: &Scratch, text: &str) -> String {
    let path = dir.path("mfiguard.conf");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

#[test]
fn the_file_sets_the_mode() {
    let dir = Scratch::new("conf");
    let path = conf(&dir, "# rollout: audit first\nmode = audit\n");
    let run = client(&["stp-probe", "10"])
        .guard(Guard::DefaultMode)
        .env("MFIGUARD_CONFIG", &path)
        .run();
    assert_eq!(
        firmware_addrs(run.sim_call())[0],
        "0x1491dfc000",
        "audit mode from the file must change nothing\n{}",
        run.dump()
    );
    assert_eq!(
        run.audit_call()["enforced"],
        Value::Bool(false),
        "{}",
        run.dump()
    );
}

#[test]
fn the_file_allows_rules_with_prefixed_keys_and_quoted_values() {
    let dir = Scratch::new("conf");
    let path = conf(&dir, "MFIGUARD_ALLOW = \"ioc.sge-count\"\n");
    let run = client(&["rule", "ioc.sge-count"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_CONFIG", &path)
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(run.sim.len(), 1, "{}", run.dump());
    // The guard saw it, and only warned.
    let call = run.audit_call();
    assert_eq!(text(&call, "verdict"), Some("pass"), "{}", run.dump());
    let f = finding(&call, "ioc.sge-count").expect("the finding is still recorded");
    assert_eq!(text(f, "action"), Some("warn"), "{}", run.dump());
}

#[test]
fn the_environment_wins_over_the_file() {
    let dir = Scratch::new("conf");
    let path = conf(&dir, "mode = off\n");
    let run = client(&["stp-probe", "10"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_CONFIG", &path)
        .run();
    assert_eq!(
        firmware_addrs(run.sim_call())[0],
        "0x91dfc000",
        "{}",
        run.dump()
    );
}
