//! The daemon's host: the calling threads through `/proc` and `process_vm_readv`, its channel,
//! its descriptor of the driver's private node.

use std::ffi::c_int;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mfiguard_core::device::{self, NodeMajor};
use mfiguard_core::guarded::Identity;

use super::calls::Calls;
use super::dispatch::Host;
use super::events::Events;
use super::lock::Lock;
use super::node::{cstr, private_node_path};
use crate::cuse;
use crate::proc::{identity, Status};
use crate::serve::Node;
use crate::sys;

/// `CAP_SYS_ADMIN`: the driver's `open` asks for it.
pub(super) const CAP_SYS_ADMIN: u32 = 21;

/// The daemon's host: the calling threads through `/proc` and `process_vm_readv`, its channel,
/// its descriptor of the driver's private node.
pub(super) struct Live<'a> {
    pub(super) channel: BorrowedFd<'a>,
    pub(super) real: &'a RealNode,
    pub(super) events: Events,
    pub(super) calls: Calls,
}

/// The signal that interrupts a worker waiting interruptibly in the driver (for a command
/// slot): a real-time one the daemon handles with a handler that does nothing, installed
/// without `SA_RESTART`, so that the ioctl returns `EINTR`.
pub(super) fn interrupt_signal() -> c_int {
    libc::SIGRTMIN()
}

impl Host for Live<'_> {
    type Driver<'b>
        = Node<'b>
    where
        Self: 'b;

    fn read(&self, tid: libc::pid_t, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        sys::read_process(tid, addr, out)
    }

    fn write(&self, tid: libc::pid_t, addr: u64, data: &[u8]) -> Result<(), c_int> {
        sys::write_process(tid, addr, data)
    }

    fn identity(&self, tid: libc::pid_t) -> Identity {
        identity(tid)
    }

    fn may_open(&self, tid: libc::pid_t) -> Result<(), c_int> {
        may_open(tid)
    }

    fn driver(&self) -> Result<Node<'_>, c_int> {
        Ok(Node {
            fd: self.real.get()?,
        })
    }

    fn send(&self, reply: &[u8]) -> Result<(), c_int> {
        sys::write(self.channel, reply)
    }

    fn poll_event(&self, kh: u64, notify: bool) -> bool {
        self.events.poll(kh, notify)
    }

    fn calls(&self) -> &Calls {
        &self.calls
    }

    fn interrupt(&self, worker: libc::pid_t) {
        sys::tgkill_self(worker, interrupt_signal());
    }
}

/// Whether thread `tid` has `CAP_SYS_ADMIN` in this daemon's user namespace: what the driver's
/// `megasas_mgmt_open` asks (`capable()`, the initial namespace), read while the caller waits
/// in its `open`.
pub(super) fn may_open(tid: libc::pid_t) -> Result<(), c_int> {
    if tid <= 0 {
        return Err(libc::EACCES);
    }
    let caps = Status::of(tid)
        .ok_or(libc::ESRCH)?
        .cap_eff
        .ok_or(libc::EACCES)?;
    // `capable()` asks about the initial user namespace (PROC_USER_INIT_INO); a kernel without
    // user namespaces has no such link, and everyone is in the initial one.
    let initial_ns = match fs::read_link(format!("/proc/{tid}/ns/user")) {
        Ok(link) => link.as_os_str() == "user:[4026531837]",
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    };
    if initial_ns && caps & (1 << CAP_SYS_ADMIN) != 0 {
        Ok(())
    } else {
        Err(libc::EACCES)
    }
}

/// The driver's node, private to this daemon, opened once the driver is there.
pub(super) struct RealNode {
    pub(super) dir: PathBuf,
    pub(super) fd: OnceLock<OwnedFd>,
    /// Held while the node is created and opened: one worker does it at a time.
    pub(super) opening: Mutex<()>,
    /// The lock on the driver's device, told the driver's major before the node is opened.
    pub(super) lock: Option<Lock>,
}

impl RealNode {
    /// The descriptor, opening the node on first use.
    pub(super) fn get(&self) -> Result<BorrowedFd<'_>, c_int> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd.as_fd());
        }
        let _one = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if self.fd.get().is_none() {
            let _ = self
                .fd
                .set(open_private_node(&self.dir, self.lock.as_ref())?);
        }
        self.fd.get().map(|f| f.as_fd()).ok_or(libc::EIO)
    }
}

/// Makes the root-only directory `dir` (the driver's private node, the daemons' pid files),
/// or checks the one there: only a real directory of root's, closed to others, may hold them.
pub(super) fn private_dir(dir: &Path) -> Result<(), c_int> {
    let errno = |e: io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(errno)?;
    let meta = fs::symlink_metadata(dir).map_err(errno)?;
    if !meta.is_dir() || meta.uid() != 0 {
        return Err(libc::EPERM);
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(errno)
}

/// Creates (again) the driver's node in the root-only `dir` and opens it; the driver's major
/// is locked to this daemon first (when there is a lock), so that no one else may open it from
/// the moment the daemon knows it.
pub(super) fn open_private_node(dir: &Path, lock: Option<&Lock>) -> Result<OwnedFd, c_int> {
    let NodeMajor::Listed(major) = device::node_major() else {
        return Err(libc::ENXIO);
    };
    if let Some(lock) = lock {
        if let Err(e) = lock.set_major(major) {
            eprintln!(
                "mfiguard-hostd: WARNING: cannot lock the driver's major {major}: {}",
                io::Error::from_raw_os_error(e)
            );
        }
    }
    private_dir(dir)?;
    let path = private_node_path(dir);
    let _ = fs::remove_file(&path);
    let c = cstr(&path)?;
    sys::mknod_char(&c, 0o600, libc::makedev(major, 0))?;
    sys::open(&c, libc::O_RDWR)
}

/// Polls the driver's node for controller events and wakes the callers' polls.
pub(super) fn relay_events(host: &Live<'_>) {
    loop {
        let Ok(fd) = host.real.get() else {
            // The driver is not loaded yet.
            std::thread::sleep(Duration::from_secs(1));
            continue;
        };
        match sys::poll(&[fd]) {
            Ok(r) if r[0] & libc::POLLIN != 0 => {
                for kh in host.events.arrived() {
                    let _ = host.send(&cuse::notify_poll(kh));
                }
            }
            Ok(_) | Err(_) => {}
        }
        // At most a hundred wake-ups a second, whatever the node says.
        std::thread::sleep(Duration::from_millis(10));
    }
}
