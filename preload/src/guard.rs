//! The library's entry into the guarded path: a MegaRAID request code arrived; decide whether
//! the descriptor is the management node, then hand the call to the shared lifecycle
//! (`mfiguard_core::guarded::in_place`, the strategy that allocates nothing) with this
//! process's memory as the caller's ([`SelfCaller`]: `snapshot`) and the next `ioctl` as the
//! driver ([`Next`]: `real`).
//!
//! # Failures
//!
//! - anything internal, including a panic (caught around the whole path): `-1`/`EIO`, rule
//!   `guard.internal`, the kernel not called. A panic *after* the kernel call returns the
//!   kernel's result instead, since the command has run and the tool must not retry it blindly;
//! - no next `ioctl`: `-1`/`EIO`, `guard.internal`;
//! - a bad descriptor: `-1`/`EBADF` from `fstat`, as the kernel would answer, without a call.
//!
//! # Reentrancy
//!
//! A thread-local depth counter marks the thread as inside the guard. A MegaRAID call that
//! arrives while it is set (from a signal handler that interrupted the guard) is still checked
//! and enforced in full: the sanitizer does not allocate, the snapshot and the device check are
//! system calls. Only the parts that could deadlock change: it never reads the configuration
//! (it uses it if already read, else the built-in defaults: enforce, records to stderr, and
//! every character device taken for the node, since `MFIGUARD_DEVICE` is not known yet), never
//! logs diagnostics, and its records are assembled on the stack and written with
//! `open`/`write`/`close` (file, stderr; syslog is replaced by stderr). Nothing in that path
//! allocates or takes a lock, so it cannot deadlock against the call it interrupted.

use std::cell::Cell;
use std::ffi::{c_int, c_ulong};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use mfiguard_core::guarded::{
    in_place, Answer, Caller, Identity, NextIoctl, PrivatePacket, Progress, Recorder, Request,
};
use mfiguard_sanitizer::{Abi, Errno};

use crate::audit::{self, Guard};
use crate::config::{self, Config, GuardMode};
use crate::snapshot::{self, CallerArg};
use crate::{device, real, sys};

/// Used when the configuration is not available (see the module docs).
static FALLBACK: Config = Config::FALLBACK;

/// Whether the configuration's errors were recorded and the debug log set up.
static STARTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// How many guarded calls this thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Marks the thread as inside the guard for as long as it lives.
struct Depth {
    nested: bool,
}

impl Depth {
    fn enter() -> Depth {
        // A thread whose thread-locals are being destroyed is treated as nested: the
        // allocation-free path is safe in every context.
        let nested = DEPTH
            .try_with(|d| {
                let n = d.get();
                d.set(n.saturating_add(1));
                n > 0
            })
            .unwrap_or(true);
        Depth { nested }
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Handles a call whose request code is a guarded call of this process's layout. Never
/// panics, never unwinds.
pub fn guarded(fd: c_int, request: c_ulong, arg: CallerArg) -> c_int {
    guarded_with(fd, request, arg, |call| call.run())
}

/// `guarded` with the path to run as a parameter, so that tests can make it panic.
fn guarded_with(
    fd: c_int,
    request: c_ulong,
    arg: CallerArg,
    path: impl FnOnce(&mut Call<'_>) -> c_int,
) -> c_int {
    let caller_errno = sys::errno();
    let depth = Depth::enter();
    let mut progress = Progress::default();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        path(&mut Call {
            next: Next {
                fd,
                request,
                arg,
                caller_errno,
            },
            nested: depth.nested,
            progress: &mut progress,
        })
    }));
    match result {
        Ok(ret) => ret,
        Err(_) => {
            let (ret, errno) = progress.kernel.unwrap_or((-1, libc::EIO));
            let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                let cfg = config::get().unwrap_or(&FALLBACK);
                let req = request_of(request, arg);
                Recorder::panicked(cfg, depth.nested, req, &SelfCaller(arg), progress);
            }));
            sys::set_errno(errno);
            ret
        }
    }
}

/// The call as the guarded path takes it.
fn request_of(request: c_ulong, arg: CallerArg) -> Request {
    Request {
        code: crate::request_code(request),
        arg: arg.addr() as u64,
        abi: Abi::NATIVE,
        guard: Guard::Preload,
    }
}

/// The configuration, read on the first guarded call; its errors recorded once.
fn startup() -> &'static Config {
    let cfg = config::get_or_load();
    if !STARTED.load(Ordering::Acquire) && !STARTED.swap(true, Ordering::AcqRel) {
        audit::set_build(crate::BUILD_NAME);
        if let Some(filter) = &cfg.debug {
            let pid = std::process::id();
            let _ = env_logger::Builder::new()
                .parse_filters(filter)
                .target(env_logger::Target::Stderr)
                .format(move |buf, r| {
                    use std::io::Write;
                    writeln!(
                        buf,
                        "mfiguard[{pid}] {} {}: {}",
                        r.level(),
                        r.target(),
                        r.args()
                    )
                })
                .try_init();
            log::debug!(
                "mode {} log {} audit {:?} allow [{}] sync {} required {} device {:?} exe {:?}",
                cfg.mode.name(),
                cfg.log.describe(),
                cfg.audit,
                cfg.allow
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(","),
                cfg.log_sync,
                cfg.log_required,
                cfg.device,
                cfg.exe
            );
        }
        if cfg.mode != GuardMode::Off {
            for e in &cfg.errors {
                log::debug!("configuration: {e}");
                let _ = audit::emit_config_error(cfg, e);
            }
        }
    }
    cfg
}

struct Call<'p> {
    next: Next,
    nested: bool,
    progress: &'p mut Progress,
}

impl Call<'_> {
    fn run(&mut self) -> c_int {
        let (cfg, configured) = if self.nested {
            match config::get() {
                Some(cfg) => (cfg, true),
                None => (&FALLBACK, false),
            }
        } else {
            (startup(), true)
        };
        let fd = self.next.fd;
        if cfg.mode == GuardMode::Off {
            return self.forward();
        }
        // Without the configuration, `MFIGUARD_DEVICE` is unknown: any character device is
        // treated as the node rather than letting a packet through unchecked.
        let node = if configured {
            device::is_mgmt_node(fd, cfg)
        } else {
            device::is_char_device(fd)
        };
        match node {
            Ok(true) => {}
            Ok(false) => return self.forward(),
            Err(errno) => {
                if !self.nested {
                    log::debug!("fd {fd}: fstat failed: {}", Errno(errno));
                }
                sys::set_errno(errno);
                return -1;
            }
        }
        let req = request_of(self.next.request, self.next.arg);
        let caller = SelfCaller(self.next.arg);
        let (ret, errno) = in_place::run(
            cfg,
            self.nested,
            req,
            &caller,
            &mut self.next,
            self.progress,
        );
        sys::set_errno(errno);
        ret
    }

    /// The caller's call, unchanged, with the caller's errno as it was on entry.
    fn forward(&mut self) -> c_int {
        self.next.pass_through().0
    }
}

/// This process, as the caller of its own call: its memory read and written by the kernel on
/// our behalf (`snapshot`), at addresses the call handed over.
struct SelfCaller(CallerArg);

impl SelfCaller {
    /// An address the call named (the packet, a buffer its packet names), with the call's
    /// argument's contract (see `CallerArg::at`).
    fn at(&self, addr: u64) -> Result<CallerArg, c_int> {
        self.0.at(addr).ok_or(libc::EFAULT)
    }
}

impl Caller for SelfCaller {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        snapshot::read(self.at(addr)?, 0, out)
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int> {
        snapshot::write(self.at(addr)?, 0, data)
    }

    /// This process: records take its pid and uid when they are written.
    fn identity(&self) -> Option<Identity> {
        None
    }

    /// The answer is the hook's return value and errno.
    fn deliver(&self, _: Answer) -> Result<(), c_int> {
        Ok(())
    }
}

/// The next `ioctl` for this call.
struct Next {
    fd: c_int,
    request: c_ulong,
    arg: CallerArg,
    /// The caller's errno on entry, restored before each call of the next `ioctl` (so that a
    /// successful call leaves it as it was).
    caller_errno: c_int,
}

impl NextIoctl for Next {
    fn fd(&self) -> c_int {
        self.fd
    }

    fn available(&self) -> bool {
        real::available()
    }

    fn pass_through(&mut self) -> (c_int, c_int) {
        sys::set_errno(self.caller_errno);
        let ret = real::forward(self.fd, self.request, self.arg);
        (ret, sys::errno())
    }

    fn send(&mut self, packet: PrivatePacket<'_>) -> (c_int, c_int) {
        sys::set_errno(self.caller_errno);
        let ret = real::call_private(self.fd, self.request, packet).unwrap_or(-1);
        (ret, sys::errno())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_FIRMWARE;

    fn null_arg() -> CallerArg {
        CallerArg::null_for_tests()
    }

    #[test]
    fn a_panic_before_the_kernel_call_is_eio() {
        sys::set_errno(0);
        let ret = guarded_with(-1, c_ulong::from(MEGASAS_IOC_FIRMWARE), null_arg(), |_| {
            panic!("injected")
        });
        assert_eq!((ret, sys::errno()), (-1, libc::EIO));
        // The depth counter was unwound too: the next call is not "nested".
        assert_eq!(DEPTH.with(Cell::get), 0);
    }

    #[test]
    fn a_panic_after_the_kernel_call_returns_the_kernels_answer() {
        let ret = guarded_with(
            -1,
            c_ulong::from(MEGASAS_IOC_FIRMWARE),
            null_arg(),
            |call| {
                call.progress.kernel = Some((0, 0));
                panic!("injected after the call")
            },
        );
        assert_eq!(ret, 0);
        let ret = guarded_with(
            -1,
            c_ulong::from(MEGASAS_IOC_FIRMWARE),
            null_arg(),
            |call| {
                call.progress.kernel = Some((-1, libc::ENOTTY));
                panic!("injected after a failed call")
            },
        );
        assert_eq!((ret, sys::errno()), (-1, libc::ENOTTY));
    }

    #[test]
    fn calls_inside_the_guard_are_nested() {
        let outer = guarded_with(-1, 0, null_arg(), |call| {
            assert!(!call.nested);
            guarded_with(-1, 0, null_arg(), |inner| {
                assert!(inner.nested);
                7
            })
        });
        assert_eq!(outer, 7);
        assert_eq!(DEPTH.with(Cell::get), 0);
    }

    #[test]
    fn a_bad_descriptor_is_ebadf_without_a_kernel_call() {
        sys::set_errno(0);
        let ret = guarded_with(
            -1,
            c_ulong::from(MEGASAS_IOC_FIRMWARE),
            null_arg(),
            |call| {
                call.nested = true; // use the built-in defaults, not this process's configuration
                call.run()
            },
        );
        assert_eq!((ret, sys::errno()), (-1, libc::EBADF));
    }
}
