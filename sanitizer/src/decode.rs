//! Decoding: bytes of either packet layout into one owned, layout-independent [`Packet`].
//!
//! Decoding checks only that the input is long enough. Everything else, however absurd, is
//! representable, because the policy must see and name it.

use core::fmt;
use zerocopy::{FromBytes, FromZeros};

use crate::abi::ioctl::{Abi, CompatMegasasIocPacket, MegasasIocPacket, MAX_IOCTL_SGE};
use crate::abi::ioctl::{MEGASAS_IOC_FRAME_LEN, MEGASAS_IOC_FRAME_OFFSET};
use crate::abi::mfi::{MfiCmd, MfiDcmdFrame, MfiHeader, MfiPthruFrame, MfiStpFrame};

/// Why bytes could not be decoded as a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the layout's packet size.
    Short {
        /// The layout's size.
        needed: usize,
        /// What was given.
        got: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short { needed, got } => {
                write!(f, "packet is {got} bytes, the layout needs {needed}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// One `sgl[]` entry, widened to 64 bits whatever the layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoVec {
    /// `iov_base`.
    pub base: u64,
    /// `iov_len`.
    pub len: u64,
}

/// A decoded `megasas_iocpacket`: the packet's fields, its frame bytes and its iovecs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The layout it was decoded from.
    pub abi: Abi,
    /// Controller index.
    pub host_no: u16,
    /// Offset in the frame of the SGL the driver writes.
    pub sgl_off: u32,
    /// Entries of `sgl[]` in use, as the caller claims.
    pub sge_count: u32,
    /// Offset in the frame of the sense address the driver writes.
    pub sense_off: u32,
    /// Sense buffer length.
    pub sense_len: u32,
    /// The two MFI frames.
    pub frame: [u8; MEGASAS_IOC_FRAME_LEN],
    /// All sixteen `sgl[]` entries.
    pub sgl: [IoVec; MAX_IOCTL_SGE],
    /// For SMP frames: the first bytes of the request (`sgl[1]`, in the caller's memory:
    /// frame type and function), when whoever decoded the packet could read them. The
    /// read-only policy refuses an SMP frame whose request it has not seen.
    pub smp_request: Option<[u8; SMP_REQUEST_HEAD_LEN]>,
}

/// Bytes of an SMP request the read-only policy looks at: frame type, function, and two more
/// so that a truncated request is recognised.
pub const SMP_REQUEST_HEAD_LEN: usize = 4;

/// Index of the SMP request in `sgl[]` (entry 0 is the response).
pub const SMP_REQUEST_SGE_INDEX: usize = 1;

/// Decodes the first `abi.packet_size()` bytes of `bytes`; extra bytes are ignored.
pub fn decode(abi: Abi, bytes: &[u8]) -> Result<Packet, DecodeError> {
    let short = || DecodeError::Short {
        needed: abi.packet_size(),
        got: bytes.len(),
    };
    match abi {
        Abi::Lp64 => {
            let (p, _) = MegasasIocPacket::ref_from_prefix(bytes).map_err(|_| short())?;
            Ok(Packet {
                abi,
                host_no: p.host_no.get(),
                sgl_off: p.sgl_off.get(),
                sge_count: p.sge_count.get(),
                sense_off: p.sense_off.get(),
                sense_len: p.sense_len.get(),
                frame: p.frame,
                sgl: p.sgl.map(|v| IoVec {
                    base: v.iov_base.get(),
                    len: v.iov_len.get(),
                }),
                smp_request: None,
            })
        }
        Abi::Ilp32 => {
            let (p, _) = CompatMegasasIocPacket::ref_from_prefix(bytes).map_err(|_| short())?;
            Ok(Packet {
                abi,
                host_no: p.host_no.get(),
                sgl_off: p.sgl_off.get(),
                sge_count: p.sge_count.get(),
                sense_off: p.sense_off.get(),
                sense_len: p.sense_len.get(),
                frame: p.frame,
                sgl: p.sgl.map(|v| IoVec {
                    base: u64::from(v.iov_base.get()),
                    len: u64::from(v.iov_len.get()),
                }),
                smp_request: None,
            })
        }
    }
}

impl Packet {
    /// The frame header.
    pub fn header(&self) -> MfiHeader {
        // The frame (128 bytes) is longer than the header (0x18): this cannot fail.
        MfiHeader::read_from_prefix(&self.frame)
            .map(|(h, _)| h)
            .unwrap_or_else(|_| MfiHeader::new_zeroed())
    }

    /// The frame's command, if its code is a known one.
    pub fn cmd(&self) -> Option<MfiCmd> {
        MfiCmd::from_u8(self.header().cmd)
    }

    /// The entries the driver will look at: the first `min(sge_count, 16)`.
    pub fn used_iovecs(&self) -> &[IoVec] {
        let used = usize::try_from(self.sge_count).map_or(MAX_IOCTL_SGE, |n| n.min(MAX_IOCTL_SGE));
        self.sgl.get(..used).unwrap_or(&self.sgl)
    }

    /// Sum of the used entries' lengths (saturating: it is compared against limits).
    pub fn used_bytes(&self) -> u64 {
        self.used_iovecs()
            .iter()
            .fold(0u64, |sum, v| sum.saturating_add(v.len))
    }

    /// The DCMD opcode, for DCMD frames.
    pub fn dcmd_opcode(&self) -> Option<u32> {
        self.dcmd_frame().map(|f| f.opcode.get())
    }

    /// The DCMD view of the frame, for DCMD frames.
    pub fn dcmd_frame(&self) -> Option<MfiDcmdFrame> {
        if self.cmd() != Some(MfiCmd::Dcmd) {
            return None;
        }
        MfiDcmdFrame::read_from_prefix(&self.frame)
            .ok()
            .map(|(f, _)| f)
    }

    /// The pass-through view (LD/PD SCSI I/O), whose CDB the read-only policy inspects.
    pub fn pthru_frame(&self) -> Option<MfiPthruFrame> {
        match self.cmd() {
            Some(MfiCmd::LdScsiIo | MfiCmd::PdScsiIo) => {
                MfiPthruFrame::read_from_prefix(&self.frame)
                    .ok()
                    .map(|(f, _)| f)
            }
            _ => None,
        }
    }

    /// The STP view, whose FIS the read-only policy inspects.
    pub fn stp_frame(&self) -> Option<MfiStpFrame> {
        if self.cmd() != Some(MfiCmd::Stp) {
            return None;
        }
        MfiStpFrame::read_from_prefix(&self.frame)
            .ok()
            .map(|(f, _)| f)
    }

    /// The 64-bit little-endian value at a frame offset, or `None` past the frame.
    pub fn frame_u64(&self, offset: usize) -> Option<u64> {
        let end = offset.checked_add(8)?;
        let bytes: [u8; 8] = self.frame.get(offset..end)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    /// For SMP frames, the `sgl[]` entry holding the request whose head the read-only policy
    /// needs in [`Packet::smp_request`].
    pub fn smp_request_iovec(&self) -> Option<IoVec> {
        if self.cmd() != Some(MfiCmd::Smp) {
            return None;
        }
        self.used_iovecs().get(SMP_REQUEST_SGE_INDEX).copied()
    }

    /// Offset of the frame inside the packet, for tools that patch raw packet bytes.
    pub const FRAME_OFFSET: usize = MEGASAS_IOC_FRAME_OFFSET;
}
