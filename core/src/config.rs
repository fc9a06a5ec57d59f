//! Configuration: each setting from the environment, else from `/etc/mfiguard.conf` (or the
//! file `MFIGUARD_CONFIG` names), else its default. Read once, before the first guarded call.
//! The library (`libmfiguard.so`) and the wrapper (`mfiguard-run`) both read it with this code:
//! [`collect`] gathers each setting's text and where it came from, the wrapper lays its
//! command-line options over that, and [`decide`] turns it into a [`Config`].
//!
//! A value that cannot be understood never weakens the guard: it falls back to the stricter
//! choice (enforce, no rule allowed, more records, synchronous and required logging) and leaves
//! an error record, written through the configured sink once the configuration is complete.
//! The wrapper, which can refuse, refuses a run with any such error instead (exit 125).
//!
//! - **Keys** are the variable names, with or without the `MFIGUARD_` prefix, in any case. An
//!   unknown key (a file line, or an `MFIGUARD_*` variable that is neither a setting nor one of
//!   [`NOT_SETTINGS`]), a file line that is not `key = value`, and a config file that cannot be
//!   used force mode `readonly`, the strictest: the guard cannot tell which setting was meant
//!   (`moed = audit` and `mode readonly` must not leave a monitoring host in enforce).
//! - **Values** are trimmed and read in any case (`Readonly`, `READONLY`, `readonly` are one
//!   mode; `SYSLOG` is syslog; rule ids and booleans alike); only paths (`log`, `device`) and
//!   the `debug` filter keep their case.
//! - **The file** has one `key = value` per line; `#` starts a comment line, and a `#` after a
//!   blank starts a trailing comment outside quotes; a value may be quoted; the last occurrence
//!   wins. A variable set in the environment wins over the file even when it is empty.
//! - **The file itself** is opened with `O_NONBLOCK|O_CLOEXEC` and `fstat`ed: only a regular
//!   file of at most [`CONFIG_MAX`] bytes, owned by root or the caller (real uid), not writable
//!   by others, and not writable by its group unless that group is root's (gid 0), is read.
//!   The null device reads as an empty file. Anything else (a FIFO, `/dev/stdin`, `/dev/zero`, a
//!   larger file, a file someone else could change) is a file that cannot be used.

use std::ffi::CString;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use mfiguard_sanitizer::{Mode, Policy, RuleSet};

use crate::sys::Published;

/// The file read when `MFIGUARD_CONFIG` is not set.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mfiguard.conf";

/// Every setting, by its environment name.
pub const KEYS: [&str; 8] = [
    "MFIGUARD_MODE",
    "MFIGUARD_LOG",
    "MFIGUARD_AUDIT",
    "MFIGUARD_ALLOW",
    "MFIGUARD_DEBUG",
    "MFIGUARD_LOG_SYNC",
    "MFIGUARD_DEVICE",
    "MFIGUARD_LOG_REQUIRED",
];

/// `MFIGUARD_*` variables that are not settings but may legitimately be in a guarded process's
/// environment: neither read as settings nor refused as unknown.
pub const NOT_SETTINGS: [&str; 14] = [
    // The config file's path (read here).
    "MFIGUARD_CONFIG",
    // mfiguard-run: the directories of the 64-bit and the 32-bit library.
    "MFIGUARD_LIB_DIR",
    "MFIGUARD_LIB32_DIR",
    // mfiguard-run: which mechanism guards the tool (--via).
    "MFIGUARD_VIA",
    // mfiguard-run --check: judge this kernel release instead of the running one.
    "MFIGUARD_KERNEL_RELEASE",
    // The integrations (check_mfiguard, mfiguard-textfile): which mfiguard-run to call.
    "MFIGUARD_RUN",
    // The integrations (find-raid-tool): the RAID tool, instead of searching for one.
    "MFIGUARD_RAID_TOOL",
    // The test suite (tests/common, tests/wrapper.rs).
    "MFIGUARD_TEST_LIB",
    "MFIGUARD_TEST_TARGET",
    "MFIGUARD_TEST_TARGET_DIR",
    "MFIGUARD_TEST_WRAPPER",
    // The supervisor's tests: do without SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV; take the
    // tool's descriptors through /proc (ptrace, as before Linux 5.6); believe there is no
    // user notification (--via auto).
    "MFIGUARD_TEST_NO_KILLABLE",
    "MFIGUARD_TEST_NO_PIDFD_GETFD",
    "MFIGUARD_TEST_NO_USER_NOTIF",
];

/// The largest config file read, in bytes.
pub const CONFIG_MAX: u64 = 64 * 1024;

/// The modes, in the order messages list them when nothing is closer.
pub const MODES: [&str; 4] = ["enforce", "readonly", "audit", "off"];
/// The log targets that are not paths.
pub const LOG_WORDS: [&str; 3] = ["syslog", "stderr", "none"];
/// The audit levels.
pub const AUDIT_LEVELS: [&str; 2] = ["findings", "all"];
/// The spellings of a boolean: true, then false.
pub const BOOLEANS: [&str; 8] = ["1", "0", "true", "false", "yes", "no", "on", "off"];

/// What the guard does with MegaRAID calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardMode {
    /// Rewrite and reject (the default).
    Enforce,
    /// Change nothing, record what enforce would have done.
    Audit,
    /// Pass everything through, record nothing.
    Off,
    /// Enforce plus the read-only allowlist of issue 8.
    Readonly,
}

impl GuardMode {
    /// The name used in configuration and records.
    pub const fn name(self) -> &'static str {
        match self {
            GuardMode::Enforce => "enforce",
            GuardMode::Audit => "audit",
            GuardMode::Off => "off",
            GuardMode::Readonly => "readonly",
        }
    }
}

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// The local syslog socket, facility `authpriv`, tag `mfiguard`.
    Syslog,
    /// One readable line per record on the process's stderr.
    Stderr,
    /// JSON lines appended to this absolute path.
    File(CString),
    /// Nowhere.
    None,
}

impl LogTarget {
    /// How the target is named in configuration and messages.
    pub fn describe(&self) -> &str {
        match self {
            LogTarget::Syslog => "syslog",
            LogTarget::Stderr => "stderr",
            LogTarget::File(path) => path.to_str().unwrap_or("<file>"),
            LogTarget::None => "none",
        }
    }
}

/// Which calls are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditLevel {
    /// Calls with at least one finding (any action, warnings included), refusals and errors.
    Findings,
    /// Every guarded call.
    All,
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The process's environment (the variable named by the setting).
    Env,
    /// Line `line` (from 1) of the config file at `path`.
    File {
        /// The file's path.
        path: String,
        /// The line number.
        line: usize,
    },
    /// A command-line option of `mfiguard-run` (`--mode`, ...).
    Option(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env => f.write_str("the environment"),
            Origin::File { path, line } => write!(f, "{path}:{line}"),
            Origin::Option(name) => f.write_str(name),
        }
    }
}

/// What kind of problem a [`ConfigError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A known setting with a value that cannot be used: its stricter choice is used.
    Value,
    /// An unknown key (file) or `MFIGUARD_*` variable (environment): mode readonly.
    UnknownKey,
    /// A file line that is not `key = value`: mode readonly.
    BadLine,
    /// A config file that cannot be read or is refused: mode readonly.
    File,
    /// Settings that work but make no sense together (nothing is changed; not a refusal).
    Note,
}

impl ErrorKind {
    /// Whether this problem forces mode readonly.
    pub const fn forces_readonly(self) -> bool {
        matches!(
            self,
            ErrorKind::UnknownKey | ErrorKind::BadLine | ErrorKind::File
        )
    }
}

/// A setting that could not be used as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting (`MFIGUARD_MODE`, ...), an unknown key as written, or `MFIGUARD_CONFIG` for
    /// the file itself and for a line that is not `key = value`.
    pub key: String,
    /// The value as given (lossily decoded); the line for a bad line, the path for the file.
    pub value: String,
    /// What was wrong and what is used instead (the library's error record).
    pub message: String,
    /// What kind of problem it is.
    pub kind: ErrorKind,
    /// One line for people: where, the key, the value, what is wrong and what is valid
    /// (closest first). `mfiguard-run` prints it when it refuses a run.
    pub summary: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.key, self.value, self.message)
    }
}

/// `candidates` ordered by edit distance to `input` (case-insensitive, trimmed), the closest
/// first; equally close ones keep their order.
pub fn closest<'a>(input: &str, candidates: &[&'a str]) -> Vec<&'a str> {
    let input = input.trim().to_ascii_lowercase();
    let mut ranked: Vec<(usize, &'a str)> = candidates
        .iter()
        .map(|c| (edit_distance(&input, &c.to_ascii_lowercase()), *c))
        .collect();
    ranked.sort_by_key(|(d, _)| *d);
    ranked.into_iter().map(|(_, c)| c).collect()
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(prev.len());
        cur.push(i.saturating_add(1));
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j].saturating_add(usize::from(ca != *cb));
            let delete = prev[j.saturating_add(1)].saturating_add(1);
            let insert = cur[j].saturating_add(1);
            cur.push(substitute.min(delete).min(insert));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// "a, b, c or d".
pub fn or_list(items: &[&str]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The file keys (`mode`, `log`, ...), in the order of [`KEYS`].
pub fn file_keys() -> Vec<String> {
    KEYS.iter()
        .map(|k| k.trim_start_matches("MFIGUARD_").to_ascii_lowercase())
        .collect()
}

/// A value's mode, if it names one.
pub fn parse_mode(v: &str) -> Option<GuardMode> {
    match v.trim().to_ascii_lowercase().as_str() {
        "enforce" => Some(GuardMode::Enforce),
        "audit" => Some(GuardMode::Audit),
        "off" => Some(GuardMode::Off),
        "readonly" => Some(GuardMode::Readonly),
        _ => None,
    }
}

/// What is wrong with a mode, and the valid ones, closest first.
pub fn mode_problem(v: &str) -> String {
    format!("unknown mode; use {}", or_list(&closest(v, &MODES)))
}

/// A value's log target, or what is wrong with it.
pub fn parse_log(v: &str) -> Result<LogTarget, String> {
    let v = v.trim();
    match v.to_ascii_lowercase().as_str() {
        "syslog" => Ok(LogTarget::Syslog),
        "stderr" => Ok(LogTarget::Stderr),
        "none" => Ok(LogTarget::None),
        _ if v.starts_with('/') => CString::new(v)
            .map(LogTarget::File)
            .map_err(|_| "the path contains NUL".into()),
        _ => {
            let mut valid = closest(v, &LOG_WORDS);
            valid.push("an absolute path");
            Err(format!("not a log target; use {}", or_list(&valid)))
        }
    }
}

/// A value's audit level, if it names one.
pub fn parse_audit(v: &str) -> Option<AuditLevel> {
    match v.trim().to_ascii_lowercase().as_str() {
        "findings" => Some(AuditLevel::Findings),
        "all" => Some(AuditLevel::All),
        _ => None,
    }
}

/// What is wrong with an audit level.
pub fn audit_problem(v: &str) -> String {
    format!(
        "unknown audit level; use {}",
        or_list(&closest(v, &AUDIT_LEVELS))
    )
}

/// A comma-separated list of rule ids (blanks and empty items ignored, any case), or what is
/// wrong with it: the first unknown id and the known ones, closest first.
pub fn parse_allow(v: &str) -> Result<RuleSet, String> {
    let lower = v.to_ascii_lowercase();
    RuleSet::parse(&lower).map_err(|unknown| {
        let names: Vec<&str> = mfiguard_sanitizer::RULES.iter().map(|r| r.name).collect();
        format!(
            "unknown rule id '{}' (one unknown id voids the whole list); known: {}",
            unknown.0,
            closest(unknown.0, &names).join(", ")
        )
    })
}

/// A boolean value (an empty one is false), if it is one.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// What is wrong with a boolean.
pub fn bool_problem(v: &str) -> String {
    format!("not a boolean; use {}", or_list(&closest(v, &BOOLEANS)))
}

/// The configuration in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `MFIGUARD_MODE`.
    pub mode: GuardMode,
    /// `MFIGUARD_LOG`.
    pub log: LogTarget,
    /// `MFIGUARD_AUDIT`.
    pub audit: AuditLevel,
    /// `MFIGUARD_ALLOW`.
    pub allow: RuleSet,
    /// `MFIGUARD_DEBUG`: an env_logger filter for the library's own diagnostics.
    pub debug: Option<String>,
    /// `MFIGUARD_LOG_SYNC`: fdatasync each file record.
    pub log_sync: bool,
    /// `MFIGUARD_DEVICE`: the path, and the device number of the node it names.
    pub device: Option<(String, u64)>,
    /// `MFIGUARD_LOG_REQUIRED`: fail MegaRAID calls closed when a record cannot be written.
    pub log_required: bool,
    /// Settings that could not be used, reported once through the sink.
    pub errors: Vec<ConfigError>,
    /// `/proc/self/exe`, for records (at most [`EXE_MAX`] bytes).
    pub exe: String,
}

/// Longest `exe` kept for records: bounds a record's size (see `audit.rs`).
pub const EXE_MAX: usize = 256;

impl Config {
    /// The configuration used by a call that arrives while the configuration is still being
    /// read on the same thread (a signal handler), or when reading it failed: all defaults,
    /// records to stderr (the only sink usable from any context).
    pub const FALLBACK: Config = Config {
        mode: GuardMode::Enforce,
        log: LogTarget::Stderr,
        audit: AuditLevel::Findings,
        allow: RuleSet::EMPTY,
        debug: None,
        log_sync: false,
        device: None,
        log_required: false,
        errors: Vec::new(),
        exe: String::new(),
    };

    /// The sanitizer's policy for this configuration.
    pub fn policy(&self) -> Policy {
        let mode = match self.mode {
            GuardMode::Audit => Mode::Audit,
            GuardMode::Enforce | GuardMode::Off | GuardMode::Readonly => Mode::Enforce,
        };
        Policy {
            mode,
            // Read-only is enforce plus the allowlist of reading commands (EPERM otherwise).
            readonly: self.mode == GuardMode::Readonly,
            allow: self.allow,
        }
    }

    /// Whether the guard acts on its verdicts.
    pub fn enforcing(&self) -> bool {
        matches!(self.mode, GuardMode::Enforce | GuardMode::Readonly)
    }
}

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

/// Stands for an environment value that is not UTF-8: no setting accepts it, so each falls back
/// to its stricter choice.
const INVALID: &str = "\0";

/// Device numbers of paths, for `MFIGUARD_DEVICE`: `Ok(st_rdev)` for a character device.
pub type DeviceLookup<'a> = &'a dyn Fn(&str) -> Result<u64, String>;

/// Each setting's text and where it came from, before it is interpreted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources {
    /// For each of [`KEYS`] (same order), the text that applies and where it came from.
    pub values: [Option<(String, Origin)>; KEYS.len()],
    /// What was wrong with the file, its lines and the environment's names.
    pub errors: Vec<ConfigError>,
}

impl Sources {
    /// The text of setting `key` (`MFIGUARD_MODE`, ...) and its origin, if any source set it.
    pub fn get(&self, key: &str) -> Option<&(String, Origin)> {
        let i = KEYS.iter().position(|k| *k == key)?;
        self.values.get(i)?.as_ref()
    }

    /// Sets `key` (one of [`KEYS`]) from a higher-priority source (a command-line option).
    pub fn set(&mut self, key: &str, value: String, origin: Origin) {
        if let Some(slot) = KEYS
            .iter()
            .position(|k| *k == key)
            .and_then(|i| self.values.get_mut(i))
        {
            *slot = Some((value, origin));
        }
    }
}

/// Gathers each setting from the environment (`env`: its `MFIGUARD_*` variables) and `file`,
/// and what is wrong with their names and lines. The environment wins, even when empty; in the
/// file the last occurrence wins.
pub fn collect(env: &Env, file: &FileSource) -> Sources {
    let mut errors = Vec::new();
    let mut values: [Option<(String, Origin)>; KEYS.len()] = Default::default();
    match file {
        FileSource::Absent => {}
        FileSource::Unreadable { path, reason } => errors.push(ConfigError {
            key: "MFIGUARD_CONFIG".into(),
            value: path.clone(),
            message: format!(
                "cannot use the config file {path} ({reason}); using mode readonly"
            ),
            kind: ErrorKind::File,
            summary: format!(
                "{path}: cannot read this config file as uid {}: {reason}: the site policy in it would not apply",
                crate::sys::uid()
            ),
        }),
        FileSource::Text { path, text } => parse_file(path, text, &mut values, &mut errors),
    }
    for (name, value) in env {
        if let Some(i) = KEYS.iter().position(|k| k == name) {
            let text = match value {
                Ok(v) => v.clone(),
                Err(lossy) => {
                    errors.push(ConfigError {
                        key: name.clone(),
                        value: lossy.clone(),
                        message: "not valid UTF-8; treated as an invalid value".into(),
                        kind: ErrorKind::Value,
                        summary: format!(
                            "{name}={lossy:?} (from the environment): not valid UTF-8"
                        ),
                    });
                    INVALID.into()
                }
            };
            if let Some(slot) = values.get_mut(i) {
                *slot = Some((text, Origin::Env));
            }
        } else if name.starts_with("MFIGUARD_") && !NOT_SETTINGS.contains(&name.as_str()) {
            let value = match value {
                Ok(v) | Err(v) => v.clone(),
            };
            let mut valid = closest(name, &KEYS);
            // The settings, and the variables a user sets that are not (not the test hooks).
            valid.extend(&NOT_SETTINGS[..3]);
            let valid = valid.join(", ");
            errors.push(ConfigError {
                key: name.clone(),
                value: value.clone(),
                message: format!(
                    "unknown MFIGUARD_ variable (valid: {valid}); using mode readonly"
                ),
                kind: ErrorKind::UnknownKey,
                summary: format!(
                    "{name}=\"{value}\" (from the environment): unknown variable; valid: {valid}"
                ),
            });
        }
    }
    Sources { values, errors }
}

/// Builds the configuration from collected settings.
pub fn decide(sources: &Sources, device: DeviceLookup<'_>) -> Config {
    let mut errors = sources.errors.clone();
    let get = |key: &str| sources.get(key).cloned();
    let mode_v = get("MFIGUARD_MODE");
    let log_v = get("MFIGUARD_LOG");
    let audit_v = get("MFIGUARD_AUDIT");
    let allow_v = get("MFIGUARD_ALLOW");
    let debug_v = get("MFIGUARD_DEBUG");
    let sync_v = get("MFIGUARD_LOG_SYNC");
    let device_v = get("MFIGUARD_DEVICE");
    let required_v = get("MFIGUARD_LOG_REQUIRED");

    let mut error =
        |key: &str, (value, origin): &(String, Origin), problem: String, fallback: &str| {
            if value == INVALID {
                // Already reported as not UTF-8.
                return;
            }
            errors.push(ConfigError {
                key: key.into(),
                value: value.clone(),
                message: format!("{problem}; {fallback}"),
                kind: ErrorKind::Value,
                summary: format!("{key}=\"{value}\" (from {origin}): {problem}"),
            })
        };

    // An unknown mode falls back to the strictest one: a typo in `readonly` must not give a
    // monitoring job the right to change the controller.
    let mut mode = match &mode_v {
        None => GuardMode::Enforce,
        Some(v) => parse_mode(&v.0).unwrap_or_else(|| {
            error("MFIGUARD_MODE", v, mode_problem(&v.0), "using readonly");
            GuardMode::Readonly
        }),
    };
    // A key the guard does not know, a line it cannot read or a file it cannot use: it cannot
    // tell what was meant, so it takes the strictest mode.
    if sources.errors.iter().any(|e| e.kind.forces_readonly()) {
        mode = GuardMode::Readonly;
    }

    let log = match &log_v {
        None => LogTarget::Syslog,
        Some(v) => parse_log(&v.0).unwrap_or_else(|problem| {
            error("MFIGUARD_LOG", v, problem, "using syslog");
            LogTarget::Syslog
        }),
    };

    let default_audit = if mode == GuardMode::Audit {
        AuditLevel::All
    } else {
        AuditLevel::Findings
    };
    let audit = match &audit_v {
        None => default_audit,
        Some(v) => parse_audit(&v.0).unwrap_or_else(|| {
            error("MFIGUARD_AUDIT", v, audit_problem(&v.0), "using all");
            AuditLevel::All
        }),
    };

    let allow = match &allow_v {
        None => RuleSet::EMPTY,
        Some(v) => parse_allow(&v.0).unwrap_or_else(|problem| {
            error("MFIGUARD_ALLOW", v, problem, "no rule is allowed");
            RuleSet::EMPTY
        }),
    };

    let debug = debug_v
        .map(|(v, _)| v)
        .filter(|v| !v.trim().is_empty() && v != INVALID);

    let mut flag = |key: &str, value: &Option<(String, Origin)>| -> bool {
        let Some(v) = value else { return false };
        parse_bool(&v.0).unwrap_or_else(|| {
            error(key, v, bool_problem(&v.0), "using 1");
            true
        })
    };
    let log_sync = flag("MFIGUARD_LOG_SYNC", &sync_v);
    let log_required = flag("MFIGUARD_LOG_REQUIRED", &required_v);

    let device = match &device_v {
        None => None,
        Some((path, _)) if path.trim().is_empty() => None,
        Some(v) => {
            let path = v.0.trim();
            match device(path) {
                Ok(rdev) => Some((path.to_string(), rdev)),
                Err(why) => {
                    error("MFIGUARD_DEVICE", v, why, "ignored");
                    None
                }
            }
        }
    };

    if log_required && log == LogTarget::None {
        errors.push(ConfigError {
            key: "MFIGUARD_LOG_REQUIRED".into(),
            value: "1".into(),
            message: "MFIGUARD_LOG=none writes nothing, so nothing can fail; no effect".into(),
            kind: ErrorKind::Note,
            summary: "log_required is on with log none: nothing is written, so nothing can fail; no effect".into(),
        });
    }

    Config {
        mode,
        log,
        audit,
        allow,
        debug,
        log_sync,
        device,
        log_required,
        errors,
        exe: String::new(),
    }
}

/// Builds the configuration from the environment's `MFIGUARD_*` variables and the file. Pure:
/// no I/O beyond what `device` does, so that tests can feed any combination.
pub fn parse(env: &Env, file: &FileSource, device: DeviceLookup<'_>) -> Config {
    decide(&collect(env, file), device)
}

/// A file line's value (what follows the first `=`): one pair of surrounding quotes removed,
/// and a trailing comment, a `#` after a blank outside the quotes, cut off. `#` elsewhere is
/// part of the value (`log = /var/log/a#b.jsonl`).
fn file_value(raw: &str) -> &str {
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

fn parse_file(
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

/// This process's `MFIGUARD_*` variables.
pub fn process_env() -> Vec<(String, Result<String, String>)> {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let name = k.to_string_lossy().into_owned();
            name.starts_with("MFIGUARD_").then(|| {
                let value = v
                    .into_string()
                    .map_err(|v| v.to_string_lossy().into_owned());
                (name, value)
            })
        })
        .collect()
}

/// Device numbers for `MFIGUARD_DEVICE`: a character device's `st_rdev`.
pub fn device_lookup(path: &str) -> Result<u64, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot stat: {e}"))?;
    if meta.file_type().is_char_device() {
        Ok(meta.rdev())
    } else {
        Err("not a character device".into())
    }
}

fn exe() -> String {
    let mut exe = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if exe.len() > EXE_MAX {
        let mut cut = EXE_MAX;
        while !exe.is_char_boundary(cut) {
            cut = cut.saturating_sub(1);
        }
        exe.truncate(cut);
    }
    exe
}

/// Reads the whole configuration from this process's environment and files.
pub fn load() -> Config {
    let env = process_env();
    let (path, explicit) = config_path(&env);
    let mut config = parse(&env, &read_file(&path, explicit), &device_lookup);
    config.exe = exe();
    config
}

/// Not a `OnceLock`: a process forked while another thread was reading the configuration would
/// wait forever on its first guarded call (see `sys::Published`).
static CONFIG: Published<Config> = Published::new();

/// The configuration, read on first use. Never waits for another thread: threads racing the
/// first guarded call may each read it, and all use the one published first.
pub fn get_or_load() -> &'static Config {
    CONFIG.get_or_init(load)
}

/// The configuration if it has been read; never reads it (for signal-handler context).
pub fn get() -> Option<&'static Config> {
    CONFIG.get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfiguard_sanitizer::RuleId;

    fn env_of(pairs: &[(&str, &str)]) -> Vec<(String, Result<String, String>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Ok(v.to_string())))
            .collect()
    }

    fn no_device(_: &str) -> Result<u64, String> {
        Err("no such device".into())
    }

    fn file(text: &str) -> FileSource {
        FileSource::Text {
            path: "/etc/mfiguard.conf".into(),
            text: text.into(),
        }
    }

    fn keys(c: &Config) -> Vec<&str> {
        c.errors.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn defaults_are_enforce_syslog_findings() {
        let c = parse(&env_of(&[]), &FileSource::Absent, &no_device);
        assert_eq!(c.mode, GuardMode::Enforce);
        assert_eq!(c.log, LogTarget::Syslog);
        assert_eq!(c.audit, AuditLevel::Findings);
        assert_eq!(c.allow, RuleSet::EMPTY);
        assert!(!c.log_sync && !c.log_required);
        assert_eq!(c.device, None);
        assert_eq!(c.debug, None);
        assert!(c.errors.is_empty());
        assert_eq!(c.policy().mode, Mode::Enforce);
    }

    #[test]
    fn audit_mode_records_all_by_default_and_findings_on_request() {
        let c = parse(
            &env_of(&[("MFIGUARD_MODE", "audit")]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!(c.mode, GuardMode::Audit);
        assert_eq!(c.audit, AuditLevel::All);
        assert_eq!(c.policy().mode, Mode::Audit);
        assert!(!c.enforcing());
        let c = parse(
            &env_of(&[("MFIGUARD_MODE", " Audit "), ("MFIGUARD_AUDIT", "findings")]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!((c.mode, c.audit), (GuardMode::Audit, AuditLevel::Findings));
    }

    #[test]
    fn an_unknown_mode_is_readonly_with_an_error() {
        let c = parse(
            &env_of(&[("MFIGUARD_MODE", "readonyl")]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!(c.mode, GuardMode::Readonly);
        assert_eq!(keys(&c), ["MFIGUARD_MODE"]);
        assert_eq!(c.errors[0].value, "readonyl");
        let c = parse(
            &env_of(&[("MFIGUARD_MODE", "")]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!(
            (c.mode, keys(&c)),
            (GuardMode::Readonly, vec!["MFIGUARD_MODE"])
        );
    }

    #[test]
    fn readonly_enforces_with_the_readonly_rules() {
        let c = parse(
            &env_of(&[("MFIGUARD_MODE", "readonly")]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!(c.mode, GuardMode::Readonly);
        assert!(c.errors.is_empty());
        assert!(c.enforcing());
        assert_eq!(c.policy().mode, Mode::Enforce);
        assert!(c.policy().readonly);
        assert_eq!(c.audit, AuditLevel::Findings);
    }

    #[test]
    fn log_targets() {
        let log = |v: &str| {
            parse(
                &env_of(&[("MFIGUARD_LOG", v)]),
                &FileSource::Absent,
                &no_device,
            )
        };
        assert_eq!(log("stderr").log, LogTarget::Stderr);
        assert_eq!(log("none").log, LogTarget::None);
        assert_eq!(log("syslog").log, LogTarget::Syslog);
        assert_eq!(
            log("/var/log/mfiguard.log").log,
            LogTarget::File(CString::new("/var/log/mfiguard.log").unwrap())
        );
        let relative = log("mfiguard.log");
        assert_eq!(relative.log, LogTarget::Syslog);
        assert_eq!(keys(&relative), ["MFIGUARD_LOG"]);
    }

    #[test]
    fn allow_lists_parse_and_an_unknown_id_voids_the_whole_list() {
        let c = parse(
            &env_of(&[("MFIGUARD_ALLOW", "sgl.bounds, xfer.length")]),
            &FileSource::Absent,
            &no_device,
        );
        assert!(c.allow.contains(RuleId::SglBounds));
        assert!(c.allow.contains(RuleId::XferLength));
        assert!(c.errors.is_empty());
        let c = parse(
            &env_of(&[("MFIGUARD_ALLOW", "sgl.bounds,sense.bound")]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!(c.allow, RuleSet::EMPTY);
        assert_eq!(keys(&c), ["MFIGUARD_ALLOW"]);
        assert!(
            c.errors[0].message.contains("sense.bound"),
            "{}",
            c.errors[0]
        );
    }

    #[test]
    fn booleans_and_bad_booleans_are_strict() {
        let c = parse(
            &env_of(&[("MFIGUARD_LOG_SYNC", "1"), ("MFIGUARD_LOG_REQUIRED", "0")]),
            &FileSource::Absent,
            &no_device,
        );
        assert!(c.log_sync && !c.log_required);
        let c = parse(
            &env_of(&[
                ("MFIGUARD_LOG_SYNC", "maybe"),
                ("MFIGUARD_LOG_REQUIRED", "sure"),
            ]),
            &FileSource::Absent,
            &no_device,
        );
        assert!(c.log_sync && c.log_required);
        assert_eq!(keys(&c), ["MFIGUARD_LOG_SYNC", "MFIGUARD_LOG_REQUIRED"]);
        let c = parse(
            &env_of(&[("MFIGUARD_AUDIT", "most")]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!(c.audit, AuditLevel::All);
    }

    #[test]
    fn the_environment_wins_over_the_file_even_when_empty() {
        let f = file(
            "# site policy\n\
             mode = audit\n\
             MFIGUARD_LOG = \"/var/log/mfiguard.log\"\n\
             Allow = xfer.length\n\
             \n\
             log_sync=1\n",
        );
        let c = parse(&env_of(&[]), &f, &no_device);
        assert_eq!(c.mode, GuardMode::Audit);
        assert_eq!(
            c.log,
            LogTarget::File(CString::new("/var/log/mfiguard.log").unwrap())
        );
        assert!(c.allow.contains(RuleId::XferLength));
        assert!(c.log_sync);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let c = parse(
            &env_of(&[("MFIGUARD_MODE", "enforce"), ("MFIGUARD_ALLOW", "")]),
            &f,
            &no_device,
        );
        assert_eq!(c.mode, GuardMode::Enforce);
        assert_eq!(c.allow, RuleSet::EMPTY);
        // Not overridden: still from the file.
        assert!(c.log_sync);
    }

    #[test]
    fn file_values_lose_quotes_and_trailing_comments() {
        for (line, want) in [
            ("mode = readonly   # monitoring host", "readonly"),
            ("mode = readonly\t# tab", "readonly"),
            ("mode = \"readonly\"", "readonly"),
            ("mode = 'readonly'  # quoted", "readonly"),
            ("log = /var/log/a#b.jsonl", "/var/log/a#b.jsonl"),
            ("allow = \"a # b\"", "a # b"),
            ("allow = \"a # b\" # c", "a # b"),
            ("allow = # nothing", ""),
            ("allow =#x", "#x"),
            ("allow = \"a\" b", "\"a\" b"),
        ] {
            let (_, raw) = line.split_once('=').unwrap();
            assert_eq!(file_value(raw), want, "{line:?}");
        }
        let c = parse(
            &env_of(&[]),
            &file("mode = readonly   # monitoring host\n"),
            &no_device,
        );
        assert_eq!(c.mode, GuardMode::Readonly);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
    }

    #[test]
    fn file_mistakes_are_reported_and_force_readonly() {
        let f = file("mode = off\nthis line has no equals\ncolour = blue\nmode = audit\n");
        let c = parse(&env_of(&[]), &f, &no_device);
        // The last occurrence of `mode` would win, but a line the guard cannot read and an
        // unknown key force the strictest mode.
        assert_eq!(c.mode, GuardMode::Readonly);
        assert_eq!(keys(&c), ["MFIGUARD_CONFIG", "colour"]);
        assert_eq!(c.errors[0].kind, ErrorKind::BadLine);
        assert_eq!(
            c.errors[0].summary,
            "/etc/mfiguard.conf:2: \"this line has no equals\" is not a \"key = value\" line; \
             valid keys: mode, log, audit, allow, debug, device, log_sync, log_required"
        );
        assert_eq!(c.errors[1].kind, ErrorKind::UnknownKey);
        assert!(c.errors[1].message.contains("using mode readonly"));
        // Without them, the last occurrence wins.
        let c = parse(
            &env_of(&[]),
            &file("mode = off\nmode = audit\n"),
            &no_device,
        );
        assert_eq!((c.mode, c.errors.len()), (GuardMode::Audit, 0));
        let c = parse(
            &env_of(&[]),
            &FileSource::Unreadable {
                path: "/etc/mfiguard.conf".into(),
                reason: "Permission denied".into(),
            },
            &no_device,
        );
        assert_eq!(c.mode, GuardMode::Readonly);
        assert_eq!(keys(&c), ["MFIGUARD_CONFIG"]);
        assert_eq!(c.errors[0].kind, ErrorKind::File);
    }

    #[test]
    fn an_unknown_key_names_the_closest_first_and_forces_readonly_over_any_mode() {
        let c = parse(
            &env_of(&[("MFIGUARD_MODE", "off")]),
            &file("# site\nmoed = audit\n"),
            &no_device,
        );
        assert_eq!(c.mode, GuardMode::Readonly);
        assert_eq!(keys(&c), ["moed"]);
        assert_eq!(
            c.errors[0].summary,
            "moed=\"audit\" (from /etc/mfiguard.conf:2): unknown key; valid keys: \
             mode, log, audit, allow, debug, device, log_sync, log_required"
        );
        // The same in the environment.
        let c = parse(
            &env_of(&[("MFIGUARD_MOED", "audit"), ("MFIGUARD_MODE", "audit")]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!(c.mode, GuardMode::Readonly);
        assert_eq!(keys(&c), ["MFIGUARD_MOED"]);
        assert!(
            c.errors[0].summary.starts_with(
                "MFIGUARD_MOED=\"audit\" (from the environment): unknown variable; valid: MFIGUARD_MODE, "
            ),
            "{}",
            c.errors[0].summary
        );
        // Variables that are not settings are neither read nor refused.
        let pairs: Vec<(&str, &str)> = NOT_SETTINGS.iter().map(|k| (*k, "/x")).collect();
        let c = parse(&env_of(&pairs), &FileSource::Absent, &no_device);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.mode, GuardMode::Enforce);
    }

    #[test]
    fn values_are_read_in_any_case_from_every_source() {
        for (env, text) in [
            (&[("MFIGUARD_MODE", "READONLY")][..], ""),
            (&[][..], "mode = Readonly\n"),
            (&[][..], "MODE = 'readOnly'\n"),
        ] {
            let c = parse(&env_of(env), &file(text), &no_device);
            assert_eq!(c.mode, GuardMode::Readonly, "{env:?} {text:?}");
            assert!(c.errors.is_empty(), "{:?}", c.errors);
        }
        let c = parse(
            &env_of(&[
                ("MFIGUARD_LOG", "SysLog"),
                ("MFIGUARD_AUDIT", "ALL"),
                ("MFIGUARD_ALLOW", "SGL.Bounds"),
                ("MFIGUARD_LOG_SYNC", "Yes"),
            ]),
            &FileSource::Absent,
            &no_device,
        );
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.log, LogTarget::Syslog);
        assert_eq!(c.audit, AuditLevel::All);
        assert!(c.allow.contains(RuleId::SglBounds));
        assert!(c.log_sync);
        // Paths keep their case.
        let c = parse(
            &env_of(&[("MFIGUARD_LOG", "/Var/Log/A.jsonl")]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!(
            c.log,
            LogTarget::File(CString::new("/Var/Log/A.jsonl").unwrap())
        );
    }

    #[test]
    fn messages_list_the_valid_values_closest_first() {
        assert_eq!(
            mode_problem("readonyl"),
            "unknown mode; use readonly, enforce, audit or off"
        );
        assert_eq!(
            mode_problem("of"),
            "unknown mode; use off, audit, enforce or readonly"
        );
        assert_eq!(
            audit_problem("al"),
            "unknown audit level; use all or findings"
        );
        assert_eq!(
            parse_log("stdout").unwrap_err(),
            "not a log target; use stderr, syslog, none or an absolute path"
        );
        let allow = parse_allow("sgl.bounds, sgl.bound").unwrap_err();
        assert!(
            allow.starts_with("unknown rule id 'sgl.bound' (one unknown id voids the whole list); known: sgl.bounds, "),
            "{allow}"
        );
        // Every rule id is listed, from the sanitizer's table.
        for r in mfiguard_sanitizer::RULES {
            assert!(allow.contains(r.name), "{allow}");
        }
        assert!(bool_problem("yse").starts_with("not a boolean; use yes, "));
        assert_eq!(or_list(&["a"]), "a");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    /// A scratch directory for the file tests.
    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("mfiguard-config-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn reason(f: FileSource) -> String {
        match f {
            FileSource::Unreadable { reason, .. } => reason,
            other => panic!("read: {other:?}"),
        }
    }

    #[test]
    fn the_file_is_read_only_when_it_is_a_small_regular_file_nobody_else_can_change() {
        use std::os::unix::fs::PermissionsExt;
        let d = scratch("file");
        let ok = d.join("ok.conf");
        std::fs::write(&ok, "mode = audit\n").unwrap();
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = ok.to_str().unwrap();
        assert!(
            matches!(read_file(p, true), FileSource::Text { ref text, .. } if text == "mode = audit\n")
        );

        // A FIFO with no writer: refused at once, not waited on.
        let fifo = d.join("fifo");
        let c = CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        #[allow(unsafe_code)]
        let made = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(made, 0);
        let start = std::time::Instant::now();
        assert!(reason(read_file(fifo.to_str().unwrap(), true)).contains("a FIFO"));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));

        // Endless or foreign input.
        assert!(reason(read_file("/dev/zero", true)).contains("a character device"));
        // (The test's own stdin may be a terminal, a pipe, or the null device, read as empty.)
        match read_file("/dev/stdin", true) {
            FileSource::Unreadable { reason, .. } => assert!(
                reason.contains("not a regular file") || reason.contains("No such"),
                "{reason}"
            ),
            FileSource::Text { text, .. } => assert!(
                text.is_empty() || std::fs::metadata("/dev/stdin").is_ok_and(|m| m.is_file())
            ),
            FileSource::Absent => panic!("/dev/stdin absent"),
        }
        // The null device is an empty file.
        assert_eq!(
            read_file("/dev/null", true),
            FileSource::Text {
                path: "/dev/null".into(),
                text: String::new()
            }
        );
        assert!(reason(read_file(d.to_str().unwrap(), true)).contains("a directory"));

        // Size: 64 KiB passes, one byte more does not.
        let big = d.join("big.conf");
        let mut text = "# padding\n".repeat(6553);
        text.push_str("#1234\n");
        assert_eq!(text.len() as u64, CONFIG_MAX);
        std::fs::write(&big, &text).unwrap();
        assert!(matches!(
            read_file(big.to_str().unwrap(), true),
            FileSource::Text { .. }
        ));
        std::fs::write(&big, "#".repeat(65 * 1024)).unwrap();
        assert!(reason(read_file(big.to_str().unwrap(), true)).contains("66560 bytes"));

        // Writable by others, or by a group that is not root's.
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o646)).unwrap();
        assert!(reason(read_file(p, true)).contains("writable by others (mode 0646)"));
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o664)).unwrap();
        let gid = std::fs::metadata(p).unwrap().gid();
        let c = CString::new(p).unwrap();
        if crate::sys::uid() == 0 {
            // SAFETY: a valid NUL-terminated path.
            #[allow(unsafe_code)]
            let r = unsafe { libc::chown(c.as_ptr(), u32::MAX, 100) };
            assert_eq!(r, 0);
            assert!(reason(read_file(p, true)).contains("writable by its group gid 100"));
            // SAFETY: as above.
            #[allow(unsafe_code)]
            let r = unsafe { libc::chown(c.as_ptr(), u32::MAX, 0) };
            assert_eq!(r, 0);
            assert!(matches!(read_file(p, true), FileSource::Text { .. }));
            // Owned by another user.
            std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o644)).unwrap();
            // SAFETY: as above.
            #[allow(unsafe_code)]
            let r = unsafe { libc::chown(c.as_ptr(), 65534, u32::MAX) };
            assert_eq!(r, 0);
            assert!(
                reason(read_file(p, true)).contains("owned by uid 65534, neither root nor uid 0")
            );
        } else if gid != 0 {
            assert!(reason(read_file(p, true)).contains("writable by its group"));
        }

        // Missing: absent at the default path, an error when named.
        let missing = d.join("missing.conf");
        assert_eq!(
            read_file(missing.to_str().unwrap(), false),
            FileSource::Absent
        );
        assert!(matches!(
            read_file(missing.to_str().unwrap(), true),
            FileSource::Unreadable { .. }
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn non_utf8_environment_values_are_errors() {
        let env = vec![("MFIGUARD_MODE".to_string(), Err("off\u{fffd}".to_string()))];
        let c = parse(&env, &file("mode = audit\n"), &no_device);
        // The environment still wins, with a value no setting accepts: the stricter choice.
        assert_eq!(c.mode, GuardMode::Readonly);
        assert_eq!(keys(&c), ["MFIGUARD_MODE"]);
        assert!(c.errors[0].message.contains("UTF-8"));
        let env: Vec<_> = KEYS
            .iter()
            .map(|k| (k.to_string(), Err("\u{fffd}".to_string())))
            .collect();
        let c = parse(&env, &FileSource::Absent, &no_device);
        assert_eq!(c.mode, GuardMode::Readonly);
        assert_eq!(c.log, LogTarget::Syslog);
        assert_eq!(c.audit, AuditLevel::All);
        assert_eq!(c.allow, RuleSet::EMPTY);
        assert_eq!(c.debug, None);
        assert_eq!(c.device, None);
        assert!(c.log_sync && c.log_required);
        assert_eq!(c.errors.len(), KEYS.len());
    }

    #[test]
    fn device_paths_resolve_or_are_reported() {
        let c = parse(
            &env_of(&[("MFIGUARD_DEVICE", "/dev/null")]),
            &FileSource::Absent,
            &device_lookup,
        );
        let null = std::fs::metadata("/dev/null").unwrap().rdev();
        assert_eq!(c.device, Some(("/dev/null".to_string(), null)));
        let c = parse(
            &env_of(&[("MFIGUARD_DEVICE", "/")]),
            &FileSource::Absent,
            &device_lookup,
        );
        assert_eq!(c.device, None);
        assert_eq!(keys(&c), ["MFIGUARD_DEVICE"]);
        assert!(c.errors[0].message.contains("not a character device"));
    }

    #[test]
    fn debug_and_required_with_no_log() {
        let c = parse(
            &env_of(&[
                ("MFIGUARD_DEBUG", "mfiguard=debug"),
                ("MFIGUARD_LOG", "none"),
                ("MFIGUARD_LOG_REQUIRED", "1"),
            ]),
            &FileSource::Absent,
            &no_device,
        );
        assert_eq!(c.debug.as_deref(), Some("mfiguard=debug"));
        assert_eq!(keys(&c), ["MFIGUARD_LOG_REQUIRED"]);
    }
}
