//! A host that dies inside the driver (the seed's crash) still leaves evidence: the guard's
//! decision record is in the file before the kernel sees the call. The simulator plays the
//! crash: with `MFISIM_CRASH=1` the process is SIGKILLed inside the driver, so nothing written
//! after the call, and nothing buffered in the process, survives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::os::unix::process::ExitStatusExt;

#[test]
fn the_decision_is_on_disk_before_the_driver_runs() {
    for mode in [Guard::Enforce, Guard::Audit] {
        let run = client(&["stp-probe", "10"])
            .guard(mode)
            .env("MFISIM_CRASH", "1")
            .run_may_die();
        assert_eq!(
            run.status.signal(),
            Some(libc::SIGKILL),
            "the simulated crash did not happen\n{}",
            run.dump()
        );
        // What reached the driver: in enforce mode, the rewritten frame.
        let sim = run.sim_call();
        let expect_flags = if mode == Guard::Enforce {
            "0x0010"
        } else {
            "0x0032"
        };
        assert_eq!(text(sim, "flags"), Some(expect_flags), "{}", run.dump());
        // The evidence: the decision for that very call, and no outcome.
        let calls = run.audit_calls();
        assert_eq!(
            calls.len(),
            1,
            "no record of the fatal call\n{}",
            run.dump()
        );
        let call = &calls[0];
        assert_eq!(text(call, "cmd"), Some("STP"), "{}", run.dump());
        assert_eq!(int(call, "flags"), Some(0x32), "{}", run.dump());
        assert_eq!(
            finding_rules(call),
            ["frame.addressing-flags"],
            "{}",
            run.dump()
        );
        assert!(
            matches!(call.get("ret"), None | Some(Value::Null)),
            "an outcome for a call that never returned\n{}",
            run.dump()
        );
    }
}
