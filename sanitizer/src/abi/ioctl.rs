//! `MEGASAS_*`: the management ioctl's request codes and the packet it carries
//! (`struct megasas_iocpacket` in Linux's `drivers/scsi/megaraid/megaraid_sas.h`).
//!
//! The packet's own fields are host-endian (the kernel reads them as native integers); the
//! MFI frame inside it is little-endian (see [`super::mfi`]). Every struct here has alignment 1
//! and no padding, so it can be read from any byte slice without copying.

use core::mem::size_of;
use zerocopy::byteorder::native_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `MAX_IOCTL_SGE`: the packet's `sgl[]` has this many entries.
pub const MAX_IOCTL_SGE: usize = 16;
/// `MEGAMFI_FRAME_SIZE`: one MFI frame.
pub const MEGAMFI_FRAME_SIZE: usize = 64;
/// The packet carries two frames, copied verbatim to the controller.
pub const MEGASAS_IOC_FRAME_LEN: usize = 2 * MEGAMFI_FRAME_SIZE;
/// Where `frame` starts inside the packet (both layouts).
pub const MEGASAS_IOC_FRAME_OFFSET: usize = 0x14;
/// Where `sgl[]` starts inside the packet (both layouts).
pub const MEGASAS_IOC_SGL_OFFSET: usize = 0x94;

// Request-code encoding from include/uapi/asm-generic/ioctl.h, which x86_64 and i386 share.
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = 8;
const IOC_SIZESHIFT: u32 = 16;
const IOC_DIRSHIFT: u32 = 30;
const IOC_SIZEMASK: u32 = (1 << 14) - 1;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`, as the kernel composes request codes.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    // `size` is a struct size far below 2^14; the mask keeps the const fn total anyway.
    (dir << IOC_DIRSHIFT)
        | (((size as u32) & IOC_SIZEMASK) << IOC_SIZESHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
}

/// `_IOWR(type, nr, size)`.
pub const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// `_IOW(type, nr, size)`.
pub const fn iow(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// `struct iovec` of a 64-bit process: a pair of integers, never dereferenced here.
#[doc(alias = "iovec")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Iovec {
    /// `iov_base`: the caller's buffer address. // 0x00
    pub iov_base: U64,
    /// `iov_len`: its length in bytes. // 0x08
    pub iov_len: U64,
}

/// `struct compat_iovec` of a 32-bit process.
#[doc(alias = "compat_iovec")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct CompatIovec {
    /// `iov_base`. // 0x00
    pub iov_base: U32,
    /// `iov_len`. // 0x04
    pub iov_len: U32,
}

/// `struct megasas_iocpacket` as a 64-bit process lays it out (404 bytes).
#[doc(alias = "megasas_iocpacket")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MegasasIocPacket {
    /// Controller index. // 0x00
    pub host_no: U16,
    /// `__pad1`. // 0x02
    pub pad: U16,
    /// Where in the frame the driver writes the DMA scatter/gather list. // 0x04
    pub sgl_off: U32,
    /// Number of `sgl[]` entries used. // 0x08
    pub sge_count: U32,
    /// Where in the frame the driver writes the sense-buffer DMA address. // 0x0C
    pub sense_off: U32,
    /// Sense buffer size; 0 means no sense. // 0x10
    pub sense_len: U32,
    /// Two MFI frames, copied verbatim to the controller. // 0x14
    pub frame: [u8; MEGASAS_IOC_FRAME_LEN],
    /// The caller's data buffers. // 0x94
    pub sgl: [Iovec; MAX_IOCTL_SGE],
}

/// `struct compat_megasas_iocpacket`: the same packet from a 32-bit process (276 bytes).
#[doc(alias = "compat_megasas_iocpacket")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct CompatMegasasIocPacket {
    /// Controller index. // 0x00
    pub host_no: U16,
    /// `__pad1`. // 0x02
    pub pad: U16,
    /// Where in the frame the driver writes the DMA scatter/gather list. // 0x04
    pub sgl_off: U32,
    /// Number of `sgl[]` entries used. // 0x08
    pub sge_count: U32,
    /// Where in the frame the driver writes the sense-buffer DMA address. // 0x0C
    pub sense_off: U32,
    /// Sense buffer size; 0 means no sense. // 0x10
    pub sense_len: U32,
    /// Two MFI frames, copied verbatim to the controller. // 0x14
    pub frame: [u8; MEGASAS_IOC_FRAME_LEN],
    /// The caller's data buffers. // 0x94
    pub sgl: [CompatIovec; MAX_IOCTL_SGE],
}

/// `struct megasas_aen`: the argument of [`MEGASAS_IOC_GET_AEN`] (same in both layouts).
#[doc(alias = "megasas_aen")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MegasasAen {
    /// Controller index. // 0x00
    pub host_no: U16,
    /// `__pad1`. // 0x02
    pub pad: U16,
    /// First event sequence number to report. // 0x04
    pub seq_num: U32,
    /// Event class and locale filter. // 0x08
    pub class_locale_word: U32,
}

const _: () = assert!(size_of::<Iovec>() == 16);
const _: () = assert!(size_of::<CompatIovec>() == 8);
const _: () = assert!(size_of::<MegasasIocPacket>() == 404);
const _: () = assert!(size_of::<CompatMegasasIocPacket>() == 276);
const _: () = assert!(size_of::<MegasasAen>() == 12);

/// `MEGASAS_IOC_FIRMWARE` for a 64-bit process: `_IOWR('M', 1, struct megasas_iocpacket)`.
pub const MEGASAS_IOC_FIRMWARE: u32 = iowr(b'M', 1, size_of::<MegasasIocPacket>());
/// `MEGASAS_IOC_FIRMWARE32`: the same request from a 32-bit process (the kernel's compat path).
pub const MEGASAS_IOC_FIRMWARE32: u32 = iowr(b'M', 1, size_of::<CompatMegasasIocPacket>());
/// `MEGASAS_IOC_GET_AEN`: `_IOW('M', 3, struct megasas_aen)`, the same in both layouts.
pub const MEGASAS_IOC_GET_AEN: u32 = iow(b'M', 3, size_of::<MegasasAen>());

// The literals are the values the spec's table lists (read from the 6.1 headers and checked
// against a running driver); composing them above and pinning them here catches a size slip.
const _: () = assert!(MEGASAS_IOC_FIRMWARE == 0xC194_4D01);
const _: () = assert!(MEGASAS_IOC_FIRMWARE32 == 0xC114_4D01);
const _: () = assert!(MEGASAS_IOC_GET_AEN == 0x400C_4D03);

/// Which packet layout a process uses: the kernel picks it from the caller's ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    /// A 64-bit (x86_64) process: 404-byte packet, 16-byte iovecs.
    Lp64,
    /// A 32-bit (i386) process on the kernel's compat path: 276-byte packet, 8-byte iovecs.
    Ilp32,
}

impl Abi {
    /// The layout of the process this code is compiled into.
    pub const NATIVE: Abi = if cfg!(target_pointer_width = "64") {
        Abi::Lp64
    } else {
        Abi::Ilp32
    };

    /// Both layouts, for tests and tools that cover each.
    pub const ALL: [Abi; 2] = [Abi::Lp64, Abi::Ilp32];

    /// Size of the packet in this layout.
    pub const fn packet_size(self) -> usize {
        match self {
            Abi::Lp64 => size_of::<MegasasIocPacket>(),
            Abi::Ilp32 => size_of::<CompatMegasasIocPacket>(),
        }
    }

    /// The `MEGASAS_IOC_FIRMWARE` request code a process of this layout sends.
    pub const fn firmware_request(self) -> u32 {
        match self {
            Abi::Lp64 => MEGASAS_IOC_FIRMWARE,
            Abi::Ilp32 => MEGASAS_IOC_FIRMWARE32,
        }
    }

    /// The layout a `MEGASAS_IOC_FIRMWARE` request code implies, if it is one.
    pub const fn from_firmware_request(request: u32) -> Option<Abi> {
        match request {
            MEGASAS_IOC_FIRMWARE => Some(Abi::Lp64),
            MEGASAS_IOC_FIRMWARE32 => Some(Abi::Ilp32),
            _ => None,
        }
    }

    /// The name used in audit records: `x86_64` or `i386`.
    pub const fn name(self) -> &'static str {
        match self {
            Abi::Lp64 => "x86_64",
            Abi::Ilp32 => "i386",
        }
    }

    /// Size of one `sgl[]` entry.
    pub const fn iovec_size(self) -> usize {
        match self {
            Abi::Lp64 => size_of::<Iovec>(),
            Abi::Ilp32 => size_of::<CompatIovec>(),
        }
    }
}

/// A request code's name, for logs.
pub const fn request_name(request: u32) -> Option<&'static str> {
    match request {
        MEGASAS_IOC_FIRMWARE => Some("MEGASAS_IOC_FIRMWARE"),
        MEGASAS_IOC_FIRMWARE32 => Some("MEGASAS_IOC_FIRMWARE32"),
        MEGASAS_IOC_GET_AEN => Some("MEGASAS_IOC_GET_AEN"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn field_offsets_match_the_kernel_header() {
        assert_eq!(offset_of!(MegasasIocPacket, sgl_off), 0x04);
        assert_eq!(offset_of!(MegasasIocPacket, sense_len), 0x10);
        assert_eq!(
            offset_of!(MegasasIocPacket, frame),
            MEGASAS_IOC_FRAME_OFFSET
        );
        assert_eq!(offset_of!(MegasasIocPacket, sgl), MEGASAS_IOC_SGL_OFFSET);
        assert_eq!(
            offset_of!(CompatMegasasIocPacket, frame),
            MEGASAS_IOC_FRAME_OFFSET
        );
        assert_eq!(
            offset_of!(CompatMegasasIocPacket, sgl),
            MEGASAS_IOC_SGL_OFFSET
        );
    }

    #[test]
    fn abi_round_trips_through_its_request_code() {
        for abi in Abi::ALL {
            assert_eq!(
                Abi::from_firmware_request(abi.firmware_request()),
                Some(abi)
            );
        }
        assert_eq!(Abi::from_firmware_request(MEGASAS_IOC_GET_AEN), None);
        assert_eq!(
            Abi::Lp64.iovec_size() * MAX_IOCTL_SGE + MEGASAS_IOC_SGL_OFFSET,
            404
        );
        assert_eq!(
            Abi::Ilp32.iovec_size() * MAX_IOCTL_SGE + MEGASAS_IOC_SGL_OFFSET,
            276
        );
    }
}
