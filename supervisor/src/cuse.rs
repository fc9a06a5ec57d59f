//! The CUSE wire protocol, as much of it as `mfiguard-hostd` speaks: requests parsed from the
//! bytes one `read` of `/dev/cuse` returns, replies laid out for one `write`. Pure functions
//! over bytes; the kernel's names (`include/uapi/linux/fuse.h`).
//!
//! A CUSE server answers the kernel's `CUSE_INIT` with the device's name, then gets one request
//! per operation on the device: `FUSE_OPEN`, `FUSE_IOCTL`, `FUSE_RELEASE`, ... Each carries the
//! calling thread's pid, uid and gid (`fuse_in_header`), and is answered by its `unique`.
//!
//! The wire structs are declared (`#[repr(C)]`, alignment 1, host-endian), as the kernel's
//! header lays them out, their sizes pinned; requests are read from them and replies written
//! from them, never by byte offsets.

use std::mem::size_of;

use zerocopy::byteorder::native_endian::{I32, U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `FUSE_KERNEL_VERSION`: the protocol's major version, the only one there is.
pub const FUSE_KERNEL_VERSION: u32 = 7;
/// The lowest minor version CUSE accepts in an init reply.
pub const CUSE_MINOR_MIN: u32 = 11;
/// The highest minor version this code knows; the reply offers the lower of it and the kernel's.
pub const FUSE_MINOR_KNOWN: u32 = 31;

/// `CUSE_INIT`.
pub const CUSE_INIT: u32 = 4096;
/// `FUSE_OPEN`.
pub const FUSE_OPEN: u32 = 14;
/// `FUSE_READ`.
pub const FUSE_READ: u32 = 15;
/// `FUSE_WRITE`.
pub const FUSE_WRITE: u32 = 16;
/// `FUSE_RELEASE`.
pub const FUSE_RELEASE: u32 = 18;
/// `FUSE_FLUSH`.
pub const FUSE_FLUSH: u32 = 25;
/// `FUSE_INTERRUPT`: never answered (the caller is answered by its own request).
pub const FUSE_INTERRUPT: u32 = 36;
/// `FUSE_IOCTL`.
pub const FUSE_IOCTL: u32 = 39;
/// `FUSE_POLL`.
pub const FUSE_POLL: u32 = 40;

/// `CUSE_UNRESTRICTED_IOCTL`: the kernel passes `cmd` and `arg` and copies nothing itself.
pub const CUSE_UNRESTRICTED_IOCTL: u32 = 1 << 0;
/// `FUSE_IOCTL_COMPAT`: a 32-bit caller on a 64-bit kernel (`compat_ioctl`).
pub const FUSE_IOCTL_COMPAT: u32 = 1 << 0;
/// `FUSE_IOCTL_UNRESTRICTED`.
pub const FUSE_IOCTL_UNRESTRICTED: u32 = 1 << 1;
/// `FUSE_IOCTL_COMPAT_X32`: an x32 caller.
pub const FUSE_IOCTL_COMPAT_X32: u32 = 1 << 5;
/// `FUSE_POLL_SCHEDULE_NOTIFY`: the poller waits; tell the kernel (`FUSE_NOTIFY_POLL` with its
/// `kh`) when the file becomes ready.
pub const FUSE_POLL_SCHEDULE_NOTIFY: u32 = 1 << 0;
/// `FUSE_NOTIFY_POLL`: the notification code of a poll wake-up.
pub const FUSE_NOTIFY_POLL: i32 = 1;

/// `struct fuse_in_header`: every request starts with it.
#[doc(alias = "fuse_in_header")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FuseInHeader {
    /// The request's total length. // 0x00
    pub len: U32,
    /// What it asks (`FUSE_*`, `CUSE_INIT`). // 0x04
    pub opcode: U32,
    /// The id its reply carries. // 0x08
    pub unique: U64,
    /// The inode (none on a CUSE device). // 0x10
    pub nodeid: U64,
    /// The caller's uid (in this daemon's user namespace). // 0x18
    pub uid: U32,
    /// The caller's gid. // 0x1C
    pub gid: U32,
    /// The calling thread, in this daemon's pid namespace (0: not visible from it). // 0x20
    pub pid: U32,
    /// Length of extensions after the arguments, in 8-byte units. // 0x24
    pub total_extlen: U16,
    /// Padding. // 0x26
    pub padding: U16,
}

/// `struct fuse_out_header`: every reply (and notification) starts with it.
#[doc(alias = "fuse_out_header")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FuseOutHeader {
    /// The reply's total length. // 0x00
    pub len: U32,
    /// 0, or a negative errno (for a notification, its code). // 0x04
    pub error: I32,
    /// The request answered (0 for a notification). // 0x08
    pub unique: U64,
}

/// `struct cuse_init_in`.
#[doc(alias = "cuse_init_in")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct CuseInitIn {
    /// The kernel's protocol major version. // 0x00
    pub major: U32,
    /// Its minor version. // 0x04
    pub minor: U32,
    /// Unused. // 0x08
    pub unused: U32,
    /// `CUSE_*` flags it offers. // 0x0C
    pub flags: U32,
}

/// `struct cuse_init_out`, followed in the reply by the device info string (`DEVNAME=...`).
#[doc(alias = "cuse_init_out")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct CuseInitOut {
    /// `FUSE_KERNEL_VERSION`. // 0x00
    pub major: U32,
    /// The minor version both speak. // 0x04
    pub minor: U32,
    /// Unused. // 0x08
    pub unused: U32,
    /// `CUSE_*` flags granted. // 0x0C
    pub flags: U32,
    /// Largest read. // 0x10
    pub max_read: U32,
    /// Largest write. // 0x14
    pub max_write: U32,
    /// The device's major (0: the kernel picks the number). // 0x18
    pub dev_major: U32,
    /// Its minor. // 0x1C
    pub dev_minor: U32,
    /// Spare. // 0x20
    pub spare: [U32; 10],
}

/// `struct fuse_open_in`.
#[doc(alias = "fuse_open_in")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FuseOpenIn {
    /// The caller's `open` flags. // 0x00
    pub flags: U32,
    /// `FUSE_OPEN_*` flags. // 0x04
    pub open_flags: U32,
}

/// `struct fuse_open_out`.
#[doc(alias = "fuse_open_out")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FuseOpenOut {
    /// The file handle later requests carry. // 0x00
    pub fh: U64,
    /// `FOPEN_*` flags. // 0x08
    pub open_flags: U32,
    /// Padding. // 0x0C
    pub padding: U32,
}

/// `struct fuse_ioctl_in`.
#[doc(alias = "fuse_ioctl_in")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FuseIoctlIn {
    /// The file handle. // 0x00
    pub fh: U64,
    /// `FUSE_IOCTL_*` flags. // 0x08
    pub flags: U32,
    /// The request code. // 0x0C
    pub cmd: U32,
    /// The caller's argument. // 0x10
    pub arg: U64,
    /// Bytes of input the kernel copied (none: unrestricted). // 0x18
    pub in_size: U32,
    /// Bytes of output it would copy back. // 0x1C
    pub out_size: U32,
}

/// `struct fuse_ioctl_out`.
#[doc(alias = "fuse_ioctl_out")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FuseIoctlOut {
    /// The ioctl's result. // 0x00
    pub result: I32,
    /// `FUSE_IOCTL_RETRY` and others (none here). // 0x04
    pub flags: U32,
    /// Input iovecs of a retry. // 0x08
    pub in_iovs: U32,
    /// Output iovecs of a retry. // 0x0C
    pub out_iovs: U32,
}

/// `struct fuse_poll_in`.
#[doc(alias = "fuse_poll_in")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FusePollIn {
    /// The file handle. // 0x00
    pub fh: U64,
    /// The polled file's handle for wake-ups. // 0x08
    pub kh: U64,
    /// `FUSE_POLL_*` flags. // 0x10
    pub flags: U32,
    /// The events polled for. // 0x14
    pub events: U32,
}

/// `struct fuse_poll_out`.
#[doc(alias = "fuse_poll_out")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FusePollOut {
    /// The ready events. // 0x00
    pub revents: U32,
    /// Padding. // 0x04
    pub padding: U32,
}

/// `struct fuse_notify_poll_wakeup_out`.
#[doc(alias = "fuse_notify_poll_wakeup_out")]
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FuseNotifyPollWakeupOut {
    /// The handle of the file to wake. // 0x00
    pub kh: U64,
}

// The sizes `include/uapi/linux/fuse.h` gives each struct.
const _: () = {
    assert!(size_of::<FuseInHeader>() == 40);
    assert!(size_of::<FuseOutHeader>() == 16);
    assert!(size_of::<CuseInitIn>() == 16);
    assert!(size_of::<CuseInitOut>() == 72);
    assert!(size_of::<FuseOpenIn>() == 8);
    assert!(size_of::<FuseOpenOut>() == 16);
    assert!(size_of::<FuseIoctlIn>() == 32);
    assert!(size_of::<FuseIoctlOut>() == 16);
    assert!(size_of::<FusePollIn>() == 24);
    assert!(size_of::<FusePollOut>() == 8);
    assert!(size_of::<FuseNotifyPollWakeupOut>() == 8);
};

/// `sizeof(struct fuse_in_header)`.
pub const IN_HEADER_LEN: usize = size_of::<FuseInHeader>();
/// `sizeof(struct fuse_out_header)`.
pub const OUT_HEADER_LEN: usize = size_of::<FuseOutHeader>();
/// `sizeof(struct cuse_init_out)`.
pub const CUSE_INIT_OUT_LEN: usize = size_of::<CuseInitOut>();
/// The smallest buffer a read of the channel accepts (`FUSE_MIN_READ_BUFFER`).
pub const READ_BUFFER_MIN: usize = 8192;
/// `max_read` and `max_write` offered at init (the node has no read or write).
pub const MAX_RW: u32 = 4096;

/// A request's header, as far as the daemon uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InHeader {
    /// The request's total length.
    pub len: u32,
    /// What it asks (`FUSE_*`, `CUSE_INIT`).
    pub opcode: u32,
    /// The id its reply carries.
    pub unique: u64,
    /// The caller's uid (in this daemon's user namespace).
    pub uid: u32,
    /// The caller's gid.
    pub gid: u32,
    /// The calling thread, in this daemon's pid namespace (0: not visible from it).
    pub pid: u32,
}

/// One request, as far as the node needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `CUSE_INIT`: the kernel's protocol version and flags.
    Init {
        /// Its major version.
        major: u32,
        /// Its minor version.
        minor: u32,
        /// `CUSE_*` flags it offers.
        flags: u32,
    },
    /// `FUSE_OPEN` of the device, with the caller's `open` flags.
    Open {
        /// `O_*` flags.
        flags: u32,
    },
    /// `FUSE_RELEASE`: the last close of an open file.
    Release,
    /// `FUSE_IOCTL` (`struct fuse_ioctl_in`).
    Ioctl {
        /// `FUSE_IOCTL_*` flags.
        flags: u32,
        /// The request code.
        cmd: u32,
        /// The caller's argument (for a 32-bit caller, its 32-bit value).
        arg: u64,
    },
    /// `FUSE_INTERRUPT`: a signal reached a caller whose request this daemon holds.
    Interrupt,
    /// `FUSE_POLL` (`struct fuse_poll_in`).
    Poll {
        /// The polled file's handle for wake-ups.
        kh: u64,
        /// `FUSE_POLL_*` flags.
        flags: u32,
    },
    /// Anything else (`FUSE_READ`, `FUSE_WRITE`, `FUSE_FLUSH`, ...), by opcode.
    Other(u32),
}

/// Why a read of the channel is not a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its header, or than its header says, or than its arguments.
    Short,
}

/// The struct at the start of `b`, copied out (the channel's buffer has no alignment to rely on).
fn read<T: FromBytes>(b: &[u8]) -> Result<T, ParseError> {
    T::read_from_prefix(b)
        .map(|(t, _)| t)
        .map_err(|_| ParseError::Short)
}

/// Parses the bytes of one read of the channel.
pub fn parse(b: &[u8]) -> Result<(InHeader, Op), ParseError> {
    let raw: FuseInHeader = read(b)?;
    let h = InHeader {
        len: raw.len.get(),
        opcode: raw.opcode.get(),
        unique: raw.unique.get(),
        uid: raw.uid.get(),
        gid: raw.gid.get(),
        pid: raw.pid.get(),
    };
    let arg = usize::try_from(h.len)
        .ok()
        .filter(|&len| len >= IN_HEADER_LEN)
        .and_then(|len| b.get(IN_HEADER_LEN..len))
        .ok_or(ParseError::Short)?;
    let op = match h.opcode {
        CUSE_INIT => {
            let i: CuseInitIn = read(arg)?;
            Op::Init {
                major: i.major.get(),
                minor: i.minor.get(),
                flags: i.flags.get(),
            }
        }
        FUSE_OPEN => Op::Open {
            flags: read::<FuseOpenIn>(arg)?.flags.get(),
        },
        FUSE_RELEASE => Op::Release,
        FUSE_IOCTL => {
            let i: FuseIoctlIn = read(arg)?;
            Op::Ioctl {
                flags: i.flags.get(),
                cmd: i.cmd.get(),
                arg: i.arg.get(),
            }
        }
        FUSE_INTERRUPT => Op::Interrupt,
        FUSE_POLL => {
            let i: FusePollIn = read(arg)?;
            Op::Poll {
                kh: i.kh.get(),
                flags: i.flags.get(),
            }
        }
        other => Op::Other(other),
    };
    Ok((h, op))
}

/// A reply: `fuse_out_header` and its argument, ready for one `write` of the channel.
fn reply(unique: u64, error: i32, arg: &[u8]) -> Vec<u8> {
    let len = OUT_HEADER_LEN + arg.len();
    let header = FuseOutHeader {
        len: U32::new(len as u32),
        error: I32::new(error),
        unique: U64::new(unique),
    };
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(arg);
    out
}

/// The reply failing request `unique` with `errno`.
pub fn reply_error(unique: u64, errno: i32) -> Vec<u8> {
    reply(unique, -errno.abs(), &[])
}

/// The reply of a request that succeeds with no argument (`FUSE_RELEASE`).
pub fn reply_empty(unique: u64) -> Vec<u8> {
    reply(unique, 0, &[])
}

/// The reply to `FUSE_OPEN`.
pub fn reply_open(unique: u64, fh: u64) -> Vec<u8> {
    let out = FuseOpenOut {
        fh: U64::new(fh),
        ..FromZeros::new_zeroed()
    };
    reply(unique, 0, out.as_bytes())
}

/// The reply to `FUSE_POLL`.
pub fn reply_poll(unique: u64, revents: u32) -> Vec<u8> {
    let out = FusePollOut {
        revents: U32::new(revents),
        ..FromZeros::new_zeroed()
    };
    reply(unique, 0, out.as_bytes())
}

/// A poll wake-up for the file of handle `kh` (`FUSE_NOTIFY_POLL`): written to the channel like
/// a reply, with no unique.
pub fn notify_poll(kh: u64) -> Vec<u8> {
    let out = FuseNotifyPollWakeupOut { kh: U64::new(kh) };
    reply(0, FUSE_NOTIFY_POLL, out.as_bytes())
}

/// The reply to `FUSE_IOCTL` with the call's result: nothing to copy, nothing to retry.
pub fn reply_ioctl(unique: u64, result: i32) -> Vec<u8> {
    let out = FuseIoctlOut {
        result: I32::new(result),
        ..FromZeros::new_zeroed()
    };
    reply(unique, 0, out.as_bytes())
}

/// The reply to `CUSE_INIT`, or `None` when the kernel's protocol is one CUSE cannot serve
/// (another major version, a minor below 11). Offers unrestricted ioctls (the daemon reads and
/// writes the caller's memory itself) and the device's name (`DEVNAME=`).
pub fn reply_init(
    unique: u64,
    major: u32,
    minor: u32,
    devname: &str,
    (dev_major, dev_minor): (u32, u32),
) -> Option<Vec<u8>> {
    if major != FUSE_KERNEL_VERSION || minor < CUSE_MINOR_MIN {
        return None;
    }
    // The name ends the info string's first pair; no separator may hide in it.
    if devname.is_empty() || devname.bytes().any(|c| c == 0 || c == b'=') {
        return None;
    }
    // dev_major 0 would let the kernel choose the device number.
    let out = CuseInitOut {
        major: U32::new(FUSE_KERNEL_VERSION),
        minor: U32::new(minor.min(FUSE_MINOR_KNOWN)),
        flags: U32::new(CUSE_UNRESTRICTED_IOCTL),
        max_read: U32::new(MAX_RW),
        max_write: U32::new(MAX_RW),
        dev_major: U32::new(dev_major),
        dev_minor: U32::new(dev_minor),
        ..FromZeros::new_zeroed()
    };
    let mut arg = out.as_bytes().to_vec();
    arg.extend_from_slice(b"DEVNAME=");
    arg.extend_from_slice(devname.as_bytes());
    arg.push(0);
    Some(reply(unique, 0, &arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(opcode: u32, unique: u64, pid: u32, arg: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((IN_HEADER_LEN + arg.len()) as u32).to_ne_bytes());
        b.extend_from_slice(&opcode.to_ne_bytes());
        b.extend_from_slice(&unique.to_ne_bytes());
        b.extend_from_slice(&0u64.to_ne_bytes()); // nodeid
        b.extend_from_slice(&1000u32.to_ne_bytes()); // uid
        b.extend_from_slice(&100u32.to_ne_bytes()); // gid
        b.extend_from_slice(&pid.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // total_extlen, padding
        b.extend_from_slice(arg);
        b
    }

    /// `struct fuse_ioctl_in` as the kernel lays it out.
    pub(crate) fn ioctl_in(flags: u32, cmd: u32, arg: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&7u64.to_ne_bytes()); // fh
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&cmd.to_ne_bytes());
        b.extend_from_slice(&arg.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // in_size
        b.extend_from_slice(&0u32.to_ne_bytes()); // out_size
        b
    }

    #[test]
    fn an_ioctl_request_gives_its_caller_code_argument_and_layout() {
        let b = request(
            FUSE_IOCTL,
            42,
            4321,
            &ioctl_in(
                FUSE_IOCTL_COMPAT | FUSE_IOCTL_UNRESTRICTED,
                0xc1944d01,
                0xffd0_1000,
            ),
        );
        let (h, op) = parse(&b).unwrap();
        assert_eq!((h.unique, h.pid, h.uid, h.gid), (42, 4321, 1000, 100));
        assert_eq!(
            op,
            Op::Ioctl {
                flags: FUSE_IOCTL_COMPAT | FUSE_IOCTL_UNRESTRICTED,
                cmd: 0xc1944d01,
                arg: 0xffd0_1000
            }
        );
    }

    #[test]
    fn short_or_inconsistent_reads_are_errors_not_panics() {
        let full = request(FUSE_IOCTL, 1, 1, &ioctl_in(0, 1, 2));
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Err(ParseError::Short), "cut at {cut}");
        }
        // A header claiming less than itself, or more than was read.
        let mut b = full.clone();
        b[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(parse(&b), Err(ParseError::Short));
        b[0..4].copy_from_slice(&(full.len() as u32 + 1).to_ne_bytes());
        assert_eq!(parse(&b), Err(ParseError::Short));
        // An ioctl whose arguments are cut short by its own length.
        let mut b = full.clone();
        b[0..4].copy_from_slice(&(IN_HEADER_LEN as u32 + 8).to_ne_bytes());
        assert_eq!(parse(&b), Err(ParseError::Short));
        // Unknown opcodes parse, with no argument read.
        let (_, op) = parse(&request(FUSE_FLUSH, 3, 1, &[])).unwrap();
        assert_eq!(op, Op::Other(FUSE_FLUSH));
    }

    #[test]
    fn init_is_answered_with_the_devices_name_and_unrestricted_ioctls() {
        let mut arg = Vec::new();
        for v in [7u32, 38, 0, CUSE_UNRESTRICTED_IOCTL] {
            arg.extend_from_slice(&v.to_ne_bytes());
        }
        let (h, op) = parse(&request(CUSE_INIT, 1, 0, &arg)).unwrap();
        let Op::Init {
            major,
            minor,
            flags,
        } = op
        else {
            panic!("{op:?}")
        };
        assert_eq!((major, minor, flags), (7, 38, CUSE_UNRESTRICTED_IOCTL));
        let r = reply_init(
            h.unique,
            major,
            minor,
            "megaraid_sas_ioctl_node",
            (120, 0x6d66),
        )
        .unwrap();
        let info = b"DEVNAME=megaraid_sas_ioctl_node\0";
        assert_eq!(r.len(), OUT_HEADER_LEN + CUSE_INIT_OUT_LEN + info.len());
        assert_eq!(
            u32::from_ne_bytes(r[0..4].try_into().unwrap()) as usize,
            r.len()
        );
        assert_eq!(&r[4..8], &0i32.to_ne_bytes());
        assert_eq!(&r[8..16], &1u64.to_ne_bytes());
        let out = &r[OUT_HEADER_LEN..];
        assert_eq!(&out[0..4], &7u32.to_ne_bytes());
        assert_eq!(&out[4..8], &FUSE_MINOR_KNOWN.to_ne_bytes()); // the lower of 38 and ours
        assert_eq!(&out[12..16], &CUSE_UNRESTRICTED_IOCTL.to_ne_bytes());
        assert_eq!(&out[24..28], &120u32.to_ne_bytes()); // dev_major
        assert_eq!(&out[28..32], &0x6d66u32.to_ne_bytes()); // dev_minor
        assert_eq!(&out[CUSE_INIT_OUT_LEN..], info);
        // A kernel of another major version, or too old for CUSE: no reply to give.
        assert!(reply_init(1, 8, 31, "x", (0, 0)).is_none());
        assert!(reply_init(1, 7, 10, "x", (0, 0)).is_none());
        assert!(reply_init(1, 7, 31, "a=b", (0, 0)).is_none());
        assert!(reply_init(1, 7, 31, "", (0, 0)).is_none());
    }

    #[test]
    fn a_poll_names_its_file_and_its_wake_up_is_a_notification() {
        let mut arg = Vec::new();
        arg.extend_from_slice(&7u64.to_ne_bytes()); // fh
        arg.extend_from_slice(&0x1234u64.to_ne_bytes()); // kh
        arg.extend_from_slice(&FUSE_POLL_SCHEDULE_NOTIFY.to_ne_bytes());
        arg.extend_from_slice(&1u32.to_ne_bytes()); // events: POLLIN
        let (_, op) = parse(&request(FUSE_POLL, 3, 1, &arg)).unwrap();
        assert_eq!(
            op,
            Op::Poll {
                kh: 0x1234,
                flags: FUSE_POLL_SCHEDULE_NOTIFY
            }
        );
        let n = notify_poll(0x1234);
        assert_eq!(n.len(), OUT_HEADER_LEN + 8);
        assert_eq!(&n[0..4], &24u32.to_ne_bytes());
        assert_eq!(&n[4..8], &FUSE_NOTIFY_POLL.to_ne_bytes());
        assert_eq!(&n[8..16], &0u64.to_ne_bytes());
        assert_eq!(&n[16..24], &0x1234u64.to_ne_bytes());
    }

    #[test]
    fn replies_carry_their_length_errno_and_result() {
        let e = reply_error(9, libc::EACCES);
        assert_eq!(e.len(), OUT_HEADER_LEN);
        assert_eq!(&e[0..4], &16u32.to_ne_bytes());
        assert_eq!(&e[4..8], &(-libc::EACCES).to_ne_bytes());
        assert_eq!(&e[8..16], &9u64.to_ne_bytes());
        let i = reply_ioctl(10, 3);
        assert_eq!(i.len(), OUT_HEADER_LEN + 16);
        assert_eq!(&i[OUT_HEADER_LEN..OUT_HEADER_LEN + 4], &3i32.to_ne_bytes());
        assert_eq!(&i[OUT_HEADER_LEN + 4..], &[0u8; 12]);
        let o = reply_open(11, 5);
        assert_eq!(&o[0..4], &32u32.to_ne_bytes());
        assert_eq!(&o[OUT_HEADER_LEN..OUT_HEADER_LEN + 8], &5u64.to_ne_bytes());
    }
}
