//! The call to guard: which requests are guarded calls, and what an entry knows of one.

use mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_GET_AEN;
use mfiguard_sanitizer::Abi;

use crate::audit::Guard;

/// Whether `code` is a request the driver's entry for a caller of layout `abi` hands to its
/// management handler: `MEGASAS_IOC_FIRMWARE` of that layout, or `MEGASAS_IOC_GET_AEN` (the
/// same in both). The other layout's `MEGASAS_IOC_FIRMWARE` code never reaches the driver (the
/// kernel answers `ENOTTY`), so it is not a guarded call. Every entry asks this one question:
/// the library with its own layout, the supervisor, its ptrace fallback and `mfiguard-hostd`
/// with the layout of the caller's system-call entry.
#[inline(always)]
pub const fn is_guarded(abi: Abi, code: u32) -> bool {
    code == abi.firmware_request() || code == MEGASAS_IOC_GET_AEN
}

/// A guarded call, as an entry received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The request code (the low 32 bits of the system call's argument: the kernel's `cmd` is
    /// an `unsigned int`).
    pub code: u32,
    /// The caller's packet or `megasas_aen` address.
    pub arg: u64,
    /// The packet layout: the caller's system-call entry decides it.
    pub abi: Abi,
    /// Which entry saw the call.
    pub guard: Guard,
}

impl Request {
    /// Call `code` with argument `arg` from a caller of layout `abi`, as `guard` saw it; `None`
    /// when it is not a guarded call ([`is_guarded`]). A 32-bit caller's argument is its low 32
    /// bits, as the kernel's compat entry reads it.
    #[inline(always)]
    pub const fn new(guard: Guard, abi: Abi, code: u32, arg: u64) -> Option<Request> {
        if !is_guarded(abi, code) {
            return None;
        }
        let arg = match abi {
            Abi::Lp64 => arg,
            Abi::Ilp32 => arg & 0xffff_ffff,
        };
        Some(Request {
            code,
            arg,
            abi,
            guard,
        })
    }

    /// Whether it is `MEGASAS_IOC_GET_AEN` (else `MEGASAS_IOC_FIRMWARE` of its layout).
    pub const fn is_get_aen(&self) -> bool {
        self.code == MEGASAS_IOC_GET_AEN
    }
}
