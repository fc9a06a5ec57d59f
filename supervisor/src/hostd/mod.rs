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

mod dispatch;
mod events;
mod live;
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

use self::events::Events;
use self::live::{relay_events, Live, RealNode};
use self::node::{install_node, watch};
use self::pool::{spawn_thread, Pool};
use self::session::{read_requests, register, Registration};
use self::status::{cuse_device, NodeState};

pub use self::node::{private_node_path, restore_driver_node};
pub use self::pool::WORKERS_MAX;
pub use self::status::{Coverage, Status};

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
        "mfiguard-hostd: serving {} (CUSE {}:{}); the driver's node is private in {}; mode {}{}, log {}",
        opts.node.display(),
        libc::major(dev as libc::dev_t),
        libc::minor(dev as libc::dev_t),
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
