//! The read-only policy's SMP rule end to end: the guard reads the caller's SMP
//! request (`sgl[1]`) once into private memory, lets discovery and report functions through and
//! refuses the rest with EPERM (`readonly.smp`, naming the function), sends its private copy so
//! that a request changed during the call cannot reach the driver, and copies back into the
//! caller's buffer what the driver wrote there. The oracle is the simulator's record of the
//! request the firmware read (`smp_request`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

fn readonly(args: &[&str]) -> Client {
    client(args)
        .guard(Guard::DefaultMode)
        .env("MFIGUARD_MODE", "readonly")
}

#[test]
fn discovery_passes_and_the_caller_sees_what_it_would_without_the_guard() {
    for (function, head) in [("0x00", "40 00 00 00"), ("0x10", "40 10 00 00")] {
        // The firmware also writes into the request buffer ("SIM!" at bytes 4..8), so the
        // driver's copy-back of that buffer shows in what the client prints.
        let base = client(&["smp", function])
            .env("MFISIM_SMP_WRITE_REQUEST", "1")
            .run();
        assert_eq!(base.code(), 0, "{}", base.dump());
        assert!(
            base.stdout
                .contains(&format!("smp_request={head} 53 49 4d 21\n")),
            "{}",
            base.dump()
        );

        let run = readonly(&["smp", function])
            .env("MFISIM_SMP_WRITE_REQUEST", "1")
            .env("MFIGUARD_AUDIT", "all")
            .run();
        assert_eq!(run.code(), 0, "{}", run.dump());
        assert_eq!(run.stdout, base.stdout, "{}", run.dump());
        assert_eq!(run.sim_stable(), base.sim_stable(), "{}", run.dump());
        assert_eq!(text(run.sim_call(), "smp_request"), Some(head));
        let call = run.audit_call();
        assert_eq!(text(&call, "verdict"), Some("pass"), "{}", run.dump());
        assert!(finding_rules(&call).is_empty(), "{}", run.dump());
        assert_eq!(int(&call, "ret"), Some(0), "{}", run.dump());
    }
}

#[test]
fn phy_control_is_refused_with_eperm_and_the_record_names_the_function() {
    // Without the guard, and with it outside the read-only policy, PHY CONTROL reaches the
    // driver.
    for c in [
        client(&["smp", "0x91"]),
        client(&["smp", "0x91"]).guard(Guard::Enforce),
    ] {
        let run = c.run();
        assert_eq!(run.code(), 0, "{}", run.dump());
        assert_eq!(
            text(run.sim_call(), "smp_request"),
            Some("40 91 00 00"),
            "{}",
            run.dump()
        );
    }

    let run = readonly(&["smp", "0x91"]).run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert_eq!(
        run.stdout,
        "ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=1 (EPERM)\npacket_changed=none\n",
        "{}",
        run.dump()
    );
    assert!(
        run.sim.is_empty(),
        "refused, yet it reached the driver\n{}",
        run.dump()
    );
    let call = run.audit_call();
    assert_eq!(finding_rules(&call), ["readonly.smp"], "{}", run.dump());
    assert_eq!(text(&call, "verdict"), Some("reject"), "{}", run.dump());
    assert_eq!(errno(&call), Some(i64::from(libc::EPERM)), "{}", run.dump());
    let detail = text(finding(&call, "readonly.smp").unwrap(), "detail").unwrap();
    assert!(
        detail.contains("SMP function 0x91"),
        "the record must name the function: {detail}"
    );
}

#[test]
fn a_request_changed_during_the_call_never_gets_a_write_function_to_the_driver() {
    const CALLS: usize = 3000;
    let n = CALLS.to_string();

    // Without the guard the flips reach the driver.
    let base = client(&["smp-race", &n]).run();
    assert_eq!(
        base.stdout,
        format!("calls={CALLS} other=0\n"),
        "{}",
        base.dump()
    );
    assert_eq!(base.sim.len(), CALLS);
    let leaked_unguarded = base
        .sim
        .iter()
        .filter(|r| text(r, "smp_request") == Some("40 91 00 00"))
        .count();
    assert!(
        leaked_unguarded > 0,
        "the flipper never got a PHY CONTROL to an unguarded driver: the race shows nothing\n{}",
        base.stderr
    );

    // With the read-only guard each call is either passed as DISCOVER or refused as PHY
    // CONTROL, by what the guard read; the driver never sees anything else.
    let run = readonly(&["smp-race", &n]).run();
    assert_eq!(
        run.stdout,
        format!("calls={CALLS} other=0\n"),
        "{}",
        run.stderr
    );
    let leaked: Vec<&Value> = run
        .sim
        .iter()
        .filter(|r| text(r, "smp_request") != Some("40 10 00 00"))
        .collect();
    assert!(
        leaked.is_empty(),
        "{} of {} calls reached the driver with another request, e.g. {}",
        leaked.len(),
        run.sim.len(),
        leaked[0]
    );
    // Every refusal is recorded, naming the function it saw.
    let refused = run.audit_calls();
    assert_eq!(refused.len() + run.sim.len(), CALLS, "{}", run.stderr);
    assert!(refused.iter().all(|c| {
        finding_rules(c) == ["readonly.smp"]
            && errno(c) == Some(i64::from(libc::EPERM))
            && finding(c, "readonly.smp")
                .and_then(|f| text(f, "detail"))
                .is_some_and(|d| d.contains("SMP function 0x91"))
    }));
}

#[test]
fn an_unreadable_request_is_efault_and_recorded() {
    let base = client(&["smp", "0x10", "unmapped"]).run();
    assert!(
        base.stdout
            .starts_with("ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=14 (EFAULT)\n"),
        "{}",
        base.dump()
    );

    let run = readonly(&["smp", "0x10", "unmapped"]).run();
    assert_eq!(
        run.stdout,
        "ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=14 (EFAULT)\npacket_changed=none\n",
        "{}",
        run.dump()
    );
    assert!(run.sim.is_empty(), "{}", run.dump());
    let call = run.audit_call();
    assert_eq!(finding_rules(&call), ["guard.fault"], "{}", run.dump());
    assert_eq!(
        errno(&call),
        Some(i64::from(libc::EFAULT)),
        "{}",
        run.dump()
    );
    let detail = text(finding(&call, "guard.fault").unwrap(), "detail").unwrap();
    assert!(detail.contains("SMP request"), "{detail}");
}

#[test]
fn a_request_longer_than_the_guard_copies_is_not_inspected_and_refused() {
    // 8 KiB: longer than any SMP request frame and than the guard's private copy.
    let base = client(&["smp", "0x10", "long"]).run();
    assert_eq!(base.code(), 0, "{}", base.dump());

    let run = readonly(&["smp", "0x10", "long"]).run();
    assert!(
        run.stdout
            .starts_with("ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=1 (EPERM)\n"),
        "{}",
        run.dump()
    );
    assert!(run.sim.is_empty(), "{}", run.dump());
    let call = run.audit_call();
    assert_eq!(finding_rules(&call), ["readonly.smp"], "{}", run.dump());
    let detail = text(finding(&call, "readonly.smp").unwrap(), "detail").unwrap();
    assert!(detail.contains("could not be inspected"), "{detail}");
}
