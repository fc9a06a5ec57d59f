//! The CUSE session: the device registered with `CUSE_INIT`, the readers that take requests off
//! the channel.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use mfiguard_core::config::Config;

use super::dispatch::{handle, Host};
use super::live::Live;
use super::node::cstr;
use super::pool::Pool;
use super::status::cuse_device;
use super::{Options, READ_BUFFER};
use crate::cuse::{self, Op};
use crate::sys;

/// Why registering the CUSE device failed.
pub(super) enum Registration {
    /// The channel could not be opened or the init exchanged.
    Failed(String),
    /// The kernel refused the device (its name or number taken).
    NotCreated,
}

impl std::fmt::Display for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Registration::Failed(why) => f.write_str(why),
            Registration::NotCreated => f.write_str(
                "the kernel did not create the CUSE device: is another one of that name or number registered?",
            ),
        }
    }
}

/// Opens the channel and registers the device `name`, of number `device` (or one the kernel
/// picks); the channel and the device's number.
pub(super) fn register(
    opts: &Options,
    name: &str,
    device: Option<(u32, u32)>,
) -> Result<(OwnedFd, u64), Registration> {
    let path = cstr(&opts.channel).map_err(|_| Registration::Failed("bad channel path".into()))?;
    let channel = sys::open(&path, libc::O_RDWR).map_err(|e| {
        let hint = if e == libc::ENOENT {
            " (load the cuse module: modprobe cuse)"
        } else {
            ""
        };
        Registration::Failed(format!(
            "cannot open {}: {}{hint}",
            opts.channel.display(),
            io::Error::from_raw_os_error(e)
        ))
    })?;
    init(channel.as_fd(), name, device).map_err(Registration::Failed)?;
    // The kernel creates the device while it takes the reply, or aborts the channel. A device
    // of that name but not of the number asked for is another's (registered meanwhile).
    let dev = cuse_device(name).ok_or(Registration::NotCreated)?;
    match device {
        Some((major, minor)) if dev != libc::makedev(major, minor) => Err(Registration::NotCreated),
        _ => Ok((channel, dev)),
    }
}

/// Answers `CUSE_INIT`: the device's name and number, unrestricted ioctls.
pub(super) fn init(
    channel: BorrowedFd<'_>,
    name: &str,
    device: Option<(u32, u32)>,
) -> Result<(), String> {
    let mut buf = vec![0u8; READ_BUFFER];
    let n = sys::read(channel, &mut buf)
        .map_err(|e| format!("reading CUSE_INIT: {}", io::Error::from_raw_os_error(e)))?;
    let (h, op) = cuse::parse(&buf[..n]).map_err(|_| "a short CUSE_INIT".to_string())?;
    let Op::Init { major, minor, .. } = op else {
        return Err(format!("expected CUSE_INIT, got opcode {}", h.opcode));
    };
    let reply = cuse::reply_init(h.unique, major, minor, name, device.unwrap_or((0, 0)))
        .ok_or_else(|| {
            format!("the kernel speaks FUSE {major}.{minor}; CUSE needs 7.11 or later")
        })?;
    sys::write(channel, &reply)
        .map_err(|e| format!("answering CUSE_INIT: {}", io::Error::from_raw_os_error(e)))
}

/// A reader: takes requests off the channel until it closes; the reason it did.
pub(super) fn read_requests(cfg: &Config, host: &Live<'_>, pool: &'static Pool) -> String {
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = match sys::read(host.channel, &mut buf) {
            Ok(n) => n,
            // The request went away (its caller was killed) before it was read.
            Err(libc::ENOENT | libc::EAGAIN) => continue,
            Err(libc::ENODEV) => {
                return "the CUSE channel was closed by the kernel (the device was aborted)".into()
            }
            Err(e) => {
                return format!(
                    "reading the CUSE channel: {}",
                    io::Error::from_raw_os_error(e)
                )
            }
        };
        match cuse::parse(&buf[..n]) {
            Ok((h, op @ Op::Ioctl { .. })) => {
                let tid = libc::pid_t::try_from(h.pid).unwrap_or(0);
                let flight = host.calls().read(h.unique, tid);
                pool.submit((h, op, flight));
            }
            Ok((h, op)) => handle(cfg, host, &h, op),
            Err(_) => {
                log::warn!("a short request ({n} bytes) from the CUSE channel");
                // Its caller still gets an answer, if the header names it.
                if let Some(unique) = buf.get(8..16).filter(|_| n >= 16) {
                    let unique = u64::from_ne_bytes(unique.try_into().unwrap_or([0; 8]));
                    let _ = host.send(&cuse::reply_error(unique, libc::EIO));
                }
            }
        }
    }
}
