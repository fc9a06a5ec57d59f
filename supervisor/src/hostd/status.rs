//! The host-wide guard's state, as `--check` and `mfiguard-hostd --status` report it.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use mfiguard_core::device::{self, NodeMajor};

use super::instance::{registered, Daemon, DaemonState};
use super::CUSE_CLASS;

/// The host-wide guard's state, as `--check` and `mfiguard-hostd --status` report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// What is at the path.
    pub node: NodeState,
    /// The driver's major, when it is loaded.
    pub driver_major: Option<u32>,
    /// The daemons that hold a CUSE device of the node's name, running or stuck.
    pub daemons: Vec<Daemon>,
}

/// Whether the path is covered by the host-wide guard, and if not why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
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
    /// The daemon whose node is at the path was killed while the driver held a command of it,
    /// and no other runs: its device stays, nothing answers it (opens wait) until a daemon is
    /// started again.
    Stuck,
}

impl Coverage {
    /// Every state, in the order `--collect`'s metric lists them.
    pub const ALL: [Coverage; 6] = [
        Coverage::Active,
        Coverage::Off,
        Coverage::Stopped,
        Coverage::Bypassed,
        Coverage::Displaced,
        Coverage::Stuck,
    ];

    /// Its name in `--check --json` (`hostd.state`), the status file and the metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Coverage::Active => "active",
            Coverage::Off => "off",
            Coverage::Stopped => "stopped",
            Coverage::Bypassed => "bypassed",
            Coverage::Displaced => "displaced",
            Coverage::Stuck => "stuck",
        }
    }
}

/// `MAJ:MIN`.
pub fn dev_name(d: u64) -> String {
    format!(
        "{}:{}",
        libc::major(d as libc::dev_t),
        libc::minor(d as libc::dev_t)
    )
}

impl Status {
    /// The state of the node at `path` (whose file name is the CUSE devices' name), with the
    /// daemons' pid files in `private_dir`.
    pub fn of(path: &Path, private_dir: &Path) -> Status {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let driver_major = match device::node_major() {
            NodeMajor::Listed(m) => Some(m),
            _ => None,
        };
        Status {
            node: NodeState::of(path),
            driver_major,
            daemons: registered(&name, private_dir),
        }
    }

    /// The daemon whose device the node at the path is.
    pub fn at_path(&self) -> Option<&Daemon> {
        match self.node {
            NodeState::Char { rdev, .. } => self.daemons.iter().find(|d| d.dev == rdev),
            _ => None,
        }
    }

    /// The daemon that serves (the one at the path when it runs, else any that runs).
    pub fn serving(&self) -> Option<&Daemon> {
        self.at_path()
            .filter(|d| d.state.serves())
            .or_else(|| self.daemons.iter().find(|d| d.state.serves()))
    }

    /// Whether the path is guarded host-wide.
    pub fn coverage(&self) -> Coverage {
        let driver = |rdev: u64| self.driver_major == Some(libc::major(rdev as libc::dev_t));
        match (self.at_path(), self.serving()) {
            (Some(d), _) if d.state.serves() => Coverage::Active,
            (Some(_), None) => Coverage::Stuck,
            (_, Some(_)) => match self.node {
                NodeState::Char { rdev, .. } if driver(rdev) => Coverage::Bypassed,
                _ => Coverage::Displaced,
            },
            (None, None) => match self.node {
                NodeState::Char { rdev, .. } if driver(rdev) => Coverage::Off,
                NodeState::Missing => Coverage::Off,
                _ => Coverage::Stopped,
            },
        }
    }

    /// One line for people.
    pub fn describe(&self, path: &Path) -> String {
        let p = path.display();
        let at = match self.node {
            NodeState::Missing => "nothing".to_string(),
            NodeState::Char { rdev, .. } => format!("a character device {}", dev_name(rdev)),
            NodeState::NotCharDevice => "something that is not a character device".to_string(),
        };
        let who = |d: &Daemon| match d.pid {
            Some(pid) => format!("pid {pid}, CUSE {} {}", d.name, dev_name(d.dev)),
            None => format!("CUSE {} {}", d.name, dev_name(d.dev)),
        };
        let serving = self.serving().map(who).unwrap_or_default();
        let line = match self.coverage() {
            Coverage::Active => format!("active: mfiguard-hostd serves {p} ({serving})"),
            Coverage::Off => format!(
                "off: mfiguard-hostd is not running and {p} is {at}; calls are guarded only where the library or mfiguard-run is used (host-wide: systemctl enable --now mfiguard-hostd)"
            ),
            Coverage::Stopped => format!(
                "stopped: mfiguard-hostd is not running and {p} is {at}: opens of it fail until it is back (systemctl start mfiguard-hostd), or remove the node to go back to the driver's"
            ),
            Coverage::Bypassed => format!(
                "BYPASSED: mfiguard-hostd runs ({serving}), but {p} is the driver's own node again ({at}): calls through it are not guarded until the daemon puts its node back"
            ),
            Coverage::Displaced => format!(
                "DISPLACED: mfiguard-hostd runs ({serving}), but {p} is {at}, not its node"
            ),
            Coverage::Stuck => format!(
                "STUCK: the mfiguard-hostd serving {p} ({}) was killed while the driver held a command of it: nothing answers its node, opens of it wait; start it again (systemctl restart mfiguard-hostd): a new daemon serves beside it and ends the waits",
                self.at_path().map(who).unwrap_or_default()
            ),
        };
        let held: Vec<String> = self
            .daemons
            .iter()
            .filter_map(|d| match d.state {
                DaemonState::Stuck { in_driver } if Some(d) != self.at_path() => {
                    Some(format!("{} ({in_driver} thread(s) in the driver)", who(d)))
                }
                _ => None,
            })
            .collect();
        if held.is_empty() {
            line
        } else {
            format!(
                "{line}; killed earlier and still held by the driver: {}",
                held.join(", ")
            )
        }
    }
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
