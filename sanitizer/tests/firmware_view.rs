//! The promise the rules keep, as a property: for any packet the sanitizer lets through (every
//! frame type, flags, offsets, counts, sense, mailbox), once rewritten, every address the
//! firmware uses is one the driver wrote, on Linux 6.1 (64- and 32-bit DMA) and on the pre-3.3
//! driver, and the driver completes the frame as an ioctl's. The oracle is the firmware-view
//! model of `properties/firmware.rs`, written apart from the rules: this test calls only
//! `decide` and `apply`, and compares the crate's own model (`mfiguard_sanitizer::firmware`)
//! with the oracle's tables.
//!
//! LD read/write frames never pass (`frame.cmd-forbidden`: their completion kills the kernel);
//! with that rule allowed, the other rules still keep the address promise for them, which the
//! property checks too, should a driver ever complete them as an ioctl's.
//!
//! Failures are not persisted to files: a failing case prints its minimal input.

#[path = "properties/firmware.rs"]
mod firmware;

use std::cell::RefCell;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use mfiguard_sanitizer::abi::mfi::MfiCmd;
use mfiguard_sanitizer::builder::{samples, PacketBuilder};
use mfiguard_sanitizer::firmware::{Layout, FRAME_VIEWS, HOST_ADDRESS_DCMDS};
use mfiguard_sanitizer::{decide, Abi, Decision, Policy, RuleId, RuleSet};

fn config(cases: u32) -> Config {
    Config {
        cases: Config::default().cases.max(cases),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A packet by its fields (host-endian packet fields, little-endian frame).
#[derive(Clone)]
struct Pkt {
    abi: Abi,
    sgl_off: u32,
    sge_count: u32,
    sense_off: u32,
    sense_len: u32,
    frame: [u8; 128],
    lens: [u64; 16],
}

impl std::fmt::Debug for Pkt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frame: Vec<String> = (0..128)
            .filter(|i| self.frame[*i] != 0)
            .map(|i| format!("{i:#04x}:{:02x}", self.frame[i]))
            .collect();
        write!(
            f,
            "{:?} sgl_off {:#x} sge_count {} sense_off {:#x} sense_len {} iov_len {:?} frame [{}]",
            self.abi,
            self.sgl_off,
            self.sge_count,
            self.sense_off,
            self.sense_len,
            self.lens,
            frame.join(" ")
        )
    }
}

impl Pkt {
    fn bytes(&self) -> Vec<u8> {
        let mut b = PacketBuilder::new(self.abi)
            .sgl_off(self.sgl_off)
            .sge_count(self.sge_count)
            .sense_off(self.sense_off)
            .sense_len(self.sense_len)
            .frame_bytes(0, &self.frame);
        for (i, len) in self.lens.iter().enumerate() {
            // A 32-bit caller holds 32-bit lengths.
            let len = match self.abi {
                Abi::Lp64 => *len,
                Abi::Ilp32 => *len & 0xFFFF_FFFF,
            };
            b = b.iovec(i, 0x7f00_0000_0000 + 0x10_0000 * i as u64, len);
        }
        b.build()
    }
}

/// The frame types whose layout is published: all may pass but LD read/write (0x01, 0x02),
/// which pass only with `frame.cmd-forbidden` allowed.
const PUBLISHED: [u8; 7] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08];

/// LD read and LD write, refused by `frame.cmd-forbidden` whatever their layout.
fn ld_io(cmd: u8) -> bool {
    matches!(cmd, 0x01 | 0x02)
}

/// Enforce with `frame.cmd-forbidden` allowed: LD read/write frames reach the address rules'
/// judgement alone.
const LD_IO_ALLOWED: Policy = Policy {
    mode: mfiguard_sanitizer::Mode::Enforce,
    readonly: false,
    allow: RuleSet::EMPTY.with(RuleId::FrameCmdForbidden),
};

fn own_sgl_off(cmd: u8) -> u32 {
    match cmd {
        0x01 | 0x02 | 0x05 => 0x28,
        0x07 => 0x20,
        _ => 0x30,
    }
}

/// DCMD opcodes: reads, the ones that hand the firmware host memory (`pend` sets the mailbox
/// byte that makes the map syncs so), and anything.
fn dcmd() -> impl Strategy<Value = (u32, [u8; 12])> {
    let opcode = prop_oneof![
        4 => proptest::sample::select(vec![0x0101_0000u32, 0x0201_0000, 0x0301_0000, 0x0104_0100]),
        2 => proptest::sample::select(vec![
            0x0119_0100u32, 0x010e_8485, 0x0100_e100, 0x0300_e101, 0x0200_e102
        ]),
        1 => any::<u32>(),
    ];
    let mbox = prop_oneof![
        2 => Just([0u8; 12]),
        1 => Just([1u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        1 => vec(any::<u8>(), 12).prop_map(|v| v.try_into().unwrap()),
    ];
    (opcode, mbox)
}

/// Every frame type, flags, offsets, counts, sense, mailbox; the frame body (where the SGL and
/// the sense address lie) full of the caller's bytes: addresses of its choosing.
fn packet() -> impl Strategy<Value = Pkt> {
    let cmd = prop_oneof![
        8 => proptest::sample::select(&PUBLISHED[..]),
        1 => 0u8..=0x0C,
        1 => any::<u8>(),
    ];
    let flags = prop_oneof![
        Just(0u16),
        Just(0x0010),
        Just(0x0008),
        Just(0x0032),
        Just(0x0026),
        Just(0x0020),
        any::<u16>(),
    ];
    let counts = (
        prop_oneof![5 => 0u32..=3, 3 => 0u32..=16, 1 => 17u32..=20],
        prop_oneof![4 => Just(None), 2 => (0u8..=20).prop_map(Some), 1 => any::<u8>().prop_map(Some)],
    );
    let sgl_off = prop_oneof![
        6 => Just(None),
        1 => (-12i64..=12).prop_map(Some),
        1 => (0i64..0x110).prop_map(|o| Some(o + 0x1000)),
    ];
    let lens = vec(
        prop_oneof![2 => Just(0u64), 6 => 1u64..=65536, 1 => any::<u64>()],
        16,
    );
    let sense = (
        prop_oneof![3 => Just(0u32), 2 => 1u32..=96, 1 => 0u32..=5000],
        prop_oneof![4 => Just(0x18u32), 1 => 0x18u32..=56, 1 => 0u32..0x100, 1 => any::<u32>()],
        prop_oneof![2 => Just(None), 1 => any::<u8>().prop_map(Some)],
    );
    let body = prop_oneof![
        2 => vec(any::<u8>(), 128),
        1 => vec(prop_oneof![4 => Just(0u8), 1 => any::<u8>()], 128),
    ];
    let abi = prop_oneof![Just(Abi::Lp64), Just(Abi::Ilp32)];
    (abi, cmd, flags, counts, sgl_off, lens, sense, body, dcmd()).prop_map(
        |(abi, cmd, flags, (n, hdr_n), off, lens, (sl, so, hdr_sl), body, (opcode, mbox))| {
            let mut frame: [u8; 128] = body.try_into().unwrap();
            frame[0] = cmd;
            frame[1] = hdr_sl.unwrap_or(sl.min(255) as u8);
            frame[7] = hdr_n.unwrap_or(n.min(255) as u8);
            frame[0x10..0x12].copy_from_slice(&flags.to_le_bytes());
            if cmd == 0x05 {
                frame[0x18..0x1C].copy_from_slice(&opcode.to_le_bytes());
                frame[0x1C..0x28].copy_from_slice(&mbox);
            }
            let sgl_off = match off {
                None => own_sgl_off(cmd),
                Some(o) if o >= 0x1000 => (o - 0x1000) as u32,
                Some(d) => (i64::from(own_sgl_off(cmd)) + d) as u32,
            };
            Pkt {
                abi,
                sgl_off,
                sge_count: n,
                sense_off: so,
                sense_len: sl,
                frame,
                lens: lens.try_into().unwrap(),
            }
        },
    )
}

const POLICIES: [Policy; 2] = [
    Policy {
        mode: mfiguard_sanitizer::Mode::Enforce,
        readonly: false,
        allow: RuleSet::EMPTY,
    },
    Policy {
        mode: mfiguard_sanitizer::Mode::Enforce,
        readonly: true,
        allow: RuleSet::EMPTY,
    },
];

/// What one packet did under one policy: `None` when refused, else the oracle's answer on what
/// is sent (`oracle`: the whole of it, or the addresses alone).
fn run_with(
    policy: &Policy,
    abi: Abi,
    bytes: &[u8],
    oracle: fn(Abi, &[u8]) -> Result<(), String>,
) -> Option<Result<(), String>> {
    let v = decide(policy, abi, bytes).expect("a whole packet decodes");
    if matches!(v.decision(), Decision::Reject(_)) {
        return None;
    }
    let mut sent = bytes.to_vec();
    v.apply(&mut sent).expect("a whole packet");
    Some(oracle(abi, &sent))
}

fn run(policy: &Policy, abi: Abi, bytes: &[u8]) -> Option<Result<(), String>> {
    run_with(policy, abi, bytes, firmware::check_every_driver)
}

/// An LD read/write frame with `frame.cmd-forbidden` allowed: the addresses its firmware uses.
fn run_ld_io(abi: Abi, bytes: &[u8]) -> Option<Result<(), String>> {
    run_with(&LD_IO_ALLOWED, abi, bytes, firmware::addresses_every_driver)
}

proptest! {
    #![proptest_config(config(2000))]

    /// Every packet the default or the read-only policy lets through: every address its
    /// firmware uses was written by the driver, whichever driver runs it.
    #[test]
    fn the_firmware_uses_only_addresses_the_driver_wrote(p in packet()) {
        let bytes = p.bytes();
        for policy in &POLICIES {
            if let Some(r) = run(policy, p.abi, &bytes) {
                r.map_err(|e| TestCaseError::fail(format!("readonly={}: {e}", policy.readonly)))?;
            }
        }
        if ld_io(p.frame[0]) {
            if let Some(r) = run_ld_io(p.abi, &bytes) {
                r.map_err(|e| TestCaseError::fail(format!("LD I/O allowed: {e}")))?;
            }
        }
    }
}

/// The same property on a fixed seed, counting what passed: the generator reaches every frame
/// type the rules let through (LD read/write with `frame.cmd-forbidden` allowed; with several
/// entries, sense, rewritten flags), and the new rules each decide some packets, so the property
/// is not vacuous.
#[test]
fn the_property_covers_every_frame_type() {
    #[derive(Default)]
    struct Count {
        passed_by_cmd: std::collections::BTreeMap<u8, usize>,
        several_entries: usize,
        with_sense: usize,
        flags_rewritten: usize,
        refused_by: std::collections::BTreeMap<&'static str, usize>,
        rewritten_by: std::collections::BTreeMap<&'static str, usize>,
    }
    let count = RefCell::new(Count::default());
    let mut runner = TestRunner::new_with_rng(
        config(20_000),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let result = runner.run(&packet(), |p| {
        let bytes = p.bytes();
        let ld = ld_io(p.frame[0]);
        let policy = if ld { LD_IO_ALLOWED } else { Policy::default() };
        if ld {
            // Refused as it is, and by frame.cmd-forbidden, whatever else it holds.
            let strict = decide(&Policy::default(), p.abi, &bytes).unwrap();
            let f = strict.finding(RuleId::FrameCmdForbidden);
            if !f.is_some_and(|f| f.action == mfiguard_sanitizer::Action::Reject)
                || !matches!(strict.decision(), Decision::Reject(_))
            {
                return Err(TestCaseError::fail(format!(
                    "an LD I/O frame passed: {strict:?}"
                )));
            }
        }
        let v = decide(&policy, p.abi, &bytes).unwrap();
        let mut c = count.borrow_mut();
        if let Decision::Reject(_) = v.decision() {
            let rejecting: Vec<_> = v
                .findings()
                .filter(|f| f.action == mfiguard_sanitizer::Action::Reject)
                .collect();
            if let [only] = rejecting.as_slice() {
                *c.refused_by.entry(only.rule.name()).or_default() += 1;
            }
            return Ok(());
        }
        let mut sent = bytes.clone();
        v.apply(&mut sent).unwrap();
        let oracle = if ld {
            firmware::addresses_every_driver
        } else {
            firmware::check_every_driver
        };
        oracle(p.abi, &sent).map_err(TestCaseError::fail)?;
        let s = firmware::Sent::parse(p.abi, &sent);
        *c.passed_by_cmd.entry(s.frame[0]).or_default() += 1;
        if s.frame[7] >= 2
            && s.lens
                .iter()
                .take(s.sge_count as usize)
                .filter(|l| **l > 0)
                .count()
                >= 2
        {
            c.several_entries += 1;
        }
        if s.sense_len > 0 && s.frame[1] > 0 {
            c.with_sense += 1;
        }
        if v.finding(RuleId::FrameAddressingFlags).is_some() {
            c.flags_rewritten += 1;
        }
        for f in v
            .findings()
            .filter(|f| f.action == mfiguard_sanitizer::Action::Rewrite)
        {
            *c.rewritten_by.entry(f.rule.name()).or_default() += 1;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let c = count.into_inner();
    for cmd in PUBLISHED {
        let n = c.passed_by_cmd.get(&cmd).copied().unwrap_or(0);
        println!("cmd {cmd:#04x}: {n} passed");
        assert!(n >= 100, "cmd {cmd:#04x}: only {n} packets passed");
    }
    println!(
        "several entries {}, sense {}, flags rewritten {}; sole refusals {:?}; rewrites {:?}",
        c.several_entries, c.with_sense, c.flags_rewritten, c.refused_by, c.rewritten_by
    );
    assert!(c.several_entries >= 100, "{}", c.several_entries);
    assert!(c.with_sense >= 100, "{}", c.with_sense);
    assert!(c.flags_rewritten >= 100, "{}", c.flags_rewritten);
    for rule in [
        RuleId::FrameCmdForbidden,
        RuleId::SglOffsetUnusual,
        RuleId::SenseOffsetUnusual,
        RuleId::SglEmptyEntryPastFrame,
        RuleId::FrameLayoutUnknown,
        RuleId::DcmdHostAddress,
    ] {
        let n = c.refused_by.get(rule.name()).copied().unwrap_or(0);
        assert!(n >= 10, "{rule} alone refused {n} packets");
    }
    for rule in [RuleId::FrameDontPostFlag, RuleId::SglFixedEntryUnwritten] {
        let n = c.rewritten_by.get(rule.name()).copied().unwrap_or(0);
        assert!(n >= 100, "{rule} rewrote only {n} packets that passed");
    }
}

const BUF: u64 = 0x7f00_1234_5000;

type Make = fn(Abi) -> Vec<u8>;

/// One packet per hole, with the rule that closes it.
fn holes() -> Vec<(RuleId, Make)> {
    vec![
        // A well-formed one-block LD read or write: the driver completes it through the block
        // layer's SCSI command, which a frame from the ioctl has not.
        (RuleId::FrameCmdForbidden, |abi| {
            samples::ld_io(abi, MfiCmd::LdRead, 0, BUF).build()
        }),
        (RuleId::FrameCmdForbidden, |abi| {
            samples::ld_io(abi, MfiCmd::LdWrite, 0, BUF).build()
        }),
        // INIT: the firmware re-initialises from the caller's queue address.
        (RuleId::FrameCmdForbidden, |abi| {
            PacketBuilder::new(abi)
                .frame_header(MfiCmd::Init, 0, 0, 0)
                .frame_u64(0x18, 0x1234_5000)
                .build()
        }),
        // The hole found on Linux 6.1: the firmware reads the DCMD's SGL at 0x28, where the
        // caller put a physical address and a length; the driver writes its entry at 0x30.
        (RuleId::SglOffsetUnusual, |abi| {
            samples::dcmd_read(abi, 0x0101_0000, BUF, 4096)
                .sgl_off(0x30)
                .frame_u32(0x28, 0x1234_5000)
                .frame_u32(0x2C, 4096)
                .build()
        }),
        // The sense address moved into the CDB: the firmware writes sense to address 0.
        (RuleId::SenseOffsetUnusual, |abi| {
            samples::scsi_inquiry(abi, 3, BUF, 96, 0)
                .sense_off(0x28)
                .frame_u64(0x18, 0)
                .build()
        }),
        // A sense buffer on a DCMD, its address written over the SGL entry.
        (RuleId::SenseOffsetUnusual, |abi| {
            samples::dcmd_read(abi, 0x0101_0000, BUF, 4096)
                .sense_off(0x28)
                .sense_len(32)
                .build()
        }),
        // The eighth entry, empty, past the 128 bytes the packet carries.
        (RuleId::SglEmptyEntryPastFrame, |abi| {
            (1..8)
                .fold(
                    samples::dcmd_read(abi, 0x0101_0000, BUF, 4096).sge_count(8),
                    |b, i| b.iovec(i, 0, 0),
                )
                .header(|h| h.sge_count = 8)
                .build()
        }),
        (RuleId::FrameLayoutUnknown, |abi| {
            PacketBuilder::new(abi)
                .frame_header(MfiCmd::Nvme, 0x10, 0, 0)
                .build()
        }),
        (RuleId::DcmdHostAddress, |abi| {
            samples::dcmd_read(abi, 0x0119_0100, BUF, 4096).build()
        }),
        // The seed: IEEE on the legacy driver, which writes sge32 entries.
        (RuleId::FrameAddressingFlags, |abi| {
            samples::megacli_8_01_06_stp_probe(abi, 4, BUF, BUF + 0x1000).build()
        }),
        // A reading DCMD that asks the firmware not to post its completion: the ioctl waits
        // for it forever (MFI), or the frame returns to the pool under it (Fusion).
        (RuleId::FrameDontPostFlag, |abi| {
            samples::dcmd_read(abi, 0x0101_0000, BUF, 4096)
                .header(|h| h.flags = 0x0011.into())
                .build()
        }),
        // An STP IDENTIFY with its response buffer only: the data entry is the caller's.
        (RuleId::SglFixedEntryUnwritten, |abi| {
            samples::megacli_8_01_06_stp_probe(abi, 4, BUF, BUF + 0x1000)
                .header(|h| {
                    h.flags = 0x0010.into();
                    h.sge_count = 1;
                })
                .sge_count(1)
                .frame_u32(0x38, 0x1234_5000)
                .frame_u32(0x3C, 512)
                .build()
        }),
        // An SMP frame with no buffer at all: both entries are the caller's.
        (RuleId::SglFixedEntryUnwritten, |abi| {
            PacketBuilder::new(abi)
                .frame_header(MfiCmd::Smp, 0x0010, 0, 64)
                .frame_u32(0x20, 0x1234_5000)
                .frame_u32(0x24, 64)
                .build()
        }),
        // hdr.sge_count 2 for one buffer, a caller's entry where the second would be.
        (RuleId::SglStaleEntry, |abi| {
            samples::dcmd_read(abi, 0x0101_0000, BUF, 4096)
                .header(|h| h.sge_count = 2)
                .frame_u64(0x28 + 12, 0x1234_5000)
                .frame_u32(0x28 + 20, 4096)
                .frame_u32(0x28 + 8, 4096)
                .build()
        }),
        // Seventeen entries: Linux 6.1 refuses them, a legacy driver reads past sgl[16].
        (RuleId::IocSgeCount, |abi| {
            samples::dcmd_read(abi, 0x0101_0000, BUF, 4096)
                .sge_count(17)
                .build()
        }),
        // A command past MFI_CMD_OP_COUNT: 6.1 answers ENOTSUPP, a legacy driver sends it.
        (RuleId::FrameCmd, |abi| {
            samples::dcmd_read(abi, 0x0101_0000, BUF, 4096)
                .header(|h| h.cmd = 0x0B)
                .build()
        }),
        // 96 bytes of sense declared for a 32-byte buffer.
        (RuleId::SenseLengthMismatch, |abi| {
            samples::scsi_inquiry(abi, 3, BUF, 96, BUF + 0x1000)
                .sense_len(32)
                .header(|h| h.sense_len = 96)
                .build()
        }),
    ]
}

/// With its rule allowed, each hole is let through, and the oracle then finds the firmware
/// using an address the driver never wrote (or the driver doing what it must not). Without the
/// rule, the property above would fail.
///
/// The rules with no hole of their own: `frame.raw-physical-address` (a caller's address at
/// 0x18 is read only with `hdr.sense_len > 0`, which `sense.length-mismatch` lowers to 0
/// without a sense buffer, and a sense buffer must be at 0x18: `sense.offset-unusual`),
/// `sgl.bounds` and `sense.bounds` (behind `sgl.offset-unusual` and `sense.offset-unusual`,
/// which admit only offsets inside the frame), `sense.length` and `sge.length` (they bound the
/// driver's allocations, which the oracle does not model), `xfer.length` (a warning).
#[test]
fn each_rule_closes_a_hole_the_oracle_sees() {
    for (rule, make) in holes() {
        for abi in Abi::ALL {
            let bytes = make(abi);
            let strict = run(&Policy::default(), abi, &bytes);
            assert!(
                strict.as_ref().is_none_or(|r| r.is_ok()),
                "{rule} {abi:?}: the rules let through {strict:?}"
            );
            let allowed = Policy {
                allow: RuleSet::EMPTY.with(rule),
                ..Policy::default()
            };
            match run(&allowed, abi, &bytes) {
                Some(Err(_)) => {}
                other => panic!("{rule} allowed, {abi:?}: the oracle saw no hole: {other:?}"),
            }
        }
    }
}

/// Allowing a rule opens its hole in read-only mode too, whenever the command is one the
/// allowlist admits: the read-only rules classify commands, not where the firmware reads.
#[test]
fn an_allowed_rule_opens_its_hole_in_read_only_mode_too() {
    let mut opened = std::collections::BTreeSet::new();
    for (rule, make) in holes() {
        for abi in Abi::ALL {
            let allowed = Policy {
                readonly: true,
                allow: RuleSet::EMPTY.with(rule),
                ..Policy::default()
            };
            if let Some(Err(_)) = run(&allowed, abi, &make(abi)) {
                opened.insert(rule.name());
            }
        }
    }
    let want = [
        "frame.addressing-flags",
        "frame.dont-post-flag",
        "ioc.sge-count",
        "sense.length-mismatch",
        "sense.offset-unusual",
        "sgl.empty-entry-past-frame",
        "sgl.fixed-entry-unwritten",
        "sgl.offset-unusual",
        "sgl.stale-entry",
    ];
    assert_eq!(opened.into_iter().collect::<Vec<_>>(), want);
}

/// doc/rules.md lists the rules whose allowing opens a hole: exactly those of [`holes`].
#[test]
fn the_docs_list_the_rules_whose_allowing_opens_a_hole() {
    let doc = include_str!("../../doc/rules.md");
    let begin = "<!-- allow-holes:begin -->";
    let end = "<!-- allow-holes:end -->";
    let list = &doc[doc.find(begin).expect("the marker") + begin.len()..doc.find(end).unwrap()];
    let mut documented: Vec<&str> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|id| RuleId::from_name(id).is_some())
        .collect();
    documented.sort_unstable();
    documented.dedup();
    let mut tested: Vec<&str> = holes().iter().map(|(r, _)| r.name()).collect();
    tested.sort_unstable();
    tested.dedup();
    assert_eq!(documented, tested);
}

/// The crate's model and the oracle's tables say the same (each was written from the sources on
/// its own).
#[test]
fn the_crates_model_agrees_with_the_oracle() {
    for v in &FRAME_VIEWS {
        // The entries read whatever hdr.sge_count says.
        assert_eq!(
            firmware::entries_read(v.cmd as u8, 0),
            usize::from(v.fixed_entries),
            "{:?}",
            v.cmd
        );
        let oracle = firmware::layout(v.cmd as u8);
        match (v.sgl, v.sense_address, oracle) {
            (Layout::At(sgl), sense, Ok((o_sgl, o_sense))) => {
                assert_eq!(sgl as usize, o_sgl, "{:?}", v.cmd);
                let sense = match sense {
                    Layout::At(s) => Some(s as usize),
                    _ => None,
                };
                assert_eq!(sense, o_sense, "{:?}", v.cmd);
            }
            (Layout::None | Layout::Unpublished, _, Err(_)) => {}
            other => panic!("{:?}: {other:?}", v.cmd),
        }
    }
    let mut ours: Vec<(u32, Option<(usize, u8)>)> = HOST_ADDRESS_DCMDS
        .iter()
        .map(|d| (d.opcode, d.mbox.map(|(i, v)| (usize::from(i), v))))
        .collect();
    let mut theirs = firmware::HOST_MEMORY_DCMDS.to_vec();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
}
