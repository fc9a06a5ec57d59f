//! `mfiguard-probe`: proves that `libmfiguard.so` is loaded into a process and intercepts.
//!
//! `mfiguard-run --check` runs it as
//! `LD_PRELOAD=libmfiguard.so MFIGUARD_DEVICE=/dev/null MFIGUARD_MODE=enforce MFIGUARD_LOG=none
//! mfiguard-probe`. The probe opens `/dev/null` (never a controller, whatever the environment
//! says) and issues `MEGASAS_IOC_FIRMWARE` with the native ABI's request code and a packet whose
//! `sge_count` is 17, which the guard's rule `ioc.sge-count` rejects before the kernel sees it:
//!
//! - `EINVAL` (22): the guard took the call: `intercepted: yes (EINVAL from mfiguard)`, exit 0;
//! - `ENOTTY` (25): `/dev/null` itself answered, so the call went past any guard: exit 1;
//! - anything else: exit 1, with what happened.
//!
//! It prints exactly one line on stdout; with `--build` (as `mfiguard-run --check` runs it) a
//! second one, the build of the library loaded into it, which it asks the library for through
//! its exported `mfiguard_version`: `build: mfiguard 0.1.0 (git 1a2b3c4d5e6f)`, or
//! `build: unknown (...)` when no such library is loaded. It must work on a host where nothing
//! but the package is installed, and it must not share code with the library it is testing:
//! its packet and request code are its own, and its verdict rests on the errno's number. Only
//! the name it prints for an unexpected errno comes from the sanitizer's table.

use std::ffi::CStr;
use std::io;
use std::process::ExitCode;

use mfiguard_sanitizer::Errno;

/// `sizeof(struct megasas_iocpacket)` for this process's ABI: 20 bytes of header, two 64-byte
/// MFI frames, then `struct iovec sgl[16]` (16 bytes each on LP64, 8 on ILP32).
const IOC_PACKET_SIZE: usize = 0x14 + 128 + 16 * IOVEC_SIZE;
const IOVEC_SIZE: usize = 2 * std::mem::size_of::<usize>();

/// `_IOWR(type, nr, size)` from `<asm-generic/ioctl.h>`: dir (read|write = 3) in bits 30..32,
/// size in bits 16..30, type in bits 8..16, number in bits 0..8.
const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    (3 << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// `MEGASAS_IOC_FIRMWARE` = `_IOWR('M', 1, struct megasas_iocpacket)`.
const MEGASAS_IOC_FIRMWARE: u32 = iowr(b'M', 1, IOC_PACKET_SIZE);

// The literals are the ones the 6.1 driver answers to (shared/megaraid-ioctl.md, section 2).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(IOC_PACKET_SIZE == 404 && MEGASAS_IOC_FIRMWARE == 0xC194_4D01);
#[cfg(target_pointer_width = "32")]
const _: () = assert!(IOC_PACKET_SIZE == 276 && MEGASAS_IOC_FIRMWARE == 0xC114_4D01);

/// Offsets in `struct megasas_iocpacket` (packed, host-endian).
const IOC_SGL_OFF: usize = 0x04;
const IOC_SGE_COUNT: usize = 0x08;
const IOC_FRAME: usize = 0x14;
/// Offsets in the DCMD frame (little-endian).
const MFI_CMD: usize = 0x00;
const MFI_FLAGS: usize = 0x10;
const MFI_DCMD_OPCODE: usize = 0x18;
const MFI_CMD_DCMD: u8 = 0x05;
const MFI_FRAME_DIR_READ: u16 = 0x0010;
const MR_DCMD_CTRL_GET_INFO: u32 = 0x0101_0000;
/// Where a DCMD frame keeps its scatter/gather list.
const DCMD_SGL_OFF: u32 = 0x28;
/// One more than `MAX_IOCTL_SGE`: only the rule `ioc.sge-count` objects to this packet.
const PROBE_SGE_COUNT: u32 = 17;

/// The packet, aligned like the C struct's iovecs so that nothing but its content is unusual.
#[repr(C, align(8))]
struct IocPacket([u8; IOC_PACKET_SIZE]);

fn probe_packet() -> IocPacket {
    let mut p = IocPacket([0; IOC_PACKET_SIZE]);
    let b = &mut p.0;
    b[IOC_SGL_OFF..IOC_SGL_OFF + 4].copy_from_slice(&DCMD_SGL_OFF.to_ne_bytes());
    b[IOC_SGE_COUNT..IOC_SGE_COUNT + 4].copy_from_slice(&PROBE_SGE_COUNT.to_ne_bytes());
    let frame = &mut b[IOC_FRAME..IOC_FRAME + 128];
    frame[MFI_CMD] = MFI_CMD_DCMD;
    frame[MFI_FLAGS..MFI_FLAGS + 2].copy_from_slice(&MFI_FRAME_DIR_READ.to_le_bytes());
    frame[MFI_DCMD_OPCODE..MFI_DCMD_OPCODE + 4]
        .copy_from_slice(&MR_DCMD_CTRL_GET_INFO.to_le_bytes());
    p
}

/// Whether a `libmfiguard` object is mapped into this process (`/proc/self/maps` shows the
/// path the loader resolved).
fn library_mapped() -> Option<bool> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    Some(maps.lines().any(|l| {
        l.rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with("libmfiguard"))
    }))
}

/// The build string of the `libmfiguard` loaded into this process, if one is.
fn library_build() -> Result<String, &'static str> {
    // SAFETY: the name is NUL-terminated; RTLD_DEFAULT searches the loaded objects.
    let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mfiguard_version".as_ptr()) };
    if sym.is_null() {
        return Err(
            "no mfiguard_version in this process: not a libmfiguard build that names itself",
        );
    }
    // SAFETY: `mfiguard_version` is `extern "C" fn() -> *const c_char` in libmfiguard.so
    // (preload/src/lib.rs); a function pointer has the size of the symbol's address.
    let f: extern "C" fn() -> *const libc::c_char = unsafe { std::mem::transmute(sym) };
    let p = f();
    if p.is_null() {
        return Err("mfiguard_version returned NULL");
    }
    // SAFETY: the library returns a NUL-terminated static string.
    let s = unsafe { CStr::from_ptr(p) };
    Ok(s.to_string_lossy().into_owned())
}

fn main() -> ExitCode {
    let code = probe();
    if std::env::args_os().nth(1).is_some_and(|a| a == "--build") {
        match library_build() {
            Ok(b) => println!("build: {b}"),
            Err(why) => println!("build: unknown ({why})"),
        }
    }
    code
}

fn probe() -> ExitCode {
    let path: &CStr = c"/dev/null";
    let device = std::env::var_os("MFIGUARD_DEVICE");
    let device_hint = match device.as_deref().and_then(|d| d.to_str()) {
        Some("/dev/null") => "",
        Some(_) => "; MFIGUARD_DEVICE is not /dev/null, so the guard ignores this descriptor",
        None => "; MFIGUARD_DEVICE is unset, so the guard ignores this descriptor",
    };

    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        println!("intercepted: unknown (cannot open /dev/null: {e})");
        return ExitCode::FAILURE;
    }

    let mut packet = probe_packet();
    // SAFETY: `fd` is open; the request's size field matches the buffer, which is valid for
    // reads and writes of IOC_PACKET_SIZE bytes for the duration of the call.
    let ret = unsafe {
        libc::ioctl(
            fd,
            MEGASAS_IOC_FIRMWARE as _,
            packet.0.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };

    let loaded = match library_mapped() {
        Some(true) => "libmfiguard is loaded",
        Some(false) => "libmfiguard is not loaded in this process",
        None => "cannot read /proc/self/maps",
    };
    match (ret, errno) {
        (-1, libc::EINVAL) => {
            println!("intercepted: yes (EINVAL from mfiguard)");
            ExitCode::SUCCESS
        }
        (-1, libc::ENOTTY) => {
            println!(
                "intercepted: no (ENOTTY: the call reached /dev/null unguarded; {loaded}{device_hint})"
            );
            ExitCode::FAILURE
        }
        (-1, e) => {
            println!(
                "intercepted: unknown (ioctl failed with {} ({e}), expected EINVAL; {loaded})",
                Errno(e).name()
            );
            ExitCode::FAILURE
        }
        (r, _) => {
            println!("intercepted: unknown (ioctl returned {r}, expected -1/EINVAL; {loaded})");
            ExitCode::FAILURE
        }
    }
}
