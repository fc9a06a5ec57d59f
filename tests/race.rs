//! A second thread flips IEEE|SGL64 in the caller's packet while the first issues thousands of
//! calls: whatever the guard checked is what it sent, so no flipped flag ever reaches the driver.
//! (tests/simulator.rs shows the flips do reach an unguarded driver.) And many threads released
//! together, racing the guard's lazy set-up: every call guarded, every call recorded once.
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

#[test]
fn many_threads_racing_the_first_guarded_call_are_all_guarded_and_recorded() {
    const THREADS: usize = 8;
    const EACH: usize = 200;
    let total = THREADS * EACH;
    let (t, e) = (THREADS.to_string(), EACH.to_string());

    // Without the guard, every call's IEEE flag reaches the driver: no valid status.
    let base = client(&["threads", &t, &e]).run();
    assert_eq!(
        base.stdout,
        format!("threads={THREADS} calls={total} ret_ok={total} status_ok=0\n"),
        "{}",
        base.dump()
    );

    // With it, released together so that the first calls race the guard's set-up: every call
    // rewritten, every one answered, every one recorded once.
    let run = client(&["threads", &t, &e]).guard(Guard::Enforce).run();
    assert_eq!(
        run.stdout,
        format!("threads={THREADS} calls={total} ret_ok={total} status_ok={total}\n"),
        "{}",
        run.dump()
    );
    assert_eq!(run.sim.len(), total);
    assert!(
        run.sim.iter().all(|r| text(r, "flags") == Some("0x0010")),
        "a call reached the driver with its addressing flags"
    );
    let calls = run.audit_calls();
    assert_eq!(
        calls.len(),
        total,
        "one record (pair) per call, seqs unique"
    );
    assert!(calls
        .iter()
        .all(|c| text(c, "verdict") == Some("rewrite") && int(c, "ret") == Some(0)));
}
