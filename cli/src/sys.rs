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

/// The name of user `uid` in the password database, when it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value (null pointers, zero ids) for
        // getpwuid_r to fill in.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `pw` and `buf` are valid for writes of their sizes and outlive the call;
        // `found` receives either null or `&mut pw`.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pw.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`, which
        // is still alive.
        let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// Runs `f` with this process's standard output sent to /dev/null (the text `--check` prints
/// while `--check --json` collects its facts), and puts it back.
pub fn with_stdout_silenced<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let _ = std::io::stdout().flush();
    let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null");
    // SAFETY: dup of fd 1 has no memory-safety preconditions; a failure returns -1.
    let saved = unsafe { libc::dup(1) };
    let silenced = match (&devnull, saved >= 0) {
        // SAFETY: both descriptors are open; dup2 replaces fd 1 atomically.
        (Ok(n), true) => (unsafe { libc::dup2(n.as_raw_fd(), 1) }) == 1,
        _ => false,
    };
    let out = f();
    let _ = std::io::stdout().flush();
    if silenced {
        // SAFETY: `saved` is the descriptor dup'd above, still open; fd 1 gets it back.
        unsafe { libc::dup2(saved, 1) };
    }
    if saved >= 0 {
        // SAFETY: `saved` is ours and closed once.
        unsafe { libc::close(saved) };
    }
    out
}
