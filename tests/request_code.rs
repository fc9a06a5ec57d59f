//! The kernel's ioctl `cmd` is an `unsigned int`: on x86_64, a request code with garbage in its
//! upper 32 bits is still `MEGASAS_IOC_FIRMWARE` to the driver, so it must be to the guard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

#[test]
fn upper_bits_in_the_request_code_do_not_bypass_the_guard() {
    let base = client(&["high-bits"]).run();
    assert_eq!(
        text(base.sim_call(), "flags"),
        Some("0x0032"),
        "{}",
        base.dump()
    );

    let run = client(&["high-bits"]).guard(Guard::Enforce).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    let sim = run.sim_call();
    assert_eq!(
        text(sim, "flags"),
        Some("0x0010"),
        "IEEE reached the driver through a 64-bit request code\n{}",
        run.dump()
    );
    assert!(run.stdout.contains("firmware=1.80-SIM\n"), "{}", run.dump());
    assert_eq!(run.audit_calls().len(), 1, "{}", run.dump());
}
