//! Is this descriptor the MegaRAID management node?
//!
//! Two files are: the driver's node, and `mfiguard-hostd`'s (which guards every caller and
//! forwards to the driver). [`management_node`] is the one recognition every guard asks:
//!
//! - **the driver's node**: a character device whose major is the `megaraid_sas_ioctl` line of
//!   `/proc/devices`, or whose device number is that of the `MFIGUARD_DEVICE` path. The driver
//!   registers with `register_chrdev`, which makes no `/sys/dev/char` entry: `/proc/devices` is
//!   its only listing. A guard outside the tool reads it before the tool starts
//!   ([`Known::before_start`]) and keeps that answer, so a file the tool replaces
//!   afterwards (a bind mount over `/proc/devices`) cannot change the verdict;
//! - **`mfiguard-hostd`'s node**: a character device whose `/sys/dev/char/MAJ:MIN` is a CUSE
//!   device (class `cuse`) whose name starts with `megaraid_sas_ioctl_node` (the daemon may
//!   register under a fresh name and number after a restart). A guard sends a call there as it
//!   sends one to the driver (the tool's own mode first, on private copies); the daemon guards
//!   it again with the host's policy. A guard outside the tool takes the daemon's devices that
//!   exist before the tool starts ([`Known::before_start`]): a root tool could register a CUSE
//!   device of that name itself, and a CUSE server can make the kernel read and write its
//!   caller's memory (an unrestricted ioctl's retry), so a device the tool made must never be
//!   taken for the daemon's (it is refused as an unrecognised file).
//!
//! Other drivers use the `'M'` ioctl type too, so the request code alone is not enough.
//!
//! `/proc/devices` is read without allocating (a small stack buffer, line by line), so the check
//! also works from a signal handler. A found major is cached; "not listed" is not, since the
//! driver may be loaded after a long-running host started; and a character device whose major
//! differs from the cached one makes the file be read again, since the driver may have been
//! reloaded with a new dynamic major (see `is_node_major`). If `/proc/devices` cannot be read
//! at all (no `/proc` in a chroot), every character device receiving a MegaRAID request is
//! treated as the node: guarding one call too many is better than guarding none.

use std::ffi::c_int;
use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::config::Config;
use crate::sys;

const PROC_DEVICES: &str = "/proc/devices";
const DRIVER_NAME: &[u8] = b"megaraid_sas_ioctl";

/// The node's major once found (0: not found yet; major 0 is never a driver's).
static MAJOR: AtomicU32 = AtomicU32::new(0);

/// What `/proc/devices` says about the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeMajor {
    /// The driver is loaded with this character major.
    Listed(u32),
    /// The file was read and does not list the driver.
    NotListed,
    /// The file could not be read.
    Unreadable,
}

/// Finds the `megaraid_sas_ioctl` character major in the text of `/proc/devices`, read in
/// small pieces. Lines longer than the line buffer are skipped (no real line is).
pub fn find_major(input: impl Read) -> std::io::Result<Option<u32>> {
    let mut in_char = false;
    scan_lines(input, |line, cut| {
        if cut {
            return None;
        }
        parse_line(line, &mut in_char)
    })
}

/// Reads a small text file of the system line by line without allocating (a stack buffer:
/// this runs in signal handlers too) and returns the first `Some` that `each` makes of a line.
/// `each` gets the line without its newline, and whether it was cut: a line longer than 96
/// bytes comes as its first 96.
pub(crate) fn scan_lines<T>(
    mut input: impl Read,
    mut each: impl FnMut(&[u8], bool) -> Option<T>,
) -> std::io::Result<Option<T>> {
    let mut chunk = [0u8; 256];
    let mut line = [0u8; 96];
    let mut len = 0usize;
    let mut overlong = false;
    loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let end_of_file = n == 0;
        let bytes = chunk.get(..n).unwrap_or_default();
        for &b in bytes.iter().chain(end_of_file.then_some(&b'\n')) {
            if b != b'\n' {
                match line.get_mut(len) {
                    Some(slot) => {
                        *slot = b;
                        len = len.saturating_add(1);
                    }
                    None => overlong = true,
                }
                continue;
            }
            let text = line.get(..len).unwrap_or_default();
            if let Some(found) = each(text, overlong) {
                return Ok(Some(found));
            }
            len = 0;
            overlong = false;
        }
        if end_of_file {
            return Ok(None);
        }
    }
}

fn parse_line(line: &[u8], in_char: &mut bool) -> Option<u32> {
    let line = line.trim_ascii();
    if line.eq_ignore_ascii_case(b"Character devices:") {
        *in_char = true;
        return None;
    }
    if line.ends_with(b":") {
        // "Block devices:" or any later section.
        *in_char = false;
        return None;
    }
    if !*in_char {
        return None;
    }
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let number = fields.next()?;
    let name = fields.next()?;
    if name != DRIVER_NAME || fields.next().is_some() {
        return None;
    }
    std::str::from_utf8(number).ok()?.parse().ok()
}

/// The node's major, from the cache or `/proc/devices`.
pub fn node_major() -> NodeMajor {
    node_major_in(&MAJOR, PROC_DEVICES)
}

/// `node_major` with its cache and file named (the tests' own).
fn node_major_in(cache: &AtomicU32, path: &str) -> NodeMajor {
    match cache.load(Ordering::Relaxed) {
        0 => read_major_into(cache, path),
        cached => NodeMajor::Listed(cached),
    }
}

/// Reads `path` (`/proc/devices`) and caches what it says: the major, or nothing when the
/// driver is not listed (it may be loaded later). An unreadable file leaves the cache as it was.
fn read_major_into(cache: &AtomicU32, path: &str) -> NodeMajor {
    let Ok(file) = File::open(path) else {
        return NodeMajor::Unreadable;
    };
    match find_major(file) {
        Ok(Some(major)) if major != 0 => {
            cache.store(major, Ordering::Relaxed);
            NodeMajor::Listed(major)
        }
        Ok(_) => {
            cache.store(0, Ordering::Relaxed);
            NodeMajor::NotListed
        }
        Err(_) => NodeMajor::Unreadable,
    }
}

/// Whether a character device of major `major` is the node, by `/proc/devices`.
///
/// The cached major answers a match at the cost of one atomic load. A mismatch re-reads the
/// file, because the driver may have been reloaded with a new dynamic major since it was
/// cached (a long-running host would otherwise never guard the new node). This runs only for
/// character devices that receive a MegaRAID request code, so unrelated ioctls never pay for
/// it, and a real mismatch (another driver using the same request code) is rare.
fn is_node_major(cache: &AtomicU32, path: &str, major: u32) -> bool {
    let known = match node_major_in(cache, path) {
        NodeMajor::Listed(cached) if cached == major => return true,
        // Cached, and not this device's: maybe stale.
        NodeMajor::Listed(_) => read_major_into(cache, path),
        // Just read (a "not listed" is never cached).
        other => other,
    };
    match known {
        NodeMajor::Listed(current) => current == major,
        NodeMajor::NotListed => false,
        NodeMajor::Unreadable => true,
    }
}

/// Which management node a character device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// The driver's own node (`megaraid_sas_ioctl`).
    Driver,
    /// `mfiguard-hostd`'s CUSE node.
    Hostd,
}

/// The name `mfiguard-hostd` registers its CUSE device under, or begins it with.
pub const HOSTD_CUSE_PREFIX: &[u8] = b"megaraid_sas_ioctl_node";

/// How many `mfiguard-hostd` devices a guard outside the tool remembers from before the start.
const HOSTD_MAX: usize = 4;

/// Where the kernel lists CUSE devices (`/sys/class/cuse/NAME/dev`).
const CUSE_CLASS: &str = "/sys/class/cuse";

/// The management nodes as a guard outside the tool knows them: read before the tool started
/// and kept, so that nothing the tool does afterwards changes them, neither a bind mount over
/// `/proc/devices` nor a CUSE device of its own under the daemon's name (a CUSE server answers
/// an ioctl by naming memory of its caller for the kernel to read and write: a guard that took
/// the tool's own device for the daemon's would let the tool write into the guard). `live`
/// asks on each question instead (the library, inside the tool, guards nothing from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Known {
    /// The driver's major when `/proc/devices` listed it before the start; `None`: asked live
    /// (the driver may be loaded after a long-running tool started).
    driver: Option<u32>,
    /// The daemon's CUSE devices that existed before the start (0: none); `None`: asked live.
    hostd: Option<[u64; HOSTD_MAX]>,
    /// Whether the guard is outside the tool: a CUSE device is then never taken for the
    /// driver's, whatever its number (one `readlink` per recognition, which the supervisor
    /// keeps per open file).
    outside: bool,
}

impl Known {
    /// Reads `/proc/devices` and `/sys/class/cuse` now, before the tool starts.
    pub fn before_start() -> Known {
        let driver = match read_major_into(&MAJOR, PROC_DEVICES) {
            NodeMajor::Listed(m) => Some(m),
            // Not loaded yet (or no /proc): asked again on each call, as the library does.
            NodeMajor::NotListed | NodeMajor::Unreadable => None,
        };
        Known {
            driver,
            hostd: Some(hostd_devices_now()),
            outside: true,
        }
    }

    /// Asked of `/proc/devices` (through its cache) and `/sys/dev/char` on each question.
    pub const fn live() -> Known {
        Known {
            driver: None,
            hostd: None,
            outside: false,
        }
    }

    /// A driver's major known without reading anything, and no daemon (tests).
    pub const fn fixed(major: u32) -> Known {
        Known {
            driver: Some(major),
            hostd: Some([0; HOSTD_MAX]),
            outside: true,
        }
    }

    fn is_driver(self, rdev: u64) -> bool {
        let dev = rdev as libc::dev_t;
        // `register_chrdev` claims minors 0..=255 of the driver's major; a CUSE server may
        // register the same major's minor 256 and up.
        if libc::minor(dev) >= DRIVER_MINORS {
            return false;
        }
        let major = libc::major(dev);
        let listed = match self.driver {
            Some(m) => m == major,
            None => is_node_major(&MAJOR, PROC_DEVICES, major),
        };
        // The driver registers no device in sysfs; a CUSE device has a `/sys/dev/char` link
        // into its class (seen from outside the tool, which could otherwise serve the guard's
        // own call on a device it made: an unreadable `/proc/devices` counts any major).
        listed && !(self.outside && sys_dev_char_target(rdev, cuse_link))
    }

    fn is_hostd(self, rdev: u64) -> bool {
        match self.hostd {
            Some(known) => rdev != 0 && known.contains(&rdev),
            None => is_hostd_device(rdev),
        }
    }
}

/// The device numbers of the CUSE devices named after the daemon's node that exist now, each
/// confirmed by its `/sys/dev/char` link.
fn hostd_devices_now() -> [u64; HOSTD_MAX] {
    let mut found = [0u64; HOSTD_MAX];
    let Ok(dir) = std::fs::read_dir(CUSE_CLASS) else {
        return found;
    };
    let devices = dir.filter_map(Result::ok).filter_map(|e| {
        let name = e.file_name();
        if !name.as_encoded_bytes().starts_with(HOSTD_CUSE_PREFIX) {
            return None;
        }
        let text = std::fs::read_to_string(e.path().join("dev")).ok()?;
        let (major, minor) = text.trim().split_once(':')?;
        let rdev = libc::makedev(major.parse().ok()?, minor.parse().ok()?);
        is_hostd_device(rdev).then_some(rdev)
    });
    for (slot, rdev) in found.iter_mut().zip(devices) {
        *slot = rdev;
    }
    found
}

/// The last device number found to be `mfiguard-hostd`'s (0: none yet): a call answered with
/// one `readlink` the first time, none after.
static HOSTD_RDEV: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether the character device `rdev` is `mfiguard-hostd`'s CUSE node: `/sys/dev/char/MAJ:MIN`
/// links to `.../cuse/megaraid_sas_ioctl_node...`. Allocation-free.
pub fn is_hostd_device(rdev: u64) -> bool {
    if rdev != 0 && HOSTD_RDEV.load(Ordering::Relaxed) == rdev {
        return true;
    }
    let found = sys_dev_char_target(rdev, hostd_link);
    if found {
        HOSTD_RDEV.store(rdev, Ordering::Relaxed);
    }
    found
}

/// Whether a `/sys/dev/char` link target names a CUSE device of the daemon's name:
/// `../../devices/virtual/cuse/megaraid_sas_ioctl_node` (the last two components).
pub fn hostd_link(target: &[u8]) -> bool {
    let mut parts = target.rsplit(|&b| b == b'/');
    let name = parts.next().unwrap_or_default();
    let class = parts.next().unwrap_or_default();
    class == b"cuse" && name.starts_with(HOSTD_CUSE_PREFIX)
}

/// Whether a `/sys/dev/char` link target names a CUSE device (of any name).
fn cuse_link(target: &[u8]) -> bool {
    let mut parts = target.rsplit(|&b| b == b'/');
    parts.next();
    parts.next() == Some(b"cuse")
}

/// The minors `register_chrdev` claims for a driver: 0..=255.
const DRIVER_MINORS: u32 = 256;

/// Reads the `/sys/dev/char/MAJ:MIN` link of `rdev` into a stack buffer and asks `each` about
/// it; false when there is none.
fn sys_dev_char_target(rdev: u64, each: impl FnOnce(&[u8]) -> bool) -> bool {
    use std::io::Write as _;
    let dev = rdev as libc::dev_t;
    let mut path = [0u8; 64];
    let mut w = &mut path[..];
    // "/sys/dev/char/4294967295:4294967295\0" fits in 64 bytes.
    if write!(
        w,
        "/sys/dev/char/{}:{}\0",
        libc::major(dev),
        libc::minor(dev)
    )
    .is_err()
    {
        return false;
    }
    let Ok(path) = std::ffi::CStr::from_bytes_until_nul(&path) else {
        return false;
    };
    let mut target = [0u8; 256];
    match sys::readlink(path, &mut target) {
        Ok(n) => target.get(..n).is_some_and(each),
        Err(_) => false,
    }
}

/// What a descriptor that received a MegaRAID request code is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A management node.
    Node(Node),
    /// Anything else: the device number of a character device, `None` for other files.
    Other(Option<u64>),
}

/// Which management node `fd` is, if any: the one recognition every guard asks (see the
/// module). `Err(errno)` when `fstat` fails (a bad descriptor).
pub fn management_node(fd: c_int, cfg: &Config, known: Known) -> Result<Target, c_int> {
    let kind = sys::fstat(fd)?;
    if !kind.is_char_device() {
        return Ok(Target::Other(None));
    }
    Ok(match classify(kind.rdev, cfg, known) {
        Some(node) => Target::Node(node),
        None => Target::Other(Some(kind.rdev)),
    })
}

/// [`management_node`] for a character device's number.
pub fn classify(rdev: u64, cfg: &Config, known: Known) -> Option<Node> {
    if cfg.device.as_ref().is_some_and(|(_, named)| *named == rdev) {
        return Some(Node::Driver);
    }
    if known.is_driver(rdev) {
        return Some(Node::Driver);
    }
    known.is_hostd(rdev).then_some(Node::Hostd)
}

/// Whether `fd` is a character device: the node check when the configuration (and so
/// `MFIGUARD_DEVICE`) is not known yet, in a signal handler that interrupted the guard while it
/// was reading it.
pub fn is_char_device(fd: c_int) -> Result<bool, c_int> {
    Ok(sys::fstat(fd)?.is_char_device())
}

/// Whether `fd` is a management node (the driver's or `mfiguard-hostd`'s), `/proc/devices`
/// read as it is now (the library's question); `Err(errno)` when `fstat` fails.
pub fn is_mgmt_node(fd: c_int, cfg: &Config) -> Result<bool, c_int> {
    Ok(matches!(
        management_node(fd, cfg, Known::live())?,
        Target::Node(_)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Character devices:\n  1 mem\n  4 /dev/vc/0\n  4 tty\n 10 misc\n\
                          128 ptm\n136 pts\n238 megaraid_sas_ioctl\n239 hidraw\n\n\
                          Block devices:\n  8 sd\n237 megaraid_sas_ioctl\n";

    /// Hands out the input a few bytes at a time, as a worst case for the line splitting.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn finds_the_character_major_only() {
        for step in [1, 3, 7, 256] {
            assert_eq!(
                find_major(Trickle(SAMPLE.as_bytes(), step)).unwrap(),
                Some(238)
            );
        }
        let block_only = "Character devices:\n  1 mem\n\nBlock devices:\n237 megaraid_sas_ioctl\n";
        assert_eq!(find_major(block_only.as_bytes()).unwrap(), None);
        let no_newline = "Character devices:\n251 megaraid_sas_ioctl";
        assert_eq!(find_major(no_newline.as_bytes()).unwrap(), Some(251));
        let lookalikes = "Character devices:\n240 megaraid_sas_ioctl_x\n241 megaraid_sas_ioctl extra\nx megaraid_sas_ioctl\n";
        assert_eq!(find_major(lookalikes.as_bytes()).unwrap(), None);
        let long = format!(
            "Character devices:\n{} x\n242 megaraid_sas_ioctl\n",
            "9".repeat(500)
        );
        assert_eq!(find_major(long.as_bytes()).unwrap(), Some(242));
    }

    #[test]
    fn a_reloaded_driver_with_a_new_major_is_noticed() {
        let dir = std::env::temp_dir().join(format!("mfiguard-devices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("devices");
        let path_str = path.to_str().unwrap();
        let devices = |major: u32| {
            std::fs::write(
                &path,
                format!(
                    "Character devices:\n  1 mem\n{major} megaraid_sas_ioctl\n\nBlock devices:\n"
                ),
            )
            .unwrap()
        };
        let cache = AtomicU32::new(0);
        devices(238);
        assert!(is_node_major(&cache, path_str, 238));
        assert_eq!(cache.load(Ordering::Relaxed), 238);
        // A match is answered from the cache: the file is not read again.
        devices(241);
        assert!(is_node_major(&cache, path_str, 238));
        // The driver came back as 241: a device of the new major is the node, found by reading
        // the file again, and the old major is no longer.
        assert!(is_node_major(&cache, path_str, 241));
        assert_eq!(cache.load(Ordering::Relaxed), 241);
        assert!(!is_node_major(&cache, path_str, 238));
        // Unloaded: the first mismatch reads the file again, and nothing stale stays cached
        // (a device of the old major has no driver to reach any more anyway).
        std::fs::write(&path, "Character devices:\n  1 mem\n").unwrap();
        assert!(!is_node_major(&cache, path_str, 10));
        assert_eq!(cache.load(Ordering::Relaxed), 0);
        assert!(!is_node_major(&cache, path_str, 241));
        // Loaded again: found.
        devices(250);
        assert!(is_node_major(&cache, path_str, 250));
        // A file that cannot be read guards every candidate (one call too many, never none).
        std::fs::remove_file(&path).unwrap();
        assert!(is_node_major(&cache, path_str, 7));
        assert!(is_node_major(&cache, path_str, 250));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cut_lines_keep_their_head() {
        let text = format!("adm:x:4:{}\nshort\n", "m,".repeat(100));
        let mut seen = Vec::new();
        let r: Option<()> = scan_lines(Trickle(text.as_bytes(), 5), |l, cut| {
            seen.push((l.len(), cut));
            None
        })
        .unwrap();
        assert!(r.is_none());
        assert_eq!(seen, [(96, true), (5, false), (0, false)]);
    }

    #[test]
    fn the_daemons_cuse_device_is_recognised_by_its_sysfs_link() {
        assert!(hostd_link(
            b"../../devices/virtual/cuse/megaraid_sas_ioctl_node"
        ));
        // A fresh name after a restart.
        assert!(hostd_link(
            b"../../devices/virtual/cuse/megaraid_sas_ioctl_node.2"
        ));
        // Another CUSE device, or the name under another class (a misc device, a tty).
        assert!(!hostd_link(b"../../devices/virtual/cuse/fuse_osspd"));
        assert!(!hostd_link(
            b"../../devices/virtual/misc/megaraid_sas_ioctl_node"
        ));
        assert!(!hostd_link(b"megaraid_sas_ioctl_node"));
        assert!(!hostd_link(b""));
        // On this machine (no cuse.ko): /dev/null is a misc device, not the daemon's.
        use std::os::unix::fs::MetadataExt;
        let null = std::fs::metadata("/dev/null").unwrap().rdev();
        assert!(sys_dev_char_target(null, |t| t.ends_with(b"/mem/null")));
        assert!(!is_hostd_device(null));
        assert!(!is_hostd_device(0));
    }

    /// A CUSE server may register the driver's major past the driver's 256 minors, or any
    /// device when `/proc/devices` cannot be read: neither is taken for the driver's node.
    #[test]
    fn a_cuse_device_or_a_minor_past_the_drivers_is_not_the_driver() {
        let cfg = Config::FALLBACK;
        let known = Known::fixed(1);
        assert_eq!(
            classify(libc::makedev(1, 255), &cfg, known),
            Some(Node::Driver)
        );
        assert_eq!(classify(libc::makedev(1, 256), &cfg, known), None);
        assert_eq!(classify(libc::makedev(1, 1 << 19), &cfg, known), None);
        assert!(cuse_link(b"../../devices/virtual/cuse/anything"));
        assert!(cuse_link(
            b"../../devices/virtual/cuse/megaraid_sas_ioctl_node"
        ));
        assert!(!cuse_link(b"../../devices/virtual/mem/null"));
        assert!(!cuse_link(b"cuse"));
        assert!(!cuse_link(b""));
    }

    #[test]
    fn a_major_read_before_the_start_is_kept() {
        use std::os::unix::fs::MetadataExt;
        let null = std::fs::metadata("/dev/null").unwrap().rdev();
        let major = libc::major(null as libc::dev_t);
        let cfg = Config::FALLBACK;
        assert_eq!(
            classify(null, &cfg, Known::fixed(major)),
            Some(Node::Driver)
        );
        assert_eq!(classify(null, &cfg, Known::fixed(major + 1)), None);
        // A daemon's device counts only if it existed before the start.
        let before = Known {
            driver: Some(major + 1),
            hostd: Some([null, 0, 0, 0]),
            outside: true,
        };
        assert_eq!(classify(null, &cfg, before), Some(Node::Hostd));
        // Taken now (no cuse here): no daemon, whatever sysfs will say later.
        assert_eq!(Known::before_start().hostd, Some([0; HOSTD_MAX]));
    }

    #[test]
    fn this_machine_reads() {
        // The driver is not loaded here; the file is readable.
        assert_ne!(node_major(), NodeMajor::Unreadable);
    }

    #[test]
    fn dev_null_is_the_node_only_when_named() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let null = File::open("/dev/null").unwrap();
        let rdev = null.metadata().unwrap().rdev();
        let named = Config {
            device: Some(("/dev/null".into(), rdev)),
            ..Config::FALLBACK
        };
        assert_eq!(is_mgmt_node(null.as_raw_fd(), &named), Ok(true));
        if node_major() == NodeMajor::NotListed {
            assert_eq!(is_mgmt_node(null.as_raw_fd(), &Config::FALLBACK), Ok(false));
        }
        let dir = File::open("/").unwrap();
        assert_eq!(is_mgmt_node(dir.as_raw_fd(), &named), Ok(false));
        assert_eq!(is_mgmt_node(-1, &named), Err(libc::EBADF));
    }
}
