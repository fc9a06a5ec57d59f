//! Each setting's text from the environment and the file, and the [`Config`] decided from it.

use mfiguard_sanitizer::RuleSet;

use super::file::{parse_file, Env, FileSource};
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
