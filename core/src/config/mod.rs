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

mod file;
mod sources;
#[cfg(test)]
mod tests;
mod values;

use std::ffi::CString;
use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use mfiguard_sanitizer::{Mode, Policy, RuleSet};

use crate::sys::Published;

pub use file::{config_path, read_file, Env, FileSource};
pub use sources::{collect, decide, parse, DeviceLookup, Sources};
pub use values::{
    audit_problem, bool_problem, closest, file_keys, mode_problem, or_list, parse_allow,
    parse_audit, parse_bool, parse_log, parse_mode, AUDIT_LEVELS, BOOLEANS, LOG_WORDS, MODES,
};

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
    // The test suite (tests/common).
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

/// What the guard does with MegaRAID calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardMode {
    /// Rewrite and reject (the default).
    Enforce,
    /// Change nothing, record what enforce would have done.
    Audit,
    /// Pass everything through, record nothing.
    Off,
    /// Enforce plus the read-only allowlist (`mfiguard_sanitizer::readonly`).
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

/// Longest `exe` kept for records: bounds a record's size (see `audit/`).
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
