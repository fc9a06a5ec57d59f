//! The private call of the copying strategy: a native `megasas_iocpacket` (the declared
//! [`MegasasIocPacket`]) whose every user pointer points at a buffer this value owns, holding
//! private copies of the caller's data and sense buffers.

use std::ffi::c_int;

use mfiguard_sanitizer::abi::ioctl::{Iovec, MegasasIocPacket, MAX_IOCTL_SGE};
use mfiguard_sanitizer::abi::mfi::MFI_CMD_STATUS_OFFSET;
use mfiguard_sanitizer::decode::IoVec;
use mfiguard_sanitizer::policy::{SENSE_LEN_MAX, SGE_LEN_MAX, SGE_TOTAL_MAX};
use mfiguard_sanitizer::{Abi, Packet};
use zerocopy::byteorder::native_endian::{U16, U32, U64};
use zerocopy::{FromZeros, IntoBytes};

use super::caller::Caller;
use crate::audit::GuardIssue;

/// Size of the native (x86_64) packet the driver is handed.
pub const NATIVE_PACKET_SIZE: usize = Abi::Lp64.packet_size();
/// Size of `struct megasas_aen`.
pub const AEN_SIZE: usize = 12;
/// The caller's `cmd_status` byte: frame byte 2, at the same offset in both layouts.
pub const CMD_STATUS: usize = std::mem::offset_of!(MegasasIocPacket, frame) + MFI_CMD_STATUS_OFFSET;
const _: () = assert!(CMD_STATUS == 0x16);

/// A packet and the private buffers it points at, built only by [`PrivateCall::build`]: every
/// address in `packet` (the used `sgl[]` entries, the sense pointer) is the address of one of
/// `bufs` or of `sense`, so a driver handed `as_mut_ptr()` writes only into memory this value
/// owns. The buffers are never resized after the addresses are taken.
pub struct PrivateCall {
    packet: MegasasIocPacket,
    bufs: Vec<Vec<u8>>,
    /// For each buffer, its caller's address.
    caller_addrs: Vec<u64>,
    sense: Vec<u8>,
    /// Where the caller wants the sense data.
    caller_sense: Option<u64>,
}

impl PrivateCall {
    /// The native packet to hand to `ioctl(MEGASAS_IOC_FIRMWARE)`.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.packet.as_mut_bytes().as_mut_ptr()
    }

    /// The packet bytes (for tests and records).
    pub fn packet(&self) -> &[u8; NATIVE_PACKET_SIZE] {
        let bytes: &[u8] = self.packet.as_bytes();
        // A MegasasIocPacket is NATIVE_PACKET_SIZE bytes (pinned in the sanitizer).
        bytes.try_into().unwrap_or(&[0; NATIVE_PACKET_SIZE])
    }

    /// The private data buffers, in `sgl[]` order (empty for entries of length 0), and the
    /// sense buffer: what a driver may write (for tests and the fuzz target).
    pub fn buffers_mut(&mut self) -> (&mut [Vec<u8>], &mut [u8]) {
        (&mut self.bufs, &mut self.sense)
    }

    /// The private data buffers (for the read-only policy's look at the SMP request).
    pub(crate) fn buffer(&self, index: usize) -> Option<&[u8]> {
        self.bufs.get(index).map(Vec::as_slice)
    }

    /// How many bytes of private buffers it holds (data and sense).
    pub(crate) fn held_bytes(&self) -> usize {
        self.bufs
            .iter()
            .map(Vec::len)
            .fold(self.sense.len(), usize::saturating_add)
    }

    /// The `cmd_status` byte of the private packet.
    pub(crate) fn status(&self) -> u8 {
        self.packet.frame[MFI_CMD_STATUS_OFFSET]
    }

    /// Copies the caller's buffers in and lays out the native packet: `frame` is the frame to
    /// send (rewrites applied, or unmodified in audit mode).
    pub(crate) fn build(
        caller: &impl Caller,
        p: &Packet,
        frame: &[u8; 128],
        plan: &Plan,
    ) -> Result<PrivateCall, GuardIssue> {
        let mut call = PrivateCall {
            packet: MegasasIocPacket::new_zeroed(),
            bufs: Vec::with_capacity(plan.used),
            caller_addrs: Vec::with_capacity(plan.used),
            sense: Vec::new(),
            caller_sense: None,
        };
        let packet = &mut call.packet;
        packet.host_no = U16::new(p.host_no);
        packet.sgl_off = U32::new(p.sgl_off);
        packet.sge_count = U32::new(p.sge_count);
        packet.sense_off = U32::new(p.sense_off);
        packet.sense_len = U32::new(p.sense_len);
        packet.frame = *frame;
        for iov in p.sgl.iter().take(plan.used) {
            let mut buf = Vec::new();
            if iov.len > 0 {
                // Bounded by `plan` (at most SGE_LEN_MAX each).
                let len = usize::try_from(iov.len).map_err(|_| GuardIssue::Unsupported)?;
                buf = vec![0u8; len];
                caller
                    .read(iov.base, &mut buf)
                    .map_err(|_| GuardIssue::BufferFault {
                        addr: iov.base,
                        len: iov.len,
                    })?;
            }
            call.bufs.push(buf);
            call.caller_addrs.push(iov.base);
        }
        if let Some((at, user)) = plan.sense {
            call.sense = vec![0u8; p.sense_len as usize];
            call.caller_sense = Some(user);
            let addr = call.sense.as_mut_ptr() as u64;
            call.set_sense_pointer(at, addr);
        }
        for (slot, buf) in call.packet.sgl.iter_mut().zip(call.bufs.iter_mut()) {
            let (base, len) = if buf.is_empty() {
                (0, 0)
            } else {
                (buf.as_mut_ptr() as u64, buf.len() as u64)
            };
            *slot = Iovec {
                iov_base: U64::new(base),
                iov_len: U64::new(len),
            };
        }
        Ok(call)
    }

    /// Writes the 8-byte sense pointer the driver reads at frame offset `at` (checked inside the
    /// frame by `plan`).
    fn set_sense_pointer(&mut self, at: usize, addr: u64) {
        if let Some(slot) = self.packet.frame.get_mut(at..at.saturating_add(8)) {
            slot.copy_from_slice(&addr.to_le_bytes());
        }
    }

    fn sense_pointer(&self, at: usize) -> Option<[u8; 8]> {
        self.packet
            .frame
            .get(at..at.saturating_add(8))?
            .try_into()
            .ok()
    }

    /// Replaces the frame (after the verdict's rewrites), keeping the sense pointer the plan
    /// placed in it.
    pub(crate) fn set_frame(&mut self, frame: &[u8; 128], plan: &Plan) {
        let sense = plan
            .sense
            .and_then(|(at, _)| Some((at, self.sense_pointer(at)?)));
        self.packet.frame = *frame;
        if let Some((at, ptr)) = sense {
            self.set_sense_pointer(at, u64::from_le_bytes(ptr));
        }
    }

    /// Copies back what the driver wrote, in its order: data buffers, sense, `cmd_status`.
    /// On failure, the buffer and the caller's errno (`ESRCH`: the call is no longer pending).
    pub(crate) fn copy_back(
        &self,
        caller: &impl Caller,
        status_at: u64,
    ) -> Result<(), (GuardIssue, c_int)> {
        let write = |addr: u64, data: &[u8]| {
            caller.write(addr, data).map_err(|e| {
                let len = data.len() as u64;
                (GuardIssue::BufferFault { addr, len }, e)
            })
        };
        for (buf, &addr) in self.bufs.iter().zip(&self.caller_addrs) {
            if !buf.is_empty() {
                write(addr, buf)?;
            }
        }
        if let Some(addr) = self.caller_sense {
            write(addr, &self.sense)?;
        }
        write(status_at, &[self.status()])
    }
}

/// Which of the caller's buffers a private call copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `sgl[..used]` are copied (entries of length 0 stay empty).
    pub used: usize,
    /// The sense pointer's frame offset and the caller's sense buffer, when `sense_len != 0`.
    pub sense: Option<(usize, u64)>,
}

/// What a private call would copy, or `None` when it cannot be made within the rules' limits
/// (`sge.length`, `sense.length`) or the sense pointer is not inside the frame.
pub fn plan(p: &Packet) -> Option<Plan> {
    let used = p.used_iovecs();
    let mut total = 0u64;
    for v in used {
        if v.len > SGE_LEN_MAX {
            return None;
        }
        total = total.checked_add(v.len)?;
    }
    if total > SGE_TOTAL_MAX {
        return None;
    }
    let sense = if p.sense_len == 0 {
        None
    } else {
        if p.sense_len > SENSE_LEN_MAX {
            return None;
        }
        let at = usize::try_from(p.sense_off).ok()?;
        // The driver reads (and the private packet gets) an 8-byte pointer there.
        if at.checked_add(8)? > p.frame.len() {
            return None;
        }
        let user = match p.abi {
            Abi::Lp64 => p.frame_u64(at)?,
            Abi::Ilp32 => {
                let b: [u8; 4] = p.frame.get(at..at + 4)?.try_into().ok()?;
                u64::from(u32::from_le_bytes(b))
            }
        };
        Some((at, user))
    };
    Some(Plan {
        used: used.len(),
        sense,
    })
}

/// The `sgl[]` entries of a native private packet (for tests).
pub fn private_iovecs(packet: &[u8; NATIVE_PACKET_SIZE]) -> Vec<IoVec> {
    let Ok(p) = zerocopy::FromBytes::ref_from_bytes(&packet[..]) else {
        return Vec::new();
    };
    let p: &MegasasIocPacket = p;
    p.sgl
        .iter()
        .take(MAX_IOCTL_SGE)
        .map(|v| IoVec {
            base: v.iov_base.get(),
            len: v.iov_len.get(),
        })
        .collect()
}
