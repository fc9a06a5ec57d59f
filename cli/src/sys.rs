//! The few libc calls the wrapper needs that std does not offer (and `mfiguard-core`'s `sys` does
//! not: `euid`, `pipe` are there). The only module with `unsafe`.
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> Option<CString> {
    CString::new(p.as_os_str().as_bytes()).ok()
}

/// `access(path, mode) == 0`: whether this process's real ids may do `mode` on `path`, as
/// the shell's `test -x`/`-w` ask.
fn access(p: &Path, mode: libc::c_int) -> bool {
    let Some(c) = cpath(p) else { return false };
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// Whether this user may execute `p`.
pub fn executable(p: &Path) -> bool {
    access(p, libc::X_OK)
}

/// Whether this user may write `p`.
pub fn writable(p: &Path) -> bool {
    access(p, libc::W_OK)
}

/// `getegid()`.
pub fn egid() -> u32 {
    // SAFETY: no preconditions, cannot fail.
    unsafe { libc::getegid() }
}

/// The name as bytes, for the places that compare path suffixes.
pub fn bytes(s: &OsStr) -> &[u8] {
    s.as_bytes()
}

/// Puts `SIGPIPE` back to its default, which the Rust runtime changed to "ignore": `--check`
/// piped into `head` ends quietly, as a shell program would, instead of failing to print.
pub fn default_sigpipe() {
    // SAFETY: installing SIG_DFL has no preconditions; no handler of ours is replaced.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

pub use mfiguard_core::sys::euid;

/// A pipe, both ends close-on-exec: (read, write).
pub fn pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    mfiguard_core::sys::pipe().map_err(std::io::Error::from_raw_os_error)
}
