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
//!    through the shared guarded path (`mfiguard_core::guarded`): the caller's memory is read
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

mod calls;
mod dispatch;
mod events;
pub mod instance;
mod live;
pub mod lock;
mod node;
mod pool;
mod session;
mod status;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

use mfiguard_core::audit;
use mfiguard_core::config::Config;
use mfiguard_core::device::{self, NodeMajor};

use self::calls::Calls;
use self::events::Events;
use self::live::{relay_events, Live, RealNode};
use self::lock::Lock;
use self::node::{install_node, watch};
use self::pool::{spawn_thread, Pool};
use self::session::{read_requests, register, Registration};
use crate::sys;

pub use self::calls::COMMAND_TIMEOUT;
pub use self::node::{private_node_path, restore_driver_node};
pub use self::pool::WORKERS_MAX;
pub use self::status::{dev_name, Coverage, NodeState, Status};

/// Where the management tools open the node.
pub const NODE_PATH: &str = "/dev/megaraid_sas_ioctl_node";

/// The root-only directory of the driver's private node.
pub const PRIVATE_DIR: &str = "/run/mfiguard";

/// The CUSE channel.
pub const CUSE_CHANNEL: &str = "/dev/cuse";

/// Where the kernel lists CUSE devices (`/sys/class/cuse/NAME/dev`).
pub const CUSE_CLASS: &str = "/sys/class/cuse";

/// One read of the channel: at least `FUSE_MIN_READ_BUFFER`, and the largest request (a
/// `FUSE_WRITE` of `max_write` bytes) with its header.
const READ_BUFFER: usize = 64 * 1024;
const _: () = assert!(READ_BUFFER >= crate::cuse::READ_BUFFER_MIN);

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
    /// picks one). A daemon started while earlier ones still hold their devices (killed while
    /// the driver held a command of theirs) takes the next minor ([`instance`]).
    pub device: Option<(u32, u32)>,
    /// How long a caller may wait for its answer before it is answered `ETIMEDOUT` (`None`:
    /// as long as the driver takes, as the driver itself waits).
    pub command_timeout: Option<Duration>,
    /// Where the lock on the driver's device is pinned (`None`: no lock).
    pub lock_dir: Option<PathBuf>,
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
            command_timeout: Some(calls::COMMAND_TIMEOUT),
            lock_dir: Some(lock::PIN_DIR.into()),
        }
    }
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

/// Runs the daemon: registers the device, puts its node at the path, serves until the channel
/// closes. Returns only on an error, which says what to do; the caller ends the process then
/// (the daemon's threads live as long as it).
pub fn serve(cfg: &'static Config, opts: &Options) -> Result<std::convert::Infallible, String> {
    // The driver's SIGIO (the daemon's descriptor of it is asynchronous) is taken by the event
    // relay alone: blocked here, before any thread starts, so in every thread.
    sys::block(&sys::signal_set(&[libc::SIGIO]));
    let base = opts
        .node
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{}: not a path to a node", opts.node.display()))?;
    // Earlier daemons: one that runs serves already; one killed while the driver held a
    // command of it keeps its device until the driver returns: its callers are released now
    // and its name and number left to it.
    let held = instance::registered(&base, &opts.private_dir);
    if let Some(d) = held.iter().find(|d| d.state.serves()) {
        let pid = d
            .pid
            .map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"));
        return Err(format!(
            "a CUSE device named {} exists already ({pid}, {}): is another mfiguard-hostd running?",
            d.name,
            status::dev_name(d.dev)
        ));
    }
    for d in &held {
        release_stuck(cfg, d, &opts.node);
    }
    live::private_dir(&opts.private_dir).map_err(|e| {
        format!(
            "cannot make the private directory {}: {}",
            opts.private_dir.display(),
            io::Error::from_raw_os_error(e)
        )
    })?;
    // The device first: a daemon that cannot serve (no CUSE) changes nothing else.
    let (name, channel, dev) = register_instance(opts, &base, &held)?;
    // The lock before the driver's node is opened: an earlier daemon's names that daemon.
    let lock = take_lock(cfg, opts);
    let real: &'static RealNode = Box::leak(Box::new(RealNode {
        dir: opts.private_dir.clone(),
        fd: OnceLock::new(),
        opening: Mutex::new(()),
        lock,
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
    let channel: &'static OwnedFd = Box::leak(Box::new(channel));
    let _ = instance::publish(
        &instance::pid_file(&opts.private_dir, &name),
        &format!("{}\n", std::process::id()),
    );
    let like = match NodeState::of(&opts.node) {
        NodeState::Char { mode, uid, gid, .. } => (mode, uid, gid),
        _ => (0o600, 0, 0),
    };
    install_node(&opts.node, dev, like)
        .map_err(|e| format!("cannot put the node at {}: {e}", opts.node.display()))?;
    let _ = instance::publish(
        &opts.private_dir.join(instance::DEVICE_FILE),
        &format!("{}\n", status::dev_name(dev)),
    );
    eprintln!(
        "mfiguard-hostd: serving {} (CUSE {name} {}); the driver's node is private in {}; mode {}{}, log {}",
        opts.node.display(),
        status::dev_name(dev),
        opts.private_dir.display(),
        cfg.for_caller(&mfiguard_core::config::Subject::NOBODY)
            .mode
            .name(),
        if cfg.site.per_caller() {
            " for callers no section of the policy names (the others by their sections)"
        } else {
            ""
        },
        cfg.log.names()
    );
    for e in &cfg.errors {
        eprintln!("mfiguard-hostd: WARNING: {}", e.summary);
        let _ = audit::emit_config_error(cfg, e);
    }
    sys::interrupt_on(live::interrupt_signal()).map_err(|e| {
        format!(
            "cannot set up the interrupt signal: {}",
            io::Error::from_raw_os_error(e)
        )
    })?;
    let host: &'static Live<'static> = Box::leak(Box::new(Live {
        channel: channel.as_fd(),
        real,
        events: Events::default(),
        calls: Calls::new(opts.command_timeout),
        dev,
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
    spawn_thread("hostd-events", move || relay_events(cfg, host))
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    if host.calls.timeout.is_some() {
        spawn_thread("hostd-timeout", move || loop {
            std::thread::sleep(WATCHDOG_EVERY);
            dispatch::expire(cfg, host);
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    }
    let watched = (opts.node.clone(), opts.private_dir.clone(), opts.watch);
    spawn_thread("hostd-watch", move || {
        watch(cfg, &watched.0, &watched.1, watched.2, dev, like)
    })
    .map_err(|e| format!("cannot start a thread: {e}"))?;
    sd_notify("READY=1\nSTATUS=serving the MegaRAID management node");
    // The first reader that stops ends the daemon: the channel is gone for all.
    Err(fatal
        .recv()
        .unwrap_or_else(|_| "every reader stopped".into()))
}

/// How often the watchdog looks for calls past the command timeout.
const WATCHDOG_EVERY: Duration = Duration::from_millis(100);

/// Registers this daemon's device: the first name and number no earlier daemon holds; the
/// name, the channel and the device's number.
fn register_instance(
    opts: &Options,
    base: &str,
    held: &[instance::Daemon],
) -> Result<(String, OwnedFd, u64), String> {
    let free = (0..instance::INSTANCES_MAX)
        .map(|k| (k, instance::name(base, k)))
        .filter(|(_, n)| !held.iter().any(|d| &d.name == n));
    let mut first_free = None;
    for (k, name) in free {
        first_free.get_or_insert_with(|| name.clone());
        let Some((major, minor)) = opts.device else {
            break;
        };
        match register(opts, &name, Some((major, minor + k))) {
            Ok((channel, dev)) => return Ok((name, channel, dev)),
            // That name or number is another's: the next.
            Err(Registration::NotCreated) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    let name = first_free.ok_or_else(|| {
        format!(
            "{} earlier mfiguard-hostd devices are still held by the driver: no name is left",
            held.len()
        )
    })?;
    if let Some((major, minor)) = opts.device {
        eprintln!(
            "mfiguard-hostd: WARNING: the device numbers {major}:{minor} and after are taken: the kernel picks one (a node left by a dead daemon could then become another device's)"
        );
    }
    let (channel, dev) = register(opts, &name, None).map_err(|e| e.to_string())?;
    Ok((name, channel, dev))
}

/// The lock on the driver's device, taken over from an earlier daemon or installed: only this
/// daemon may open the driver from now on. Said, and recorded (`hostd.lock`) when there is none.
fn take_lock(cfg: &Config, opts: &Options) -> Option<Lock> {
    let Some(dir) = &opts.lock_dir else {
        let message = "the driver's device is not locked (--no-lock): a root process that makes its own node reaches the driver unguarded";
        eprintln!("mfiguard-hostd: {message}");
        node::record(cfg, "hostd.lock", "--no-lock", message);
        return None;
    };
    let major = match device::node_major() {
        NodeMajor::Listed(m) => m,
        _ => 0,
    };
    match lock::take(dir, &opts.private_dir, major) {
        Ok(l) => {
            eprintln!(
                "mfiguard-hostd: the driver's device is locked to this daemon ({}, pinned in {})",
                l.mechanism.name(),
                dir.display()
            );
            Some(l)
        }
        Err(why) => {
            let message = format!("the driver's device is NOT locked: {why}; a root process that makes its own node reaches the driver unguarded");
            eprintln!("mfiguard-hostd: WARNING: {message}");
            node::record(cfg, "hostd.lock", &dir.to_string_lossy(), &message);
            None
        }
    }
}

/// An earlier daemon killed while the driver held a command of it: its connection is aborted,
/// so that every caller it held (and every later call on a file opened on its device) fails
/// now rather than waiting for an answer that will never come. Said and recorded
/// (`hostd.stuck`).
fn release_stuck(cfg: &Config, d: &instance::Daemon, node: &Path) {
    let instance::DaemonState::Stuck { in_driver } = d.state else {
        return;
    };
    let pid = d.pid.unwrap_or(0);
    let done = match instance::abort(&d.name) {
        Ok(()) => "its callers were released (its connection aborted)".to_string(),
        Err(e) => {
            format!("its callers could not be released ({e}): they wait until the driver returns")
        }
    };
    let message = format!(
        "an earlier mfiguard-hostd (pid {pid}, CUSE {} {}) was killed while the driver held {in_driver} command(s) of it; {done}; its device stays until the driver returns, and this daemon serves {} beside it",
        d.name,
        status::dev_name(d.dev),
        node.display()
    );
    eprintln!("mfiguard-hostd: WARNING: {message}");
    node::record(cfg, "hostd.stuck", &d.name, &message);
}

/// Threads reading the channel (two: one may be busy writing a reply while the next request
/// waits).
const READERS: usize = 2;
