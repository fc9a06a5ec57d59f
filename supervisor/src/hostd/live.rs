//! The daemon's host: the calling threads through `/proc` and `process_vm_readv`, its channel,
//! its descriptor of the driver's private node.

use std::ffi::c_int;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mfiguard_core::audit::AenGap;
use mfiguard_core::config::Config;
use mfiguard_core::device::{self, NodeMajor};
use mfiguard_core::guarded::Identity;

use super::calls::Calls;
use super::dispatch::Host;
use super::events::{AenFile, Events};
use super::lock::Lock;
use super::node::{cstr, private_node_path, record};
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
    /// The number of the CUSE device this daemon serves (the callers' files are of it).
    pub(super) dev: u64,
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

    fn kernel_identity(&self, tid: libc::pid_t) -> Identity {
        crate::proc::kernel_identity(tid)
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

    fn events(&self) -> &Events {
        &self.events
    }

    fn aen_file(&self, tid: libc::pid_t) -> Result<AenFile, AenGap> {
        aen_file(tid, self.dev)
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
    let fd = sys::open(&c, libc::O_RDWR)?;
    // Asynchronous, owned by this daemon: the driver's fasync registers the file (which lets
    // MEGASAS_IOC_GET_AEN through on it) and the driver's SIGIO comes here (blocked in every
    // thread, taken by the event relay).
    if let Err(e) = sys::set_async_owner(fd.as_fd(), std::process::id() as libc::pid_t) {
        eprintln!(
            "mfiguard-hostd: WARNING: the driver's events cannot be carried: {}",
            io::Error::from_raw_os_error(e)
        );
    }
    Ok(fd)
}

/// Whether this kernel keeps `O_ASYNC` on a file that has no `fasync` (as a CUSE file has
/// none): Linux 6.1 does; newer kernels drop it silently (6.18 seen), and then only the owner
/// a caller set (`F_SETOWN`) shows that it asked for `SIGIO`. Tried once on `/dev/null`.
fn async_flag_kept() -> bool {
    static KEPT: OnceLock<bool> = OnceLock::new();
    *KEPT.get_or_init(|| {
        let Ok(path) = std::ffi::CString::new("/dev/null") else {
            return true;
        };
        let Ok(fd) = sys::open(&path, libc::O_RDONLY) else {
            return true;
        };
        sys::set_async_owner(fd.as_fd(), 0).is_ok()
            && sys::file_flags(fd.as_fd()).is_ok_and(|fl| fl & libc::O_ASYNC != 0)
    })
}

/// Whether a caller's file asked for `SIGIO` as the driver would see it (its `fasync` called:
/// `O_ASYNC`; where the kernel drops that flag on a CUSE file, an owner set instead).
fn asynchronous(file: BorrowedFd<'_>) -> bool {
    let flag = sys::file_flags(file).is_ok_and(|fl| fl & libc::O_ASYNC != 0);
    flag || (!async_flag_kept() && sys::async_owner(file).is_ok_and(|(_, pid, _)| pid != 0))
}

/// The caller's open file of the node for `MEGASAS_IOC_GET_AEN`: its descriptor number from
/// `/proc/TID/syscall` (the caller waits in this very call: the arguments are its), its file
/// taken with `pidfd_getfd` and checked to be this daemon's node (device `dev`).
pub(super) fn aen_file(tid: libc::pid_t, dev: u64) -> Result<AenFile, AenGap> {
    let unknown = AenGap::DescriptorUnknown;
    // The kernel tells a thread's system call only once it sleeps ("running" before): the
    // caller may still be on its way to its wait for the reply when the request is read.
    let path = format!("/proc/{tid}/syscall");
    let mut text = String::new();
    for _ in 0..200 {
        text = fs::read_to_string(&path).map_err(|_| unknown)?;
        if !text.starts_with("running") {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut words = text.split_whitespace().skip(1);
    let mut arg = || {
        words
            .next()
            .and_then(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok())
    };
    let (fd, code) = (arg().ok_or(unknown)?, arg().ok_or(unknown)?);
    if code as u32 != crate::filter::GET_AEN {
        return Err(unknown);
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| unknown)?;
    let status = Status::of(tid).ok_or(unknown)?;
    let tgid = status.tgid.ok_or(unknown)?;
    let gap = |e: c_int| {
        if e == libc::ENOSYS {
            AenGap::NoPidfdGetfd
        } else {
            AenGap::DescriptorUnknown
        }
    };
    let pidfd = sys::pidfd_open(tgid, 0).map_err(gap)?;
    let file = sys::pidfd_getfd(pidfd.as_fd(), fd).map_err(gap)?;
    match sys::fstat(file.as_raw_fd()) {
        Ok(k) if k.is_char_device() && k.rdev == dev => {}
        _ => return Err(unknown),
    }
    Ok(AenFile {
        tgid,
        fd,
        asynchronous: asynchronous(file.as_fd()),
        pidfd: Some(pidfd),
    })
}

/// The driver's `SIGIO` came to this daemon: each registered file still open in its process
/// with `O_ASYNC` gets it, sent to its owner as the driver would (see `events`); a file its
/// process closed, or a process gone, is forgotten. Each signal sent (or not allowed) recorded
/// (`hostd.event`).
pub(super) fn send_sigio(cfg: &Config, dev: u64, events: &Events) {
    let mut files = events.files();
    let ids: Vec<(std::os::fd::RawFd, c_int)> = files
        .iter()
        .map(|f| (f.pidfd.as_ref().map_or(-1, |p| p.as_raw_fd()), f.fd))
        .collect();
    let Ok(facts) = sys::files_in_child(&ids) else {
        return;
    };
    let mut facts = facts.into_iter();
    files.retain(|f| {
        let Some(file) = facts.next() else {
            return true;
        };
        if file.found == 0 || file.mode & libc::S_IFMT != libc::S_IFCHR || file.rdev != dev {
            // Its process gone, or the descriptor closed or now another file.
            return false;
        }
        let flag = file.flags >= 0 && file.flags & libc::O_ASYNC != 0;
        let asynchronous = flag || (!async_flag_kept() && file.owner != 0);
        let (kind, owner) = (file.owner_kind, file.owner);
        if !asynchronous || owner <= 0 {
            // The driver sends nothing to such a file (no fasync entry, or no owner).
            return true;
        }
        let sig = if file.sig <= 0 { libc::SIGIO } else { file.sig };
        // Only the registering process itself is signalled: the kernel checks the credentials
        // of whoever last called F_SETOWN, which the daemon cannot see (a file passed on, or a
        // process that dropped its privileges, could aim the root daemon's signal elsewhere).
        let own_thread = || Status::of(owner).and_then(|s| s.tgid) == Some(f.tgid);
        let (target, sent) = match kind {
            sys::F_OWNER_TID if own_thread() => (
                format!("thread {owner}"),
                Ok(sys::tgkill(f.tgid, owner, sig)),
            ),
            sys::F_OWNER_TID => (format!("thread {owner}"), Err("a thread of another process")),
            sys::F_OWNER_PGRP => (format!("process group {owner}"), Err("a process group")),
            _ if owner == f.tgid => (
                format!("process {owner}"),
                Ok(f.pidfd
                    .as_ref()
                    .map_or(Err(libc::ESRCH), |p| sys::pidfd_signal(p.as_fd(), sig))),
            ),
            _ => (format!("process {owner}"), Err("another process")),
        };
        let done = match sent {
            Ok(Ok(())) => "sent".to_string(),
            Ok(Err(e)) => format!("not sent ({})", io::Error::from_raw_os_error(e)),
            Err(whom) => format!(
                "not carried: the owner is {whom}, not pid {} that registered (the daemon cannot see who set it)",
                f.tgid
            ),
        };
        let message = format!(
            "controller event: signal {sig} {done} to {target}, the owner of descriptor {} of pid {} registered with MEGASAS_IOC_GET_AEN",
            f.fd, f.tgid
        );
        record(cfg, "hostd.event", &f.tgid.to_string(), &message);
        true
    });
}

/// Relays the driver's events: its `SIGIO` to the callers' registered files, its poll flag to
/// the callers' polls.
pub(super) fn relay_events(cfg: &Config, host: &Live<'_>) {
    // SIGIO is blocked in every thread; it is read here, beside the driver's node.
    let sigio = sys::signalfd(&sys::signal_set(&[libc::SIGIO]));
    loop {
        let Ok(fd) = host.real.get() else {
            // The driver is not loaded yet: it is locked as soon as it is, within a second.
            std::thread::sleep(Duration::from_secs(1));
            continue;
        };
        let mut fds = vec![fd];
        if let Ok(s) = &sigio {
            fds.push(s.as_fd());
        }
        if let Ok(r) = sys::poll(&fds) {
            if r.first().is_some_and(|e| e & libc::POLLIN != 0) {
                for kh in host.events.arrived() {
                    let _ = host.send(&cuse::notify_poll(kh));
                }
            }
            if let (Some(e), Ok(s)) = (r.get(1), &sigio) {
                if e & libc::POLLIN != 0 && sys::read_signal(s.as_fd()).is_some() {
                    send_sigio(cfg, host.dev, &host.events);
                }
            }
        }
        // At most a hundred rounds a second, whatever the node says.
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfiguard_core::config::LogTarget;

    /// A child that owns its file of /dev/null (`F_SETOWN` getpid(), `O_ASYNC`) and waits
    /// `secs` for `SIGIO`: /dev/null's device number, the child, its descriptor.
    fn sigio_child(secs: libc::time_t) -> (u64, libc::pid_t, libc::c_int) {
        let null = std::ffi::CString::new("/dev/null").unwrap();
        let dev = sys::fstat(sys::open(&null, libc::O_RDONLY).unwrap().as_raw_fd())
            .unwrap()
            .rdev;
        let (r, w) = sys::pipe().unwrap();
        let child = sys::sigio_waiter(&null, w.as_raw_fd(), secs).unwrap();
        drop(w);
        let mut fd = [0u8; 4];
        assert_eq!(
            sys::read(r.as_fd(), &mut fd),
            Ok(4),
            "the child set up its file"
        );
        (dev, child, libc::c_int::from_ne_bytes(fd))
    }

    /// The child's exit status (0: it got `SIGIO`).
    fn child_status(child: libc::pid_t) -> c_int {
        loop {
            match sys::wait_nohang(child) {
                Ok(Some(st)) => return st,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("waitpid: {e}"),
            }
        }
    }

    fn no_log() -> Config {
        Config {
            log: LogTarget::None,
            ..Config::FALLBACK
        }
    }

    /// The driver's SIGIO, sent on to a registered file: a child opens `/dev/null` (standing
    /// for the daemon's node), makes it asynchronous and its own (`F_SETOWN`), and waits for
    /// SIGIO; the relay takes its file with `pidfd_getfd`, reads its owner, and signals it.
    /// Once the child is gone, its registration is forgotten.
    #[test]
    fn the_drivers_sigio_reaches_the_owner_of_a_registered_file() {
        let (dev, child, fd) = sigio_child(5);
        let events = Events::default();
        assert!(events.register(AenFile {
            tgid: child,
            fd,
            asynchronous: true,
            pidfd: Some(sys::pidfd_open(child, 0).unwrap()),
        }));
        send_sigio(&no_log(), dev, &events);
        let status = child_status(child);
        assert!(libc::WIFEXITED(status), "{status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "the child got no SIGIO");
        assert_eq!(events.files().len(), 1);
        send_sigio(&no_log(), dev, &events);
        assert!(events.files().is_empty(), "a gone process is forgotten");
    }

    /// An owner other than the registering process (a file passed on, an owner set by a
    /// process that then dropped its privileges) is not signalled: the kernel would check the
    /// credentials of whoever set it, which the daemon cannot see.
    #[test]
    fn an_owner_that_is_not_the_registering_process_gets_nothing() {
        let (dev, child, fd) = sigio_child(1);
        let events = Events::default();
        // Registered as if by another process (this one): the owner is not the registrant.
        assert!(events.register(AenFile {
            tgid: libc::pid_t::try_from(std::process::id()).unwrap(),
            fd,
            asynchronous: true,
            pidfd: Some(sys::pidfd_open(child, 0).unwrap()),
        }));
        send_sigio(&no_log(), dev, &events);
        assert_eq!(
            libc::WEXITSTATUS(child_status(child)),
            1,
            "the child got a SIGIO"
        );
    }

    /// What cannot be carried: the siginfo the driver's signal has (`si_code` `POLL_IN`,
    /// `si_fd`, `si_band`, for a tool that asked for a real-time signal with `F_SETSIG`). The
    /// kernel lets no process send another a signal with a code of 0 or more: the daemon's
    /// signal is a plain one (`SI_USER`).
    #[test]
    fn the_kernel_lets_no_process_forge_the_drivers_siginfo() {
        let (r, w) = sys::pipe().unwrap();
        let null = std::ffi::CString::new("/dev/null").unwrap();
        let child = sys::sigio_waiter(&null, w.as_raw_fd(), 5).unwrap();
        drop(w);
        let mut fd = [0u8; 4];
        assert_eq!(sys::read(r.as_fd(), &mut fd), Ok(4));
        // POLL_IN (1), as kill_fasync sends it: refused.
        assert_eq!(
            sys::queue_signal_with_code(child, libc::SIGIO, 1),
            Err(libc::EPERM)
        );
        // SI_QUEUE (-1): allowed, and ends the child's wait.
        assert_eq!(sys::queue_signal_with_code(child, libc::SIGIO, -1), Ok(()));
        let status = loop {
            if let Ok(Some(st)) = sys::wait_nohang(child) {
                break st;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(libc::WEXITSTATUS(status), 0);
    }
}
