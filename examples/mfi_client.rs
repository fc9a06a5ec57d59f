//! `mfi_client`: a MegaCli-like client for the MegaRAID management ioctl, to run with and without
//! the guard (and against the legacy-driver simulator or a real driver). The contract it keeps is
//! `notes/client-contract.md`; in short:
//!
//!     mfi_client [--device PATH] [--host N] [--repeat N] SCENARIO [ARGS]
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
//!   hardening (issue 9; these print counts, and pids or timings only on stderr):
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
//!                          as it is read: one outcome line per call, flushed
//!     compat-int80 KIND    (x86_64) `stp-probe` or `sgl-off` in the i386 layout, issued with
//!                          `int 0x80` and `MEGASAS_IOC_FIRMWARE32` from this 64-bit process
//!
//! `MFI_CLIENT_SYSCALL=syscall|asm` issues the MegaRAID calls with `syscall(SYS_ioctl)` or the
//! instruction itself (`syscall`, `int 0x80` on i386) instead of glibc's `ioctl`.
//!
//!   issue 17:
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
//!
//! Real buffers, real pointers: every iovec points at memory this process owns, and the packets
//! are built with the sanitizer's `PacketBuilder` and its samples of what MegaCli sends. Stdout is
//! deterministic (no pointers, no timings). Exit status: 0 when the ioctl returned 0 (whatever
//! `cmd_status`), 1 when it failed, 2 on a usage error, 3 when the device cannot be opened.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line client reports on stdout

use std::ffi::{c_int, c_ulong, c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use mfiguard_sanitizer::abi::mfi::{
    MfiCmd, MR_DCMD_CTRL_EVENT_GET_INFO, MR_DCMD_CTRL_GET_INFO, MR_DCMD_LD_GET_LIST,
    MR_DCMD_PD_GET_LIST,
};
use mfiguard_sanitizer::builder::{samples, PacketBuilder};
use mfiguard_sanitizer::{Abi, RuleId};

#[path = "mfi_client/firmware_view.rs"]
mod firmware_view;
#[path = "mfi_client/hardening.rs"]
mod hardening;

const ABI: Abi = Abi::NATIVE;
const DEFAULT_DEVICE: &str = "/dev/megaraid_sas_ioctl_node";
/// Where the frame starts in the packet, and `cmd_status` (frame byte 2) and the flags in it.
const FRAME: usize = 0x14;
const CMD_STATUS: usize = FRAME + 0x02;
const FLAGS: usize = FRAME + 0x10;
const DIR_READ: u16 = 0x0010;
const DIR_WRITE: u16 = 0x0008;
const IEEE_SGL64: u16 = 0x0022;
/// `MFI_CMD_STATUS_POLL_MODE`: what the status byte holds until the kernel writes it.
const STATUS_UNSET: u8 = 0xFF;
/// `MEGASAS_IOC_GET_AEN`.
const IOC_GET_AEN: u32 = 0x400C_4D03;

fn main() {
    std::process::exit(run());
}

struct Opts {
    device: Option<String>,
    host: u16,
    repeat: u32,
    scenario: String,
    args: Vec<String>,
}

const USAGE_TEXT: &str =
    "usage: mfi_client [--device PATH] [--host N] [--repeat N] SCENARIO [ARGS]\n\
     scenarios: ctrl-info pd-list ld-list event-info inquiry TARGET stp-probe TARGET\n\
     \x20          ieee-dcmd sgl-off HEXOFF sense-off HEXOFF rule RULE_ID aen\n\
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
        Plan::Issue17 => hardening::issue17(fd, &opts),
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

fn errno_name(e: c_int) -> &'static str {
    match e {
        0 => "0",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        524 => "ENOTSUPP",
        _ => "errno",
    }
}

fn status_name(s: u8) -> &'static str {
    match s {
        0x00 => "OK",
        0x01 => "INVALID_CMD",
        0x02 => "INVALID_DCMD",
        0x03 => "INVALID_PARAMETER",
        0x04 => "INVALID_SEQUENCE_NUMBER",
        0x05 => "ABORT_NOT_POSSIBLE",
        0x0C => "DEVICE_NOT_FOUND",
        0x20 => "MEMORY_NOT_AVAILABLE",
        0x2D => "SCSI_DONE_WITH_ERROR",
        0x2E => "SCSI_IO_FAILED",
        0x2F => "SCSI_RESERVATION_CONFLICT",
        0xFF => "INVALID_STATUS",
        _ => "OTHER",
    }
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

// ---- scenarios -------------------------------------------------------------------------------

enum Plan {
    Call(Call),
    Aen,
    Unrelated,
    Poll(c_int),
    Fault(String),
    Race(u64),
    SmpRace(u64),
    Threads(usize, u64),
    Stress(usize, u64),
    Fork(usize, u64),
    ConfigInherit(String, String),
    ForkDuringLoad,
    Signals(u64, u64),
    SignalInKernel,
    Lines,
    CompatInt80(String),
    Issue17,
    Dl,
    FirmwareView,
}

/// What to print from the buffers after a call.
#[derive(Clone, Copy)]
enum Report {
    CtrlInfo,
    PdList,
    LdList,
    EventInfo,
    Inquiry,
    Stp,
    Smp,
    Nothing,
}

/// One MEGASAS_IOC_FIRMWARE call: the packet and the buffers its iovecs point at.
struct Call {
    packet: Vec<u8>,
    request: c_ulong,
    /// Data buffers (and the sense buffer last, for pass-through): the packet holds their
    /// addresses, so they live as long as the call.
    bufs: Vec<Vec<u8>>,
    report: Report,
    /// A line printed before the result details, e.g. `rule=sgl.bounds`.
    label: Option<String>,
}

fn buf_addr(b: &mut [u8]) -> u64 {
    b.as_mut_ptr() as u64
}

fn dcmd(host: u16, opcode: u32, len: usize, report: Report) -> Call {
    let mut buf = vec![0u8; len];
    let packet = samples::dcmd_read(ABI, opcode, buf_addr(&mut buf), len as u32)
        .host_no(host)
        .build();
    Call {
        packet,
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![buf],
        report,
        label: None,
    }
}

/// CTRL_GET_INFO, with a builder edit applied before the packet is built.
fn ctrl_info_with(
    host: u16,
    len: usize,
    edit: impl FnOnce(PacketBuilder) -> PacketBuilder,
) -> Call {
    let mut buf = vec![0u8; len];
    let b = samples::dcmd_read(ABI, MR_DCMD_CTRL_GET_INFO, buf_addr(&mut buf), len as u32)
        .host_no(host);
    Call {
        packet: edit(b).build(),
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![buf],
        report: Report::CtrlInfo,
        label: None,
    }
}

/// INQUIRY pass-through (96 bytes, sense at 0x18), with a builder edit; the sense buffer is
/// `sense_buf_len` bytes (the packet's sense_len stays 32 unless the edit changes it).
fn inquiry_with(
    host: u16,
    target: u8,
    sense_buf_len: usize,
    edit: impl FnOnce(PacketBuilder, u64) -> PacketBuilder,
) -> Call {
    let mut buf = vec![0u8; 96];
    let mut sense = vec![0u8; sense_buf_len];
    let sense_addr = buf_addr(&mut sense);
    let b = samples::scsi_inquiry(ABI, target, buf_addr(&mut buf), 96, sense_addr).host_no(host);
    Call {
        packet: edit(b, sense_addr).build(),
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![buf, sense],
        report: Report::Inquiry,
        label: None,
    }
}

fn target_arg(opts: &Opts) -> Result<u8, String> {
    arg_num(opts, "a TARGET")
        .and_then(|v| u8::try_from(v).map_err(|_| "TARGET must be 0..255".to_owned()))
}

fn prepare(opts: &Opts) -> Result<Plan, String> {
    let h = opts.host;
    let call = match opts.scenario.as_str() {
        "ctrl-info" => dcmd(h, MR_DCMD_CTRL_GET_INFO, 2048, Report::CtrlInfo),
        "pd-list" => dcmd(h, MR_DCMD_PD_GET_LIST, 4096, Report::PdList),
        // QEMU refuses an LD list buffer larger than struct mfi_ld_list (8 + 64 * 16 bytes).
        "ld-list" => dcmd(h, MR_DCMD_LD_GET_LIST, 8 + 64 * 16, Report::LdList),
        "event-info" => dcmd(h, MR_DCMD_CTRL_EVENT_GET_INFO, 20, Report::EventInfo),
        "inquiry" => inquiry_with(h, target_arg(opts)?, 32, |b, _| b),
        "stp-probe" => {
            let target = target_arg(opts)?;
            let mut fis = vec![0u8; 20];
            let mut data = vec![0u8; 512];
            let packet = samples::megacli_8_01_06_stp_probe(
                ABI,
                target,
                buf_addr(&mut fis),
                buf_addr(&mut data),
            )
            .host_no(h)
            .build();
            Call {
                packet,
                request: c_ulong::from(ABI.firmware_request()),
                bufs: vec![fis, data],
                report: Report::Stp,
                label: None,
            }
        }
        "ieee-dcmd" => ctrl_info_with(h, 2048, |b| add_flags(b, IEEE_SGL64)),
        "high-bits" => {
            let mut c = ctrl_info_with(h, 2048, |b| add_flags(b, IEEE_SGL64));
            if cfg!(target_pointer_width = "64") {
                c.request |= 1 << (c_ulong::BITS - 32);
            }
            c
        }
        "sgl-off" => {
            let off = u32::try_from(arg_num(opts, "HEXOFF")?).map_err(|_| "HEXOFF too big")?;
            ctrl_info_with(h, 2048, |b| b.sgl_off(off))
        }
        "sense-off" => {
            let off = u32::try_from(arg_num(opts, "HEXOFF")?).map_err(|_| "HEXOFF too big")?;
            inquiry_with(h, 8, 32, |b, sense| sense_at(b, off, sense))
        }
        "ld-read" => {
            let target = target_arg(opts)?;
            let mut buf = vec![0u8; 512];
            Call {
                packet: samples::ld_io(ABI, MfiCmd::LdRead, target, buf_addr(&mut buf))
                    .host_no(h)
                    .build(),
                request: c_ulong::from(ABI.firmware_request()),
                bufs: vec![buf],
                report: Report::Nothing,
                label: None,
            }
        }
        "rule" => {
            let id = opts.args.first().ok_or("rule needs a RULE_ID (or pass)")?;
            let mut c = rule_call(h, id)?;
            c.label = Some(format!("rule={id}"));
            c
        }
        "aen" => return Ok(Plan::Aen),
        "unrelated" => return Ok(Plan::Unrelated),
        "poll" => {
            return Ok(Plan::Poll(
                arg_num(opts, "milliseconds")?.min(60_000) as c_int
            ))
        }
        "fault" => {
            let kind = opts.args.first().ok_or("fault needs a KIND")?;
            if !FAULT_KINDS.contains(&kind.as_str()) {
                return Err(format!("unknown fault kind {kind}"));
            }
            return Ok(Plan::Fault(kind.clone()));
        }
        "race" => return Ok(Plan::Race(arg_num(opts, "a count")?.max(1))),
        "dcmd" => dcmd_raw(h, opts)?,
        "smp" => {
            let f = arg_num(opts, "a FUNCTION")?;
            let f = u8::try_from(f).map_err(|_| "FUNCTION must be 0..255")?;
            match opts.args.get(1).map(String::as_str) {
                None => smp_call(h, f, 40, None),
                // A request buffer longer than any SMP request frame (and than a page).
                Some("long") => smp_call(h, f, 8192, None),
                // The request's iov_base points at a page that is not mapped.
                Some("unmapped") => smp_call(h, f, 40, Some(unmapped_page())),
                Some(other) => return Err(format!("unknown smp variant {other}")),
            }
        }
        "smp-race" => return Ok(Plan::SmpRace(arg_num(opts, "a count")?.max(1))),
        "threads" => {
            let n = arg_num(opts, "THREADS CALLS")?.clamp(1, 256);
            let m = opts
                .args
                .get(1)
                .and_then(|a| parse_num(a))
                .ok_or("threads needs THREADS CALLS")?
                .max(1);
            return Ok(Plan::Threads(n as usize, m));
        }
        "stress" | "fork" | "signals" => {
            let a = arg_num(opts, "two numbers")?;
            let b = opts
                .args
                .get(1)
                .and_then(|a| parse_num(a))
                .ok_or_else(|| format!("{} needs two numbers", opts.scenario))?;
            return Ok(match opts.scenario.as_str() {
                "stress" => Plan::Stress(a.clamp(1, 256) as usize, b),
                "fork" => Plan::Fork(a.clamp(1, 256) as usize, b),
                _ => Plan::Signals(a, b.max(1)),
            });
        }
        "config-inherit" => {
            let kv = opts.args.first().ok_or("config-inherit needs KEY=VALUE")?;
            let (k, v) = kv.split_once('=').ok_or("config-inherit needs KEY=VALUE")?;
            return Ok(Plan::ConfigInherit(k.to_owned(), v.to_owned()));
        }
        "fork-during-load" => return Ok(Plan::ForkDuringLoad),
        "signal-in-kernel" => return Ok(Plan::SignalInKernel),
        "lines" => return Ok(Plan::Lines),
        "compat-int80" => {
            let kind = opts
                .args
                .first()
                .ok_or("compat-int80 needs stp-probe or sgl-off")?;
            return Ok(Plan::CompatInt80(kind.clone()));
        }
        "soak" | "private-race" => return Ok(Plan::Issue17),
        "dl-ioctl" | "dl-lookups" | "dl-limit" => return Ok(Plan::Dl),
        "firmware-view" => return Ok(Plan::FirmwareView),
        other => return Err(format!("unknown scenario {other}")),
    };
    Ok(Plan::Call(call))
}

fn add_flags(b: PacketBuilder, flags: u16) -> PacketBuilder {
    b.header(|h| h.flags.set(h.flags.get() | flags))
}

/// Moves the caller's sense pointer to `off` (if it fits in the frame) and clears 0x18.
fn sense_at(b: PacketBuilder, off: u32, sense: u64) -> PacketBuilder {
    let b = b.sense_off(off).frame_u64(0x18, 0);
    let ptr = ABI.iovec_size() / 2;
    if (off as usize).saturating_add(ptr) <= 128 {
        match ABI {
            Abi::Lp64 => b.frame_u64(off as usize, sense),
            Abi::Ilp32 => b.frame_u32(off as usize, sense as u32),
        }
    } else {
        b
    }
}

/// A packet that triggers exactly one rule (and nothing else), for every rule of the policy.
fn rule_call(h: u16, id: &str) -> Result<Call, String> {
    if id == "pass" {
        return Ok(dcmd(h, MR_DCMD_CTRL_GET_INFO, 2048, Report::Nothing));
    }
    let rule = RuleId::from_name(id).ok_or_else(|| format!("unknown rule id {id}"))?;
    let mut call = match rule {
        // The seed's flags on a plain DCMD.
        RuleId::FrameAddressingFlags => ctrl_info_with(h, 2048, |b| add_flags(b, IEEE_SGL64)),
        // One sgl[] entry more than the packet has.
        RuleId::IocSgeCount => ctrl_info_with(h, 2048, |b| b.sge_count(17)),
        // A command code past MFI_CMD_OP_COUNT.
        RuleId::FrameCmd => ctrl_info_with(h, 2048, |b| b.header(|hd| hd.cmd = 0x0B)),
        // MFI_CMD_INIT with a queue-info physical address of the caller's choosing.
        RuleId::FrameCmdForbidden => Call {
            packet: PacketBuilder::new(ABI)
                .host_no(h)
                .frame_header(MfiCmd::Init, 0, 0, 0)
                .frame_u64(0x18, 0x1234_5000)
                .build(),
            request: c_ulong::from(ABI.firmware_request()),
            bufs: Vec::new(),
            report: Report::Nothing,
            label: None,
        },
        // The driver writes the SGL 256 KiB past its frame (which is never the frame's own SGL
        // offset: `sgl.offset-unusual` comes with it).
        RuleId::SglBounds => ctrl_info_with(h, 2048, |b| b.sgl_off(0x40000)),
        // The sense address written 1 MiB past the frame (the caller's pointer is nowhere).
        RuleId::SenseBounds => inquiry_with(h, 8, 32, |b, sense| sense_at(b, 0x10_0000, sense)),
        // An 8 KiB sense buffer.
        RuleId::SenseLength => inquiry_with(h, 8, 8192, |b, _| b.sense_len(8192)),
        // A 17 MiB DCMD buffer.
        RuleId::SgeLength => ctrl_info_with(h, 17 << 20, |b| b),
        // hdr.sge_count 2 for one buffer, and caller bytes where a second sge32 would be.
        RuleId::SglStaleEntry => ctrl_info_with(h, 2048, |b| {
            b.header(|hd| hd.sge_count = 2)
                .frame_u32(0x30, 0x1234_5000)
                .frame_u32(0x34, 4096)
        }),
        // No sense buffer, but a physical sense address in the pass-through frame.
        RuleId::FrameRawPhysicalAddress => inquiry_with(h, 8, 32, |b, _| {
            b.sense_off(0)
                .sense_len(0)
                .header(|hd| hd.sense_len = 0)
                .frame_u64(0x18, 0x1234_5000)
        }),
        // The frame claims 96 bytes of sense for a 32-byte buffer, and the command fails (an
        // unsupported VPD page), so the firmware writes sense.
        RuleId::SenseLengthMismatch => inquiry_with(h, 8, 32, |b, _| {
            b.header(|hd| hd.sense_len = 96)
                .frame_bytes(0x20, &[0x12, 0x01, 0x99, 0x00, 96, 0x00])
        }),
        // data_xferlen twice the buffer.
        RuleId::XferLength => ctrl_info_with(h, 2048, |b| b.header(|hd| hd.data_xferlen.set(4096))),
        // The SGL one slot later than a DCMD keeps it (still inside the frame).
        RuleId::SglOffsetUnusual => ctrl_info_with(h, 2048, |b| b.sgl_off(0x30)),
        RuleId::FrameLayoutUnknown
        | RuleId::SenseOffsetUnusual
        | RuleId::SglEmptyEntryPastFrame
        | RuleId::DcmdHostAddress => firmware_view::rule_call(h, rule)?,
        // The read-only policy's rules (MFIGUARD_MODE=readonly); each packet is well formed,
        // so outside that policy it passes, but for readonly.cmd's.
        // An NVMe frame, no data: refused first by frame.layout-unknown, so readonly.cmd
        // decides alone only with that rule allowed (what a tool that needs NVMe frames runs
        // with); a driver without NVMe pass-through answers ENOTSUPP.
        RuleId::ReadonlyCmd => Call {
            packet: PacketBuilder::new(ABI)
                .host_no(h)
                .frame_header(MfiCmd::Nvme, 0, 0, 0)
                .build(),
            request: c_ulong::from(ABI.firmware_request()),
            bufs: Vec::new(),
            report: Report::Nothing,
            label: None,
        },
        // MR_DCMD_CTRL_CACHE_FLUSH (controller and disk caches): an action, not a read.
        RuleId::ReadonlyDcmd => Call {
            packet: PacketBuilder::new(ABI)
                .host_no(h)
                .sgl_off(0x28)
                .frame_header(MfiCmd::Dcmd, 0, 0, 0)
                .frame_u32(0x18, 0x0110_1000)
                .frame_bytes(0x1C, &[0x03])
                .build(),
            request: c_ulong::from(ABI.firmware_request()),
            bufs: Vec::new(),
            report: Report::Nothing,
            label: None,
        },
        // SYNCHRONIZE CACHE(10) to a disk, sense at 0x18: not a reading command.
        RuleId::ReadonlyScsi => {
            let mut sense = vec![0u8; 32];
            let sense_addr = buf_addr(&mut sense);
            let b = PacketBuilder::new(ABI)
                .host_no(h)
                .sgl_off(0x30)
                .sense_off(0x18)
                .sense_len(32)
                .frame_header(MfiCmd::PdScsiIo, 0, 0, 0)
                .header(|hd| {
                    hd.target_id = 8;
                    hd.cdb_len = 10;
                    hd.sense_len = 32;
                    hd.timeout = 10.into();
                })
                .frame_bytes(0x20, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            let b = match ABI {
                Abi::Lp64 => b.frame_u64(0x18, sense_addr),
                Abi::Ilp32 => b.frame_u32(0x18, sense_addr as u32),
            };
            Call {
                packet: b.build(),
                request: c_ulong::from(ABI.firmware_request()),
                bufs: vec![sense],
                report: Report::Nothing,
                label: None,
            }
        }
        // ATA FLUSH CACHE (0xE7) tunnelled to a SATA disk: the probe's frame, another command.
        RuleId::ReadonlyAta => {
            let mut fis = vec![0u8; 20];
            let packet = PacketBuilder::new(ABI)
                .host_no(h)
                .sgl_off(0x30)
                .sge_count(1)
                .iovec(0, buf_addr(&mut fis), 20)
                .frame_header(MfiCmd::Stp, DIR_READ, 1, 0)
                .header(|hd| {
                    hd.target_id = 10;
                    hd.timeout = 10.into();
                })
                .frame_bytes(0x18, &[0x27, 0x80, 0xE7, 0x00])
                .build();
            Call {
                packet,
                request: c_ulong::from(ABI.firmware_request()),
                bufs: vec![fis],
                report: Report::Nothing,
                label: None,
            }
        }
        // SMP PHY CONTROL (function 0x91) to an expander: configuration, not discovery.
        RuleId::ReadonlySmp => {
            let mut call = smp_call(h, 0x91, 40, None);
            call.bufs[1][3] = 0x09; // PHY CONTROL's request length, in dwords
            call.report = Report::Nothing;
            call
        }
    };
    call.report = Report::Nothing;
    Ok(call)
}

// ---- issuing ---------------------------------------------------------------------------------

struct Outcome {
    ret: c_int,
    errno: c_int,
    cmd_status: u8,
}

fn issue(fd: c_int, request: c_ulong, packet: &mut [u8]) -> Outcome {
    packet[CMD_STATUS] = STATUS_UNSET;
    // SAFETY: `packet` is a whole megasas_iocpacket of this process's layout; its iovecs point at
    // buffers the caller keeps alive across the call.
    let ret = unsafe { megaraid_ioctl(fd, request, packet.as_mut_ptr().cast::<c_void>()) };
    let errno = if ret < 0 { last_errno() } else { 0 };
    Outcome {
        ret,
        errno,
        cmd_status: packet[CMD_STATUS],
    }
}

fn print_outcome(name: &str, o: &Outcome, with_status: bool) {
    if o.ret == 0 {
        if with_status {
            println!(
                "ioctl={name} ret=0 errno=0 cmd_status={:#04x} ({})",
                o.cmd_status,
                status_name(o.cmd_status)
            );
        } else {
            println!("ioctl={name} ret=0 errno=0");
        }
    } else {
        println!(
            "ioctl={name} ret={} errno={} ({})",
            o.ret,
            o.errno,
            errno_name(o.errno)
        );
    }
}

fn run_call(fd: c_int, opts: &Opts, mut call: Call) -> i32 {
    let mut failed = 0u32;
    let mut last = None;
    let mut before = call.packet.clone();
    before[CMD_STATUS] = STATUS_UNSET;
    for _ in 0..opts.repeat {
        let o = issue(fd, call.request, &mut call.packet);
        if o.ret != 0 {
            failed += 1;
        }
        last = Some(o);
    }
    let Some(o) = last else { return 2 };
    print_outcome("MEGASAS_IOC_FIRMWARE", &o, true);
    if opts.repeat > 1 {
        println!("calls={} failed={failed}", opts.repeat);
    }
    if let Some(label) = &call.label {
        println!("{label}");
    }
    if o.ret == 0 {
        report(call.report, &call.bufs);
    }
    // Which bytes of the caller's packet the call wrote: a kernel writes exactly one, the
    // status byte (0x16), and only on success.
    let changed: Vec<String> = before
        .iter()
        .zip(&call.packet)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| format!("{i:#x}"))
        .collect();
    if changed.is_empty() {
        println!("packet_changed=none");
    } else {
        println!("packet_changed={}", changed.join(","));
    }
    i32::from(o.ret != 0)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end]
        .iter()
        .map(|&c| {
            if (0x20..0x7F).contains(&c) {
                c as char
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// An ATA IDENTIFY string: byte-swapped 16-bit words.
fn ata_string(b: &[u8]) -> String {
    let swapped: Vec<u8> = b.chunks(2).flat_map(|w| [w[1], w[0]]).collect();
    cstr(&swapped).trim().to_owned()
}

fn report(kind: Report, bufs: &[Vec<u8>]) {
    match kind {
        Report::CtrlInfo => {
            let d = &bufs[0];
            // struct megasas_ctrl_info: image_component[0].version @0xC0, product_name @0x540,
            // serial_no @0x590, package_version @0x640.
            println!("firmware={}", cstr(&d[0xC0..0xE0]));
            println!("package={}", cstr(&d[0x640..0x6A0]));
            println!("product={}", cstr(&d[0x540..0x590]));
            println!("serial={}", cstr(&d[0x590..0x5B0]));
        }
        Report::PdList => {
            let d = &bufs[0];
            let count = le32(d, 4) as usize;
            let fits = (d.len() - 8) / 24;
            let ids: Vec<String> = (0..count.min(fits))
                .map(|i| le16(d, 8 + 24 * i).to_string())
                .collect();
            println!("pd_count={count}");
            println!("pd_ids={}", ids.join(","));
        }
        Report::LdList => {
            let d = &bufs[0];
            let count = le32(d, 0) as usize;
            let fits = (d.len() - 8) / 16;
            let ids: Vec<String> = (0..count.min(fits))
                .map(|i| d[8 + 16 * i].to_string())
                .collect();
            println!("ld_count={count}");
            println!("ld_targets={}", ids.join(","));
        }
        Report::EventInfo => {
            let d = &bufs[0];
            println!(
                "newest_seq={} oldest_seq={} clear_seq={} shutdown_seq={} boot_seq={}",
                le32(d, 0),
                le32(d, 4),
                le32(d, 8),
                le32(d, 12),
                le32(d, 16)
            );
        }
        Report::Inquiry => {
            let d = &bufs[0];
            println!("peripheral_type={:#04x}", d[0] & 0x1F);
            println!("vendor={}", cstr(&d[8..16]));
            println!("product={}", cstr(&d[16..32]));
            println!("revision={}", cstr(&d[32..36]));
            let sense = &bufs[1];
            println!(
                "sense_key={:#04x} asc={:#04x}",
                sense.get(2).map_or(0, |k| k & 0x0F),
                sense.get(12).copied().unwrap_or(0)
            );
        }
        Report::Stp => {
            let (fis, id) = (&bufs[0], &bufs[1]);
            println!("fis_type={:#04x} fis_status={:#04x}", fis[0], fis[2]);
            println!("model={}", ata_string(&id[54..94]));
            println!("serial={}", ata_string(&id[20..40]));
            println!("firmware_rev={}", ata_string(&id[46..54]));
        }
        Report::Smp => {
            let hex = |b: &[u8]| {
                b.iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            println!("smp_response={}", hex(&bufs[0][..4]));
            println!("smp_request={}", hex(&bufs[1][..8]));
        }
        Report::Nothing => {}
    }
}

// ---- GET_AEN ---------------------------------------------------------------------------------

fn run_aen(fd: c_int, opts: &Opts) -> i32 {
    // Register for SIGIO, as MegaCli does before asking for events.
    // SAFETY: fcntl on our own descriptor with integer arguments.
    unsafe {
        libc::fcntl(fd, libc::F_SETOWN, libc::getpid());
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_ASYNC);
    }
    // struct megasas_aen: host_no, pad, seq_num, class_locale_word (locale ALL, class INFO).
    let mut aen = [0u8; 12];
    aen[0..2].copy_from_slice(&opts.host.to_ne_bytes());
    aen[4..8].copy_from_slice(&0u32.to_ne_bytes());
    aen[8..12].copy_from_slice(&0x0000_FFFFu32.to_ne_bytes());
    let mut failed = 0;
    let mut o = Outcome {
        ret: 0,
        errno: 0,
        cmd_status: 0,
    };
    for _ in 0..opts.repeat {
        // SAFETY: a 12-byte struct megasas_aen, as the request expects.
        let ret = unsafe {
            megaraid_ioctl(
                fd,
                c_ulong::from(IOC_GET_AEN),
                aen.as_mut_ptr().cast::<c_void>(),
            )
        };
        o = Outcome {
            ret,
            errno: if ret < 0 { last_errno() } else { 0 },
            cmd_status: 0,
        };
        if ret != 0 {
            failed += 1;
        }
    }
    print_outcome("MEGASAS_IOC_GET_AEN", &o, false);
    if opts.repeat > 1 {
        println!("calls={} failed={failed}", opts.repeat);
    }
    i32::from(o.ret != 0)
}

// ---- ioctls the guard must leave alone -------------------------------------------------------

/// Polls the node twice for a controller event: the driver says readable once per event.
fn run_poll(fd: c_int, ms: c_int) -> i32 {
    for i in 1..=2 {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            println!("poll={i} ret=-1 errno={e}");
            return 1;
        }
        println!("poll={i} ret={n} revents={:#06x}", p.revents);
    }
    0
}

fn run_unrelated(fd: c_int) -> i32 {
    let mut p = [0; 2];
    // SAFETY: pipe writes two descriptors.
    if unsafe { libc::pipe(p.as_mut_ptr()) } != 0 {
        eprintln!("mfi_client: pipe failed");
        return 3;
    }
    // SAFETY: writing 5 bytes from a static buffer to our pipe.
    unsafe { libc::write(p[1], b"hello".as_ptr().cast(), 5) };
    // Each ioctl below sits between two getppid() calls, so that a syscall trace shows what
    // else (if anything) happened around it: an unrelated ioctl must cost no extra syscall.
    let marker = || {
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    };
    let line = |name: &str, ret: c_int, extra: String| {
        let errno = if ret < 0 { last_errno() } else { 0 };
        println!(
            "{name} ret={ret} errno={errno} ({}){extra}",
            errno_name(errno)
        );
    };

    // FIONREAD on a pipe: the most ordinary ioctl there is.
    let mut avail: c_int = -1;
    marker();
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { libc::ioctl(p[0], libc::FIONREAD, &mut avail) };
    marker();
    line("fionread_pipe", r, format!(" bytes={avail}"));

    // The MegaRAID request on a descriptor that is not the management node, with a packet the
    // guard would refuse: it must reach the pipe's driver, which knows no such request.
    let mut buf = vec![0u8; 2048];
    let mut pkt = samples::dcmd_read(ABI, MR_DCMD_CTRL_GET_INFO, buf_addr(&mut buf), 2048)
        .sge_count(17)
        .build();
    marker();
    // SAFETY: a whole packet; the pipe's driver does not read it.
    let r = unsafe {
        libc::ioctl(
            p[0],
            c_ulong::from(ABI.firmware_request()),
            pkt.as_mut_ptr().cast::<c_void>(),
        )
    };
    marker();
    line("megaraid_request_on_pipe", r, String::new());

    // Another 'M' request (nr 2) on the device itself: other drivers use type 'M' too.
    let other = mfiguard_sanitizer::abi::ioctl::iowr(b'M', 2, ABI.packet_size());
    marker();
    // SAFETY: the device does not know the request; the packet is a valid buffer anyway.
    let r = unsafe { libc::ioctl(fd, c_ulong::from(other), pkt.as_mut_ptr().cast::<c_void>()) };
    marker();
    line("other_m_request_on_device", r, String::new());

    // TCGETS on the device.
    // SAFETY: a zeroed termios is a valid buffer for TCGETS to fill.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    marker();
    // SAFETY: TCGETS writes one termios.
    let r = unsafe { libc::ioctl(fd, libc::TCGETS, &mut t) };
    marker();
    line("tcgets_device", r, String::new());

    // The other ABI's MEGASAS_IOC_FIRMWARE on the device: the kernel's native handler knows
    // only this process's code (the compat one is for 32-bit processes), so it is ENOTTY; a
    // guard that decoded it would refuse the rule-breaking packet with EINVAL instead.
    let other_abi = match ABI {
        Abi::Lp64 => Abi::Ilp32,
        Abi::Ilp32 => Abi::Lp64,
    };
    marker();
    // SAFETY: the packet buffer is larger than either layout; the kernel does not read it.
    let r = unsafe {
        libc::ioctl(
            fd,
            c_ulong::from(other_abi.firmware_request()),
            pkt.as_mut_ptr().cast::<c_void>(),
        )
    };
    marker();
    line("other_abi_firmware_on_device", r, String::new());
    0
}

// ---- the 32-bit entry from a 64-bit process ---------------------------------------------------

/// `compat-int80 stp-probe|sgl-off`: the i386 layout's `MEGASAS_IOC_FIRMWARE32` through
/// `int 0x80` from a 64-bit process (the kernel then takes the compat path: an `LD_PRELOAD`
/// guard never sees it). The packet and its buffers live below 4 GiB, as 32-bit pointers need.
#[cfg(target_arch = "x86_64")]
fn run_compat_int80(fd: c_int, host: u16, kind: &str) -> i32 {
    const LEN: usize = 4096;
    // SAFETY: a fresh anonymous mapping; checked below.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        eprintln!("mfi_client: mmap(MAP_32BIT) failed");
        return 2;
    }
    let base = mem as u64;
    let (fis, data) = (base + 1024, base + 2048);
    let builder = match kind {
        "stp-probe" => samples::megacli_8_01_06_stp_probe(Abi::Ilp32, 10, fis, data),
        "sgl-off" => {
            samples::dcmd_read(Abi::Ilp32, MR_DCMD_CTRL_GET_INFO, data, 2048).sgl_off(0x40000)
        }
        _ => return usage(&format!("unknown compat-int80 kind {kind}")),
    };
    let packet = builder.host_no(host).build();
    // SAFETY: the mapping is 4096 bytes; the packet (276) fits at its start.
    let pkt = unsafe { std::slice::from_raw_parts_mut(mem.cast::<u8>(), LEN) };
    pkt[..packet.len()].copy_from_slice(&packet);
    pkt[CMD_STATUS] = STATUS_UNSET;
    let code = Abi::Ilp32.firmware_request();
    let ret: isize;
    // SAFETY: the i386 system-call ABI through int 0x80 (nr in eax, arguments in ebx, ecx,
    // edx; only their low 32 bits are used); rbx is reserved by LLVM, hence the swap. The
    // packet and buffers are in the mapping, below 4 GiB.
    unsafe {
        std::arch::asm!(
            "xchg rsi, rbx",
            "int 0x80",
            "xchg rsi, rbx",
            inlateout("rax") 54isize => ret,
            in("rsi") fd as isize,
            in("rcx") code as usize,
            in("rdx") base as usize,
            options(nostack)
        );
    }
    let ret = syscall_result(ret);
    let o = Outcome {
        ret,
        errno: if ret < 0 { last_errno() } else { 0 },
        cmd_status: pkt[CMD_STATUS],
    };
    print_outcome("MEGASAS_IOC_FIRMWARE32", &o, true);
    if ret == 0 && kind == "stp-probe" {
        let model = &pkt[2048 + 54..2048 + 94];
        let model: Vec<u8> = model.chunks(2).flat_map(|w| [w[1], w[0]]).collect();
        println!("model={}", String::from_utf8_lossy(&model).trim());
    }
    i32::from(ret != 0)
}

#[cfg(not(target_arch = "x86_64"))]
fn run_compat_int80(_fd: c_int, _host: u16, _kind: &str) -> i32 {
    usage("compat-int80 is for 64-bit processes")
}

// ---- unreadable packets and hostile pointers ------------------------------------------------

/// The `fault` kinds: where the packet pointer points, or which pointer inside a well-formed
/// packet is hostile.
const FAULT_KINDS: [&str; 12] = [
    "unmapped",
    "protnone",
    "span",
    "short",
    "null",
    "readonly",
    "edge",
    "misaligned",
    "sense-unmapped",
    "iovec-unmapped",
    "iovec-readonly",
    "iovec-unmapped-rule",
];

fn run_fault(fd: c_int, host: u16, kind: &str) -> i32 {
    let page = 4096usize;
    // An address where nothing is mapped: a page of our own, unmapped again. Nothing in this
    // single-threaded scenario maps memory before the call, so the hole stays a hole.
    // SAFETY: mapping and unmapping an anonymous page of our own; only its address is kept.
    let hole = || unsafe {
        let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
        libc::munmap(p.cast(), page);
        p as u64
    };
    let mut call = match kind {
        // The seed's flags: the guard must read (and rewrite) the packet where it is.
        "misaligned" => ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64)),
        // INQUIRY whose sense pointer (the 8 bytes at sense_off 0x18, 4 on i386) is a hole: the
        // command runs, then the sense copy-back fails.
        "sense-unmapped" => inquiry_with(host, 8, 32, |b, _| sense_at(b, 0x18, hole())),
        // CTRL_GET_INFO whose one buffer is a hole: nothing can be copied in.
        "iovec-unmapped" => ctrl_info_with(host, 2048, |b| b.iovec(0, hole(), 2048)),
        // The same hole in a packet a rule refuses (sgl.bounds, and sgl.offset-unusual): the
        // driver would write its SGL entry 256 KiB past its frame before it found the hole.
        "iovec-unmapped-rule" => {
            ctrl_info_with(host, 2048, |b| b.iovec(0, hole(), 2048).sgl_off(0x40000))
        }
        // CTRL_GET_INFO whose buffer is read-only: copied in, but not back.
        "iovec-readonly" => {
            // SAFETY: an anonymous page of our own, made read-only; only the kernel writes
            // to it (and fails).
            let ro = unsafe {
                let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
                libc::mprotect(p.cast(), page, libc::PROT_READ);
                p as u64
            };
            ctrl_info_with(host, 2048, |b| b.iovec(0, ro, 2048))
        }
        _ => ctrl_info_with(host, 2048, |b| b),
    };
    let pkt = call.packet.clone();
    // Whether the packet itself is readable, so its status byte can be read back.
    let readable = !matches!(kind, "unmapped" | "protnone" | "span" | "short" | "null");
    // SAFETY: anonymous mappings of our own, used only as addresses handed to the kernel
    // (and, for the readable kinds, read back below).
    let ptr: *mut u8 = unsafe {
        match kind {
            "null" => std::ptr::null_mut(),
            "readonly" => {
                // The whole packet readable, but not writable: the status byte cannot be
                // written back (the kernel's copy_to_user fails: EFAULT).
                let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), p, pkt.len());
                *p.add(CMD_STATUS) = STATUS_UNSET;
                libc::mprotect(p.cast(), page, libc::PROT_READ);
                p
            }
            "edge" => {
                // The packet ends exactly where a PROT_NONE page begins: all of it readable,
                // not one byte more. A correct copy succeeds.
                let p = map(2 * page, libc::PROT_READ | libc::PROT_WRITE);
                let start = p.add(page - pkt.len());
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), start, pkt.len());
                *start.add(CMD_STATUS) = STATUS_UNSET;
                libc::mprotect(p.add(page).cast(), page, libc::PROT_NONE);
                start
            }
            "misaligned" => {
                // At an odd address: nothing in the ABI aligns the packet, and the kernel
                // copies it byte for byte. Neither a copy nor the status write-back may assume
                // an alignment.
                let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
                let start = p.add(1);
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), start, pkt.len());
                *start.add(CMD_STATUS) = STATUS_UNSET;
                start
            }
            "protnone" => map(page, libc::PROT_NONE),
            "unmapped" => {
                let p = map(page, libc::PROT_READ | libc::PROT_WRITE);
                libc::munmap(p.cast(), page);
                p
            }
            "span" => {
                // The first 100 bytes readable, the rest in a PROT_NONE page.
                let p = map(2 * page, libc::PROT_READ | libc::PROT_WRITE);
                let start = p.add(page - 100);
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), start, 100);
                libc::mprotect(p.add(page).cast(), page, libc::PROT_NONE);
                start
            }
            "short" => {
                // A packet shorter than the layout (on x86_64 the 276 bytes of the i386 one:
                // a tool built for the other ABI), ending where an unmapped page begins.
                let short = pkt.len() - 128;
                let p = map(2 * page, libc::PROT_READ | libc::PROT_WRITE);
                libc::munmap(p.add(page).cast(), page);
                let start = p.add(page - short);
                std::ptr::copy_nonoverlapping(pkt.as_ptr(), start, short);
                start
            }
            _ => {
                // The packet is whole and where it should be; a pointer inside it is hostile.
                call.packet[CMD_STATUS] = STATUS_UNSET;
                call.packet.as_mut_ptr()
            }
        }
    };
    // SAFETY: the point of the scenario: the pointer, or one inside the packet, is hostile.
    // The kernel, and a correct guard, answer EFAULT (or a rule's errno) instead of faulting.
    let ret = unsafe {
        megaraid_ioctl(
            fd,
            c_ulong::from(ABI.firmware_request()),
            ptr.cast::<c_void>(),
        )
    };
    let errno = if ret < 0 { last_errno() } else { 0 };
    // SAFETY: for the readable kinds the packet's page is readable.
    let cmd_status = if readable {
        unsafe { std::ptr::read_volatile(ptr.add(CMD_STATUS)) }
    } else {
        0
    };
    print_outcome(
        "MEGASAS_IOC_FIRMWARE",
        &Outcome {
            ret,
            errno,
            cmd_status,
        },
        readable,
    );
    println!("fault={kind}");
    if readable {
        // STATUS_UNSET (0xff) when the status byte was not written: what the kernel does on
        // any failure.
        println!("status_byte={cmd_status:#04x}");
        if ret == 0 && matches!(kind, "readonly" | "edge" | "misaligned") {
            report(Report::CtrlInfo, &call.bufs);
        }
    }
    i32::from(ret != 0)
}

/// # Safety
/// Plain anonymous mmap; aborts the scenario when it fails.
unsafe fn map(len: usize, prot: c_int) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap failed");
    p.cast()
}

// ---- a second thread rewriting the packet ----------------------------------------------------

fn run_race(fd: c_int, opts: &Opts, n: u64) -> i32 {
    let mut buf = vec![0u8; 2048];
    let mut pkt = samples::dcmd_read(ABI, MR_DCMD_CTRL_GET_INFO, buf_addr(&mut buf), 2048)
        .host_no(opts.host)
        .build();
    let flags_addr = pkt.as_mut_ptr() as usize + FLAGS;
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // SAFETY: the flags byte lives in `pkt`, which outlives this thread (joined below);
            // this thread only touches it through an atomic.
            let flags = unsafe { &*(flags_addr as *const AtomicU8) };
            let (bad, good) = ((DIR_READ | IEEE_SGL64) as u8, DIR_READ as u8);
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                flags.store(bad, Ordering::Relaxed);
                std::hint::spin_loop();
                flags.store(good, Ordering::Relaxed);
                flips += 1;
            }
            flips
        })
    };
    let request = c_ulong::from(ABI.firmware_request());
    let (mut ok, mut failed) = (0u64, 0u64);
    let base = pkt.as_mut_ptr();
    for _ in 0..n {
        // SAFETY: the packet and its buffer live across the call; only the flags byte is
        // being changed concurrently (by the flipper, atomically), the status byte by the kernel.
        let r = unsafe {
            std::ptr::write_volatile(base.add(CMD_STATUS), STATUS_UNSET);
            megaraid_ioctl(fd, request, base.cast::<c_void>())
        };
        if r == 0 {
            ok += 1;
        } else {
            failed += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap_or(0);
    // Deterministic stdout: how many calls and how they ended, not how many flips happened.
    println!("calls={n} ok={ok} failed={failed}");
    eprintln!("mfi_client: race: {flips} flips during {n} calls");
    i32::from(failed != 0)
}

// ---- many threads at once --------------------------------------------------------------------

/// THREADS threads, released together (so the first guarded calls race the guard's lazy set-up),
/// each issuing CALLS `ieee-dcmd` calls on a packet of its own. `status_ok` counts the calls the
/// controller answered with cmd_status OK: on a legacy driver only a guard that cleared the flags
/// gets those.
fn run_threads(fd: c_int, opts: &Opts, n: usize, m: u64) -> i32 {
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let host = opts.host;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut c = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
                barrier.wait();
                let (mut ret_ok, mut status_ok) = (0u64, 0u64);
                for _ in 0..m {
                    let o = issue(fd, c.request, &mut c.packet);
                    if o.ret == 0 {
                        ret_ok += 1;
                        if o.cmd_status == 0 {
                            status_ok += 1;
                        }
                    }
                }
                (ret_ok, status_ok)
            })
        })
        .collect();
    let (mut ret_ok, mut status_ok) = (0u64, 0u64);
    for h in handles {
        let (r, st) = h.join().unwrap_or((0, 0));
        ret_ok += r;
        status_ok += st;
    }
    let calls = n as u64 * m;
    println!("threads={n} calls={calls} ret_ok={ret_ok} status_ok={status_ok}");
    i32::from(ret_ok != calls)
}

// ---- any DCMD --------------------------------------------------------------------------------

/// `dcmd OPCODE DIR LEN`: a DCMD with a buffer of LEN bytes read (DIR_READ) or sent
/// (DIR_WRITE, zeros), or none.
fn dcmd_raw(h: u16, opts: &Opts) -> Result<Call, String> {
    const USAGE: &str = "dcmd needs OPCODE read|write|none LEN";
    let opcode = u32::try_from(arg_num(opts, USAGE)?).map_err(|_| "OPCODE too big")?;
    let dir = opts.args.get(1).ok_or(USAGE)?;
    let len = opts
        .args
        .get(2)
        .and_then(|a| parse_num(a))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(USAGE)?;
    let mut buf = vec![0u8; len as usize];
    let b = PacketBuilder::new(ABI).host_no(h).sgl_off(0x28);
    let b = match dir.as_str() {
        "none" => b.frame_header(MfiCmd::Dcmd, 0, 0, 0),
        "read" | "write" => b
            .sge_count(1)
            .iovec(0, buf_addr(&mut buf), u64::from(len))
            .frame_header(
                MfiCmd::Dcmd,
                if dir == "read" { DIR_READ } else { DIR_WRITE },
                1,
                len,
            ),
        _ => return Err(USAGE.to_owned()),
    };
    Ok(Call {
        packet: b.frame_u32(0x18, opcode).build(),
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![buf],
        report: Report::Nothing,
        label: None,
    })
}

// ---- SMP -------------------------------------------------------------------------------------

/// SMP frame header flags as MegaCli-like tools send them: DIR_BOTH (request out, response in).
const SMP_DIR_BOTH: u16 = 0x0018;

/// An SMP frame to an expander: `sgl[0]` the 64-byte response, `sgl[1]` a 40-byte request
/// `40 FUNCTION 00 00` followed by zeros (`request_len` bytes in all; `request_base` instead of
/// the buffer's address, to point it elsewhere).
fn smp_call(h: u16, function: u8, request_len: usize, request_base: Option<u64>) -> Call {
    let mut response = vec![0u8; 64];
    let mut request = vec![0u8; request_len.max(8)];
    request[..4].copy_from_slice(&[0x40, function, 0x00, 0x00]);
    let packet = PacketBuilder::new(ABI)
        .host_no(h)
        .sgl_off(0x20)
        .sge_count(2)
        .iovec(0, buf_addr(&mut response), 64)
        .iovec(
            1,
            request_base.unwrap_or(buf_addr(&mut request)),
            request.len() as u64,
        )
        .frame_header(MfiCmd::Smp, SMP_DIR_BOTH, 2, 64)
        .header(|hd| hd.timeout = 10.into())
        .frame_u64(0x18, 0x5000_c500_0000_00ff)
        .build();
    Call {
        packet,
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![response, request],
        report: Report::Smp,
        label: None,
    }
}

/// The address of a page of our own, unmapped again: nothing is mapped there.
fn unmapped_page() -> u64 {
    // SAFETY: mapping and unmapping an anonymous page of our own; only its address is kept.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        libc::munmap(p, 4096);
        p as u64
    }
}

/// N SMP DISCOVER calls while a second thread keeps turning the caller's request into PHY
/// CONTROL (0x91) and back: whatever a guard checked must be what it sent.
fn run_smp_race(fd: c_int, opts: &Opts, n: u64) -> i32 {
    let mut call = smp_call(opts.host, 0x10, 40, None);
    let function_addr = call.bufs[1].as_mut_ptr() as usize + 1;
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // SAFETY: the function byte lives in the request buffer, which outlives this thread
            // (joined below); this thread only touches it through an atomic.
            let function = unsafe { &*(function_addr as *const AtomicU8) };
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                function.store(0x91, Ordering::Relaxed);
                std::hint::spin_loop();
                function.store(0x10, Ordering::Relaxed);
                flips += 1;
            }
            flips
        })
    };
    let request = call.request;
    let base = call.packet.as_mut_ptr();
    let (mut ok, mut eperm, mut other) = (0u64, 0u64, 0u64);
    for _ in 0..n {
        // SAFETY: the packet and its buffers live across the call; only the request's function
        // byte is being changed concurrently (by the flipper, atomically), the status byte and
        // the buffers by the kernel.
        let r = unsafe {
            std::ptr::write_volatile(base.add(CMD_STATUS), STATUS_UNSET);
            megaraid_ioctl(fd, request, base.cast::<c_void>())
        };
        match (r, if r < 0 { last_errno() } else { 0 }) {
            (0, _) => ok += 1,
            (-1, libc::EPERM) => eperm += 1,
            _ => other += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap_or(0);
    // Deterministic stdout; the split between passed and refused calls depends on timing.
    println!("calls={n} other={other}");
    eprintln!("mfi_client: smp-race: ok={ok} eperm={eperm}, {flips} flips during {n} calls");
    i32::from(other != 0)
}
