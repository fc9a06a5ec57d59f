//! The words each setting takes, read in any case, and the closest valid ones for a typo.

use std::ffi::CString;

use mfiguard_sanitizer::RuleSet;

use super::{AuditLevel, GuardMode, LogTarget, KEYS};

/// The modes, in the order messages list them when nothing is closer.
pub const MODES: [&str; 4] = ["enforce", "readonly", "audit", "off"];

/// The log targets that are not paths.
pub const LOG_WORDS: [&str; 4] = ["syslog", "journal", "stderr", "none"];

/// The most destinations one `log` setting names.
pub const LOG_MAX: usize = 4;

/// The audit levels.
pub const AUDIT_LEVELS: [&str; 2] = ["findings", "all"];

/// The spellings of a boolean: true, then false.
pub const BOOLEANS: [&str; 8] = ["1", "0", "true", "false", "yes", "no", "on", "off"];

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
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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

/// A value's log target (one destination, or several separated by commas: `journal,
/// /var/log/mfiguard/audit.jsonl`), or what is wrong with it (naming the word).
pub fn parse_log(v: &str) -> Result<LogTarget, String> {
    let mut targets: Vec<LogTarget> = Vec::new();
    let items: Vec<&str> = v.split(',').map(str::trim).collect();
    for item in &items {
        let t = parse_one_log(item)?;
        if t == LogTarget::None && items.len() > 1 {
            return Err("'none' cannot be combined with other destinations".into());
        }
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    if targets.len() > LOG_MAX {
        return Err(format!("{} destinations; at most {LOG_MAX}", targets.len()));
    }
    Ok(match targets.len() {
        1 => targets.remove(0),
        _ => LogTarget::Several(targets.into_boxed_slice()),
    })
}

fn parse_one_log(v: &str) -> Result<LogTarget, String> {
    match v.to_ascii_lowercase().as_str() {
        "syslog" => Ok(LogTarget::Syslog),
        "journal" => Ok(LogTarget::Journal),
        "stderr" => Ok(LogTarget::Stderr),
        "none" => Ok(LogTarget::None),
        _ if v.starts_with('/') => CString::new(v)
            .map(LogTarget::File)
            .map_err(|_| "the path contains NUL".into()),
        _ => {
            let mut valid = closest(v, &LOG_WORDS);
            valid.push("an absolute path");
            let what = if v.is_empty() {
                "an empty destination".to_string()
            } else {
                format!("'{v}' is not a log target")
            };
            Err(format!(
                "{what}; use {} (several separated by commas)",
                or_list(&valid)
            ))
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
