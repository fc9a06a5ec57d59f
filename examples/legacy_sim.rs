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
//! `sge64`, else 8-byte `sge32`), `hdr.sge_count` says how many entries, and the list sits where
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
//! host the ioctl never returns.
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

// ---- copy_from_user / copy_to_user -------------------------------------------------------

/// Reads caller memory without faulting: `Err` where `copy_from_user` would return EFAULT.
fn copy_from_user(addr: u64, out: &mut [u8]) -> Result<(), ()> {
    if out.is_empty() {
        return Ok(());
    }
    let addr = usize::try_from(addr).map_err(|_| ())?;
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: out.len(),
    };
    // SAFETY: the local iovec is our own buffer; the kernel checks the remote range and
    // reports EFAULT instead of faulting.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n == out.len() as isize {
        return Ok(());
    }
    if n < 0 && matches!(last_errno(), libc::ENOSYS | libc::EPERM) {
        return pipe_copy(addr as *const u8, out.as_mut_ptr(), out.len());
    }
    Err(())
}

/// Writes caller memory without faulting: `Err` where `copy_to_user` would return EFAULT.
fn copy_to_user(addr: u64, data: &[u8]) -> Result<(), ()> {
    if data.is_empty() {
        return Ok(());
    }
    let addr = usize::try_from(addr).map_err(|_| ())?;
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: data.len(),
    };
    // SAFETY: as in copy_from_user; the kernel checks the remote range.
    let n = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n == data.len() as isize {
        return Ok(());
    }
    if n < 0 && matches!(last_errno(), libc::ENOSYS | libc::EPERM) {
        return pipe_copy(data.as_ptr(), addr as *mut u8, data.len());
    }
    Err(())
}

/// Fallback where process_vm_* is not allowed: bytes go through a pipe, and the kernel checks
/// both ends (`write` from `src`, `read` into `dst`), failing with EFAULT instead of faulting.
fn pipe_copy(src: *const u8, dst: *mut u8, len: usize) -> Result<(), ()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(());
    }
    let mut done = 0usize;
    let mut ok = true;
    while ok && done < len {
        let chunk = (len - done).min(16 * 1024);
        // SAFETY: the kernel validates the source range (EFAULT on a bad one).
        let w = unsafe { libc::write(fds[1], src.wrapping_add(done).cast(), chunk) };
        // SAFETY: the kernel validates the destination range.
        let r =
            w > 0 && unsafe { libc::read(fds[0], dst.wrapping_add(done).cast(), w as usize) } == w;
        ok = r;
        done += chunk;
    }
    // SAFETY: closing the two descriptors created above.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    ok.then_some(()).ok_or(())
}

fn last_errno() -> c_int {
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

// ---- little helpers on byte slices --------------------------------------------------------

fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn le64(b: &[u8], off: usize) -> u64 {
    u64::from(le32(b, off)) | (u64::from(le32(b, off + 4)) << 32)
}
fn ne32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}
fn ne_word(b: &[u8], off: usize) -> u64 {
    if IOVEC_SIZE == 16 {
        b.get(off..off + 8).map_or(0, |s| {
            u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
        })
    } else {
        u64::from(ne32(b, off))
    }
}
fn put(b: &mut [u8], off: usize, data: &[u8]) {
    if let Some(dst) = b.get_mut(off..off + data.len()) {
        dst.copy_from_slice(data);
    }
}
fn put_str(b: &mut [u8], off: usize, s: &str) {
    put(b, off, s.as_bytes());
}

// ---- the JSON record -----------------------------------------------------------------------

/// A JSON object written field by field (the simulator has no serde).
struct Json(String);

impl Json {
    fn new() -> Json {
        Json(String::from("{"))
    }
    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{k}\":");
    }
    fn num(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Self {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.0.push_str(&quote(v));
        self
    }
    fn hex(&mut self, k: &str, v: u64) -> &mut Self {
        self.str(k, &format!("{v:#x}"))
    }
    fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.0.push_str(v);
        self
    }
    fn null(&mut self, k: &str) -> &mut Self {
        self.raw(k, "null")
    }
    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_array<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    let parts: Vec<String> = items.iter().map(f).collect();
    format!("[{}]", parts.join(","))
}

/// Appends one line to `MFISIM_RECORD` with a single `write` on an `O_APPEND` descriptor.
fn append_record(line: &str) {
    let Some(path) = std::env::var_os("MFISIM_RECORD") else {
        return;
    };
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(&buf);
    }
}

/// `MFISIM_VERBOSE`: unset or `0` quiet, `1` one line per call, `2` (or `explain`) the call
/// told step by step, driver then firmware, as the demo shows it.
fn verbosity() -> u8 {
    static V: OnceLock<u8> = OnceLock::new();
    *V.get_or_init(|| match std::env::var("MFISIM_VERBOSE").as_deref() {
        Err(_) | Ok("" | "0") => 0,
        Ok("2" | "explain") => 2,
        Ok(_) => 1,
    })
}

/// `MFISIM_DELAY_US`: how long the driver waits for the firmware in each
/// `MEGASAS_IOC_FIRMWARE` call (default 0). The wait resumes after a signal handler ran, as
/// the driver's own wait does, so the call always takes at least this long.
fn delay_us() -> u64 {
    static D: OnceLock<u64> = OnceLock::new();
    *D.get_or_init(|| {
        std::env::var("MFISIM_DELAY_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// Waits `MFISIM_DELAY_US` inside the call: a thread blocked in the "kernel", where a signal
/// can interrupt it (std's sleep restarts after `EINTR` with the time that remains).
fn firmware_delay() {
    let us = delay_us();
    if us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

fn verbose() -> bool {
    verbosity() > 0
}

static SEQ: AtomicU32 = AtomicU32::new(1);

/// The driver's frame slot as the last call left it.
static FRAME: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// A copy of the frame slot (zeros before the first call).
fn last_frame() -> Vec<u8> {
    let kept = FRAME.lock().map(|f| f.clone()).unwrap_or_default();
    if kept.len() == FRAME_SLOT {
        kept
    } else {
        vec![0u8; FRAME_SLOT]
    }
}

/// Keeps the frame slot for the next call (the driver never clears it).
fn keep_frame(frame: Vec<u8>) {
    if let Ok(mut f) = FRAME.lock() {
        *f = frame;
    }
}

// ---- names ---------------------------------------------------------------------------------

fn cmd_name(cmd: u8) -> String {
    const NAMES: [&str; 11] = [
        "INIT",
        "LD_READ",
        "LD_WRITE",
        "LD_SCSI_IO",
        "PD_SCSI_IO",
        "DCMD",
        "ABORT",
        "SMP",
        "STP",
        "NVME",
        "TOOLBOX",
    ];
    NAMES
        .get(usize::from(cmd))
        .map_or_else(|| format!("{cmd:#04x}"), |s| (*s).to_owned())
}

fn status_name(status: u8) -> &'static str {
    match status {
        0x00 => "OK",
        0x01 => "INVALID_CMD",
        0x02 => "INVALID_DCMD",
        0x03 => "INVALID_PARAMETER",
        0x05 => "ABORT_NOT_POSSIBLE",
        0x0C => "DEVICE_NOT_FOUND",
        0x2D => "SCSI_DONE_WITH_ERROR",
        0x2E => "SCSI_IO_FAILED",
        0xFF => "INVALID_STATUS",
        _ => "OTHER",
    }
}

fn flags_name(flags: u16) -> String {
    let mut parts = Vec::new();
    for (bit, name) in [
        (MFI_FRAME_IEEE, "IEEE"),
        (MFI_FRAME_SGL64, "SGL64"),
        (MFI_FRAME_SENSE64, "SENSE64"),
        (0x0001, "DONT_POST_IN_REPLY_QUEUE"),
    ] {
        if flags & bit != 0 {
            parts.push(name.to_owned());
        }
    }
    match flags & 0x0018 {
        0x0008 => parts.push("DIR_WRITE".into()),
        0x0010 => parts.push("DIR_READ".into()),
        0x0018 => parts.push("DIR_BOTH".into()),
        _ => {}
    }
    let unknown = flags & !0x003F;
    if unknown != 0 {
        parts.push(format!("{unknown:#06x}"));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

// ---- the driver ----------------------------------------------------------------------------

struct DmaBuf {
    index: usize,
    addr: u64,
    data: Vec<u8>,
}

struct OutOfFrame {
    what: String,
    offset: u64,
    bytes: u64,
}

struct Wild {
    what: &'static str,
    addr: u64,
    len: u64,
    dir: &'static str,
}

#[derive(Clone, Copy)]
struct Sge {
    addr: u64,
    len: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SglFormat {
    Skinny,
    Sge64,
    Sge32,
}

impl SglFormat {
    fn from_flags(flags: u16) -> SglFormat {
        if flags & MFI_FRAME_IEEE != 0 {
            SglFormat::Skinny
        } else if flags & MFI_FRAME_SGL64 != 0 {
            SglFormat::Sge64
        } else {
            SglFormat::Sge32
        }
    }
    fn size(self) -> usize {
        match self {
            SglFormat::Skinny => 16,
            SglFormat::Sge64 => 12,
            SglFormat::Sge32 => 8,
        }
    }
    fn name(self) -> &'static str {
        match self {
            SglFormat::Skinny => "skinny",
            SglFormat::Sge64 => "sge64",
            SglFormat::Sge32 => "sge32",
        }
    }
}

/// Where the firmware finds a frame type's scatter/gather list.
fn firmware_sgl_offset(cmd: u8) -> Option<usize> {
    match cmd {
        MFI_CMD_DCMD | MFI_CMD_LD_READ | MFI_CMD_LD_WRITE => Some(0x28),
        MFI_CMD_LD_SCSI_IO | MFI_CMD_PD_SCSI_IO | MFI_CMD_STP => Some(0x30),
        MFI_CMD_SMP => Some(0x20),
        _ => None,
    }
}

/// One simulated `MEGASAS_IOC_FIRMWARE` call: driver, firmware, completion, record.
struct Call {
    seq: u32,
    rec: Json,
    dma: Vec<DmaBuf>,
    sense: Option<DmaBuf>,
    out_of_frame: Vec<OutOfFrame>,
    wild: Vec<Wild>,
    notes: Vec<String>,
    /// The call told step by step (MFISIM_VERBOSE=2).
    explain: Vec<String>,
    next_addr: u64,
    /// The kernel died completing the call: why.
    oops: Option<String>,
}

impl Call {
    fn alloc(&mut self, len: u64) -> Option<u64> {
        if len > DMA_LIMIT {
            return None;
        }
        let addr = self.next_addr;
        self.next_addr = (addr + len.max(1)).div_ceil(PAGE) * PAGE;
        Some(addr)
    }

    /// The firmware writes `data` through `sges` in order; returns how many bytes landed.
    fn dma_to_host(&mut self, what: &'static str, sges: &[Sge], data: &[u8]) -> usize {
        let mut done = 0usize;
        for sge in sges {
            if done >= data.len() {
                break;
            }
            if sge.len == 0 {
                continue;
            }
            let n = (data.len() - done).min(usize::try_from(sge.len).unwrap_or(usize::MAX));
            let chunk = &data[done..done + n];
            if self.write_dma(sge.addr, chunk) {
                self.explain.push(format!(
                    "firmware: DMA {n} bytes of {what} to {:#x}: a buffer the driver allocated",
                    sge.addr
                ));
            } else {
                self.explain.push(format!(
                    "firmware: DMA {n} bytes of {what} to {:#x}: {} (on a real host: memory \
                     corruption)",
                    sge.addr,
                    self.miss(sge.addr)
                ));
                self.wild.push(Wild {
                    what,
                    addr: sge.addr,
                    len: n as u64,
                    dir: "write",
                });
            }
            done += n;
        }
        done
    }

    /// The firmware reads `len` bytes through `sges` (host to controller).
    fn dma_from_host(&mut self, what: &'static str, sges: &[Sge], len: u64) {
        let mut left = len;
        for sge in sges {
            if left == 0 {
                break;
            }
            if sge.len == 0 {
                continue;
            }
            let n = left.min(sge.len);
            if self.find_dma(sge.addr, n).is_some() {
                self.explain.push(format!(
                    "firmware: DMA {n} bytes of {what} from {:#x}: a buffer the driver allocated",
                    sge.addr
                ));
            } else {
                self.explain.push(format!(
                    "firmware: DMA {n} bytes of {what} from {:#x}: {} (on a real host: reads \
                     someone else's memory)",
                    sge.addr,
                    self.miss(sge.addr)
                ));
                self.wild.push(Wild {
                    what,
                    addr: sge.addr,
                    len: n,
                    dir: "read",
                });
            }
            left -= n;
        }
    }

    /// Why a DMA range is not inside a driver buffer: it overruns one, or misses them all.
    fn miss(&self, addr: u64) -> String {
        let starts_in = self
            .dma
            .iter()
            .chain(self.sense.as_ref())
            .find(|b| addr >= b.addr && addr < b.addr + b.data.len() as u64);
        match starts_in {
            Some(b) => format!(
                "runs past the end of the driver's {}-byte buffer at {:#x}",
                b.data.len(),
                b.addr
            ),
            None => "NOT a buffer the driver allocated".to_owned(),
        }
    }

    fn find_dma(&self, addr: u64, n: u64) -> Option<(bool, usize, usize)> {
        let hit = |b: &DmaBuf| {
            let end = b.addr + b.data.len() as u64;
            (addr >= b.addr && addr.checked_add(n).is_some_and(|e| e <= end))
                .then(|| (addr - b.addr) as usize)
        };
        if let Some((i, off)) = self
            .dma
            .iter()
            .enumerate()
            .find_map(|(i, b)| hit(b).map(|o| (i, o)))
        {
            return Some((false, i, off));
        }
        self.sense.as_ref().and_then(hit).map(|off| (true, 0, off))
    }

    /// `n` bytes of a driver buffer at `addr`, if that range is inside one.
    fn read_dma(&self, addr: u64, n: u64) -> Option<Vec<u8>> {
        let n = usize::try_from(n).ok()?;
        match self.find_dma(addr, n as u64)? {
            (false, i, off) => Some(self.dma[i].data[off..off + n].to_vec()),
            (true, _, off) => self.sense.as_ref().map(|s| s.data[off..off + n].to_vec()),
        }
    }

    fn write_dma(&mut self, addr: u64, data: &[u8]) -> bool {
        match self.find_dma(addr, data.len() as u64) {
            Some((false, i, off)) => {
                self.dma[i].data[off..off + data.len()].copy_from_slice(data);
                true
            }
            Some((true, _, off)) => {
                if let Some(s) = self.sense.as_mut() {
                    s.data[off..off + data.len()].copy_from_slice(data);
                }
                true
            }
            None => false,
        }
    }
}

fn firmware_ioctl(request: c_ulong, user: usize) -> (c_int, c_int) {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut call = Call {
        seq,
        rec: Json::new(),
        dma: Vec::new(),
        sense: None,
        out_of_frame: Vec::new(),
        wild: Vec::new(),
        notes: Vec::new(),
        explain: Vec::new(),
        next_addr: DMA_BASE,
        oops: None,
    };
    call.rec
        .str("sim", "legacy_sim")
        .num("pid", std::process::id())
        .num("seq", seq)
        .hex("request", u64::from(request_code(request)))
        .str("request_name", "MEGASAS_IOC_FIRMWARE")
        .str("abi", ABI_NAME);
    // On x86_64 a request code has 64 bits, of which the kernel reads 32.
    #[allow(clippy::useless_conversion)]
    let full = u64::from(request);
    if full >> 32 != 0 {
        call.rec.hex("request_full", full);
    }
    let (ret, errno, summary) = run_firmware(&mut call, user as u64);
    let Call {
        mut rec,
        out_of_frame,
        wild,
        notes,
        mut explain,
        oops,
        ..
    } = call;
    explain.push(match (&oops, ret) {
        (Some(why), _) => format!("completion: {why}; the ioctl never returns"),
        (None, 0) => "completion: buffers copied back, cmd_status written to the caller's \
                      packet; ioctl returns 0"
            .to_owned(),
        (None, _) => format!("ioctl returns -1, errno {errno}"),
    });
    rec.raw(
        "out_of_frame_writes",
        &json_array(&out_of_frame, |w| {
            let mut j = Json::new();
            j.str("what", &w.what)
                .num("offset", w.offset)
                .num("bytes", w.bytes);
            j.finish()
        }),
    )
    .raw(
        "wild_dma",
        &json_array(&wild, |w| {
            let mut j = Json::new();
            j.str("what", w.what)
                .hex("addr", w.addr)
                .num("len", w.len)
                .str("dir", w.dir);
            j.finish()
        }),
    )
    .raw("notes", &json_array(&notes, |n| quote(n)));
    match &oops {
        Some(why) => rec.str("oops", why).null("ret").null("errno"),
        None => rec.num("ret", ret).num("errno", errno),
    };
    append_record(&rec.finish());
    let crash = std::env::var_os("MFISIM_CRASH").is_some_and(|v| !v.is_empty() && v != "0");
    if crash || oops.is_some() {
        // The seed's ending, or a kernel oops: the host dies inside the driver. SIGKILL leaves
        // no chance to flush anything, so whatever the layers above wrote before the call is
        // all there is.
        match &oops {
            Some(why) => {
                eprintln!("legacy_sim[{seq}]: OOPS: {why}: the host dies inside the driver")
            }
            None => eprintln!("legacy_sim[{seq}]: MFISIM_CRASH: the host dies inside the driver"),
        }
        // SAFETY: signalling our own process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    if verbosity() >= 2 {
        let mut text = format!("legacy_sim[{seq}]: MEGASAS_IOC_FIRMWARE\n");
        for line in &explain {
            let _ = writeln!(text, "  {line}");
        }
        eprint!("{text}");
    } else if verbose() {
        let mut line = format!("legacy_sim[{seq}]: {summary}");
        for w in &out_of_frame {
            let _ = write!(
                line,
                "; OUT-OF-FRAME WRITE: {} at frame+{:#x} ({} bytes past a {FRAME_SLOT}-byte slot)",
                w.what, w.offset, w.bytes
            );
        }
        for w in &wild {
            let _ = write!(
                line,
                "; WILD DMA: firmware {} {} bytes {} {:#x} ({}), not a buffer the driver allocated",
                if w.dir == "write" { "writes" } else { "reads" },
                w.len,
                if w.dir == "write" { "to" } else { "from" },
                w.addr,
                w.what
            );
        }
        let _ = write!(line, " -> ret={ret}");
        if ret < 0 {
            let _ = write!(line, " errno={errno}");
        }
        eprintln!("{line}");
    }
    (ret, errno)
}

/// Driver + firmware + completion. Returns (ret, errno, one-line summary for stderr).
fn run_firmware(call: &mut Call, user: u64) -> (c_int, c_int, String) {
    // 1. memdup_user: the whole packet, once.
    let mut pkt = vec![0u8; PACKET_SIZE];
    if copy_from_user(user, &mut pkt).is_err() {
        call.notes
            .push("copy_from_user of the packet failed".into());
        return (-1, libc::EFAULT, "packet unreadable: EFAULT".into());
    }
    let host_no = u16::from_ne_bytes([pkt[0], pkt[1]]);
    let sgl_off = ne32(&pkt, 0x04);
    let sge_count = ne32(&pkt, 0x08);
    let sense_off = ne32(&pkt, 0x0C);
    let sense_len = ne32(&pkt, 0x10);
    let pframe = pkt[FRAME_OFFSET..FRAME_OFFSET + 128].to_vec();
    let iov = |i: usize| {
        let off = SGL_OFFSET + i * IOVEC_SIZE;
        (ne_word(&pkt, off), ne_word(&pkt, off + IOVEC_SIZE / 2))
    };
    let used = (sge_count as usize).min(MAX_IOCTL_SGE);
    let cmd = pframe[0];
    let flags = le16(&pframe, 0x10);
    call.rec
        .num("host_no", host_no)
        .num("sgl_off", sgl_off)
        .num("sge_count", sge_count)
        .num("sense_off", sense_off)
        .num("sense_len", sense_len)
        .raw(
            "iov_lens",
            &json_array(&(0..used).collect::<Vec<_>>(), |&i| iov(i).1.to_string()),
        )
        .num("cmd", cmd)
        .str("cmd_name", &cmd_name(cmd))
        .num("target_id", pframe[4])
        .str("flags", &format!("{flags:#06x}"))
        .str("flags_name", &flags_name(flags))
        .num("hdr_sge_count", pframe[7])
        .num("hdr_sense_len", pframe[1])
        .num("data_xferlen", le32(&pframe, 0x14));
    if cmd == MFI_CMD_DCMD {
        call.rec
            .str("opcode", &format!("{:#010x}", le32(&pframe, 0x18)));
    }
    call.explain.push(format!(
        "driver: {} frame for target {}, flags {:#06x} ({}): kept as the caller set them \
         (a pre-3.3 driver never looks at them)",
        cmd_name(cmd),
        pframe[4],
        flags,
        flags_name(flags)
    ));
    let summary_head = format!(
        "{} flags {:#06x} ({}) sgl_off {:#x} sge_count {}",
        cmd_name(cmd),
        flags,
        flags_name(flags),
        sgl_off,
        sge_count
    );

    // The instance lookup: one simulated controller.
    if host_no != 0 {
        call.notes
            .push(format!("no controller with host_no {host_no}"));
        return (-1, libc::ENODEV, format!("{summary_head}: ENODEV"));
    }

    // 2. The driver's own frame, a copy of the caller's 128 bytes over what the slot kept.
    let mut frame = last_frame();
    frame[..128].copy_from_slice(&pframe);
    put(&mut frame, 0x08, &call.seq.to_le_bytes()); // context
    put(&mut frame, 0x0C, &[0; 4]); // pad_0
                                    // (legacy: the flags are left exactly as the caller set them)

    // 3. DMA buffers and the 32-bit SGL at sgl_off.
    if sge_count as usize > MAX_IOCTL_SGE {
        call.notes.push(format!(
            "sge_count {sge_count}: the driver read {} iovecs past sgl[16]",
            sge_count as usize - MAX_IOCTL_SGE
        ));
    }
    call.rec.num(
        "sgl_overrun",
        (sge_count as usize).saturating_sub(MAX_IOCTL_SGE),
    );
    let mut driver_sgl = Vec::new();
    for i in 0..used {
        let (base, len) = iov(i);
        if len == 0 {
            continue;
        }
        let Some(addr) = call.alloc(len) else {
            call.notes
                .push(format!("dma_alloc_coherent({len}) for sgl[{i}] failed"));
            record_dma(call, &driver_sgl);
            return (-1, libc::ENOMEM, format!("{summary_head}: ENOMEM"));
        };
        // kern_sge32[i] = { (u32) buf_handle, (u32) iov_len } at frame + sgl_off + i * 8,
        // written before the caller's data is copied in (as the driver orders it): an
        // unreadable iov_base is EFAULT only after the entry has landed, wherever it landed.
        let off = u64::from(sgl_off) + i as u64 * 8;
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&(addr as u32).to_le_bytes());
        entry[4..].copy_from_slice(&(len as u32).to_le_bytes());
        if off + 8 <= FRAME_SLOT as u64 {
            put(&mut frame, off as usize, &entry);
            call.explain.push(format!(
                "driver: sgl[{i}]: DMA buffer at {addr:#x}, {len} bytes; 32-bit entry \
                 {{{addr:#x}, {len}}} written at frame+{off:#x}"
            ));
        } else {
            call.explain.push(format!(
                "driver: sgl[{i}]: DMA buffer at {addr:#x}, {len} bytes; its entry belongs at \
                 frame+{off:#x}, past the {FRAME_SLOT}-byte frame: a kernel heap overwrite"
            ));
            call.out_of_frame.push(OutOfFrame {
                what: format!("sge32 sgl[{i}]"),
                offset: off,
                bytes: 8,
            });
        }
        driver_sgl.push((off, addr, len));
        let mut data = vec![0u8; len as usize];
        if copy_from_user(base, &mut data).is_err() {
            call.notes
                .push(format!("copy_from_user of sgl[{i}] ({len} bytes) failed"));
            record_dma(call, &driver_sgl);
            return (-1, libc::EFAULT, format!("{summary_head}: EFAULT"));
        }
        call.dma.push(DmaBuf {
            index: i,
            addr,
            data,
        });
    }

    // 4. The sense buffer, its 4-byte address at sense_off.
    if sense_len != 0 {
        let Some(addr) = call.alloc(u64::from(sense_len)) else {
            call.notes
                .push(format!("dma_alloc_coherent({sense_len}) for sense failed"));
            record_dma(call, &driver_sgl);
            return (-1, libc::ENOMEM, format!("{summary_head}: ENOMEM"));
        };
        call.sense = Some(DmaBuf {
            index: usize::MAX,
            addr,
            data: vec![0u8; sense_len as usize],
        });
        let off = u64::from(sense_off);
        if off + 4 <= FRAME_SLOT as u64 {
            put(&mut frame, off as usize, &(addr as u32).to_le_bytes());
            call.explain.push(format!(
                "driver: sense buffer at {addr:#x}, {sense_len} bytes; its 4-byte address \
                 written at frame+{off:#x}"
            ));
        } else {
            call.explain.push(format!(
                "driver: sense buffer at {addr:#x}; its address belongs at frame+{off:#x}, past \
                 the {FRAME_SLOT}-byte frame: a kernel heap overwrite"
            ));
            call.out_of_frame.push(OutOfFrame {
                what: "sense address".into(),
                offset: off,
                bytes: 4,
            });
        }
        call.rec.hex("sense_addr", addr);
    } else {
        call.rec.null("sense_addr");
    }
    record_dma(call, &driver_sgl);

    // 5. The firmware, which believes the frame; the driver waits for it (MFISIM_DELAY_US).
    let (status, fw_summary) = firmware(call, &mut frame, sgl_off);
    let cmd = frame[0];
    keep_frame(frame);
    firmware_delay();
    call.rec
        .num("cmd_status", status)
        .str("cmd_status_name", status_name(status));

    // The interrupt: megasas_complete_cmd takes an LD read/write frame for the block layer's,
    // and completes it through cmd->scmd, which is NULL for a frame from the ioctl (only the
    // LD/PD SCSI I/O case looks at sync_cmd first).
    if matches!(cmd, MFI_CMD_LD_READ | MFI_CMD_LD_WRITE) {
        let why = format!(
            "megasas_complete_cmd completes the {} frame through its NULL scmd: a NULL pointer \
             dereference in interrupt, fatal",
            cmd_name(cmd)
        );
        call.oops = Some(why.clone());
        return (
            -1,
            libc::EIO,
            format!("{summary_head}; {fw_summary}; OOPS: {why}"),
        );
    }

    // 6. Completion: buffers back to the caller, sense to the caller's pointer, one status byte.
    let bufs: Vec<(usize, Vec<u8>)> = call.dma.iter().map(|b| (b.index, b.data.clone())).collect();
    for (i, data) in bufs {
        if copy_to_user(iov(i).0, &data).is_err() {
            call.notes.push(format!("copy_to_user of sgl[{i}] failed"));
            return (
                -1,
                libc::EFAULT,
                format!("{summary_head}; {fw_summary}: EFAULT on copy-back"),
            );
        }
    }
    if let Some(sense) = call.sense.as_ref().map(|s| s.data.clone()) {
        // uptr = *(unsigned long *)(ioc->frame.raw + sense_off), in the driver's packet copy.
        let at = FRAME_OFFSET as u64 + u64::from(sense_off);
        if at + (IOVEC_SIZE / 2) as u64 <= PACKET_SIZE as u64 {
            let uptr = ne_word(&pkt, at as usize);
            if copy_to_user(uptr, &sense).is_err() {
                call.notes
                    .push(format!("copy_to_user of sense to {uptr:#x} failed"));
                return (
                    -1,
                    libc::EFAULT,
                    format!("{summary_head}; {fw_summary}: EFAULT on sense copy-back"),
                );
            }
        } else {
            call.notes.push(format!(
                "sense user pointer read at packet+{at:#x}, past the packet: sense not copied"
            ));
        }
    }
    if copy_to_user(user + FRAME_OFFSET as u64 + 2, &[status]).is_err() {
        return (
            -1,
            libc::EFAULT,
            format!("{summary_head}: EFAULT on status"),
        );
    }
    (0, 0, format!("{summary_head}; {fw_summary}"))
}

fn record_dma(call: &mut Call, driver_sgl: &[(u64, u64, u64)]) {
    let bufs = json_array(&call.dma, |b| {
        let mut j = Json::new();
        j.num("index", b.index)
            .hex("addr", b.addr)
            .num("len", b.data.len());
        j.finish()
    });
    let sgl = json_array(driver_sgl, |&(off, addr, len)| {
        let mut j = Json::new();
        j.num("offset", off).hex("addr", addr).num("len", len);
        j.finish()
    });
    call.rec.raw("dma_buffers", &bufs).raw("driver_sge32", &sgl);
}

/// The firmware: parses the frame the way its header says and executes the command.
fn firmware(call: &mut Call, frame: &mut [u8], sgl_off: u32) -> (u8, String) {
    let cmd = frame[0];
    let flags = le16(frame, 0x10);
    let hdr_sge_count = usize::from(frame[7]);
    let data_xferlen = le32(frame, 0x14);
    let format = SglFormat::from_flags(flags);
    let fw_off = firmware_sgl_offset(cmd).unwrap_or(sgl_off as usize);
    let mut sges = Vec::new();
    let mut sgl_outside = false;
    for j in 0..hdr_sge_count {
        let off = fw_off as u64 + (j * format.size()) as u64;
        if off + format.size() as u64 > FRAME_SLOT as u64 {
            sgl_outside = true;
            break;
        }
        let off = off as usize;
        let sge = match format {
            SglFormat::Skinny => Sge {
                addr: le64(frame, off),
                len: u64::from(le32(frame, off + 8)),
            },
            SglFormat::Sge64 => Sge {
                addr: le64(frame, off),
                len: u64::from(le32(frame, off + 8)),
            },
            SglFormat::Sge32 => Sge {
                addr: u64::from(le32(frame, off)),
                len: u64::from(le32(frame, off + 4)),
            },
        };
        sges.push(sge);
    }
    call.explain.push(format!(
        "firmware: flags {flags:#06x} say {}: it reads {hdr_sge_count} entries at frame+{fw_off:#x}",
        match format {
            SglFormat::Skinny => "IEEE, 16-byte skinny entries {u64 addr, u32 len, u32 flag}",
            SglFormat::Sge64 => "SGL64, 12-byte entries {u64 addr, u32 len}",
            SglFormat::Sge32 => "32-bit, 8-byte entries {u32 addr, u32 len}",
        }
    ));
    for (j, sge) in sges.iter().enumerate() {
        call.explain.push(format!(
            "firmware: entry {j}: address {:#x}, length {}",
            sge.addr, sge.len
        ));
    }
    if sgl_outside {
        call.notes.push(format!(
            "firmware SGL at frame+{fw_off:#x} runs past the {FRAME_SLOT}-byte frame"
        ));
    }
    call.rec
        .str("firmware_flags", &format!("{flags:#06x}"))
        .str("firmware_sgl_format", format.name())
        .num("firmware_sgl_off", fw_off)
        .raw(
            "firmware_sges",
            &json_array(&sges, |s| {
                let mut j = Json::new();
                j.hex("addr", s.addr).num("len", s.len);
                j.finish()
            }),
        )
        .raw(
            "firmware_addrs",
            &json_array(&sges, |s| quote(&format!("{:#x}", s.addr))),
        );
    let addrs: Vec<String> = sges
        .iter()
        .map(|s| format!("{:#x}/{}", s.addr, s.len))
        .collect();
    let mut summary = format!(
        "firmware reads {} {} SGL at frame+{:#x}: [{}]",
        hdr_sge_count,
        format.name(),
        fw_off,
        addrs.join(", ")
    );
    let sgl_bytes: u64 = sges.iter().map(|s| s.len).sum();
    let dir_write = flags & 0x0008 != 0;

    let status = match cmd {
        MFI_CMD_DCMD => {
            let opcode = le32(frame, 0x18);
            let mbox: [u8; 12] = frame[0x1C..0x28].try_into().unwrap_or([0; 12]);
            let (status, data) = dcmd(opcode, &mbox, sgl_bytes, &mut summary);
            if let Some(data) = data {
                if dir_write {
                    call.dma_from_host("DCMD data", &sges, u64::from(data_xferlen));
                } else {
                    call.dma_to_host("DCMD data", &sges, &data);
                }
            }
            status
        }
        MFI_CMD_LD_SCSI_IO | MFI_CMD_PD_SCSI_IO => {
            let sense_addr = if flags & MFI_FRAME_SENSE64 != 0 {
                le64(frame, 0x18)
            } else {
                u64::from(le32(frame, 0x18))
            };
            call.rec.hex("firmware_sense_addr", sense_addr);
            let target = frame[4];
            let exists = if cmd == MFI_CMD_PD_SCSI_IO {
                PD_IDS.contains(&u16::from(target))
            } else {
                LD_IDS.contains(&target)
            };
            if !exists {
                MFI_STAT_DEVICE_NOT_FOUND
            } else {
                let cdb_len = usize::from(frame[6]).min(16);
                let cdb = frame[0x20..0x20 + cdb_len].to_vec();
                match scsi(target, &cdb) {
                    Ok(data) => {
                        let n = data.len().min(data_xferlen as usize);
                        call.dma_to_host("SCSI data", &sges, &data[..n]);
                        MFI_STAT_OK
                    }
                    Err((key, asc, ascq)) => {
                        frame[3] = 0x02; // CHECK CONDITION
                                         // The firmware writes the whole sense buffer the frame declares.
                        let hdr_sense_len = usize::from(frame[1]);
                        if hdr_sense_len > 0 {
                            let mut sense = vec![0u8; hdr_sense_len];
                            let fixed = [
                                0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0,
                            ];
                            let n = fixed.len().min(hdr_sense_len);
                            sense[..n].copy_from_slice(&fixed[..n]);
                            call.dma_to_host(
                                "sense data",
                                &[Sge {
                                    addr: sense_addr,
                                    len: hdr_sense_len as u64,
                                }],
                                &sense,
                            );
                        }
                        let _ = write!(summary, "; CHECK CONDITION key {key:#x} asc {asc:#x}");
                        MFI_STAT_SCSI_DONE_WITH_ERROR
                    }
                }
            }
        }
        MFI_CMD_STP => {
            // Entry 0 takes the 20-byte response FIS, entry 1 the data.
            let fis_cmd = frame[0x1A];
            let response = d2h_fis();
            let first: Vec<Sge> = sges.iter().take(1).copied().collect();
            let rest: Vec<Sge> = sges.iter().skip(1).copied().collect();
            call.dma_to_host("STP response FIS", &first, &response);
            if fis_cmd == 0xEC {
                let n = 512usize.min(data_xferlen as usize);
                call.dma_to_host("STP IDENTIFY data", &rest, &identify(frame[4])[..n]);
            }
            // Any other command completes with the response FIS alone.
            MFI_STAT_OK
        }
        MFI_CMD_LD_READ | MFI_CMD_LD_WRITE => {
            let sense_addr = u64::from(le32(frame, 0x18));
            call.rec.hex("firmware_sense_addr", sense_addr);
            if !LD_IDS.contains(&frame[4]) {
                MFI_STAT_DEVICE_NOT_FOUND
            } else if cmd == MFI_CMD_LD_READ {
                let data = vec![0u8; (data_xferlen as usize).min(1 << 20)];
                call.dma_to_host("LD read data", &sges, &data);
                MFI_STAT_OK
            } else {
                call.dma_from_host("LD write data", &sges, u64::from(data_xferlen));
                MFI_STAT_OK
            }
        }
        MFI_CMD_SMP => {
            let first: Vec<Sge> = sges.iter().take(1).copied().collect();
            let rest: Vec<Sge> = sges.iter().skip(1).copied().collect();
            call.dma_from_host("SMP request", &rest, rest.iter().map(|s| s.len).sum());
            // What the expander would act on: the request's first bytes (frame type, function).
            let head = rest
                .first()
                .and_then(|s| call.read_dma(s.addr, s.len.min(4)));
            match &head {
                Some(head) => {
                    let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
                    call.rec.str("smp_request", &hex.join(" "));
                }
                None => {
                    call.rec.null("smp_request");
                }
            }
            call.dma_to_host("SMP response", &first, &[0x41, 0x10, 0, 0]);
            // MFISIM_SMP_WRITE_REQUEST=1: the firmware also writes into the request buffer
            // ("SIM!" at bytes 4..8), so that what the driver copies back from every buffer
            // can be seen by the caller.
            if std::env::var_os("MFISIM_SMP_WRITE_REQUEST").is_some_and(|v| v == "1") {
                if let Some(s) = rest.first().filter(|s| s.len >= 8) {
                    call.write_dma(s.addr + 4, b"SIM!");
                }
            }
            MFI_STAT_OK
        }
        MFI_CMD_INIT => {
            let pa = le64(frame, 0x18);
            call.notes.push(format!(
                "INIT: the firmware re-initialises its queues from physical address {pa:#x}"
            ));
            call.wild.push(Wild {
                what: "INIT queue info",
                addr: pa,
                len: 24,
                dir: "read",
            });
            MFI_STAT_OK
        }
        MFI_CMD_ABORT => {
            let pa = le64(frame, 0x20);
            call.notes
                .push(format!("ABORT of the frame at physical address {pa:#x}"));
            MFI_STAT_ABORT_NOT_POSSIBLE
        }
        _ => MFI_STAT_INVALID_CMD,
    };
    if u64::from(data_xferlen) > sgl_bytes && !matches!(cmd, MFI_CMD_INIT | MFI_CMD_ABORT) {
        call.notes.push(format!(
            "data_xferlen {data_xferlen} exceeds the {sgl_bytes} bytes the firmware's SGL describes"
        ));
    }
    let _ = write!(
        summary,
        "; cmd_status {status:#04x} ({})",
        status_name(status)
    );
    call.explain.push(format!(
        "firmware: cmd_status {status:#04x} ({})",
        status_name(status)
    ));
    (status, summary)
}

fn dcmd(
    opcode: u32,
    mbox: &[u8; 12],
    sgl_bytes: u64,
    summary: &mut String,
) -> (u8, Option<Vec<u8>>) {
    let _ = write!(summary, "; DCMD {opcode:#010x}");
    let need = |n: usize| sgl_bytes >= n as u64;
    match opcode {
        // MR_DCMD_CTRL_GET_INFO: struct megasas_ctrl_info, 0x800 bytes.
        0x0101_0000 => {
            if !need(0x800) {
                return (MFI_STAT_INVALID_PARAMETER, None);
            }
            (MFI_STAT_OK, Some(ctrl_info()))
        }
        // MR_DCMD_CTRL_EVENT_GET_INFO: struct megasas_evt_log_info.
        0x0104_0100 => {
            let mut d = vec![0u8; 20];
            put(&mut d, 0, &4711u32.to_le_bytes()); // newest_seq_num
            put(&mut d, 4, &1u32.to_le_bytes()); // oldest_seq_num
            put(&mut d, 8, &0u32.to_le_bytes()); // clear_seq_num
            put(&mut d, 12, &4690u32.to_le_bytes()); // shutdown_seq_num
            put(&mut d, 16, &4691u32.to_le_bytes()); // boot_seq_num
            (MFI_STAT_OK, Some(d))
        }
        // MR_DCMD_CTRL_EVENT_GET / _WAIT: one empty event list.
        0x0104_0300 | 0x0104_0500 => (MFI_STAT_OK, Some(vec![0u8; 8])),
        // MR_DCMD_CTRL_SHUTDOWN, MR_DCMD_CTRL_CACHE_FLUSH: nothing to transfer.
        0x0105_0000 | 0x0110_1000 => (MFI_STAT_OK, None),
        // MR_DCMD_PD_GET_LIST / MR_DCMD_PD_LIST_QUERY: struct MR_PD_LIST.
        0x0201_0000 | 0x0201_0100 => {
            if !need(8 + 24) {
                return (MFI_STAT_INVALID_PARAMETER, None);
            }
            let mut d = vec![0u8; 8 + 24 * PD_IDS.len()];
            let size = d.len() as u32;
            put(&mut d, 0, &size.to_le_bytes());
            put(&mut d, 4, &(PD_IDS.len() as u32).to_le_bytes());
            for (i, id) in PD_IDS.iter().enumerate() {
                let o = 8 + 24 * i;
                put(&mut d, o, &id.to_le_bytes()); // deviceId
                put(&mut d, o + 2, &252u16.to_le_bytes()); // enclDeviceId
                d[o + 4] = 0; // enclIndex
                d[o + 5] = i as u8; // slotNumber
                d[o + 6] = 0; // scsiDevType: disk
                d[o + 7] = 1; // connectedPortBitmap
                put(
                    &mut d,
                    o + 8,
                    &(0x5000_c500_0000_0000u64 | u64::from(*id)).to_le_bytes(),
                );
            }
            (MFI_STAT_OK, Some(d))
        }
        // MR_DCMD_PD_GET_INFO: struct MR_PD_INFO (512 bytes) for the device id in mbox[0..2].
        0x0202_0000 => {
            let id = u16::from_le_bytes([mbox[0], mbox[1]]);
            if !PD_IDS.contains(&id) {
                return (MFI_STAT_DEVICE_NOT_FOUND, None);
            }
            let mut d = vec![0u8; 512];
            put(&mut d, 0, &id.to_le_bytes());
            let inq = inquiry_data(id as u8);
            put(&mut d, 4, &inq[..96]);
            put(&mut d, 0xB8, &0x18u16.to_le_bytes()); // fwState: ONLINE
            (MFI_STAT_OK, Some(d))
        }
        // MR_DCMD_LD_GET_LIST: struct MR_LD_LIST.
        0x0301_0000 => {
            let mut d = vec![0u8; 8 + 16 * LD_IDS.len()];
            put(&mut d, 0, &(LD_IDS.len() as u32).to_le_bytes());
            for (i, t) in LD_IDS.iter().enumerate() {
                let o = 8 + 16 * i;
                d[o] = *t; // ref.targetId
                d[o + 4] = 3; // state: optimal
                put(&mut d, o + 8, &(1_953_525_168u64).to_le_bytes()); // size in blocks
            }
            (MFI_STAT_OK, Some(d))
        }
        // MR_DCMD_LD_GET_PROPERTIES.
        0x0303_0000 => {
            let mut d = vec![0u8; 48];
            d[0] = mbox[0];
            put_str(&mut d, 4, "sim-ld0");
            (MFI_STAT_OK, Some(d))
        }
        _ => (MFI_STAT_INVALID_DCMD, None),
    }
}

/// `struct megasas_ctrl_info` (0x800 bytes); offsets from `megaraid_sas.h`.
fn ctrl_info() -> Vec<u8> {
    let mut d = vec![0u8; 0x800];
    put(&mut d, 0x00, &0x1000u16.to_le_bytes()); // pci.vendor_id: LSI
    put(&mut d, 0x02, &0x0079u16.to_le_bytes()); // pci.device_id: SAS2108
    put(&mut d, 0x04, &0x1000u16.to_le_bytes()); // pci.sub_vendor_id
    put(&mut d, 0x06, &0x9261u16.to_le_bytes()); // pci.sub_device_id
    d[0x20] = 0x02; // host_interface: PCIE
    d[0x68] = 0x02; // device_interface: SAS_3G
    d[0x68 + 7] = 8; // device_interface.port_count
    put(&mut d, 0xB4, &1u32.to_le_bytes()); // image_component_count
    put_str(&mut d, 0xB8, "APP"); // image_component[0].name
    put_str(&mut d, 0xC0, "1.80-SIM"); // image_component[0].version
    put_str(&mut d, 0xE0, "Jan 10 2012"); // build_date
    put_str(&mut d, 0xF0, "12:00:00"); // build_time
    d[0x53C] = 32; // max_arms
    d[0x53D] = 8; // max_spans
    d[0x53E] = 128; // max_arrays
    d[0x53F] = 64; // max_lds
    put_str(&mut d, 0x540, "LSI MegaRAID SAS 9260-8i"); // product_name[80]
    put_str(&mut d, 0x590, "SIM0000001"); // serial_no[32]
    put(&mut d, 0x5B0, &0x34u32.to_le_bytes()); // hw_present: NVRAM|MEM|FLASH
    put(&mut d, 0x5B8, &1008u16.to_le_bytes()); // max_concurrent_cmds
    put(&mut d, 0x5BA, &80u16.to_le_bytes()); // max_sge_count
    put(&mut d, 0x5C0, &(LD_IDS.len() as u16).to_le_bytes()); // ld_present_count
    put(&mut d, 0x5C6, &(PD_IDS.len() as u16).to_le_bytes()); // pd_present_count
    put(&mut d, 0x5C8, &(PD_IDS.len() as u16).to_le_bytes()); // pd_disk_present_count
    put(&mut d, 0x5D0, &512u16.to_le_bytes()); // memory_size (MiB)
    put_str(&mut d, 0x640, "12.12.0-0048-SIM"); // package_version[0x60]
    d
}

/// Standard INQUIRY data for a simulated target.
fn inquiry_data(target: u8) -> Vec<u8> {
    let mut d = vec![0u8; 96];
    d[0] = 0x00; // direct access block device
    d[2] = 0x05; // SPC-3
    d[3] = 0x02; // response data format
    d[4] = 91; // additional length
    let (vendor, product, rev) = if target >= 10 {
        ("ATA     ", "SIM SATA SSD 240", "SIM1")
    } else if target >= 8 {
        ("SEAGATE ", "ST600MM0006     ", "0003")
    } else {
        ("LSI     ", "MR9260-8i       ", "2.13")
    };
    put_str(&mut d, 8, vendor);
    put_str(&mut d, 16, product);
    put_str(&mut d, 32, rev);
    d
}

/// A SCSI CDB: data in, or sense (key, asc, ascq).
fn scsi(target: u8, cdb: &[u8]) -> Result<Vec<u8>, (u8, u8, u8)> {
    const ILLEGAL_REQUEST: u8 = 0x05;
    match cdb.first() {
        Some(0x00) => Ok(Vec::new()), // TEST UNIT READY
        Some(0x12) => {
            let evpd = cdb.get(1).is_some_and(|b| b & 1 != 0);
            let page = cdb.get(2).copied().unwrap_or(0);
            let alloc = usize::from(u16::from_be_bytes([
                cdb.get(3).copied().unwrap_or(0),
                cdb.get(4).copied().unwrap_or(0),
            ]));
            // A 6-byte CDB from older tools has the length in byte 4 only.
            let alloc = if alloc == 0 { 96 } else { alloc };
            let mut d = if !evpd {
                inquiry_data(target)
            } else if page == 0x00 {
                vec![0, 0x00, 0, 2, 0x00, 0x80]
            } else if page == 0x80 {
                let mut d = vec![0, 0x80, 0, 10];
                d.extend_from_slice(format!("SIMSN{target:05}").as_bytes());
                d
            } else {
                return Err((ILLEGAL_REQUEST, 0x24, 0x00)); // INVALID FIELD IN CDB
            };
            d.truncate(alloc);
            Ok(d)
        }
        _ => Err((ILLEGAL_REQUEST, 0x20, 0x00)), // INVALID COMMAND OPERATION CODE
    }
}

/// The device-to-host register FIS an ATA command completes with.
fn d2h_fis() -> Vec<u8> {
    let mut f = vec![0u8; 20];
    f[0] = 0x34; // FIS type: register, device to host
    f[2] = 0x50; // status: DRDY|DSC, no error
    f
}

/// ATA IDENTIFY DEVICE data: strings are byte-swapped words, as ATA stores them.
fn identify(target: u8) -> Vec<u8> {
    let mut d = vec![0u8; 512];
    let mut ata_str = |off: usize, len: usize, s: &str| {
        let mut b = vec![b' '; len];
        b[..s.len().min(len)].copy_from_slice(&s.as_bytes()[..s.len().min(len)]);
        for pair in b.chunks_mut(2) {
            pair.swap(0, 1);
        }
        put(&mut d, off, &b);
    };
    ata_str(20, 20, &format!("SIMSSD{target:014}")); // words 10-19: serial
    ata_str(46, 8, "SIM1"); // words 23-26: firmware revision
    ata_str(54, 40, "SIM SATA SSD 240GB"); // words 27-46: model
    put(&mut d, 0, &0x0040u16.to_le_bytes()); // general configuration
    put(&mut d, 120, &468_862_128u32.to_le_bytes()); // words 60-61: user addressable sectors
    d
}

fn aen_ioctl(fd: c_int, request: c_ulong, user: usize) -> (c_int, c_int) {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut rec = Json::new();
    rec.str("sim", "legacy_sim")
        .num("pid", std::process::id())
        .num("seq", seq)
        .hex("request", u64::from(request_code(request)))
        .str("request_name", "MEGASAS_IOC_GET_AEN")
        .str("abi", ABI_NAME);
    let mut aen = [0u8; 12];
    let (ret, errno) = if copy_from_user(user as u64, &mut aen).is_err() {
        (-1, libc::EFAULT)
    } else {
        rec.num("host_no", u16::from_ne_bytes([aen[0], aen[1]]))
            .num("seq_num", ne32(&aen, 4))
            .hex("class_locale_word", u64::from(ne32(&aen, 8)));
        // The driver refuses GET_AEN until the caller registered with F_SETOWN + O_ASYNC
        // (its fasync handler). /dev/null has no fasync handler, so O_ASYNC does not stick on
        // it; the owner F_SETOWN set is the evidence the simulator checks instead.
        // SAFETY: F_GETOWN on the caller's descriptor.
        let owner = unsafe { libc::fcntl(fd, libc::F_GETOWN) };
        if owner <= 0 {
            (-1, libc::EINVAL)
        } else if u16::from_ne_bytes([aen[0], aen[1]]) != 0 {
            (-1, libc::ENODEV)
        } else {
            (0, 0)
        }
    };
    rec.num("ret", ret).num("errno", errno);
    append_record(&rec.finish());
    if verbose() {
        eprintln!("legacy_sim[{seq}]: GET_AEN -> ret={ret} errno={errno}");
    }
    (ret, errno)
}
