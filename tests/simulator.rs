//! The oracle first: the legacy-driver simulator and the client, without the guard, reproduce
//! what a pre-3.3 host does. If these fail, no guard test below means anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

#[test]
fn the_seed_stp_probe_reaches_the_firmware_at_0x1491dfc000() {
    let run = client(&["stp-probe", "10"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    let sim = run.sim_call();
    // The driver allocated the 20-byte response buffer at the seed's DMA address, and wrote
    // 32-bit entries at sgl_off 0x30 ...
    assert_eq!(
        sim["dma_buffers"][0]["addr"],
        "0x91dfc000",
        "{}",
        run.dump()
    );
    assert_eq!(sim["dma_buffers"][0]["len"], 20);
    assert_eq!(sim["driver_sge32"][0]["offset"], 0x30);
    // ... left the caller's IEEE|SGL64 flags alone, and the firmware read a skinny SGL:
    assert_eq!(text(sim, "flags"), Some("0x0032"));
    assert_eq!(text(sim, "firmware_sgl_format"), Some("skinny"));
    assert_eq!(firmware_addrs(sim)[0], "0x1491dfc000", "{}", run.dump());
    // ... and DMA'd the 20-byte response FIS where no buffer is: the seed's corruption.
    let wild = sim["wild_dma"].as_array().unwrap();
    assert_eq!(wild.len(), 1, "{}", run.dump());
    assert_eq!(wild[0]["addr"], "0x1491dfc000");
    assert_eq!(wild[0]["len"], 20);
    assert_eq!(wild[0]["dir"], "write");
    // The tool never got its IDENTIFY data.
    assert!(run.stdout.contains("\nmodel=\n"), "{}", run.dump());
}

#[test]
fn a_clean_dcmd_is_answered_from_the_driver_buffer() {
    let run = client(&["ctrl-info"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(
        run.stdout,
        "ioctl=MEGASAS_IOC_FIRMWARE ret=0 errno=0 cmd_status=0x00 (OK)\n\
         firmware=1.80-SIM\n\
         package=12.12.0-0048-SIM\n\
         product=LSI MegaRAID SAS 9260-8i\n\
         serial=SIM0000001\n\
         packet_changed=0x16\n"
    );
    let sim = run.sim_call();
    assert_eq!(text(sim, "cmd_name"), Some("DCMD"));
    assert_eq!(text(sim, "opcode"), Some("0x01010000"));
    assert_eq!(firmware_addrs(sim), ["0x91dfc000"]);
    assert_eq!(sim["wild_dma"].as_array().unwrap().len(), 0);
    assert_eq!(sim["out_of_frame_writes"].as_array().unwrap().len(), 0);
    assert_eq!(int(sim, "cmd_status"), Some(0));
}

#[test]
fn every_monitoring_scenario_runs_against_the_simulator() {
    for (args, expect) in [
        (&["pd-list"][..], "pd_ids=8,9,10,11\n"),
        (&["ld-list"][..], "ld_targets=0\n"),
        (&["event-info"][..], "newest_seq=4711 "),
        (&["inquiry", "8"][..], "vendor=SEAGATE\n"),
        (&["aen"][..], "ioctl=MEGASAS_IOC_GET_AEN ret=0 errno=0\n"),
    ] {
        let run = client(args).run();
        assert_eq!(run.code(), 0, "{}", run.dump());
        assert!(run.stdout.contains(expect), "{}", run.dump());
        assert_eq!(run.sim.len(), 1, "{}", run.dump());
    }
}

#[test]
fn an_unchecked_sgl_off_is_an_out_of_frame_write() {
    let run = client(&["sgl-off", "0x40000"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    let sim = run.sim_call();
    let w = &sim["out_of_frame_writes"][0];
    assert_eq!(w["offset"], 0x40000, "{}", run.dump());
    assert_eq!(w["bytes"], 8);
    // The firmware, reading its SGL where a DCMD keeps it, finds nothing and says so.
    assert_eq!(int(sim, "cmd_status"), Some(3));
}

#[test]
fn an_unchecked_sense_off_is_an_out_of_frame_write() {
    let run = client(&["sense-off", "0x100000"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    let w = &run.sim_call()["out_of_frame_writes"][0];
    assert_eq!(w["what"], "sense address", "{}", run.dump());
    assert_eq!(w["offset"], 0x100000);
}

#[test]
fn the_simulator_answers_only_its_own_requests_on_its_own_device() {
    let run = client(&["unrelated"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(
        run.stdout,
        "fionread_pipe ret=0 errno=0 (0) bytes=5\n\
         megaraid_request_on_pipe ret=-1 errno=25 (ENOTTY)\n\
         other_m_request_on_device ret=-1 errno=25 (ENOTTY)\n\
         tcgets_device ret=-1 errno=25 (ENOTTY)\n\
         other_abi_firmware_on_device ret=-1 errno=25 (ENOTTY)\n"
    );
    assert!(run.sim.is_empty(), "{}", run.dump());
}

#[test]
fn an_unreadable_packet_is_efault_like_copy_from_user() {
    for kind in ["unmapped", "protnone", "span", "null"] {
        let run = client(&["fault", kind]).run();
        assert_eq!(run.code(), 1, "{}", run.dump());
        assert!(
            run.stdout.contains("ret=-1 errno=14 (EFAULT)"),
            "{}",
            run.dump()
        );
        assert_eq!(errno(run.sim_call()), Some(14), "{}", run.dump());
    }
}

#[test]
fn a_second_thread_flipping_ieee_reaches_an_unguarded_driver() {
    // The race test with the guard is only meaningful if the flips do reach the driver
    // when nothing is in between.
    let run = client(&["race", "3000"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    let flags: Vec<&str> = run.sim.iter().filter_map(|r| text(r, "flags")).collect();
    assert_eq!(flags.len(), 3000);
    assert!(
        flags.contains(&"0x0032"),
        "no flip reached the simulator in 3000 calls: the race scenario does not race"
    );
    assert!(flags.contains(&"0x0010"));
}

#[test]
fn the_kernel_ignores_the_upper_half_of_a_64_bit_request_code() {
    let run = client(&["high-bits"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    let sim = run.sim_call();
    if text(sim, "abi") == Some("x86_64") {
        assert_eq!(text(sim, "request"), Some("0xc1944d01"));
        assert_eq!(text(sim, "request_full"), Some("0x1c1944d01"));
    } else {
        // A 32-bit client has no upper half to set.
        assert_eq!(text(sim, "request"), Some("0xc1144d01"));
    }
    assert_eq!(text(sim, "flags"), Some("0x0032"));
}

#[test]
fn a_controller_that_does_not_exist_is_enodev() {
    let run = client(&["--host", "3", "ctrl-info"]).run();
    assert_eq!(run.code(), 1, "{}", run.dump());
    assert!(run.stdout.contains("errno=19 (ENODEV)"), "{}", run.dump());
}
