//! Every rule with a packet that triggers it and a near twin that does not, in both layouts;
//! the seed's STP probe; and the monitoring traffic that must pass untouched.

use mfiguard_sanitizer::abi::mfi::{
    MfiCmd, MR_DCMD_CTRL_GET_INFO, MR_DCMD_LD_GET_LIST, MR_DCMD_PD_GET_LIST,
};
use mfiguard_sanitizer::abi::mfi::{
    MR_DCMD_CTRL_EVENT_GET, MR_DCMD_CTRL_EVENT_GET_INFO, MR_DCMD_CTRL_EVENT_WAIT,
    MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS, MR_DCMD_LD_GET_PROPERTIES, MR_DCMD_LD_MAP_GET_INFO,
    MR_DCMD_SYSTEM_PD_MAP_GET_INFO,
};
use mfiguard_sanitizer::builder::{samples, PacketBuilder};
use mfiguard_sanitizer::{
    decide, decode, Abi, Action, Decision, Errno, Mode, Policy, RuleId, RuleSet,
};

const BUF: u64 = 0x7f00_1234_5000;
const SENSE: u64 = 0x7f00_1234_9000;

fn verdict(abi: Abi, bytes: &[u8]) -> mfiguard_sanitizer::Verdict {
    decide(&Policy::default(), abi, bytes).expect("a whole packet decodes")
}

fn rules_hit(abi: Abi, bytes: &[u8]) -> Vec<RuleId> {
    verdict(abi, bytes).findings().map(|f| f.rule).collect()
}

/// A clean DCMD read: the base of most twins.
fn clean_dcmd(abi: Abi) -> PacketBuilder {
    samples::dcmd_read(abi, MR_DCMD_CTRL_GET_INFO, BUF, 2048)
}

/// A clean SCSI pass-through with sense at 0x18.
fn clean_pthru(abi: Abi) -> PacketBuilder {
    samples::scsi_inquiry(abi, 3, BUF, 96, SENSE)
}

/// Asserts `bad` triggers `rule` with `action` (and the verdict follows), and `good` does not
/// trigger it at all.
fn pair(rule: RuleId, action: Action, bad: impl Fn(Abi) -> Vec<u8>, good: impl Fn(Abi) -> Vec<u8>) {
    for abi in Abi::ALL {
        let v = verdict(abi, &bad(abi));
        let f = v.finding(rule).unwrap_or_else(|| {
            panic!(
                "{rule} should fire on {abi:?}: {:?}",
                rules_hit(abi, &bad(abi))
            )
        });
        assert_eq!(f.action, action, "{rule} on {abi:?}");
        assert!(!f.downgraded);
        assert!(!f.detail.to_string().is_empty());
        match action {
            Action::Reject => assert_eq!(v.decision(), Decision::Reject(Errno::EINVAL), "{rule}"),
            Action::Rewrite => assert!(matches!(
                v.decision(),
                Decision::Rewrite | Decision::Reject(_)
            )),
            Action::Warn => {}
        }
        let twin = rules_hit(abi, &good(abi));
        assert!(
            !twin.contains(&rule),
            "{rule} fired on the twin on {abi:?}: {twin:?}"
        );
    }
}

#[test]
fn frame_addressing_flags() {
    for flag in [0x0002u16, 0x0004, 0x0020] {
        pair(
            RuleId::FrameAddressingFlags,
            Action::Rewrite,
            |abi| {
                clean_dcmd(abi)
                    .header(|h| h.flags = (0x0010 | flag).into())
                    .build()
            },
            |abi| clean_dcmd(abi).header(|h| h.flags = 0x0011.into()).build(),
        );
    }
}

#[test]
fn frame_dont_post_flag() {
    pair(
        RuleId::FrameDontPostFlag,
        Action::Rewrite,
        |abi| clean_dcmd(abi).header(|h| h.flags = 0x0011.into()).build(),
        |abi| clean_dcmd(abi).header(|h| h.flags = 0x0010.into()).build(),
    );
    // With the addressing flags too, and under the read-only policy (a reading DCMD): both
    // rules clear their bits, and only those; DIR_READ stays.
    let readonly = Policy {
        readonly: true,
        ..Policy::default()
    };
    for abi in Abi::ALL {
        for policy in [Policy::default(), readonly] {
            let bytes = clean_dcmd(abi).header(|h| h.flags = 0x0037.into()).build();
            let v = decide(&policy, abi, &bytes).unwrap();
            assert_eq!(v.decision(), Decision::Rewrite, "{policy:?}");
            assert!(v.finding(RuleId::FrameDontPostFlag).is_some());
            assert!(v.finding(RuleId::FrameAddressingFlags).is_some());
            assert_eq!(v.flags_sent(0x0037), 0x0010);
            let mut sent = bytes.clone();
            v.apply(&mut sent).unwrap();
            assert_eq!(decode(abi, &sent).unwrap().header().flags.get(), 0x0010);
            assert_eq!(
                decide(&policy, abi, &sent).unwrap().decision(),
                Decision::Pass
            );
        }
    }
}

#[test]
fn sgl_fixed_entry_unwritten() {
    // An STP IDENTIFY with its response buffer only (sge_count 1): the caller's entry in the
    // data slot, which the driver leaves alone and a firmware may fill by its role.
    let stp = |abi, data: (u32, u32)| {
        samples::megacli_8_01_06_stp_probe(abi, 4, BUF, BUF + 0x1000)
            .header(|h| {
                h.flags = 0x0010.into();
                h.sge_count = 1;
                h.data_xferlen = 20.into();
            })
            .sge_count(1)
            .frame_u32(0x38, data.0)
            .frame_u32(0x3C, data.1)
            .build()
    };
    pair(
        RuleId::SglFixedEntryUnwritten,
        Action::Rewrite,
        |abi| stp(abi, (0x1234_5000, 512)),
        |abi| stp(abi, (0, 0)),
    );
    // An SMP frame without buffers: both of its entries are the caller's. With both buffers
    // (the twin) the driver writes both.
    let smp = |abi, n: u32| {
        PacketBuilder::new(abi)
            .frame_header(MfiCmd::Smp, 0x0010, n as u8, 64)
            .sgl_off(0x20)
            .sge_count(n)
            .iovec(0, BUF, 64)
            .iovec(1, BUF + 0x1000, 40)
            .frame_u32(0x20, 0x1234_5000)
            .frame_u32(0x24, 64)
            .frame_u32(0x28, 0x1234_6000)
            .frame_u32(0x2C, 40)
            .build()
    };
    pair(
        RuleId::SglFixedEntryUnwritten,
        Action::Rewrite,
        |abi| smp(abi, 0),
        |abi| smp(abi, 2),
    );
    for abi in Abi::ALL {
        // Exactly the unwritten slot's bytes are zeroed, at both strides (sge32 [1] at
        // 0x38..0x40, sge64 [1] at 0x3C..0x48), and nothing else changes.
        let bytes = stp(abi, (0x1234_5000, 512));
        let v = verdict(abi, &bytes);
        assert_eq!(rules_hit(abi, &bytes), [RuleId::SglFixedEntryUnwritten]);
        let mut sent = bytes.clone();
        v.apply(&mut sent).unwrap();
        let changed: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != sent[i]).collect();
        let want: Vec<usize> = (0x38..0x48)
            .map(|at| 0x14 + at)
            .filter(|&i| bytes[i] != 0)
            .collect();
        assert_eq!(changed, want);
        assert_eq!(verdict(abi, &sent).decision(), Decision::Pass);
        // The read-only policy lets the IDENTIFY through, rewritten the same way.
        let readonly = Policy {
            readonly: true,
            ..Policy::default()
        };
        let v = decide(&readonly, abi, &bytes).unwrap();
        assert_eq!(
            v.decision(),
            Decision::Rewrite,
            "{:?}",
            v.findings().collect::<Vec<_>>()
        );
        assert!(v.finding(RuleId::SglFixedEntryUnwritten).is_some());
    }
}

#[test]
fn ioc_sge_count() {
    pair(
        RuleId::IocSgeCount,
        Action::Reject,
        |abi| clean_dcmd(abi).sge_count(17).build(),
        |abi| clean_dcmd(abi).sge_count(16).sgl_off(0x18).build(),
    );
}

#[test]
fn frame_cmd() {
    pair(
        RuleId::FrameCmd,
        Action::Reject,
        |abi| clean_dcmd(abi).header(|h| h.cmd = 0x0B).build(),
        |abi| clean_dcmd(abi).header(|h| h.cmd = 0x0A).build(),
    );
}

#[test]
fn frame_cmd_forbidden() {
    for cmd in [MfiCmd::Init, MfiCmd::Abort, MfiCmd::LdRead, MfiCmd::LdWrite] {
        pair(
            RuleId::FrameCmdForbidden,
            Action::Reject,
            |abi| PacketBuilder::new(abi).frame_header(cmd, 0, 0, 0).build(),
            |abi| {
                PacketBuilder::new(abi)
                    .frame_header(MfiCmd::Dcmd, 0, 0, 0)
                    .build()
            },
        );
    }
    // LD read/write, however well formed: the driver completes them through the block layer's
    // SCSI command, which a frame from the ioctl has not. Nothing else is wrong with these
    // packets, and the same buffer in a pass-through frame passes.
    for cmd in [MfiCmd::LdRead, MfiCmd::LdWrite] {
        pair(
            RuleId::FrameCmdForbidden,
            Action::Reject,
            |abi| samples::ld_io(abi, cmd, 0, BUF).build(),
            |abi| {
                samples::ld_io(abi, cmd, 0, BUF)
                    .header(|h| h.cmd = MfiCmd::LdScsiIo as u8)
                    .sgl_off(0x30)
                    .build()
            },
        );
        for abi in Abi::ALL {
            let bytes = samples::ld_io(abi, cmd, 0, BUF).build();
            assert_eq!(rules_hit(abi, &bytes), [RuleId::FrameCmdForbidden]);
            let detail = verdict(abi, &bytes)
                .findings()
                .next()
                .unwrap()
                .detail
                .to_string();
            assert!(detail.contains("crashes the kernel"), "{detail}");
        }
    }
}

#[test]
fn sgl_bounds() {
    // The hole every kernel has: the driver writes the SGL at sgl_off unchecked.
    pair(
        RuleId::SglBounds,
        Action::Reject,
        |abi| clean_dcmd(abi).sgl_off(0x40000).build(),
        |abi| clean_dcmd(abi).build(),
    );
    // The last byte of the region at 256 is allowed; one more is not.
    pair(
        RuleId::SglBounds,
        Action::Reject,
        |abi| clean_dcmd(abi).sgl_off(256 - 12 + 1).build(),
        |abi| clean_dcmd(abi).sgl_off(256 - 12).build(),
    );
    // Inside the header.
    pair(
        RuleId::SglBounds,
        Action::Reject,
        |abi| clean_dcmd(abi).sgl_off(0x17).build(),
        |abi| clean_dcmd(abi).sgl_off(0x18).build(),
    );
    // sixteen entries from 0x28 end at 0xe8; from 0x100 - 12*16 + 1 they would not fit.
    pair(
        RuleId::SglBounds,
        Action::Reject,
        |abi| clean_dcmd(abi).sge_count(16).sgl_off(0x41).build(),
        |abi| clean_dcmd(abi).sge_count(16).sgl_off(0x40).build(),
    );
}

#[test]
fn sgl_bounds_ignores_offset_without_entries() {
    for abi in Abi::ALL {
        let bytes = PacketBuilder::new(abi)
            .sgl_off(0xdead_beef)
            .frame_header(MfiCmd::Dcmd, 0, 0, 0)
            .frame_u32(0x18, MR_DCMD_CTRL_GET_INFO)
            .build();
        assert_eq!(verdict(abi, &bytes).decision(), Decision::Pass);
    }
}

#[test]
fn sense_bounds() {
    pair(
        RuleId::SenseBounds,
        Action::Reject,
        |abi| clean_pthru(abi).sense_off(0x100000).build(),
        |abi| clean_pthru(abi).build(),
    );
    // 56 is the last offset whose 8-byte address ends in the first frame.
    pair(
        RuleId::SenseBounds,
        Action::Reject,
        |abi| clean_pthru(abi).sense_off(57).build(),
        |abi| clean_pthru(abi).sense_off(56).frame_u64(0x18, 0).build(),
    );
    // Inside the header: it could rewrite the flags after they were fixed.
    pair(
        RuleId::SenseBounds,
        Action::Reject,
        |abi| clean_pthru(abi).sense_off(0x10).build(),
        |abi| {
            clean_pthru(abi)
                .sense_off(0x10)
                .sense_len(0)
                .header(|h| h.sense_len = 0)
                .frame_u64(0x18, 0)
                .build()
        },
    );
}

#[test]
fn sense_length() {
    pair(
        RuleId::SenseLength,
        Action::Reject,
        |abi| clean_pthru(abi).sense_len(4097).build(),
        |abi| clean_pthru(abi).sense_len(4096).build(),
    );
}

#[test]
fn sge_length() {
    pair(
        RuleId::SgeLength,
        Action::Reject,
        |abi| clean_dcmd(abi).iovec(0, BUF, (16 << 20) + 1).build(),
        |abi| {
            clean_dcmd(abi)
                .iovec(0, BUF, 16 << 20)
                .header(|h| h.data_xferlen = 0.into())
                .build()
        },
    );
    // The sum: five 16 MiB entries exceed 64 MiB, four do not.
    let entries = |abi: Abi, n: usize| {
        let mut b = clean_dcmd(abi).sge_count(n as u32);
        for i in 0..n {
            b = b.iovec(i, BUF + (i as u64) * (16 << 20), 16 << 20);
        }
        b.build()
    };
    pair(
        RuleId::SgeLength,
        Action::Reject,
        |abi| entries(abi, 5),
        |abi| entries(abi, 4),
    );
}

#[test]
fn sge_length_rejects_64_bit_lengths_truncated_to_32() {
    // Only a 64-bit caller can say it; the low 32 bits (0x100) look harmless.
    let bytes = clean_dcmd(Abi::Lp64)
        .iovec(0, BUF, (1 << 32) | 0x100)
        .build();
    let v = verdict(Abi::Lp64, &bytes);
    assert_eq!(v.decision(), Decision::Reject(Errno::EINVAL));
    assert!(v.finding(RuleId::SgeLength).is_some());
}

#[test]
fn sgl_stale_entry() {
    // An empty entry whose slot holds caller bytes: the firmware would read them as an address.
    pair(
        RuleId::SglStaleEntry,
        Action::Rewrite,
        |abi| {
            clean_dcmd(abi)
                .sge_count(2)
                .iovec(1, 0, 0)
                .frame_u64(0x28 + 12, 0x1234_5678_9abc)
                .build()
        },
        |abi| clean_dcmd(abi).sge_count(2).iovec(1, 0, 0).build(),
    );
    // The header claims more entries than the packet gives.
    pair(
        RuleId::SglStaleEntry,
        Action::Rewrite,
        |abi| clean_dcmd(abi).header(|h| h.sge_count = 3).build(),
        |abi| clean_dcmd(abi).header(|h| h.sge_count = 1).build(),
    );
}

#[test]
fn sgl_stale_entry_rewrite_spares_the_sense_pointer() {
    // Only with `sgl.offset-unusual` allowed can the SGL the driver writes meet the sense slot.
    let allow = Policy {
        allow: RuleSet::EMPTY.with(RuleId::SglOffsetUnusual),
        ..Policy::default()
    };
    for abi in Abi::ALL {
        // sgl_off = sense_off = 0x18: slot 0 overlaps the caller's sense pointer.
        let bytes = clean_pthru(abi)
            .sgl_off(0x18)
            .iovec(0, 0, 0)
            .frame_u32(0x20, 0xffff_ffff)
            .build();
        let v = decide(&allow, abi, &bytes).unwrap();
        assert_eq!(v.decision(), Decision::Rewrite, "{v:?}");
        assert!(v.finding(RuleId::SglStaleEntry).is_some());
        let mut sent = bytes.clone();
        v.apply(&mut sent).unwrap();
        let p = decode(abi, &sent).unwrap();
        assert_eq!(
            p.frame_u64(0x18),
            decode(abi, &bytes).unwrap().frame_u64(0x18),
            "sense pointer kept"
        );
        assert_eq!(&p.frame[0x20..0x24], &[0; 4], "the rest of the slot zeroed");
    }
}

#[test]
fn frame_raw_physical_address() {
    // A pass-through with no sense buffer but a physical address at 0x18.
    pair(
        RuleId::FrameRawPhysicalAddress,
        Action::Reject,
        |abi| {
            clean_pthru(abi)
                .sense_len(0)
                .header(|h| h.sense_len = 0)
                .build()
        },
        |abi| clean_pthru(abi).build(),
    );
    // Sense slot elsewhere: the bytes at 0x18 are then the caller's.
    pair(
        RuleId::FrameRawPhysicalAddress,
        Action::Reject,
        |abi| clean_pthru(abi).sense_off(0x20).build(),
        |abi| clean_pthru(abi).sense_off(0x20).frame_u64(0x18, 0).build(),
    );
    // LD read frames carry the same field.
    pair(
        RuleId::FrameRawPhysicalAddress,
        Action::Reject,
        |abi| {
            PacketBuilder::new(abi)
                .frame_header(MfiCmd::LdRead, 0x10, 0, 0)
                .frame_u64(0x18, 0x1000)
                .build()
        },
        |abi| {
            PacketBuilder::new(abi)
                .frame_header(MfiCmd::Dcmd, 0x10, 0, 0)
                .frame_u64(0x18, 0x1000)
                .build()
        },
    );
}

#[test]
fn sense_length_mismatch() {
    pair(
        RuleId::SenseLengthMismatch,
        Action::Rewrite,
        |abi| clean_pthru(abi).header(|h| h.sense_len = 96).build(),
        |abi| clean_pthru(abi).header(|h| h.sense_len = 32).build(),
    );
}

#[test]
fn xfer_length() {
    pair(
        RuleId::XferLength,
        Action::Warn,
        |abi| {
            clean_dcmd(abi)
                .header(|h| h.data_xferlen = 2049.into())
                .build()
        },
        |abi| {
            clean_dcmd(abi)
                .header(|h| h.data_xferlen = 2048.into())
                .build()
        },
    );
}

#[test]
fn sgl_offset_unusual() {
    // The hole found on Linux 6.1: the driver writes its entry at 0x30, the firmware reads the
    // DCMD's SGL at 0x28, where the caller put a physical address and a length of its choosing.
    pair(
        RuleId::SglOffsetUnusual,
        Action::Reject,
        |abi| {
            clean_dcmd(abi)
                .sgl_off(0x30)
                .frame_u32(0x28, 0x1234_5000)
                .frame_u32(0x2C, 4096)
                .build()
        },
        |abi| clean_dcmd(abi).build(),
    );
    // Every frame type with a published SGL offset, one slot later.
    for (cmd, at) in [
        (MfiCmd::LdRead, 0x28),
        (MfiCmd::PdScsiIo, 0x30),
        (MfiCmd::Smp, 0x20),
        (MfiCmd::Stp, 0x30),
    ] {
        let with = |abi, off| {
            PacketBuilder::new(abi)
                .sgl_off(off)
                .sge_count(1)
                .iovec(0, BUF, 512)
                .frame_header(cmd, 0x10, 1, 512)
                .build()
        };
        pair(
            RuleId::SglOffsetUnusual,
            Action::Reject,
            |abi| with(abi, at + 8),
            |abi| with(abi, at),
        );
    }
    // No buffer: the driver writes nothing, wherever sgl_off points.
    pair(
        RuleId::SglOffsetUnusual,
        Action::Reject,
        |abi| clean_dcmd(abi).sgl_off(0x40).build(),
        |abi| {
            clean_dcmd(abi)
                .sgl_off(0x40)
                .sge_count(0)
                .header(|h| h.sge_count = 0)
                .build()
        },
    );
}

#[test]
fn frame_layout_unknown() {
    for cmd in [MfiCmd::Nvme, MfiCmd::Toolbox] {
        pair(
            RuleId::FrameLayoutUnknown,
            Action::Reject,
            |abi| PacketBuilder::new(abi).frame_header(cmd, 0, 0, 0).build(),
            |abi| {
                PacketBuilder::new(abi)
                    .frame_header(MfiCmd::Dcmd, 0, 0, 0)
                    .build()
            },
        );
    }
}

#[test]
fn sense_offset_unusual() {
    // The pass-through's sense address moved into the CDB: the firmware would write sense to the
    // zero address it finds at 0x18.
    pair(
        RuleId::SenseOffsetUnusual,
        Action::Reject,
        |abi| clean_pthru(abi).sense_off(0x28).frame_u64(0x18, 0).build(),
        |abi| clean_pthru(abi).build(),
    );
    // A DCMD has no sense address: the driver's would land in its mailbox or its SGL.
    pair(
        RuleId::SenseOffsetUnusual,
        Action::Reject,
        |abi| clean_dcmd(abi).sense_off(0x28).sense_len(32).build(),
        |abi| clean_dcmd(abi).sense_off(0x28).sense_len(0).build(),
    );
    // Nor do SMP and STP frames, even at 0x18 (their SAS address, their FIS).
    for cmd in [MfiCmd::Smp, MfiCmd::Stp] {
        let with = |abi, sense_len| {
            PacketBuilder::new(abi)
                .sense_off(0x18)
                .sense_len(sense_len)
                .frame_header(cmd, 0x10, 0, 0)
                .build()
        };
        pair(
            RuleId::SenseOffsetUnusual,
            Action::Reject,
            |abi| with(abi, 32),
            |abi| with(abi, 0),
        );
    }
}

#[test]
fn sgl_empty_entry_past_frame() {
    // Eight entries at 0x28: the eighth empty one's slot is [0x7c, 0x88), past the 128 bytes the
    // packet carries, where the driver's frame keeps its last command's bytes.
    let eight = |abi, last: u64, hdr: u8| {
        (1..8)
            .fold(clean_dcmd(abi).sge_count(8), |b, i| b.iovec(i, 0, 0))
            .iovec(7, BUF + 0x1000, last)
            .header(|h| h.sge_count = hdr)
            .build()
    };
    pair(
        RuleId::SglEmptyEntryPastFrame,
        Action::Reject,
        |abi| eight(abi, 0, 8),
        |abi| eight(abi, 512, 8),
    );
    // The firmware reads seven entries only: the eighth is never read.
    pair(
        RuleId::SglEmptyEntryPastFrame,
        Action::Reject,
        |abi| eight(abi, 0, 8),
        |abi| eight(abi, 0, 7),
    );
}

#[test]
fn dcmd_host_address() {
    pair(
        RuleId::DcmdHostAddress,
        Action::Reject,
        |abi| samples::dcmd_read(abi, MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS, BUF, 4096).build(),
        |abi| samples::dcmd_read(abi, MR_DCMD_CTRL_GET_INFO, BUF, 4096).build(),
    );
    // The event wait (the AEN registration): the driver takes its completion for its own.
    pair(
        RuleId::DcmdHostAddress,
        Action::Reject,
        |abi| samples::dcmd_read(abi, MR_DCMD_CTRL_EVENT_WAIT, BUF, 1024).build(),
        |abi| samples::dcmd_read(abi, MR_DCMD_CTRL_EVENT_GET, BUF, 1024).build(),
    );
    // The RAID and JBOD maps, pended (the firmware keeps the buffer) or not (a controller
    // reset returns the frame to the pool while the ioctl waits on it).
    for opcode in [MR_DCMD_LD_MAP_GET_INFO, MR_DCMD_SYSTEM_PD_MAP_GET_INFO] {
        for mbox in [[2u8, 1], [2, 0], [1, 0], [0, 0]] {
            pair(
                RuleId::DcmdHostAddress,
                Action::Reject,
                |abi| {
                    samples::dcmd_read(abi, opcode, BUF, 4096)
                        .frame_bytes(0x1C, &mbox)
                        .build()
                },
                |abi| {
                    samples::dcmd_read(abi, MR_DCMD_LD_GET_LIST, BUF, 4096)
                        .frame_bytes(0x1C, &mbox)
                        .build()
                },
            );
        }
    }
}

#[test]
fn every_rule_has_a_pair_test_here() {
    // The read-only rules' pairs are in readonly.rs: the twin is the same packet without the
    // read-only policy, or a reading command.
    let source = [include_str!("rules.rs"), include_str!("readonly.rs")].concat();
    for rule in RuleId::ALL {
        let variant = format!("RuleId::{rule:?},");
        assert!(source.contains(&variant), "no pair test names {variant}");
    }
}

#[test]
fn the_seed_stp_probe_is_rewritten_to_dir_read_only() {
    for abi in Abi::ALL {
        let bytes = samples::megacli_8_01_06_stp_probe(abi, 4, BUF, BUF + 0x1000).build();
        assert_eq!(decode(abi, &bytes).unwrap().header().flags.get(), 0x0032);
        let v = verdict(abi, &bytes);
        assert_eq!(v.decision(), Decision::Rewrite);
        assert_eq!(rules_hit(abi, &bytes), vec![RuleId::FrameAddressingFlags]);
        let mut sent = bytes.clone();
        v.apply(&mut sent).unwrap();
        let p = decode(abi, &sent).unwrap();
        assert_eq!(p.header().flags.get(), 0x0010, "DIR_READ only");
        // Only the flags changed.
        let changed: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != sent[i]).collect();
        assert_eq!(changed, vec![0x14 + 0x10]);
        assert_eq!(verdict(abi, &sent).decision(), Decision::Pass);
    }
}

#[test]
fn monitoring_traffic_passes_untouched() {
    let opcodes = [
        MR_DCMD_CTRL_GET_INFO,
        MR_DCMD_PD_GET_LIST,
        MR_DCMD_LD_GET_LIST,
        MR_DCMD_LD_GET_PROPERTIES,
        MR_DCMD_CTRL_EVENT_GET_INFO,
        MR_DCMD_CTRL_EVENT_GET,
    ];
    for abi in Abi::ALL {
        for opcode in opcodes {
            let bytes = samples::dcmd_read(abi, opcode, BUF, 4096).build();
            let v = verdict(abi, &bytes);
            assert_eq!(v.decision(), Decision::Pass, "{opcode:#x}");
            assert_eq!(v.findings().count(), 0, "{opcode:#x}");
            let mut sent = bytes.clone();
            v.apply(&mut sent).unwrap();
            assert_eq!(sent, bytes);
        }
        let inquiry = clean_pthru(abi).build();
        let v = verdict(abi, &inquiry);
        assert_eq!(v.decision(), Decision::Pass);
        assert_eq!(v.findings().count(), 0, "{:?}", rules_hit(abi, &inquiry));
    }
}

#[test]
fn audit_mode_reports_the_same_decision_unenforced() {
    let audit = Policy {
        mode: Mode::Audit,
        ..Policy::default()
    };
    for abi in Abi::ALL {
        let bytes = clean_dcmd(abi).sgl_off(0x40000).build();
        let v = decide(&audit, abi, &bytes).unwrap();
        assert_eq!(v.decision(), Decision::Reject(Errno::EINVAL));
        assert!(!v.enforced());
        assert!(verdict(abi, &bytes).enforced());
    }
}

#[test]
fn allow_list_downgrades_to_warnings() {
    let allow = Policy {
        allow: RuleSet::parse("sgl.bounds,sgl.offset-unusual,frame.addressing-flags").unwrap(),
        ..Policy::default()
    };
    for abi in Abi::ALL {
        let bytes = clean_dcmd(abi)
            .sgl_off(0x40000)
            .header(|h| h.flags = 0x0032.into())
            .build();
        let v = decide(&allow, abi, &bytes).unwrap();
        assert_eq!(v.decision(), Decision::Pass);
        for rule in [
            RuleId::SglBounds,
            RuleId::SglOffsetUnusual,
            RuleId::FrameAddressingFlags,
        ] {
            let f = v.finding(rule).unwrap();
            assert_eq!((f.action, f.downgraded), (Action::Warn, true));
        }
        assert!(v.rewrites().is_empty());
    }
}

#[test]
fn first_rejecting_rule_gives_the_errno_and_a_reject_sends_no_rewrite() {
    for abi in Abi::ALL {
        let bytes = clean_dcmd(abi)
            .sge_count(17)
            .header(|h| h.flags = 0x0022.into())
            .build();
        let v = verdict(abi, &bytes);
        assert_eq!(v.decision(), Decision::Reject(Errno::EINVAL));
        assert!(v.rewrites().is_empty());
        assert!(
            v.finding(RuleId::FrameAddressingFlags).is_some(),
            "still listed"
        );
    }
}

#[test]
fn short_input_is_a_typed_error() {
    for abi in Abi::ALL {
        let bytes = clean_dcmd(abi).build();
        let short = &bytes[..bytes.len() - 1];
        let err = decide(&Policy::default(), abi, short).unwrap_err();
        assert_eq!(
            err,
            mfiguard_sanitizer::DecodeError::Short {
                needed: abi.packet_size(),
                got: abi.packet_size() - 1
            }
        );
    }
}

#[test]
fn the_docs_show_the_rule_table_of_the_code() {
    let doc = include_str!("../../doc/rules.md");
    let table = mfiguard_sanitizer::policy::rules_markdown();
    assert!(
        doc.contains(&table),
        "doc/rules.md's rule table differs from the code; regenerate it with\n\
         `cargo run -p mfiguard-sanitizer --example rules-table` and paste:\n{table}"
    );
}

#[test]
fn the_docs_show_the_firmware_view_of_the_code() {
    let doc = include_str!("../../doc/rules.md");
    let table = mfiguard_sanitizer::firmware::markdown();
    let want = format!("<!-- firmware-view:begin -->\n{table}<!-- firmware-view:end -->");
    assert!(
        doc.contains(&want),
        "doc/rules.md's firmware view differs from sanitizer/src/firmware.rs; regenerate it with\n\
         `cargo run -p mfiguard-sanitizer --example firmware-table` and paste it between the\n\
         firmware-view markers:\n{table}"
    );
}
