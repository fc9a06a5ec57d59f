//! `libmfiguard.so`: an `LD_PRELOAD` guard for the megaraid_sas management ioctl.
//!
//! ```text
//! LD_PRELOAD=libmfiguard.so MegaCli64 -AdpAllInfo -aALL
//! ```
//!
//! This file holds the exported hook only. The rest, in the order a call meets it:
//!
//! - `real`: the next `ioctl` (`dlsym(RTLD_NEXT)`), the only place that knows symbol names;
//! - `dl`: the exported `dlsym` and `dlvsym`, so that a lookup of `ioctl` by name (Python's
//!   ctypes: `dlsym(dlopen("libc.so.6"), "ioctl")`) finds the guard too; every other lookup is
//!   passed on untouched (with the caller's return address, which `RTLD_NEXT` depends on);
//! - `config` (from `mfiguard-core`, shared with `mfiguard-run`): environment, else
//!   `/etc/mfiguard.conf`, else defaults;
//! - `device` (`mfiguard-core`): is the descriptor the management node;
//! - `snapshot`: the fault-proof copy of the caller's packet and write-back of `cmd_status`;
//! - `guard`: the node check, then the shared lifecycle (`mfiguard_core::guarded`, its
//!   allocation-free strategy) with this process's memory and the next `ioctl` (safe code);
//! - `audit` (`mfiguard-core`): the records and their sinks;
//! - `sys` (`mfiguard-core`): thin wrappers over the few libc calls the safe modules need;
//! - `fork`: what a forked child resets (the audit trail's per-process counters).
//!
//! Unsafe code is denied at the crate root and allowed only in `real`, `dl`, `snapshot`, `fork`
//! and on the hook below (and in `mfiguard-core`'s `sys`).

#![deny(unsafe_code)]
#![deny(clippy::print_stdout)]

mod dl;
mod fork;
mod guard;
mod real;
mod snapshot;

// Shared with mfiguard-run: one configuration reader, one record format, one node check.
use mfiguard_core::{audit, config, device, sys};

use std::ffi::{c_int, c_ulong, c_void};

use mfiguard_core::guarded::is_guarded;
use mfiguard_sanitizer::Abi;

/// The kernel's view of a request: its `cmd` argument is an `unsigned int`, so only the low 32
/// bits select the handler (a caller passing garbage above them still reaches the driver).
#[allow(clippy::unnecessary_cast)] // `c_ulong` is `u32` on i386 and `u64` on x86_64
#[inline(always)]
pub(crate) fn request_code(request: c_ulong) -> u32 {
    request as u32
}

/// The library's build, NUL-terminated: `mfiguard 0.1.0 (git 1a2b3c4d5e6f)` (the commit when
/// built from a git checkout; see `build.rs`). `strings libmfiguard.so` shows it.
const VERSION: &str = concat!(
    "mfiguard ",
    env!("CARGO_PKG_VERSION"),
    env!("MFIGUARD_BUILD_SUFFIX"),
    "\0"
);

/// The library's build as the first record of a process names it.
pub(crate) const BUILD_NAME: &str = concat!(
    "mfiguard ",
    env!("CARGO_PKG_VERSION"),
    env!("MFIGUARD_BUILD_SUFFIX")
);

/// The library's build, for `mfiguard-probe --build` (and so `mfiguard-run --check`): a
/// NUL-terminated string that lives as long as the library.
#[allow(unsafe_code)] // `no_mangle`: exported under this name
#[no_mangle]
pub extern "C" fn mfiguard_version() -> *const std::ffi::c_char {
    VERSION.as_ptr().cast()
}

/// The interposed `ioctl`.
///
/// # ABI
///
/// glibc declares `int ioctl(int fd, unsigned long request, ...)`. Stable Rust cannot define a
/// C-variadic function, so this is defined with a fixed third parameter. That is
/// ABI-compatible for every `ioctl` call, because `ioctl` takes at most one argument after the
/// request:
///
/// - x86_64 (System V): variadic arguments travel exactly like named ones; the first three
///   integer-class arguments are in `%rdi`, `%rsi`, `%rdx` either way. The caller also puts the
///   number of vector registers used in `%al`, which a non-variadic callee simply ignores.
///   A caller that passes no third argument leaves `%rdx` undefined; we pass that value on
///   unread, just as glibc's `va_arg` would read it.
/// - i386 (cdecl): all arguments are on the stack and the caller pops them, so a callee with
///   three parameters reads the same slots a variadic one would; with no third argument the
///   slot holds whatever the caller's frame has there, and again it is only passed on.
///
/// The pointer is never dereferenced by this library (see `snapshot`).
///
/// # Which calls are guarded
///
/// The request is compared first, with nothing else done for other requests: no system call,
/// allocation or lock, one atomic load to reach the next `ioctl`. The comparison uses the low
/// 32 bits of `request`, because that is what the kernel acts on: `sys_ioctl` takes `unsigned
/// int cmd`, so a caller that stored the code in an `int` and had it sign-extended to
/// `0xffffffffc1944d01` still reaches the driver as `MEGASAS_IOC_FIRMWARE`, and must still be
/// guarded. (musl declares `int ioctl(int, int, ...)`; this library is built for glibc, where
/// the type is `unsigned long`.)
///
/// # Safety
///
/// The same contract as `ioctl(2)` itself: `arg` is whatever that request expects.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is this call's own argument, used only while handling this call.
    let arg = unsafe { snapshot::CallerArg::new(arg) };
    // `MEGASAS_IOC_FIRMWARE` in this process's layout, or `MEGASAS_IOC_GET_AEN` (the kernel
    // rejects the other layout's code with `ENOTTY`, so only these can reach the driver).
    if !is_guarded(Abi::NATIVE, request_code(request)) {
        return real::forward(fd, request, arg);
    }
    guard::guarded(fd, request, arg)
}

/// The interposed `__ioctl_time64` (i386 only): glibc 2.34 and later route `ioctl()` to it in a
/// 32-bit program built with `-D_TIME_BITS=64` (`__REDIRECT` in `<sys/ioctl.h>`), so such a tool
/// never calls `ioctl` by name. The same guard as [`ioctl`]; an unrelated call goes on to the
/// next `__ioctl_time64` (which converts the time-carrying requests the 64-bit time layout
/// needs), a guarded one to the next `ioctl` like every guarded call (no MegaRAID request
/// carries a time). `nm -D` of the i386 libc lists no other name for it (`ioctl`,
/// `__ioctl_time64`).
///
/// # Safety
///
/// The same contract as `ioctl(2)` itself: `arg` is whatever that request expects.
#[cfg(target_arch = "x86")]
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn __ioctl_time64(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is this call's own argument, used only while handling this call.
    let arg = unsafe { snapshot::CallerArg::new(arg) };
    if !is_guarded(Abi::NATIVE, request_code(request)) {
        return real::forward_time64(fd, request, arg);
    }
    guard::guarded(fd, request, arg)
}
