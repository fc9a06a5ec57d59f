//! `--check`'s policy and log sections: the mode a run would get and why, the settings'
//! sources, and whether records can be written where they go.

use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use mfiguard_core::config::{self, ErrorKind, FileSource, Origin, Sources};

use crate::facts;
use crate::settings::Settings;
use crate::sys;

/// Where a setting's value came from, as `--check` names it.
fn source(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Env => key.to_string(),
        other => other.to_string(),
    }
}

/// "value (from source)" of one setting, or "`default` (default)".
fn show(sources: &Sources, key: &str, default: &str) -> String {
    let Some((value, origin)) = sources.get(key) else {
        return format!("{default} (default)");
    };
    let shown = match key {
        "MFIGUARD_MODE" => config::parse_mode(value).map(|m| m.name().to_string()),
        "MFIGUARD_LOG" => config::parse_log(value)
            .ok()
            .map(|l| l.describe().to_string()),
        "MFIGUARD_AUDIT" => config::parse_audit(value).map(|a| match a {
            config::AuditLevel::All => "all".to_string(),
            config::AuditLevel::Findings => "findings".to_string(),
        }),
        "MFIGUARD_ALLOW" => config::parse_allow(value).ok().map(|set| {
            let ids: Vec<&str> = set.iter().map(|r| r.name()).collect();
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(",")
            }
        }),
        _ => config::parse_bool(value).map(|b| if b { "on" } else { "off" }.to_string()),
    };
    let shown = shown.unwrap_or_else(|| {
        if value.is_empty() {
            "\"\"".into()
        } else {
            value.clone()
        }
    });
    format!("{shown} (from {})", source(key, origin))
}

/// Where a policy value came from, for people: `file:line`, `--mode`, `MFIGUARD_MODE`.
fn origin_text(key: &str, origin: &Origin) -> String {
    source(key, origin)
}

/// A rule set as its ids, or `none`.
fn allow_text(set: mfiguard_sanitizer::RuleSet) -> String {
    let ids: Vec<&str> = set.iter().map(|r| r.name()).collect();
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(",")
    }
}

/// Why this caller gets its mode: `from --mode` (a request), `from FILE:LINE` (the default),
/// `from FILE:LINE [user nagios], ...` (the sections it matches, the strictest applies), or
/// `default`; and what `preview = yes` holds back.
fn mode_reason(settings: &Settings, matched: &[&config::policy::Section]) -> String {
    let c = &settings.config;
    let file = &settings.sources.file;
    let requested = c.requested.mode.as_ref().filter(|_| {
        !c.errors
            .iter()
            .any(|e| e.kind == ErrorKind::Refused && e.key == "MFIGUARD_MODE")
    });
    let why = if let Some((_, origin)) = requested {
        format!("from {}", origin_text("MFIGUARD_MODE", origin))
    } else if matched.is_empty() {
        match file.get("mode") {
            Some((_, o)) => format!("from {o}"),
            None => "default".to_string(),
        }
    } else {
        let names: Vec<String> = matched
            .iter()
            .map(|s| format!("{} [{}]", s.origin, s.header))
            .collect();
        format!("from {}", names.join(", "))
    };
    match c.preview_of {
        Some(m) => {
            let at = file
                .get("preview")
                .map_or(String::new(), |(_, o)| format!(" at {o}"));
            format!("{why}: {} once the preview line{at} goes", m.name())
        }
        None => why,
    }
}

/// The policy a run would use, and whether a run would be allowed and its records written.
pub(super) fn check_policy(settings: &Settings) -> bool {
    let mut ok = true;
    let path = &settings.config_path;
    match &settings.file {
        FileSource::Text { .. } => println!("policy for runs (config {path}):"),
        FileSource::Unreadable { .. } => println!(
            "policy for runs (config {path}: cannot read it as uid {}):",
            mfiguard_core::sys::uid()
        ),
        FileSource::Absent => println!("policy for runs (no config file at {path}):"),
    }
    let s = &settings.sources;
    let c = &settings.config;
    facts::set("/policy/config", path.as_str());
    facts::set(
        "/policy/config_file",
        match &settings.file {
            FileSource::Text { .. } => "read",
            FileSource::Unreadable { .. } => "unreadable",
            FileSource::Absent => "absent",
        },
    );
    let me = &settings.subject;
    let subject = [me.subject()];
    let matched: Vec<&config::policy::Section> = c.site.matching(&subject).collect();
    let reason = mode_reason(settings, &matched);
    for (key, name, default) in [
        ("MFIGUARD_LOG", "log", "syslog"),
        ("MFIGUARD_AUDIT", "audit", "default"),
        ("MFIGUARD_LOG_SYNC", "log_sync", "off"),
        ("MFIGUARD_LOG_REQUIRED", "log_required", "off"),
    ] {
        let text = show(s, key, default);
        let (value, from) = match text.rsplit_once(" (from ") {
            Some((v, f)) => (v.to_string(), f.trim_end_matches(')').to_string()),
            None => (
                text.trim_end_matches(" (default)").to_string(),
                "default".into(),
            ),
        };
        facts::set(&format!("/policy/{name}/value"), value);
        facts::set(&format!("/policy/{name}/from"), from);
    }
    facts::set("/policy/mode/value", c.mode.name());
    facts::set("/policy/mode/from", reason.as_str());
    facts::set("/policy/preview_of", c.preview_of.map(|m| m.name()));
    let allow_from = match &c.requested.allow {
        Some((_, o))
            if !c
                .errors
                .iter()
                .any(|e| e.kind == ErrorKind::Refused && e.key == "MFIGUARD_ALLOW") =>
        {
            origin_text("MFIGUARD_ALLOW", o)
        }
        _ if !matched.is_empty() => "the sections this caller matches".to_string(),
        _ => s
            .file
            .get("allow")
            .map_or("default".to_string(), |(_, o)| o.to_string()),
    };
    facts::set("/policy/allow/value", allow_text(c.allow));
    facts::set("/policy/allow/from", allow_from.as_str());
    let entry = c.site.entry_for(&subject);
    let lowest = entry.lowest.weaker(entry.mode);
    facts::set("/policy/lowest_mode", lowest.name());
    facts::set("/policy/preview", c.site.preview);
    facts::set(
        "/policy/caller",
        serde_json::json!({
            "uid": me.uid, "groups": me.groups, "sudo_user": me.sudo_user,
            "sudo_uid": me.sudo_uid, "login_uid": me.login_uid,
            "tool": (!me.exe.is_empty()).then_some(me.exe.as_str()),
        }),
    );
    let d = &c.site.default;
    facts::set(
        "/policy/default",
        serde_json::json!({
            "mode": d.mode.name(), "lowest_mode": d.lowest.weaker(d.mode).name(),
            "allow": allow_text(d.allow),
            "from": s.file.get("mode").map(|(_, o)| o.to_string()),
        }),
    );
    let sections: Vec<serde_json::Value> = c
        .site
        .sections
        .iter()
        .map(|sec| {
            serde_json::json!({
                "section": sec.header, "from": sec.origin.to_string(),
                "mode": sec.entry.mode.name(),
                "lowest_mode": sec.entry.lowest.weaker(sec.entry.mode).name(),
                "allow": allow_text(sec.entry.allow),
                "applies": matched.iter().any(|m| std::ptr::eq(*m, sec)),
            })
        })
        .collect();
    facts::set("/policy/sections", sections);
    facts::set("/policy/warnings", Vec::<String>::new());
    facts::set("/policy/invalid", Vec::<String>::new());
    facts::set("/policy/errors", Vec::<serde_json::Value>::new());
    println!("  mode:  {} ({reason})", c.mode.name());
    if lowest != entry.mode {
        println!(
            "  lowest: {} (--mode or MFIGUARD_MODE may ask for a mode down to this one here)",
            lowest.name()
        );
    }
    if c.site.per_caller() {
        let mut who = match me.uid {
            Some(u) => format!("uid {u}"),
            None => "an unknown uid".into(),
        };
        if let Some(u) = &me.sudo_user {
            who.push_str(&format!(", sudo user {}", crate::printable(u)));
        }
        if let Some(u) = me.login_uid {
            who.push_str(&format!(", login uid {u}"));
        }
        if !me.exe.is_empty() {
            who.push_str(&format!(", tool {}", crate::printable(&me.exe)));
        }
        println!("  caller: {who}");
    }
    if c.site.per_caller() {
        println!(
            "  sections: {} (the strictest of those a caller matches applies; else the default {})",
            c.site.sections.len(),
            d.mode.name()
        );
        for sec in &c.site.sections {
            let applies = matched.iter().any(|m| std::ptr::eq(*m, sec));
            println!(
                "    [{}] {}: mode {}, lowest {}, allow {}{}",
                crate::printable(&sec.header),
                sec.origin,
                sec.entry.mode.name(),
                sec.entry.lowest.weaker(sec.entry.mode).name(),
                allow_text(sec.entry.allow),
                if applies { " (applies here)" } else { "" }
            );
        }
    }
    if c.site.preview {
        println!(
            "  preview: yes: nothing is refused; records say what the policy's modes would do"
        );
    }
    println!("  log:   {}", show(s, "MFIGUARD_LOG", "syslog"));
    if allow_from == "default" {
        println!("  allow: {} (default)", allow_text(c.allow));
    } else {
        println!("  allow: {} (from {allow_from})", allow_text(c.allow));
    }
    println!(
        "  audit: {}",
        show(s, "MFIGUARD_AUDIT", "findings in enforce, all in audit")
    );
    println!("  log_sync:     {}", show(s, "MFIGUARD_LOG_SYNC", "off"));
    println!(
        "  log_required: {}",
        show(s, "MFIGUARD_LOG_REQUIRED", "off")
    );
    for e in &c.errors {
        facts::push(
            "/policy/errors",
            serde_json::json!({
                "kind": match e.kind {
                    ErrorKind::Value => "value",
                    ErrorKind::UnknownKey => "unknown-key",
                    ErrorKind::BadLine => "bad-line",
                    ErrorKind::File => "file",
                    ErrorKind::Note => "note",
                    ErrorKind::Refused => "refused",
                },
                "key": e.key, "value": e.value,
                "from": e.origin.as_ref().map(ToString::to_string),
                "line": match &e.origin { Some(Origin::File { line, .. }) => Some(*line), _ => None },
                "message": crate::printable(&e.summary),
            }),
        );
        if e.kind == ErrorKind::Note {
            println!("  WARNING: {}", crate::printable(&e.summary));
            facts::push("/policy/warnings", crate::printable(&e.summary));
        }
    }
    let invalid = settings.refusals();
    for line in &invalid {
        println!("  INVALID: {line}");
        facts::push("/policy/invalid", line.as_str());
    }
    if !invalid.is_empty() {
        println!("  runs are refused (exit 125) until this is fixed");
        ok = false;
    }
    ok &= check_sink(settings);
    ok
}

/// Where a run's records go, and whether this user can write them there; false when they
/// cannot and log_required is on (every guarded call would fail with EIO).
fn check_sink(settings: &Settings) -> bool {
    let s = &settings.sources;
    let required = s
        .get("MFIGUARD_LOG_REQUIRED")
        .and_then(|(v, _)| config::parse_bool(v))
        .unwrap_or(false);
    let target = match s.get("MFIGUARD_LOG") {
        None => config::LogTarget::Syslog,
        Some((v, _)) => match config::parse_log(v) {
            Ok(t) => t,
            Err(_) => return true,
        },
    };
    let me = format!("uid {}", sys::euid());
    let mut problems: Vec<String> = Vec::new();
    if target.targets().is_empty() {
        println!("  records: none are written");
    }
    for t in target.targets() {
        if let Some(p) = sink_problem(t, &me) {
            problems.push(p);
        }
    }
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    facts::set("/policy/records/writable", problem.is_none());
    facts::set("/policy/records/problem", problem.clone());
    facts::set("/policy/records/log_required", required);
    let Some(problem) = problem else { return true };
    if required {
        println!("  FAILED: records: {problem}: with log_required on, every guarded MegaRAID call would fail with EIO");
        false
    } else {
        println!("  WARNING: records: {problem}: records would be lost (the tool's stderr gets a 'cannot write audit records' line)");
        true
    }
}

/// Whether records can go to one destination (a line said when they can); why not.
fn sink_problem(target: &config::LogTarget, me: &str) -> Option<String> {
    let socket = |p: &str| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket());
    match target {
        config::LogTarget::Syslog => {
            if socket("/dev/log") {
                println!("  records: syslog: /dev/log is a socket");
                None
            } else if socket(mfiguard_core::audit::JOURNAL_SOCKET) {
                println!(
                    "  records: syslog: the journal ({})",
                    mfiguard_core::audit::JOURNAL_SOCKET
                );
                None
            } else {
                Some("syslog: /dev/log is not a socket (no syslog daemon listening here)".into())
            }
        }
        config::LogTarget::Journal => {
            if socket(mfiguard_core::audit::JOURNAL_SOCKET) {
                println!(
                    "  records: journal: {} is a socket",
                    mfiguard_core::audit::JOURNAL_SOCKET
                );
                None
            } else {
                Some(format!(
                    "journal: {} is not a socket (systemd-journald is not running here)",
                    mfiguard_core::audit::JOURNAL_SOCKET
                ))
            }
        }
        config::LogTarget::Stderr => {
            println!("  records: the tool's standard error");
            None
        }
        config::LogTarget::None | config::LogTarget::Several(_) => None,
        config::LogTarget::File(c) => {
            let f = PathBuf::from(c.to_string_lossy().into_owned());
            let d = f
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("/"))
                .to_path_buf();
            let (fs, ds) = (f.display(), d.display());
            match std::fs::symlink_metadata(&f).and_then(|_| std::fs::metadata(&f)) {
                _ if !d.is_dir() => Some(format!("{fs}: the directory {ds} does not exist")),
                Ok(m) if m.is_dir() => Some(format!("{fs} is a directory")),
                Ok(m) if !m.is_file() => {
                    if sys::writable(&f) {
                        println!("  records: {fs}: exists (not a regular file), writable by {me}");
                        None
                    } else {
                        Some(format!("{fs}: not writable by {me}"))
                    }
                }
                Ok(_) => {
                    // Opened for append as the library does (never created), and closed
                    // without writing.
                    let opened = std::fs::OpenOptions::new()
                        .append(true)
                        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
                        .open(&f);
                    if opened.is_ok() {
                        println!("  records: {fs}: exists, can be appended to by {me}");
                        None
                    } else {
                        Some(format!("{fs}: cannot be opened for append by {me}"))
                    }
                }
                Err(_) if sys::writable(&d) && sys::executable(&d) => {
                    println!("  records: {fs}: does not exist yet; {me} can create it in {ds}");
                    None
                }
                Err(_) => Some(format!(
                    "{fs}: does not exist and {me} cannot create files in {ds}"
                )),
            }
        }
    }
}
