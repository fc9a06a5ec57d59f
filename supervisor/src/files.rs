//! The tool's descriptors that a guard outside it has duplicated and recognised, kept between
//! calls: a call on the same open file costs one `kcmp` instead of `pidfd_getfd`, `fstat` and
//! `close`. Another thread of the tool may put another file at the same number at any time
//! (`dup2`), so the kept file counts only while `kcmp` says the tool's descriptor is still
//! that very open file description; otherwise it is duplicated and recognised again.

use std::ffi::c_int;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use mfiguard_core::device::Target;

use crate::sys;

/// How many of the tool's descriptors are kept.
const FILES_MAX: usize = 8;

/// A descriptor of the tool, duplicated here and recognised once: `tid`'s descriptor `fd`
/// was this file when it was last checked.
struct KnownFile {
    tid: libc::pid_t,
    fd: c_int,
    own: Rc<OwnedFd>,
    target: Target,
}

/// The kept descriptors, the oldest forgotten past [`FILES_MAX`].
#[derive(Default)]
pub(crate) struct KnownFiles {
    files: Vec<KnownFile>,
}

impl KnownFiles {
    /// The file `tid`'s descriptor `fd` was when last recognised, if it still is.
    pub(crate) fn get(&self, tid: libc::pid_t, fd: c_int) -> Option<(Rc<OwnedFd>, Target)> {
        let k = self.files.iter().find(|k| k.tid == tid && k.fd == fd)?;
        sys::same_file(k.own.as_fd(), tid, fd).then(|| (Rc::clone(&k.own), k.target))
    }

    /// Keeps `own`, recognised as `target`, for `tid`'s descriptor `fd`.
    pub(crate) fn remember(
        &mut self,
        tid: libc::pid_t,
        fd: c_int,
        own: OwnedFd,
        target: Target,
    ) -> Rc<OwnedFd> {
        self.files.retain(|k| !(k.tid == tid && k.fd == fd));
        if self.files.len() >= FILES_MAX {
            self.files.remove(0);
        }
        let own = Rc::new(own);
        self.files.push(KnownFile {
            tid,
            fd,
            own: Rc::clone(&own),
            target,
        });
        own
    }
}
