//! The node at the path: what is there, putting the daemon's (or the driver's) node there in one
//! rename, and watching that it stays.

use std::ffi::{c_int, CString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mfiguard_core::audit::{self, ErrorRecord, Record};
use mfiguard_core::config::Config;
use mfiguard_core::device::{self, NodeMajor};

use super::instance::registered;
use super::status::{NodeState, Status};
use crate::sys;

/// The private node's path in `dir`.
pub fn private_node_path(dir: &Path) -> PathBuf {
    dir.join("megaraid_sas_ioctl_node")
}

pub(super) fn cstr(p: &Path) -> Result<CString, c_int> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)
}

/// Puts a node of `dev` at `path` in one rename, with `mode` and owner.
pub(super) fn install_node(
    path: &Path,
    dev: u64,
    (mode, uid, gid): (u32, u32, u32),
) -> io::Result<()> {
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
/// must be stopped first (one killed and still held by the driver does not serve: it is no
/// obstacle). The node's mode and owner are kept when the path holds a node.
pub fn restore_driver_node(path: &Path, private_dir: &Path) -> Result<String, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(d) = registered(&name, private_dir)
        .into_iter()
        .find(|d| d.state.serves())
    {
        return Err(format!(
            "mfiguard-hostd is still serving {} (CUSE {}): stop it first (systemctl disable --now mfiguard-hostd)",
            path.display(),
            d.name
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

/// A record of something that happened to the host-wide guard (`"record":"error"`, with its
/// key: `hostd.node`, `hostd.lock`, `hostd.timeout`, `hostd.stuck`, `hostd.event`).
pub(super) fn record(cfg: &Config, key: &'static str, value: &str, message: &str) {
    let rec = ErrorRecord {
        key,
        value,
        message,
        exe: &cfg.exe,
    };
    let _ = audit::emit(cfg, false, Record::Error(&rec));
}

/// Checks the path every `every` and puts the node back when something replaced it: said and
/// recorded once per change of what is found there.
pub(super) fn watch(
    cfg: &Config,
    node: &Path,
    private_dir: &Path,
    every: Duration,
    dev: u64,
    like: (u32, u32, u32),
) {
    let mut last: Option<NodeState> = None;
    loop {
        std::thread::sleep(every);
        let now = NodeState::of(node);
        if matches!(now, NodeState::Char { rdev, .. } if rdev == dev) {
            last = None;
            continue;
        }
        let status = Status::of(node, private_dir);
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
        record(cfg, "hostd.node", &node.to_string_lossy(), &message);
    }
}
