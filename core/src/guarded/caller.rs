//! The caller: its memory, who it is, and how it gets its answer. Each entry supplies its own
//! (the library: its own memory through the kernel; the supervisor: `process_vm_readv` and the
//! notification; ptrace: the stopped tracee; `mfiguard-hostd`: the CUSE request).

use std::ffi::c_int;

use mfiguard_sanitizer::Errno;

use crate::audit::{Invoker, Who};
use crate::config::Subject;

/// What a guarded call answers its caller: a return value, or an errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The driver's non-negative result.
    Value(c_int),
    /// The call fails with this errno.
    Errno(Errno),
}

impl Answer {
    /// The answer for a driver's `(ret, errno)`.
    pub const fn of(ret: c_int, errno: c_int) -> Answer {
        if ret < 0 {
            Answer::Errno(Errno(errno))
        } else {
            Answer::Value(ret)
        }
    }

    /// As a system call returns it: `(ret, errno)`, -1 on failure, errno 0 on success.
    pub const fn ret_errno(self) -> (c_int, c_int) {
        match self {
            Answer::Value(v) => (v, 0),
            Answer::Errno(e) => (-1, e.0),
        }
    }
}

/// The calling process: its memory and who it is.
pub trait Caller {
    /// Copies `out.len()` bytes at `addr` of the caller into `out`; an errno when they cannot
    /// all be read (or the call is no longer pending: the caller died, the request is stale).
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int>;
    /// Confirms that everything read so far was the caller's: called once, after the last read
    /// and before anything is decided or executed on what was read. An entry whose reads can
    /// reach another process (a pid reused once the call went away) checks here that the call
    /// is still pending: the check holds for every earlier read, since a call that went away
    /// never comes back. `Ok` by default.
    fn confirm(&self) -> Result<(), c_int> {
        Ok(())
    }
    /// Writes `data` at `addr` of the caller.
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int>;
    /// Who the caller is, for records; asked only when a record is written. `None`: this
    /// process (the library's caller), taken as each record is written.
    fn identity(&self) -> Option<Identity>;
    /// Gives the caller its answer; an errno when it can no longer take it (it died, or a
    /// signal interrupted its call). Called once per call, before the outcome record. (The
    /// library's caller takes its answer as the hook's return value: always `Ok`.)
    fn deliver(&self, answer: Answer) -> Result<(), c_int>;
}

/// The calling process, as records name it and policies match it.
pub struct Identity {
    /// Its pid (thread group) and real uid.
    pub who: Who,
    /// Its executable.
    pub exe: String,
    /// Who ran it (sudo, login uid, argv).
    pub invoker: Invoker,
    /// Its real gid and supplementary groups (for `[group ...]` policy sections).
    pub groups: Vec<u32>,
}

impl Identity {
    /// As policy sections match it.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            uid: Some(self.who.uid),
            groups: &self.groups,
            sudo_user: self.invoker.sudo_user.as_deref(),
            sudo_uid: self.invoker.sudo_uid,
            login_uid: self.invoker.login_uid,
            exe: &self.exe,
            run_tool: self.invoker.run_tool.as_deref(),
        }
    }
}
