//! The config file: which one, read only if it is a small regular file nobody else can change,
//! one `key = value` a line.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use super::values::{closest, file_keys};
use super::{ConfigError, ErrorKind, Origin, CONFIG_MAX, DEFAULT_CONFIG_PATH, KEYS};

/// Where the file part of the configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSource {
    /// No file (the default path does not exist).
    Absent,
    /// The file's text.
    Text {
        /// Its path.
        path: String,
        /// Its contents.
        text: String,
    },
    /// The file exists (or was named explicitly) but could not be read, or was refused.
    Unreadable {
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The `MFIGUARD_*` variables of an environment, each as text or, when it is not UTF-8, as
/// `Err(lossy text)`.
pub type Env = [(String, Result<String, String>)];

/// A file line's value (what follows the first `=`): one pair of surrounding quotes removed,
/// and a trailing comment, a `#` after a blank outside the quotes, cut off. `#` elsewhere is
/// part of the value (`log = /var/log/a#b.jsonl`).
pub(super) fn file_value(raw: &str) -> &str {
    let v = raw.trim();
    for q in ['"', '\''] {
        if let Some((inner, rest)) = v.strip_prefix(q).and_then(|s| s.split_once(q)) {
            let rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                return inner;
            }
        }
    }
    let cut = raw
        .char_indices()
        .find(|&(i, c)| c == '#' && raw[..i].ends_with([' ', '\t']))
        .map_or(raw.len(), |(i, _)| i);
    raw[..cut].trim()
}

pub(super) fn parse_file(
    path: &str,
    text: &str,
    values: &mut [Option<(String, Origin)>; KEYS.len()],
    errors: &mut Vec<ConfigError>,
) {
    let keys = file_keys();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = Origin::File {
            path: path.to_string(),
            line: n.saturating_add(1),
        };
        let Some((written, value)) = line.split_once('=') else {
            let valid = closest(line.split_whitespace().next().unwrap_or(""), &keys).join(", ");
            errors.push(ConfigError {
                key: "MFIGUARD_CONFIG".into(),
                value: line.to_string(),
                message: format!("{origin}: not a `key = value` line; using mode readonly"),
                kind: ErrorKind::BadLine,
                summary: format!(
                    "{origin}: \"{line}\" is not a \"key = value\" line; valid keys: {valid}"
                ),
            });
            continue;
        };
        let written = written.trim();
        let upper = written.to_ascii_uppercase();
        let key = if upper.starts_with("MFIGUARD_") {
            upper
        } else {
            format!("MFIGUARD_{upper}")
        };
        let value = file_value(value);
        match KEYS.iter().position(|k| *k == key) {
            Some(i) => {
                if let Some(slot) = values.get_mut(i) {
                    *slot = Some((value.to_string(), origin));
                }
            }
            None => {
                let bare = key.trim_start_matches("MFIGUARD_").to_ascii_lowercase();
                let valid = closest(&bare, &keys).join(", ");
                errors.push(ConfigError {
                    key: written.to_string(),
                    value: value.to_string(),
                    message: format!(
                        "unknown key at {origin} (valid keys: {valid}); using mode readonly"
                    ),
                    kind: ErrorKind::UnknownKey,
                    summary: format!(
                        "{written}=\"{value}\" (from {origin}): unknown key; valid keys: {valid}"
                    ),
                });
            }
        }
    }
}

/// The config file's path for an environment: `MFIGUARD_CONFIG` if set and not empty (then
/// `true`: named explicitly), else [`DEFAULT_CONFIG_PATH`].
pub fn config_path(env: &Env) -> (String, bool) {
    match env.iter().find(|(k, _)| k == "MFIGUARD_CONFIG") {
        Some((_, Ok(p))) if !p.is_empty() => (p.clone(), true),
        Some((_, Err(lossy))) => (lossy.clone(), true),
        _ => (DEFAULT_CONFIG_PATH.to_string(), false),
    }
}

/// Reads the config file at `path` by the rules in this module's documentation. A missing
/// file is [`FileSource::Absent`] unless it was named explicitly.
pub fn read_file(path: &str, explicit: bool) -> FileSource {
    let unreadable = |reason: String| FileSource::Unreadable {
        path: path.to_string(),
        reason,
    };
    // O_NONBLOCK: opening a FIFO with no writer must not wait. std adds O_CLOEXEC.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return FileSource::Absent
        }
        Err(e) => return unreadable(e.to_string()),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return unreadable(format!("cannot fstat it: {e}")),
    };
    let ft = meta.file_type();
    if ft.is_char_device() && Some(meta.rdev()) == null_device() {
        return FileSource::Text {
            path: path.to_string(),
            text: String::new(),
        };
    }
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return unreadable(format!("{what}, not a regular file"));
    }
    if meta.len() > CONFIG_MAX {
        return unreadable(format!(
            "{} bytes, more than the {CONFIG_MAX} a config file may have",
            meta.len()
        ));
    }
    let me = crate::sys::uid();
    if meta.uid() != 0 && meta.uid() != me {
        return unreadable(format!(
            "owned by uid {}, neither root nor uid {me}",
            meta.uid()
        ));
    }
    let mode = meta.mode();
    if mode & 0o002 != 0 {
        return unreadable(format!("writable by others (mode {:04o})", mode & 0o7777));
    }
    if mode & 0o020 != 0 && meta.gid() != 0 {
        return unreadable(format!(
            "writable by its group gid {} (mode {:04o})",
            meta.gid(),
            mode & 0o7777
        ));
    }
    // The size was checked on the open file; a file growing meanwhile is cut off and refused.
    let mut bytes = Vec::new();
    if let Err(e) = file
        .take(CONFIG_MAX.saturating_add(1))
        .read_to_end(&mut bytes)
    {
        return unreadable(e.to_string());
    }
    if bytes.len() as u64 > CONFIG_MAX {
        return unreadable(format!(
            "more than the {CONFIG_MAX} bytes a config file may have"
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => FileSource::Text {
            path: path.to_string(),
            text,
        },
        Err(_) => unreadable("not valid UTF-8".into()),
    }
}

/// The device number of `/dev/null`.
fn null_device() -> Option<u64> {
    std::fs::metadata("/dev/null")
        .ok()
        .filter(|m| m.file_type().is_char_device())
        .map(|m| m.rdev())
}
