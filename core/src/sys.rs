//! Thin safe wrappers over the few libc calls the safe modules need: `errno`, `fstat`, `getuid`,
//! and the audit sinks' `open`/`fstat`/`fchown`/`write`/`fdatasync`/`poll`/`sendto`; and [`Published`], the fork-safe once-cell
//! that holds the configuration.
//!
//! Every function here is async-signal-safe and allocation-free, because the guard also runs
//! inside signal handlers (see the reentrancy notes in `guard.rs`). No symbol is resolved here:
//! these are ordinary libc calls, never the interposed `ioctl` (that is `real.rs`).

#![allow(unsafe_code)]

use std::ffi::{c_int, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// A value set once and then shared for the life of the process, where nobody ever waits for
/// anybody: a thread that finds it unset builds its own, the first to publish wins, the others
/// drop theirs and use the winner's.
///
/// `OnceLock` makes the other threads wait for the one that is building the value. In a
/// library that runs inside someone else's process that is a trap: a process forked while a
/// thread was building it inherits a cell marked "being built" by a thread that does not exist
/// in the child, and the child's first use waits forever. Here a child simply builds its own.
/// The cost is that threads racing the very first use may each build one (the losers' are
/// dropped at once).
///
/// The published value is leaked on purpose: references to it are `'static`.
pub struct Published<T>(AtomicPtr<T>);

// SAFETY: like `OnceLock<T>`: `&T` is shared between threads (T: Sync) and a T built on one
// thread may be dropped on another (T: Send).
unsafe impl<T: Send + Sync> Sync for Published<T> {}

impl<T> Default for Published<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Published<T> {
    /// An unset cell.
    pub const fn new() -> Self {
        Published(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// The value, if published; never waits, never allocates.
    pub fn get(&self) -> Option<&T> {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: a non-null pointer was published by `get_or_init` from `Box::into_raw` (the
        // Acquire load pairs with its AcqRel exchange, so the value is fully built) and is never
        // freed.
        unsafe { p.as_ref() }
    }

    /// The value, building and publishing it first if it is unset.
    pub fn get_or_init(&self, make: impl FnOnce() -> T) -> &T {
        if let Some(v) = self.get() {
            return v;
        }
        let mine = Box::into_raw(Box::new(make()));
        match self.0.compare_exchange(
            std::ptr::null_mut(),
            mine,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just published from a live Box; never freed.
            Ok(_) => unsafe { &*mine },
            Err(theirs) => {
                // SAFETY: `mine` was never published, so nobody else can see it: ours to free.
                drop(unsafe { Box::from_raw(mine) });
                // SAFETY: as in `get`.
                unsafe { &*theirs }
            }
        }
    }
}

/// The calling thread's `errno`.
pub fn errno() -> c_int {
    // SAFETY: `__errno_location` always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
pub fn set_errno(value: c_int) {
    // SAFETY: as in `errno`; the location is thread-local and writable.
    unsafe { *libc::__errno_location() = value }
}

/// What the device check and the audit sinks need from `fstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileKind {
    /// `st_mode`.
    pub mode: u32,
    /// `st_rdev`.
    pub rdev: u64,
    /// `st_uid`: the owner.
    pub uid: u32,
}

impl FileKind {
    /// Whether this is a character device.
    pub fn is_char_device(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFCHR
    }

    /// Whether this is a regular file.
    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// `fstat(fd)`: the file's type, device number and owner, or the errno.
pub fn fstat(fd: c_int) -> Result<FileKind, c_int> {
    // fstat64 on glibc so that a 32-bit process never gets EOVERFLOW for a large inode.
    #[cfg(target_env = "gnu")]
    {
        let mut st = std::mem::MaybeUninit::<libc::stat64>::uninit();
        // SAFETY: `st` is a writable stat64; fstat64 only writes it, and only reads `fd`.
        let rc = unsafe { libc::fstat64(fd, st.as_mut_ptr()) };
        if rc != 0 {
            return Err(errno());
        }
        // SAFETY: fstat64 returned 0, so it filled the whole struct.
        let st = unsafe { st.assume_init() };
        Ok(FileKind {
            mode: st.st_mode,
            rdev: st.st_rdev,
            uid: st.st_uid,
        })
    }
    #[cfg(not(target_env = "gnu"))]
    {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: as above, with `stat`.
        let rc = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
        if rc != 0 {
            return Err(errno());
        }
        // SAFETY: fstat returned 0, so it filled the whole struct.
        let st = unsafe { st.assume_init() };
        Ok(FileKind {
            mode: st.st_mode,
            rdev: st.st_rdev as u64,
            uid: st.st_uid,
        })
    }
}

/// `lstat(path)`: like [`fstat`] for a path, not following a final symlink (which is reported as
/// one).
pub fn lstat(path: &CStr) -> Result<FileKind, c_int> {
    stat_at(libc::AT_FDCWD, path, libc::AT_SYMLINK_NOFOLLOW)
}

/// `fstatat(dirfd, path, flags)`. (`fstat` is not written with it: `AT_EMPTY_PATH` costs a path
/// lookup on older kernels, and `fstat` is on the guarded call's path.)
fn stat_at(dirfd: c_int, path: &CStr, flags: c_int) -> Result<FileKind, c_int> {
    // fstatat64 on glibc so that a 32-bit process never gets EOVERFLOW for a large inode.
    #[cfg(target_env = "gnu")]
    {
        let mut st = std::mem::MaybeUninit::<libc::stat64>::uninit();
        // SAFETY: `st` is a writable stat64 and `path` is NUL-terminated; fstatat64 only writes
        // the one and reads the other.
        let rc = unsafe { libc::fstatat64(dirfd, path.as_ptr(), st.as_mut_ptr(), flags) };
        if rc != 0 {
            return Err(errno());
        }
        // SAFETY: fstatat64 returned 0, so it filled the whole struct.
        let st = unsafe { st.assume_init() };
        Ok(FileKind {
            mode: st.st_mode,
            rdev: st.st_rdev,
            uid: st.st_uid,
        })
    }
    #[cfg(not(target_env = "gnu"))]
    {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: as above, with `stat`.
        let rc = unsafe { libc::fstatat(dirfd, path.as_ptr(), st.as_mut_ptr(), flags) };
        if rc != 0 {
            return Err(errno());
        }
        // SAFETY: fstatat returned 0, so it filled the whole struct.
        let st = unsafe { st.assume_init() };
        Ok(FileKind {
            mode: st.st_mode,
            rdev: st.st_rdev as u64,
            uid: st.st_uid,
        })
    }
}

/// `getuid()`.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The host's name (`uname`'s nodename), read where a record is written: allocation-free and
/// async-signal-safe, and never stale in a long-running daemon.
pub struct NodeName {
    buf: [u8; 65],
    len: usize,
}

impl NodeName {
    /// The name now (empty when `uname` fails, which it does not on Linux).
    pub fn now() -> NodeName {
        let mut out = NodeName {
            buf: [0; 65],
            len: 0,
        };
        // SAFETY: utsname is plain data; uname fills it and has no other precondition.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid, writable utsname.
        if unsafe { libc::uname(&mut u) } == 0 {
            for (slot, &c) in out.buf.iter_mut().zip(u.nodename.iter()) {
                if c == 0 {
                    break;
                }
                *slot = c as u8;
                out.len = out.len.saturating_add(1);
            }
        }
        out
    }

    /// As text (a name that is not UTF-8 is shown up to its first bad byte).
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len).unwrap_or_default();
        match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or_default())
                .unwrap_or_default(),
        }
    }
}

/// The real gid, then the supplementary groups (`getgid`, `getgroups`); allocates.
pub fn groups() -> Vec<u32> {
    // SAFETY: getgid has no preconditions and cannot fail.
    let mut out = vec![unsafe { libc::getgid() }];
    // SAFETY: a size of 0 asks for the count only; the pointer is not used.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if let Ok(n) = usize::try_from(n) {
        let mut list: Vec<libc::gid_t> = vec![0; n];
        // SAFETY: `list` holds `n` gid_t, the size passed.
        let got = unsafe { libc::getgroups(n as c_int, list.as_mut_ptr()) };
        if let Ok(got) = usize::try_from(got) {
            list.truncate(got);
            for g in list {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
    }
    out
}

/// `geteuid()`: the owner this process gives the files it creates.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The flags every open of an audit log uses. `O_NONBLOCK`: a FIFO with no reader fails at once
/// with `ENXIO` instead of waiting for one (and a FIFO with a reader never blocks a write);
/// `O_NOFOLLOW`: the guard runs as root inside the tool, so a log path in a writable directory
/// must not be turned into a write to `/etc/shadow` by a symlink (`ELOOP`).
const LOG_FLAGS: c_int =
    libc::O_WRONLY | libc::O_APPEND | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC;

/// Opens an existing audit log for one append (never creates it): `O_WRONLY|O_APPEND|
/// O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC`. What the descriptor is must still be checked (`fstat`).
pub fn open_existing(path: &CStr) -> Result<OwnedFd, c_int> {
    // SAFETY: `path` is NUL-terminated; open only reads it.
    let fd = unsafe { libc::open(path.as_ptr(), LOG_FLAGS) };
    owned(fd)
}

/// Creates an audit log that does not exist yet (`O_CREAT|O_EXCL`, so never through a symlink or
/// onto someone else's file: `EEXIST` if anything is there), mode `mode` before the umask.
pub fn create_new(path: &CStr, mode: u32) -> Result<OwnedFd, c_int> {
    // SAFETY: `path` is NUL-terminated; open only reads it.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            LOG_FLAGS | libc::O_CREAT | libc::O_EXCL,
            mode as libc::c_uint,
        )
    };
    owned(fd)
}

fn owned(fd: c_int) -> Result<OwnedFd, c_int> {
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by open, is valid, and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens an audit log for one append, creating it mode 0640 if it is missing; refuses (with
/// `ELOOP`, `ENXIO` or `EPERM`) anything but a regular file owned by root or this process's
/// effective uid. The audit module's own opener (`audit/sink/file.rs`) says why with more detail; this
/// is the same rule for other callers (`mfiguard-run --check`).
pub fn open_append(path: &CStr) -> Result<OwnedFd, c_int> {
    let fd = match open_existing(path) {
        Err(libc::ENOENT) => create_new(path, 0o640)?,
        other => other?,
    };
    let kind = fstat(fd.as_raw_fd())?;
    if !kind.is_regular() {
        return Err(libc::ENXIO);
    }
    if kind.uid != 0 && kind.uid != euid() {
        return Err(libc::EPERM);
    }
    Ok(fd)
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd), c_int> {
    let mut p = [0 as c_int; 2];
    // SAFETY: a live array of two descriptors for the kernel to fill.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(errno());
    }
    // SAFETY: both just created, ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
}

/// `fchown(fd, -1, gid)`: the group only.
pub fn fchown_group(fd: BorrowedFd<'_>, gid: u32) -> Result<(), c_int> {
    // SAFETY: fchown only reads the descriptor number, which `fd` keeps open; -1 keeps the owner.
    if unsafe { libc::fchown(fd.as_raw_fd(), libc::uid_t::MAX, gid) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// `fchmod(fd, mode)`.
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> Result<(), c_int> {
    // SAFETY: fchmod only reads the descriptor number, which `fd` keeps open.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Whether `fd` can take a write within `timeout_ms` (`poll` with `POLLOUT`; 0: no wait). A
/// pipe or terminal that reports it can take at least one write of up to `PIPE_BUF` bytes
/// without blocking, if nobody else writes to it first.
pub fn writable_within(fd: c_int, timeout_ms: c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: `p` is one valid pollfd.
        match unsafe { libc::poll(&mut p, 1, timeout_ms) } {
            1 => return p.revents & libc::POLLOUT != 0,
            0 => return false,
            // Interrupted by a signal: the handler's time is not counted, the wait starts again.
            _ if errno() == libc::EINTR => continue,
            _ => return false,
        }
    }
}

/// How long a record waits for a stderr that cannot take it at once.
pub const STDERR_GRACE_MS: c_int = 200;

/// Set when stderr stayed full for a whole grace period; cleared by the next write that goes
/// through. While set, records do not wait at all.
static STDERR_STALLED: AtomicBool = AtomicBool::new(false);

/// Writes `buf` to stderr only if stderr can take it within [`STDERR_GRACE_MS`]; `EAGAIN`
/// otherwise. A terminal or pipe whose reader is a little behind (a burst of records on a
/// terminal) gets the line after a short wait; one nobody reads (a tool's stderr piped to a
/// process that stopped reading, a terminal stopped with ^S) costs one grace period, after
/// which records are lost and counted without waiting, until a write goes through again. The
/// descriptor's own mode is not touched (setting `O_NONBLOCK` on it would change it for the
/// host, and for every process sharing it).
///
/// A line longer than `PIPE_BUF` (4096 bytes), or another writer filling the pipe between the
/// `poll` and the `write`, can still make the write wait for the reader: the guard's lines are
/// far shorter than that, and the second is a race with the host's own writes to a stalled pipe.
pub fn write_stderr_nowait(buf: &[u8]) -> Result<(), c_int> {
    let grace = if STDERR_STALLED.load(Ordering::Relaxed) {
        0
    } else {
        STDERR_GRACE_MS
    };
    if !writable_within(libc::STDERR_FILENO, grace) {
        STDERR_STALLED.store(true, Ordering::Relaxed);
        return Err(libc::EAGAIN);
    }
    let result = write_once(libc::STDERR_FILENO, buf);
    if result.is_ok() {
        STDERR_STALLED.store(false, Ordering::Relaxed);
    }
    result
}

/// Sends one datagram to the Unix socket at `path` without ever waiting: a fresh
/// `SOCK_NONBLOCK|SOCK_CLOEXEC` socket and `sendto(MSG_DONTWAIT|MSG_NOSIGNAL)`, so a syslog
/// daemon that stopped reading costs a lost record (`EAGAIN`), never a stalled tool.
/// Allocation-free. Returns the errno, or `EMSGSIZE` if the datagram was cut.
pub fn send_datagram_nowait(path: &CStr, buf: &[u8]) -> Result<(), c_int> {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid (empty) value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.to_bytes();
    // Room for the NUL that ends the path.
    if bytes.len() >= addr.sun_path.len() {
        return Err(libc::ENAMETOOLONG);
    }
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: socket has no pointer arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    let sock = owned(fd)?;
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let n = loop {
        // SAFETY: `buf` is readable for its length; `addr` is a valid sockaddr_un of `len` bytes.
        let n = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        match usize::try_from(n) {
            Ok(n) => break n,
            Err(_) if errno() == libc::EINTR => continue,
            Err(_) => return Err(errno()),
        }
    };
    if n == buf.len() {
        Ok(())
    } else {
        Err(libc::EMSGSIZE)
    }
}

/// `fdatasync(fd)`.
pub fn fdatasync(fd: BorrowedFd<'_>) -> Result<(), c_int> {
    // SAFETY: fdatasync only reads the descriptor number, which `fd` keeps open.
    if unsafe { libc::fdatasync(fd.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Writes `buf` with one `write(2)` and never lets it raise `SIGPIPE`.
///
/// One call, so that a line appended to an `O_APPEND` file is never interleaved with another
/// process's line. Two exceptions, both where a single call could not have done better:
///
/// - `EINTR` before anything was written (a signal handler ran while the write was blocked on a
///   terminal, pipe or socket that was full): the write is issued again;
/// - a short count (the same interruption after part of the line went out, or a terminal or
///   pipe that took only part of it): the rest is written, so the reader gets the whole line
///   rather than a cut one followed by the next record. For a regular file this happens only
///   when the disk fills, where the rest fails too and is reported.
///
/// Any other failure is returned (`EAGAIN` on a descriptor the host made non-blocking
/// included: the guard never waits for a reader).
///
/// `SIGPIPE`: writing to a pipe whose reader is gone (a closed stderr pipe, a FIFO as the log
/// file) would kill the host. The signal is blocked in this thread around the write, and if the
/// write failed with `EPIPE` and no `SIGPIPE` was pending before, the one it raised is consumed.
pub fn write_once(fd: c_int, buf: &[u8]) -> Result<(), c_int> {
    let mut pipe_set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut old_mask = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut pending = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset/sigaddset initialise the set they are given; the set is ours.
    let pipe_set = unsafe {
        libc::sigemptyset(pipe_set.as_mut_ptr());
        libc::sigaddset(pipe_set.as_mut_ptr(), libc::SIGPIPE);
        pipe_set.assume_init()
    };
    // SAFETY: both sets are valid; pthread_sigmask writes the old mask into `old_mask`.
    let masked =
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &pipe_set, old_mask.as_mut_ptr()) };
    // SAFETY: sigpending fills `pending`; sigismember only reads it.
    let pending_before = masked == 0
        && unsafe {
            libc::sigpending(pending.as_mut_ptr()) == 0
                && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1
        };
    let result = write_all(fd, buf);
    if masked == 0 {
        if result == Err(libc::EPIPE) && !pending_before {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `pipe_set` is valid; a null siginfo pointer is allowed.
            while unsafe { libc::sigtimedwait(&pipe_set, std::ptr::null_mut(), &zero) } < 0
                && errno() == libc::EINTR
            {}
        }
        // SAFETY: `old_mask` was filled by the successful pthread_sigmask above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, old_mask.as_ptr(), std::ptr::null_mut())
        };
    }
    result
}

/// `write` until all of `buf` is written: again after `EINTR`, on with the rest after a short
/// count (see `write_once`). A write that makes no progress is `EIO`.
fn write_all(fd: c_int, buf: &[u8]) -> Result<(), c_int> {
    let mut rest = buf;
    while !rest.is_empty() {
        // SAFETY: `rest` is valid for `rest.len()` bytes of reading.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        match usize::try_from(n) {
            Ok(0) => return Err(libc::EIO),
            Ok(written) => rest = rest.get(written..).unwrap_or_default(),
            Err(_) => match errno() {
                libc::EINTR => continue,
                err => return Err(err),
            },
        }
    }
    Ok(())
}

/// `readlink(path)` into `buf`: the target's length (cut at `buf.len()`), or the errno.
/// Allocation-free (the device check runs in signal handlers too).
pub fn readlink(path: &CStr, buf: &mut [u8]) -> Result<usize, c_int> {
    // SAFETY: `path` is NUL-terminated; the kernel writes at most `buf.len()` bytes into it.
    let n = unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| errno())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_keeps_the_first_value_and_never_waits() {
        static CELL: Published<String> = Published::new();
        assert!(CELL.get().is_none());
        let first = CELL.get_or_init(|| "first".to_owned());
        assert_eq!(first, "first");
        // A second initialiser is not even run once a value is there.
        assert_eq!(CELL.get_or_init(|| unreachable!()), "first");
        // Racing initialisers: all of them end up with the one value that was published.
        static RACE: Published<u64> = Published::new();
        let seen: Vec<u64> = (0..8)
            .map(|i| std::thread::spawn(move || *RACE.get_or_init(|| i)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(seen.iter().all(|&v| v == seen[0]), "{seen:?}");
        // An initialiser that is still running (a thread forked away, say) blocks nobody.
        static SLOW: Published<u8> = Published::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let slow = std::thread::spawn(move || {
            *SLOW.get_or_init(|| {
                rx.recv().unwrap();
                1
            })
        });
        assert_eq!(*SLOW.get_or_init(|| 2), 2);
        tx.send(()).unwrap();
        assert_eq!(
            slow.join().unwrap(),
            2,
            "the later builder lost and used the value there"
        );
    }

    #[test]
    fn errno_round_trips() {
        set_errno(libc::ENOTTY);
        assert_eq!(errno(), libc::ENOTTY);
        set_errno(0);
        assert_eq!(errno(), 0);
    }

    #[test]
    fn fstat_tells_char_devices() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let kind = fstat(null.as_raw_fd()).unwrap();
        assert!(kind.is_char_device());
        assert_eq!(libc::major(kind.rdev as libc::dev_t), 1);
        let dir = std::fs::File::open("/").unwrap();
        assert!(!fstat(dir.as_raw_fd()).unwrap().is_char_device());
        assert_eq!(fstat(-1), Err(libc::EBADF));
    }

    #[test]
    fn a_datagram_to_a_socket_nobody_reads_never_waits() {
        let dir = std::env::temp_dir().join(format!("mfiguard-dgram-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _reader = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let line = [b'x'; 512];
        // The receive queue fills (a few hundred datagrams), then each send fails at once.
        let mut sent = 0;
        let err = loop {
            match send_datagram_nowait(&c, &line) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 1_000_000, "the queue never filled");
        };
        assert_eq!(err, libc::EAGAIN, "after {sent} datagrams");
        assert!(sent > 0);
        assert_eq!(
            send_datagram_nowait(c"/nonexistent/log", b"x"),
            Err(libc::ENOENT)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_pipe_is_not_writable_now() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) };
        assert_eq!(rc, 0);
        assert!(writable_within(fds[1], 0));
        let chunk = [0u8; 4096];
        // SAFETY: `chunk` is readable; the descriptor is ours and non-blocking.
        while unsafe { libc::write(fds[1], chunk.as_ptr().cast(), chunk.len()) } > 0 {}
        assert!(!writable_within(fds[1], 0));
        let t = std::time::Instant::now();
        assert!(!writable_within(fds[1], 50));
        assert!(t.elapsed() >= std::time::Duration::from_millis(40));
        // SAFETY: closing the descriptors we own.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }

    #[test]
    fn write_once_to_a_closed_pipe_is_epipe_not_a_signal() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: closing the read end we own.
        unsafe { libc::close(fds[0]) };
        assert_eq!(write_once(fds[1], b"x\n"), Err(libc::EPIPE));
        // SAFETY: closing the write end we own.
        unsafe { libc::close(fds[1]) };
        // Still alive, and no SIGPIPE left pending for the test thread.
        let mut pending = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigpending fills the set.
        let pending = unsafe {
            libc::sigpending(pending.as_mut_ptr());
            pending.assume_init()
        };
        // SAFETY: reading the filled set.
        assert_eq!(unsafe { libc::sigismember(&pending, libc::SIGPIPE) }, 0);
    }
}
