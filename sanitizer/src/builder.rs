//! Building packets from fields: for tests, fuzz seeds and the example clients.
//!
//! The builder writes the same wire structs the decoder reads, in either layout. Addresses are
//! plain integers; a real client passes its buffers' addresses, a test passes made-up ones.

use zerocopy::byteorder::little_endian as le;
use zerocopy::byteorder::native_endian as ne;
use zerocopy::{FromBytes, IntoBytes};

use crate::abi::ioctl::{Abi, CompatIovec, CompatMegasasIocPacket, Iovec, MegasasIocPacket};
use crate::abi::mfi::{MfiCmd, MfiFrameFlags, MfiHeader};

/// A packet under construction, always a whole packet of its layout.
#[derive(Clone, Debug)]
pub struct PacketBuilder {
    abi: Abi,
    bytes: Vec<u8>,
}

impl PacketBuilder {
    /// An all-zero packet of this layout.
    pub fn new(abi: Abi) -> PacketBuilder {
        PacketBuilder {
            abi,
            bytes: vec![0; abi.packet_size()],
        }
    }

    /// The layout being built.
    pub fn abi(&self) -> Abi {
        self.abi
    }

    fn lp64(&mut self) -> Option<&mut MegasasIocPacket> {
        MegasasIocPacket::mut_from_bytes(&mut self.bytes).ok()
    }

    fn ilp32(&mut self) -> Option<&mut CompatMegasasIocPacket> {
        CompatMegasasIocPacket::mut_from_bytes(&mut self.bytes).ok()
    }

    fn set_fields(
        &mut self,
        f: impl Fn(&mut ne::U16, &mut ne::U32, &mut ne::U32, &mut ne::U32, &mut ne::U32),
    ) {
        match self.abi {
            Abi::Lp64 => {
                if let Some(p) = self.lp64() {
                    f(
                        &mut p.host_no,
                        &mut p.sgl_off,
                        &mut p.sge_count,
                        &mut p.sense_off,
                        &mut p.sense_len,
                    );
                }
            }
            Abi::Ilp32 => {
                if let Some(p) = self.ilp32() {
                    f(
                        &mut p.host_no,
                        &mut p.sgl_off,
                        &mut p.sge_count,
                        &mut p.sense_off,
                        &mut p.sense_len,
                    );
                }
            }
        }
    }

    /// Sets `host_no`.
    pub fn host_no(mut self, v: u16) -> Self {
        self.set_fields(|h, _, _, _, _| h.set(v));
        self
    }
    /// Sets `sgl_off`.
    pub fn sgl_off(mut self, v: u32) -> Self {
        self.set_fields(|_, o, _, _, _| o.set(v));
        self
    }
    /// Sets the packet's `sge_count` (not the header's).
    pub fn sge_count(mut self, v: u32) -> Self {
        self.set_fields(|_, _, c, _, _| c.set(v));
        self
    }
    /// Sets `sense_off`.
    pub fn sense_off(mut self, v: u32) -> Self {
        self.set_fields(|_, _, _, o, _| o.set(v));
        self
    }
    /// Sets the packet's `sense_len` (not the header's).
    pub fn sense_len(mut self, v: u32) -> Self {
        self.set_fields(|_, _, _, _, l| l.set(v));
        self
    }

    /// Sets `sgl[index]`; an index past 15 is ignored. On i386 the values are truncated to
    /// 32 bits, as a 32-bit caller would hold them.
    pub fn iovec(mut self, index: usize, base: u64, len: u64) -> Self {
        match self.abi {
            Abi::Lp64 => {
                if let Some(v) = self.lp64().and_then(|p| p.sgl.get_mut(index)) {
                    *v = Iovec {
                        iov_base: base.into(),
                        iov_len: len.into(),
                    };
                }
            }
            Abi::Ilp32 => {
                if let Some(v) = self.ilp32().and_then(|p| p.sgl.get_mut(index)) {
                    *v = CompatIovec {
                        iov_base: (base as u32).into(),
                        iov_len: (len as u32).into(),
                    };
                }
            }
        }
        self
    }

    /// The 128 frame bytes, to edit in place.
    pub fn frame_mut(&mut self) -> &mut [u8] {
        let range = crate::Packet::FRAME_OFFSET..crate::Packet::FRAME_OFFSET + 128;
        self.bytes.get_mut(range).unwrap_or_default()
    }

    /// Edits the frame header.
    pub fn header(mut self, edit: impl FnOnce(&mut MfiHeader)) -> Self {
        if let Ok((h, _)) = MfiHeader::mut_from_prefix(self.frame_mut()) {
            edit(h);
        }
        self
    }

    /// Starts a frame: command, header flags, header `sge_count`, `data_xferlen`.
    pub fn frame_header(self, cmd: MfiCmd, flags: u16, sge_count: u8, data_xferlen: u32) -> Self {
        self.header(|h| {
            h.cmd = cmd as u8;
            h.flags = flags.into();
            h.sge_count = sge_count;
            h.data_xferlen = data_xferlen.into();
        })
    }

    /// Writes bytes into the frame at `offset`; whatever does not fit is dropped.
    pub fn frame_bytes(mut self, offset: usize, data: &[u8]) -> Self {
        let frame = self.frame_mut();
        for (i, b) in data.iter().enumerate() {
            if let Some(slot) = offset.checked_add(i).and_then(|o| frame.get_mut(o)) {
                *slot = *b;
            }
        }
        self
    }

    /// Writes a little-endian u32 into the frame at `offset`.
    pub fn frame_u32(self, offset: usize, v: u32) -> Self {
        self.frame_bytes(offset, le::U32::new(v).as_bytes())
    }

    /// Writes a little-endian u64 into the frame at `offset`.
    pub fn frame_u64(self, offset: usize, v: u64) -> Self {
        self.frame_bytes(offset, le::U64::new(v).as_bytes())
    }

    /// The finished packet bytes.
    pub fn build(self) -> Vec<u8> {
        self.bytes
    }
}

/// Packets that real tools send, for tests, the examples and the demo.
pub mod samples {
    use super::*;
    use crate::abi::mfi::{MfiDirection, MFI_FRAME_DIR_MASK};

    const DIR_READ: u16 = 0x0010;
    const _: () = assert!(DIR_READ & MFI_FRAME_DIR_MASK == DIR_READ);
    const DIR_WRITE: u16 = 0x0008;
    const _: () = assert!(DIR_WRITE & MFI_FRAME_DIR_MASK == DIR_WRITE);

    /// A DCMD that reads `len` bytes into `buf` (what `MegaCli -AdpAllInfo` sends, opcode by
    /// opcode), with `sgl_off` 0x28 and the flags a current tool uses (`DIR_READ`).
    pub fn dcmd_read(abi: Abi, opcode: u32, buf: u64, len: u32) -> PacketBuilder {
        PacketBuilder::new(abi)
            .sgl_off(0x28)
            .sge_count(1)
            .iovec(0, buf, u64::from(len))
            .frame_header(MfiCmd::Dcmd, DIR_READ, 1, len)
            .header(|h| h.timeout = 0.into())
            .frame_u32(0x18, opcode)
    }

    /// A SCSI INQUIRY pass-through to a physical disk, sense at `sense_off` 0x18 (the slot the
    /// driver fills) with the caller's sense buffer address stored there.
    pub fn scsi_inquiry(abi: Abi, target: u8, buf: u64, len: u8, sense_buf: u64) -> PacketBuilder {
        let sense_len: u8 = 32;
        let b = PacketBuilder::new(abi)
            .sgl_off(0x30)
            .sge_count(1)
            .sense_off(0x18)
            .sense_len(u32::from(sense_len))
            .iovec(0, buf, u64::from(len))
            .frame_header(MfiCmd::PdScsiIo, DIR_READ, 1, u32::from(len))
            .header(|h| {
                h.target_id = target;
                h.cdb_len = 6;
                h.sense_len = sense_len;
                h.timeout = 10.into();
            })
            .frame_bytes(0x20, &[0x12, 0, 0, 0, len, 0]);
        // The caller keeps its own sense pointer at sense_off; the kernel copies sense there.
        match abi {
            Abi::Lp64 => b.frame_u64(0x18, sense_buf),
            Abi::Ilp32 => b.frame_u32(0x18, sense_buf as u32),
        }
    }

    /// A raw read or write of one 512-byte block of logical drive `target` at block 0, through
    /// `buf` (`cmd` `LdRead` or `LdWrite`; SGL at 0x28, no sense): the frame the driver builds
    /// for the block layer. No tool sends it, and sent through the ioctl it crashes the kernel
    /// in the driver's completion; it is here to show that the guard refuses it.
    pub fn ld_io(abi: Abi, cmd: MfiCmd, target: u8, buf: u64) -> PacketBuilder {
        let dir = if cmd == MfiCmd::LdWrite {
            DIR_WRITE
        } else {
            DIR_READ
        };
        PacketBuilder::new(abi)
            .sgl_off(0x28)
            .sge_count(1)
            .iovec(0, buf, 512)
            .frame_header(cmd, dir, 1, 1)
            .header(|h| {
                h.target_id = target;
                h.timeout = 10.into();
            })
    }

    /// The STP probe MegaCli 8.01.06 sends to a SATA SSD behind the controller (ATA IDENTIFY
    /// DEVICE): `IEEE|SGL64|DIR_READ`, `sgl_off` 0x30, two entries, the first the 20-byte
    /// response FIS. On a pre-3.3 driver this is the frame that crashed hosts hourly.
    pub fn megacli_8_01_06_stp_probe(
        abi: Abi,
        target: u8,
        fis_buf: u64,
        data_buf: u64,
    ) -> PacketBuilder {
        let flags = MfiFrameFlags::IEEE.bits() | MfiFrameFlags::SGL64.bits() | DIR_READ;
        debug_assert_eq!(MfiDirection::from_flags(flags), MfiDirection::Read);
        PacketBuilder::new(abi)
            .sgl_off(0x30)
            .sge_count(2)
            .iovec(0, fis_buf, 20)
            .iovec(1, data_buf, 512)
            .frame_header(MfiCmd::Stp, flags, 2, 512)
            .header(|h| {
                h.target_id = target;
                h.timeout = 10.into();
            })
            // Host-to-device register FIS: type 0x27, C bit, command IDENTIFY DEVICE (0xEC).
            .frame_bytes(0x18, &[0x27, 0x80, 0xEC, 0x00])
    }
}
