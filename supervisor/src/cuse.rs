//! The CUSE wire protocol, as much of it as `mfiguard-hostd` speaks: requests parsed from the
//! bytes one `read` of `/dev/cuse` returns, replies laid out for one `write`. Pure functions
//! over bytes; the kernel's names (`include/uapi/linux/fuse.h`).
//!
//! A CUSE server answers the kernel's `CUSE_INIT` with the device's name, then gets one request
//! per operation on the device: `FUSE_OPEN`, `FUSE_IOCTL`, `FUSE_RELEASE`, ... Each carries the
//! calling thread's pid, uid and gid (`fuse_in_header`), and is answered by its `unique`.

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

/// `sizeof(struct fuse_in_header)`.
pub const IN_HEADER_LEN: usize = 40;
/// `sizeof(struct fuse_out_header)`.
pub const OUT_HEADER_LEN: usize = 16;
/// `sizeof(struct cuse_init_out)`.
pub const CUSE_INIT_OUT_LEN: usize = 72;
/// The smallest buffer a read of the channel accepts (`FUSE_MIN_READ_BUFFER`).
pub const READ_BUFFER_MIN: usize = 8192;
/// `max_read` and `max_write` offered at init (the node has no read or write).
pub const MAX_RW: u32 = 4096;

/// `struct fuse_in_header`: who asks, and for which reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InHeader {
    /// The request's total length.
    pub len: u32,
    /// What it asks (`FUSE_*`, `CUSE_INIT`).
    pub opcode: u32,
    /// The id its reply carries.
    pub unique: u64,
    /// The caller's uid and gid (in this daemon's user namespace).
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
    /// Anything else (`FUSE_READ`, `FUSE_WRITE`, `FUSE_POLL`, ...), by opcode.
    Other(u32),
}

/// Why a read of the channel is not a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its header, or than its header says, or than its arguments.
    Short,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ParseError> {
    let s = b.get(at..at + 4).ok_or(ParseError::Short)?;
    Ok(u32::from_ne_bytes(
        s.try_into().map_err(|_| ParseError::Short)?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, ParseError> {
    let s = b.get(at..at + 8).ok_or(ParseError::Short)?;
    Ok(u64::from_ne_bytes(
        s.try_into().map_err(|_| ParseError::Short)?,
    ))
}

/// Parses the bytes of one read of the channel.
pub fn parse(b: &[u8]) -> Result<(InHeader, Op), ParseError> {
    let h = InHeader {
        len: u32_at(b, 0)?,
        opcode: u32_at(b, 4)?,
        unique: u64_at(b, 8)?,
        uid: u32_at(b, 24)?,
        gid: u32_at(b, 28)?,
        pid: u32_at(b, 32)?,
    };
    if (h.len as usize) < IN_HEADER_LEN || (h.len as usize) > b.len() {
        return Err(ParseError::Short);
    }
    let arg = &b[IN_HEADER_LEN..h.len as usize];
    let op = match h.opcode {
        // struct cuse_init_in { major, minor, unused, flags }
        CUSE_INIT => Op::Init {
            major: u32_at(arg, 0)?,
            minor: u32_at(arg, 4)?,
            flags: u32_at(arg, 12)?,
        },
        // struct fuse_open_in { flags, open_flags }
        FUSE_OPEN => Op::Open {
            flags: u32_at(arg, 0)?,
        },
        FUSE_RELEASE => Op::Release,
        // struct fuse_ioctl_in { fh, flags, cmd, arg, in_size, out_size }
        FUSE_IOCTL => Op::Ioctl {
            flags: u32_at(arg, 8)?,
            cmd: u32_at(arg, 12)?,
            arg: u64_at(arg, 16)?,
        },
        FUSE_INTERRUPT => Op::Interrupt,
        // struct fuse_poll_in { fh, kh, flags, events }
        FUSE_POLL => Op::Poll {
            kh: u64_at(arg, 8)?,
            flags: u32_at(arg, 16)?,
        },
        other => Op::Other(other),
    };
    Ok((h, op))
}

/// A reply: `fuse_out_header` and its argument, ready for one `write` of the channel.
fn reply(unique: u64, error: i32, arg: &[u8]) -> Vec<u8> {
    let len = OUT_HEADER_LEN + arg.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&error.to_ne_bytes());
    out.extend_from_slice(&unique.to_ne_bytes());
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

/// The reply to `FUSE_OPEN`: `struct fuse_open_out { fh, open_flags, padding }`.
pub fn reply_open(unique: u64, fh: u64) -> Vec<u8> {
    let mut arg = [0u8; 16];
    arg[0..8].copy_from_slice(&fh.to_ne_bytes());
    reply(unique, 0, &arg)
}

/// The reply to `FUSE_POLL`: `struct fuse_poll_out { revents, padding }`.
pub fn reply_poll(unique: u64, revents: u32) -> Vec<u8> {
    let mut arg = [0u8; 8];
    arg[0..4].copy_from_slice(&revents.to_ne_bytes());
    reply(unique, 0, &arg)
}

/// A poll wake-up for the file of handle `kh` (`FUSE_NOTIFY_POLL`, `struct
/// fuse_notify_poll_wakeup_out { kh }`): written to the channel like a reply, with no unique.
pub fn notify_poll(kh: u64) -> Vec<u8> {
    reply(0, FUSE_NOTIFY_POLL, &kh.to_ne_bytes())
}

/// The reply to `FUSE_IOCTL` with the call's result (`struct fuse_ioctl_out { result, flags,
/// in_iovs, out_iovs }`): nothing to copy, nothing to retry.
pub fn reply_ioctl(unique: u64, result: i32) -> Vec<u8> {
    let mut arg = [0u8; 16];
    arg[0..4].copy_from_slice(&result.to_ne_bytes());
    reply(unique, 0, &arg)
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
    let mut arg = vec![0u8; CUSE_INIT_OUT_LEN];
    // struct cuse_init_out { major, minor, unused, flags, max_read, max_write, dev_major,
    // dev_minor, spare[10] }: dev_major 0 lets the kernel choose the device number.
    arg[0..4].copy_from_slice(&FUSE_KERNEL_VERSION.to_ne_bytes());
    arg[4..8].copy_from_slice(&minor.min(FUSE_MINOR_KNOWN).to_ne_bytes());
    arg[12..16].copy_from_slice(&CUSE_UNRESTRICTED_IOCTL.to_ne_bytes());
    arg[16..20].copy_from_slice(&MAX_RW.to_ne_bytes());
    arg[20..24].copy_from_slice(&MAX_RW.to_ne_bytes());
    arg[24..28].copy_from_slice(&dev_major.to_ne_bytes());
    arg[28..32].copy_from_slice(&dev_minor.to_ne_bytes());
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
