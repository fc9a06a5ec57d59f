//! Configuration: each setting from the environment, else from `/etc/mfiguard.conf` (or the
//! file `MFIGUARD_CONFIG` names), else its default. Read once, before the first guarded call.
//!
//! A value that cannot be understood never weakens the guard: it falls back to the stricter
//! choice (enforce, no rule allowed, more records, synchronous and required logging) and leaves
//! an error record, written through the configured sink once the configuration is complete.
//!
//! The file has one `key = value` per line; keys are the variable names, with or without the
//! `MFIGUARD_` prefix, in any case; `#` starts a comment line; a value may be quoted. A variable
//! set in the environment wins over the file even when it is empty.

use std::ffi::CString;
use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

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

/// A setting that could not be used as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting (`MFIGUARD_MODE`, ...), or `MFIGUARD_CONFIG` for the file itself.
    pub key: String,
    /// The value as given (lossily decoded).
    pub value: String,
    /// What was wrong and what is used instead.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.key, self.value, self.message)
    }
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
    /// The file exists (or was named explicitly) but could not be read.
    Unreadable {
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Stands for an environment value that is not UTF-8: no setting accepts it, so each falls back
/// to its stricter choice.
const INVALID: &str = "\0";

/// Device numbers of paths, for `MFIGUARD_DEVICE`: `Ok(st_rdev)` for a character device.
pub type DeviceLookup<'a> = &'a dyn Fn(&str) -> Result<u64, String>;

/// Builds the configuration from an environment lookup and the file. Pure: no I/O beyond what
/// `device` does, so that tests can feed any combination.
pub fn parse(
    env: &dyn Fn(&str) -> Option<Result<String, String>>,
    file: &FileSource,
    device: DeviceLookup<'_>,
) -> Config {
    let mut errors = Vec::new();
    let mut from_file: Vec<(&'static str, String)> = Vec::new();
    match file {
        FileSource::Absent => {}
        FileSource::Unreadable { path, reason } => errors.push(ConfigError {
            key: "MFIGUARD_CONFIG".into(),
            value: path.clone(),
            message: format!("cannot read the file ({reason}); using the environment and defaults"),
        }),
        FileSource::Text { path, text } => parse_file(path, text, &mut from_file, &mut errors),
    }
    let mut get = |key: &'static str| -> Option<String> {
        match env(key) {
            Some(Ok(value)) => Some(value),
            Some(Err(lossy)) => {
                errors.push(ConfigError {
                    key: key.into(),
                    value: lossy,
                    message: "not valid UTF-8; treated as an invalid value".into(),
                });
                Some(INVALID.into())
            }
            None => from_file
                .iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone()),
        }
    };
    let mode_v = get("MFIGUARD_MODE");
    let log_v = get("MFIGUARD_LOG");
    let audit_v = get("MFIGUARD_AUDIT");
    let allow_v = get("MFIGUARD_ALLOW");
    let debug_v = get("MFIGUARD_DEBUG");
    let sync_v = get("MFIGUARD_LOG_SYNC");
    let device_v = get("MFIGUARD_DEVICE");
    let required_v = get("MFIGUARD_LOG_REQUIRED");

    let mut error = |key: &str, value: &str, message: String| {
        if value == INVALID {
            // Already reported as not UTF-8.
            return;
        }
        errors.push(ConfigError {
            key: key.into(),
            value: value.into(),
            message,
        })
    };

    // An unknown mode falls back to the strictest one: a typo in `readonly` must not give a
    // monitoring job the right to change the controller.
    let mode = match mode_v.as_deref().map(str::trim) {
        None => GuardMode::Enforce,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "enforce" => GuardMode::Enforce,
            "audit" => GuardMode::Audit,
            "off" => GuardMode::Off,
            "readonly" => GuardMode::Readonly,
            _ => {
                error(
                    "MFIGUARD_MODE",
                    v,
                    "unknown mode (enforce, readonly, audit, off); using readonly".into(),
                );
                GuardMode::Readonly
            }
        },
    };

    let log = match log_v.as_deref().map(str::trim) {
        None => LogTarget::Syslog,
        Some(v) => match v {
            "syslog" => LogTarget::Syslog,
            "stderr" => LogTarget::Stderr,
            "none" => LogTarget::None,
            path if path.starts_with('/') => match CString::new(path) {
                Ok(c) => LogTarget::File(c),
                Err(_) => {
                    error("MFIGUARD_LOG", v, "path contains NUL; using syslog".into());
                    LogTarget::Syslog
                }
            },
            _ => {
                error(
                    "MFIGUARD_LOG",
                    v,
                    "not syslog, stderr, none or an absolute path; using syslog".into(),
                );
                LogTarget::Syslog
            }
        },
    };

    let default_audit = if mode == GuardMode::Audit {
        AuditLevel::All
    } else {
        AuditLevel::Findings
    };
    let audit = match audit_v.as_deref().map(str::trim) {
        None => default_audit,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "findings" => AuditLevel::Findings,
            "all" => AuditLevel::All,
            _ => {
                error(
                    "MFIGUARD_AUDIT",
                    v,
                    "unknown audit level (findings, all); using all".into(),
                );
                AuditLevel::All
            }
        },
    };

    let allow = match allow_v.as_deref() {
        None => RuleSet::EMPTY,
        Some(v) => match RuleSet::parse(v) {
            Ok(set) => set,
            Err(unknown) => {
                let message = format!("{unknown}; the whole list is ignored, no rule is allowed");
                error("MFIGUARD_ALLOW", v, message);
                RuleSet::EMPTY
            }
        },
    };

    let debug = debug_v.filter(|v| !v.trim().is_empty() && v != INVALID);

    let mut flag = |key: &str, value: Option<String>| -> bool {
        let Some(v) = value else { return false };
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" | "" => false,
            _ => {
                error(key, &v, "not a boolean (1 or 0); using 1".into());
                true
            }
        }
    };
    let log_sync = flag("MFIGUARD_LOG_SYNC", sync_v);
    let log_required = flag("MFIGUARD_LOG_REQUIRED", required_v);

    let device = match device_v.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(path) => match device(path) {
            Ok(rdev) => Some((path.to_string(), rdev)),
            Err(why) => {
                error("MFIGUARD_DEVICE", path, format!("{why}; ignored"));
                None
            }
        },
    };

    if log_required && log == LogTarget::None {
        error(
            "MFIGUARD_LOG_REQUIRED",
            "1",
            "MFIGUARD_LOG=none writes nothing, so nothing can fail; no effect".into(),
        );
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

/// The value of a `key = value` line, without one pair of matching quotes.
/// A file line's value (what follows the first `=`): one pair of surrounding quotes removed,
/// and a trailing comment, a `#` after a blank outside the quotes, cut off. `#` elsewhere is
/// part of the value (`log = /var/log/a#b.jsonl`). `bin/mfiguard-run` reads the file the same way.
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
    out: &mut Vec<(&'static str, String)>,
    errors: &mut Vec<ConfigError>,
) {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let where_ = format!("{path}:{}", n.saturating_add(1));
        let Some((key, value)) = line.split_once('=') else {
            errors.push(ConfigError {
                key: "MFIGUARD_CONFIG".into(),
                value: where_,
                message: format!("line {line:?} is not `key = value`; ignored"),
            });
            continue;
        };
        let key = key.trim().to_ascii_uppercase();
        let key = if key.starts_with("MFIGUARD_") {
            key
        } else {
            format!("MFIGUARD_{key}")
        };
        match KEYS.iter().find(|k| **k == key) {
            Some(k) => out.push((k, file_value(value).to_string())),
            None => errors.push(ConfigError {
                key: "MFIGUARD_CONFIG".into(),
                value: where_,
                message: format!("unknown setting {key}; ignored"),
            }),
        }
    }
}

/// Reads the file the process's environment points at.
fn read_file() -> FileSource {
    let (path, explicit) = match std::env::var_os("MFIGUARD_CONFIG") {
        Some(p) if !p.is_empty() => (p.to_string_lossy().into_owned(), true),
        _ => (DEFAULT_CONFIG_PATH.to_string(), false),
    };
    match std::fs::read(&path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => FileSource::Text { path, text },
            Err(_) => FileSource::Unreadable {
                path,
                reason: "not valid UTF-8".into(),
            },
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => FileSource::Absent,
        Err(e) => FileSource::Unreadable {
            path,
            reason: e.to_string(),
        },
    }
}

fn env_lookup(key: &str) -> Option<Result<String, String>> {
    std::env::var_os(key).map(|v| {
        v.into_string()
            .map_err(|v| v.to_string_lossy().into_owned())
    })
}

fn device_lookup(path: &str) -> Result<u64, String> {
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
    let mut config = parse(&env_lookup, &read_file(), &device_lookup);
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

    fn env_of(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<Result<String, String>> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| Ok(v.to_string()))
        }
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
        let log = |v: &'static str| {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([("MFIGUARD_LOG", v)]));
            parse(&env_of(pairs), &FileSource::Absent, &no_device)
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
    fn file_mistakes_are_reported_and_skipped() {
        let f = file("mode = off\nthis line has no equals\ncolour = blue\nmode = audit\n");
        let c = parse(&env_of(&[]), &f, &no_device);
        // The last occurrence wins.
        assert_eq!(c.mode, GuardMode::Audit);
        assert_eq!(keys(&c), ["MFIGUARD_CONFIG", "MFIGUARD_CONFIG"]);
        assert!(c.errors[0].value.ends_with(":2"));
        assert!(c.errors[1].message.contains("MFIGUARD_COLOUR"));
        let c = parse(
            &env_of(&[]),
            &FileSource::Unreadable {
                path: "/etc/mfiguard.conf".into(),
                reason: "Permission denied".into(),
            },
            &no_device,
        );
        assert_eq!(c.mode, GuardMode::Enforce);
        assert_eq!(keys(&c), ["MFIGUARD_CONFIG"]);
    }

    #[test]
    fn non_utf8_environment_values_are_errors() {
        let env = |key: &str| (key == "MFIGUARD_MODE").then(|| Err("off\u{fffd}".to_string()));
        let c = parse(&env, &file("mode = audit\n"), &no_device);
        // The environment still wins, with a value no setting accepts: the stricter choice.
        assert_eq!(c.mode, GuardMode::Readonly);
        assert_eq!(keys(&c), ["MFIGUARD_MODE"]);
        assert!(c.errors[0].message.contains("UTF-8"));
        let env = |_: &str| Some(Err("\u{fffd}".to_string()));
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
