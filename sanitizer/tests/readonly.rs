//! The read-only policy: a monitoring run's command sequence passes, and each kind of change is
//! refused with EPERM under the `readonly.*` rule that names it.

use mfiguard_sanitizer::abi::mfi::MfiCmd;
use mfiguard_sanitizer::builder::{samples, PacketBuilder};
use mfiguard_sanitizer::{
    decide_packet, decode, Abi, Decision, Errno, Policy, RuleId, RuleSet, Verdict,
};

const BUF: u64 = 0x7f00_1234_5000;
const SENSE: u64 = 0x7f00_1234_9000;

fn readonly() -> Policy {
    Policy {
        readonly: true,
        ..Policy::default()
    }
}

fn decide_ro(abi: Abi, bytes: &[u8], smp_request: Option<[u8; 4]>) -> (Verdict, Verdict) {
    let mut packet = decode(abi, bytes).unwrap();
    packet.smp_request = smp_request;
    (
        decide_packet(&readonly(), &packet),
        decide_packet(&Policy::default(), &packet),
    )
}

fn assert_refused(abi: Abi, bytes: &[u8], rule: RuleId, what: &str) {
    let (ro, plain) = decide_ro(abi, bytes, None);
    assert_eq!(
        ro.decision(),
        Decision::Reject(Errno::EPERM),
        "{what} on {abi:?}"
    );
    let finding = ro
        .finding(rule)
        .unwrap_or_else(|| panic!("{what}: {rule} did not fire"));
    assert!(!finding.detail.to_string().is_empty());
    // Without the read-only policy the same packet is structurally fine.
    assert!(
        !matches!(plain.decision(), Decision::Reject(_)),
        "{what} is only a read-only refusal"
    );
    assert!(
        plain.finding(rule).is_none(),
        "{rule} must not fire outside read-only"
    );
}

fn assert_allowed(abi: Abi, bytes: &[u8], smp: Option<[u8; 4]>, what: &str) {
    let (ro, _) = decide_ro(abi, bytes, smp);
    assert!(
        !matches!(ro.decision(), Decision::Reject(_)),
        "{what} on {abi:?}: {:?}",
        ro.findings().collect::<Vec<_>>()
    );
}

fn dcmd(abi: Abi, opcode: u32) -> Vec<u8> {
    samples::dcmd_read(abi, opcode, BUF, 4096).build()
}

fn dcmd_no_data(abi: Abi, opcode: u32) -> Vec<u8> {
    PacketBuilder::new(abi)
        .frame_header(MfiCmd::Dcmd, 0, 0, 0)
        .frame_u32(0x18, opcode)
        .build()
}

fn pthru(abi: Abi, cdb: &[u8], flags: u16) -> Vec<u8> {
    samples::scsi_inquiry(abi, 3, BUF, 96, SENSE)
        .header(|h| {
            h.cdb_len = cdb.len() as u8;
            h.flags = flags.into();
        })
        .frame_bytes(0x20, &[0; 16])
        .frame_bytes(0x20, cdb)
        .build()
}

fn stp(abi: Abi, command: u8, features: u8, flags: u16) -> Vec<u8> {
    samples::megacli_8_01_06_stp_probe(abi, 4, BUF, BUF + 0x1000)
        .header(|h| h.flags = flags.into())
        .frame_bytes(0x18, &[0x27, 0x80, command, features])
        .build()
}

fn smp(abi: Abi) -> Vec<u8> {
    PacketBuilder::new(abi)
        .sgl_off(0x20)
        .sge_count(2)
        .iovec(0, BUF, 64)
        .iovec(1, BUF + 0x100, 8)
        .frame_header(MfiCmd::Smp, 0x0010, 2, 64)
        .frame_u64(0x18, 0x5000_c500_1234_5678)
        .build()
}

#[test]
fn a_monitoring_run_passes() {
    // What `MegaCli -AdpAllInfo`, `-PDList`, `-LDInfo`, `-AdpBbuCmd`, `-AdpEventLog` send.
    let opcodes = [
        0x0101_0000, // CTRL_GET_INFO
        0x0102_0100, // CTRL_GET_PROPS
        0x0201_0000, // PD_GET_LIST
        0x0202_0000, // PD_GET_INFO
        0x0301_0000, // LD_GET_LIST
        0x0302_0000, // LD_GET_INFO
        0x0303_0000, // LD_GET_PROPERTIES
        0x0401_0000, // CONF_GET
        0x0501_0000, // BBU_GET_STATUS
        0x0502_0000, // BBU_GET_CAPACITY_INFO
        0x0503_0000, // BBU_GET_DESIGN_INFO
        0x0104_0100, // CTRL_EVENT_GET_INFO
        0x0104_0300, // CTRL_EVENT_GET
    ];
    for abi in Abi::ALL {
        for opcode in opcodes {
            assert_allowed(
                abi,
                &dcmd(abi, opcode),
                None,
                &format!("DCMD {opcode:#010x}"),
            );
        }
        assert_allowed(
            abi,
            &samples::scsi_inquiry(abi, 3, BUF, 96, SENSE).build(),
            None,
            "INQUIRY",
        );
        assert_allowed(
            abi,
            &pthru(abi, &[0x5a, 0, 0x3f, 0, 0, 0, 0, 0x10, 0, 0], 0x10),
            None,
            "MODE SENSE(10)",
        );
        assert_allowed(
            abi,
            &pthru(abi, &[0x4d, 0, 0x40 | 0x2f, 0, 0, 0, 0, 0x10, 0, 0], 0x10),
            None,
            "LOG SENSE",
        );
        assert_allowed(
            abi,
            &pthru(abi, &[0x00, 0, 0, 0, 0, 0], 0x00),
            None,
            "TEST UNIT READY",
        );
        // The seed's probe (IDENTIFY DEVICE) and SMART READ DATA, as smartctl -d megaraid sends.
        assert_allowed(
            abi,
            &samples::megacli_8_01_06_stp_probe(abi, 4, BUF, BUF + 0x1000).build(),
            None,
            "STP IDENTIFY",
        );
        assert_allowed(abi, &stp(abi, 0xb0, 0xd0, 0x10), None, "SMART READ DATA");
        assert_allowed(abi, &smp(abi), Some([0x40, 0x10, 0, 0]), "SMP DISCOVER");
        assert_allowed(
            abi,
            &smp(abi),
            Some([0x40, 0x00, 0, 0]),
            "SMP REPORT GENERAL",
        );
    }
}

#[test]
fn changes_are_refused_with_eperm() {
    for abi in Abi::ALL {
        for (opcode, what) in [
            (0x0105_0000, "CTRL_SHUTDOWN"),
            (0x0102_0200, "CTRL_SET_PROPS"),
            (0x0402_0000, "CFG_ADD"),
            (0x0403_0000, "CFG_CLEAR"),
            (0x0304_0000, "LD_SET_PROPERTIES"),
            (0x0309_0000, "LD_DELETE"),
            (0x0203_0100, "PD_SET_STATE"),
            (0x010f_0100, "FLASH_FW_OPEN"),
            (0x010f_0300, "FLASH_FW_FLASH"),
        ] {
            assert_refused(abi, &dcmd_no_data(abi, opcode), RuleId::ReadonlyDcmd, what);
        }
        // An allowlisted opcode that sends data is still a write.
        let write = samples::dcmd_read(abi, 0x0101_0000, BUF, 4096)
            .header(|h| h.flags = 0x0008.into())
            .build();
        assert_refused(
            abi,
            &write,
            RuleId::ReadonlyDcmd,
            "CTRL_GET_INFO with DIR_WRITE",
        );

        assert_refused(
            abi,
            &pthru(abi, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], 0x08),
            RuleId::ReadonlyScsi,
            "WRITE(10)",
        );
        assert_refused(
            abi,
            &pthru(
                abi,
                &[0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
                0x08,
            ),
            RuleId::ReadonlyScsi,
            "WRITE(16)",
        );
        assert_refused(
            abi,
            &pthru(abi, &[0x04, 0, 0, 0, 0, 0], 0x00),
            RuleId::ReadonlyScsi,
            "FORMAT UNIT",
        );
        assert_refused(
            abi,
            &pthru(abi, &[0x1d, 0x04, 0, 0, 0, 0], 0x00),
            RuleId::ReadonlyScsi,
            "SEND DIAGNOSTIC",
        );
        // INQUIRY is a read, but not when the frame sends data.
        assert_refused(
            abi,
            &pthru(abi, &[0x12, 0, 0, 0, 96, 0], 0x08),
            RuleId::ReadonlyScsi,
            "INQUIRY with DIR_WRITE",
        );

        assert_refused(
            abi,
            &stp(abi, 0xca, 0, 0x08),
            RuleId::ReadonlyAta,
            "WRITE DMA",
        );
        assert_refused(
            abi,
            &stp(abi, 0xf4, 0, 0x00),
            RuleId::ReadonlyAta,
            "SECURITY ERASE UNIT",
        );
        assert_refused(
            abi,
            &stp(abi, 0x92, 0, 0x08),
            RuleId::ReadonlyAta,
            "DOWNLOAD MICROCODE",
        );
        assert_refused(
            abi,
            &stp(abi, 0xb0, 0xd8, 0x00),
            RuleId::ReadonlyAta,
            "SMART ENABLE OPERATIONS",
        );
        assert_refused(
            abi,
            &stp(abi, 0xec, 0, 0x18),
            RuleId::ReadonlyAta,
            "IDENTIFY with DIR_BOTH",
        );

        // SMP: PHY CONTROL, and a request the guard could not read.
        let (ro, _) = decide_ro(abi, &smp(abi), Some([0x40, 0x91, 0, 0]));
        assert_eq!(ro.decision(), Decision::Reject(Errno::EPERM));
        assert!(ro
            .finding(RuleId::ReadonlySmp)
            .unwrap()
            .detail
            .to_string()
            .contains("0x91"));
        assert_refused(
            abi,
            &smp(abi),
            RuleId::ReadonlySmp,
            "SMP request not inspected",
        );
    }
}

/// A rule that is a second line: `bytes` is refused first by the structural rule `first`, with
/// EINVAL, and by `rule` too in read-only mode; with `first` allowed, `rule` refuses it alone,
/// with EPERM, and outside read-only mode it passes.
fn assert_second_line(abi: Abi, bytes: &[u8], rule: RuleId, first: RuleId, what: &str) {
    let rules = |v: &Verdict| v.findings().map(|f| f.rule).collect::<Vec<_>>();
    let (ro, plain) = decide_ro(abi, bytes, None);
    assert_eq!(rules(&plain), [first], "{what}");
    assert_eq!(plain.decision(), Decision::Reject(Errno::EINVAL), "{what}");
    assert_eq!(rules(&ro), [first, rule], "{what}");
    assert_eq!(ro.decision(), Decision::Reject(Errno::EINVAL), "{what}");
    let packet = decode(abi, bytes).unwrap();
    let allowed = Policy {
        allow: RuleSet::EMPTY.with(first),
        ..readonly()
    };
    let v = decide_packet(&allowed, &packet);
    assert_eq!(v.decision(), Decision::Reject(Errno::EPERM), "{what}");
    let f = v.finding(rule).unwrap();
    assert!(!f.downgraded, "{what}");
    assert!(!f.detail.to_string().is_empty());
    let enforce = Policy {
        allow: RuleSet::EMPTY.with(first),
        ..Policy::default()
    };
    assert_eq!(
        decide_packet(&enforce, &packet).decision(),
        Decision::Pass,
        "{what}"
    );
}

/// `readonly.cmd` is a second line: every frame it refuses (INIT, raw LD read/write, ABORT,
/// NVMe, toolbox, unknown codes) is refused first by a structural rule, with EINVAL. It decides
/// alone when that rule is allowed: a tool that needs NVMe frames (`--allow
/// frame.layout-unknown`) still gets none through in read-only mode, nor an INIT frame (a
/// firmware re-initialised from the caller's queue address) with `frame.cmd-forbidden` allowed.
#[test]
fn readonly_cmd_is_the_second_line_behind_the_structural_rules() {
    for abi in Abi::ALL {
        for (cmd, first) in [
            (MfiCmd::Init as u8, RuleId::FrameCmdForbidden),
            (MfiCmd::LdRead as u8, RuleId::FrameCmdForbidden),
            (MfiCmd::LdWrite as u8, RuleId::FrameCmdForbidden),
            (MfiCmd::Abort as u8, RuleId::FrameCmdForbidden),
            (MfiCmd::Nvme as u8, RuleId::FrameLayoutUnknown),
            (MfiCmd::Toolbox as u8, RuleId::FrameLayoutUnknown),
            (0x0B, RuleId::FrameCmd),
            (0xFF, RuleId::FrameCmd),
        ] {
            let bytes = PacketBuilder::new(abi)
                .frame_header(MfiCmd::Dcmd, 0x08, 0, 0)
                .header(|h| h.cmd = cmd)
                .build();
            let what = format!("{cmd:?} on {abi:?}");
            assert_second_line(abi, &bytes, RuleId::ReadonlyCmd, first, &what);
        }
    }
}

#[test]
fn structural_rules_answer_before_the_readonly_ones() {
    for abi in Abi::ALL {
        // A write DCMD with an out-of-frame SGL: EINVAL (the structural rule) wins over EPERM.
        let bytes = samples::dcmd_read(abi, 0x0403_0000, BUF, 64)
            .sgl_off(0x40000)
            .build();
        let (ro, _) = decide_ro(abi, &bytes, None);
        assert_eq!(ro.decision(), Decision::Reject(Errno::EINVAL));
        assert!(
            ro.finding(RuleId::ReadonlyDcmd).is_some(),
            "both are recorded"
        );
    }
}

#[test]
fn the_refused_opcode_is_named_in_the_detail() {
    let bytes = dcmd_no_data(Abi::Lp64, 0x0105_0000);
    let (ro, _) = decide_ro(Abi::Lp64, &bytes, None);
    let detail = ro.finding(RuleId::ReadonlyDcmd).unwrap().detail.to_string();
    assert!(detail.contains("0x01050000"), "{detail}");
    assert!(detail.contains("SHUTDOWN"), "{detail}");
}
