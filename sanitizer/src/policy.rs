//! The rules, as data ([`RULES`]) and as one check function each (`policy/checks.rs`), and the
//! [`Policy`] that says which apply and how strictly.
//!
//! Spec: section 4 of `shared/megaraid-ioctl.md`. Rule ids are stable: they appear in audit
//! logs, in `MFIGUARD_ALLOW`, in the README and in tests.

use core::fmt;

mod checks;

pub use crate::errno::Errno;
pub(crate) use checks::check;
pub use checks::{SENSE_LEN_MAX, SENSE_OFF_MAX, SGE_LEN_MAX, SGE_TOTAL_MAX};

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
    /// `frame.dont-post-flag`
    FrameDontPostFlag,
    /// `sgl.fixed-entry-unwritten`
    SglFixedEntryUnwritten,
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
pub const RULE_COUNT: usize = 24;

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
        RuleId::FrameDontPostFlag,
        RuleId::SglFixedEntryUnwritten,
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
            RuleId::FrameDontPostFlag => &RULES[17],
            RuleId::SglFixedEntryUnwritten => &RULES[18],
            RuleId::ReadonlyCmd => &RULES[19],
            RuleId::ReadonlyDcmd => &RULES[20],
            RuleId::ReadonlyScsi => &RULES[21],
            RuleId::ReadonlyAta => &RULES[22],
            RuleId::ReadonlySmp => &RULES[23],
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
        when: "a DCMD that hands the firmware host memory to keep (event wait, crash dump, host memory and heartbeat registration, the driver's RAID and JBOD map syncs, pended or not)",
        action: Action::Reject,
        errno: Some(Errno::EINVAL),
        why: "the firmware writes into that buffer after the call returned and the driver freed it, or the driver completes the command as its own (or, for the map syncs, a controller reset returns the frame to the pool under the waiting ioctl): only the driver sends these",
    },
    Rule {
        id: RuleId::FrameDontPostFlag,
        name: "frame.dont-post-flag",
        when: "`flags & 0x0001 != 0` (DONT_POST_IN_REPLY_QUEUE)",
        action: Action::Rewrite,
        errno: None,
        why: "the firmware posts no completion for the frame, which the ioctl waits for without a timeout: on MFI controllers the caller hangs for good, holding the frame; on Fusion ones the driver takes the frame for one of its own polled commands and returns it to the pool while the ioctl still waits on it (once it is reused, the ioctl frees DMA buffers by another command's entries and returns the frame twice). Every driver passes the flag on; the flag is cleared",
    },
    Rule {
        id: RuleId::SglFixedEntryUnwritten,
        name: "sgl.fixed-entry-unwritten",
        when: "SMP and STP frames: a slot of their two fixed entries at or past `sge_count` (12-byte sge64 or 8-byte sge32 stride, at the frame type's SGL offset) holds non-zero bytes",
        action: Action::Rewrite,
        errno: None,
        why: "their layout fixes two entries (SMP: response, request; STP: response FIS, data), which a firmware may use by their role whatever `hdr.sge_count` says, and the driver writes none past `sge_count`: the caller's bytes there would reach the firmware as a DMA address (an IDENTIFY's data written to a page of the caller's choosing). The slot is zeroed",
    },
    Rule {
        id: RuleId::ReadonlyCmd,
        name: "readonly.cmd",
        when: "read-only policy: a frame other than DCMD, SCSI pass-through, STP or SMP (INIT, raw LD read/write, ABORT, NVMe, toolbox, unknown codes; a second line behind `frame.cmd-forbidden`, `frame.layout-unknown` and `frame.cmd`, deciding alone only when they are allowed)",
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
