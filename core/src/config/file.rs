//! The config file: which one, read only if it is a small regular file nobody else can change,
//! one `key = value` a line.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use super::policy::{parse_header, Written};
use super::values::{closest, file_keys, or_list};
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

/// The keys only the file may set, before its first section (the policy's own settings: no
/// environment variable or option may loosen the policy).
pub const POLICY_KEYS: [&str; 2] = ["lowest_mode", "preview"];

/// The keys a `[...]` section may set.
pub const SECTION_KEYS: [&str; 3] = ["mode", "allow", "lowest_mode"];

/// A `[...]` section as written: its header and its keys' texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSection {
    /// The header's inside, trimmed (`user nagios`).
    pub header: String,
    /// The header's line.
    pub origin: Origin,
    /// The criteria read from the header.
    pub written: Vec<Written>,
    /// For each of [`SECTION_KEYS`] (same order), its text and line.
    pub values: [Option<(String, Origin)>; SECTION_KEYS.len()],
}

impl RawSection {
    /// The text of `key` (one of [`SECTION_KEYS`]) and its line.
    pub fn get(&self, key: &str) -> Option<&(String, Origin)> {
        let i = SECTION_KEYS.iter().position(|k| *k == key)?;
        self.values.get(i)?.as_ref()
    }
}

/// What the file says: its settings before the first section, the policy's own keys, and the
/// sections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileParts {
    /// For each of [`KEYS`] (same order), the file's text and line.
    pub values: [Option<(String, Origin)>; KEYS.len()],
    /// For each of [`POLICY_KEYS`], the file's text and line.
    pub policy: [Option<(String, Origin)>; POLICY_KEYS.len()],
    /// The sections, in file order (those whose header could be read).
    pub sections: Vec<RawSection>,
}

impl FileParts {
    /// The file's text of one of [`KEYS`] or [`POLICY_KEYS`] (by its file name: `mode`,
    /// `preview`) before the first section.
    pub fn get(&self, key: &str) -> Option<&(String, Origin)> {
        if let Some(i) = POLICY_KEYS.iter().position(|k| *k == key) {
            return self.policy.get(i)?.as_ref();
        }
        let env = format!("MFIGUARD_{}", key.to_ascii_uppercase());
        let i = KEYS.iter().position(|k| *k == env)?;
        self.values.get(i)?.as_ref()
    }
}

/// A key as written in the file, without the `MFIGUARD_` prefix, in lower case.
fn bare_key(written: &str) -> String {
    let lower = written.trim().to_ascii_lowercase();
    lower
        .strip_prefix("mfiguard_")
        .map(String::from)
        .unwrap_or(lower)
}

pub(super) fn parse_file(
    path: &str,
    text: &str,
    out: &mut FileParts,
    errors: &mut Vec<ConfigError>,
) {
    let keys = file_keys();
    let mut all_keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    all_keys.extend(POLICY_KEYS);
    // The section being read: `Some(None)` after a header that could not be read (its lines
    // are skipped; the header's error already forces mode readonly).
    let mut section: Option<Option<usize>> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = Origin::File {
            path: path.to_string(),
            line: n.saturating_add(1),
        };
        if let Some(rest) = line.strip_prefix('[') {
            let rest = file_value(rest);
            let parsed = match rest.strip_suffix(']') {
                Some(inside) => parse_header(inside).map(|w| (inside.trim(), w)),
                None => Err("a section header ends with ']'".to_string()),
            };
            match parsed {
                Ok((inside, written)) => {
                    out.sections.push(RawSection {
                        header: inside.to_string(),
                        origin,
                        written,
                        values: Default::default(),
                    });
                    section = Some(Some(out.sections.len().saturating_sub(1)));
                }
                Err(why) => {
                    errors.push(ConfigError {
                        key: "MFIGUARD_CONFIG".into(),
                        value: line.to_string(),
                        message: format!("{origin}: {line}: {why}; using mode readonly"),
                        kind: ErrorKind::BadLine,
                        summary: format!("{origin}: \"{line}\": {why}"),
                        origin: Some(origin),
                    });
                    section = Some(None);
                }
            }
            continue;
        }
        let Some((written, value)) = line.split_once('=') else {
            let valid = closest(line.split_whitespace().next().unwrap_or(""), &all_keys).join(", ");
            errors.push(ConfigError {
                key: "MFIGUARD_CONFIG".into(),
                value: line.to_string(),
                message: format!("{origin}: not a `key = value` line; using mode readonly"),
                kind: ErrorKind::BadLine,
                summary: format!(
                    "{origin}: \"{line}\" is not a \"key = value\" line (or a [section]); valid keys: {valid}"
                ),
                origin: Some(origin),
            });
            continue;
        };
        let written = written.trim();
        let bare = bare_key(written);
        let value = file_value(value);
        match section {
            Some(None) => {}
            Some(Some(i)) => {
                let slot = SECTION_KEYS
                    .iter()
                    .position(|k| *k == bare)
                    .and_then(|k| out.sections.get_mut(i)?.values.get_mut(k));
                match slot {
                    Some(slot) => *slot = Some((value.to_string(), origin)),
                    None => {
                        let header = out.sections.get(i).map_or("", |s| s.header.as_str());
                        let known = all_keys.contains(&bare.as_str());
                        let why = if known {
                            format!("'{written}' applies to the whole host, not to [{header}]: put it before the first section; a section takes {}", or_list(&SECTION_KEYS))
                        } else {
                            format!(
                                "unknown key '{written}' in [{header}]; a section takes {}",
                                or_list(&closest(&bare, &SECTION_KEYS))
                            )
                        };
                        errors.push(ConfigError {
                            key: written.to_string(),
                            value: value.to_string(),
                            message: format!("{origin}: {why}; using mode readonly"),
                            kind: if known {
                                ErrorKind::BadLine
                            } else {
                                ErrorKind::UnknownKey
                            },
                            summary: format!("{written}=\"{value}\" (from {origin}): {why}"),
                            origin: Some(origin),
                        });
                    }
                }
            }
            None => {
                let env = format!("MFIGUARD_{}", bare.to_ascii_uppercase());
                if let Some(i) = KEYS.iter().position(|k| *k == env) {
                    if let Some(slot) = out.values.get_mut(i) {
                        *slot = Some((value.to_string(), origin));
                    }
                } else if let Some(i) = POLICY_KEYS.iter().position(|k| *k == bare) {
                    if let Some(slot) = out.policy.get_mut(i) {
                        *slot = Some((value.to_string(), origin));
                    }
                } else {
                    let valid = closest(&bare, &all_keys).join(", ");
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
                        origin: Some(origin),
                    });
                }
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
