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
pub mod policy;
mod sources;
#[cfg(test)]
mod tests;
mod values;

use std::ffi::CString;
use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use mfiguard_sanitizer::{Mode, Policy, RuleSet};

use crate::sys::Published;

pub use file::{
    config_path, read_file, Env, FileParts, FileSource, RawSection, POLICY_KEYS, SECTION_KEYS,
};
pub use policy::{Accounts, CallPolicy, Requested, SitePolicy, Subject};
pub use sources::{collect, decide, decide_with, parse, DeviceLookup, Sources};
pub use values::{
    audit_problem, bool_problem, closest, file_keys, mode_problem, or_list, parse_allow,
    parse_audit, parse_bool, parse_log, parse_mode, AUDIT_LEVELS, BOOLEANS, LOG_MAX, LOG_WORDS,
    MODES,
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
pub const NOT_SETTINGS: [&str; 15] = [
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
    // mfiguard-run: the program a run was started for (policy [tool] sections match it too).
    "MFIGUARD_RUN_TOOL",
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
    /// The journal where systemd-journald runs (with structured fields), else the local syslog
    /// socket, facility `authpriv`, tag `mfiguard`.
    Syslog,
    /// The journal only (systemd-journald's native protocol, structured fields).
    Journal,
    /// One readable line per record on the process's stderr.
    Stderr,
    /// JSON lines appended to this absolute path.
    File(CString),
    /// Nowhere.
    None,
    /// Every one of these, each record to each (`log = journal, /var/log/mfiguard/audit.jsonl`):
    /// two to [`LOG_MAX`] distinct destinations, none of them `None` or `Several`.
    Several(Box<[LogTarget]>),
}

impl LogTarget {
    /// How the target is named in configuration and messages (several: the first; see
    /// [`LogTarget::names`]).
    pub fn describe(&self) -> &str {
        match self {
            LogTarget::Syslog => "syslog",
            LogTarget::Journal => "journal",
            LogTarget::Stderr => "stderr",
            LogTarget::File(path) => path.to_str().unwrap_or("<file>"),
            LogTarget::None => "none",
            LogTarget::Several(all) => all.first().map_or("none", LogTarget::describe),
        }
    }

    /// Every destination's name, separated by ", ".
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.targets().iter().map(LogTarget::describe).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// The destinations, one by one (none for `None`).
    pub fn targets(&self) -> &[LogTarget] {
        match self {
            LogTarget::None => &[],
            LogTarget::Several(all) => all,
            one => std::slice::from_ref(one),
        }
    }

    /// The first file among the destinations.
    pub fn file(&self) -> Option<&CString> {
        self.targets().iter().find_map(|t| match t {
            LogTarget::File(p) => Some(p),
            _ => None,
        })
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
    /// Settings that work but make no sense together, or a policy naming an account this
    /// host does not have (nothing is changed; not a refusal).
    Note,
    /// A mode or allow list asked for by the environment or a command line that the policy
    /// does not let this caller choose: the policy's is used.
    Refused,
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
    /// Where the value came from (`file:line` for the file's lines), when it came from one
    /// place (`mfiguard-run --check --json` gives it apart).
    pub origin: Option<Origin>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.key, self.value, self.message)
    }
}

/// The configuration in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The mode of this process's own calls (the library's; the wrapper's run): the policy for
    /// this process's identity with `MFIGUARD_MODE` or `--mode` laid over it.
    pub mode: GuardMode,
    /// Under `preview = yes`: the mode this process's calls would have without it.
    pub preview_of: Option<GuardMode>,
    /// `MFIGUARD_LOG`.
    pub log: LogTarget,
    /// `MFIGUARD_AUDIT` for this process's calls (its default follows the mode).
    pub audit: AuditLevel,
    /// `MFIGUARD_AUDIT` as set, if it is (else it follows each call's mode).
    pub audit_level: Option<AuditLevel>,
    /// The rules this process's calls allow (`MFIGUARD_ALLOW` and the policy).
    pub allow: RuleSet,
    /// The site policy: the default and the sections of the config file.
    pub site: SitePolicy,
    /// What the environment or the command line asked for (`MFIGUARD_MODE`, `MFIGUARD_ALLOW`).
    pub requested: Requested,
    /// Who started a run of `mfiguard-run` (its own identity, the tool's path as the
    /// executable): every call of the run is judged for it too. `None` elsewhere.
    pub run: Option<OwnedSubject>,
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

/// A [`Subject`] that owns what it names (kept in the configuration).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedSubject {
    /// The real uid.
    pub uid: Option<u32>,
    /// The real gid and the supplementary groups.
    pub groups: Vec<u32>,
    /// `SUDO_USER`.
    pub sudo_user: Option<String>,
    /// `SUDO_UID`.
    pub sudo_uid: Option<u32>,
    /// The login uid.
    pub login_uid: Option<u32>,
    /// The executable.
    pub exe: String,
    /// The program the run was started for (`MFIGUARD_RUN_TOOL`).
    pub run_tool: Option<String>,
}

impl OwnedSubject {
    /// As policies match it.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            uid: self.uid,
            groups: &self.groups,
            sudo_user: self.sudo_user.as_deref(),
            sudo_uid: self.sudo_uid,
            login_uid: self.login_uid,
            exe: &self.exe,
            run_tool: self.run_tool.as_deref(),
        }
    }

    /// This process, with `exe` as its executable.
    pub fn this_process(exe: String) -> OwnedSubject {
        let by = crate::audit::invoker();
        OwnedSubject {
            uid: Some(crate::sys::uid()),
            groups: crate::sys::groups(),
            sudo_user: by.sudo_user.clone(),
            sudo_uid: by.sudo_uid,
            login_uid: by.login_uid,
            exe,
            run_tool: by.run_tool.clone(),
        }
    }
}

impl Config {
    /// The configuration used by a call that arrives while the configuration is still being
    /// read on the same thread (a signal handler), or when reading it failed: all defaults,
    /// records to stderr (the only sink usable from any context).
    pub const FALLBACK: Config = Config {
        mode: GuardMode::Enforce,
        preview_of: None,
        log: LogTarget::Stderr,
        audit: AuditLevel::Findings,
        audit_level: None,
        allow: RuleSet::EMPTY,
        site: SitePolicy::NONE,
        requested: Requested::NONE,
        run: None,
        debug: None,
        log_sync: false,
        device: None,
        log_required: false,
        errors: Vec::new(),
        exe: String::new(),
    };

    /// The sanitizer's policy for this configuration.
    pub fn policy(&self) -> Policy {
        self.own_calls().sanitizer()
    }

    /// Whether the guard acts on its verdicts.
    pub fn enforcing(&self) -> bool {
        self.mode.enforcing()
    }

    /// What governs this process's own calls.
    pub fn own_calls(&self) -> CallPolicy {
        CallPolicy {
            mode: self.mode,
            preview_of: self.preview_of,
            allow: self.allow,
            audit: self.audit,
        }
    }

    /// What governs the calls of another process, `caller` (the supervisor's tool, a caller of
    /// `mfiguard-hostd`): the policy for it, and for the run it belongs to (`run`), with the
    /// requests laid over it. Without sections the policy is the same for everyone: this
    /// process's own.
    pub fn for_caller(&self, caller: &Subject<'_>) -> CallPolicy {
        if !self.site.per_caller() {
            return self.own_calls();
        }
        let run = self.run.as_ref().map(OwnedSubject::subject);
        let subjects: Vec<Subject<'_>> = std::iter::once(*caller).chain(run).collect();
        policy::resolve(&self.site, &self.requested, self.audit_level, &subjects).0
    }

    /// Judges this process's own calls for `subjects` (and a run's calls for them too, when
    /// `run` is given): sets the mode, the allow list and the audit level, and adds an error
    /// for each request the policy does not let through.
    pub fn settle(&mut self, subjects: &[Subject<'_>], run: Option<OwnedSubject>) {
        let (p, refused) = policy::resolve(&self.site, &self.requested, self.audit_level, subjects);
        self.mode = p.mode;
        self.preview_of = p.preview_of;
        self.allow = p.allow;
        self.audit = p.audit;
        self.run = run;
        self.errors.retain(|e| e.kind != ErrorKind::Refused);
        for r in refused {
            let (key, value, origin) = match &r {
                policy::Refused::Mode { asked, origin, .. } => {
                    ("MFIGUARD_MODE", asked.name().to_string(), origin.clone())
                }
                policy::Refused::Allow { extra, origin, .. } => {
                    let ids: Vec<&str> = extra.iter().map(|r| r.name()).collect();
                    ("MFIGUARD_ALLOW", ids.join(","), origin.clone())
                }
            };
            let used = match &r {
                policy::Refused::Mode { .. } => {
                    format!("the policy's mode {} is used", p.mode.name())
                }
                policy::Refused::Allow { .. } => "the policy's allow list is used".to_string(),
            };
            self.errors.push(ConfigError {
                key: key.into(),
                value: value.clone(),
                message: format!("{r}; {used}"),
                kind: ErrorKind::Refused,
                summary: format!("{key}=\"{value}\" (from {origin}): {r}"),
                origin: Some(origin),
            });
        }
    }
}

impl CallPolicy {
    /// The sanitizer's policy for these calls.
    pub fn sanitizer(&self) -> Policy {
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

    /// The policy read-only mode would apply (audit mode's preview of it).
    pub fn readonly_preview(&self) -> Policy {
        Policy {
            mode: Mode::Enforce,
            readonly: true,
            allow: self.allow,
        }
    }
}

impl GuardMode {
    /// Whether the guard acts on its verdicts in this mode.
    pub const fn enforcing(self) -> bool {
        matches!(self, GuardMode::Enforce | GuardMode::Readonly)
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

/// `/proc/self/exe`, at most [`EXE_MAX`] bytes.
pub fn exe() -> String {
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

/// Reads the whole configuration from this process's environment and files, and judges this
/// process's calls by the policy for who it is.
pub fn load() -> Config {
    let env = process_env();
    let (path, explicit) = config_path(&env);
    let mut config = parse(&env, &read_file(&path, explicit), &device_lookup);
    config.exe = exe();
    if config.site.per_caller() {
        let me = OwnedSubject::this_process(config.exe.clone());
        config.settle(&[me.subject()], None);
    }
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
