//! The caller's memory as the driver reaches it (`copy_from_user`, `copy_to_user`), and little
//! helpers on byte slices.

use super::*;

// ---- copy_from_user / copy_to_user -------------------------------------------------------

/// Reads caller memory without faulting: `Err` where `copy_from_user` would return EFAULT.
pub(crate) fn copy_from_user(addr: u64, out: &mut [u8]) -> Result<(), ()> {
    if out.is_empty() {
        return Ok(());
    }
    let addr = usize::try_from(addr).map_err(|_| ())?;
    let (local, remote) = (
        iovec(out.as_mut_ptr() as usize, out.len()),
        iovec(addr, out.len()),
    );
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

/// An `iovec` of `len` bytes at address `base` (ours or the caller's, never dereferenced here).
fn iovec(base: usize, len: usize) -> libc::iovec {
    libc::iovec {
        iov_base: base as *mut c_void,
        iov_len: len,
    }
}

/// Writes caller memory without faulting: `Err` where `copy_to_user` would return EFAULT.
pub(crate) fn copy_to_user(addr: u64, data: &[u8]) -> Result<(), ()> {
    if data.is_empty() {
        return Ok(());
    }
    let addr = usize::try_from(addr).map_err(|_| ())?;
    let (local, remote) = (
        iovec(data.as_ptr() as usize, data.len()),
        iovec(addr, data.len()),
    );
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
pub(crate) fn pipe_copy(src: *const u8, dst: *mut u8, len: usize) -> Result<(), ()> {
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

pub(crate) fn last_errno() -> c_int {
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

// ---- little helpers on byte slices --------------------------------------------------------

pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
pub(crate) fn le64(b: &[u8], off: usize) -> u64 {
    u64::from(le32(b, off)) | (u64::from(le32(b, off + 4)) << 32)
}
pub(crate) fn ne32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}
pub(crate) fn ne_word(b: &[u8], off: usize) -> u64 {
    if IOVEC_SIZE == 16 {
        b.get(off..off + 8).map_or(0, |s| {
            u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
        })
    } else {
        u64::from(ne32(b, off))
    }
}
pub(crate) fn put(b: &mut [u8], off: usize, data: &[u8]) {
    if let Some(dst) = b.get_mut(off..off + data.len()) {
        dst.copy_from_slice(data);
    }
}
pub(crate) fn put_str(b: &mut [u8], off: usize, s: &str) {
    put(b, off, s.as_bytes());
}
