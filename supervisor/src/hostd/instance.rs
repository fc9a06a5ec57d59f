//! The daemons registered on this host, and what each says of itself.
//!
//! A daemon serves one CUSE device. The first is named after the node
//! (`megaraid_sas_ioctl_node`, number 120:28006); one started while an earlier one still holds
//! its device takes the next free name and number (`megaraid_sas_ioctl_node.1`, 120:28007, ...),
//! so that a daemon can always be started again, even while one killed before it is still held
//! by the driver: a process killed with a thread inside the driver's ioctl stays a zombie, and
//! keeps its CUSE device and name, until the driver returns (it may never). Every name starts
//! with the node's file name: the per-tool guards recognise the daemon's node by it
//! (`/sys/dev/char/MAJ:MIN` is a CUSE device of that name).
//!
//! Each daemon writes its pid to `<private dir>/<name>.pid` once registered, and the number of
//! the device it serves at the path to `<private dir>/device` (`MAJ:MIN`, as sysfs writes a
//! device number) once its node is there. A device of one of these names with no pid file is
//! another program's, or an older daemon's: it is never touched.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{CUSE_CLASS, DEVICE_NUMBER};

/// How many daemons may hold a device at once (the one serving and those a stuck command
/// keeps): the minors 28006 to 28021 of major 120.
pub const INSTANCES_MAX: u32 = 16;

/// The file, in the private directory, that holds the number of the device the daemon serves
/// at the path.
pub const DEVICE_FILE: &str = "device";

/// The CUSE device name of instance `k` for a node of file name `base`.
pub fn name(base: &str, k: u32) -> String {
    if k == 0 {
        base.to_owned()
    } else {
        format!("{base}.{k}")
    }
}

/// The device number of instance `k`: major 120 (reserved for local use), minors from 28006.
pub const fn number(k: u32) -> (u32, u32) {
    (DEVICE_NUMBER.0, DEVICE_NUMBER.1 + k)
}

/// Which instance `name` is, if it is one of `base`'s.
pub fn index(base: &str, name: &str) -> Option<u32> {
    if name == base {
        return Some(0);
    }
    let k: u32 = name.strip_prefix(base)?.strip_prefix('.')?.parse().ok()?;
    (1..INSTANCES_MAX).contains(&k).then_some(k)
}

/// A daemon that holds a CUSE device of the node's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    /// Its CUSE device's name.
    pub name: String,
    /// Its device number.
    pub dev: u64,
    /// Its pid, from its pid file.
    pub pid: Option<i32>,
    /// Whether it runs.
    pub state: DaemonState,
}

/// Whether a daemon that holds a device runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaemonState {
    /// Its process runs: it reads its channel and answers.
    Live {
        /// Its threads waiting inside the driver now (`D` state).
        in_driver: u32,
    },
    /// Its process was killed, but threads of it are still inside the driver: its device, its
    /// name and its callers are held until the driver returns. Nothing answers on its device.
    Stuck {
        /// Its threads waiting inside the driver.
        in_driver: u32,
    },
    /// No pid file says whose it is (another program's, or an older daemon's), or its pid
    /// file names no process: taken as live, never aborted.
    Unknown,
}

impl DaemonState {
    /// Its name in `--status --json`.
    pub const fn name(self) -> &'static str {
        match self {
            DaemonState::Live { .. } => "live",
            DaemonState::Stuck { .. } => "stuck",
            DaemonState::Unknown => "unknown",
        }
    }

    /// Whether it may be answering its device.
    pub const fn serves(self) -> bool {
        !matches!(self, DaemonState::Stuck { .. })
    }
}

/// The pid file of instance `name`.
pub fn pid_file(private_dir: &Path, name: &str) -> PathBuf {
    private_dir.join(format!("{name}.pid"))
}

/// Writes `contents` to `path` in one rename (readers never see half of it).
pub(super) fn publish(path: &Path, contents: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, contents).and_then(|()| fs::rename(&tmp, path))
}

/// Every daemon that holds a device of `base`'s names, by instance.
pub fn registered(base: &str, private_dir: &Path) -> Vec<Daemon> {
    let Ok(dir) = fs::read_dir(CUSE_CLASS) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, Daemon)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let k = index(base, &name)?;
            let dev = super::status::cuse_device(&name)?;
            let pid = fs::read_to_string(pid_file(private_dir, &name))
                .ok()
                .and_then(|t| t.trim().parse().ok());
            let state = pid.map_or(DaemonState::Unknown, process_state);
            Some((
                k,
                Daemon {
                    name,
                    dev,
                    pid,
                    state,
                },
            ))
        })
        .collect();
    found.sort_by_key(|(k, _)| *k);
    found.into_iter().map(|(_, d)| d).collect()
}

/// A process's state letter (`R`, `S`, `D`, `Z`, ...) from the text of its `/proc/PID/stat`:
/// the first field after the command's closing parenthesis.
pub fn stat_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Whether the daemon of pid `pid` runs, from `/proc`. A daemon killed while a thread of it is
/// inside the driver: its thread group leader stays a zombie (`Z`) as long as that thread
/// lives, and the thread holds the device.
pub fn process_state(pid: i32) -> DaemonState {
    let leader = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_state(&s));
    let in_driver = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter_map(|t| fs::read_to_string(t.path().join("stat")).ok())
                .filter(|s| stat_state(s) == Some('D'))
                .count() as u32
        })
        .unwrap_or(0);
    match leader {
        Some('Z' | 'X') => DaemonState::Stuck { in_driver },
        Some(_) => DaemonState::Live { in_driver },
        // Not the holder of the device (its pid file is stale): whose it is is unknown.
        None => DaemonState::Unknown,
    }
}

/// Ends the connection of a stuck daemon's device (`/sys/class/cuse/NAME/abort`): every call
/// it held, and every later one on a file opened on it, fails at once (`ECONNABORTED`,
/// `ENOTCONN`) rather than waiting for a daemon that will never answer. Its name and number
/// stay taken until its last thread leaves the driver.
pub(super) fn abort(name: &str) -> io::Result<()> {
    fs::write(Path::new(CUSE_CLASS).join(name).join("abort"), b"1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_named_after_the_node_and_numbered_from_28006() {
        let base = "megaraid_sas_ioctl_node";
        assert_eq!(name(base, 0), base);
        assert_eq!(name(base, 3), "megaraid_sas_ioctl_node.3");
        assert_eq!(number(0), (120, 28006));
        assert_eq!(number(1), (120, 28007));
        for k in 0..INSTANCES_MAX {
            assert_eq!(index(base, &name(base, k)), Some(k));
        }
        for other in [
            "megaraid_sas_ioctl_node.16",
            "megaraid_sas_ioctl_node.0",
            "megaraid_sas_ioctl_node.x",
            "megaraid_sas_ioctl_nodeX",
            "fuse",
        ] {
            assert_eq!(index(base, other), None, "{other}");
        }
    }

    #[test]
    fn a_process_state_is_read_after_its_command() {
        assert_eq!(stat_state("42 (a) b) Z 1 42 42"), Some('Z'));
        assert_eq!(stat_state("42 (mfiguard-hostd) D 1"), Some('D'));
        assert_eq!(stat_state("42 (x"), None);
        // This process runs; a pid that does not exist is no live daemon.
        let me = std::process::id() as i32;
        assert!(matches!(process_state(me), DaemonState::Live { .. }));
        assert_eq!(process_state(i32::MAX), DaemonState::Unknown);
    }
}
