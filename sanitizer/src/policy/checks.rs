//! One check function a rule, and [`check`], which picks the rule's: each reads the decoded
//! packet and says what it found (and, for a rewrite, the edit). The table they implement is
//! [`RULES`](super::RULES).

use crate::abi::ioctl::MAX_IOCTL_SGE;
use crate::abi::mfi::{
    MfiCmd, MfiDirection, MfiFrameFlags, MFI_CMD_OP_COUNT, MFI_HEADER_SIZE, MFI_SGE64_SIZE,
};
use crate::decode::Packet;
use crate::firmware::{self, Layout};
use crate::readonly;
use crate::verdict::{Detail, DriverWrite, Rewrites};

use super::RuleId;

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
        RuleId::FrameDontPostFlag => dont_post_flag(p),
        RuleId::SglFixedEntryUnwritten => fixed_entry_unwritten(p),
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
            clear_flags: cleared,
            ..Rewrites::NONE
        },
    })
}

fn dont_post_flag(p: &Packet) -> Option<Hit> {
    let flags = p.header().flags.get();
    let cleared = flags & MfiFrameFlags::DONT_POST_IN_REPLY_QUEUE.bits();
    (cleared != 0).then_some(Hit {
        detail: Detail::DontPostFlag { flags },
        rewrites: Rewrites {
            clear_flags: cleared,
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

/// The non-zero caller bytes of entry `i`'s slot in an SGL at frame offset `sgl_at`, as a bit
/// per frame byte: the slot on a driver writing sge64 entries (12 bytes) and on one writing
/// sge32 entries (8 bytes: the legacy driver, or 6.1 without 64-bit DMA), since the firmware
/// reads whichever the driver writes. Only bytes inside the frame past the header count, and
/// never the sense pointer the kernel reads back after completion. Zeroing a byte that is a
/// written entry's on the other stride is harmless: the driver overwrites it.
fn caller_slot_bytes(p: &Packet, sgl_at: u32, i: usize) -> u128 {
    let sense_ptr = if p.sense_len > 0 {
        let start = p.sense_off as usize;
        start..start.saturating_add(SENSE_ADDR_LEN)
    } else {
        0..0
    };
    let mut mask = 0u128;
    for size in firmware::DRIVER_SGE_SIZES {
        // i < 16, so i * size < 192; sgl_at is a u32 and usize is at least 32 bits here, so
        // the saturating add only matters for absurd offsets, which then miss the frame.
        let start = (sgl_at as usize).saturating_add(i.saturating_mul(size));
        for offset in start..start.saturating_add(size) {
            if offset < MFI_HEADER_SIZE || sense_ptr.contains(&offset) {
                continue;
            }
            if p.frame.get(offset).is_some_and(|b| *b != 0) {
                mask |= 1u128 << offset;
            }
        }
    }
    mask
}

/// Frame byte offsets of used, empty entries' slots that still hold non-zero caller bytes,
/// as a bit per frame byte, and a bit per such entry.
fn stale_slot_bytes(p: &Packet) -> (u128, u16) {
    let mut mask = 0u128;
    let mut slots = 0u16;
    for (i, v) in p.used_iovecs().iter().enumerate() {
        if v.len != 0 {
            continue;
        }
        let bytes = caller_slot_bytes(p, p.sgl_off, i);
        if bytes != 0 {
            mask |= bytes;
            slots |= 1 << i;
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

/// SMP and STP frames: the slots of the entries their layout fixes that the driver writes no
/// entry for (at or past `sge_count`; the empty ones below it are `sgl.stale-entry`'s), at the
/// frame type's SGL offset, since the firmware reads there whatever `sgl_off` says.
fn fixed_entry_unwritten(p: &Packet) -> Option<Hit> {
    let view = p.cmd()?.firmware_view();
    let sgl_at = firmware_sgl_offset(p)?;
    let first = usize::try_from(p.sge_count).unwrap_or(usize::MAX);
    let mut mask = 0u128;
    let mut entries = 0u8;
    for i in first..usize::from(view.fixed_entries) {
        let bytes = caller_slot_bytes(p, sgl_at, i);
        if bytes != 0 {
            mask |= bytes;
            entries |= 1 << i;
        }
    }
    (mask != 0).then_some(Hit {
        detail: Detail::FixedEntryUnwritten {
            cmd: p.header().cmd,
            entries,
            sge_count: p.sge_count,
        },
        rewrites: Rewrites {
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

/// An allowlist of frames, and a second line: every frame it refuses is refused first by
/// `frame.cmd-forbidden` (INIT, LD read/write, ABORT), `frame.layout-unknown` (NVMe, toolbox)
/// or `frame.cmd` (codes past the known ones), and it decides alone only when one of those is
/// allowed (`--allow frame.layout-unknown` for a tool that needs NVMe frames).
fn readonly_cmd(p: &Packet) -> Option<Hit> {
    match p.cmd() {
        Some(MfiCmd::Dcmd | MfiCmd::LdScsiIo | MfiCmd::PdScsiIo | MfiCmd::Stp | MfiCmd::Smp) => {
            None
        }
        Some(
            MfiCmd::Init
            | MfiCmd::LdRead
            | MfiCmd::LdWrite
            | MfiCmd::Abort
            | MfiCmd::Nvme
            | MfiCmd::Toolbox,
        )
        | None => Hit::note(Detail::ReadonlyCmd {
            cmd: p.header().cmd,
        }),
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
