//! `liblegacy_sim.so`: a userspace stand-in for a pre-3.3 `megaraid_sas` driver and the MFI
//! firmware behind it, loaded after the guard in `LD_PRELOAD`:
//!
//!     LD_PRELOAD="libmfiguard.so liblegacy_sim.so" MFIGUARD_DEVICE=/dev/null \
//!         MFISIM_RECORD=/tmp/sim.jsonl mfi_client --device /dev/null stp-probe 10
//!
//! It interposes `ioctl` and answers `MEGASAS_IOC_FIRMWARE` and `MEGASAS_IOC_GET_AEN` on
//! descriptors of the simulated management node (`/dev/null`, or the path in `MFISIM_DEVICE`);
//! every other call goes to the next `ioctl` (`dlsym(RTLD_NEXT)`), normally glibc's.
//!
//! **The driver** does what the legacy driver's `megasas_mgmt_fw_ioctl` did, with no checks:
//! it copies the packet once (an unreadable packet is `EFAULT`, as `copy_from_user` makes it),
//! copies the 128 frame bytes into its own 1024-byte frame slot, overwrites `context`, zeroes
//! `pad_0`, leaves the caller's flags alone, and for each `i < sge_count` with a non-zero
//! `iov_len` "allocates" a DMA buffer (fake bus addresses from `0x91dfc000`, page by page),
//! writes `sge32 {u32 addr, u32 len}` at `frame + sgl_off + i * 8` and then copies the caller's
//! data in (an unreadable `iov_base` is `EFAULT`, after that entry was written). An unwritable
//! buffer or sense pointer at completion is `EFAULT` too, as `copy_to_user` makes it; the status
//! byte is then not written. With `sense_len != 0` it allocates the sense buffer and writes its
//! 4-byte address at `frame + sense_off`. A write that would land past the 1024-byte slot is not
//! performed but recorded in `out_of_frame_writes`: on a real host it is a kernel heap overwrite.
//! `sgl[]` entries past the sixteenth (a legacy driver read them anyway) are counted in
//! `sgl_overrun`.
//!
//! The frame slot is never cleared between calls (one slot, reused by every call of the
//! process, as a driver that does not clear returned frames reuses its pool): past the 128 bytes
//! a call copies, it holds what earlier calls' drivers wrote there, e.g. their SGL entries.
//!
//! **The firmware** reads the frame as the driver left it and trusts it: the header flags say
//! how to read the scatter/gather list (`IEEE` -> 16-byte skinny entries, `SGL64` -> 12-byte
//! `sge64`, else 8-byte `sge32`), `hdr.sge_count` says how many entries (SMP and STP frames: both
//! of the two their layout fixes, whatever it says), and the list sits where
//! the frame type keeps it (0x28 for DCMD, 0x30 for pass-through and STP, ...; `sgl_off` for
//! frames without a fixed layout). It records every address it parsed (`firmware_addrs`), and
//! every DMA it would have done outside the buffers the driver allocated (`wild_dma`): on a real
//! host, memory corruption. It answers DCMDs (`CTRL_GET_INFO`, `PD_GET_LIST`, `LD_GET_LIST`,
//! `CTRL_EVENT_GET_INFO`, ...), SCSI INQUIRY and TEST UNIT READY, and STP IDENTIFY DEVICE with
//! plausible data, writing it only into the driver's buffers.
//!
//! **Completion** is the driver's again: each buffer is copied back to the caller's `iov_base`,
//! the sense buffer to the user pointer stored at `frame + sense_off` in the driver's copy of the
//! packet, and exactly one byte of the caller's packet is written: `cmd_status`, frame byte 2.
//! Except for LD read and LD write frames: every driver completes those through the block
//! layer's SCSI command (`megasas_complete_cmd`), which a frame from the ioctl has not, and the
//! NULL dereference in interrupt kills the kernel. The record then says `oops` (and has no
//! `ret`), and the process ends with SIGKILL inside the call, as with `MFISIM_CRASH`: on a real
//! host the ioctl never returns. And except for frames whose flags still hold
//! `MFI_FRAME_DONT_POST_IN_REPLY_QUEUE`: the firmware writes their status into the frame and
//! posts no completion (the driver's own polled commands rely on it), and the driver waits for
//! one without a timeout. The record then says `hang` (and has no `ret`), and the process ends
//! the same way: on a real host it sleeps in the driver, unkillable.
//!
//! Every call it answers is appended as one JSON line to the file named by `MFISIM_RECORD` (if
//! set): the test oracle for what reached the kernel. `MFISIM_VERBOSE=1` adds one readable line
//! per call on stderr, `MFISIM_VERBOSE=2` the call told step by step (driver, then firmware: the
//! entries it parsed and where each DMA went). `MFISIM_CRASH=1` ends the process with SIGKILL
//! inside the first `MEGASAS_IOC_FIRMWARE` call, after its record: the seed's crash, to check
//! what evidence is left. `MFISIM_DELAY_US=N` makes each `MEGASAS_IOC_FIRMWARE` call wait N
//! microseconds for the firmware (a thread blocked inside the driver, for signal and log
//! rotation tests). `MFISIM_ONLY_IN=NAME` limits it to the process whose executable is named
//! NAME: preloaded into `mfiguard-run`, it plays the driver behind the supervisor, and is
//! inert in the tools the supervisor starts (which inherit `LD_PRELOAD`). For SMP frames the record has `smp_request`, the first bytes of the request
//! as the firmware read them; `MFISIM_SMP_WRITE_REQUEST=1` makes the firmware also write "SIM!"
//! at bytes 4..8 of the request buffer, to show the copy-back.
//! `MFISIM_SLOW_OPEN=PATH:MS` makes `open64` of exactly PATH sleep MS milliseconds first (a
//! configuration read that is slow to start, for the tests of what happens meanwhile: a config
//! FIFO no longer blocks the guard). It never writes to stdout.
//!
//! **It is the oracle, so it owes nothing to the code it judges**: it does not use
//! `mfiguard-sanitizer` (nor any crate of the guard), and keeps its own request codes, offsets,
//! flags, opcodes and status names, written from the kernel's `megaraid_sas.h` and the driver's
//! behaviour. A mistake in the sanitizer's tables therefore cannot hide itself here.
//!
//! The exported `ioctl` is declared `(c_int, c_ulong, *mut c_void)`: stable Rust cannot define a
//! variadic function, and on x86_64 and i386 a caller passing the third argument of glibc's
//! `int ioctl(int, unsigned long, ...)` puts it exactly where this signature reads it.
#![allow(clippy::print_stderr)] // MFISIM_VERBOSE diagnostics go to stderr by design

use std::ffi::{c_int, c_ulong, c_void};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// `MEGASAS_IOC_FIRMWARE` for this process's ABI (0xC1944D01 on x86_64, 0xC1144D01 on i386).
const IOC_FIRMWARE: u32 = if cfg!(target_pointer_width = "64") {
    0xC194_4D01
} else {
    0xC114_4D01
};
/// `MEGASAS_IOC_GET_AEN`, the same on both ABIs.
const IOC_GET_AEN: u32 = 0x400C_4D03;
/// Size of `struct megasas_iocpacket` and of one `struct iovec` for this ABI.
const PACKET_SIZE: usize = if cfg!(target_pointer_width = "64") {
    404
} else {
    276
};
const IOVEC_SIZE: usize = if cfg!(target_pointer_width = "64") {
    16
} else {
    8
};
const ABI_NAME: &str = if cfg!(target_pointer_width = "64") {
    "x86_64"
} else {
    "i386"
};
const FRAME_OFFSET: usize = 0x14;
const SGL_OFFSET: usize = 0x94;
const MAX_IOCTL_SGE: usize = 16;
/// The legacy MFI controllers' command frame slot (the Fusion ones have 256).
const FRAME_SLOT: usize = 1024;
/// The first DMA address the simulated `dma_alloc_coherent` hands out: the seed's number.
const DMA_BASE: u64 = 0x91df_c000;
const PAGE: u64 = 4096;
/// A single allocation the simulated kernel refuses (`ENOMEM`), so absurd lengths cannot make
/// the simulator itself allocate gigabytes.
const DMA_LIMIT: u64 = 256 << 20;

const MFI_FRAME_DONT_POST: u16 = 0x0001;
const MFI_FRAME_SGL64: u16 = 0x0002;
const MFI_FRAME_SENSE64: u16 = 0x0004;
const MFI_FRAME_IEEE: u16 = 0x0020;

const MFI_CMD_INIT: u8 = 0x00;
const MFI_CMD_LD_READ: u8 = 0x01;
const MFI_CMD_LD_WRITE: u8 = 0x02;
const MFI_CMD_LD_SCSI_IO: u8 = 0x03;
const MFI_CMD_PD_SCSI_IO: u8 = 0x04;
const MFI_CMD_DCMD: u8 = 0x05;
const MFI_CMD_ABORT: u8 = 0x06;
const MFI_CMD_SMP: u8 = 0x07;
const MFI_CMD_STP: u8 = 0x08;

const MFI_STAT_OK: u8 = 0x00;
const MFI_STAT_INVALID_CMD: u8 = 0x01;
const MFI_STAT_INVALID_DCMD: u8 = 0x02;
const MFI_STAT_INVALID_PARAMETER: u8 = 0x03;
const MFI_STAT_ABORT_NOT_POSSIBLE: u8 = 0x05;
const MFI_STAT_DEVICE_NOT_FOUND: u8 = 0x0C;
const MFI_STAT_SCSI_DONE_WITH_ERROR: u8 = 0x2D;

/// The simulated topology: SAS disks 8 and 9, SATA SSDs 10 and 11, one logical drive 0.
const PD_IDS: [u16; 4] = [8, 9, 10, 11];
const LD_IDS: [u8; 1] = [0];

type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int;

fn next_ioctl() -> Option<IoctlFn> {
    static NEXT: OnceLock<Option<IoctlFn>> = OnceLock::new();
    *NEXT.get_or_init(|| {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; the result is either null or
        // the address of the next `ioctl` in link order, whose ABI matches `IoctlFn` for the
        // three-argument calls made here (see the crate doc).
        unsafe {
            let p = libc::dlsym(libc::RTLD_NEXT, c"ioctl".as_ptr());
            if p.is_null() {
                None
            } else {
                Some(std::mem::transmute::<*mut c_void, IoctlFn>(p))
            }
        }
    })
}

fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// The kernel's `cmd` is an `unsigned int`: the upper half of a 64-bit request is ignored.
#[allow(clippy::unnecessary_cast)] // `c_ulong` is `u32` on i386 and `u64` on x86_64
fn request_code(request: c_ulong) -> u32 {
    request as u32
}

/// The interposed `ioctl`.
///
/// # Safety
/// Called by C code with glibc's `ioctl` contract: `arg` is whatever the request expects.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let cmd = request_code(request);
    if (cmd == IOC_FIRMWARE || cmd == IOC_GET_AEN) && active() && is_sim_device(fd) {
        let result = std::panic::catch_unwind(|| {
            if cmd == IOC_FIRMWARE {
                firmware_ioctl(request, arg as usize)
            } else {
                aen_ioctl(fd, request, arg as usize)
            }
        });
        let (ret, errno) = result.unwrap_or((-1, libc::EIO));
        if ret < 0 {
            set_errno(errno);
        }
        return ret;
    }
    match next_ioctl() {
        // SAFETY: forwarding the caller's own arguments to the next definition.
        Some(real) => unsafe { real(fd, request, arg) },
        None => {
            set_errno(libc::ENOSYS);
            -1
        }
    }
}

/// `MFISIM_ONLY_IN=NAME`: the simulator answers only in a process whose executable is named
/// NAME (e.g. `mfiguard-run`, whose supervisor issues the tool's calls in its own process);
/// elsewhere (the tool, which inherits `LD_PRELOAD`) it passes every call on.
fn active() -> bool {
    static ACTIVE: OnceLock<bool> = OnceLock::new();
    *ACTIVE.get_or_init(|| match std::env::var_os("MFISIM_ONLY_IN") {
        None => true,
        Some(name) => std::fs::read_link("/proc/self/exe")
            .ok()
            .and_then(|p| p.file_name().map(|n| n == name.as_os_str()))
            .unwrap_or(false),
    })
}

type Open64Fn = unsafe extern "C" fn(*const libc::c_char, c_int, libc::c_uint) -> c_int;

fn next_open64() -> Option<Open64Fn> {
    static NEXT: OnceLock<Option<Open64Fn>> = OnceLock::new();
    *NEXT.get_or_init(|| {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; the result is null or the
        // next `open64`, whose ABI matches `Open64Fn` (see `open64`).
        unsafe {
            let p = libc::dlsym(libc::RTLD_NEXT, c"open64".as_ptr());
            (!p.is_null()).then(|| std::mem::transmute::<*mut c_void, Open64Fn>(p))
        }
    })
}

/// The interposed `open64`: `MFISIM_SLOW_OPEN=PATH:MS` delays the opening of PATH by MS
/// milliseconds; everything else goes straight to the next `open64`. Declared with a fixed
/// third parameter for glibc's `int open64(const char *, int, ...)`, as `ioctl` is: the mode is
/// read only when the flags ask for it, from where a variadic callee would read it.
///
/// # Safety
/// glibc's `open64` contract: `path` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn open64(
    path: *const libc::c_char,
    flags: c_int,
    mode: libc::c_uint,
) -> c_int {
    // getenv, not std::env: no lock, callable from any thread at any time.
    // SAFETY: a NUL-terminated name; the result is null or a string in the environment.
    let slow = unsafe { libc::getenv(c"MFISIM_SLOW_OPEN".as_ptr()) };
    if !slow.is_null() && !path.is_null() {
        // SAFETY: both are NUL-terminated strings (checked non-null above).
        let (slow, wanted) = unsafe {
            (
                std::ffi::CStr::from_ptr(slow),
                std::ffi::CStr::from_ptr(path),
            )
        };
        let slow = slow.to_bytes();
        if let Some(colon) = slow.iter().rposition(|&b| b == b':') {
            let ms = std::str::from_utf8(&slow[colon + 1..])
                .ok()
                .and_then(|m| m.parse::<u64>().ok());
            if let (true, Some(ms)) = (&slow[..colon] == wanted.to_bytes(), ms) {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
    }
    match next_open64() {
        // SAFETY: forwarding the caller's own arguments to the next definition.
        Some(real) => unsafe { real(path, flags, mode) },
        None => {
            set_errno(libc::ENOSYS);
            -1
        }
    }
}

fn sim_device_rdev() -> Option<libc::dev_t> {
    static RDEV: OnceLock<Option<libc::dev_t>> = OnceLock::new();
    *RDEV.get_or_init(|| {
        let path = std::env::var("MFISIM_DEVICE").unwrap_or_else(|_| "/dev/null".into());
        let path = std::ffi::CString::new(path).ok()?;
        // SAFETY: a zeroed stat buffer is valid; stat writes into it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid path and buffer.
        let r = unsafe { libc::stat(path.as_ptr(), &mut st) };
        (r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFCHR).then_some(st.st_rdev)
    })
}

fn is_sim_device(fd: c_int) -> bool {
    let Some(rdev) = sim_device_rdev() else {
        return false;
    };
    // SAFETY: a zeroed stat buffer is valid; fstat writes into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on any integer is safe; a bad fd gives EBADF.
    let r = unsafe { libc::fstat(fd, &mut st) };
    r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == rdev
}

#[path = "legacy_sim/driver.rs"]
mod driver;
#[path = "legacy_sim/firmware.rs"]
mod firmware;
#[path = "legacy_sim/record.rs"]
mod record;
#[path = "legacy_sim/user.rs"]
mod user;

use driver::*;
use firmware::*;
use record::*;
use user::*;
