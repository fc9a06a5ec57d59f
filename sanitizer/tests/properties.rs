//! Property tests, in both layouts: arbitrary bytes never panic; structured packets, built
//! around every rule's boundaries, agree with an independent model of the rule table
//! (`properties/oracle.rs`, shared with the fuzz target); a rewrite is idempotent; every packet
//! let through satisfies the invariants once rewritten; audit decides as enforce does; allowing
//! a rule only ever loosens a decision. A coverage count shows every rule fired.
//!
//! Failures are not persisted to files: a failing case prints its minimal input.

#[path = "properties/firmware.rs"]
mod firmware;
#[path = "properties/oracle.rs"]
mod oracle;

use std::cell::RefCell;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use mfiguard_sanitizer::builder::samples;
use mfiguard_sanitizer::{
    decide, decode, Abi, Action, Decision, Errno, Mode, Policy, RuleId, RuleSet,
};

use oracle::{Raw, FRAME_AT, SGL_AT};

const MIB: u64 = 1 << 20;

fn config(cases: u32) -> Config {
    Config {
        // At least `cases`; PROPTEST_CASES may ask for more.
        cases: Config::default().cases.max(cases),
        failure_persistence: None,
        ..Config::default()
    }
}

fn abi() -> impl Strategy<Value = Abi> {
    prop_oneof![Just(Abi::Lp64), Just(Abi::Ilp32)]
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
    )
        .prop_map(|(audit, readonly, bits)| Policy {
            mode: if audit { Mode::Audit } else { Mode::Enforce },
            readonly,
            allow: oracle::rule_set(bits),
        })
}

/// A packet by its fields, written with the model's offsets (host-endian packet fields,
/// little-endian frame). Its `Debug` shows the fields that matter and the non-zero frame bytes.
#[derive(Clone)]
struct Fields {
    abi: Abi,
    host_no: u16,
    sgl_off: u32,
    sge_count: u32,
    sense_off: u32,
    sense_len: u32,
    frame: [u8; 128],
    sgl: [(u64, u64); 16],
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frame: Vec<String> = (0..128)
            .filter(|i| self.frame[*i] != 0)
            .map(|i| format!("{i:#04x}:{:02x}", self.frame[i]))
            .collect();
        let lens: Vec<u64> = self.sgl.iter().map(|(_, len)| *len).collect();
        write!(
            f,
            "{:?} sgl_off {:#x} sge_count {} sense_off {:#x} sense_len {} iov_len {:?} \
             frame (non-zero bytes) [{}]",
            self.abi,
            self.sgl_off,
            self.sge_count,
            self.sense_off,
            self.sense_len,
            lens,
            frame.join(" ")
        )
    }
}

impl Fields {
    fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; oracle::packet_size(self.abi)];
        b[0..2].copy_from_slice(&self.host_no.to_ne_bytes());
        b[0x04..0x08].copy_from_slice(&self.sgl_off.to_ne_bytes());
        b[0x08..0x0C].copy_from_slice(&self.sge_count.to_ne_bytes());
        b[0x0C..0x10].copy_from_slice(&self.sense_off.to_ne_bytes());
        b[0x10..0x14].copy_from_slice(&self.sense_len.to_ne_bytes());
        b[FRAME_AT..FRAME_AT + 128].copy_from_slice(&self.frame);
        for (i, (base, len)) in self.sgl.iter().enumerate() {
            match self.abi {
                Abi::Lp64 => {
                    let at = SGL_AT + 16 * i;
                    b[at..at + 8].copy_from_slice(&base.to_ne_bytes());
                    b[at + 8..at + 16].copy_from_slice(&len.to_ne_bytes());
                }
                Abi::Ilp32 => {
                    // A 32-bit caller holds 32-bit values.
                    let at = SGL_AT + 8 * i;
                    b[at..at + 4].copy_from_slice(&(*base as u32).to_ne_bytes());
                    b[at + 4..at + 8].copy_from_slice(&(*len as u32).to_ne_bytes());
                }
            }
        }
        b
    }
}

/// The parts a packet is assembled from. A packet takes each part from a well-formed draw or a
/// wild one (near every rule's boundaries), so most packets differ from a valid one in a few
/// fields and every rule fires both alone and together with others.
#[derive(Clone, Debug)]
struct Parts {
    cmd: u8,
    sge_count: u32,
    sgl_off: u32,
    sense_off: u32,
    sense_len: u32,
    lens: [u64; 16],
    body: [u8; 128],
    flags: u16,
    /// Well-formed draws choose these from the other fields (see [`assemble`]).
    hdr_sge_count: Option<u8>,
    hdr_sense_len: Option<u8>,
    data_xferlen: Option<u32>,
    /// Well-formed draws: which reading command to put after the header.
    payload: Option<(u8, u32)>,
}

/// Sixteen values (through a `Vec`: array value trees of unions overflow a debug test's stack).
fn array16<S: Strategy<Value = u64>>(element: S) -> impl Strategy<Value = [u64; 16]> {
    vec(element, 16).prop_map(|v| v.try_into().unwrap())
}

fn bytes128() -> impl Strategy<Value = [u8; 128]> {
    vec(any::<u8>(), 128).prop_map(|v| v.try_into().unwrap())
}

/// A zero frame body with a few bytes set.
fn sparse_body(edits: usize) -> impl Strategy<Value = [u8; 128]> {
    vec((0usize..128, any::<u8>()), 0..=edits).prop_map(|edits| {
        let mut f = [0u8; 128];
        for (i, b) in edits {
            f[i] = b;
        }
        f
    })
}

const IO_AND_DCMD: [u8; 9] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0A];

/// The frames whose firmware view is published, and so may pass.
const KNOWN_LAYOUT: [u8; 7] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08];

fn expected_sgl_off(cmd: u8) -> Option<u32> {
    match cmd {
        0x01 | 0x02 | 0x05 => Some(0x28),
        0x03 | 0x04 | 0x08 => Some(0x30),
        0x07 => Some(0x20),
        _ => None,
    }
}

/// A packet a careful tool would send (apart from the flags, which tools get wrong): mostly at
/// the frame type's own SGL offset and sense slot, sometimes elsewhere inside the frame.
fn well_formed() -> BoxedStrategy<Parts> {
    (
        prop_oneof![
            6 => proptest::sample::select(&KNOWN_LAYOUT[..]),
            1 => proptest::sample::select(&IO_AND_DCMD[..]),
        ],
        prop_oneof![4 => 0u32..=3, 1 => 0u32..=16],
        (prop_oneof![6 => Just(0u8), 1 => 1u8..4], any::<u32>()),
        prop_oneof![
            6 => Just(0x18u32),
            1 => 0x18u32..=56,
            1 => Just(56)
        ],
        prop_oneof![2 => Just(0u32), 2 => 1u32..=64, 1 => 65u32..=4096],
        array16(prop_oneof![
            1 => Just(0u64),
            6 => 1u64..=65536,
            1 => Just(16 * MIB),
        ]),
        prop_oneof![Just([0u8; 128]), sparse_body(4)],
        prop_oneof![
            Just(0x0010u16),
            Just(0x0008),
            Just(0),
            Just(0x0001),
            Just(0x0036)
        ],
        (any::<bool>(), any::<bool>(), 0u8..3),
        (prop_oneof![8 => 0u8..5, 1 => 5u8..7], any::<u32>()),
    )
        .prop_map(
            |(
                cmd,
                n,
                (off_pick, off_raw),
                sense_off,
                sense_len,
                lens,
                body,
                flags,
                sel,
                payload,
            )| {
                let fit = 256 - 12 * n;
                let sgl_off = match off_pick {
                    0 => expected_sgl_off(cmd).unwrap_or(0x28).min(fit),
                    1 => 0x18,
                    2 => fit,
                    _ => 0x18 + off_raw % (fit - 0x18 + 1),
                };
                // Frames without a sense address mostly come without a sense buffer.
                let io = (0x01..=0x04).contains(&cmd);
                let sense_len = if io || off_raw % 4 == 0 { sense_len } else { 0 };
                Parts {
                    cmd,
                    sge_count: n,
                    sgl_off,
                    sense_off,
                    sense_len,
                    lens,
                    body,
                    flags,
                    hdr_sge_count: sel.0.then_some(0),
                    hdr_sense_len: sel.1.then_some(0),
                    data_xferlen: match sel.2 {
                        0 => Some(0),
                        _ => None,
                    },
                    payload: Some(payload),
                }
            },
        )
        .boxed()
}

/// What a monitoring tool puts after the header: a DCMD opcode, a CDB, an ATA FIS, mostly
/// reading ones (so that the read-only policy passes some packets), sometimes any.
fn write_payload(frame: &mut [u8; 128], (pick, raw): (u8, u32)) {
    const DCMDS: [u32; 6] = [
        0x0101_0000,
        0x0201_0000,
        0x0301_0000,
        0x0104_0100,
        0x0104_0300,
        // MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS: hands the firmware host memory.
        0x0119_0100,
    ];
    const CDBS: [&[u8]; 3] = [
        &[0x12, 0, 0, 0, 96, 0],
        &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[0x4D, 0, 0x40, 0, 0, 0, 0, 0x02, 0, 0],
    ];
    const FIS: [[u8; 4]; 3] = [
        [0x27, 0x80, 0xEC, 0],
        [0x27, 0x80, 0xB0, 0xD0],
        [0x27, 0x80, 0xE5, 0],
    ];
    let i = usize::from(pick);
    match frame[0] {
        0x05 => {
            let opcode = DCMDS.get(i).copied().unwrap_or(raw);
            frame[0x18..0x1C].copy_from_slice(&opcode.to_le_bytes());
        }
        0x03 | 0x04 => {
            let cdb: &[u8] = match CDBS.get(i) {
                Some(cdb) => cdb,
                None => &[(raw & 0xFF) as u8, 0, 0, 0, 0, 0],
            };
            frame[6] = cdb.len() as u8;
            frame[0x20..0x20 + cdb.len()].copy_from_slice(cdb);
        }
        0x08 => {
            let fis = FIS.get(i).copied().unwrap_or(raw.to_le_bytes());
            frame[0x18..0x1C].copy_from_slice(&fis);
        }
        _ => {}
    }
}

fn wild_sge_count() -> impl Strategy<Value = u32> {
    prop_oneof![
        12 => 0u32..=20,
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

/// `sgl_off` near the frame types' offsets, the header, the 256-byte end for this count, and far.
fn wild_sgl_off(count: u32) -> impl Strategy<Value = u32> {
    let fit = 256u32.saturating_sub(12 * count.min(21));
    prop_oneof![
        3 => prop_oneof![Just(0x20u32), Just(0x28), Just(0x30)],
        1 => Just(0x18u32),
        2 => 0u32..0x40,
        2 => fit.saturating_sub(2)..=fit.saturating_add(2),
        1 => 0xF0u32..0x110,
        1 => prop_oneof![Just(256u32), Just(0x4_0000), Just(u32::MAX), u32::MAX - 300..=u32::MAX],
        1 => any::<u32>(),
    ]
}

fn wild_iov_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(0u64),
        8 => 1u64..=65536,
        1 => prop_oneof![
            Just(16 * MIB),
            Just(16 * MIB + 1),
            Just(u64::from(u32::MAX)),
            Just(u64::from(u32::MAX) + 1),
            Just(u64::from(u32::MAX) + 20),
            Just(u64::MAX),
        ],
        1 => any::<u64>(),
    ]
}

/// Values near every rule's boundaries, and anything.
fn wild() -> BoxedStrategy<Parts> {
    let count_off = wild_sge_count().prop_flat_map(|n| (Just(n), wild_sgl_off(n)));
    let sense_off = prop_oneof![
        4 => 0u32..64,
        2 => Just(0x18u32),
        1 => prop_oneof![Just(56u32), Just(57), Just(0x10_0000), Just(u32::MAX)],
        1 => any::<u32>(),
    ];
    let sense_len = prop_oneof![
        4 => Just(0u32),
        2 => Just(32u32),
        2 => 1u32..=300,
        1 => prop_oneof![Just(4096u32), Just(4097), Just(u32::MAX)],
        1 => any::<u32>(),
    ];
    // Mixed, or all equal (sums cross 64 MiB without any one length crossing 16 MiB).
    let lens = prop_oneof![
        6 => array16(wild_iov_len()),
        1 => prop_oneof![Just(16 * MIB), Just(13 * MIB), Just(0u64), 1u64..4096].prop_map(|l| [l; 16]),
    ];
    let body = prop_oneof![2 => bytes128(), 1 => Just([0u8; 128]), 2 => sparse_body(6)];
    let flags = prop_oneof![
        Just(0x0020u16 | 0x0002 | 0x0010),
        Just(0x0004),
        any::<u16>()
    ];
    let header = (
        prop_oneof![10 => 0u8..12, 1 => any::<u8>()],
        prop_oneof![4 => 0u8..=20, 1 => any::<u8>()],
        prop_oneof![Just(0u8), Just(32), any::<u8>()],
        prop_oneof![0u32..=65536, any::<u32>()],
    );
    (count_off, sense_off, sense_len, lens, body, flags, header)
        .prop_map(
            |((n, sgl_off), sense_off, sense_len, lens, body, flags, (cmd, hs, hl, x))| Parts {
                cmd,
                sge_count: n,
                sgl_off,
                sense_off,
                sense_len,
                lens,
                body,
                flags,
                hdr_sge_count: Some(hs),
                hdr_sense_len: Some(hl),
                data_xferlen: Some(x),
                payload: None,
            },
        )
        .boxed()
}

/// Takes part `i` from `wild` where bit `i` of `mask` is set, else from `good`, then fills in
/// the header fields a well-formed draw derives from the others.
fn assemble(abi: Abi, good: Parts, wild: Parts, mask: u16, bases: [u64; 16]) -> Fields {
    let pick = |bit: u16| mask & (1 << bit) != 0;
    let p = Parts {
        cmd: if pick(0) { wild.cmd } else { good.cmd },
        sge_count: if pick(1) {
            wild.sge_count
        } else {
            good.sge_count
        },
        sgl_off: if pick(2) { wild.sgl_off } else { good.sgl_off },
        sense_off: if pick(3) {
            wild.sense_off
        } else {
            good.sense_off
        },
        sense_len: if pick(4) {
            wild.sense_len
        } else {
            good.sense_len
        },
        lens: if pick(5) { wild.lens } else { good.lens },
        body: if pick(6) { wild.body } else { good.body },
        flags: if pick(7) { wild.flags } else { good.flags },
        hdr_sge_count: if pick(8) {
            wild.hdr_sge_count
        } else {
            good.hdr_sge_count
        },
        hdr_sense_len: if pick(9) {
            wild.hdr_sense_len
        } else {
            good.hdr_sense_len
        },
        data_xferlen: if pick(10) {
            wild.data_xferlen
        } else {
            good.data_xferlen
        },
        payload: if pick(6) { wild.payload } else { good.payload },
    };
    let used = p.lens[..p.sge_count.min(16) as usize]
        .iter()
        .fold(0u64, |s, l| s.saturating_add(*l));
    let mut frame = p.body;
    frame[0] = p.cmd;
    if let Some(payload) = p.payload {
        write_payload(&mut frame, payload);
    }
    frame[1] = p.hdr_sense_len.unwrap_or(p.sense_len.min(255) as u8);
    frame[7] = p.hdr_sge_count.unwrap_or(p.sge_count.min(255) as u8);
    frame[0x10..0x12].copy_from_slice(&p.flags.to_le_bytes());
    let xfer = p
        .data_xferlen
        .unwrap_or(used.min(u64::from(u32::MAX)) as u32);
    frame[0x14..0x18].copy_from_slice(&xfer.to_le_bytes());
    let mut sgl = [(0, 0); 16];
    for (slot, (base, len)) in sgl.iter_mut().zip(bases.into_iter().zip(p.lens)) {
        *slot = (base, len);
    }
    Fields {
        abi,
        host_no: 0,
        sgl_off: p.sgl_off,
        sge_count: p.sge_count,
        sense_off: p.sense_off,
        sense_len: p.sense_len,
        frame,
        sgl,
    }
}

fn packet() -> BoxedStrategy<Fields> {
    let mask = prop_oneof![
        2 => Just(0u16),
        4 => (0u16..11).prop_map(|i| 1 << i),
        2 => (0u16..11, 0u16..11).prop_map(|(i, j)| (1 << i) | (1 << j)),
        2 => any::<u16>(),
        1 => Just(u16::MAX),
    ];
    (abi(), well_formed(), wild(), mask, array16(any::<u64>()))
        .prop_map(|(abi, good, wild, mask, bases)| assemble(abi, good, wild, mask, bases))
        .boxed()
}

fn ok(r: Result<impl Sized, String>) -> Result<(), TestCaseError> {
    r.map(|_| ()).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(config(4096))]

    /// Any bytes, short or long, under any policy: decode, decide and apply never panic, and
    /// whatever decodes agrees with the model.
    #[test]
    fn any_bytes_never_panic(abi in abi(), policy in policy(), bytes in vec(any::<u8>(), 0..=420)) {
        let decoded = decode(abi, &bytes);
        prop_assert_eq!(decoded.is_ok(), bytes.len() >= abi.packet_size());
        ok(oracle::check_all(&policy, abi, &bytes))?;
        ok(oracle::check_all(&Policy::default(), abi, &bytes))?;
        if let Ok(v) = decide(&policy, abi, &bytes) {
            let mut copy = bytes.clone();
            let _ = v.apply(&mut copy);
            // Apply touches the frame only.
            prop_assert_eq!(&copy[..FRAME_AT], &bytes[..FRAME_AT]);
            prop_assert_eq!(&copy[SGL_AT..], &bytes[SGL_AT..]);
        }
    }

    /// Structured packets: the verdict names exactly the rules the model says, with the action
    /// and decision the model says.
    #[test]
    fn verdicts_match_the_rule_table(p in packet(), policy in policy()) {
        let bytes = p.bytes();
        let v = decide(&policy, p.abi, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        ok(oracle::check_model(&policy, &Raw::parse(p.abi, &bytes).unwrap(), &v))?;
    }

    /// Applying a verdict's rewrites and deciding again leaves nothing to rewrite: a rewrite
    /// becomes a pass, a reject stays the same reject (and its bytes are untouched).
    #[test]
    fn apply_then_decide_is_idempotent(p in packet(), policy in policy()) {
        let bytes = p.bytes();
        let v = decide(&policy, p.abi, &bytes).unwrap();
        let mut after = bytes.clone();
        v.apply(&mut after).unwrap();
        let again = decide(&policy, p.abi, &after).unwrap();
        prop_assert!(
            again.findings().all(|f| f.action != Action::Rewrite) || matches!(v.decision(), Decision::Reject(_)),
            "rewrite left after apply: {:?}", again
        );
        match v.decision() {
            Decision::Reject(errno) => {
                prop_assert_eq!(again.decision(), Decision::Reject(errno));
                prop_assert_eq!(&after, &bytes);
            }
            Decision::Pass => {
                prop_assert_eq!(again.decision(), Decision::Pass);
                prop_assert_eq!(&after, &bytes);
            }
            Decision::Rewrite => {
                prop_assert_eq!(again.decision(), Decision::Pass);
            }
        }
        // And a second apply changes nothing.
        let mut twice = after.clone();
        again.apply(&mut twice).unwrap();
        prop_assert_eq!(twice, after);
    }

    /// Every packet the default policy does not reject satisfies the invariants once rewritten,
    /// and the rewrite is exactly the one the model describes.
    #[test]
    fn passed_packets_satisfy_the_invariants(p in packet()) {
        let policy = Policy::default();
        let bytes = p.bytes();
        let v = decide(&policy, p.abi, &bytes).unwrap();
        let mut after = bytes.clone();
        v.apply(&mut after).unwrap();
        let raw = Raw::parse(p.abi, &bytes).unwrap();
        ok(oracle::check_applied(&policy, &raw, &v, &bytes, &after))?;
        if !matches!(v.decision(), Decision::Reject(_)) {
            ok(oracle::check_invariants(&Raw::parse(p.abi, &after).unwrap()))?;
        }
    }

    /// Audit decides as enforce does (decision, findings, rewrites) but does not enforce.
    #[test]
    fn audit_decides_as_enforce(p in packet(), bits in any::<u32>()) {
        let bytes = p.bytes();
        let enforce = Policy { mode: Mode::Enforce, allow: oracle::rule_set(bits), ..Policy::default() };
        let audit = Policy { mode: Mode::Audit, ..enforce };
        let e = decide(&enforce, p.abi, &bytes).unwrap();
        let a = decide(&audit, p.abi, &bytes).unwrap();
        prop_assert!(e.enforced());
        prop_assert!(!a.enforced());
        prop_assert_eq!(a.decision(), e.decision());
        prop_assert!(a.findings().eq(e.findings()));
        prop_assert_eq!(a.rewrites(), e.rewrites());
    }

    /// Allowing rules turns their findings into warnings, leaves the others alone and never
    /// makes a decision stricter; allowing every rule lets everything pass untouched.
    #[test]
    fn allowing_only_loosens(p in packet(), bits in any::<u32>(), audit in any::<bool>()) {
        let bytes = p.bytes();
        let mode = if audit { Mode::Audit } else { Mode::Enforce };
        ok(oracle::check_allow_monotone(&Policy { mode, allow: oracle::rule_set(bits), ..Policy::default() }, p.abi, &bytes))?;
        let all = Policy { mode, allow: oracle::rule_set(u32::MAX), ..Policy::default() };
        let v = decide(&all, p.abi, &bytes).unwrap();
        prop_assert_eq!(v.decision(), Decision::Pass);
        prop_assert!(v.rewrites().is_empty());
        prop_assert!(v.findings().all(|f| f.action == Action::Warn));
        // One rule at a time: its finding (if any) is a downgraded warning.
        for rule in RuleId::ALL {
            let one = Policy { mode, allow: RuleSet::EMPTY.with(rule), ..Policy::default() };
            let v = decide(&one, p.abi, &bytes).unwrap();
            if let Some(f) = v.finding(rule) {
                prop_assert_eq!(f.action, Action::Warn);
                prop_assert_eq!(f.downgraded, oracle::spec_action(rule) != Action::Warn);
            }
        }
    }
}

/// Rules that always fire with another (in rule order): an SGL or sense offset outside the frame
/// is never the frame type's own.
const COMPANIONS: [(RuleId, RuleId); 2] = [
    (RuleId::SglBounds, RuleId::SglOffsetUnusual),
    (RuleId::SenseBounds, RuleId::SenseOffsetUnusual),
];

/// A rule every packet of which a structural rule refuses first: `readonly.cmd` (INIT, LD
/// read/write and ABORT are `frame.cmd-forbidden`'s, NVMe and toolbox `frame.layout-unknown`'s,
/// unknown codes `frame.cmd`'s). It decides alone only with those allowed.
const SECOND_LINE: (RuleId, [RuleId; 3]) = (
    RuleId::ReadonlyCmd,
    [
        RuleId::FrameCmdForbidden,
        RuleId::FrameLayoutUnknown,
        RuleId::FrameCmd,
    ],
);

/// Every check, on structured packets from a fixed seed, under the default and the read-only
/// policy (and the read-only policy with the first line of `SECOND_LINE` allowed), with a count
/// of how often each rule fired (alone, for rejecting rules) and each decision came out: every
/// rule fires, and every decision is common enough that the invariants are checked on many
/// packets let through.
#[test]
fn structured_packets_fire_every_rule() {
    #[derive(Default)]
    struct Count {
        rules: [usize; oracle::N],
        sole_reject: [usize; oracle::N],
        pass: usize,
        rewrite: usize,
        reject: usize,
    }
    let (second, first_line) = SECOND_LINE;
    let policies = [
        Policy::default(),
        Policy {
            readonly: true,
            ..Policy::default()
        },
        Policy {
            readonly: true,
            allow: first_line.iter().fold(RuleSet::EMPTY, |s, r| s.with(*r)),
            ..Policy::default()
        },
    ];
    let counts = RefCell::new([Count::default(), Count::default(), Count::default()]);
    let cases = 10_000;
    let mut runner = TestRunner::new_with_rng(
        config(cases),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let result = runner.run(&packet(), |p| {
        let bytes = p.bytes();
        for (policy, c) in policies.iter().zip(counts.borrow_mut().iter_mut()) {
            let v = oracle::check_all(policy, p.abi, &bytes)
                .map_err(TestCaseError::fail)?
                .expect("a whole packet decodes");
            for f in v.findings() {
                c.rules[oracle::index(f.rule)] += 1;
            }
            let rejecting: Vec<_> = v
                .findings()
                .filter(|f| f.action == Action::Reject)
                .collect();
            match rejecting.as_slice() {
                [only] => c.sole_reject[oracle::index(only.rule)] += 1,
                // A bounds rule never fires alone: an offset outside the frame is never the
                // frame type's own. With its companion only, it decides as good as alone.
                [a, b] if COMPANIONS.contains(&(a.rule, b.rule)) => {
                    c.sole_reject[oracle::index(a.rule)] += 1
                }
                _ => {}
            }
            match v.decision() {
                Decision::Pass => c.pass += 1,
                Decision::Rewrite => c.rewrite += 1,
                Decision::Reject(_) => c.reject += 1,
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let counts = counts.into_inner();
    for (policy, c) in policies.iter().zip(&counts).take(2) {
        println!(
            "readonly={}: pass {} rewrite {} reject {}",
            policy.readonly, c.pass, c.rewrite, c.reject
        );
        for r in RuleId::ALL {
            let i = oracle::index(r);
            println!("  {r}: {} (sole reject {})", c.rules[i], c.sole_reject[i]);
        }
        for (name, n) in [
            ("pass", c.pass),
            ("rewrite", c.rewrite),
            ("reject", c.reject),
        ] {
            assert!(
                n >= cases as usize / 50,
                "readonly={}: {name} {n} of {cases}",
                policy.readonly
            );
        }
    }
    for rule in RuleId::ALL {
        let c = &counts[usize::from(oracle::is_readonly(rule))];
        let i = oracle::index(rule);
        assert!(c.rules[i] >= 20, "{rule} fired {} times", c.rules[i]);
        if rule == second {
            // Never alone behind its first line; alone once that is allowed.
            assert_eq!(c.sole_reject[i], 0, "{rule} decided alone");
            let n = counts[2].sole_reject[i];
            assert!(
                n >= 5,
                "{rule} was the sole reject {n} times, first line allowed"
            );
        } else if oracle::spec_action(rule) == Action::Reject {
            // Each rejecting rule also decides on its own, not only behind another.
            assert!(
                c.sole_reject[i] >= 5,
                "{rule} was the sole reject {} times",
                c.sole_reject[i]
            );
        }
        if oracle::is_readonly(rule) {
            assert_eq!(
                counts[0].rules[i], 0,
                "{rule} fired without the read-only policy"
            );
        }
    }
}

/// The read-only policy classifies the command that is sent. The minimal inputs proptest found
/// (an empty first entry whose slot at 0x18 covers the DCMD opcode or the ATA FIS) were once
/// rewritten (the stale slot zeroed, the opcode with it) and then refused when decided again;
/// a command whose bytes the driver or a rewrite changes is now refused at once (by
/// `sgl.offset-unusual` first, EINVAL, and by the read-only rule too), and whatever is not
/// refused passes unchanged when decided again.
#[test]
fn readonly_classifies_what_is_sent() {
    let policy = Policy {
        readonly: true,
        ..Policy::default()
    };
    for abi in Abi::ALL {
        let dcmd = || samples::dcmd_read(abi, 0x0101_0000, 0x7f00_0000_1000, 0);
        let stp = || samples::megacli_8_01_06_stp_probe(abi, 4, 0, 0).sge_count(1);
        let pairs = [
            (dcmd().sgl_off(0x18).build(), dcmd().build()),
            (stp().sgl_off(0x18).build(), stp().build()),
        ];
        for (overlapping, usual) in pairs {
            let v = decide(&policy, abi, &overlapping).unwrap();
            assert_eq!(
                v.decision(),
                Decision::Reject(Errno::EINVAL),
                "{abi:?}: {v:?}"
            );
            assert!(
                v.findings()
                    .any(|f| f.rule.is_readonly() && f.action == Action::Reject),
                "{abi:?}: {v:?}"
            );
            // At its usual offset the same command is let through, and what is sent passes
            // unchanged when decided again.
            let v = decide(&policy, abi, &usual).unwrap();
            assert!(
                !matches!(v.decision(), Decision::Reject(_)),
                "{abi:?}: {v:?}"
            );
            let mut sent = usual.clone();
            v.apply(&mut sent).unwrap();
            let again = decide(&policy, abi, &sent).unwrap();
            assert_eq!(again.decision(), Decision::Pass, "{abi:?}: {again:?}");
        }
    }
}

/// On a driver that writes 8-byte `sge32` entries (the legacy driver always does; 6.1 does
/// without 64-bit DMA), an empty entry's slot is `sgl_off + 8 * i`, which the 12-byte slots of
/// `sgl.stale-entry` (as the spec words it) do not always cover: here entry 2's `sge32` slot,
/// [0x38, 0x40), lies in entry 1's 12-byte slot, so the caller's address and length there
/// reached the firmware (`hdr.sge_count` 3) until `sgl.stale-entry` zeroed both strides.
#[test]
fn stale_entries_are_cleared_for_sge32_drivers_too() {
    for abi in Abi::ALL {
        let bytes = samples::dcmd_read(abi, 0x0101_0000, 0x7f00_0000_1000, 512)
            .sge_count(3)
            .iovec(1, 0x7f00_0000_2000, 512)
            .iovec(2, 0x7f00_0000_3000, 0)
            .header(|h| h.sge_count = 3)
            // The caller's "sge32" entry 2: address 0x91dfc000, length 4096.
            .frame_u32(0x28 + 16, 0x91df_c000)
            .frame_u32(0x28 + 20, 4096)
            .build();
        let v = decide(&Policy::default(), abi, &bytes).unwrap();
        let mut sent = bytes.clone();
        v.apply(&mut sent).unwrap();
        let raw = Raw::parse(abi, &sent).unwrap();
        // sge32 slot of the empty entry 2.
        let slot = 0x28 + 8 * 2..0x28 + 8 * 3;
        assert!(
            raw.frame[slot.clone()].iter().all(|b| *b == 0),
            "{abi:?}: {:?} sends {:02x?} in sge32 slot 2",
            v.decision(),
            &raw.frame[slot]
        );
    }
}

/// The read-only policy classifies bytes the driver itself overwrites: with `sgl_off` 0x18 the
/// driver writes the first SGL entry's DMA address over a DCMD's opcode (and a sense pointer at
/// `sense_off` 0x1A over an STP FIS command byte), so the firmware runs a command nobody classified. Such a
/// packet is refused under the read-only policy.
#[test]
fn readonly_refuses_commands_the_driver_overwrites() {
    let policy = Policy {
        readonly: true,
        ..Policy::default()
    };
    for abi in Abi::ALL {
        let dcmd = samples::dcmd_read(abi, 0x0101_0000, 0x7f00_0000_1000, 512)
            .sgl_off(0x18)
            .build();
        let stp = samples::megacli_8_01_06_stp_probe(abi, 4, 0x7f00_0000_1000, 0x7f00_0000_2000)
            .sense_off(0x1A)
            .sense_len(32)
            .build();
        for bytes in [dcmd, stp] {
            let v = decide(&policy, abi, &bytes).unwrap();
            assert!(
                matches!(v.decision(), Decision::Reject(_)),
                "{abi:?}: {v:?}"
            );
        }
    }
}

/// The builder's sample packets (the seeds of the fuzz corpus) go through every check, and a
/// clean one passes while the seed's STP probe is rewritten.
#[test]
fn builder_samples_pass_every_check() {
    for abi in Abi::ALL {
        let clean = samples::dcmd_read(abi, 0x0101_0000, 0x7f00_0000_1000, 2048).build();
        let inquiry = samples::scsi_inquiry(abi, 3, 0x7f00_0000_1000, 96, 0x7f00_0000_9000).build();
        let stp =
            samples::megacli_8_01_06_stp_probe(abi, 4, 0x7f00_0000_1000, 0x7f00_0000_2000).build();
        for (bytes, want) in [
            (&clean, Decision::Pass),
            (&inquiry, Decision::Pass),
            (&stp, Decision::Rewrite),
        ] {
            let v = oracle::check_all(&Policy::default(), abi, bytes)
                .unwrap()
                .unwrap();
            assert_eq!(v.decision(), want, "{abi:?}: {v:?}");
            // Monitoring traffic also passes the read-only policy, unchanged.
            let ro = Policy {
                readonly: true,
                ..Policy::default()
            };
            let v = oracle::check_all(&ro, abi, bytes).unwrap().unwrap();
            assert_eq!(v.decision(), want, "read-only, {abi:?}: {v:?}");
            for (bits, readonly) in [
                (0u32, false),
                (1, true),
                (u32::MAX, false),
                (u32::MAX, true),
            ] {
                let policy = Policy {
                    mode: Mode::Audit,
                    readonly,
                    allow: oracle::rule_set(bits),
                };
                oracle::check_all(&policy, abi, bytes).unwrap();
                oracle::check_allow_monotone(&policy, abi, bytes).unwrap();
            }
        }
    }
}
