//! `mfiguard-hostd`: the host-wide guard. Every opener of `/dev/megaraid_sas_ioctl_node` is
//! guarded, wrapped or not, because the path is no longer the driver's node: it is a CUSE
//! device this daemon serves.
//!
//! 1. The driver's node is made private: `mknod` of the driver's major (from `/proc/devices`)
//!    in a root-only directory (`/run/mfiguard/`), opened by this daemon alone.
//! 2. A CUSE device named after the node is registered (`/dev/cuse`), and a node of its device
//!    number is put at the path in one `rename` (over whatever was there: the driver's node a
//!    tool created, or the node of a previous run of this daemon).
//! 3. Each `FUSE_OPEN` is answered as the driver answers it (`EACCES` without `CAP_SYS_ADMIN`
//!    in the initial user namespace, `ENXIO` while the driver is not loaded); each
//!    `MEGASAS_IOC_FIRMWARE` (native, and `MEGASAS_IOC_FIRMWARE32` from 32-bit callers) goes
//!    through the shared guarded path (`mfiguard_core::emulate`): the caller's memory is read
//!    with `process_vm_readv` on the pid in the request, decided, executed on private copies on
//!    this daemon's descriptor of the real node, and what the driver wrote is copied back with
//!    `process_vm_writev`. Records say `"guard":"hostd"` and name the caller.
//!
//! Why `process_vm_readv` and not CUSE's ioctl retry (the kernel copying the iovecs the server
//! names, restarting the call each time): a packet points at up to 16 data buffers and a sense
//! buffer, which would take a second retry after the packet is read, and CUSE caps what one
//! ioctl may copy at 32 pages (128 KiB), below the rules' limits. Reading the caller is safe
//! here because a FUSE request, once this daemon has read it, holds its caller in an
//! uninterruptible wait until the reply (`request_wait_answer`): the thread cannot exit, so its
//! pid cannot be reused, while the call is handled.
//!
//! Fail closed: the node at the path is this daemon's own `mknod`, not devtmpfs's, so it stays
//! when the daemon dies and every open of it fails with `ENXIO` (no device behind the number)
//! until the daemon is back; it never falls back to the driver. A watcher puts the node back
//! (with a record) when something replaces it.

use std::cell::Cell;
use std::ffi::{c_int, CString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

use mfiguard_core::audit::{self, ErrorRecord, Guard, GuardIssue, Record};
use mfiguard_core::config::Config;
use mfiguard_core::device::{self, NodeMajor};
use mfiguard_core::emulate::{self, Answer, Caller, Driver, Identity, Request};
use mfiguard_sanitizer::Abi;

use crate::cuse::{self, InHeader, Op};
use crate::filter::{FIRMWARE, FIRMWARE32, GET_AEN};
use crate::serve::{identity, Node};
use crate::sys;

/// Where the management tools open the node.
pub const NODE_PATH: &str = "/dev/megaraid_sas_ioctl_node";
/// The root-only directory of the driver's private node.
pub const PRIVATE_DIR: &str = "/run/mfiguard";
/// The CUSE channel.
pub const CUSE_CHANNEL: &str = "/dev/cuse";
/// Where the kernel lists CUSE devices (`/sys/class/cuse/NAME/dev`).
pub const CUSE_CLASS: &str = "/sys/class/cuse";
/// `CAP_SYS_ADMIN`: the driver's `open` asks for it.
const CAP_SYS_ADMIN: u32 = 21;
/// One read of the channel: at least `FUSE_MIN_READ_BUFFER`, and the largest request (a
/// `FUSE_WRITE` of `max_write` bytes) with its header.
const READ_BUFFER: usize = 64 * 1024;

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The path tools open (its file name is the CUSE device's name).
    pub node: PathBuf,
    /// The directory of the driver's private node.
    pub private_dir: PathBuf,
    /// The CUSE channel.
    pub channel: PathBuf,
    /// Requests handled at once (each a thread): a slow firmware command holds one.
    pub workers: usize,
    /// How often the path is checked.
    pub watch: Duration,
    /// The CUSE device's number: a fixed one outside the kernel's dynamic ranges, so that the
    /// node a dead daemon leaves behind can never become another driver's (`None`: the kernel
    /// picks one).
    pub device: Option<(u32, u32)>,
}

/// The CUSE device's number: major 120 is in a range reserved for local use (120-127 in the
/// kernel's `devices.txt`), never handed out dynamically (dynamic majors are 234-254 and
/// 384-511), and the minor is above 255, out of the way of a `register_chrdev` of that major.
pub const DEVICE_NUMBER: (u32, u32) = (120, 0x6d66);

impl Default for Options {
    fn default() -> Options {
        Options {
            node: NODE_PATH.into(),
            private_dir: PRIVATE_DIR.into(),
            channel: CUSE_CHANNEL.into(),
            workers: 8,
            watch: Duration::from_millis(200),
            device: Some(DEVICE_NUMBER),
        }
    }
}

/// Everything a request needs from the host: the caller's memory and identity, the channel,
/// the driver. The daemon's is [`Live`]; the tests' is in memory.
pub(crate) trait Host {
    /// The driver, as this daemon reaches it.
    type Driver<'a>: Driver
    where
        Self: 'a;
    /// Reads `out.len()` bytes at `addr` of thread `tid`.
    fn read(&self, tid: libc::pid_t, addr: u64, out: &mut [u8]) -> Result<(), c_int>;
    /// Writes `data` at `addr` of thread `tid`.
    fn write(&self, tid: libc::pid_t, addr: u64, data: &[u8]) -> Result<(), c_int>;
    /// Who thread `tid` is, for records.
    fn identity(&self, tid: libc::pid_t) -> Identity;
    /// Whether thread `tid` may open the node as the driver decides it (`CAP_SYS_ADMIN`).
    fn may_open(&self, tid: libc::pid_t) -> Result<(), c_int>;
    /// The driver's node, opened on first use: `ENXIO` while the driver is not loaded.
    fn driver(&self) -> Result<Self::Driver<'_>, c_int>;
    /// Writes one reply to the channel.
    fn send(&self, reply: &[u8]) -> Result<(), c_int>;
    /// The controller's event flag, as the driver's poll reports it: whether an event came
    /// since the last poll that saw one (seeing it clears it); when none has and `notify` is
    /// set, `kh` is woken (`FUSE_NOTIFY_POLL`) at the next.
    fn poll_event(&self, kh: u64, notify: bool) -> bool;
}

/// The caller of one `FUSE_IOCTL`: its thread, and the reply that answers it.
struct CuseCaller<'h, H: Host> {
    host: &'h H,
    tid: libc::pid_t,
    unique: u64,
    /// Whether the reply was written: every request read gets exactly one, or its caller
    /// would wait for it uninterruptibly.
    replied: Cell<bool>,
}

impl<H: Host> CuseCaller<'_, H> {
    /// Answers the request once; a reply the kernel refuses is replaced by `EIO`.
    fn reply(&self, answer: Answer) -> Result<(), c_int> {
        if self.replied.replace(true) {
            return Err(libc::EALREADY);
        }
        let bytes = match answer {
            Answer::Value(v) => cuse::reply_ioctl(self.unique, v),
            Answer::Errno(e) => cuse::reply_error(self.unique, reply_errno(e)),
        };
        match self.host.send(&bytes) {
            Ok(()) => Ok(()),
            // The request is gone (its caller was killed before the reply): nothing waits.
            Err(libc::ENOENT) => Err(libc::ESRCH),
            Err(e) => {
                let _ = self.host.send(&cuse::reply_error(self.unique, libc::EIO));
                Err(e)
            }
        }
    }
}

/// The errno a reply may carry: the kernel takes 1..=511 only (it refuses the reply otherwise,
/// and the caller would wait forever). The driver's `ENOTSUPP` (524, a kernel-internal code it
/// returns for commands it does not know) becomes `EOPNOTSUPP`, anything else out of range `EIO`.
pub(crate) fn reply_errno(e: c_int) -> c_int {
    match e {
        1..=511 => e,
        524 => libc::EOPNOTSUPP,
        _ => libc::EIO,
    }
}

impl<H: Host> Caller for CuseCaller<'_, H> {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        if self.tid <= 0 {
            return Err(libc::ESRCH);
        }
        self.host.read(self.tid, addr, out)
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int> {
        if self.tid <= 0 {
            return Err(libc::ESRCH);
        }
        self.host.write(self.tid, addr, data)
    }

    fn identity(&self) -> Identity {
        self.host.identity(self.tid)
    }

    fn deliver(&self, answer: Answer) -> Result<(), c_int> {
        self.reply(answer)
    }
}

/// Handles one request read from the channel; answers it unless it is an interrupt.
pub(crate) fn handle(cfg: &Config, host: &impl Host, h: &InHeader, op: Op) {
    let tid = libc::pid_t::try_from(h.pid).unwrap_or(0);
    let reply = match op {
        Op::Ioctl { flags, cmd, arg } => return ioctl(cfg, host, h, flags, cmd, arg),
        // The kernel holds the caller until its own request is answered; nothing to do.
        Op::Interrupt => return,
        Op::Open { .. } => match host.may_open(tid).and_then(|()| host.driver().map(drop)) {
            Ok(()) => cuse::reply_open(h.unique, 0),
            Err(e) => cuse::reply_error(h.unique, e),
        },
        Op::Release => cuse::reply_empty(h.unique),
        // The driver has no read or write: the VFS answers EINVAL for it.
        Op::Other(cuse::FUSE_READ | cuse::FUSE_WRITE) => cuse::reply_error(h.unique, libc::EINVAL),
        // The driver's poll reports a controller event (readable) once; the daemon polls the
        // driver's node for the callers and wakes their polls (ENOSYS would make the kernel
        // answer "readable" to every later poll).
        Op::Poll { kh, flags } => {
            let notify = flags & cuse::FUSE_POLL_SCHEDULE_NOTIFY != 0;
            let ready = (libc::POLLIN | libc::POLLRDNORM) as u32;
            cuse::reply_poll(
                h.unique,
                if host.poll_event(kh, notify) {
                    ready
                } else {
                    0
                },
            )
        }
        Op::Other(_) | Op::Init { .. } => cuse::reply_error(h.unique, libc::ENOSYS),
    };
    let _ = host.send(&reply);
}

fn ioctl(cfg: &Config, host: &impl Host, h: &InHeader, flags: u32, cmd: u32, arg: u64) {
    let compat = flags & cuse::FUSE_IOCTL_COMPAT != 0;
    let abi = if compat { Abi::Ilp32 } else { Abi::Lp64 };
    // The driver's own dispatch: the native entry knows FIRMWARE and GET_AEN, the compat entry
    // FIRMWARE32 and GET_AEN; anything else is ENOTTY and never reaches the firmware.
    let known = match (compat, cmd) {
        _ if flags & cuse::FUSE_IOCTL_COMPAT_X32 != 0 => false,
        (false, FIRMWARE) | (true, FIRMWARE32) | (_, GET_AEN) => true,
        _ => false,
    };
    if !known {
        let _ = host.send(&cuse::reply_error(h.unique, libc::ENOTTY));
        return;
    }
    let caller = CuseCaller {
        host,
        tid: libc::pid_t::try_from(h.pid).unwrap_or(0),
        unique: h.unique,
        replied: Cell::new(false),
    };
    guard_ioctl(cfg, host, &caller, cmd, arg, abi, compat);
    if !caller.replied.get() {
        // Not answered (its copy-back found the caller gone): the request still gets its one
        // reply.
        let _ = caller.reply(Answer::Errno(libc::EIO));
    }
}

fn guard_ioctl<H: Host>(
    cfg: &Config,
    host: &H,
    caller: &CuseCaller<'_, H>,
    cmd: u32,
    arg: u64,
    abi: Abi,
    compat: bool,
) {
    let req = Request {
        code: cmd,
        arg: if compat { arg & 0xffff_ffff } else { arg },
        abi,
        guard: Guard::Hostd,
    };
    if cmd == GET_AEN {
        emulate::refuse(cfg, req, caller, GuardIssue::AenUnsupported);
        return;
    }
    if caller.tid <= 0 {
        // A caller outside this daemon's pid namespace: its memory cannot be named.
        emulate::refuse(cfg, req, caller, GuardIssue::CallerGone);
        return;
    }
    match host.driver() {
        Ok(mut driver) => {
            emulate::guard_call(cfg, req, caller, &mut driver);
        }
        Err(_) => {
            emulate::refuse(cfg, req, caller, GuardIssue::NoNextIoctl);
        }
    }
}

/// The daemon's host: the calling threads through `/proc` and `process_vm_readv`, its channel,
/// its descriptor of the driver's private node.
struct Live<'a> {
    channel: BorrowedFd<'a>,
    real: &'a RealNode,
    events: Events,
}

/// The driver's event flag, relayed: set when a poll of the driver's node says readable, seen
/// (and cleared) by the first caller's poll after, as the driver's own flag is.
#[derive(Default)]
struct Events {
    state: Mutex<EventState>,
}

#[derive(Default)]
struct EventState {
    pending: bool,
    /// The polled files to wake at the next event (`kh`), each once.
    waiting: Vec<u64>,
}

/// How many polled files are remembered for a wake-up (a closed file's handle is forgotten at
/// the next event).
const POLL_WAITERS_MAX: usize = 1024;

impl Events {
    fn lock(&self) -> std::sync::MutexGuard<'_, EventState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poll(&self, kh: u64, notify: bool) -> bool {
        let mut st = self.lock();
        if st.pending {
            st.pending = false;
            return true;
        }
        if notify && !st.waiting.contains(&kh) && st.waiting.len() < POLL_WAITERS_MAX {
            st.waiting.push(kh);
        }
        false
    }

    /// An event came: flag it, and the files to wake.
    fn arrived(&self) -> Vec<u64> {
        let mut st = self.lock();
        st.pending = true;
        std::mem::take(&mut st.waiting)
    }
}

/// Polls the driver's node for controller events and wakes the callers' polls.
fn relay_events(host: &Live<'_>) {
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
}

/// Whether thread `tid` has `CAP_SYS_ADMIN` in this daemon's user namespace: what the driver's
/// `megasas_mgmt_open` asks (`capable()`, the initial namespace), read while the caller waits
/// in its `open`.
fn may_open(tid: libc::pid_t) -> Result<(), c_int> {
    if tid <= 0 {
        return Err(libc::EACCES);
    }
    let status = fs::read_to_string(format!("/proc/{tid}/status")).map_err(|_| libc::ESRCH)?;
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
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
struct RealNode {
    dir: PathBuf,
    fd: OnceLock<OwnedFd>,
    /// Held while the node is created and opened: one worker does it at a time.
    opening: Mutex<()>,
}

impl RealNode {
    /// The descriptor, opening the node on first use.
    fn get(&self) -> Result<BorrowedFd<'_>, c_int> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd.as_fd());
        }
        let _one = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if self.fd.get().is_none() {
            let _ = self.fd.set(open_private_node(&self.dir)?);
        }
        self.fd.get().map(|f| f.as_fd()).ok_or(libc::EIO)
    }
}

/// The private node's path in `dir`.
pub fn private_node_path(dir: &Path) -> PathBuf {
    dir.join("megaraid_sas_ioctl_node")
}

fn cstr(p: &Path) -> Result<CString, c_int> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)
}

/// Creates (again) the driver's node in the root-only `dir` and opens it.
fn open_private_node(dir: &Path) -> Result<OwnedFd, c_int> {
    let NodeMajor::Listed(major) = device::node_major() else {
        return Err(libc::ENXIO);
    };
    let errno = |e: io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(errno)?;
    // Only a real directory of root's, closed to others, may hold it.
    let meta = fs::symlink_metadata(dir).map_err(errno)?;
    if !meta.is_dir() || meta.uid() != 0 {
        return Err(libc::EPERM);
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(errno)?;
    let path = private_node_path(dir);
    let _ = fs::remove_file(&path);
    let c = cstr(&path)?;
    sys::mknod_char(&c, 0o600, libc::makedev(major, 0))?;
    sys::open(&c, libc::O_RDWR)
}

/// What is at the node's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Nothing.
    Missing,
    /// A character device of this number.
    Char {
        /// `st_rdev`.
        rdev: u64,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        uid: u32,
        /// Its group.
        gid: u32,
    },
    /// Something else (a file, a symlink, a directory).
    NotCharDevice,
}

impl NodeState {
    /// What is at `path` now (a symlink is not followed).
    pub fn of(path: &Path) -> NodeState {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_char_device() => NodeState::Char {
                rdev: m.rdev(),
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
            },
            Ok(_) => NodeState::NotCharDevice,
            Err(_) => NodeState::Missing,
        }
    }
}

/// The device number of the CUSE device named `name` while its daemon serves it.
pub fn cuse_device(name: &str) -> Option<u64> {
    let text = fs::read_to_string(Path::new(CUSE_CLASS).join(name).join("dev")).ok()?;
    let (major, minor) = text.trim().split_once(':')?;
    Some(libc::makedev(major.parse().ok()?, minor.parse().ok()?))
}

/// The host-wide guard's state, as `--check` and `mfiguard-hostd --status` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The CUSE device's number while the daemon serves it.
    pub serving: Option<u64>,
    /// What is at the path.
    pub node: NodeState,
    /// The driver's major, when it is loaded.
    pub driver_major: Option<u32>,
}

/// Whether the path is guarded host-wide, and if not why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The daemon serves the path.
    Active,
    /// No daemon, and the path is the driver's own node or nothing: calls to it are not
    /// guarded host-wide (the library or `mfiguard-run` may still guard them).
    Off,
    /// No daemon, and no driver node at the path (nothing, or the node of a stopped daemon):
    /// opens fail until the daemon is back or a tool creates the driver's node.
    Stopped,
    /// The daemon runs but the path is the driver's own node again: calls through it bypass
    /// the daemon until it puts its node back.
    Bypassed,
    /// The daemon runs, the path holds something else.
    Displaced,
}

impl Status {
    /// The state of the node at `path` (whose file name is the CUSE device's name).
    pub fn of(path: &Path) -> Status {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let driver_major = match device::node_major() {
            NodeMajor::Listed(m) => Some(m),
            _ => None,
        };
        Status {
            serving: cuse_device(&name),
            node: NodeState::of(path),
            driver_major,
        }
    }

    /// Whether the path is guarded host-wide.
    pub fn verdict(&self) -> Verdict {
        let driver = |rdev: u64| self.driver_major == Some(libc::major(rdev as libc::dev_t));
        match (self.serving, self.node) {
            (Some(dev), NodeState::Char { rdev, .. }) if rdev == dev => Verdict::Active,
            (Some(_), NodeState::Char { rdev, .. }) if driver(rdev) => Verdict::Bypassed,
            (Some(_), _) => Verdict::Displaced,
            (None, NodeState::Char { rdev, .. }) if driver(rdev) => Verdict::Off,
            (None, NodeState::Missing) => Verdict::Off,
            (None, _) => Verdict::Stopped,
        }
    }

    /// One line for people.
    pub fn describe(&self, path: &Path) -> String {
        let p = path.display();
        let dev = |d: u64| {
            format!(
                "{}:{}",
                libc::major(d as libc::dev_t),
                libc::minor(d as libc::dev_t)
            )
        };
        let at = match self.node {
            NodeState::Missing => "nothing".to_string(),
            NodeState::Char { rdev, .. } => format!("a character device {}", dev(rdev)),
            NodeState::NotCharDevice => "something that is not a character device".to_string(),
        };
        match self.verdict() {
            Verdict::Active => format!(
                "active: mfiguard-hostd serves {p} (CUSE {})",
                dev(self.serving.unwrap_or(0))
            ),
            Verdict::Off => format!(
                "off: mfiguard-hostd is not running and {p} is {at}; calls are guarded only where the library or mfiguard-run is used (host-wide: systemctl enable --now mfiguard-hostd)"
            ),
            Verdict::Stopped => format!(
                "stopped: mfiguard-hostd is not running and {p} is {at}: opens of it fail until it is back (systemctl start mfiguard-hostd), or remove the node to go back to the driver's"
            ),
            Verdict::Bypassed => format!(
                "BYPASSED: mfiguard-hostd runs, but {p} is the driver's own node again ({at}): calls through it are not guarded until the daemon puts its node back"
            ),
            Verdict::Displaced => format!(
                "DISPLACED: mfiguard-hostd runs, but {p} is {at}, not its node (CUSE {})",
                dev(self.serving.unwrap_or(0))
            ),
        }
    }
}

/// Puts a node of `dev` at `path` in one rename, with `mode` and owner.
fn install_node(path: &Path, dev: u64, (mode, uid, gid): (u32, u32, u32)) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.mfiguard-hostd"));
    let _ = fs::remove_file(&tmp);
    let c = cstr(&tmp).map_err(io::Error::from_raw_os_error)?;
    sys::mknod_char(&c, 0o600, dev as libc::dev_t).map_err(io::Error::from_raw_os_error)?;
    let placed = std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))
        .and_then(|()| fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)))
        .and_then(|()| fs::rename(&tmp, path));
    if placed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    placed
}

/// Puts the driver's own node back at `path` (for turning the host-wide guard off): the daemon
/// must be stopped first. The node's mode and owner are kept when the path holds a node.
pub fn restore_driver_node(path: &Path) -> Result<String, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if cuse_device(&name).is_some() {
        return Err(format!(
            "mfiguard-hostd is still serving {}: stop it first (systemctl disable --now mfiguard-hostd)",
            path.display()
        ));
    }
    let NodeMajor::Listed(major) = device::node_major() else {
        return Err("the megaraid_sas driver is not loaded (no megaraid_sas_ioctl in /proc/devices): nothing to restore; tools create the node when they find the driver".into());
    };
    let like = match NodeState::of(path) {
        NodeState::Char { mode, uid, gid, .. } => (mode, uid, gid),
        _ => (0o600, 0, 0),
    };
    install_node(path, libc::makedev(major, 0), like)
        .map_err(|e| format!("cannot put the driver's node at {}: {e}", path.display()))?;
    Ok(format!(
        "{} is the driver's own node again (c {major}:0)",
        path.display()
    ))
}

/// Tells systemd (`Type=notify`) something, when it started us.
fn sd_notify(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(Path::new(&path)),
    };
    if let (Ok(sock), Ok(addr)) = (UnixDatagram::unbound(), addr) {
        let _ = sock.send_to_addr(state.as_bytes(), &addr);
    }
}

/// A record of something that happened to the node (`"record":"error"`, key `hostd.node`).
fn record_node_event(cfg: &Config, path: &Path, message: &str) {
    let value = path.to_string_lossy();
    let rec = ErrorRecord {
        key: "hostd.node",
        value: &value,
        message,
        exe: &cfg.exe,
    };
    let _ = audit::emit(cfg, false, Record::Error(&rec));
}

/// Runs the daemon: registers the device, puts its node at the path, serves until the channel
/// closes. Returns only on an error, which says what to do; the caller ends the process then
/// (the daemon's threads live as long as it).
pub fn serve(cfg: &'static Config, opts: &Options) -> Result<std::convert::Infallible, String> {
    let name = opts
        .node
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{}: not a path to a node", opts.node.display()))?;
    if cuse_device(&name).is_some() {
        return Err(format!(
            "a CUSE device named {name} exists already: is another mfiguard-hostd running?"
        ));
    }
    let real: &'static RealNode = Box::leak(Box::new(RealNode {
        dir: opts.private_dir.clone(),
        fd: OnceLock::new(),
        opening: Mutex::new(()),
    }));
    // Opened now when the driver is there, so that a problem shows at start; later otherwise.
    match real.get() {
        Ok(_) => {}
        Err(libc::ENXIO) => eprintln!(
            "mfiguard-hostd: the megaraid_sas driver is not loaded: opens of {} fail with ENXIO until it is",
            opts.node.display()
        ),
        Err(e) => {
            return Err(format!(
                "cannot create and open the driver's node in {}: {}",
                opts.private_dir.display(),
                io::Error::from_raw_os_error(e)
            ))
        }
    }
    let (channel, dev) = match register(opts, &name, opts.device) {
        Ok(done) => done,
        Err(Registration::NotCreated) if opts.device.is_some() => {
            let (major, minor) = opts.device.unwrap_or_default();
            eprintln!(
                "mfiguard-hostd: WARNING: the device number {major}:{minor} is taken: the kernel picks one (a node left by a dead daemon could then become another device's)"
            );
            register(opts, &name, None).map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    let channel: &'static OwnedFd = Box::leak(Box::new(channel));
    let like = match NodeState::of(&opts.node) {
        NodeState::Char { mode, uid, gid, .. } => (mode, uid, gid),
        _ => (0o600, 0, 0),
    };
    install_node(&opts.node, dev, like)
        .map_err(|e| format!("cannot put the node at {}: {e}", opts.node.display()))?;
    eprintln!(
        "mfiguard-hostd: serving {} (CUSE {}:{}); the driver's node is private in {}; mode {}, log {}",
        opts.node.display(),
        libc::major(dev as libc::dev_t),
        libc::minor(dev as libc::dev_t),
        opts.private_dir.display(),
        cfg.mode.name(),
        cfg.log.describe()
    );
    for e in &cfg.errors {
        eprintln!("mfiguard-hostd: WARNING: {}", e.summary);
        let rec = ErrorRecord {
            key: &e.key,
            value: &e.value,
            message: &e.message,
            exe: &cfg.exe,
        };
        let _ = audit::emit(cfg, false, Record::Error(&rec));
    }
    let host: &'static Live<'static> = Box::leak(Box::new(Live {
        channel: channel.as_fd(),
        real,
        events: Events::default(),
    }));
    // Readers take every request off the channel and answer all but the ioctls at once, so that
    // an open, a close or a poll never waits behind firmware commands; each ioctl goes to a
    // worker that is free, or to a new one (see `Pool`). Each request is read once and answered
    // once: a command never runs twice.
    let (fatal_tx, fatal) = mpsc::channel::<String>();
    let pool: &'static Pool = Box::leak(Box::new(Pool::new(cfg, host, WORKERS_MAX)));
    for _ in 0..opts.workers.clamp(1, WORKERS_MAX) {
        pool.spawn_worker()
            .map_err(|e| format!("cannot start a thread: {e}"))?;
    }
    for _ in 0..READERS {
        let fatal_tx = fatal_tx.clone();
        spawn_thread("hostd-reader", move || {
            let why = read_requests(cfg, host, pool);
            let _ = fatal_tx.send(why);
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    }
    // Only the readers hold a sender now: were they all gone, `recv` below would end.
    drop(fatal_tx);
    spawn_thread("hostd-events", move || relay_events(host))
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    let watched = (opts.node.clone(), opts.watch);
    spawn_thread("hostd-watch", move || {
        watch(cfg, &watched.0, watched.1, dev, like)
    })
    .map_err(|e| format!("cannot start a thread: {e}"))?;
    sd_notify("READY=1\nSTATUS=serving the MegaRAID management node");
    // The first reader that stops ends the daemon: the channel is gone for all.
    Err(fatal
        .recv()
        .unwrap_or_else(|_| "every reader stopped".into()))
}

/// Threads reading the channel (two: one may be busy writing a reply while the next request
/// waits).
const READERS: usize = 2;

/// The most workers there may be: past this many firmware commands at once, an ioctl waits in
/// the daemon for a worker (where its caller cannot be interrupted) rather than a thread more.
pub const WORKERS_MAX: usize = 64;

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
}

/// The workers that run ioctls. A request the daemon has read holds its caller in an
/// uninterruptible wait until the reply, so an ioctl must not wait for a worker: each goes to
/// a waiting worker, or to a new one, up to [`WORKERS_MAX`]. Workers stay once started.
struct Pool {
    cfg: &'static Config,
    host: &'static Live<'static>,
    state: Mutex<PoolState>,
    ready: std::sync::Condvar,
    max: usize,
}

#[derive(Default)]
struct PoolState {
    jobs: std::collections::VecDeque<(InHeader, Op)>,
    /// Workers waiting for a job.
    waiting: usize,
    /// Workers started.
    threads: usize,
}

impl Pool {
    fn new(cfg: &'static Config, host: &'static Live<'static>, max: usize) -> Pool {
        Pool {
            cfg,
            host,
            state: Mutex::new(PoolState::default()),
            ready: std::sync::Condvar::new(),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn_worker(&'static self) -> io::Result<()> {
        self.lock().threads += 1;
        let started = spawn_thread("hostd-worker", move || self.work());
        if started.is_err() {
            self.lock().threads -= 1;
        }
        started
    }

    /// Hands an ioctl to a worker: one waiting, else a new one while there may be more.
    fn submit(&'static self, job: (InHeader, Op)) {
        let grow = {
            let mut st = self.lock();
            st.jobs.push_back(job);
            // More jobs than waiting workers (a woken worker counts as waiting until it runs).
            st.jobs.len() > st.waiting && st.threads < self.max
        };
        if grow && self.spawn_worker().is_err() {
            log::warn!("cannot start another worker: the call waits for one");
        }
        self.ready.notify_one();
    }

    fn work(&self) {
        loop {
            let (h, op) = {
                let mut st = self.lock();
                loop {
                    if let Some(job) = st.jobs.pop_front() {
                        break job;
                    }
                    st.waiting += 1;
                    st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
                    st.waiting -= 1;
                }
            };
            handle(self.cfg, self.host, &h, op);
        }
    }
}

/// Why registering the CUSE device failed.
enum Registration {
    /// The channel could not be opened or the init exchanged.
    Failed(String),
    /// The kernel refused the device (its name or number taken).
    NotCreated,
}

impl std::fmt::Display for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Registration::Failed(why) => f.write_str(why),
            Registration::NotCreated => f.write_str(
                "the kernel did not create the CUSE device: is another one of that name or number registered?",
            ),
        }
    }
}

/// Opens the channel and registers the device `name`, of number `device` (or one the kernel
/// picks); the channel and the device's number.
fn register(
    opts: &Options,
    name: &str,
    device: Option<(u32, u32)>,
) -> Result<(OwnedFd, u64), Registration> {
    let path = cstr(&opts.channel).map_err(|_| Registration::Failed("bad channel path".into()))?;
    let channel = sys::open(&path, libc::O_RDWR).map_err(|e| {
        let hint = if e == libc::ENOENT {
            " (load the cuse module: modprobe cuse)"
        } else {
            ""
        };
        Registration::Failed(format!(
            "cannot open {}: {}{hint}",
            opts.channel.display(),
            io::Error::from_raw_os_error(e)
        ))
    })?;
    init(channel.as_fd(), name, device).map_err(Registration::Failed)?;
    // The kernel creates the device while it takes the reply, or aborts the channel. A device
    // of that name but not of the number asked for is another's (registered meanwhile).
    let dev = cuse_device(name).ok_or(Registration::NotCreated)?;
    match device {
        Some((major, minor)) if dev != libc::makedev(major, minor) => Err(Registration::NotCreated),
        _ => Ok((channel, dev)),
    }
}

/// Answers `CUSE_INIT`: the device's name and number, unrestricted ioctls.
fn init(channel: BorrowedFd<'_>, name: &str, device: Option<(u32, u32)>) -> Result<(), String> {
    let mut buf = vec![0u8; READ_BUFFER];
    let n = sys::read(channel, &mut buf)
        .map_err(|e| format!("reading CUSE_INIT: {}", io::Error::from_raw_os_error(e)))?;
    let (h, op) = cuse::parse(&buf[..n]).map_err(|_| "a short CUSE_INIT".to_string())?;
    let Op::Init { major, minor, .. } = op else {
        return Err(format!("expected CUSE_INIT, got opcode {}", h.opcode));
    };
    let reply = cuse::reply_init(h.unique, major, minor, name, device.unwrap_or((0, 0)))
        .ok_or_else(|| {
            format!("the kernel speaks FUSE {major}.{minor}; CUSE needs 7.11 or later")
        })?;
    sys::write(channel, &reply)
        .map_err(|e| format!("answering CUSE_INIT: {}", io::Error::from_raw_os_error(e)))
}

/// A reader: takes requests off the channel until it closes; the reason it did.
fn read_requests(cfg: &Config, host: &Live<'_>, pool: &'static Pool) -> String {
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = match sys::read(host.channel, &mut buf) {
            Ok(n) => n,
            // The request went away (its caller was killed) before it was read.
            Err(libc::ENOENT | libc::EAGAIN) => continue,
            Err(libc::ENODEV) => {
                return "the CUSE channel was closed by the kernel (the device was aborted)".into()
            }
            Err(e) => {
                return format!(
                    "reading the CUSE channel: {}",
                    io::Error::from_raw_os_error(e)
                )
            }
        };
        match cuse::parse(&buf[..n]) {
            Ok((h, op @ Op::Ioctl { .. })) => pool.submit((h, op)),
            Ok((h, op)) => handle(cfg, host, &h, op),
            Err(_) => {
                log::warn!("a short request ({n} bytes) from the CUSE channel");
                // Its caller still gets an answer, if the header names it.
                if let Some(unique) = buf.get(8..16).filter(|_| n >= 16) {
                    let unique = u64::from_ne_bytes(unique.try_into().unwrap_or([0; 8]));
                    let _ = host.send(&cuse::reply_error(unique, libc::EIO));
                }
            }
        }
    }
}

/// Checks the path every `every` and puts the node back when something replaced it: said and
/// recorded once per change of what is found there.
fn watch(cfg: &Config, node: &Path, every: Duration, dev: u64, like: (u32, u32, u32)) {
    let mut last: Option<NodeState> = None;
    loop {
        std::thread::sleep(every);
        let now = NodeState::of(node);
        if matches!(now, NodeState::Char { rdev, .. } if rdev == dev) {
            last = None;
            continue;
        }
        let status = Status {
            serving: Some(dev),
            node: now,
            driver_major: match device::node_major() {
                NodeMajor::Listed(m) => Some(m),
                _ => None,
            },
        };
        let put_back = install_node(node, dev, like);
        if last == Some(now) {
            // The same state as the last failed attempt: already said.
            continue;
        }
        let seen = status.describe(node);
        let message = match &put_back {
            Ok(()) => format!("{seen}; its node was put back"),
            Err(e) => format!(
                "{seen}; putting its node back failed: {e} (tried again every {} ms)",
                every.as_millis()
            ),
        };
        last = put_back.is_err().then_some(now);
        eprintln!("mfiguard-hostd: WARNING: {message}");
        record_node_event(cfg, node, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    use mfiguard_core::config::LogTarget;
    use mfiguard_core::emulate::{PrivateCall, AEN_SIZE};
    use mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_FRAME_OFFSET;

    use crate::cuse::{FUSE_IOCTL_COMPAT, FUSE_IOCTL_UNRESTRICTED, OUT_HEADER_LEN};

    /// A caller's memory: one region at `base`.
    struct Fake {
        base: u64,
        mem: RefCell<Vec<u8>>,
        sent: RefCell<Vec<Vec<u8>>>,
        /// Packets the driver got.
        driver_calls: RefCell<Vec<Vec<u8>>>,
        driver_loaded: bool,
        caps: bool,
        /// What the driver answers.
        driver_answer: (c_int, c_int),
        /// An errno for every write into the caller.
        write_fails: Option<c_int>,
        /// An errno for the first reply sent.
        send_fails: Cell<Option<c_int>>,
        events: Events,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                base: 0x10_0000,
                mem: RefCell::new(vec![0u8; 0x4000]),
                sent: RefCell::new(Vec::new()),
                driver_calls: RefCell::new(Vec::new()),
                driver_loaded: true,
                caps: true,
                driver_answer: (0, 0),
                write_fails: None,
                send_fails: Cell::new(None),
                events: Events::default(),
            }
        }

        fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, c_int> {
            let start = addr.checked_sub(self.base).ok_or(libc::EFAULT)? as usize;
            let end = start.checked_add(len).ok_or(libc::EFAULT)?;
            (end <= self.mem.borrow().len())
                .then_some(start..end)
                .ok_or(libc::EFAULT)
        }

        /// The one reply sent: (error, ioctl result).
        fn reply(&self) -> (i32, Option<i32>) {
            let sent = self.sent.borrow();
            assert_eq!(sent.len(), 1, "one reply per request: {sent:?}");
            let r = &sent[0];
            assert_eq!(
                u32::from_ne_bytes(r[0..4].try_into().unwrap()) as usize,
                r.len()
            );
            let error = i32::from_ne_bytes(r[4..8].try_into().unwrap());
            let result = (r.len() == OUT_HEADER_LEN + 16)
                .then(|| i32::from_ne_bytes(r[16..20].try_into().unwrap()));
            (error, result)
        }
    }

    struct FakeDriver<'a>(&'a Fake);

    impl Driver for FakeDriver<'_> {
        fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int) {
            self.0
                .driver_calls
                .borrow_mut()
                .push(call.packet().to_vec());
            // The firmware's status for the command, and data in the first buffer.
            let (bufs, _) = call.buffers_mut();
            if let Some(b) = bufs.first_mut() {
                b.fill(0xab);
            }
            self.0.driver_answer
        }
        fn get_aen(&mut self, _: &mut [u8; AEN_SIZE]) -> (c_int, c_int) {
            panic!("GET_AEN must not reach the driver through hostd")
        }
    }

    impl Host for Fake {
        type Driver<'a> = FakeDriver<'a>;
        fn read(&self, _: libc::pid_t, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
            let r = self.range(addr, out.len())?;
            out.copy_from_slice(&self.mem.borrow()[r]);
            Ok(())
        }
        fn write(&self, _: libc::pid_t, addr: u64, data: &[u8]) -> Result<(), c_int> {
            if let Some(e) = self.write_fails {
                return Err(e);
            }
            let r = self.range(addr, data.len())?;
            self.mem.borrow_mut()[r].copy_from_slice(data);
            Ok(())
        }
        fn identity(&self, tid: libc::pid_t) -> Identity {
            Identity {
                who: audit::Who {
                    pid: tid as u32,
                    uid: 0,
                },
                exe: "/usr/sbin/storcli64".into(),
                invoker: audit::Invoker::default(),
            }
        }
        fn may_open(&self, _: libc::pid_t) -> Result<(), c_int> {
            if self.caps {
                Ok(())
            } else {
                Err(libc::EACCES)
            }
        }
        fn driver(&self) -> Result<FakeDriver<'_>, c_int> {
            if self.driver_loaded {
                Ok(FakeDriver(self))
            } else {
                Err(libc::ENXIO)
            }
        }
        fn send(&self, reply: &[u8]) -> Result<(), c_int> {
            if let Some(e) = self.send_fails.take() {
                return Err(e);
            }
            self.sent.borrow_mut().push(reply.to_vec());
            Ok(())
        }
        fn poll_event(&self, kh: u64, notify: bool) -> bool {
            self.events.poll(kh, notify)
        }
    }

    fn cfg() -> Config {
        Config {
            log: LogTarget::None,
            ..Config::FALLBACK
        }
    }

    fn header(opcode: u32, pid: u32) -> InHeader {
        InHeader {
            len: 0,
            opcode,
            unique: 77,
            uid: 0,
            gid: 0,
            pid,
        }
    }

    /// A `MR_DCMD_CTRL_GET_INFO` packet reading 64 bytes, in `abi`'s layout, written into the
    /// fake caller's memory at its base; its data buffer at base + 0x1000.
    fn dcmd_packet(f: &Fake, abi: Abi, sgl_off: u32) -> u64 {
        let size = abi.packet_size();
        let mut p = vec![0u8; size];
        p[4..8].copy_from_slice(&sgl_off.to_ne_bytes());
        p[8..12].copy_from_slice(&1u32.to_ne_bytes());
        let fr = MEGASAS_IOC_FRAME_OFFSET;
        p[fr] = 0x05; // MFI_CMD_DCMD
        p[fr + 2] = 0xff; // cmd_status, as tools leave it
        p[fr + 7] = 1; // sge_count
        p[fr + 0x10..fr + 0x12].copy_from_slice(&0x0010u16.to_le_bytes()); // read
        p[fr + 0x14..fr + 0x18].copy_from_slice(&64u32.to_le_bytes());
        p[fr + 0x18..fr + 0x1c].copy_from_slice(&0x0101_0000u32.to_le_bytes());
        let sgl = fr + 0x80;
        let buf = f.base + 0x1000;
        match abi {
            Abi::Lp64 => {
                p[sgl..sgl + 8].copy_from_slice(&buf.to_ne_bytes());
                p[sgl + 8..sgl + 16].copy_from_slice(&64u64.to_ne_bytes());
            }
            Abi::Ilp32 => {
                p[sgl..sgl + 4].copy_from_slice(&(buf as u32).to_ne_bytes());
                p[sgl + 4..sgl + 8].copy_from_slice(&64u32.to_ne_bytes());
            }
        }
        f.mem.borrow_mut()[..size].copy_from_slice(&p);
        f.base
    }

    fn ioctl_op(flags: u32, cmd: u32, arg: u64) -> Op {
        Op::Ioctl { flags, cmd, arg }
    }

    #[test]
    fn a_clean_call_runs_once_on_a_private_copy_and_its_results_are_copied_back() {
        for (abi, flags, cmd) in [
            (Abi::Lp64, FUSE_IOCTL_UNRESTRICTED, FIRMWARE),
            (
                Abi::Ilp32,
                FUSE_IOCTL_UNRESTRICTED | FUSE_IOCTL_COMPAT,
                FIRMWARE32,
            ),
        ] {
            let f = Fake::new();
            let arg = dcmd_packet(&f, abi, 0x28);
            handle(
                &cfg(),
                &f,
                &header(cuse::FUSE_IOCTL, 4242),
                ioctl_op(flags, cmd, arg),
            );
            assert_eq!(f.reply(), (0, Some(0)), "{abi:?}");
            let calls = f.driver_calls.borrow();
            assert_eq!(calls.len(), 1, "{abi:?}: the command ran once");
            // The driver was handed the native layout, pointing at a private buffer.
            let sge = emulate::private_iovecs(calls[0].as_slice().try_into().unwrap());
            assert_eq!(sge[0].len, 64);
            assert!(sge[0].base < f.base || sge[0].base >= f.base + 0x4000);
            // What the driver wrote reached the caller's buffer.
            assert_eq!(&f.mem.borrow()[0x1000..0x1040], &[0xab; 64][..], "{abi:?}");
        }
    }

    #[test]
    fn every_ioctl_gets_exactly_one_reply_the_kernel_accepts() {
        let firmware = |f: &Fake| {
            let arg = dcmd_packet(f, Abi::Lp64, 0x28);
            handle(
                &cfg(),
                f,
                &header(cuse::FUSE_IOCTL, 4242),
                ioctl_op(0, FIRMWARE, arg),
            );
        };
        // The driver's ENOTSUPP (524) is beyond what a reply may carry (the kernel would refuse
        // it and the caller would wait for ever): EOPNOTSUPP.
        let f = Fake {
            driver_answer: (-1, 524),
            ..Fake::new()
        };
        firmware(&f);
        assert_eq!(f.reply(), (-libc::EOPNOTSUPP, None));
        assert_eq!(reply_errno(libc::ERANGE), libc::ERANGE);
        assert_eq!(reply_errno(512), libc::EIO);
        assert_eq!(reply_errno(0), libc::EIO);
        assert_eq!(reply_errno(-5), libc::EIO);
        // The command ran but its results could not be written back because the caller is
        // gone: still one reply.
        let f = Fake {
            write_fails: Some(libc::ESRCH),
            ..Fake::new()
        };
        firmware(&f);
        assert_eq!(f.driver_calls.borrow().len(), 1);
        assert_eq!(f.reply(), (-libc::EIO, None));
        // A reply the channel refuses is followed by EIO.
        let f = Fake::new();
        f.send_fails.set(Some(libc::EINVAL));
        firmware(&f);
        assert_eq!(f.reply(), (-libc::EIO, None));
        // A reply whose request is gone (ENOENT) is not retried.
        let f = Fake::new();
        f.send_fails.set(Some(libc::ENOENT));
        firmware(&f);
        assert!(f.sent.borrow().is_empty());
    }

    #[test]
    fn the_sgl_off_hazard_is_refused_before_the_driver() {
        let f = Fake::new();
        let arg = dcmd_packet(&f, Abi::Lp64, 0x40000);
        handle(
            &cfg(),
            &f,
            &header(cuse::FUSE_IOCTL, 4242),
            ioctl_op(FUSE_IOCTL_UNRESTRICTED, FIRMWARE, arg),
        );
        assert_eq!(f.reply(), (-libc::EINVAL, None));
        assert!(f.driver_calls.borrow().is_empty());
    }

    #[test]
    fn codes_the_driver_does_not_know_on_that_entry_are_enotty() {
        // The native code from a 32-bit caller, the compat code from a 64-bit one, any other
        // code, an x32 caller.
        for (flags, cmd) in [
            (FUSE_IOCTL_COMPAT, FIRMWARE),
            (0, FIRMWARE32),
            (0, 0x5401),
            (FUSE_IOCTL_COMPAT | cuse::FUSE_IOCTL_COMPAT_X32, FIRMWARE32),
        ] {
            let f = Fake::new();
            let arg = dcmd_packet(&f, Abi::Lp64, 0x28);
            handle(
                &cfg(),
                &f,
                &header(cuse::FUSE_IOCTL, 1),
                ioctl_op(flags, cmd, arg),
            );
            assert_eq!(f.reply(), (-libc::ENOTTY, None), "{flags:#x} {cmd:#x}");
            assert!(f.driver_calls.borrow().is_empty());
        }
    }

    #[test]
    fn event_registration_is_refused_with_eopnotsupp() {
        let f = Fake::new();
        handle(
            &cfg(),
            &f,
            &header(cuse::FUSE_IOCTL, 1),
            ioctl_op(0, GET_AEN, f.base),
        );
        assert_eq!(f.reply(), (-libc::EOPNOTSUPP, None));
    }

    #[test]
    fn a_caller_this_daemon_cannot_see_fails_closed() {
        let f = Fake::new();
        let arg = dcmd_packet(&f, Abi::Lp64, 0x28);
        handle(
            &cfg(),
            &f,
            &header(cuse::FUSE_IOCTL, 0),
            ioctl_op(0, FIRMWARE, arg),
        );
        assert_eq!(f.reply(), (-libc::EIO, None));
        assert!(f.driver_calls.borrow().is_empty());
    }

    #[test]
    fn open_is_answered_as_the_driver_answers_it() {
        let f = Fake::new();
        handle(
            &cfg(),
            &f,
            &header(cuse::FUSE_OPEN, 1),
            Op::Open { flags: 2 },
        );
        assert_eq!(f.reply().0, 0);
        let f = Fake {
            caps: false,
            ..Fake::new()
        };
        handle(
            &cfg(),
            &f,
            &header(cuse::FUSE_OPEN, 1),
            Op::Open { flags: 2 },
        );
        assert_eq!(f.reply(), (-libc::EACCES, None));
        let f = Fake {
            driver_loaded: false,
            ..Fake::new()
        };
        handle(
            &cfg(),
            &f,
            &header(cuse::FUSE_OPEN, 1),
            Op::Open { flags: 2 },
        );
        assert_eq!(f.reply(), (-libc::ENXIO, None));
    }

    #[test]
    fn other_requests_get_the_drivers_answers_and_interrupts_none() {
        for (op, want) in [
            (Op::Other(cuse::FUSE_READ), -libc::EINVAL),
            (Op::Other(cuse::FUSE_WRITE), -libc::EINVAL),
            (Op::Other(cuse::FUSE_FLUSH), -libc::ENOSYS),
            (Op::Release, 0),
        ] {
            let f = Fake::new();
            handle(&cfg(), &f, &header(0, 1), op);
            assert_eq!(f.reply().0, want, "{op:?}");
        }
        // Polls see the driver's event flag as the driver's own poll does: once.
        let f = Fake::new();
        let poll = |kh| {
            f.sent.borrow_mut().clear();
            let op = Op::Poll {
                kh,
                flags: cuse::FUSE_POLL_SCHEDULE_NOTIFY,
            };
            handle(&cfg(), &f, &header(cuse::FUSE_POLL, 1), op);
            let r = f.sent.borrow()[0].clone();
            assert_eq!(r.len(), OUT_HEADER_LEN + 8);
            u32::from_ne_bytes(r[OUT_HEADER_LEN..OUT_HEADER_LEN + 4].try_into().unwrap())
        };
        assert_eq!(poll(1), 0);
        assert_eq!(poll(2), 0);
        assert_eq!(poll(1), 0);
        // An event: the files that waited are to be woken, each once; the next poll sees it,
        // the one after does not.
        assert_eq!(f.events.arrived(), vec![1, 2]);
        assert_eq!(poll(3), (libc::POLLIN | libc::POLLRDNORM) as u32);
        assert_eq!(poll(3), 0);
        assert_eq!(f.events.arrived(), vec![3]);
        let f = Fake::new();
        handle(&cfg(), &f, &header(cuse::FUSE_INTERRUPT, 1), Op::Interrupt);
        assert!(f.sent.borrow().is_empty());
    }

    #[test]
    fn status_names_each_state() {
        let major = 245u32;
        let cuse = libc::makedev(234, 0);
        let driver = libc::makedev(major, 0);
        let node = |rdev| NodeState::Char {
            rdev,
            mode: 0o600,
            uid: 0,
            gid: 0,
        };
        let st = |serving, n| Status {
            serving,
            node: n,
            driver_major: Some(major),
        };
        assert_eq!(st(Some(cuse), node(cuse)).verdict(), Verdict::Active);
        assert_eq!(st(Some(cuse), node(driver)).verdict(), Verdict::Bypassed);
        assert_eq!(
            st(Some(cuse), NodeState::Missing).verdict(),
            Verdict::Displaced
        );
        assert_eq!(st(None, node(driver)).verdict(), Verdict::Off);
        assert_eq!(st(None, node(cuse)).verdict(), Verdict::Stopped);
        assert_eq!(st(None, NodeState::Missing).verdict(), Verdict::Off);
        assert_eq!(
            st(None, NodeState::NotCharDevice).verdict(),
            Verdict::Stopped
        );
        let p = Path::new("/dev/megaraid_sas_ioctl_node");
        assert!(st(Some(cuse), node(driver))
            .describe(p)
            .starts_with("BYPASSED: "));
    }

    #[test]
    fn install_node_replaces_what_is_there_in_one_rename() {
        let dir = std::env::temp_dir().join(format!("mfiguard-hostd-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("megaraid_sas_ioctl_node");
        fs::write(&path, b"not a node").unwrap();
        // /dev/null's number: a device that exists, created here as root.
        let dev = libc::makedev(1, 3);
        install_node(&path, dev, (0o640, 0, 0)).unwrap();
        assert_eq!(
            NodeState::of(&path),
            NodeState::Char {
                rdev: dev,
                mode: 0o640,
                uid: 0,
                gid: 0
            }
        );
        // No temporary file is left.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
