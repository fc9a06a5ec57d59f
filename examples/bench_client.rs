//! The benchmark's client: issues one kind of call in a tight loop and prints the nanoseconds
//! per call on stdout. `benches/overhead.rs` runs it with and without `LD_PRELOAD`.
//!
//!     bench_client fionread N          FIONREAD on a pipe (an ioctl the guard must ignore)
//!     bench_client getppid N           getppid(2), the cheapest system call there is
//!     bench_client megaraid N [DEV]    MEGASAS_IOC_FIRMWARE, DCMD CTRL_GET_INFO, on DEV
//!                                      (default /dev/null: the simulator answers it)
//!     bench_client kernel N [DEV]      the same request, answered by the kernel itself: on
//!                                      /dev/null (default) that is ENOTTY, at once, so with
//!                                      MFIGUARD_DEVICE=/dev/null what is left is the guard's
//!                                      own path (device check, snapshot, decision, the call)
//!     bench_client ab KIND N LIB       KIND (megaraid or kernel) in one process, alternating
//!                                      batches: through the process's `ioctl` (the guard, first
//!                                      in LD_PRELOAD) and straight into LIB's `ioctl`, bypassing
//!                                      it (LIB: the simulator's .so, or libc.so.6); prints
//!                                      "WITHOUT WITH", ns per call each
//!     bench_client fstat N             the system calls the guard adds to a MegaRAID call,
//!     bench_client vm-read N           alone: fstat of the descriptor, the packet's
//!     bench_client vm-write N          process_vm_readv (404 bytes on x86_64), the status
//!                                      byte's process_vm_writev (1 byte)
#![allow(clippy::print_stdout)] // the measurement is the output

use std::ffi::{c_int, c_ulong, c_void, CString};
use std::time::Instant;

use mfiguard_sanitizer::abi::mfi::MR_DCMD_CTRL_GET_INFO;
use mfiguard_sanitizer::builder::samples;
use mfiguard_sanitizer::Abi;

fn usage() -> ! {
    eprintln!(
        "usage: bench_client fionread|getppid|megaraid|kernel|fstat|vm-read|vm-write N [DEVICE]"
    );
    eprintln!("       bench_client ab megaraid|kernel N LIBRARY");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = args.first().map(String::as_str).unwrap_or_else(|| usage());
    if kind == "ab" {
        let answer = match args.get(1).map(String::as_str) {
            Some("megaraid") => Answer::Success,
            Some("kernel") => Answer::NotTty,
            _ => usage(),
        };
        let n: u64 = args
            .get(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| usage());
        let lib = args.get(3).unwrap_or_else(|| usage());
        let (without, with) = interleaved(n, answer, lib);
        println!("{without:.1} {with:.1}");
        return;
    }
    let n: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| usage());
    let device = args.get(2).map_or("/dev/null", String::as_str);
    let ns = match kind {
        "fionread" => fionread(n),
        "getppid" => getppid(n),
        "megaraid" => megaraid(n, device, Answer::Success),
        "kernel" => megaraid(n, device, Answer::NotTty),
        "fstat" => fstat(n),
        "vm-read" => vm_copy(n, Abi::NATIVE.packet_size(), Direction::Read),
        "vm-write" => vm_copy(n, 1, Direction::Write),
        _ => usage(),
    };
    println!("{ns:.1}");
}

fn per_call(start: Instant, n: u64) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

fn fionread(n: u64) -> f64 {
    let mut fds = [0i32; 2];
    // SAFETY: pipe writes two descriptors into the array it is given.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let mut avail: libc::c_int = 0;
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: FIONREAD writes one int to the pointer, which is valid.
        let r = unsafe { libc::ioctl(fds[0], libc::FIONREAD, &mut avail) };
        assert_eq!(r, 0);
    }
    per_call(start, n)
}

fn getppid(n: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: no arguments; a raw system call, so no libc caching in between.
        std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
    }
    per_call(start, n)
}

/// What the backend answers a MegaRAID request with.
#[derive(PartialEq)]
enum Answer {
    /// The simulator: success.
    Success,
    /// The kernel, for a descriptor that is not the management node.
    NotTty,
}

/// `int ioctl(int, unsigned long, ...)`, as glibc declares it.
type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;

/// The DCMD request, its data buffer and the descriptor it goes to.
struct Request {
    fd: c_int,
    packet: Vec<u8>,
    _buf: Vec<u8>,
}

impl Request {
    fn new(device: &str) -> Request {
        let path = CString::new(device).expect("device path");
        // SAFETY: a valid NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR) };
        assert!(fd >= 0, "open {device}");
        let mut buf = vec![0u8; 2048];
        let packet = samples::dcmd_read(
            Abi::NATIVE,
            MR_DCMD_CTRL_GET_INFO,
            buf.as_mut_ptr() as u64,
            2048,
        )
        .build();
        Request {
            fd,
            packet,
            _buf: buf,
        }
    }

    /// Issues the request `n` times through `ioctl`.
    fn run(&mut self, ioctl: IoctlFn, n: u64, answer: &Answer) {
        let request = c_ulong::from(Abi::NATIVE.firmware_request());
        for _ in 0..n {
            // SAFETY: `ioctl` is an `ioctl` (the process's or a library's); the packet is a
            // whole megasas_iocpacket of this process's layout, and its one iovec points at
            // `_buf`, which lives as long as the packet.
            let r = unsafe { ioctl(self.fd, request, self.packet.as_mut_ptr()) };
            let err = std::io::Error::last_os_error();
            match answer {
                Answer::Success => assert_eq!(r, 0, "MEGASAS_IOC_FIRMWARE failed: {err}"),
                Answer::NotTty => assert!(
                    r == -1 && err.raw_os_error() == Some(libc::ENOTTY),
                    "expected ENOTTY from the kernel, got {r} ({err})"
                ),
            }
        }
    }
}

/// The process's own `ioctl`: the first definition in the lookup order.
fn process_ioctl() -> IoctlFn {
    libc::ioctl
}

fn megaraid(n: u64, device: &str, answer: Answer) -> f64 {
    let mut request = Request::new(device);
    let start = Instant::now();
    request.run(process_ioctl(), n, &answer);
    per_call(start, n)
}

/// libc's own `dlsym` (the guard exports one too): looked up by version, which the guard's
/// `dlvsym` passes on for any name but `ioctl`.
fn libc_dlsym() -> unsafe extern "C" fn(*mut c_void, *const libc::c_char) -> *mut c_void {
    // SAFETY: RTLD_NOLOAD only looks the library up; names and versions are NUL-terminated.
    let p = unsafe {
        let libc_handle = libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        let p = libc::dlvsym(libc_handle, c"dlsym".as_ptr(), c"GLIBC_2.34".as_ptr());
        if p.is_null() {
            // glibc before 2.34: dlsym is libdl's.
            let libdl = libc::dlopen(c"libdl.so.2".as_ptr(), libc::RTLD_NOW);
            libc::dlvsym(libdl, c"dlsym".as_ptr(), c"GLIBC_2.2.5".as_ptr())
        } else {
            p
        }
    };
    assert!(!p.is_null(), "libc's dlsym not found");
    // SAFETY: libc's dlsym, whose C type this is.
    unsafe { std::mem::transmute(p) }
}

/// `ioctl` as defined by an already loaded library, bypassing whatever comes before it.
fn library_ioctl(lib: &str) -> IoctlFn {
    let name = CString::new(lib).expect("library path");
    // SAFETY: a NUL-terminated name; RTLD_NOLOAD only looks the library up, it loads nothing.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    assert!(!handle.is_null(), "{lib} is not loaded in this process");
    // The guard answers `dlsym(any handle, "ioctl")` with its own hook (ctypes-style lookups
    // must not go around it), so the lookup that goes around it on purpose uses libc's dlsym.
    // SAFETY: a valid handle and a NUL-terminated symbol name.
    let sym = unsafe { libc_dlsym()(handle, c"ioctl".as_ptr()) };
    assert!(!sym.is_null(), "{lib} defines no ioctl");
    // SAFETY: the library's `ioctl` has glibc's signature (libc itself, or an interposer
    // declared to match it); data and function pointers have the same representation here.
    let f = unsafe { std::mem::transmute::<*mut c_void, IoctlFn>(sym) };
    // SAFETY: RTLD_DEFAULT (null) is a valid pseudo-handle; the name is NUL-terminated.
    let first = unsafe { libc::dlsym(std::ptr::null_mut(), c"ioctl".as_ptr()) };
    assert_ne!(
        first, sym,
        "{lib}'s ioctl is the process's first: nothing (no guard) is in front of it"
    );
    f
}

/// The request through the process's `ioctl` (the guard) and straight into `lib`'s, in
/// alternating batches, so that whatever else the machine does hits both alike. Returns the
/// nanoseconds per call (without, with).
fn interleaved(n: u64, answer: Answer, lib: &str) -> (f64, f64) {
    const BATCHES: u64 = 100;
    let per_batch = n.div_ceil(BATCHES).max(1);
    let direct = library_ioctl(lib);
    let guarded = process_ioctl();
    let mut request = Request::new("/dev/null");
    // Warm both paths (and let the guard read its configuration) outside the timing.
    request.run(guarded, 10, &answer);
    request.run(direct, 10, &answer);
    let (mut without, mut with) = (0u128, 0u128);
    for batch in 0..BATCHES {
        let order = if batch % 2 == 0 {
            [(direct, false), (guarded, true)]
        } else {
            [(guarded, true), (direct, false)]
        };
        for (f, is_guarded) in order {
            let start = Instant::now();
            request.run(f, per_batch, &answer);
            let ns = start.elapsed().as_nanos();
            if is_guarded {
                with += ns;
            } else {
                without += ns;
            }
        }
    }
    let calls = (BATCHES * per_batch) as f64;
    (without as f64 / calls, with as f64 / calls)
}

fn fstat(n: u64) -> f64 {
    let file = std::fs::File::open("/dev/null").expect("open /dev/null");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut st = std::mem::MaybeUninit::<libc::stat64>::uninit();
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: `st` is a writable stat64 and `fd` is open.
        let r = unsafe { libc::fstat64(fd, st.as_mut_ptr()) };
        assert_eq!(r, 0);
    }
    per_call(start, n)
}

enum Direction {
    Read,
    Write,
}

/// `len` bytes of our own memory copied through the kernel, as `snapshot.rs` does it.
fn vm_copy(n: u64, len: usize, direction: Direction) -> f64 {
    let mut remote = vec![1u8; len];
    let mut local = vec![0u8; len];
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let local_iov = libc::iovec {
        iov_base: local.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote_iov = libc::iovec {
        iov_base: remote.as_mut_ptr().cast(),
        iov_len: len,
    };
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: both iovecs describe live buffers of `len` bytes that this process owns.
        let r = unsafe {
            match direction {
                Direction::Read => libc::process_vm_readv(pid, &local_iov, 1, &remote_iov, 1, 0),
                Direction::Write => libc::process_vm_writev(pid, &local_iov, 1, &remote_iov, 1, 0),
            }
        };
        assert_eq!(
            r,
            len as isize,
            "process_vm: {}",
            std::io::Error::last_os_error()
        );
    }
    per_call(start, n)
}
