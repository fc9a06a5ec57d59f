//! The next `ioctl`: the definition that comes after this library in the lookup order (glibc's,
//! or a simulator preloaded after the guard in tests), found with `dlsym(RTLD_NEXT, "ioctl")`
//! (the real `dlsym`, which `dl.rs` finds: the exported `dlsym` is the guard's own).
//!
//! This is the only module that knows symbol names. The pointer is resolved once: in a
//! constructor at load time (which does nothing but this libc-level lookup) and, should a call
//! arrive before the constructor ran (another library's constructor issuing an ioctl), lazily on
//! that call. After that, reaching the next `ioctl` costs one atomic load.
//!
//! We call it through a C-variadic function pointer, exactly as glibc declares it: calling
//! variadic functions is stable Rust (only *defining* them is not), so the call uses the real
//! variadic convention (on x86_64, `%al` carries the number of vector registers).
//!
//! If the lookup fails (there is no later `ioctl`: not something `LD_PRELOAD` into a glibc
//! program can produce), MegaRAID calls fail closed with `EIO` (see `guard.rs`), and every other
//! call is issued as the raw `ioctl` system call, which is what glibc's wrapper does on x86_64
//! and i386: failing unrelated calls with `ENOSYS` would break the host (terminal set-up,
//! `isatty`) for no gain in safety.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_ulong, c_void, CStr};
use std::sync::OnceLock;

use mfiguard_core::guarded::PrivatePacket;

use crate::snapshot::CallerArg;

/// glibc's `int ioctl(int fd, unsigned long request, ...)`.
type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;

const SYMBOL: &CStr = c"ioctl";

static NEXT: OnceLock<Option<IoctlFn>> = OnceLock::new();

/// glibc's name for `ioctl` in a 32-bit program built with `-D_TIME_BITS=64` (2.34 and later).
#[cfg(target_arch = "x86")]
const SYMBOL_TIME64: &CStr = c"__ioctl_time64";

#[cfg(target_arch = "x86")]
static NEXT_TIME64: OnceLock<Option<IoctlFn>> = OnceLock::new();

fn resolve() -> Option<IoctlFn> {
    resolve_symbol(SYMBOL, crate::ioctl)
}

fn resolve_symbol(
    symbol: &CStr,
    own: unsafe extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int,
) -> Option<IoctlFn> {
    // The real dlsym, called from here: RTLD_NEXT means "after this library" (`dlsym` itself
    // is ours, and would answer `ioctl` with the guard; see `dl.rs`).
    let dlsym = crate::dl::real_dlsym()?;
    // SAFETY: RTLD_NEXT is a valid pseudo-handle and SYMBOL is NUL-terminated.
    let p = unsafe { dlsym(libc::RTLD_NEXT, symbol.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // Our own hook would recurse forever; RTLD_NEXT cannot return it, but check rather than loop.
    if p as usize == own as usize {
        return None;
    }
    // SAFETY: the symbol named `ioctl` after us is glibc's `int ioctl(int, unsigned long, ...)`
    // or an interposer with the same signature; a data pointer and a function pointer have the
    // same size and representation on the targets we build for.
    Some(unsafe { std::mem::transmute::<*mut c_void, IoctlFn>(p) })
}

/// The next `ioctl`, resolving it on first use.
fn next() -> Option<IoctlFn> {
    *NEXT.get_or_init(resolve)
}

/// Whether a next `ioctl` exists (the guard fails MegaRAID calls closed when it does not).
pub fn available() -> bool {
    next().is_some()
}

/// The next `__ioctl_time64` (i386), resolving it on first use; the next `ioctl` where there is
/// none (glibc before 2.34 has no such caller either).
#[cfg(target_arch = "x86")]
fn next_time64() -> Option<IoctlFn> {
    NEXT_TIME64
        .get_or_init(|| resolve_symbol(SYMBOL_TIME64, crate::__ioctl_time64))
        .or_else(next)
}

extern "C" fn resolve_at_load() {
    let _ = next();
    #[cfg(target_arch = "x86")]
    let _ = next_time64();
}

/// The constructor: resolve the pointer while the process is still single-threaded.
#[used]
#[link_section = ".init_array"]
static RESOLVE_AT_LOAD: extern "C" fn() = resolve_at_load;

/// Passes a call on unchanged: the caller's own arguments, to the next `ioctl`.
///
/// Safe because `CallerArg` can only be made from the argument of the call being handled
/// (see its constructor): this does exactly what the caller asked for.
pub fn forward(fd: c_int, request: c_ulong, arg: CallerArg) -> c_int {
    match next() {
        // SAFETY: the caller's own call, unchanged (CallerArg's contract).
        Some(f) => unsafe { f(fd, request, arg.as_ptr()) },
        // SAFETY: the same call as the raw system call; the kernel checks every argument.
        None => unsafe { libc::syscall(libc::SYS_ioctl, fd, request, arg.as_ptr()) as c_int },
    }
}

/// [`forward`] for a call that arrived as `__ioctl_time64` (i386): to the next one.
#[cfg(target_arch = "x86")]
pub fn forward_time64(fd: c_int, request: c_ulong, arg: CallerArg) -> c_int {
    match next_time64() {
        // SAFETY: the caller's own call, unchanged (CallerArg's contract).
        Some(f) => unsafe { f(fd, request, arg.as_ptr()) },
        // SAFETY: as in `forward`.
        None => unsafe { libc::syscall(libc::SYS_ioctl, fd, request, arg.as_ptr()) as c_int },
    }
}

/// Issues the call with the guard's private copy of the packet instead of the caller's.
///
/// Returns `None` when there is no next `ioctl` (the caller fails closed).
///
/// Safe because of what a `PrivatePacket` is: a whole packet of this process's layout, so the
/// kernel (or a simulator) reads and writes only inside it (it writes back one byte,
/// `cmd_status`); the user pointers inside it (`sgl[].iov_base`, the sense pointer) are the
/// caller's own, which the caller handed over by making this call and the kernel checks, or
/// point at a buffer of the guard's (the read-only policy's copy of an SMP request) that stays
/// borrowed as long as the `PrivatePacket`, here for the whole call.
pub fn call_private(fd: c_int, request: c_ulong, mut packet: PrivatePacket<'_>) -> Option<c_int> {
    let f = next()?;
    // SAFETY: see above; `packet` borrows the packet and any lent buffer for the whole call.
    Some(unsafe { f(fd, request, packet.as_mut_ptr()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_libc_ioctl_and_not_ourselves() {
        assert!(available());
        let f = next().unwrap();
        let own: unsafe extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int = crate::ioctl;
        assert_ne!(f as usize, own as usize);
    }

    #[test]
    fn forwards_an_unrelated_call() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let mut n: c_int = -1;
        use std::os::fd::AsRawFd;
        // FIONREAD on /dev/null is ENOTTY; on a pipe it answers. Either way the kernel answered.
        // SAFETY: a valid out-pointer for FIONREAD.
        let arg = unsafe { CallerArg::new((&mut n as *mut c_int).cast()) };
        let rc = forward(null.as_raw_fd(), libc::FIONREAD as c_ulong, arg);
        assert_eq!(rc, -1);
        assert_eq!(crate::sys::errno(), libc::ENOTTY);
    }
}
