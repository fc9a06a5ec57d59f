//! Thin safe wrappers over the few libc calls the safe modules need: `errno`, `fstat`, `getuid`,
//! and the audit sinks' `open`/`write`/`fdatasync`; and [`Published`], the fork-safe once-cell
//! that holds the configuration.
//!
//! Every function here is async-signal-safe and allocation-free, because the guard also runs
//! inside signal handlers (see the reentrancy notes in `guard.rs`). No symbol is resolved here:
//! these are ordinary libc calls, never the interposed `ioctl` (that is `real.rs`).

#![allow(unsafe_code)]

use std::ffi::{c_int, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicPtr, Ordering};

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

/// What the device check needs from `fstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileKind {
    /// `st_mode`.
    pub mode: u32,
    /// `st_rdev`.
    pub rdev: u64,
}

impl FileKind {
    /// Whether this is a character device.
    pub fn is_char_device(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFCHR
    }
}

/// `fstat(fd)`: the file's type and device number, or the errno.
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
        })
    }
}

/// `getuid()`.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Opens an audit log for one append: `O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|O_NOFOLLOW`, mode 0600.
///
/// `O_NOFOLLOW`: the guard runs as root inside the tool, so a log path in a writable directory
/// must not be turned into a write to `/etc/shadow` by a symlink.
pub fn open_append(path: &CStr) -> Result<OwnedFd, c_int> {
    let flags =
        libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: `path` is NUL-terminated; open only reads it.
    let fd = unsafe { libc::open(path.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by open, is valid, and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
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
