//! The lock's system calls: `bpf(2)` with the declared attributes of [`attr`](super::attr), the
//! cgroup id of a directory, and an `open` tried in a child. Each function is a thin, typed
//! wrapper; every pointer handed to the kernel points at memory the function borrows for the
//! call.
#![allow(unsafe_code)]

use std::ffi::{c_int, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use zerocopy::byteorder::native_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};

use super::attr::{self, cmd};
use super::{Insn, LockValue};
use crate::sys::errno;

/// `bpf(cmd, attr, size)`: its non-negative result, or the errno.
///
/// # Safety
///
/// Every pointer inside `attr` (the command's fields that hold addresses) must point at memory
/// that is valid, for the whole call, for the reads and writes the command makes (of the sizes
/// the other fields give), and that nothing else uses meanwhile.
unsafe fn bpf(command: c_int, attr: &mut [u8]) -> Result<c_int, c_int> {
    // SAFETY: `attr` is a live, exclusively borrowed buffer of `attr.len()` bytes; the caller
    // vouches for the pointers inside it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr.as_mut_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as c_int)
    }
}

/// A new descriptor `bpf(2)` returned.
fn owned(fd: c_int) -> OwnedFd {
    // SAFETY: the kernel just returned it, and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

fn fd_u32(fd: BorrowedFd<'_>) -> U32 {
    U32::new(fd.as_raw_fd() as u32)
}

/// A one-entry array map of [`LockValue`]s, named `name`.
pub fn lock_map_create(name: &str) -> Result<OwnedFd, c_int> {
    let mut a = attr::MapCreate {
        map_type: U32::new(super::BPF_MAP_TYPE_ARRAY),
        key_size: U32::new(4),
        value_size: U32::new(std::mem::size_of::<LockValue>() as u32),
        max_entries: U32::new(1),
        map_name: attr::obj_name(name),
        ..Default::default()
    };
    // SAFETY: this command's attribute holds no pointer.
    unsafe { bpf(cmd::MAP_CREATE, a.as_mut_bytes()) }.map(owned)
}

/// Writes the lock map's one entry.
pub fn lock_map_update(map: BorrowedFd<'_>, value: &LockValue) -> Result<(), c_int> {
    let key = 0u32;
    let mut a = attr::MapElem {
        map_fd: fd_u32(map),
        key: U64::new(&key as *const u32 as u64),
        value: U64::new(value.as_bytes().as_ptr() as u64),
        ..Default::default()
    };
    // SAFETY: `key` (4 bytes) and `value` (the map's value size) are live borrows the kernel
    // only reads.
    unsafe { bpf(cmd::MAP_UPDATE_ELEM, a.as_mut_bytes()) }.map(drop)
}

/// Reads the lock map's one entry.
pub fn lock_map_lookup(map: BorrowedFd<'_>) -> Result<LockValue, c_int> {
    let key = 0u32;
    let mut value = LockValue::default();
    let mut a = attr::MapElem {
        map_fd: fd_u32(map),
        key: U64::new(&key as *const u32 as u64),
        value: U64::new(value.as_mut_bytes().as_mut_ptr() as u64),
        ..Default::default()
    };
    // SAFETY: the kernel reads 4 bytes at `key` and writes the map's value size (that of
    // `LockValue`, checked by the caller's map) at `value`, both live locals.
    unsafe { bpf(cmd::MAP_LOOKUP_ELEM, a.as_mut_bytes()) }?;
    Ok(value)
}

/// What a program is and where it goes.
#[derive(Clone, Copy, Debug)]
pub struct ProgSpec {
    /// `prog_type`.
    pub prog_type: u32,
    /// `expected_attach_type`.
    pub attach_type: u32,
    /// `attach_btf_id` (LSM programs: the hook function's id in the kernel's BTF; else 0).
    pub attach_btf_id: u32,
}

/// Loads a program; the verifier's log with the errno when it refuses it.
pub fn prog_load(spec: ProgSpec, name: &str, insns: &[Insn]) -> Result<OwnedFd, (c_int, String)> {
    let license = std::ffi::CString::new(super::LICENSE).unwrap_or_default();
    let mut log = vec![0u8; 64 * 1024];
    let mut a = attr::ProgLoad {
        prog_type: U32::new(spec.prog_type),
        insn_cnt: U32::new(insns.len() as u32),
        insns: U64::new(insns.as_ptr() as u64),
        license: U64::new(license.as_ptr() as u64),
        log_level: U32::new(1),
        log_size: U32::new(log.len() as u32),
        log_buf: U64::new(log.as_mut_ptr() as u64),
        prog_name: attr::obj_name(name),
        expected_attach_type: U32::new(spec.attach_type),
        attach_btf_id: U32::new(spec.attach_btf_id),
        ..Default::default()
    };
    // SAFETY: `insns` (`insn_cnt` instructions) and `license` (NUL-terminated) are live borrows
    // the kernel reads; `log` is a live buffer of `log_size` bytes it writes.
    match unsafe { bpf(cmd::PROG_LOAD, a.as_mut_bytes()) } {
        Ok(fd) => Ok(owned(fd)),
        Err(e) => {
            let end = log.iter().position(|&c| c == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end]);
            // The verifier's last lines say why.
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            Err((e, tail.into_iter().rev().collect::<Vec<_>>().join(" | ")))
        }
    }
}

/// Pins `fd` at `path` (in a bpf file system): it lives on when this process ends.
pub fn obj_pin(fd: BorrowedFd<'_>, path: &CStr) -> Result<(), c_int> {
    let mut a = attr::Obj {
        pathname: U64::new(path.as_ptr() as u64),
        bpf_fd: fd_u32(fd),
        ..Default::default()
    };
    // SAFETY: `path` is a live NUL-terminated string the kernel reads.
    unsafe { bpf(cmd::OBJ_PIN, a.as_mut_bytes()) }.map(drop)
}

/// The object pinned at `path`.
pub fn obj_get(path: &CStr) -> Result<OwnedFd, c_int> {
    let mut a = attr::Obj {
        pathname: U64::new(path.as_ptr() as u64),
        ..Default::default()
    };
    // SAFETY: as above.
    unsafe { bpf(cmd::OBJ_GET, a.as_mut_bytes()) }.map(owned)
}

/// Attaches `prog` to the cgroup of directory `cgroup`.
pub fn prog_attach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> Result<(), c_int> {
    let mut a = attr::Attach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: U32::new(attach_type),
        attach_flags: U32::new(flags),
        ..Default::default()
    };
    // SAFETY: this command's attribute holds no pointer.
    unsafe { bpf(cmd::PROG_ATTACH, a.as_mut_bytes()) }.map(drop)
}

/// Detaches `prog` from the cgroup of directory `cgroup`.
pub fn prog_detach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> Result<(), c_int> {
    let mut a = attr::Attach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: U32::new(attach_type),
        ..Default::default()
    };
    // SAFETY: this command's attribute holds no pointer.
    unsafe { bpf(cmd::PROG_DETACH, a.as_mut_bytes()) }.map(drop)
}

/// The ids of the programs attached to the cgroup of directory `cgroup` (itself, not those
/// inherited).
pub fn prog_query(cgroup: BorrowedFd<'_>, attach_type: u32) -> Result<Vec<u32>, c_int> {
    let mut ids = vec![0u32; 64];
    let mut a = attr::Query {
        target_fd: fd_u32(cgroup),
        attach_type: U32::new(attach_type),
        prog_ids: U64::new(ids.as_mut_ptr() as u64),
        prog_cnt: U32::new(ids.len() as u32),
        ..Default::default()
    };
    // SAFETY: `ids` is a live buffer of `prog_cnt` u32s the kernel writes.
    unsafe { bpf(cmd::PROG_QUERY, a.as_mut_bytes()) }?;
    ids.truncate(a.prog_cnt.get() as usize);
    Ok(ids)
}

/// Attaches an LSM program to its hook; the link (the program stays attached while the link
/// lives: pin it).
pub fn lsm_attach(prog: BorrowedFd<'_>) -> Result<OwnedFd, c_int> {
    let mut a = attr::RawTracepoint {
        prog_fd: fd_u32(prog),
        ..Default::default()
    };
    // SAFETY: `name` is 0: no pointer.
    unsafe { bpf(cmd::RAW_TRACEPOINT_OPEN, a.as_mut_bytes()) }.map(owned)
}

/// The head of the information about a BPF object (a program's or a link's), as `T`.
fn info<T: FromBytes + IntoBytes + Default>(fd: BorrowedFd<'_>) -> Result<T, c_int> {
    let mut out = T::default();
    let mut a = attr::Info {
        bpf_fd: fd_u32(fd),
        info_len: U32::new(std::mem::size_of::<T>() as u32),
        info: U64::new(out.as_mut_bytes().as_mut_ptr() as u64),
    };
    // SAFETY: `out` is a live buffer of `info_len` bytes the kernel writes (it writes no more
    // than `info_len`).
    unsafe { bpf(cmd::OBJ_GET_INFO_BY_FD, a.as_mut_bytes()) }?;
    Ok(out)
}

/// A program's id.
pub fn prog_id(prog: BorrowedFd<'_>) -> Result<u32, c_int> {
    info::<attr::ProgInfo>(prog).map(|i| i.id.get())
}

/// The id of the program a link holds.
pub fn link_prog_id(link: BorrowedFd<'_>) -> Result<u32, c_int> {
    info::<attr::LinkInfo>(link).map(|i| i.prog_id.get())
}

/// The cgroup id of cgroup directory `dir` (what `bpf_get_current_cgroup_id` returns for a
/// process in it): the 8-byte handle of the directory in the cgroup v2 file system.
pub fn cgroup_id(dir: &CStr) -> Result<u64, c_int> {
    // `struct file_handle { u32 handle_bytes; int handle_type; unsigned char f_handle[]; }`
    let mut handle = [0u8; 8 + 8];
    handle[..4].copy_from_slice(&8u32.to_ne_bytes());
    let mut mount_id: c_int = 0;
    // SAFETY: a NUL-terminated path; `handle` has room for the 8 handle bytes it announces;
    // `mount_id` is a live local.
    let r = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            dir.as_ptr(),
            handle.as_mut_ptr(),
            &mut mount_id as *mut c_int,
            0,
        )
    };
    if r < 0 {
        return Err(errno());
    }
    let id: [u8; 8] = handle[8..].try_into().map_err(|_| libc::EIO)?;
    Ok(u64::from_ne_bytes(id))
}

/// Opens `path` (read-only) in a forked child, which is another process than this one; the
/// errno the open failed with, or 0 when it succeeded. The child makes system calls only and
/// ends with `_exit`.
pub fn open_in_child(path: &CStr) -> Result<c_int, c_int> {
    // SAFETY: the child makes system calls only, on memory prepared before the fork, and ends
    // in `_exit` (no allocation, no lock, no unwinding).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno());
    }
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            libc::_exit(if fd < 0 { errno() & 0xff } else { 0 })
        }
    }
    let status = crate::sys::wait_child(pid)?;
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Err(libc::EIO)
    }
}

/// `BPF_FS_MAGIC`: the `f_type` of a bpf file system.
pub const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The file system type (`statfs`'s `f_type`) of `path`.
pub fn fs_type(path: &CStr) -> Result<i64, c_int> {
    // SAFETY: all-zero is a valid `statfs`; a NUL-terminated path and a live local.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } < 0 {
        return Err(errno());
    }
    Ok(st.f_type as i64)
}

/// As [`open_in_child`], the child first moving itself into the cgroup whose `cgroup.procs` is
/// `procs` (writing `0`, itself); for tests of the device program.
#[cfg(test)]
pub fn open_in_child_in_cgroup(procs: &CStr, path: &CStr) -> Result<c_int, c_int> {
    // SAFETY: the child makes system calls only, on memory prepared before the fork, and ends
    // in `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(errno());
    }
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            let p = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if p < 0 || libc::write(p, b"0".as_ptr().cast(), 1) != 1 {
                libc::_exit(200);
            }
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            libc::_exit(if fd < 0 { errno() & 0xff } else { 0 })
        }
    }
    Ok(libc::WEXITSTATUS(crate::sys::wait_child(pid)?))
}
