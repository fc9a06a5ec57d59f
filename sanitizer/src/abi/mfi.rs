//! `MFI_*` / `MR_*`: the MFI frames the packet carries to the firmware, as declared in Linux's
//! `megaraid_sas.h` (`struct megasas_header`, `megasas_dcmd_frame`, `megasas_pthru_frame`, ...).
//!
//! Frames are little-endian. Each frame type is declared up to the start of its
//! scatter/gather list, so `size_of` of the struct *is* the SGL offset a well-formed packet uses.

use core::fmt;
use core::mem::size_of;
use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `struct megasas_header`: the first 0x18 bytes of every frame.
#[doc(alias = "megasas_header")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MfiHeader {
    /// Command code, see [`MfiCmd`]. // 0x00
    pub cmd: u8,
    /// Sense buffer length the firmware may fill. // 0x01
    pub sense_len: u8,
    /// Completion status, written by the firmware. // 0x02
    pub cmd_status: u8,
    /// SCSI status of pass-through commands. // 0x03
    pub scsi_status: u8,
    /// Target (device or volume) id. // 0x04
    pub target_id: u8,
    /// Logical unit. // 0x05
    pub lun: u8,
    /// CDB length of pass-through commands. // 0x06
    pub cdb_len: u8,
    /// Scatter/gather entries the firmware reads. // 0x07
    pub sge_count: u8,
    /// Overwritten by the driver. // 0x08
    pub context: U32,
    /// Zeroed by the driver. // 0x0C
    pub pad_0: U32,
    /// [`MfiFrameFlags`] and the [`MfiDirection`] bits. // 0x10
    pub flags: U16,
    /// Timeout in seconds. // 0x12
    pub timeout: U16,
    /// Bytes the firmware transfers. // 0x14
    pub data_xferlen: U32,
}

/// Size of [`MfiHeader`]: no driver-written offset may point inside it.
pub const MFI_HEADER_SIZE: usize = size_of::<MfiHeader>();
/// Offset of `cmd_status` in the frame: the one byte the kernel writes back to the caller.
pub const MFI_CMD_STATUS_OFFSET: usize = 0x02;
/// Offset of the header's `flags`.
pub const MFI_FLAGS_OFFSET: usize = 0x10;

/// `struct megasas_dcmd_frame` up to its SGL (0x28).
#[doc(alias = "megasas_dcmd_frame")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MfiDcmdFrame {
    /// The common header. // 0x00
    pub hdr: MfiHeader,
    /// DCMD opcode, e.g. [`MR_DCMD_CTRL_GET_INFO`]. // 0x18
    pub opcode: U32,
    /// Opcode arguments. // 0x1C
    pub mbox: [u8; 12],
}

/// `struct megasas_pthru_frame` (LD/PD SCSI pass-through) up to its SGL (0x30).
#[doc(alias = "megasas_pthru_frame")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MfiPthruFrame {
    /// The common header. // 0x00
    pub hdr: MfiHeader,
    /// Sense buffer physical address, low half. // 0x18
    pub sense_buf_phys_addr_lo: U32,
    /// Sense buffer physical address, high half. // 0x1C
    pub sense_buf_phys_addr_hi: U32,
    /// The SCSI command block. // 0x20
    pub cdb: [u8; 16],
}

/// `struct megasas_io_frame` (LD read/write) up to its SGL (0x28).
#[doc(alias = "megasas_io_frame")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MfiIoFrame {
    /// The common header. // 0x00
    pub hdr: MfiHeader,
    /// Sense buffer physical address, low half. // 0x18
    pub sense_buf_phys_addr_lo: U32,
    /// Sense buffer physical address, high half. // 0x1C
    pub sense_buf_phys_addr_hi: U32,
    /// First block, low half. // 0x20
    pub start_lba_lo: U32,
    /// First block, high half. // 0x24
    pub start_lba_hi: U32,
}

/// `struct megasas_smp_frame` up to its SGL (0x20): entry 0 is the response, 1 the request.
#[doc(alias = "megasas_smp_frame")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MfiSmpFrame {
    /// The common header. // 0x00
    pub hdr: MfiHeader,
    /// SAS address of the expander. // 0x18
    pub sas_addr: U64,
}

/// `struct megasas_stp_frame` up to its SGL (0x30): entry 0 is the 20-byte response FIS,
/// entry 1 the data.
#[doc(alias = "megasas_stp_frame")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MfiStpFrame {
    /// The common header. // 0x00
    pub hdr: MfiHeader,
    /// The host-to-device register FIS (20 bytes). // 0x18
    pub fis: [u8; 20],
    /// STP flags. // 0x2C
    pub stp_flags: U32,
}

/// `struct megasas_sge32`.
pub const MFI_SGE32_SIZE: usize = 8;
/// `struct megasas_sge64`: the widest entry the driver writes into an ioctl frame.
pub const MFI_SGE64_SIZE: usize = 12;
/// `struct megasas_sge_skinny`: what the firmware reads when `MFI_FRAME_IEEE` is set.
pub const MFI_SGE_SKINNY_SIZE: usize = 16;

const _: () = assert!(MFI_HEADER_SIZE == 0x18);
const _: () = assert!(size_of::<MfiDcmdFrame>() == 0x28);
const _: () = assert!(size_of::<MfiPthruFrame>() == 0x30);
const _: () = assert!(size_of::<MfiIoFrame>() == 0x28);
const _: () = assert!(size_of::<MfiSmpFrame>() == 0x20);
const _: () = assert!(size_of::<MfiStpFrame>() == 0x30);

/// `MFI_STAT_INVALID_STATUS`: the status the driver leaves in a frame the firmware has not
/// completed (`MFI_CMD_STATUS_POLL_MODE`), and what tools put there before a call.
pub const MFI_STAT_INVALID_STATUS: u8 = 0xFF;

bitflags::bitflags! {
    /// `MFI_FRAME_*` flags in the header (the direction bits are [`MfiDirection`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MfiFrameFlags: u16 {
        /// `MFI_FRAME_DONT_POST_IN_REPLY_QUEUE`.
        const DONT_POST_IN_REPLY_QUEUE = 0x0001;
        /// `MFI_FRAME_SGL64`: entries are `sge64`.
        const SGL64 = 0x0002;
        /// `MFI_FRAME_SENSE64`: the sense address is 64-bit.
        const SENSE64 = 0x0004;
        /// `MFI_FRAME_IEEE`: entries are `sge_skinny` (the seed's flag).
        const IEEE = 0x0020;
    }
}

impl MfiFrameFlags {
    /// The three flags that tell the firmware how to read addresses the driver wrote:
    /// only the driver may choose them (the 2012 upstream fix clears them all).
    pub const ADDRESSING: MfiFrameFlags = MfiFrameFlags::SGL64
        .union(MfiFrameFlags::SENSE64)
        .union(MfiFrameFlags::IEEE);
}

const _: () = assert!(MfiFrameFlags::ADDRESSING.bits() == 0x0026);

/// The two-bit data direction in the header's flags (`MFI_FRAME_DIR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MfiDirection {
    /// `MFI_FRAME_DIR_NONE`.
    None,
    /// `MFI_FRAME_DIR_WRITE`: data goes to the controller.
    Write,
    /// `MFI_FRAME_DIR_READ`: data comes from the controller.
    Read,
    /// `MFI_FRAME_DIR_BOTH`.
    Both,
}

/// Mask of the direction bits in the flags.
pub const MFI_FRAME_DIR_MASK: u16 = 0x0018;

impl MfiDirection {
    /// The direction encoded in a flags word.
    pub const fn from_flags(flags: u16) -> MfiDirection {
        match flags & MFI_FRAME_DIR_MASK {
            0x0008 => MfiDirection::Write,
            0x0010 => MfiDirection::Read,
            0x0018 => MfiDirection::Both,
            _ => MfiDirection::None,
        }
    }

    /// Its bits in a flags word (`MFI_FRAME_DIR_*`).
    pub const fn bits(self) -> u16 {
        match self {
            MfiDirection::None => 0x0000,
            MfiDirection::Write => 0x0008,
            MfiDirection::Read => 0x0010,
            MfiDirection::Both => 0x0018,
        }
    }

    /// The kernel's name.
    pub const fn name(self) -> &'static str {
        match self {
            MfiDirection::None => "DIR_NONE",
            MfiDirection::Write => "DIR_WRITE",
            MfiDirection::Read => "DIR_READ",
            MfiDirection::Both => "DIR_BOTH",
        }
    }

    /// Whether data flows to the controller.
    pub const fn writes(self) -> bool {
        matches!(self, MfiDirection::Write | MfiDirection::Both)
    }
}

/// A header flags word, displayed by name: `IEEE|SGL64|DIR_READ`, unknown bits in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagsDisplay(pub u16);

impl fmt::Display for FlagsDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            if !first {
                f.write_str("|")?;
            }
            first = false;
            Ok(())
        };
        // IEEE first: it is the one that matters most when reading a log.
        for (name, flag) in [
            ("IEEE", MfiFrameFlags::IEEE),
            ("SGL64", MfiFrameFlags::SGL64),
            ("SENSE64", MfiFrameFlags::SENSE64),
            (
                "DONT_POST_IN_REPLY_QUEUE",
                MfiFrameFlags::DONT_POST_IN_REPLY_QUEUE,
            ),
        ] {
            if self.0 & flag.bits() != 0 {
                sep(f)?;
                f.write_str(name)?;
            }
        }
        let direction = MfiDirection::from_flags(self.0);
        if direction != MfiDirection::None {
            sep(f)?;
            f.write_str(direction.name())?;
        }
        let unknown = self.0 & !(MfiFrameFlags::all().bits() | MFI_FRAME_DIR_MASK);
        if unknown != 0 {
            sep(f)?;
            write!(f, "{unknown:#06x}")?;
        }
        if first {
            f.write_str("0")?;
        }
        Ok(())
    }
}

/// `MFI_CMD_*`: the frame's command code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MfiCmd {
    /// `MFI_CMD_INIT`: firmware (re)initialisation with a queue physical address.
    Init = 0x00,
    /// `MFI_CMD_LD_READ`.
    LdRead = 0x01,
    /// `MFI_CMD_LD_WRITE`.
    LdWrite = 0x02,
    /// `MFI_CMD_LD_SCSI_IO`: SCSI pass-through to a logical drive.
    LdScsiIo = 0x03,
    /// `MFI_CMD_PD_SCSI_IO`: SCSI pass-through to a physical drive.
    PdScsiIo = 0x04,
    /// `MFI_CMD_DCMD`: a direct controller command.
    Dcmd = 0x05,
    /// `MFI_CMD_ABORT`: abort a frame by its physical address.
    Abort = 0x06,
    /// `MFI_CMD_SMP`: SAS management protocol to an expander.
    Smp = 0x07,
    /// `MFI_CMD_STP`: SATA tunnelling to a SATA disk.
    Stp = 0x08,
    /// `MFI_CMD_NVME`.
    Nvme = 0x09,
    /// `MFI_CMD_TOOLBOX`.
    Toolbox = 0x0A,
}

/// `MFI_CMD_OP_COUNT`: command codes at or above it are unknown.
pub const MFI_CMD_OP_COUNT: u8 = 0x0B;

impl MfiCmd {
    /// The command for a code, if it is a known one.
    pub const fn from_u8(code: u8) -> Option<MfiCmd> {
        Some(match code {
            0x00 => MfiCmd::Init,
            0x01 => MfiCmd::LdRead,
            0x02 => MfiCmd::LdWrite,
            0x03 => MfiCmd::LdScsiIo,
            0x04 => MfiCmd::PdScsiIo,
            0x05 => MfiCmd::Dcmd,
            0x06 => MfiCmd::Abort,
            0x07 => MfiCmd::Smp,
            0x08 => MfiCmd::Stp,
            0x09 => MfiCmd::Nvme,
            0x0A => MfiCmd::Toolbox,
            _ => return None,
        })
    }

    /// The kernel's name without the `MFI_CMD_` prefix, as the audit log prints it.
    pub const fn name(self) -> &'static str {
        match self {
            MfiCmd::Init => "INIT",
            MfiCmd::LdRead => "LD_READ",
            MfiCmd::LdWrite => "LD_WRITE",
            MfiCmd::LdScsiIo => "LD_SCSI_IO",
            MfiCmd::PdScsiIo => "PD_SCSI_IO",
            MfiCmd::Dcmd => "DCMD",
            MfiCmd::Abort => "ABORT",
            MfiCmd::Smp => "SMP",
            MfiCmd::Stp => "STP",
            MfiCmd::Nvme => "NVME",
            MfiCmd::Toolbox => "TOOLBOX",
        }
    }

    /// Where a well-formed packet puts this frame's scatter/gather list; `None` for frames
    /// that have none (INIT, ABORT) or whose layout is not declared here (NVME, TOOLBOX).
    pub const fn sgl_offset(self) -> Option<u32> {
        // The frame structs end where their SGL starts; each size is pinned above.
        match self {
            MfiCmd::Dcmd => Some(size_of::<MfiDcmdFrame>() as u32),
            MfiCmd::LdScsiIo | MfiCmd::PdScsiIo => Some(size_of::<MfiPthruFrame>() as u32),
            MfiCmd::LdRead | MfiCmd::LdWrite => Some(size_of::<MfiIoFrame>() as u32),
            MfiCmd::Smp => Some(size_of::<MfiSmpFrame>() as u32),
            MfiCmd::Stp => Some(size_of::<MfiStpFrame>() as u32),
            MfiCmd::Init | MfiCmd::Abort | MfiCmd::Nvme | MfiCmd::Toolbox => None,
        }
    }

    /// LD/PD I/O and pass-through frames: they carry a sense physical address at 0x18.
    pub const fn has_sense_phys_addr(self) -> bool {
        matches!(
            self,
            MfiCmd::LdRead | MfiCmd::LdWrite | MfiCmd::LdScsiIo | MfiCmd::PdScsiIo
        )
    }
}

/// A command code displayed by name, or in hex when unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdDisplay(pub u8);

impl fmt::Display for CmdDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match MfiCmd::from_u8(self.0) {
            Some(cmd) => f.write_str(cmd.name()),
            None => write!(f, "{:#04x}", self.0),
        }
    }
}

/// `MR_DCMD_CTRL_GET_INFO`.
pub const MR_DCMD_CTRL_GET_INFO: u32 = 0x0101_0000;
/// `MR_DCMD_CTRL_EVENT_GET_INFO`.
pub const MR_DCMD_CTRL_EVENT_GET_INFO: u32 = 0x0104_0100;
/// `MR_DCMD_CTRL_EVENT_GET`.
pub const MR_DCMD_CTRL_EVENT_GET: u32 = 0x0104_0300;
/// `MR_DCMD_CTRL_EVENT_WAIT`.
pub const MR_DCMD_CTRL_EVENT_WAIT: u32 = 0x0104_0500;
/// `MR_DCMD_CTRL_SHUTDOWN`.
pub const MR_DCMD_CTRL_SHUTDOWN: u32 = 0x0105_0000;
/// `MR_DCMD_CTRL_CACHE_FLUSH`.
pub const MR_DCMD_CTRL_CACHE_FLUSH: u32 = 0x0110_1000;
/// `MR_DCMD_PD_GET_LIST`.
pub const MR_DCMD_PD_GET_LIST: u32 = 0x0201_0000;
/// `MR_DCMD_PD_LIST_QUERY`.
pub const MR_DCMD_PD_LIST_QUERY: u32 = 0x0201_0100;
/// `MR_DCMD_PD_GET_INFO`.
pub const MR_DCMD_PD_GET_INFO: u32 = 0x0202_0000;
/// `MR_DCMD_LD_GET_LIST`.
pub const MR_DCMD_LD_GET_LIST: u32 = 0x0301_0000;
/// `MR_DCMD_LD_LIST_QUERY`.
pub const MR_DCMD_LD_LIST_QUERY: u32 = 0x0301_0100;
/// `MR_DCMD_LD_GET_PROPERTIES`.
pub const MR_DCMD_LD_GET_PROPERTIES: u32 = 0x0303_0000;
/// `MR_DCMD_CTRL_SHARED_HOST_MEM_ALLOC` (`megaraid_sas_fusion.h`): SR-IOV heartbeat memory.
pub const MR_DCMD_CTRL_SHARED_HOST_MEM_ALLOC: u32 = 0x010e_8485;
/// `MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS`: the firmware's crash-dump buffer.
pub const MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS: u32 = 0x0119_0100;
/// `MR_DCMD_SYSTEM_PD_MAP_GET_INFO` (`megaraid_sas_fusion.h`): the JBOD sequence map.
pub const MR_DCMD_SYSTEM_PD_MAP_GET_INFO: u32 = 0x0200_e102;
/// `MR_DCMD_LD_MAP_GET_INFO` (`megaraid_sas_fusion.h`): the RAID map.
pub const MR_DCMD_LD_MAP_GET_INFO: u32 = 0x0300_e101;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_display_by_name() {
        assert_eq!(FlagsDisplay(0x0032).to_string(), "IEEE|SGL64|DIR_READ");
        assert_eq!(FlagsDisplay(0x0010).to_string(), "DIR_READ");
        assert_eq!(FlagsDisplay(0).to_string(), "0");
        assert_eq!(FlagsDisplay(0x8018).to_string(), "DIR_BOTH|0x8000");
    }

    #[test]
    fn command_codes_round_trip() {
        for code in 0..=u8::MAX {
            match MfiCmd::from_u8(code) {
                Some(cmd) => assert_eq!(cmd as u8, code),
                None => assert!(code >= MFI_CMD_OP_COUNT),
            }
        }
        assert_eq!(MfiCmd::Stp.sgl_offset(), Some(0x30));
        assert_eq!(MfiCmd::Smp.sgl_offset(), Some(0x20));
        assert_eq!(CmdDisplay(0x42).to_string(), "0x42");
    }
}
