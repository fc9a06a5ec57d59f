use super::file::file_value;
use super::values::edit_distance;
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
        "/etc/mfiguard.conf:2: \"this line has no equals\" is not a \"key = value\" line \
         (or a [section]); valid keys: mode, log, audit, allow, debug, device, preview, \
         log_sync, lowest_mode, log_required"
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
         mode, log, audit, allow, debug, device, preview, log_sync, lowest_mode, log_required"
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
        "'stdout' is not a log target; use stderr, syslog, none, journal or an absolute path \
         (several separated by commas)"
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
        FileSource::Text { text, .. } => {
            assert!(text.is_empty() || std::fs::metadata("/dev/stdin").is_ok_and(|m| m.is_file()))
        }
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
        assert!(reason(read_file(p, true)).contains("owned by uid 65534, neither root nor uid 0"));
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
