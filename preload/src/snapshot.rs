//! The fault-proof copy of the caller's packet into private memory, and the fault-proof write of
//! the one byte the kernel returns (`cmd_status`); the same for the SMP request buffer the
//! read-only policy inspects and sends from private memory (`mfiguard_core::guarded::in_place`).
//!
//! The caller's pointer is never dereferenced by our code. Its memory is read and written by the
//! kernel on our behalf, and the kernel answers `EFAULT` for memory that is not mapped (or not
//! writable) instead of raising a signal in the host:
//!
//! - first choice: `process_vm_readv` / `process_vm_writev` on our own pid (allowed without any
//!   privilege for the calling process itself; one system call);
//! - fallback, when those are unavailable (`ENOSYS` on kernels before 3.2, `EPERM` under a
//!   seccomp filter such as a container runtime's default): a pipe. `write(pipe, caller_ptr)`
//!   copies the caller's bytes into the pipe (or fails with `EFAULT`) and `read` brings them
//!   into our buffer; the reverse order writes a byte into the caller's memory. The copy is the
//!   pipe's content, never a probe followed by a direct read, so another thread unmapping the
//!   packet in between cannot make us fault.
//!
//! A partial copy (a packet that runs into an unmapped page) is an `EFAULT` too.
//!
//! `process_vm_readv` needs our pid. glibc does not cache `getpid`, and caching it naively would
//! make a forked child read its *parent's* memory. The pid is kept in a page marked
//! `MADV_WIPEONFORK` (Linux 4.14+), which the kernel hands to a child of any `fork` (including
//! `_Fork` and raw `clone`, which skip `pthread_atfork` handlers) zero-filled, so the child asks
//! again. A `vfork` or `CLONE_VM` child shares our memory, so the parent's pid reads the same
//! memory; should that pid be gone (`ESRCH`), it is asked for again. Without the page (an older
//! kernel), `getpid` is called each time. The page is mapped by a constructor at load time,
//! never during a call (see `pid_slot`).

#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};

use crate::sys::errno;

/// The third argument of the `ioctl` call being handled: an address in the caller's memory that
/// is only ever handed back to the next `ioctl` or read and written through the kernel.
#[derive(Clone, Copy, Debug)]
pub struct CallerArg(*mut c_void);

impl CallerArg {
    /// Wraps the caller's argument.
    ///
    /// # Safety
    ///
    /// `arg` must be the argument the caller passed with the `ioctl` call being handled, and the
    /// value may only be used while handling that call. Whatever it points at (nothing, an
    /// unmapped page, a short buffer) is then the caller's responsibility exactly as it would be
    /// without the guard: this crate never dereferences it, it passes it on unchanged or lets the
    /// kernel copy through it, which checks it.
    pub unsafe fn new(arg: *mut c_void) -> CallerArg {
        CallerArg(arg)
    }

    /// An address the call hands over: `self` itself, its `cmd_status` byte, or a user buffer
    /// the caller's packet names (an `sgl[].iov_base` from the guard's snapshot of the packet
    /// at `self`: the read-only policy's SMP request). `None` if the address does not fit this
    /// process's pointers.
    ///
    /// It inherits `self`'s contract: used only while handling the same call, to read what the
    /// kernel would read before the call and to write what the kernel would have written there
    /// itself (the driver copies every `sgl[]` buffer back to its `iov_base` after the command,
    /// then the status byte). The caller handed that memory to the kernel by making the call,
    /// and it is still accessed only through the kernel, which checks it.
    pub fn at(self, addr: u64) -> Option<CallerArg> {
        usize::try_from(addr)
            .ok()
            .map(|addr| CallerArg(addr as *mut c_void))
    }

    /// A null argument, for tests of the paths around the snapshot.
    #[cfg(test)]
    pub fn null_for_tests() -> CallerArg {
        CallerArg(std::ptr::null_mut())
    }

    /// The raw pointer, for the next `ioctl`.
    pub fn as_ptr(self) -> *mut c_void {
        self.0
    }

    /// The address, for logs.
    pub fn addr(self) -> usize {
        self.0 as usize
    }
}

/// Set once `process_vm_readv`/`process_vm_writev` answered `ENOSYS` or `EPERM`.
static USE_PIPE: AtomicBool = AtomicBool::new(false);

fn vm_unavailable(err: c_int) -> bool {
    err == libc::ENOSYS || err == libc::EPERM
}

/// Copies `out.len()` bytes of the caller's memory, starting `offset` bytes past `arg`, into
/// `out`. `Err(EFAULT)` when any of it is not readable; never a signal.
pub fn read(arg: CallerArg, offset: usize, out: &mut [u8]) -> Result<(), c_int> {
    read_via(USE_PIPE.load(Ordering::Relaxed), arg, offset, out)
}

fn read_via(pipe: bool, arg: CallerArg, offset: usize, out: &mut [u8]) -> Result<(), c_int> {
    let addr = arg.addr().checked_add(offset).ok_or(libc::EFAULT)?;
    addr.checked_add(out.len()).ok_or(libc::EFAULT)?;
    if !pipe {
        match vm_read(addr, out) {
            Err(err) if vm_unavailable(err) => USE_PIPE.store(true, Ordering::Relaxed),
            other => return other,
        }
    }
    pipe_read(addr, out)
}

/// Writes `data` into the caller's memory, starting `offset` bytes past `arg`. `Err(EFAULT)`
/// when any of it is not writable; never a signal.
pub fn write(arg: CallerArg, offset: usize, data: &[u8]) -> Result<(), c_int> {
    write_via(USE_PIPE.load(Ordering::Relaxed), arg, offset, data)
}

fn write_via(pipe: bool, arg: CallerArg, offset: usize, data: &[u8]) -> Result<(), c_int> {
    let addr = arg.addr().checked_add(offset).ok_or(libc::EFAULT)?;
    addr.checked_add(data.len()).ok_or(libc::EFAULT)?;
    if !pipe {
        match vm_write(addr, data) {
            Err(err) if vm_unavailable(err) => USE_PIPE.store(true, Ordering::Relaxed),
            other => return other,
        }
    }
    pipe_write(addr, data)
}

/// Our pid, cached in a `MADV_WIPEONFORK` page (null: not set up yet).
static PID_PAGE: AtomicPtr<AtomicI32> = AtomicPtr::new(std::ptr::null_mut());
const PID_PAGE_SIZE: usize = 4096;

/// The cached-pid slot, if the constructor set it up. Never maps anything itself: a mapping
/// made during a call could land in a hole the caller just unmapped, and turn the caller's
/// dangling packet pointer into a readable one (an `EFAULT` case must stay `EFAULT`).
fn pid_slot() -> Option<&'static AtomicI32> {
    let page = PID_PAGE.load(Ordering::Acquire);
    // SAFETY: a non-null PID_PAGE points at a page that is never unmapped and holds an
    // AtomicI32 at its start, zero-initialised by the kernel.
    (!page.is_null()).then(|| unsafe { &*page })
}

/// Maps the `MADV_WIPEONFORK` page. Called by the constructor only, while the library loads.
fn setup_pid_page() {
    if !PID_PAGE.load(Ordering::Acquire).is_null() {
        return;
    }
    // SAFETY: an anonymous private mapping; no existing memory is touched.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PID_PAGE_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return;
    }
    // SAFETY: `page` is the mapping just created, of that size.
    if unsafe { libc::madvise(page, PID_PAGE_SIZE, libc::MADV_WIPEONFORK) } != 0 {
        // No MADV_WIPEONFORK (Linux < 4.14): no cache, getpid every time.
        // SAFETY: unmapping our own, unpublished mapping.
        unsafe { libc::munmap(page, PID_PAGE_SIZE) };
        return;
    }
    if PID_PAGE
        .compare_exchange(
            std::ptr::null_mut(),
            page.cast::<AtomicI32>(),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        // SAFETY: unmapping our own page, which lost a race and was never published.
        unsafe { libc::munmap(page, PID_PAGE_SIZE) };
    }
}

extern "C" fn prepare_at_load() {
    setup_pid_page();
}

/// The constructor: set up the pid cache while the library loads.
#[used]
#[link_section = ".init_array"]
static PREPARE_AT_LOAD: extern "C" fn() = prepare_at_load;

fn getpid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Our pid for `process_vm_*`, without a system call once known (see the module docs).
fn self_pid() -> libc::pid_t {
    let Some(slot) = pid_slot() else {
        return getpid();
    };
    match slot.load(Ordering::Relaxed) {
        0 => {
            let pid = getpid();
            slot.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// Runs a `process_vm_*` call with the cached pid and, if the kernel does not know that process
/// (or refuses it), once more with a fresh `getpid`.
fn with_self_pid(len: usize, call: impl Fn(libc::pid_t) -> isize) -> Result<(), c_int> {
    match full(call(self_pid()), len) {
        Err(err) if err == libc::ESRCH || err == libc::EPERM => {
            let pid = getpid();
            if let Some(slot) = pid_slot() {
                slot.store(pid, Ordering::Relaxed);
            }
            full(call(pid), len)
        }
        other => other,
    }
}

fn full(n: isize, len: usize) -> Result<(), c_int> {
    match usize::try_from(n) {
        Ok(done) if done == len => Ok(()),
        // A partial copy: the range runs into memory that is not mapped.
        Ok(_) => Err(libc::EFAULT),
        Err(_) => Err(errno()),
    }
}

fn vm_read(addr: usize, out: &mut [u8]) -> Result<(), c_int> {
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: out.len(),
    };
    with_self_pid(out.len(), |pid| {
        // SAFETY: `local` describes `out`, which we own and may write. `remote` is only accessed
        // by the kernel, which checks it against our own address space and fails with EFAULT.
        unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) }
    })
}

fn vm_write(addr: usize, data: &[u8]) -> Result<(), c_int> {
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: data.len(),
    };
    with_self_pid(data.len(), |pid| {
        // SAFETY: `local` describes `data`, which the kernel only reads. `remote` is checked by
        // the kernel (EFAULT for unmapped or read-only memory); it is the caller's packet, where
        // the kernel itself would have written this byte.
        unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) }
    })
}

/// A pipe that closes both ends when dropped.
struct Pipe {
    read: c_int,
    write: c_int,
}

impl Pipe {
    fn new() -> Result<Pipe, c_int> {
        let mut fds = [-1 as c_int; 2];
        // SAFETY: `fds` has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(errno());
        }
        Ok(Pipe {
            read: fds[0],
            write: fds[1],
        })
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: both descriptors were created by `Pipe::new` and are closed only here.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}

fn pipe_read(addr: usize, out: &mut [u8]) -> Result<(), c_int> {
    let pipe = Pipe::new()?;
    // SAFETY: the kernel reads `out.len()` bytes at `addr` from our address space for the pipe
    // and answers EFAULT (or a short count) for what is not mapped. The packet (404 bytes) is
    // far below the pipe's capacity, so the write never blocks.
    let n = unsafe { libc::write(pipe.write, addr as *const c_void, out.len()) };
    full(n, out.len())?;
    // SAFETY: `out` is ours and writable for `out.len()` bytes.
    let n = unsafe { libc::read(pipe.read, out.as_mut_ptr().cast(), out.len()) };
    full(n, out.len())
}

fn pipe_write(addr: usize, data: &[u8]) -> Result<(), c_int> {
    let pipe = Pipe::new()?;
    // SAFETY: `data` is readable for `data.len()` bytes.
    let n = unsafe { libc::write(pipe.write, data.as_ptr().cast(), data.len()) };
    full(n, data.len())?;
    // SAFETY: the kernel writes `data.len()` bytes at `addr` in our address space, checking it
    // (EFAULT for unmapped or read-only memory); it is the caller's packet, where the kernel
    // itself would have written this byte.
    let n = unsafe { libc::read(pipe.read, addr as *mut c_void, data.len()) };
    full(n, data.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfiguard_core::guarded::PACKET_SIZE;

    /// Two pages, the second unmapped: the end of the first page is readable, the rest is not.
    struct Edge {
        base: *mut u8,
        page: usize,
    }

    impl Edge {
        fn new() -> Edge {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
            // SAFETY: an anonymous private mapping of two pages; the second is unmapped again.
            let base = unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    2 * page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                assert_eq!(libc::munmap(p.cast::<u8>().add(page).cast(), page), 0);
                p.cast::<u8>()
            };
            Edge { base, page }
        }

        /// An argument `back` bytes before the unmapped page.
        fn arg(&self, back: usize) -> CallerArg {
            // SAFETY: a test value, read only through the kernel.
            unsafe { CallerArg::new(self.base.add(self.page - back).cast()) }
        }
    }

    impl Drop for Edge {
        fn drop(&mut self) {
            // SAFETY: unmapping the first page, which `new` mapped.
            unsafe { libc::munmap(self.base.cast(), self.page) };
        }
    }

    type Reader<'a> = &'a dyn Fn(CallerArg, usize, &mut [u8]) -> Result<(), c_int>;
    type Writer<'a> = &'a dyn Fn(CallerArg, usize, &[u8]) -> Result<(), c_int>;

    /// Runs a check with process_vm_readv/writev, then with the pipe fallback.
    fn both_ways(check: impl Fn(Reader<'_>, Writer<'_>)) {
        for pipe in [false, true] {
            check(&|a, o, out| read_via(pipe, a, o, out), &|a, o, d| {
                write_via(pipe, a, o, d)
            });
        }
    }

    #[test]
    fn reads_and_writes_mapped_memory() {
        both_ways(|read, write| {
            let mut src = [0u8; PACKET_SIZE];
            for (i, b) in src.iter_mut().enumerate() {
                *b = i as u8;
            }
            // SAFETY: a test value pointing at our own array.
            let arg = unsafe { CallerArg::new(src.as_mut_ptr().cast()) };
            let mut copy = [0u8; PACKET_SIZE];
            read(arg, 0, &mut copy).unwrap();
            assert_eq!(copy, src);
            write(arg, 0x16, &[0xAB]).unwrap();
            // The write went through the kernel; read the array back through it as well.
            let mut byte = [0u8];
            read(arg, 0x16, &mut byte).unwrap();
            assert_eq!(byte, [0xAB]);
        });
    }

    #[test]
    fn null_and_unmapped_memory_are_efault() {
        both_ways(|read, write| {
            let mut copy = [0u8; PACKET_SIZE];
            // SAFETY: a test value; never dereferenced.
            let null = unsafe { CallerArg::new(std::ptr::null_mut()) };
            assert_eq!(read(null, 0, &mut copy), Err(libc::EFAULT));
            assert_eq!(write(null, 0x16, &[0]), Err(libc::EFAULT));
            // SAFETY: a test value; never dereferenced.
            let wild = unsafe { CallerArg::new(usize::MAX as *mut c_void) };
            assert_eq!(read(wild, 1, &mut copy), Err(libc::EFAULT));
        });
    }

    #[test]
    fn a_packet_running_into_an_unmapped_page_is_efault() {
        let edge = Edge::new();
        both_ways(|read, write| {
            let mut copy = [0u8; PACKET_SIZE];
            // The packet starts 100 bytes before the hole: partly mapped.
            assert_eq!(read(edge.arg(100), 0, &mut copy), Err(libc::EFAULT));
            // Entirely inside the mapped page: fine.
            assert_eq!(read(edge.arg(PACKET_SIZE), 0, &mut copy), Ok(()));
            // The status byte on the unmapped side cannot be written; on the mapped side it can.
            assert_eq!(write(edge.arg(0x10), 0x16, &[1]), Err(libc::EFAULT));
            assert_eq!(write(edge.arg(0x20), 0x16, &[1]), Ok(()));
        });
    }

    #[test]
    fn a_forked_child_reads_its_own_memory_not_its_parents() {
        let mut buf = [1u8; 64];
        // SAFETY: a test value pointing at our own array.
        let arg = unsafe { CallerArg::new(buf.as_mut_ptr().cast()) };
        let mut out = [0u8; 64];
        read(arg, 0, &mut out).unwrap();
        assert_eq!(out, [1u8; 64]);
        assert!(
            pid_slot().is_some(),
            "MADV_WIPEONFORK unavailable: the cache is not exercised"
        );
        assert_eq!(pid_slot().unwrap().load(Ordering::Relaxed), getpid());
        // SAFETY: the child only makes system calls and `_exit`s; it never returns into the
        // (multi-threaded) test harness.
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            // The page was wiped: the child's cache is empty, and its copy is its own.
            let wiped = pid_slot().map(|s| s.load(Ordering::Relaxed)) == Some(0);
            // SAFETY: writing our own array through a volatile store, then reading it back via
            // the kernel.
            unsafe { std::ptr::write_volatile(buf.as_mut_ptr(), 2) };
            let mut mine = [0u8; 64];
            let ok = read(arg, 0, &mut mine).is_ok() && mine[0] == 2 && mine[1] == 1;
            let cached = pid_slot().map(|s| s.load(Ordering::Relaxed)) == Some(getpid());
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(if wiped && ok && cached { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
        // The parent's cache and memory are untouched.
        assert_eq!(pid_slot().unwrap().load(Ordering::Relaxed), getpid());
        read(arg, 0, &mut out).unwrap();
        assert_eq!(out[0], 1);
    }

    #[test]
    fn read_only_memory_cannot_be_written() {
        static RODATA: [u8; 32] = [7; 32];
        both_ways(|read, write| {
            // SAFETY: a test value; the kernel refuses to write through it.
            let arg = unsafe { CallerArg::new(RODATA.as_ptr() as *mut c_void) };
            assert_eq!(write(arg, 0x16, &[0]), Err(libc::EFAULT));
            let mut byte = [0u8];
            read(arg, 0x16, &mut byte).unwrap();
            assert_eq!(byte, [7]);
        });
    }
}
