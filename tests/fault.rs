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

#[test]
fn a_packet_whose_status_byte_cannot_be_written_fails_as_on_the_kernel() {
    // The packet is readable but in a read-only page. The driver copies the buffers back, then
    // fails to write cmd_status into the caller's packet: EFAULT. Under the guard the driver
    // writes the status into the guard's private copy; the guard's own write-back then fails
    // the same way, and the tool must see the same answer, not a success without a status.
    let base = client(&["fault", "readonly"]).run();
    assert_eq!(base.code(), 1, "{}", base.dump());
    let run = client(&["fault", "readonly"]).guard(Guard::Enforce).run();
    assert_eq!(
        run.stdout,
        base.stdout,
        "the guard answered differently from the kernel\n{}",
        run.dump()
    );
    assert_eq!(run.code(), base.code(), "{}", run.dump());
}

#[test]
fn a_packet_that_ends_where_the_mapping_ends_is_read_whole() {
    // Not one byte past the packet may be read: a copy that reads ahead would fault here.
    let base = client(&["fault", "edge"]).run();
    assert_eq!(base.code(), 0, "{}", base.dump());
    let run = client(&["fault", "edge"]).guard(Guard::Enforce).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(run.stdout, base.stdout, "{}", run.dump());
    assert_eq!(run.sim_stable(), base.sim_stable(), "{}", run.dump());
}
