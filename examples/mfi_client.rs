//! `mfi_client`: a MegaCli-like client for the MegaRAID management ioctl, to run with and without
//! the guard (and against the legacy-driver simulator or a real driver). The contract it keeps is
//! `notes/client-contract.md`; in short:
//!
//!     mfi_client [--device PATH] [--host N] [--repeat N] [--as-uid N] SCENARIO [ARGS]
//!
//!     ctrl-info            DCMD CTRL_GET_INFO, 2048-byte buffer: firmware, package, product, serial
//!     pd-list              DCMD PD_GET_LIST: count and device ids
//!     ld-list              DCMD LD_GET_LIST: count and target ids
//!     event-info           DCMD CTRL_EVENT_GET_INFO: event log sequence numbers
//!     inquiry TARGET       SCSI INQUIRY pass-through (PD_SCSI_IO), sense at 0x18, 32 bytes
//!     stp-probe TARGET     MegaCli 8.01.06's STP IDENTIFY probe (IEEE|SGL64|DIR_READ)
//!     ieee-dcmd            CTRL_GET_INFO with IEEE|SGL64 set
//!     sgl-off HEXOFF       CTRL_GET_INFO with sgl_off = HEXOFF
//!     sense-off HEXOFF     INQUIRY with sense_off = HEXOFF
//!     ld-read TARGET       a well-formed raw read of block 0 of logical drive TARGET (LD_READ,
//!                          512 bytes, SGL at 0x28): every driver's completion of it dereferences
//!                          a NULL SCSI command in interrupt, so it crashes an unguarded kernel
//!     rule RULE_ID         a packet that triggers exactly that rule (`rule pass`: a clean DCMD;
//!                          sgl.bounds and sense.bounds come with their offset-unusual twins)
//!     firmware-view KIND WHERE [TARGET]  a packet whose firmware reads an address the driver
//!                          did not write (mfi_client/firmware_view.rs); WHERE `canary` checks a
//!                          page of its own afterwards
//!     aen                  F_SETOWN + O_ASYNC, then MEGASAS_IOC_GET_AEN
//!   extensions for the end-to-end tests:
//!     poll MS              poll(2) the node for a controller event (POLLIN), twice, MS
//!                          milliseconds each; prints poll=N revents=0x.. for each
//!     unrelated            ioctls the guard must not touch: FIONREAD on a pipe, the MegaRAID
//!                          request on a pipe, another 'M' request and TCGETS on the device
//!     fault KIND           the packet pointer is unreadable: unmapped, protnone, span (the packet
//!                          starts 100 bytes before a PROT_NONE page), short (a packet shorter
//!                          than the layout, ending where an unmapped page starts), null; or
//!                          just readable: readonly (a PROT_READ page: the status byte cannot be
//!                          written back), edge (the packet ends exactly where a PROT_NONE page
//!                          starts), misaligned (ieee-dcmd at an odd address); or a hostile
//!                          pointer inside a whole packet: sense-unmapped (INQUIRY, the sense
//!                          pointer at 0x18 is unmapped), iovec-unmapped (CTRL_GET_INFO, sgl[0]
//!                          unmapped), iovec-readonly (sgl[0] read-only), iovec-unmapped-rule
//!                          (iovec-unmapped with sgl_off 0x40000: sgl.bounds refuses it)
//!     race N               N CTRL_GET_INFO calls while a second thread flips IEEE|SGL64 in the
//!                          caller's packet
//!     high-bits            ieee-dcmd with the request code's upper 32 bits set (the kernel's
//!                          `cmd` is an unsigned int: it ignores them)
//!     threads N M          N threads released together, M ieee-dcmd calls each
//!     dcmd OPCODE DIR LEN  any DCMD (hex OPCODE): DIR read, write (LEN bytes of zeros sent) or none
//!                          (no buffer, LEN 0); prints the result only (e.g. a writing DCMD that
//!                          the read-only policy refuses: dcmd 0x04030000 none 0 is CFG_CLEAR)
//!     smp FUNCTION [VAR]   an SMP frame to an expander: request `40 FUNCTION 00 00` + 36 zero
//!                          bytes (sgl[1]), 64-byte response (sgl[0]); prints both buffers' heads.
//!                          VAR `long`: an 8 KiB request buffer; `unmapped`: the request's
//!                          iov_base is an unmapped page
//!     smp-race N           N SMP DISCOVER (0x10) calls while a second thread flips the caller's
//!                          request to PHY CONTROL (0x91) and back; stdout `calls=N other=K`
//!                          (K: ended other than ret 0 or EPERM), the split on stderr
//!   hardening (these print counts, and pids or timings only on stderr):
//!     stress THREADS MS    THREADS threads for MS milliseconds, each cycling a clean DCMD, an
//!                          ieee-dcmd (rewritten), a refused packet, a packet a mutator thread
//!                          keeps changing (flags, sgl_off, sge_count) while it is in flight,
//!                          FIONREAD on a pipe and TCGETS on the device; counts every outcome
//!     fork CHILDREN CALLS  one ieee-dcmd, then CHILDREN forked children each issuing CALLS calls
//!                          (ieee-dcmd and a refused packet in turn) on the inherited descriptor
//!     config-inherit K=V   ieee-dcmd; setenv(K, V); a forked child issues ieee-dcmd, then a
//!                          forked child execs this client (ieee-dcmd) with the changed environment
//!     fork-during-load     a thread's first guarded call blocks reading the configuration (a
//!                          FIFO as MFIGUARD_CONFIG) while the main thread forks; the child
//!                          issues ieee-dcmd (alarm(10) bounds it)
//!     signals CALLS US     CALLS calls (clean, ieee-dcmd, refused in turn) while SIGALRM fires
//!                          every US microseconds; the handler issues a refused MegaRAID call,
//!                          FIONREAD on a pipe and TCGETS on stderr
//!     signal-in-kernel     ieee-dcmd; while the thread waits inside the driver (the simulator's
//!                          MFISIM_DELAY_US) a helper thread sends SIGUSR1, whose handler issues
//!                          a clean DCMD, an ieee-dcmd, a refused packet and FIONREAD
//!     lines                reads rule ids (or `pass`) from stdin, one per line, and issues each
//!                          as it is read: one outcome line per call, flushed; with
//!                          MFI_CLIENT_OUTCOMES=LOG it adds the number of outcome records LOG
//!                          held when the call returned (`outcomes=N`)
//!     compat-int80 KIND    (x86_64) `stp-probe` or `sgl-off` in the i386 layout, issued with
//!                          `int 0x80` and `MEGASAS_IOC_FIRMWARE32` from this 64-bit process
//!
//! `MFI_CLIENT_SYSCALL=syscall|asm` issues the MegaRAID calls with `syscall(SYS_ioctl)` or the
//! instruction itself (`syscall`, `int 0x80` on i386) instead of glibc's `ioctl`.
//!
//!   the soak and the in-process window:
//!     soak THREADS SECS [PACE_US]  THREADS threads for SECS seconds cycling a clean DCMD, an
//!                          ieee-dcmd, a refused packet, a writing DCMD (CFG_CLEAR: EPERM in
//!                          readonly mode) and FIONREAD on a pipe; one line of counts and the
//!                          RSS after the first second and at the end
//!     private-race N       N clean CTRL_GET_INFO calls while another thread finds the guard's
//!                          private copy on the calling thread's stack and sets IEEE|SGL64 in
//!                          it (what the preload cannot prevent: doc/preload-guarantees.md)
//!     dl-ioctl HOW         ieee-dcmd through an ioctl found by name: HOW libc (dlsym on
//!                          dlopen("libc.so.6"), as ctypes does), libc-vsym, next-vsym
//!                          (dlvsym(RTLD_NEXT, ...)), default (RTLD_DEFAULT); prints found=OBJECT
//!     dl-lookups           where this program's dlsym(RTLD_NEXT, NAME) lands for a few names
//!     dl-limit HOW LIB     ieee-dcmd issued by LIB's mfiguard_test_ioctl (which calls ioctl),
//!                          LIB opened plain, with RTLD_DEEPBIND, or by dlmopen (preload limits)
//!
//! `--repeat N` issues the scenario's ioctl N times on the same packet and adds `calls=N failed=K`.
//! `--as-uid N` opens the device, then becomes user N (and group N) before the calls, as a tool
//! run by root that drops to a monitoring account would.
//!
//! Real buffers, real pointers: every iovec points at memory this process owns, and the packets
//! are built with the sanitizer's `PacketBuilder` and its samples of what MegaCli sends. Stdout is
//! deterministic (no pointers, no timings). Exit status: 0 when the ioctl returned 0 (whatever
//! `cmd_status`), 1 when it failed, 2 on a usage error, 3 when the device cannot be opened.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line client reports on stdout

use std::ffi::{c_int, c_ulong, c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use mfiguard_sanitizer::abi::ioctl::{MEGASAS_IOC_FRAME_OFFSET, MEGASAS_IOC_GET_AEN};
use mfiguard_sanitizer::abi::mfi::{
    MfiCmd, MfiDirection, MfiFrameFlags, MFI_CMD_STATUS_OFFSET, MFI_FLAGS_OFFSET,
    MFI_STAT_INVALID_STATUS, MR_DCMD_CTRL_EVENT_GET_INFO, MR_DCMD_CTRL_GET_INFO,
    MR_DCMD_LD_GET_LIST, MR_DCMD_PD_GET_LIST,
};
use mfiguard_sanitizer::abi::names::mfi_status_name;
use mfiguard_sanitizer::builder::{samples, PacketBuilder};
use mfiguard_sanitizer::{Abi, Errno, RuleId};

#[path = "mfi_client/firmware_view.rs"]
mod firmware_view;
#[path = "mfi_client/hardening.rs"]
mod hardening;

const ABI: Abi = Abi::NATIVE;
const DEFAULT_DEVICE: &str = "/dev/megaraid_sas_ioctl_node";
/// Where the frame starts in the packet, and `cmd_status` (frame byte 2) and the flags in it.
const FRAME: usize = MEGASAS_IOC_FRAME_OFFSET;
const CMD_STATUS: usize = FRAME + MFI_CMD_STATUS_OFFSET;
const FLAGS: usize = FRAME + MFI_FLAGS_OFFSET;
const DIR_READ: u16 = MfiDirection::Read.bits();
const DIR_WRITE: u16 = MfiDirection::Write.bits();
const IEEE_SGL64: u16 = MfiFrameFlags::IEEE.union(MfiFrameFlags::SGL64).bits();
/// `MFI_STAT_INVALID_STATUS` (`MFI_CMD_STATUS_POLL_MODE`): what the status byte holds until
/// the kernel writes it.
const STATUS_UNSET: u8 = MFI_STAT_INVALID_STATUS;
const IOC_GET_AEN: u32 = MEGASAS_IOC_GET_AEN;

fn main() {
    std::process::exit(run());
}

struct Opts {
    device: Option<String>,
    host: u16,
    repeat: u32,
    /// `--as-uid N`: the user the calls are made as (the device opened before).
    as_uid: Option<u32>,
    scenario: String,
    args: Vec<String>,
}

const USAGE_TEXT: &str =
    "usage: mfi_client [--device PATH] [--host N] [--repeat N] [--as-uid N] SCENARIO [ARGS]\n\
     scenarios: ctrl-info pd-list ld-list event-info inquiry TARGET stp-probe TARGET\n\
     \x20          ieee-dcmd sgl-off HEXOFF sense-off HEXOFF rule RULE_ID aen [wait MS|plain]\n\
     \x20          dcmd OPCODE read|write|none LEN smp FUNCTION [long|unmapped] smp-race N\n\
     \x20          unrelated poll MS fault KIND race N threads N M high-bits\n\
     \x20          stress THREADS MS fork CHILDREN CALLS config-inherit K=V fork-during-load\n\
     \x20          signals CALLS US signal-in-kernel lines compat-int80 stp-probe|sgl-off\n\
     \x20          soak THREADS SECS [PACE_US] private-race N dl-ioctl HOW dl-lookups\n\
     \x20          dl-limit plain|deepbind|dlmopen LIB firmware-view KIND WHERE [TARGET]\n\
     environment: MFI_CLIENT_SYSCALL=libc|syscall|asm (how MegaRAID calls are issued)";

fn usage(msg: &str) -> i32 {
    eprintln!("mfi_client: {msg}");
    eprintln!("{USAGE_TEXT}");
    2
}

fn parse_opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mut opts = Opts {
        device: None,
        host: 0,
        repeat: 1,
        as_uid: None,
        scenario: String::new(),
        args: Vec::new(),
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--device" => opts.device = Some(args.next().ok_or("--device needs a path")?),
            "--host" => {
                opts.host = args
                    .next()
                    .and_then(|v| parse_num(&v))
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or("--host needs a number")?;
            }
            "--repeat" => {
                opts.repeat = args
                    .next()
                    .and_then(|v| parse_num(&v))
                    .and_then(|v| u32::try_from(v).ok())
                    .filter(|&v| v > 0)
                    .ok_or("--repeat needs a positive number")?;
            }
            "--as-uid" => {
                opts.as_uid = Some(
                    args.next()
                        .and_then(|v| parse_num(&v))
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or("--as-uid needs a uid")?,
                );
            }
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => {
                opts.scenario = a;
                opts.args = args.collect();
                break;
            }
        }
    }
    if opts.scenario.is_empty() {
        return Err("no scenario".into());
    }
    Ok(opts)
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn arg_num(opts: &Opts, what: &str) -> Result<u64, String> {
    opts.args
        .first()
        .and_then(|a| parse_num(a))
        .ok_or_else(|| format!("{} needs {what}", opts.scenario))
}

fn run() -> i32 {
    if matches!(std::env::args().nth(1).as_deref(), Some("--help" | "-h")) {
        println!("{USAGE_TEXT}");
        return 0;
    }
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => return usage(&e),
    };
    // Build first, so a usage error never needs the device.
    let prepared = match prepare(&opts) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let fd = match open_device(opts.device.as_deref()) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("mfi_client: {e}");
            return 3;
        }
    };
    if let Some(uid) = opts.as_uid {
        if let Err(e) = become_user(uid) {
            eprintln!("mfi_client: --as-uid {uid}: {e}");
            return 3;
        }
    }
    match prepared {
        Plan::Call(call) => run_call(fd, &opts, call),
        Plan::Aen => run_aen(fd, &opts),
        Plan::Unrelated => run_unrelated(fd),
        Plan::Poll(ms) => run_poll(fd, ms),
        Plan::Fault(kind) => run_fault(fd, opts.host, &kind),
        Plan::Race(n) => run_race(fd, &opts, n),
        Plan::SmpRace(n) => run_smp_race(fd, &opts, n),
        Plan::Threads(n, m) => run_threads(fd, &opts, n, m),
        Plan::Stress(n, ms) => hardening::stress(fd, opts.host, n, ms),
        Plan::Fork(n, m) => hardening::fork_children(fd, opts.host, n, m),
        Plan::ConfigInherit(k, v) => hardening::config_inherit(fd, &opts, &k, &v),
        Plan::ForkDuringLoad => hardening::fork_during_load(fd, opts.host),
        Plan::Signals(n, us) => hardening::signals(fd, opts.host, n, us),
        Plan::SignalInKernel => hardening::signal_in_kernel(fd, opts.host),
        Plan::Lines => hardening::lines(fd, opts.host),
        Plan::Soak => hardening::soak_scenario(fd, &opts),
        Plan::Dl => hardening::dl_scenario(fd, &opts),
        Plan::CompatInt80(kind) => run_compat_int80(fd, opts.host, &kind),
        Plan::FirmwareView => firmware_view::run(fd, &opts),
    }
}

/// How the client issues its MegaRAID calls (`MFI_CLIENT_SYSCALL`): `libc` (default, glibc's
/// `ioctl`, which a preload interposes), `syscall` (`syscall(SYS_ioctl, ...)`), `asm` (the
/// instruction itself: `syscall` on x86_64, `int 0x80` on i386). Only the first is visible to
/// an `LD_PRELOAD` guard; the supervisor sees all three.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Issuer {
    Libc,
    Syscall,
    Asm,
}

fn issuer() -> Issuer {
    static ISSUER: std::sync::OnceLock<Issuer> = std::sync::OnceLock::new();
    *ISSUER.get_or_init(|| match std::env::var("MFI_CLIENT_SYSCALL").as_deref() {
        Ok("syscall") => Issuer::Syscall,
        Ok("asm") => Issuer::Asm,
        _ => Issuer::Libc,
    })
}

/// A MegaRAID `ioctl`, issued as `MFI_CLIENT_SYSCALL` says.
///
/// # Safety
/// `ioctl(2)`'s contract: `arg` is what `request` expects.
unsafe fn megaraid_ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    match issuer() {
        // SAFETY: the caller's contract.
        Issuer::Libc => unsafe { libc::ioctl(fd, request, arg) },
        // SAFETY: the caller's contract; the kernel's answer is -1/errno as for ioctl().
        Issuer::Syscall => unsafe { libc::syscall(libc::SYS_ioctl, fd, request, arg) as c_int },
        // SAFETY: the caller's contract.
        Issuer::Asm => unsafe { asm_ioctl(fd, request, arg) },
    }
}

/// `ioctl` by the system-call instruction, bypassing libc; sets errno as libc would.
#[cfg(target_arch = "x86_64")]
unsafe fn asm_ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let ret: isize;
    // SAFETY: the x86_64 system-call ABI: nr in rax, arguments in rdi, rsi, rdx; the kernel
    // clobbers rcx and r11. The caller's contract covers what the kernel does with `arg`.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_ioctl as isize => ret,
            in("rdi") fd as isize,
            in("rsi") request as usize,
            in("rdx") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    syscall_result(ret)
}

/// `ioctl` by `int 0x80`, bypassing libc; sets errno as libc would.
#[cfg(target_arch = "x86")]
unsafe fn asm_ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let ret: isize;
    // SAFETY: the i386 system-call ABI: nr in eax, arguments in ebx, ecx, edx. ebx (and esi)
    // are reserved by LLVM, so the descriptor comes in edi and is swapped into ebx around the
    // instruction.
    unsafe {
        std::arch::asm!(
            "xchg edi, ebx",
            "int 0x80",
            "xchg edi, ebx",
            inlateout("eax") libc::SYS_ioctl as isize => ret,
            in("edi") fd as isize,
            in("ecx") request as usize,
            in("edx") arg,
            options(nostack)
        );
    }
    syscall_result(ret)
}

fn syscall_result(ret: isize) -> c_int {
    if (-4095..0).contains(&ret) {
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = (-ret) as c_int };
        -1
    } else {
        ret as c_int
    }
}

fn last_errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A completion code's name as the client prints it: the sanitizer's (`MFI_STAT_OK`) without
/// its prefix, `OTHER` for a code no header names.
fn status_name(s: u8) -> &'static str {
    mfi_status_name(s).map_or("OTHER", |n| n.trim_start_matches("MFI_STAT_"))
}

// ---- the device ------------------------------------------------------------------------------

fn open_device(path: Option<&str>) -> Result<c_int, String> {
    let path = path.unwrap_or(DEFAULT_DEVICE);
    if path == DEFAULT_DEVICE && !std::path::Path::new(path).exists() {
        create_node(path)?;
    }
    let c = CString::new(path).map_err(|_| format!("bad device path {path:?}"))?;
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "cannot open {path}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(fd)
}

/// Drops to `uid` (and the group of the same number, no supplementary groups) for good, keeping
/// the descriptors: a tool that opened the node as root and then runs as a monitoring account.
fn become_user(uid: u32) -> Result<(), String> {
    // SAFETY: plain system calls on this process's credentials; no pointer but the null group
    // list of size 0.
    let r = unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 || libc::setresgid(uid, uid, uid) != 0 {
            -1
        } else {
            libc::setresuid(uid, uid, uid)
        }
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

/// As MegaCli does: the node's major is the `megaraid_sas_ioctl` line of /proc/devices.
fn create_node(path: &str) -> Result<(), String> {
    let devices = std::fs::read_to_string("/proc/devices")
        .map_err(|e| format!("cannot read /proc/devices: {e}"))?;
    let major: u32 = devices
        .lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            let major = it.next()?;
            (it.next()? == "megaraid_sas_ioctl").then(|| major.parse().ok())?
        })
        .ok_or("megaraid_sas_ioctl is not in /proc/devices (is megaraid_sas loaded?)")?;
    let c = CString::new(path).map_err(|_| "bad path".to_owned())?;
    // SAFETY: a valid path; mknod creates a character device node.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(major, 0)) };
    if r != 0 {
        return Err(format!(
            "cannot create {path}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[path = "mfi_client/hostile.rs"]
mod hostile;
#[path = "mfi_client/issue.rs"]
mod issue;
#[path = "mfi_client/scenario.rs"]
mod scenario;
#[path = "mfi_client/smp.rs"]
mod smp;
#[path = "mfi_client/threads.rs"]
mod threads;

use hostile::*;
use issue::*;
use scenario::*;
use smp::*;
use threads::*;
