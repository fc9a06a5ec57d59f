//! The file sink: one JSON object a line, appended by one `write` on a descriptor opened for it.

use std::ffi::c_int;
use std::fmt::{self, Display};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Format, Sink, SinkError};
use crate::config::Config;
use crate::sys;

/// Why the file sink refused its path. Nothing is written to it; each record goes to stderr
/// instead (and is still counted in `records_lost`, since it missed the configured sink).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A symbolic link (`O_NOFOLLOW`): never followed, whoever made it.
    Symlink,
    /// A FIFO: with no reader it would hang the tool, with one it hands the records to
    /// whoever opened it.
    Fifo,
    /// A character device (`/dev/null`, a terminal, `/dev/watchdog`...).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix socket.
    Socket,
    /// A directory.
    Directory,
    /// Anything else that is not a regular file.
    NotRegular,
    /// Owned by someone who is neither root nor this process (a file pre-created in `/tmp` or a
    /// shared directory by another user, who could read, truncate or forge the records).
    ForeignOwner {
        /// The file's owner.
        owner: u32,
        /// This process's effective uid.
        euid: u32,
    },
}

impl Refusal {
    /// What a file of this kind is refused for, if it is refused: not a regular file, or not
    /// owned by root or this process's effective uid.
    pub fn of(kind: sys::FileKind, euid: u32) -> Option<Refusal> {
        let refusal = match kind.mode & libc::S_IFMT {
            libc::S_IFREG => None,
            libc::S_IFLNK => Some(Refusal::Symlink),
            libc::S_IFIFO => Some(Refusal::Fifo),
            libc::S_IFCHR => Some(Refusal::CharDevice),
            libc::S_IFBLK => Some(Refusal::BlockDevice),
            libc::S_IFSOCK => Some(Refusal::Socket),
            libc::S_IFDIR => Some(Refusal::Directory),
            _ => Some(Refusal::NotRegular),
        };
        refusal.or_else(|| {
            (kind.uid != 0 && kind.uid != euid).then_some(Refusal::ForeignOwner {
                owner: kind.uid,
                euid,
            })
        })
    }

    /// The errno a refusal counts as (for `MFIGUARD_LOG_REQUIRED`'s report).
    pub const fn errno(self) -> c_int {
        match self {
            Refusal::Symlink => libc::ELOOP,
            Refusal::Directory => libc::EISDIR,
            Refusal::ForeignOwner { .. } => libc::EPERM,
            _ => libc::ENXIO,
        }
    }
}

impl Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match *self {
            Refusal::Symlink => return f.write_str("it is a symbolic link (never followed)"),
            Refusal::NotRegular => return f.write_str("it is not a regular file"),
            Refusal::ForeignOwner { owner, euid } => {
                return write!(
                    f,
                    "it is owned by uid {owner}, neither root nor this process (uid {euid}): \
                     refused, not written to"
                )
            }
            Refusal::Fifo => "a FIFO",
            Refusal::CharDevice => "a character device",
            Refusal::BlockDevice => "a block device",
            Refusal::Socket => "a socket",
            Refusal::Directory => "a directory",
        };
        write!(f, "it is {what}, not a regular file")
    }
}

/// The mode of a record file the guard creates: the owner writes, the group reads (logrotate's
/// `create 0640 root adm`, which the shipped configuration uses too).
pub const CREATE_MODE: u32 = 0o640;
/// The group a created record file gets when it exists and the process may give it.
const LOG_GROUP: &[u8] = b"adm";
const GROUP_FILE: &str = "/etc/group";

/// The gid of group `adm`, from `/etc/group`, read without allocating (the group is always a
/// local one; NSS modules are not something to load into a host from a signal handler).
pub(crate) fn log_group_gid() -> Option<u32> {
    let file = std::fs::File::open(GROUP_FILE).ok()?;
    crate::device::scan_lines(file, |line, cut| {
        // name:password:gid:members; a cut line still has its first three fields.
        let mut fields = line.split(|&b| b == b':');
        if fields.next()? != LOG_GROUP {
            return None;
        }
        let _password = fields.next()?;
        let gid = fields.next()?;
        // An uncut line has the member list after the gid; a cut one may end inside it.
        if !cut && fields.next().is_none() {
            return None;
        }
        std::str::from_utf8(gid).ok()?.parse().ok()
    })
    .ok()
    .flatten()
}

/// Opens the record file for one append, or says why not.
///
/// The path is looked at first (`lstat`), so that a FIFO, a device or a symlink is refused
/// without being opened at all (opening a device can have effects of its own:
/// `/dev/watchdog`), until it has once been acceptable; then opened
/// `O_WRONLY|O_APPEND|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC`, and the opened descriptor checked
/// (`fstat`), which is what counts: the path may have been replaced in between. A missing file is created with `O_EXCL`, mode 0640, group `adm` when
/// that group exists and the process may give it.
pub(crate) fn open_log(path: &std::ffi::CStr) -> Result<std::os::fd::OwnedFd, SinkError> {
    // The path is looked at before it is opened until it has once been an acceptable file:
    // after that only what is opened is checked (one system call less per record; the path of
    // a process's log does not change, and replacing a checked regular file by a device node
    // takes root). A rotation (the file missing) is no reason to look again: O_EXCL creates.
    if !LOG_PATH_CHECKED.load(Ordering::Relaxed) {
        match sys::lstat(path) {
            Ok(kind) => {
                if let Some(r) = Refusal::of(kind, owner_check_euid(kind.uid)) {
                    return Err(SinkError::Refused(r));
                }
            }
            Err(libc::ENOENT) => {}
            Err(e) => return Err(SinkError::Failed(e)),
        }
    }
    // A file removed between the open and the create (a rotation) is looked at again; three
    // rounds of that in a row is a directory being played with, and the record is lost.
    for _ in 0..3 {
        let (fd, created) = match sys::open_existing(path) {
            Ok(fd) => (fd, false),
            Err(libc::ENOENT) => match sys::create_new(path, CREATE_MODE) {
                Ok(fd) => (fd, true),
                Err(libc::EEXIST) => continue,
                Err(e) => return Err(SinkError::Failed(e)),
            },
            Err(libc::ELOOP) => return Err(refused(Refusal::Symlink)),
            Err(libc::EISDIR) => return Err(refused(Refusal::Directory)),
            // O_NONBLOCK: a FIFO with no reader (or a device with no driver) fails at once.
            Err(libc::ENXIO) => {
                let why = match sys::lstat(path) {
                    Ok(kind) => Refusal::of(kind, owner_check_euid(kind.uid)),
                    Err(_) => None,
                };
                return Err(refused(why.unwrap_or(Refusal::NotRegular)));
            }
            Err(e) => return Err(SinkError::Failed(e)),
        };
        let kind = sys::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
        // A file this call created (O_EXCL) is ours whoever the file system says owns it (an
        // NFS export squashing root to nobody): only its type is checked.
        let kind = if created {
            sys::FileKind { uid: 0, ..kind }
        } else {
            kind
        };
        if let Some(r) = Refusal::of(kind, owner_check_euid(kind.uid)) {
            return Err(refused(r));
        }
        if created {
            // Best effort: a process that may not give the group keeps its own, and the mode
            // is exact whatever the umask (0640 is already no more than the umask allows
            // others: nothing).
            if let Some(gid) = log_group_gid() {
                let _ = sys::fchown_group(fd.as_fd(), gid);
            }
            let _ = sys::fchmod(fd.as_fd(), CREATE_MODE);
        }
        LOG_PATH_CHECKED.store(true, Ordering::Relaxed);
        return Ok(fd);
    }
    Err(SinkError::Failed(libc::EAGAIN))
}

/// Whether the record file's path has been an acceptable file once in this process (see
/// `open_log`); cleared by any refusal.
pub(crate) static LOG_PATH_CHECKED: AtomicBool = AtomicBool::new(false);

fn refused(r: Refusal) -> SinkError {
    LOG_PATH_CHECKED.store(false, Ordering::Relaxed);
    SinkError::Refused(r)
}

/// The effective uid to compare a file's owner with: only asked for when the owner is not
/// root (a root-owned file is always acceptable), to spare a system call per record.
fn owner_check_euid(owner: u32) -> u32 {
    if owner == 0 {
        0
    } else {
        sys::euid()
    }
}

/// The record file: JSON lines appended to the path of `MFIGUARD_LOG`.
pub(crate) struct File<'a>(pub(crate) &'a std::ffi::CStr);

impl Sink for File<'_> {
    fn format(&self) -> Format {
        Format::Json
    }

    fn send(&self, cfg: &Config, bytes: &[u8]) -> Result<(), SinkError> {
        let fd = open_log(self.0)?;
        sys::write_once(std::os::fd::AsRawFd::as_raw_fd(&fd), bytes)?;
        if cfg.log_sync {
            sys::fdatasync(fd.as_fd())?;
        }
        Ok(())
    }
}
