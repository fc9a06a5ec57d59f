//! Is this descriptor the MegaRAID management node?
//!
//! A character device whose major is the `megaraid_sas_ioctl` line of `/proc/devices`, or whose
//! device number is that of the `MFIGUARD_DEVICE` path. Other drivers use the `'M'` ioctl type
//! too, so the request code alone is not enough.
//!
//! `/proc/devices` is read without allocating (a small stack buffer, line by line), so the check
//! also works from a signal handler. A found major is cached; "not listed" is not, since the
//! driver may be loaded after a long-running host started. If `/proc/devices` cannot be read
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
pub fn find_major(mut input: impl Read) -> std::io::Result<Option<u32>> {
    let mut chunk = [0u8; 256];
    let mut line = [0u8; 96];
    let mut len = 0usize;
    let mut overlong = false;
    let mut in_char = false;
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
            if !overlong {
                if let Some(major) = parse_line(text, &mut in_char) {
                    return Ok(Some(major));
                }
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
    match MAJOR.load(Ordering::Relaxed) {
        0 => {}
        cached => return NodeMajor::Listed(cached),
    }
    let Ok(file) = File::open(PROC_DEVICES) else {
        return NodeMajor::Unreadable;
    };
    match find_major(file) {
        Ok(Some(major)) if major != 0 => {
            MAJOR.store(major, Ordering::Relaxed);
            NodeMajor::Listed(major)
        }
        Ok(_) => NodeMajor::NotListed,
        Err(_) => NodeMajor::Unreadable,
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
    Ok(match node_major() {
        NodeMajor::Listed(major) => libc::major(kind.rdev as libc::dev_t) == major,
        NodeMajor::NotListed => false,
        NodeMajor::Unreadable => true,
    })
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
