//! The rules, as data ([`RULES`]) and as one check function each, and the [`Policy`] that
//! says which apply and how strictly.
//!
//! Spec: section 4 of `shared/megaraid-ioctl.md`. Rule ids are stable: they appear in audit
//! logs, in `MFIGUARD_ALLOW`, in the README and in tests.

use core::fmt;

use crate::abi::ioctl::MAX_IOCTL_SGE;
use crate::abi::mfi::{
    MfiCmd, MfiDirection, MfiFrameFlags, MFI_CMD_OP_COUNT, MFI_HEADER_SIZE, MFI_SGE32_SIZE,
    MFI_SGE64_SIZE,
};
use crate::decode::Packet;
use crate::firmware::{self, Layout};
use crate::readonly;
use crate::verdict::{Detail, DriverWrite, Rewrites};

pub use crate::errno::Errno;

/// What a rule does when it matches (before any downgrade by the policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Change the private copy that is sent to the kernel.
    Rewrite,
    /// Fail the call before the kernel sees it.
    Reject,
    /// Only record.
    Warn,
}

impl Action {
    /// The name used in logs and docs.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Rewrite => "rewrite",
            Action::Reject => "reject",
            Action::Warn => "warn",
        }
    }
}

/// A rule's stable identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    /// `frame.addressing-flags`
    FrameAddressingFlags,
    /// `ioc.sge-count`
    IocSgeCount,
    /// `frame.cmd`
    FrameCmd,
    /// `frame.cmd-forbidden`
    FrameCmdForbidden,
    /// `sgl.bounds`
    SglBounds,
    /// `sense.bounds`
    SenseBounds,
    /// `sense.length`
    SenseLength,
    /// `sge.length`
    SgeLength,
    /// `sgl.stale-entry`
    SglStaleEntry,
    /// `frame.raw-physical-address`
    FrameRawPhysicalAddress,
    /// `sense.length-mismatch`
    SenseLengthMismatch,
    /// `xfer.length`
    XferLength,
    /// `sgl.offset-unusual`
    SglOffsetUnusual,
    /// `frame.layout-unknown`
    FrameLayoutUnknown,
    /// `sense.offset-unusual`
    SenseOffsetUnusual,
    /// `sgl.empty-entry-past-frame`
    SglEmptyEntryPastFrame,
    /// `dcmd.host-address`
    DcmdHostAddress,
    /// `readonly.cmd`
    ReadonlyCmd,
    /// `readonly.dcmd`
    ReadonlyDcmd,
    /// `readonly.scsi`
    ReadonlyScsi,
    /// `readonly.ata`
    ReadonlyAta,
    /// `readonly.smp`
    ReadonlySmp,
}

/// Number of rules.
pub const RULE_COUNT: usize = 22;

impl RuleId {
    /// Every rule, in evaluation order (the first rejecting rule's errno is the answer).
    pub const ALL: [RuleId; RULE_COUNT] = [
        RuleId::FrameAddressingFlags,
        RuleId::IocSgeCount,
        RuleId::FrameCmd,
        RuleId::FrameCmdForbidden,
        RuleId::SglBounds,
        RuleId::SenseBounds,
        RuleId::SenseLength,
        RuleId::SgeLength,
        RuleId::SglStaleEntry,
        RuleId::FrameRawPhysicalAddress,
        RuleId::SenseLengthMismatch,
        RuleId::XferLength,
        RuleId::SglOffsetUnusual,
        RuleId::FrameLayoutUnknown,
        RuleId::SenseOffsetUnusual,
        RuleId::SglEmptyEntryPastFrame,
        RuleId::DcmdHostAddress,
        RuleId::ReadonlyCmd,
        RuleId::ReadonlyDcmd,
        RuleId::ReadonlyScsi,
        RuleId::ReadonlyAta,
        RuleId::ReadonlySmp,
    ];

    /// The stable id string.
    pub const fn name(self) -> &'static str {
        self.rule().name
    }

    /// The rule's definition.
    pub const fn rule(self) -> &'static Rule {
        // RULES is indexed by the discriminant; `rules_table_is_in_id_order` checks it.
        match self {
            RuleId::FrameAddressingFlags => &RULES[0],
            RuleId::IocSgeCount => &RULES[1],
            RuleId::FrameCmd => &RULES[2],
            RuleId::FrameCmdForbidden => &RULES[3],
            RuleId::SglBounds => &RULES[4],
            RuleId::SenseBounds => &RULES[5],
            RuleId::SenseLength => &RULES[6],
            RuleId::SgeLength => &RULES[7],
            RuleId::SglStaleEntry => &RULES[8],
            RuleId::FrameRawPhysicalAddress => &RULES[9],
            RuleId::SenseLengthMismatch => &RULES[10],
            RuleId::XferLength => &RULES[11],
            RuleId::SglOffsetUnusual => &RULES[12],
            RuleId::FrameLayoutUnknown => &RULES[13],
            RuleId::SenseOffsetUnusual => &RULES[14],
            RuleId::SglEmptyEntryPastFrame => &RULES[15],
            RuleId::DcmdHostAddress => &RULES[16],
            RuleId::ReadonlyCmd => &RULES[17],
            RuleId::ReadonlyDcmd => &RULES[18],
            RuleId::ReadonlyScsi => &RULES[19],
            RuleId::ReadonlyAta => &RULES[20],
            RuleId::ReadonlySmp => &RULES[21],
        }
    }

    /// The rule with this id string.
    pub fn from_name(name: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.name() == name)
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule: its id, when it matches, what it does and why it exists.
#[derive(Debug)]
pub struct Rule {
    /// The rule.
    pub id: RuleId,
    /// The stable id string.
    pub name: &'static str,
    /// When it matches, in the spec's words.
    pub when: &'static str,
    /// What it does.
    pub action: Action,
    /// The errno a rejection returns.
    pub errno: Option<Errno>,
    /// What it protects against.
    pub why: &'static str,
}

/// The rule table: the single source for the checks' metadata, the README and the logs.
pub const RULES: [Rule; RULE_COUNT] = [
    Rule {
        id: RuleId::FrameAddressingFlags,
        name: "frame.addressing-flags",
        when: "`flags & 0x0026 != 0` (SGL64, SENSE64, IEEE)",
        action: Action::Rewrite,
        errno: None,
        why: "the seed's STP corruption on legacy drivers: only the driver may choose how the firmware reads its addresses (the 2012 fix, for all commands)",
    },
    Rule {
        id: RuleId::IocSgeCount,
        name: "ioc.sge-count",
        when: "`sge_count > 16`",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "legacy drivers indexing past `sgl[16]`",
    },
    Rule {
        id: RuleId::FrameCmd,
        name: "frame.cmd",
        when: "`cmd >= 0x0B`",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "unknown frames reaching firmware",
    },
    Rule {
        id: RuleId::FrameCmdForbidden,
        name: "frame.cmd-forbidden",
        when: "`cmd` is INIT, ABORT, LD_READ or LD_WRITE",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "firmware re-initialisation, or an abort by raw physical address; a kernel crash: the driver completes an LD read/write frame through the block layer's SCSI command, which a frame from the ioctl has not (`megasas_complete_cmd`: a NULL dereference in interrupt, fatal, on every kernel since the driver's first version)",
    },
    Rule {
        id: RuleId::SglBounds,
        name: "sgl.bounds",
        when: "`sge_count > 0` and `[sgl_off, sgl_off + 12 * sge_count)` is not inside `[0x18, 256)`",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "the driver writes the SGL at an unchecked offset: an out-of-frame kernel write on every kernel",
    },
    Rule {
        id: RuleId::SenseBounds,
        name: "sense.bounds",
        when: "`sense_len > 0` and `sense_off` is outside `[0x18, 56]`",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "out-of-frame write (legacy drivers), header overwrite after the flags are fixed (all)",
    },
    Rule {
        id: RuleId::SenseLength,
        name: "sense.length",
        when: "`sense_len > 4096`",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "unbounded DMA allocation",
    },
    Rule {
        id: RuleId::SgeLength,
        name: "sge.length",
        when: "a used `iov_len > 16 MiB`, or their sum `> 64 MiB` (this also covers `iov_len > u32::MAX`)",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "unbounded DMA allocation; a 64-bit length truncated to 32 bits",
    },
    Rule {
        id: RuleId::SglStaleEntry,
        name: "sgl.stale-entry",
        when: "a used entry has `iov_len == 0` and non-zero bytes in its frame slot (12-byte sge64 or 8-byte sge32 stride), or `hdr.sge_count > sge_count`",
        action: Action::Rewrite,
        errno: None,
        why: "the driver skips empty entries, so caller bytes reach the firmware as DMA addresses; the slot is zeroed (never the sense pointer) and `hdr.sge_count` lowered",
    },
    Rule {
        id: RuleId::FrameRawPhysicalAddress,
        name: "frame.raw-physical-address",
        when: "LD/PD I/O frames: sense address @0x18 non-zero and not the slot the driver fills (`sense_len > 0 && sense_off == 0x18`)",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "firmware DMA to a caller-chosen physical address",
    },
    Rule {
        id: RuleId::SenseLengthMismatch,
        name: "sense.length-mismatch",
        when: "LD/PD I/O frames: `hdr.sense_len > sense_len`",
        action: Action::Rewrite,
        errno: None,
        why: "firmware overflowing the sense buffer; `hdr.sense_len` is lowered",
    },
    Rule {
        id: RuleId::XferLength,
        name: "xfer.length",
        when: "`data_xferlen >` the sum of used `iov_len`",
        action: Action::Warn,
        errno: None,
        why: "firmware DMA past the buffers (to be confirmed on real firmware)",
    },
    Rule {
        id: RuleId::SglOffsetUnusual,
        name: "sgl.offset-unusual",
        when: "`sge_count > 0` and `sgl_off` differs from the frame type's SGL offset (the firmware's view: 0x28 DCMD and LD read/write, 0x30 LD/PD SCSI and STP, 0x20 SMP)",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "the firmware reads its SGL at the frame type's offset, not at `sgl_off`: the driver's entries land elsewhere and the caller's own bytes there reach the firmware as a DMA address and length (a caller-chosen physical page written, seen on Linux 6.1)",
    },
    Rule {
        id: RuleId::FrameLayoutUnknown,
        name: "frame.layout-unknown",
        when: "`cmd` is NVME or TOOLBOX, frames whose layout no header publishes",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "where the firmware reads their addresses is not known, so no check can show that it reads only what the driver wrote",
    },
    Rule {
        id: RuleId::SenseOffsetUnusual,
        name: "sense.offset-unusual",
        when: "`sense_len > 0` and `sense_off` is not the frame type's sense address slot (0x18 in LD read/write and LD/PD SCSI frames; other frames have none)",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "the firmware reads the sense address at 0x18 whatever `sense_off` says: there it would find no address the driver wrote (a DMA to physical address 0 or the caller's), and the driver's sense address lands in bytes the firmware reads as something else (an SGL entry, a DCMD opcode or mailbox, a CDB, a FIS)",
    },
    Rule {
        id: RuleId::SglEmptyEntryPastFrame,
        name: "sgl.empty-entry-past-frame",
        when: "an entry the firmware reads (below `hdr.sge_count`, at the frame type's SGL offset) is empty (`iov_len == 0`) and its slot reaches past the packet's 128 frame bytes",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "the driver writes no entry for an empty buffer, and past the 128 bytes it copies its frame slot holds what its last command left (a stale DMA address): the guard cannot zero that slot as `sgl.stale-entry` does inside the frame",
    },
    Rule {
        id: RuleId::DcmdHostAddress,
        name: "dcmd.host-address",
        when: "a DCMD that hands the firmware host memory to keep (event wait, crash dump, host memory and heartbeat registration, the driver's pended RAID and JBOD map syncs)",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "the firmware writes into that buffer after the call returned and the driver freed it, or the driver completes the command as its own: only the driver sends these",
    },
    Rule {
        id: RuleId::ReadonlyCmd,
        name: "readonly.cmd",
        when: "read-only policy: a frame other than DCMD, SCSI pass-through, STP or SMP (raw LD read/write, NVMe, toolbox; a second line behind `frame.cmd-forbidden` and `frame.layout-unknown`, deciding alone only when they are allowed)",
        action: Action::Reject,
        errno: Some(Errno::EPERM),
        why: "a monitoring job moving data or talking to the controller in ways it never needs",
    },
    Rule {
        id: RuleId::ReadonlyDcmd,
        name: "readonly.dcmd",
        when: "read-only policy: a DCMD whose opcode is not in the reading allowlist, that sends data (`DIR_WRITE`), or whose opcode lies where the driver writes its SGL or sense address",
        action: Action::Reject,
        errno: Some(Errno::EPERM),
        why: "configuration changes, deletes, disk state changes and firmware flashes from a monitoring account",
    },
    Rule {
        id: RuleId::ReadonlyScsi,
        name: "readonly.scsi",
        when: "read-only policy: a SCSI pass-through whose CDB is not a known reading command, that sends data, or whose CDB lies where the driver writes",
        action: Action::Reject,
        errno: Some(Errno::EPERM),
        why: "writes, formats and firmware downloads sent straight to a disk",
    },
    Rule {
        id: RuleId::ReadonlyAta,
        name: "readonly.ata",
        when: "read-only policy: an STP frame whose ATA command is not a known reading command, that sends data, or whose FIS lies where the driver writes",
        action: Action::Reject,
        errno: Some(Errno::EPERM),
        why: "ATA writes, security erase and microcode downloads tunnelled to SATA disks",
    },
    Rule {
        id: RuleId::ReadonlySmp,
        name: "readonly.smp",
        when: "read-only policy: an SMP frame whose function is not a discover/report function, or whose request was not inspected",
        action: Action::Reject,
        errno: Some(Errno::EPERM),
        why: "expander configuration (phy control, zoning, route table changes)",
    },
];

/// A set of rules (the ones `MFIGUARD_ALLOW` downgrades to warnings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RuleSet(u32);

impl RuleSet {
    /// No rules.
    pub const EMPTY: RuleSet = RuleSet(0);

    /// Whether `rule` is in the set.
    pub const fn contains(self, rule: RuleId) -> bool {
        self.0 & rule.bit() != 0
    }

    /// The set with `rule` added.
    #[must_use]
    pub const fn with(self, rule: RuleId) -> RuleSet {
        RuleSet(self.0 | rule.bit())
    }

    /// Parses a comma-separated list of rule ids; blanks are ignored. An unknown id is an error
    /// naming it, so a typo in `MFIGUARD_ALLOW` never silently allows nothing or everything.
    pub fn parse(list: &str) -> Result<RuleSet, UnknownRule<'_>> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .try_fold(RuleSet::EMPTY, |set, name| {
                RuleId::from_name(name)
                    .map(|r| set.with(r))
                    .ok_or(UnknownRule(name))
            })
    }

    /// The rules in the set, in table order.
    pub fn iter(self) -> impl Iterator<Item = RuleId> {
        RuleId::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

/// A rule id that does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownRule<'a>(pub &'a str);

impl fmt::Display for UnknownRule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown rule id {:?}", self.0)
    }
}

/// Whether the guard acts on its verdicts or only reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Rewrite and reject as the verdict says (the default).
    #[default]
    Enforce,
    /// Change nothing; record what enforce would have done.
    Audit,
}

/// What the guard enforces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Enforce or audit.
    pub mode: Mode,
    /// Add the `readonly.*` rules: only commands that read pass (`MFIGUARD_MODE=readonly`).
    pub readonly: bool,
    /// Rules downgraded to warnings.
    pub allow: RuleSet,
}

impl RuleId {
    /// Whether the rule belongs to the read-only policy (evaluated only when it is on).
    pub const fn is_readonly(self) -> bool {
        matches!(
            self,
            RuleId::ReadonlyCmd
                | RuleId::ReadonlyDcmd
                | RuleId::ReadonlyScsi
                | RuleId::ReadonlyAta
                | RuleId::ReadonlySmp
        )
    }
}

/// What a matching rule found: the detail to record and, for a rewrite, the edit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub detail: Detail,
    pub rewrites: Rewrites,
}

impl Hit {
    fn note(detail: Detail) -> Option<Hit> {
        Some(Hit {
            detail,
            rewrites: Rewrites::NONE,
        })
    }
}

/// Lowest frame offset a driver-written field may start at: past the header.
const FRAME_FIELDS_START: u64 = MFI_HEADER_SIZE as u64;
/// The driver's frame slot is 256 bytes on Fusion controllers (1024 on older ones): the SGL
/// must end inside the smaller.
const DRIVER_FRAME_SLOT: u64 = 256;
/// The last `sense_off` whose 8-byte address still ends inside the first 64-byte frame; the
/// 2020 upstream check uses the same bound.
pub const SENSE_OFF_MAX: u32 = 56;
/// `sense.length`: the largest sense buffer a packet may ask for.
pub const SENSE_LEN_MAX: u32 = 4096;
/// `sge.length`: the largest data buffer one `sgl[]` entry may ask for.
pub const SGE_LEN_MAX: u64 = 16 << 20;
/// `sge.length`: the largest sum of the used entries' lengths.
pub const SGE_TOTAL_MAX: u64 = 64 << 20;
/// Bytes the driver's sense address occupies at `sense_off` (6.1 writes 8).
const SENSE_ADDR_LEN: usize = 8;

pub(crate) fn check(rule: RuleId, p: &Packet) -> Option<Hit> {
    match rule {
        RuleId::FrameAddressingFlags => addressing_flags(p),
        RuleId::IocSgeCount => sge_count(p),
        RuleId::FrameCmd => unknown_cmd(p),
        RuleId::FrameCmdForbidden => forbidden_cmd(p),
        RuleId::SglBounds => sgl_bounds(p),
        RuleId::SenseBounds => sense_bounds(p),
        RuleId::SenseLength => sense_length(p),
        RuleId::SgeLength => sge_length(p),
        RuleId::SglStaleEntry => stale_entries(p),
        RuleId::FrameRawPhysicalAddress => raw_physical_address(p),
        RuleId::SenseLengthMismatch => sense_length_mismatch(p),
        RuleId::XferLength => xfer_length(p),
        RuleId::SglOffsetUnusual => sgl_offset_unusual(p),
        RuleId::FrameLayoutUnknown => layout_unknown(p),
        RuleId::SenseOffsetUnusual => sense_offset_unusual(p),
        RuleId::SglEmptyEntryPastFrame => empty_entry_past_frame(p),
        RuleId::DcmdHostAddress => dcmd_host_address(p),
        RuleId::ReadonlyCmd => readonly_cmd(p),
        RuleId::ReadonlyDcmd => readonly_dcmd(p),
        RuleId::ReadonlyScsi => readonly_scsi(p),
        RuleId::ReadonlyAta => readonly_ata(p),
        RuleId::ReadonlySmp => readonly_smp(p),
    }
}

fn addressing_flags(p: &Packet) -> Option<Hit> {
    let flags = p.header().flags.get();
    let cleared = flags & MfiFrameFlags::ADDRESSING.bits();
    (cleared != 0).then_some(Hit {
        detail: Detail::AddressingFlags { flags, cleared },
        rewrites: Rewrites {
            flags: Some(flags & !cleared),
            ..Rewrites::NONE
        },
    })
}

fn sge_count(p: &Packet) -> Option<Hit> {
    (p.sge_count as usize > MAX_IOCTL_SGE).then_some(())?;
    Hit::note(Detail::SgeCount {
        sge_count: p.sge_count,
    })
}

fn unknown_cmd(p: &Packet) -> Option<Hit> {
    let cmd = p.header().cmd;
    (cmd >= MFI_CMD_OP_COUNT).then_some(())?;
    Hit::note(Detail::UnknownCmd { cmd })
}

fn forbidden_cmd(p: &Packet) -> Option<Hit> {
    match p.cmd()? {
        MfiCmd::Init | MfiCmd::Abort | MfiCmd::LdRead | MfiCmd::LdWrite => {
            Hit::note(Detail::ForbiddenCmd {
                cmd: p.header().cmd,
            })
        }
        _ => None,
    }
}

/// End of the SGL region the driver may write: `sgl_off + 12 * sge_count`, in u64 (both
/// operands are u32, so the sum stays below 2^37: no overflow).
fn sgl_end(p: &Packet) -> u64 {
    u64::from(p.sgl_off)
        .saturating_add(u64::from(p.sge_count).saturating_mul(MFI_SGE64_SIZE as u64))
}

fn sgl_bounds(p: &Packet) -> Option<Hit> {
    if p.sge_count == 0 {
        return None;
    }
    let end = sgl_end(p);
    (u64::from(p.sgl_off) < FRAME_FIELDS_START || end > DRIVER_FRAME_SLOT).then_some(())?;
    Hit::note(Detail::SglRegion {
        sgl_off: p.sgl_off,
        end,
    })
}

fn sense_bounds(p: &Packet) -> Option<Hit> {
    let ok = p.sense_len == 0
        || (u64::from(p.sense_off) >= FRAME_FIELDS_START && p.sense_off <= SENSE_OFF_MAX);
    (!ok).then_some(())?;
    Hit::note(Detail::SenseOffset {
        sense_off: p.sense_off,
        sense_len: p.sense_len,
    })
}

fn sense_length(p: &Packet) -> Option<Hit> {
    (p.sense_len > SENSE_LEN_MAX).then_some(())?;
    Hit::note(Detail::SenseLength {
        sense_len: p.sense_len,
    })
}

fn sge_length(p: &Packet) -> Option<Hit> {
    let used = p.used_iovecs();
    if let Some((index, v)) = used.iter().enumerate().find(|(_, v)| v.len > SGE_LEN_MAX) {
        return Hit::note(Detail::SgeLength {
            index: index as u8,
            len: v.len,
        });
    }
    let total = p.used_bytes();
    (total > SGE_TOTAL_MAX).then_some(())?;
    Hit::note(Detail::SgeTotal { total })
}

/// Frame byte offsets of used, empty entries' slots that still hold non-zero caller bytes,
/// as a bit per frame byte. Only bytes inside the frame past the header are considered, and
/// never the sense pointer the kernel reads back after completion.
fn stale_slot_bytes(p: &Packet) -> (u128, u16) {
    let sense_ptr = if p.sense_len > 0 {
        let start = p.sense_off as usize;
        start..start.saturating_add(SENSE_ADDR_LEN)
    } else {
        0..0
    };
    let mut mask = 0u128;
    let mut slots = 0u16;
    for (i, v) in p.used_iovecs().iter().enumerate() {
        if v.len != 0 {
            continue;
        }
        // The entry's slot on a driver writing sge64 entries (12 bytes) and on one writing
        // sge32 entries (8 bytes: the legacy driver, or 6.1 without 64-bit DMA): the firmware
        // reads whichever the driver wrote, so neither may keep caller bytes. Zeroing a byte
        // that is a written entry's on the other stride is harmless: the driver overwrites it.
        for size in [MFI_SGE64_SIZE, MFI_SGE32_SIZE] {
            // i < 16, so i * size < 192; sgl_off is a u32 and usize is at least 32 bits here,
            // so the saturating add only matters for absurd offsets, which then miss the frame.
            let start = (p.sgl_off as usize).saturating_add(i.saturating_mul(size));
            for offset in start..start.saturating_add(size) {
                if offset < MFI_HEADER_SIZE || sense_ptr.contains(&offset) {
                    continue;
                }
                if let Some(&byte) = p.frame.get(offset) {
                    if byte != 0 {
                        mask |= 1u128 << offset;
                        slots |= 1 << i;
                    }
                }
            }
        }
    }
    (mask, slots)
}

fn stale_entries(p: &Packet) -> Option<Hit> {
    let (mask, slots) = stale_slot_bytes(p);
    let hdr_sge_count = p.header().sge_count;
    let lower = u32::from(hdr_sge_count) > p.sge_count;
    (mask != 0 || lower).then_some(())?;
    Some(Hit {
        detail: Detail::StaleEntries {
            slots,
            hdr_sge_count,
            sge_count: p.sge_count,
        },
        rewrites: Rewrites {
            // When lowering, sge_count < hdr_sge_count <= 255, so it fits in a u8.
            hdr_sge_count: lower.then(|| u8::try_from(p.sge_count).unwrap_or(u8::MAX)),
            zero_frame_bytes: mask,
            ..Rewrites::NONE
        },
    })
}

fn raw_physical_address(p: &Packet) -> Option<Hit> {
    if !p.cmd()?.has_sense_phys_addr() {
        return None;
    }
    let addr = p.frame_u64(MFI_HEADER_SIZE)?;
    let driver_fills = p.sense_len > 0 && p.sense_off as usize == MFI_HEADER_SIZE;
    (addr != 0 && !driver_fills).then_some(())?;
    Hit::note(Detail::RawPhysicalAddress { addr })
}

fn sense_length_mismatch(p: &Packet) -> Option<Hit> {
    if !p.cmd()?.has_sense_phys_addr() {
        return None;
    }
    let hdr_sense_len = p.header().sense_len;
    (u32::from(hdr_sense_len) > p.sense_len).then_some(())?;
    let lowered = u8::try_from(p.sense_len).unwrap_or(u8::MAX);
    Some(Hit {
        detail: Detail::SenseLengthMismatch {
            hdr_sense_len,
            sense_len: p.sense_len,
        },
        rewrites: Rewrites {
            hdr_sense_len: Some(lowered),
            ..Rewrites::NONE
        },
    })
}

fn xfer_length(p: &Packet) -> Option<Hit> {
    let data_xferlen = p.header().data_xferlen.get();
    let total = p.used_bytes();
    (u64::from(data_xferlen) > total).then_some(())?;
    Hit::note(Detail::XferLength {
        data_xferlen,
        total,
    })
}

/// Where the firmware reads this packet's SGL, if its frame type says.
fn firmware_sgl_offset(p: &Packet) -> Option<u32> {
    match p.cmd()?.firmware_view().sgl {
        Layout::At(off) => Some(off),
        Layout::None | Layout::Unpublished => None,
    }
}

fn sgl_offset_unusual(p: &Packet) -> Option<Hit> {
    if p.sge_count == 0 {
        return None;
    }
    let expected = firmware_sgl_offset(p)?;
    (p.sgl_off != expected).then_some(())?;
    Hit::note(Detail::SglOffsetUnusual {
        cmd: p.header().cmd,
        sgl_off: p.sgl_off,
        expected,
    })
}

fn layout_unknown(p: &Packet) -> Option<Hit> {
    let view = p.cmd()?.firmware_view();
    (view.sgl == Layout::Unpublished).then_some(())?;
    Hit::note(Detail::LayoutUnknown {
        cmd: p.header().cmd,
    })
}

fn sense_offset_unusual(p: &Packet) -> Option<Hit> {
    if p.sense_len == 0 {
        return None;
    }
    let slot = match p.cmd()?.firmware_view().sense_address {
        Layout::At(slot) => Some(slot),
        Layout::None | Layout::Unpublished => None,
    };
    (slot != Some(p.sense_off)).then_some(())?;
    Hit::note(Detail::SenseOffsetUnusual {
        cmd: p.header().cmd,
        sense_off: p.sense_off,
        slot,
    })
}

fn empty_entry_past_frame(p: &Packet) -> Option<Hit> {
    let sgl_at = firmware_sgl_offset(p)?;
    let read = usize::from(p.header().sge_count);
    let widest = firmware::DRIVER_SGE_SIZES
        .into_iter()
        .max()
        .unwrap_or(MFI_SGE64_SIZE);
    let mut entries = 0u16;
    // At most 16 used entries, each slot ending below 0x30 + 16 * 12: no overflow.
    for (i, v) in p.used_iovecs().iter().enumerate().take(read) {
        let end = (sgl_at as usize).saturating_add(widest.saturating_mul(i.saturating_add(1)));
        if v.len == 0 && end > firmware::FRAME_COPY_LEN {
            entries |= 1 << i;
        }
    }
    (entries != 0).then_some(())?;
    Hit::note(Detail::EmptyEntryPastFrame { entries, sgl_at })
}

fn dcmd_host_address(p: &Packet) -> Option<Hit> {
    let frame = p.dcmd_frame()?;
    let opcode = frame.opcode.get();
    firmware::host_address_dcmd(opcode, &frame.mbox)?;
    Hit::note(Detail::DcmdHostAddress { opcode })
}

/// A second line: every frame it refuses is refused first by `frame.cmd-forbidden` (LD
/// read/write) or `frame.layout-unknown` (NVMe, toolbox), and it decides alone only when one of
/// those is allowed (`--allow frame.layout-unknown` for a tool that needs NVMe frames).
fn readonly_cmd(p: &Packet) -> Option<Hit> {
    match p.cmd()? {
        MfiCmd::Dcmd | MfiCmd::LdScsiIo | MfiCmd::PdScsiIo | MfiCmd::Stp | MfiCmd::Smp => None,
        // INIT and ABORT: frame.cmd-forbidden, with nothing a read-only job could want of them.
        MfiCmd::Init | MfiCmd::Abort => None,
        MfiCmd::LdRead | MfiCmd::LdWrite | MfiCmd::Nvme | MfiCmd::Toolbox => {
            Hit::note(Detail::ReadonlyCmd {
                cmd: p.header().cmd,
            })
        }
    }
}

/// Frame bytes the read-only rules classify: the DCMD opcode, the SCSI CDB, the STP FIS.
const DCMD_OPCODE_BYTES: (u16, u16) = (0x18, 0x1C);
const PTHRU_CDB_START: u16 = 0x20;
const STP_FIS_BYTES: (u16, u16) = (0x18, 0x2C);

/// Where the driver will write over `classified` (frame offsets, end exclusive) after it copied
/// the caller's frame: its SGL (every slot below `sge_count`, written or zeroed as stale) or
/// the sense buffer's address. A read-only rule that classified those bytes classified
/// something the firmware never sees.
fn driver_writes_over(p: &Packet, (from, to): (u16, u16)) -> Option<DriverWrite> {
    let overlaps = |start: u64, end: u64| start < u64::from(to) && u64::from(from) < end;
    let sgl = (u64::from(p.sgl_off), sgl_end(p));
    if p.sge_count > 0 && overlaps(sgl.0, sgl.1) {
        return Some(DriverWrite::Sgl {
            start: sgl.0,
            end: sgl.1,
        });
    }
    let sense = u64::from(p.sense_off);
    let sense = (sense, sense.saturating_add(SENSE_ADDR_LEN as u64));
    (p.sense_len > 0 && overlaps(sense.0, sense.1)).then_some(DriverWrite::SenseAddress {
        start: sense.0,
        end: sense.1,
    })
}

fn readonly_overwritten(p: &Packet, classified: (u16, u16)) -> Option<Hit> {
    let by = driver_writes_over(p, classified)?;
    Hit::note(Detail::ReadonlyOverwritten {
        cmd: p.header().cmd,
        classified,
        by,
    })
}

fn readonly_dcmd(p: &Packet) -> Option<Hit> {
    let frame = p.dcmd_frame()?;
    if let Some(hit) = readonly_overwritten(p, DCMD_OPCODE_BYTES) {
        return Some(hit);
    }
    let opcode = frame.opcode.get();
    let sends_data = MfiDirection::from_flags(frame.hdr.flags.get()).writes();
    (sends_data || !readonly::dcmd_is_read_only(opcode)).then_some(())?;
    Hit::note(Detail::ReadonlyDcmd { opcode, sends_data })
}

fn readonly_scsi(p: &Packet) -> Option<Hit> {
    let frame = p.pthru_frame()?;
    let len = usize::from(frame.hdr.cdb_len).min(frame.cdb.len());
    // len <= 16, so the sum never saturates
    let cdb_bytes = (
        PTHRU_CDB_START,
        PTHRU_CDB_START.saturating_add(u16::try_from(len).unwrap_or(u16::MAX)),
    );
    if let Some(hit) = readonly_overwritten(p, cdb_bytes) {
        return Some(hit);
    }
    let cdb = frame.cdb.get(..len).unwrap_or(&frame.cdb);
    let sends_data = MfiDirection::from_flags(frame.hdr.flags.get()).writes();
    (sends_data || !readonly::scsi_cdb_is_read_only(cdb)).then_some(())?;
    Hit::note(Detail::ReadonlyScsi {
        opcode: frame.cdb.first().copied().unwrap_or(0),
        sends_data,
    })
}

fn readonly_ata(p: &Packet) -> Option<Hit> {
    let frame = p.stp_frame()?;
    if let Some(hit) = readonly_overwritten(p, STP_FIS_BYTES) {
        return Some(hit);
    }
    let sends_data = MfiDirection::from_flags(frame.hdr.flags.get()).writes();
    (sends_data || !readonly::ata_fis_is_read_only(&frame.fis)).then_some(())?;
    Hit::note(Detail::ReadonlyAta {
        command: frame.fis.get(2).copied().unwrap_or(0),
        features: frame.fis.get(3).copied().unwrap_or(0),
        sends_data,
    })
}

fn readonly_smp(p: &Packet) -> Option<Hit> {
    if p.cmd()? != MfiCmd::Smp {
        return None;
    }
    let allowed = p
        .smp_request
        .is_some_and(|head| readonly::smp_request_is_read_only(&head));
    (!allowed).then_some(())?;
    Hit::note(Detail::ReadonlySmp {
        function: p.smp_request.and_then(|head| head.get(1).copied()),
    })
}

/// The rule table as Markdown, as the README shows it (a test keeps the two equal).
pub fn rules_markdown() -> String {
    let mut out =
        String::from("| id | when | action | errno | protects against |\n|---|---|---|---|---|\n");
    for rule in &RULES {
        let errno = rule.errno.map_or("-", Errno::name);
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            rule.name,
            rule.when,
            rule.action.name(),
            errno,
            rule.why
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_table_is_in_id_order() {
        for (i, rule) in RULES.iter().enumerate() {
            assert_eq!(rule.id as usize, i, "{}", rule.name);
            assert_eq!(RuleId::ALL.get(i), Some(&rule.id));
            assert_eq!(rule.id.rule().name, rule.name);
            assert_eq!(RuleId::from_name(rule.name), Some(rule.id));
            assert_eq!(
                rule.action == Action::Reject,
                rule.errno.is_some(),
                "{}",
                rule.name
            );
        }
    }

    #[test]
    fn rule_sets_parse_ids_and_name_unknown_ones() {
        let set = RuleSet::parse(" sgl.bounds, xfer.length ,").unwrap();
        assert!(set.contains(RuleId::SglBounds));
        assert!(set.contains(RuleId::XferLength));
        assert!(!set.contains(RuleId::SenseBounds));
        assert_eq!(set.iter().count(), 2);
        assert_eq!(
            RuleSet::parse("sgl.bounds,sgl.bound"),
            Err(UnknownRule("sgl.bound"))
        );
        assert_eq!(RuleSet::parse(""), Ok(RuleSet::EMPTY));
    }
}
