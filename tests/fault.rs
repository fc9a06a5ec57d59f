//! Hostile packets from a real process. An unreadable packet (unmapped, PROT_NONE, a
//! null pointer, one that starts readable and runs into a PROT_NONE page, or one shorter than the
//! layout that ends where an unmapped page begins) gives -1/EFAULT and a log record, never a
//! signal, and never reaches the driver: the guard could not check it, so it does not send it.
//! A misaligned packet is read, checked and answered where it is. A whole packet whose sense
//! pointer or iovec points at unmapped (or read-only) memory gets the kernel's EFAULT, from the
//! driver's own copy_from_user/copy_to_user (the simulator's, through process_vm_readv/writev),
//! unless a rule refuses the packet first: then the rule's errno, and nothing reaches the driver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

/// The packet pointer cannot be read whole.
const UNREADABLE: [&str; 5] = ["unmapped", "protnone", "span", "short", "null"];

#[test]
fn an_unreadable_spanning_short_or_null_packet_is_efault_without_a_crash() {
    for kind in UNREADABLE {
        let expected =
            format!("ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=14 (EFAULT)\nfault={kind}\n");
        // The kernel's answer (the simulator's copy_from_user of the packet).
        let base = client(&["fault", kind]).run();
        assert_eq!(base.stdout, expected, "{}", base.dump());
        let run = client(&["fault", kind]).guard(Guard::Enforce).run();
        // Run::run already failed the test if the client died of a signal.
        assert_eq!(run.code(), 1, "{}", run.dump());
        assert_eq!(run.stdout, expected, "{}", run.dump());
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

#[test]
fn a_misaligned_packet_is_read_rewritten_and_answered_where_it_is() {
    // Without the guard the legacy driver gets the caller's flags (IEEE|SGL64|DIR_READ): the
    // packet at the odd address is read as the packet, not shifted.
    let base = client(&["fault", "misaligned"]).run();
    assert_eq!(int(base.sim_call(), "flags"), Some(0x32), "{}", base.dump());
    let clean = client(&["ctrl-info"]).run();
    assert_eq!(clean.code(), 0, "{}", clean.dump());
    let info: String = clean
        .stdout
        .lines()
        .filter(|l| {
            ["firmware=", "package=", "product=", "serial="]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(info.lines().count(), 4, "{}", clean.dump());
    for guard in [Guard::Enforce, Guard::DefaultMode] {
        let run = client(&["fault", "misaligned"]).guard(guard).run();
        assert_eq!(run.code(), 0, "{}", run.dump());
        // The flags cleared, the status byte written back at its odd address, and the same
        // controller information as an aligned clean call.
        assert_eq!(
            run.stdout,
            format!(
                "ioctl=MEGASAS_IOC_FIRMWARE ret=0 errno=0 cmd_status=0x00 (OK)\nfault=misaligned\n\
                 status_byte=0x00\n{info}"
            ),
            "{}",
            run.dump()
        );
        assert_eq!(int(run.sim_call(), "flags"), Some(0x10), "{}", run.dump());
        let call = run.audit_call();
        assert_eq!(
            finding_rules(&call),
            ["frame.addressing-flags"],
            "{}",
            run.dump()
        );
        assert_eq!(int(&call, "ret"), Some(0), "{}", run.dump());
    }
}

#[test]
fn a_sense_pointer_or_iovec_to_unmapped_or_readonly_memory_gets_the_kernels_efault() {
    // (kind, what the driver's copy says in the simulator's record). The packet itself is whole
    // and breaks no rule: the guard sends it, the driver fails its copy, and the tool sees the
    // driver's EFAULT with the status byte not written, exactly as without the guard.
    for (kind, note) in [
        ("sense-unmapped", "copy_to_user of sense to"),
        (
            "iovec-unmapped",
            "copy_from_user of sgl[0] (2048 bytes) failed",
        ),
        ("iovec-readonly", "copy_to_user of sgl[0] failed"),
    ] {
        let expected = format!(
            "ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=14 (EFAULT)\nfault={kind}\nstatus_byte=0xff\n"
        );
        let base = client(&["fault", kind]).run();
        assert_eq!(base.stdout, expected, "{}", base.dump());
        for guard in [Guard::Enforce, Guard::Audit] {
            let run = client(&["fault", kind])
                .guard(guard)
                .env("MFIGUARD_AUDIT", "all")
                .run();
            assert_eq!(run.code(), 1, "{}", run.dump());
            assert_eq!(run.stdout, expected, "{}", run.dump());
            let sim = run.sim_call();
            assert_eq!(int(sim, "errno"), Some(14), "{}", run.dump());
            assert!(
                sim["notes"].as_array().is_some_and(|n| n
                    .iter()
                    .any(|n| n.as_str().is_some_and(|n| n.contains(note)))),
                "the driver did not fail its copy ({note})\n{}",
                run.dump()
            );
            let call = run.audit_call();
            assert!(finding_rules(&call).is_empty(), "{}", run.dump());
            assert_eq!(int(&call, "ret"), Some(-1), "{}", run.dump());
            assert_eq!(errno(&call), Some(14), "{}", run.dump());
            // The call reached the driver: a decision record was written before it.
            let decisions = run
                .audit
                .iter()
                .filter(|r| text(r, "record") == Some("decision"))
                .count();
            assert_eq!(decisions, 1, "{}", run.dump());
        }
    }
}

#[test]
fn an_unmapped_iovec_in_a_packet_a_rule_refuses_gets_the_rules_errno() {
    // On the kernel: EFAULT, but only after the driver wrote its SGL entry 256 KiB past its
    // frame (it writes the entry, then copies the caller's data in).
    let base = client(&["fault", "iovec-unmapped-rule"]).run();
    assert_eq!(
        base.stdout,
        "ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=14 (EFAULT)\nfault=iovec-unmapped-rule\nstatus_byte=0xff\n",
        "{}",
        base.dump()
    );
    assert!(
        base.sim_call()["out_of_frame_writes"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{}",
        base.dump()
    );
    // Under the guard: sgl.bounds answers EINVAL and nothing reaches the driver.
    let run = client(&["fault", "iovec-unmapped-rule"])
        .guard(Guard::Enforce)
        .run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert_eq!(
        run.stdout,
        "ioctl=MEGASAS_IOC_FIRMWARE ret=-1 errno=22 (EINVAL)\nfault=iovec-unmapped-rule\nstatus_byte=0xff\n",
        "{}",
        run.dump()
    );
    assert!(run.sim.is_empty(), "{}", run.dump());
    let call = run.audit_call();
    assert_eq!(
        finding_rules(&call),
        rule_scenario_findings("sgl.bounds"),
        "{}",
        run.dump()
    );
    assert_eq!(errno(&call), Some(22), "{}", run.dump());
    // Audit mode enforces nothing: the kernel's answer, the finding recorded.
    let audit = client(&["fault", "iovec-unmapped-rule"])
        .guard(Guard::Audit)
        .run();
    assert_eq!(audit.stdout, base.stdout, "{}", audit.dump());
    assert_eq!(
        finding_rules(&audit.audit_call()),
        rule_scenario_findings("sgl.bounds"),
        "{}",
        audit.dump()
    );
}
