//! A second thread flips IEEE|SGL64 in the caller's packet while the first issues thousands of
//! calls: whatever the guard checked is what it sent, so no flipped flag ever reaches the driver.
//! (tests/simulator.rs shows the flips do reach an unguarded driver.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

const CALLS: usize = 4000;

#[test]
fn a_flag_flipped_during_the_call_never_gets_past_the_guard() {
    let n = CALLS.to_string();
    let run = client(&["race", &n])
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", "none")
        .run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(run.stdout, format!("calls={CALLS} ok={CALLS} failed=0\n"));
    assert_eq!(run.sim.len(), CALLS, "every call reaches the driver");
    let leaked: Vec<&Value> = run
        .sim
        .iter()
        .filter(|r| !matches!(int(r, "flags"), Some(f) if f & 0x0026 == 0))
        .collect();
    assert!(
        leaked.is_empty(),
        "{} of {CALLS} calls reached the driver with addressing flags, e.g. {}",
        leaked.len(),
        leaked[0]
    );
    assert!(run.sim.iter().all(|r| firmware_addrs(r) == ["0x91dfc000"]));
}
