//! An unreadable packet (unmapped, PROT_NONE, a null pointer, or one that starts readable and
//! runs into a PROT_NONE page) gives -1/EFAULT and a log record, never a signal, and never
//! reaches the driver: the guard could not check it, so it does not send it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

#[test]
fn an_unreadable_packet_is_efault_without_a_crash() {
    for kind in ["unmapped", "protnone", "span", "null"] {
        let run = client(&["fault", kind]).guard(Guard::Enforce).run();
        // Run::run already failed the test if the client died of a signal.
        assert_eq!(run.code(), 1, "{}", run.dump());
        assert_eq!(
            run.stdout,
            format!("ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=14 (EFAULT)\nfault={kind}\n"),
            "{}",
            run.dump()
        );
        assert!(
            run.sim.is_empty(),
            "a packet the guard could not read reached the driver\n{}",
            run.dump()
        );
        let calls = run.audit_calls();
        assert_eq!(
            calls.len(),
            1,
            "no log record for the fault\n{}",
            run.dump()
        );
        assert_eq!(errno(&calls[0]), Some(14), "{}", run.dump());
    }
}

#[test]
fn audit_mode_also_answers_efault_for_an_unreadable_packet() {
    // Audit mode changes nothing: an unreadable packet is EFAULT on the kernel too.
    let base = client(&["fault", "span"]).run();
    let run = client(&["fault", "span"]).guard(Guard::Audit).run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert_eq!(run.stdout, base.stdout, "{}", run.dump());
}
