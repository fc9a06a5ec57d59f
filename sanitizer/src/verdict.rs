//! The verdict: what the policy decided about one packet, every finding behind it, and the
//! edits a rewrite makes to the private copy.
//!
//! A verdict never allocates: findings live in a fixed array (at most one per rule) and details
//! are plain values rendered by `Display` when a log wants them.

use core::fmt;

use zerocopy::FromBytes;

use crate::abi::ioctl::{Abi, MEGASAS_IOC_FRAME_LEN, MEGASAS_IOC_FRAME_OFFSET};
use crate::abi::mfi::{CmdDisplay, FlagsDisplay, MfiCmd, MfiHeader};
use crate::abi::names::dcmd_opcode_name;
use crate::decode::{decode, DecodeError, Packet};
use crate::policy::{check, Action, Errno, Mode, Policy, RuleId, RULE_COUNT};

/// What happens to the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Send the packet as it is.
    Pass,
    /// Send the rewritten private copy.
    Rewrite,
    /// Fail the call with this errno; the kernel never sees it.
    Reject(Errno),
}

impl Decision {
    /// `pass`, `rewrite` or `reject`, as the audit log says.
    pub const fn name(self) -> &'static str {
        match self {
            Decision::Pass => "pass",
            Decision::Rewrite => "rewrite",
            Decision::Reject(_) => "reject",
        }
    }
}

/// The offending values behind a finding, rendered for humans by `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are the packet's own, named as in the kernel
pub enum Detail {
    /// `frame.addressing-flags`
    AddressingFlags { flags: u16, cleared: u16 },
    /// `ioc.sge-count`
    SgeCount { sge_count: u32 },
    /// `frame.cmd`
    UnknownCmd { cmd: u8 },
    /// `frame.cmd-forbidden`
    ForbiddenCmd { cmd: u8 },
    /// `sgl.bounds`
    SglRegion { sgl_off: u32, end: u64 },
    /// `sense.bounds`
    SenseOffset { sense_off: u32, sense_len: u32 },
    /// `sense.length`
    SenseLength { sense_len: u32 },
    /// `sge.length`, one entry
    SgeLength { index: u8, len: u64 },
    /// `sge.length`, the sum
    SgeTotal { total: u64 },
    /// `sgl.stale-entry`: `slots` has a bit per zeroed `sgl[]` slot.
    StaleEntries {
        slots: u16,
        hdr_sge_count: u8,
        sge_count: u32,
    },
    /// `frame.raw-physical-address`
    RawPhysicalAddress { addr: u64 },
    /// `sense.length-mismatch`
    SenseLengthMismatch { hdr_sense_len: u8, sense_len: u32 },
    /// `xfer.length`
    XferLength { data_xferlen: u32, total: u64 },
    /// `sgl.offset-unusual`
    SglOffsetUnusual {
        cmd: u8,
        sgl_off: u32,
        expected: u32,
    },
    /// `frame.layout-unknown`
    LayoutUnknown { cmd: u8 },
    /// `sense.offset-unusual`: `slot` is the frame type's sense address slot, if it has one.
    SenseOffsetUnusual {
        cmd: u8,
        sense_off: u32,
        slot: Option<u32>,
    },
    /// `sgl.empty-entry-past-frame`: `entries` has a bit per empty entry the firmware reads
    /// past the frame; `sgl_at` is where the firmware reads the SGL.
    EmptyEntryPastFrame { entries: u16, sgl_at: u32 },
    /// `dcmd.host-address`
    DcmdHostAddress { opcode: u32 },
    /// `frame.dont-post-flag`
    DontPostFlag { flags: u16 },
    /// `sgl.fixed-entry-unwritten`: `entries` has a bit per zeroed fixed entry.
    FixedEntryUnwritten {
        cmd: u8,
        entries: u8,
        sge_count: u32,
    },
    /// `readonly.cmd`
    ReadonlyCmd { cmd: u8 },
    /// `readonly.dcmd`
    ReadonlyDcmd { opcode: u32, sends_data: bool },
    /// `readonly.scsi`
    ReadonlyScsi { opcode: u8, sends_data: bool },
    /// `readonly.ata`
    ReadonlyAta {
        command: u8,
        features: u8,
        sends_data: bool,
    },
    /// `readonly.smp`: `function` is `None` when the request was not inspected.
    ReadonlySmp { function: Option<u8> },
    /// `readonly.dcmd`, `readonly.scsi`, `readonly.ata`: the bytes the read-only rule
    /// classified (`classified`, frame offsets) lie where the driver writes its SGL or sense
    /// address, so the firmware would run a command nobody classified.
    ReadonlyOverwritten {
        /// The frame's command.
        cmd: u8,
        /// The classified bytes, frame offsets `[start, end)`.
        classified: (u16, u16),
        /// What the driver writes over them.
        by: DriverWrite,
    },
}

/// A region of the frame the driver writes after it copied the caller's frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverWrite {
    /// The scatter/gather list, `[sgl_off, sgl_off + 12 * sge_count)`.
    Sgl {
        /// `sgl_off`
        start: u64,
        /// `sgl_off + 12 * sge_count`
        end: u64,
    },
    /// The sense buffer's DMA address, `[sense_off, sense_off + 8)`.
    SenseAddress {
        /// `sense_off`
        start: u64,
        /// `sense_off + 8`
        end: u64,
    },
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Detail::AddressingFlags { flags, cleared } => write!(
                f,
                "flags {flags:#06x} ({}): cleared {} (only the driver may set addressing flags)",
                FlagsDisplay(flags),
                FlagsDisplay(cleared)
            ),
            Detail::SgeCount { sge_count } => {
                write!(f, "sge_count {sge_count} exceeds MAX_IOCTL_SGE (16)")
            }
            Detail::UnknownCmd { cmd } => {
                write!(
                    f,
                    "cmd {cmd:#04x} is not a known MFI command (MFI_CMD_OP_COUNT is 0x0b)"
                )
            }
            Detail::ForbiddenCmd { cmd } => match MfiCmd::from_u8(cmd) {
                Some(MfiCmd::LdRead | MfiCmd::LdWrite) => write!(
                    f,
                    "cmd {} from the ioctl crashes the kernel: the driver completes it \
                     through a block-layer SCSI command it does not have (a NULL dereference \
                     in interrupt)",
                    CmdDisplay(cmd)
                ),
                _ => write!(
                    f,
                    "cmd {} is never sent by a management tool",
                    CmdDisplay(cmd)
                ),
            },
            Detail::SglRegion { sgl_off, end } => write!(
                f,
                "SGL region [{sgl_off:#x}, {end:#x}) is not inside the frame [0x18, 0x100)"
            ),
            Detail::SenseOffset {
                sense_off,
                sense_len,
            } => write!(
                f,
                "sense_off {sense_off:#x} (sense_len {sense_len}) is outside [0x18, 0x38]"
            ),
            Detail::SenseLength { sense_len } => {
                write!(f, "sense_len {sense_len} exceeds 4096")
            }
            Detail::SgeLength { index, len } => {
                write!(f, "sgl[{index}].iov_len {len} exceeds 16 MiB")
            }
            Detail::SgeTotal { total } => {
                write!(f, "used iov_len sum {total} exceeds 64 MiB")
            }
            Detail::StaleEntries {
                slots,
                hdr_sge_count,
                sge_count,
            } => {
                let mut sep = "";
                if slots != 0 {
                    f.write_str("zeroed frame slot of empty sgl[")?;
                    for i in (0..16).filter(|i| slots & (1 << i) != 0) {
                        write!(f, "{sep}{i}")?;
                        sep = ",";
                    }
                    f.write_str("]")?;
                    sep = "; ";
                }
                if u32::from(hdr_sge_count) > sge_count {
                    write!(
                        f,
                        "{sep}hdr.sge_count {hdr_sge_count} lowered to {sge_count}"
                    )?;
                }
                Ok(())
            }
            Detail::RawPhysicalAddress { addr } => write!(
                f,
                "sense physical address {addr:#x} at 0x18 is the caller's, not the driver's"
            ),
            Detail::SenseLengthMismatch {
                hdr_sense_len,
                sense_len,
            } => write!(
                f,
                "hdr.sense_len {hdr_sense_len} lowered to the sense buffer's {sense_len}"
            ),
            Detail::XferLength {
                data_xferlen,
                total,
            } => write!(
                f,
                "data_xferlen {data_xferlen} exceeds the {total} bytes of buffers"
            ),
            Detail::SglOffsetUnusual {
                cmd,
                sgl_off,
                expected,
            } => write!(
                f,
                "sgl_off {sgl_off:#x} for a {} frame, whose SGL is at {expected:#x}",
                CmdDisplay(cmd)
            ),
            Detail::LayoutUnknown { cmd } => write!(
                f,
                "{} frames have no published layout: where the firmware reads their addresses \
                 is not known",
                CmdDisplay(cmd)
            ),
            Detail::SenseOffsetUnusual {
                cmd,
                sense_off,
                slot: Some(slot),
            } => write!(
                f,
                "sense_off {sense_off:#x} for a {} frame, whose firmware reads the sense \
                 address at {slot:#x}",
                CmdDisplay(cmd)
            ),
            Detail::SenseOffsetUnusual {
                cmd,
                sense_off,
                slot: None,
            } => write!(
                f,
                "sense_off {sense_off:#x}: a {} frame has no sense address, so the driver's \
                 lands in bytes the firmware reads as something else",
                CmdDisplay(cmd)
            ),
            Detail::EmptyEntryPastFrame { entries, sgl_at } => {
                f.write_str("the firmware reads empty sgl[")?;
                let mut sep = "";
                for i in (0..16).filter(|i| entries & (1 << i) != 0) {
                    write!(f, "{sep}{i}")?;
                    sep = ",";
                }
                write!(
                    f,
                    "] (SGL at {sgl_at:#x}) past the packet's 128 frame bytes, where the \
                     driver's frame holds stale bytes"
                )
            }
            Detail::DcmdHostAddress { opcode } => {
                write!(f, "DCMD {opcode:#010x}")?;
                if let Some(name) = dcmd_opcode_name(opcode) {
                    write!(f, " ({name})")?;
                }
                f.write_str(" hands the firmware host memory to keep: only the driver sends it")
            }
            Detail::DontPostFlag { flags } => write!(
                f,
                "flags {flags:#06x} ({}): cleared DONT_POST_IN_REPLY_QUEUE (the ioctl waits for \
                 the completion the firmware would not post)",
                FlagsDisplay(flags)
            ),
            Detail::FixedEntryUnwritten {
                cmd,
                entries,
                sge_count,
            } => {
                write!(f, "zeroed the slot of {} entry [", CmdDisplay(cmd))?;
                let mut sep = "";
                for i in (0..8).filter(|i| entries & (1 << i) != 0) {
                    write!(f, "{sep}{i}")?;
                    sep = ",";
                }
                write!(
                    f,
                    "], past sge_count {sge_count}: the firmware reads both of the frame's \
                     entries, and the driver writes none there"
                )
            }
            Detail::ReadonlyCmd { cmd } => write!(
                f,
                "{} frames are not allowed by the read-only policy",
                CmdDisplay(cmd)
            ),
            Detail::ReadonlyDcmd { opcode, sends_data } => {
                write!(f, "DCMD {opcode:#010x}")?;
                if let Some(name) = dcmd_opcode_name(opcode) {
                    write!(f, " ({name})")?;
                }
                f.write_str(not_a_read(sends_data))
            }
            Detail::ReadonlyScsi { opcode, sends_data } => {
                write!(f, "SCSI opcode {opcode:#04x}")?;
                f.write_str(not_a_read(sends_data))
            }
            Detail::ReadonlyAta {
                command,
                features,
                sends_data,
            } => {
                write!(f, "ATA command {command:#04x} (features {features:#04x})")?;
                f.write_str(not_a_read(sends_data))
            }
            Detail::ReadonlySmp {
                function: Some(function),
            } => write!(
                f,
                "SMP function {function:#04x} is not a discover/report function"
            ),
            Detail::ReadonlySmp { function: None } => {
                f.write_str("SMP request buffer could not be inspected")
            }
            Detail::ReadonlyOverwritten {
                cmd,
                classified: (from, to),
                by,
            } => {
                let (what, start, end) = match by {
                    DriverWrite::Sgl { start, end } => ("SGL", start, end),
                    DriverWrite::SenseAddress { start, end } => ("sense address", start, end),
                };
                write!(
                    f,
                    "the {} command bytes [{from:#x}, {to:#x}) lie in the {what} the driver \
                     writes at [{start:#x}, {end:#x}): the firmware would run a command that \
                     was never classified",
                    CmdDisplay(cmd)
                )
            }
        }
    }
}

fn not_a_read(sends_data: bool) -> &'static str {
    if sends_data {
        " sends data to the controller (DIR_WRITE)"
    } else {
        " is not in the read-only allowlist"
    }
}

/// Edits to the private copy's frame. Each rule contributes only fields it owns, or bits of a
/// mask, so merging never conflicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrites {
    /// Header flag bits to clear.
    pub clear_flags: u16,
    /// New header `sge_count`.
    pub hdr_sge_count: Option<u8>,
    /// New header `sense_len`.
    pub hdr_sense_len: Option<u8>,
    /// Frame bytes to zero: bit `i` is frame byte `i`.
    pub zero_frame_bytes: u128,
}

impl Rewrites {
    /// No edit.
    pub const NONE: Rewrites = Rewrites {
        clear_flags: 0,
        hdr_sge_count: None,
        hdr_sense_len: None,
        zero_frame_bytes: 0,
    };

    fn merge(&mut self, other: &Rewrites) {
        self.clear_flags |= other.clear_flags;
        self.hdr_sge_count = other.hdr_sge_count.or(self.hdr_sge_count);
        self.hdr_sense_len = other.hdr_sense_len.or(self.hdr_sense_len);
        self.zero_frame_bytes |= other.zero_frame_bytes;
    }

    /// Whether there is nothing to edit.
    pub fn is_empty(&self) -> bool {
        *self == Rewrites::NONE
    }
}

/// One rule that matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Which rule.
    pub rule: RuleId,
    /// What was done: the rule's action, or `Warn` when the policy downgraded it.
    pub action: Action,
    /// Whether the policy's allow list downgraded the rule.
    pub downgraded: bool,
    /// The offending values.
    pub detail: Detail,
}

/// The policy's decision about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    decision: Decision,
    enforced: bool,
    findings: [Option<Finding>; RULE_COUNT],
    rewrites: Rewrites,
}

/// Why a verdict could not be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// The buffer is shorter than a packet's frame.
    Short,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("buffer too short for the packet's frame")
    }
}

impl std::error::Error for ApplyError {}

impl Verdict {
    /// What happens to the call (in audit mode: what would happen).
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// Whether the guard acts on this verdict (false in audit mode).
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    /// Every rule that matched, in rule order.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().flatten()
    }

    /// The finding for one rule, if it matched.
    pub fn finding(&self, rule: RuleId) -> Option<&Finding> {
        self.findings().find(|f| f.rule == rule)
    }

    /// The edits a rewrite makes (empty unless the decision is `Rewrite`).
    pub fn rewrites(&self) -> &Rewrites {
        &self.rewrites
    }

    /// The header flags that reach the kernel, given the caller's.
    pub fn flags_sent(&self, flags: u16) -> u16 {
        flags & !self.rewrites.clear_flags
    }

    /// Applies the rewrites to a whole packet (either layout: the frame sits at the same place).
    pub fn apply(&self, packet: &mut [u8]) -> Result<(), ApplyError> {
        let frame_end = MEGASAS_IOC_FRAME_OFFSET.saturating_add(MEGASAS_IOC_FRAME_LEN);
        let frame = packet
            .get_mut(MEGASAS_IOC_FRAME_OFFSET..frame_end)
            .ok_or(ApplyError::Short)?;
        // Visits the set bits only: the guard calls this on every packet it lets through, and
        // most masks are empty.
        let mut zero = self.rewrites.zero_frame_bytes;
        while zero != 0 {
            let bit = zero.trailing_zeros();
            // Clears the lowest set bit (`zero & (zero - 1)` without the subtraction lint).
            zero &= !(1u128 << bit);
            if let Some(byte) = usize::try_from(bit).ok().and_then(|i| frame.get_mut(i)) {
                *byte = 0;
            }
        }
        let (hdr, _) = MfiHeader::mut_from_prefix(frame).map_err(|_| ApplyError::Short)?;
        if self.rewrites.clear_flags != 0 {
            hdr.flags.set(hdr.flags.get() & !self.rewrites.clear_flags);
        }
        if let Some(n) = self.rewrites.hdr_sge_count {
            hdr.sge_count = n;
        }
        if let Some(n) = self.rewrites.hdr_sense_len {
            hdr.sense_len = n;
        }
        Ok(())
    }
}

/// Decides about a decoded packet: runs every rule and combines the findings.
pub fn decide_packet(policy: &Policy, packet: &Packet) -> Verdict {
    let mut verdict = Verdict {
        decision: Decision::Pass,
        enforced: policy.mode == Mode::Enforce,
        findings: [None; RULE_COUNT],
        rewrites: Rewrites::NONE,
    };
    let mut reject: Option<Errno> = None;
    for (slot, rule) in verdict.findings.iter_mut().zip(RuleId::ALL) {
        if rule.is_readonly() && !policy.readonly {
            continue;
        }
        let Some(hit) = check(rule, packet) else {
            continue;
        };
        let downgraded = policy.allow.contains(rule) && rule.rule().action != Action::Warn;
        let action = if downgraded {
            Action::Warn
        } else {
            rule.rule().action
        };
        match action {
            Action::Reject => {
                reject = reject.or(rule.rule().errno);
            }
            Action::Rewrite => verdict.rewrites.merge(&hit.rewrites),
            Action::Warn => {}
        }
        *slot = Some(Finding {
            rule,
            action,
            downgraded,
            detail: hit.detail,
        });
    }
    verdict.decision = match reject {
        Some(errno) => Decision::Reject(errno),
        None if !verdict.rewrites.is_empty() => Decision::Rewrite,
        None => Decision::Pass,
    };
    if reject.is_some() {
        // Nothing is sent, so nothing is rewritten.
        verdict.rewrites = Rewrites::NONE;
    }
    verdict
}

/// Decodes `bytes` as a packet of layout `abi` and decides about it.
pub fn decide(policy: &Policy, abi: Abi, bytes: &[u8]) -> Result<Verdict, DecodeError> {
    decode(abi, bytes).map(|p| decide_packet(policy, &p))
}
