//! Is this descriptor the MegaRAID management node?
//!
//! A character device whose major is the `megaraid_sas_ioctl` line of `/proc/devices`, or whose
//! device number is that of the `MFIGUARD_DEVICE` path. Other drivers use the `'M'` ioctl type
//! too, so the request code alone is not enough.
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

/// Whether `fd` is a character device: the node check when the configuration (and so
/// `MFIGUARD_DEVICE`) is not known yet, in a signal handler that interrupted the guard while it
/// was reading it.
pub fn is_char_device(fd: c_int) -> Result<bool, c_int> {
    Ok(sys::fstat(fd)?.is_char_device())
}

/// Whether `fd` is the management node; `Err(errno)` when `fstat` fails (a bad descriptor).
pub fn is_mgmt_node(fd: c_int, cfg: &Config) -> Result<bool, c_int> {
    let kind = sys::fstat(fd)?;
    if !kind.is_char_device() {
        return Ok(false);
    }
    if let Some((_, rdev)) = cfg.device {
        if kind.rdev == rdev {
            return Ok(true);
        }
    }
    let major = libc::major(kind.rdev as libc::dev_t);
    Ok(is_node_major(&MAJOR, PROC_DEVICES, major))
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
