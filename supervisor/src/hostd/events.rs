//! Controller events, carried to the callers as the driver delivers them.
//!
//! The driver announces an event two ways (`megasas_service_aen`): the poll flag of its node
//! (readable once, for the first poll after the event) and `SIGIO` to the owner of every open
//! file that enabled asynchronous notification (`kill_fasync` on its queue of files whose
//! `fasync` was called: `F_SETFL O_ASYNC` with `F_SETOWN`). A tool registers for events with
//! `MEGASAS_IOC_GET_AEN`, which the driver answers only on such a file.
//!
//! Through the daemon, the callers' files are CUSE files: the driver never sees them, and CUSE
//! has no `fasync`, so their `F_SETFL O_ASYNC` and `F_SETOWN` only set the open file's flags and
//! owner, which the daemon reads:
//!
//! - the poll flag: the daemon polls the driver's node and wakes the callers' polls;
//! - `GET_AEN`: the daemon finds the caller's descriptor (`/proc/TID/syscall`, while the
//!   caller waits in the call) and takes its open file (`pidfd_getfd`, Linux 5.6); a file
//!   without `O_ASYNC` gets the driver's `EINVAL`; else the daemon registers on its own
//!   descriptor (asynchronous, owned by itself) and keeps the caller's file registered;
//! - at each `SIGIO` the driver sends the daemon, every registered file still open in its
//!   process with `O_ASYNC` set gets, as the driver would send it, the signal its owner asked
//!   for (`F_GETSIG`; `SIGIO` by default) sent to its owner (`F_GETOWN_EX`: a thread, a
//!   process or a process group), when the registering caller may signal it (the kernel's
//!   `sigio_perm`): recorded (`hostd.event`).

use std::os::fd::OwnedFd;
use std::sync::Mutex;

/// The driver's event flag, relayed: set when a poll of the driver's node says readable, seen
/// (and cleared) by the first caller's poll after, as the driver's own flag is; and the files
/// registered for `SIGIO`.
#[derive(Default)]
pub(super) struct Events {
    state: Mutex<EventState>,
    files: Mutex<Vec<AenFile>>,
}

#[derive(Default)]
pub(super) struct EventState {
    pending: bool,
    /// The polled files to wake at the next event (`kh`), each once.
    waiting: Vec<u64>,
}

/// How many polled files are remembered for a wake-up (a closed file's handle is forgotten at
/// the next event).
pub(super) const POLL_WAITERS_MAX: usize = 1024;

/// How many files may be registered for `SIGIO` at once (one whose process is gone, or which
/// it closed, is forgotten at the next event).
pub(super) const AEN_FILES_MAX: usize = 1024;

/// A caller's open file registered for events (`MEGASAS_IOC_GET_AEN`).
#[derive(Debug)]
pub(super) struct AenFile {
    /// The registering process.
    pub(super) tgid: libc::pid_t,
    /// Its descriptor of the node.
    pub(super) fd: libc::c_int,
    /// Whether the file has `O_ASYNC` (its `fasync` would have been called under the driver).
    pub(super) asynchronous: bool,
    /// The process, to take the file again at each event (`None`: a test's).
    pub(super) pidfd: Option<OwnedFd>,
}

impl Events {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, EventState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn poll(&self, kh: u64, notify: bool) -> bool {
        let mut st = self.lock();
        if st.pending {
            st.pending = false;
            return true;
        }
        if notify && !st.waiting.contains(&kh) && st.waiting.len() < POLL_WAITERS_MAX {
            st.waiting.push(kh);
        }
        false
    }

    /// An event came: flag it, and the files to wake.
    pub(super) fn arrived(&self) -> Vec<u64> {
        let mut st = self.lock();
        st.pending = true;
        std::mem::take(&mut st.waiting)
    }

    /// The files registered for `SIGIO`.
    pub(super) fn files(&self) -> std::sync::MutexGuard<'_, Vec<AenFile>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `file` (another registration of the same descriptor replaces it); false when
    /// there is no room.
    pub(super) fn register(&self, file: AenFile) -> bool {
        let mut files = self.files();
        files.retain(|f| (f.tgid, f.fd) != (file.tgid, file.fd));
        if files.len() >= AEN_FILES_MAX {
            return false;
        }
        files.push(file);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tgid: libc::pid_t, fd: libc::c_int) -> AenFile {
        AenFile {
            tgid,
            fd,
            asynchronous: true,
            pidfd: None,
        }
    }

    #[test]
    fn a_descriptor_is_registered_once_and_the_registry_is_bounded() {
        let e = Events::default();
        assert!(e.register(file(10, 3)));
        assert!(e.register(file(10, 3)));
        assert!(e.register(file(10, 4)));
        assert_eq!(e.files().len(), 2);
        for n in 2..AEN_FILES_MAX {
            assert!(e.register(file(11, n as libc::c_int)));
        }
        assert!(!e.register(file(12, 3)), "full");
    }
}
