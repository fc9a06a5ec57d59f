//! Each setting's text from the environment and the file, and the [`Config`] decided from it.

use mfiguard_sanitizer::RuleSet;

use super::file::{parse_file, Env, FileParts, FileSource, RawSection, POLICY_KEYS};
use super::policy::{Accounts, Entry, Requested, Section, SitePolicy, Subject};
use super::values::*;
use super::{
    AuditLevel, Config, ConfigError, ErrorKind, GuardMode, LogTarget, Origin, KEYS, NOT_SETTINGS,
};

/// Stands for an environment value that is not UTF-8: no setting accepts it, so each falls back
/// to its stricter choice.
const INVALID: &str = "\0";

/// Device numbers of paths, for `MFIGUARD_DEVICE`: `Ok(st_rdev)` for a character device.
pub type DeviceLookup<'a> = &'a dyn Fn(&str) -> Result<u64, String>;

/// Each setting's text and where it came from, before it is interpreted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources {
    /// For each of [`KEYS`] (same order), the text that applies and where it came from: an
    /// option, else the environment, else the file's (before its first section).
    pub values: [Option<(String, Origin)>; KEYS.len()],
    /// What the file says: its settings, the policy's own keys, its sections.
    pub file: FileParts,
    /// What was wrong with the file, its lines and the environment's names.
    pub errors: Vec<ConfigError>,
}

impl Sources {
    /// The text of setting `key` (`MFIGUARD_MODE`, ...) and its origin, if any source set it.
    pub fn get(&self, key: &str) -> Option<&(String, Origin)> {
        let i = KEYS.iter().position(|k| *k == key)?;
        self.values.get(i)?.as_ref()
    }

    /// The text of setting `key` when the environment or an option set it (a request), not
    /// the file.
    pub fn requested(&self, key: &str) -> Option<&(String, Origin)> {
        self.get(key)
            .filter(|(_, o)| !matches!(o, Origin::File { .. }))
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
    let mut parts = FileParts::default();
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
            origin: None,
        }),
        FileSource::Text { path, text } => parse_file(path, text, &mut parts, &mut errors),
    }
    let mut values = parts.values.clone();
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
                        origin: Some(Origin::Env),
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
            let bare = name.trim_start_matches("MFIGUARD_").to_ascii_lowercase();
            let (message, summary) = if POLICY_KEYS.contains(&bare.as_str()) {
                (
                    format!("{bare} is the policy's own setting: only the config file gives it; using mode readonly"),
                    format!("{name}=\"{value}\" (from the environment): {bare} is set in the config file only, never by the environment"),
                )
            } else {
                let mut valid = closest(name, &KEYS);
                // The settings, and the variables a user sets that are not (not the test hooks).
                valid.extend(&NOT_SETTINGS[..3]);
                let valid = valid.join(", ");
                (
                    format!("unknown MFIGUARD_ variable (valid: {valid}); using mode readonly"),
                    format!(
                        "{name}=\"{value}\" (from the environment): unknown variable; valid: {valid}"
                    ),
                )
            };
            errors.push(ConfigError {
                key: name.clone(),
                value: value.clone(),
                message,
                kind: ErrorKind::UnknownKey,
                summary,
                origin: Some(Origin::Env),
            });
        }
    }
    Sources {
        values,
        file: parts,
        errors,
    }
}

/// Builds the configuration from collected settings, for no one in particular (a caller no
/// section matches; see [`Config::settle`] and [`decide_with`]).
pub fn decide(sources: &Sources, device: DeviceLookup<'_>) -> Config {
    decide_with(sources, device, &Accounts::of_host, &[Subject::NOBODY])
}

/// An error pusher shared by the settings: a value that cannot be used, reported with where
/// it came from.
struct Problems<'e> {
    errors: &'e mut Vec<ConfigError>,
}

impl Problems<'_> {
    fn value(
        &mut self,
        key: &str,
        (value, origin): &(String, Origin),
        problem: String,
        fallback: &str,
    ) {
        if value == INVALID {
            // Already reported as not UTF-8.
            return;
        }
        self.errors.push(ConfigError {
            key: key.into(),
            value: value.clone(),
            message: format!("{problem}; {fallback}"),
            kind: ErrorKind::Value,
            summary: format!("{key}=\"{value}\" (from {origin}): {problem}"),
            origin: Some(origin.clone()),
        })
    }

    fn note(&mut self, key: &str, value: &str, origin: &Origin, what: String) {
        self.errors.push(ConfigError {
            key: key.into(),
            value: value.into(),
            message: what.clone(),
            kind: ErrorKind::Note,
            summary: format!("{origin}: {what}"),
            origin: Some(origin.clone()),
        });
    }

    /// A mode; an unknown one is `readonly`, the strictest: a typo in `readonly` must not give
    /// a monitoring job the right to change the controller.
    fn mode(&mut self, key: &str, v: &(String, Origin)) -> GuardMode {
        parse_mode(&v.0).unwrap_or_else(|| {
            self.value(key, v, mode_problem(&v.0), "using readonly");
            GuardMode::Readonly
        })
    }

    fn allow(&mut self, key: &str, v: &(String, Origin)) -> RuleSet {
        parse_allow(&v.0).unwrap_or_else(|problem| {
            self.value(key, v, problem, "no rule is allowed");
            RuleSet::EMPTY
        })
    }

    /// A lowest mode; an unknown one is `mode` itself (nothing lower may be asked for).
    fn lowest(&mut self, v: &(String, Origin), mode: GuardMode) -> GuardMode {
        let lowest = parse_mode(&v.0).unwrap_or_else(|| {
            self.value(
                "lowest_mode",
                v,
                mode_problem(&v.0),
                "a command line may ask for no weaker mode than the policy's",
            );
            mode
        });
        if lowest.strictness() > mode.strictness() {
            self.note(
                "lowest_mode",
                &v.0,
                &v.1,
                format!(
                    "lowest_mode {} is stricter than the mode {}: no effect (a command line may always ask for a stricter mode)",
                    lowest.name(),
                    mode.name()
                ),
            );
        }
        lowest
    }
}

/// The site policy the file gives: its default (before the first section) and its sections.
fn site_policy(
    file: &FileParts,
    p: &mut Problems<'_>,
    accounts: &dyn Fn() -> Accounts,
) -> SitePolicy {
    let mode_v = file.get("mode");
    let mode = mode_v.map_or(GuardMode::Enforce, |v| p.mode("MFIGUARD_MODE", v));
    // No mode in the file: no site policy to hold a command line to.
    let lowest = match (file.get("lowest_mode"), mode_v) {
        (Some(v), _) => p.lowest(v, mode),
        (None, Some(_)) => mode,
        (None, None) => GuardMode::Off,
    };
    let allow = file
        .get("allow")
        .map_or(RuleSet::EMPTY, |v| p.allow("MFIGUARD_ALLOW", v));
    let preview = match file.get("preview") {
        None => false,
        Some(v) => parse_bool(&v.0).unwrap_or_else(|| {
            p.value(
                "preview",
                v,
                bool_problem(&v.0),
                "using no (the policy is enforced)",
            );
            false
        }),
    };
    let default = Entry {
        mode,
        lowest,
        allow,
    };
    let accounts = if file.sections.is_empty() {
        Accounts::default()
    } else {
        accounts()
    };
    let sections = file
        .sections
        .iter()
        .map(|raw| section(raw, &default, &accounts, p))
        .collect();
    SitePolicy {
        default,
        sections,
        preview,
    }
}

fn section(
    raw: &RawSection,
    default: &Entry,
    accounts: &Accounts,
    p: &mut Problems<'_>,
) -> Section {
    let mut criteria = Vec::new();
    for w in &raw.written {
        let (c, note) = accounts.resolve(w);
        if let Some(note) = note {
            p.note(
                "MFIGUARD_CONFIG",
                &raw.header,
                &raw.origin,
                format!("[{}]: {note}", raw.header),
            );
        }
        criteria.push(c);
    }
    let mode_v = raw.get("mode");
    let mode = mode_v.map_or(default.mode, |v| p.mode("MFIGUARD_MODE", v));
    let lowest = match (raw.get("lowest_mode"), mode_v) {
        (Some(v), _) => p.lowest(v, mode),
        (None, Some(_)) => mode,
        (None, None) => default.lowest,
    };
    let allow = raw
        .get("allow")
        .map_or(default.allow, |v| p.allow("MFIGUARD_ALLOW", v));
    Section {
        header: raw.header.clone(),
        origin: raw.origin.clone(),
        criteria,
        entry: Entry {
            mode,
            lowest,
            allow,
        },
    }
}

/// [`decide`] with the account files given (`accounts`, asked only when the file has sections)
/// and this process's calls judged for `subjects`.
pub fn decide_with(
    sources: &Sources,
    device: DeviceLookup<'_>,
    accounts: &dyn Fn() -> Accounts,
    subjects: &[Subject<'_>],
) -> Config {
    let mut errors = sources.errors.clone();
    let get = |key: &str| sources.get(key).cloned();
    let log_v = get("MFIGUARD_LOG");
    let audit_v = get("MFIGUARD_AUDIT");
    let debug_v = get("MFIGUARD_DEBUG");
    let sync_v = get("MFIGUARD_LOG_SYNC");
    let device_v = get("MFIGUARD_DEVICE");
    let required_v = get("MFIGUARD_LOG_REQUIRED");

    let mut p = Problems {
        errors: &mut errors,
    };
    let mut site = site_policy(&sources.file, &mut p, accounts);
    let mut requested = Requested {
        mode: sources
            .requested("MFIGUARD_MODE")
            .map(|v| (p.mode("MFIGUARD_MODE", v), v.1.clone())),
        allow: sources
            .requested("MFIGUARD_ALLOW")
            .map(|v| (p.allow("MFIGUARD_ALLOW", v), v.1.clone())),
    };
    // A key the guard does not know, a line it cannot read or a file it cannot use: it cannot
    // tell what was meant, so everyone gets the strictest mode.
    if sources.errors.iter().any(|e| e.kind.forces_readonly()) {
        site = SitePolicy {
            default: Entry {
                mode: GuardMode::Readonly,
                lowest: GuardMode::Readonly,
                allow: RuleSet::EMPTY,
            },
            sections: Vec::new(),
            preview: false,
        };
        requested = Requested::NONE;
    }

    let log = match &log_v {
        None => LogTarget::Syslog,
        Some(v) => parse_log(&v.0).unwrap_or_else(|problem| {
            p.value("MFIGUARD_LOG", v, problem, "using syslog");
            LogTarget::Syslog
        }),
    };

    let audit_level = audit_v.as_ref().map(|v| {
        parse_audit(&v.0).unwrap_or_else(|| {
            p.value("MFIGUARD_AUDIT", v, audit_problem(&v.0), "using all");
            AuditLevel::All
        })
    });

    let debug = debug_v
        .map(|(v, _)| v)
        .filter(|v| !v.trim().is_empty() && v != INVALID);

    let mut flag = |key: &str, value: &Option<(String, Origin)>| -> bool {
        let Some(v) = value else { return false };
        parse_bool(&v.0).unwrap_or_else(|| {
            p.value(key, v, bool_problem(&v.0), "using 1");
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
                    p.value("MFIGUARD_DEVICE", v, why, "ignored");
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
            origin: required_v.as_ref().map(|v| v.1.clone()),
        });
    }

    let mut config = Config {
        mode: GuardMode::Enforce,
        preview_of: None,
        log,
        audit: AuditLevel::Findings,
        audit_level,
        allow: RuleSet::EMPTY,
        site,
        requested,
        run: None,
        debug,
        log_sync,
        device,
        log_required,
        errors,
        exe: String::new(),
    };
    config.settle(subjects, None);
    config
}

/// Builds the configuration from the environment's `MFIGUARD_*` variables and the file. Pure:
/// no I/O beyond what `device` does (and the account files, for a file with sections), so
/// that tests can feed any combination.
pub fn parse(env: &Env, file: &FileSource, device: DeviceLookup<'_>) -> Config {
    decide(&collect(env, file), device)
}
