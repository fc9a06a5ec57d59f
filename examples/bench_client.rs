//! The benchmark's client: issues one kind of ioctl in a tight loop and prints the nanoseconds
//! per call on stdout. `benches/overhead.rs` runs it with and without `LD_PRELOAD`.
//!
//!     bench_client fionread N          FIONREAD on a pipe (an ioctl the guard must ignore)
//!     bench_client megaraid N [DEV]    MEGASAS_IOC_FIRMWARE, DCMD CTRL_GET_INFO, on DEV
//!                                      (default /dev/null: the simulator answers it)
#![allow(clippy::print_stdout)] // the measurement is the output

use std::time::Instant;

use mfiguard_sanitizer::abi::mfi::MR_DCMD_CTRL_GET_INFO;
use mfiguard_sanitizer::builder::samples;
use mfiguard_sanitizer::Abi;

fn usage() -> ! {
    eprintln!("usage: bench_client fionread|megaraid N [DEVICE]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = args.first().map(String::as_str).unwrap_or_else(|| usage());
    let n: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| usage());
    let ns = match kind {
        "fionread" => fionread(n),
        "megaraid" => megaraid(n, args.get(2).map_or("/dev/null", String::as_str)),
        _ => usage(),
    };
    println!("{ns:.1}");
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
    start.elapsed().as_nanos() as f64 / n as f64
}

fn megaraid(n: u64, device: &str) -> f64 {
    let path = std::ffi::CString::new(device).expect("device path");
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR) };
    assert!(fd >= 0, "open {device}");
    let mut buf = vec![0u8; 2048];
    let abi = Abi::NATIVE;
    let template =
        samples::dcmd_read(abi, MR_DCMD_CTRL_GET_INFO, buf.as_mut_ptr() as u64, 2048).build();
    let mut packet = template.clone();
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: the packet is a whole megasas_iocpacket of this process's layout, and its one
        // iovec points at `buf`, which outlives the call.
        let r = unsafe { libc::ioctl(fd, abi.firmware_request() as _, packet.as_mut_ptr()) };
        assert_eq!(
            r,
            0,
            "MEGASAS_IOC_FIRMWARE failed: {}",
            std::io::Error::last_os_error()
        );
    }
    start.elapsed().as_nanos() as f64 / n as f64
}
