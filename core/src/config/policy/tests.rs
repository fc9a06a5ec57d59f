//! The policy by who and what: sections, how they combine, what a request may change.

use super::super::sources::{collect, decide_with};
use super::super::{Config, ErrorKind, FileSource, LogTarget};
use super::*;
use mfiguard_sanitizer::RuleId;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                      nagios:x:110:115::/var/lib/nagios:/usr/sbin/nologin\n\
                      alice:x:1000:1000:Alice:/home/alice:/bin/bash\n\
                      bob:x:1001:200::/home/bob:/bin/bash\n";
const GROUP: &str =
    "root:x:0:\nnagios:x:115:\nalice:x:1000:\nmonitoring:x:200:nagios\nwheel:x:10:alice\n";

fn accounts() -> Accounts {
    Accounts::parse(PASSWD, GROUP)
}

fn no_device(_: &str) -> Result<u64, String> {
    Err("no such device".into())
}

/// The configuration for `text` and `env`, judged for `who`.
fn config(text: &str, env: &[(&str, &str)], who: &Subject<'_>) -> Config {
    let env: Vec<(String, Result<String, String>)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), Ok(v.to_string())))
        .collect();
    let file = FileSource::Text {
        path: "/etc/mfiguard.conf".into(),
        text: text.into(),
    };
    decide_with(&collect(&env, &file), &no_device, &accounts, &[*who])
}

const ROOT: Subject<'static> = Subject {
    uid: Some(0),
    groups: &[0],
    sudo_user: None,
    sudo_uid: None,
    login_uid: Some(0),
    exe: "/opt/MegaRAID/MegaCli/MegaCli64",
    run_tool: None,
};

/// nagios through sudo: root, with sudo's variables and (from cron) its login uid.
const NAGIOS_SUDO: Subject<'static> = Subject {
    uid: Some(0),
    groups: &[0],
    sudo_user: Some("nagios"),
    sudo_uid: Some(110),
    login_uid: None,
    exe: "/opt/MegaRAID/MegaCli/MegaCli64",
    run_tool: None,
};

const SITE: &str = "mode = enforce\n\
                    log = /var/log/mfiguard/audit.jsonl\n\
                    \n\
                    [user nagios]\n\
                    mode = readonly\n";

#[test]
fn a_file_without_sections_is_the_default_for_everyone() {
    for who in [ROOT, NAGIOS_SUDO, Subject::NOBODY] {
        let c = config("mode = readonly\n", &[], &who);
        assert_eq!(c.mode, GuardMode::Readonly);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert!(!c.site.per_caller());
    }
}

#[test]
fn the_monitoring_account_is_held_to_readonly_and_root_is_not() {
    let root = config(SITE, &[], &ROOT);
    assert_eq!(root.mode, GuardMode::Enforce);
    let nagios = config(SITE, &[], &NAGIOS_SUDO);
    assert_eq!(nagios.mode, GuardMode::Readonly);
    // By its uid, its login uid, or its name as sudo gives it: each identity counts.
    for who in [
        Subject {
            uid: Some(110),
            ..Subject::NOBODY
        },
        Subject {
            login_uid: Some(110),
            uid: Some(0),
            ..Subject::NOBODY
        },
        Subject {
            sudo_user: Some("nagios"),
            ..Subject::NOBODY
        },
    ] {
        assert_eq!(config(SITE, &[], &who).mode, GuardMode::Readonly, "{who:?}");
    }
    // The same configuration, asked per caller (the supervisor, mfiguard-hostd).
    let daemon = config(SITE, &[], &Subject::NOBODY);
    assert_eq!(daemon.for_caller(&NAGIOS_SUDO).mode, GuardMode::Readonly);
    assert_eq!(daemon.for_caller(&ROOT).mode, GuardMode::Enforce);
}

#[test]
fn several_sections_combine_to_the_strictest() {
    let text = "mode = readonly\n\
                [user root]\nmode = enforce\nallow = sgl.offset-unusual, xfer.length\n\
                [tool storcli64]\nmode = audit\nallow = xfer.length\n\
                [group monitoring]\nmode = readonly\n";
    let storcli = Subject {
        exe: "/opt/MegaRAID/storcli/storcli64",
        ..ROOT
    };
    // root: its section; root running storcli: root's and the tool's, the stricter mode and
    // only the rule both allow.
    let c = config(text, &[], &ROOT);
    assert_eq!(c.mode, GuardMode::Enforce);
    assert!(c.allow.contains(RuleId::SglOffsetUnusual));
    let c = config(text, &[], &storcli);
    assert_eq!(c.mode, GuardMode::Enforce);
    assert!(!c.allow.contains(RuleId::SglOffsetUnusual));
    assert!(c.allow.contains(RuleId::XferLength));
    // nagios through sudo is root too, and in group monitoring: readonly wins.
    assert_eq!(config(text, &[], &NAGIOS_SUDO).mode, GuardMode::Readonly);
    // bob's primary group is monitoring (/etc/passwd); a process with gid 200 is in it.
    let bob = Subject {
        uid: Some(1001),
        ..Subject::NOBODY
    };
    assert_eq!(config(text, &[], &bob).mode, GuardMode::Readonly);
    let gid = Subject {
        uid: Some(5000),
        groups: &[5000, 200],
        ..Subject::NOBODY
    };
    assert_eq!(config(text, &[], &gid).mode, GuardMode::Readonly);
    // No section matches: the default.
    let other = Subject {
        uid: Some(5000),
        groups: &[5000],
        ..Subject::NOBODY
    };
    assert_eq!(config(text, &[], &other).mode, GuardMode::Readonly);
    // A tool by its path, as /proc/PID/exe names it.
    let by_path = "mode = enforce\n[tool /opt/MegaRAID/storcli/storcli64]\nmode = readonly\n";
    assert_eq!(config(by_path, &[], &storcli).mode, GuardMode::Readonly);
    assert_eq!(config(by_path, &[], &ROOT).mode, GuardMode::Enforce);
    // The program a run was started for counts as the tool too (a job's script).
    let job = "mode = enforce\n[tool /usr/libexec/mfiguard/mfiguard-snapshot]\nmode = readonly\n";
    let snapshot = Subject {
        run_tool: Some("/usr/libexec/mfiguard/mfiguard-snapshot"),
        ..ROOT
    };
    assert_eq!(config(job, &[], &snapshot).mode, GuardMode::Readonly);
    assert_eq!(config(job, &[], &ROOT).mode, GuardMode::Enforce);
    // All criteria of one header must hold.
    let both = "mode = enforce\n[user nagios, tool storcli64]\nmode = readonly\n";
    assert_eq!(config(both, &[], &NAGIOS_SUDO).mode, GuardMode::Enforce);
    let nagios_storcli = Subject {
        exe: "/opt/MegaRAID/storcli/storcli64",
        ..NAGIOS_SUDO
    };
    assert_eq!(config(both, &[], &nagios_storcli).mode, GuardMode::Readonly);
}

#[test]
fn a_request_may_be_stricter_never_weaker() {
    // The monitoring account cannot pass --mode off (nor enforce); readonly it may.
    let c = config(SITE, &[("MFIGUARD_MODE", "off")], &NAGIOS_SUDO);
    assert_eq!(c.mode, GuardMode::Readonly);
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    assert_eq!(c.errors[0].kind, ErrorKind::Refused);
    assert_eq!(c.errors[0].key, "MFIGUARD_MODE");
    assert!(
        c.errors[0].summary.contains(
            "asks for mode off, weaker than the policy lets this caller choose (at least readonly"
        ),
        "{}",
        c.errors[0].summary
    );
    let c = config(SITE, &[("MFIGUARD_MODE", "enforce")], &NAGIOS_SUDO);
    assert_eq!(
        (c.mode, c.errors[0].kind),
        (GuardMode::Readonly, ErrorKind::Refused)
    );
    let c = config(SITE, &[("MFIGUARD_MODE", "readonly")], &NAGIOS_SUDO);
    assert_eq!(c.mode, GuardMode::Readonly);
    assert!(c.errors.is_empty());
    // root may ask for readonly, not for audit.
    let c = config(SITE, &[("MFIGUARD_MODE", "readonly")], &ROOT);
    assert_eq!((c.mode, c.preview_of), (GuardMode::Readonly, None));
    let c = config(SITE, &[("MFIGUARD_MODE", "audit")], &ROOT);
    assert_eq!(c.mode, GuardMode::Enforce);
    // An allow list the policy does not have is refused; a smaller one is taken.
    let c = config(SITE, &[("MFIGUARD_ALLOW", "sgl.bounds")], &ROOT);
    assert_eq!(c.allow, RuleSet::EMPTY);
    assert_eq!(c.errors[0].key, "MFIGUARD_ALLOW");
    let allowed = "mode = enforce\nallow = xfer.length, sgl.offset-unusual\n";
    let c = config(allowed, &[("MFIGUARD_ALLOW", "xfer.length")], &ROOT);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert!(c.allow.contains(RuleId::XferLength) && !c.allow.contains(RuleId::SglOffsetUnusual));
}

#[test]
fn lowest_mode_lets_an_account_choose_a_weaker_mode_once() {
    let text = "mode = enforce\n\
                [user alice]\nlowest_mode = off\n\
                [user nagios]\nmode = readonly\n";
    let alice = Subject {
        uid: Some(0),
        sudo_user: Some("alice"),
        sudo_uid: Some(1000),
        login_uid: Some(1000),
        ..ROOT
    };
    let c = config(text, &[("MFIGUARD_MODE", "off")], &alice);
    assert_eq!((c.mode, c.preview_of), (GuardMode::Off, None));
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    // A section that sets lowest_mode only keeps the default's mode.
    assert_eq!(config(text, &[], &alice).mode, GuardMode::Enforce);
    // With a lowest mode of off a command line may allow rules too.
    let c = config(text, &[("MFIGUARD_ALLOW", "sgl.bounds")], &alice);
    assert!(c.allow.contains(RuleId::SglBounds), "{:?}", c.errors);
    // root alone, and nagios, may not.
    assert_eq!(
        config(text, &[("MFIGUARD_MODE", "off")], &ROOT).mode,
        GuardMode::Enforce
    );
    assert_eq!(
        config(text, &[("MFIGUARD_MODE", "audit")], &NAGIOS_SUDO).mode,
        GuardMode::Readonly
    );
    // alice's sudo to run nagios's job: the stricter of both (nagios's lowest is readonly).
    let both = Subject {
        sudo_user: Some("nagios"),
        ..alice
    };
    assert_eq!(
        config(text, &[("MFIGUARD_MODE", "off")], &both).mode,
        GuardMode::Readonly
    );
}

#[test]
fn no_mode_in_the_file_leaves_the_choice_to_the_command_line() {
    // No site policy: as before policies, any mode may be asked for.
    let c = config("log = stderr\n", &[("MFIGUARD_MODE", "off")], &ROOT);
    assert_eq!(c.mode, GuardMode::Off);
    assert!(c.errors.is_empty());
    // A written mode holds: the one a site rolls out.
    let c = config("mode = audit\n", &[("MFIGUARD_MODE", "off")], &ROOT);
    assert_eq!(c.mode, GuardMode::Audit);
    assert_eq!(c.errors[0].kind, ErrorKind::Refused);
    let c = config("mode = audit\n", &[("MFIGUARD_MODE", "enforce")], &ROOT);
    assert_eq!(c.mode, GuardMode::Enforce);
}

#[test]
fn preview_lets_everything_through_and_keeps_the_policys_mode_for_records() {
    let text = format!("preview = yes\n{SITE}");
    let c = config(&text, &[], &NAGIOS_SUDO);
    assert_eq!(
        (c.mode, c.preview_of),
        (GuardMode::Audit, Some(GuardMode::Readonly))
    );
    assert_eq!(c.own_calls().audit, crate::config::AuditLevel::All);
    let c = config(&text, &[], &ROOT);
    assert_eq!(
        (c.mode, c.preview_of),
        (GuardMode::Audit, Some(GuardMode::Enforce))
    );
    // A mode a command line asks for is previewed too (a job that pins readonly): nothing is
    // refused on the host while the preview lasts.
    let c = config(&text, &[("MFIGUARD_MODE", "readonly")], &ROOT);
    assert_eq!(
        (c.mode, c.preview_of),
        (GuardMode::Audit, Some(GuardMode::Readonly))
    );
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    // off and audit are not previews of anything.
    let with_lowest = format!("lowest_mode = off\n{text}");
    let c = config(&with_lowest, &[("MFIGUARD_MODE", "off")], &ROOT);
    assert_eq!((c.mode, c.preview_of), (GuardMode::Off, None));
    // Deleting the one line puts the policy in force.
    assert_eq!(config(SITE, &[], &NAGIOS_SUDO).mode, GuardMode::Readonly);
    assert_eq!(config(SITE, &[], &ROOT).mode, GuardMode::Enforce);
    // preview does not come from the environment.
    let c = config(SITE, &[("MFIGUARD_PREVIEW", "yes")], &ROOT);
    assert_eq!(c.mode, GuardMode::Readonly);
    assert_eq!(c.errors[0].kind, ErrorKind::UnknownKey);
    assert!(
        c.errors[0].summary.contains("set in the config file only"),
        "{}",
        c.errors[0].summary
    );
}

/// Each mistake of the new syntax: its line, the word that is wrong, what is accepted; and the
/// strictest mode for everyone until it is fixed.
#[test]
fn section_mistakes_name_the_line_and_the_word() {
    let cases: [(&str, &str); 7] = [
        ("[usr nagios]", "/etc/mfiguard.conf:2: \"[usr nagios]\": 'usr' is not a section kind; use user, tool or group"),
        ("[user]", "/etc/mfiguard.conf:2: \"[user]\": 'user' needs a user name or uid: [user nagios]"),
        ("[user nagios", "/etc/mfiguard.conf:2: \"[user nagios\": a section header ends with ']'"),
        ("[]", "/etc/mfiguard.conf:2: \"[]\": an empty section; write [user NAME], [group NAME] or [tool PATH]"),
        ("[user nagios icinga]", "'nagios icinga': one user a criterion (several accounts: one section each)"),
        ("[user nagios, user icinga]", "two 'user' criteria in one section can never both hold; one section each"),
        ("[tool bin/MegaCli64]", "'bin/MegaCli64': a tool is an absolute path or a file name without '/'"),
    ];
    for (header, want) in cases {
        let c = config(
            &format!("mode = enforce\n{header}\nmode = off\n"),
            &[],
            &ROOT,
        );
        assert_eq!(c.mode, GuardMode::Readonly, "{header}");
        assert_eq!(c.errors.len(), 1, "{header}: {:?}", c.errors);
        assert_eq!(c.errors[0].kind, ErrorKind::BadLine);
        assert!(
            c.errors[0].summary.ends_with(want),
            "{header}: {}",
            c.errors[0].summary
        );
    }
    // A host setting inside a section, and an unknown key there.
    let c = config("[user nagios]\nlog = stderr\n", &[], &ROOT);
    assert_eq!(c.mode, GuardMode::Readonly);
    assert_eq!(
        c.errors[0].summary,
        "log=\"stderr\" (from /etc/mfiguard.conf:2): 'log' applies to the whole host, not to \
         [user nagios]: put it before the first section; a section takes mode, allow or lowest_mode"
    );
    let c = config("[user nagios]\nmoed = audit\n", &[], &ROOT);
    assert!(
        c.errors[0].summary.ends_with(
            "unknown key 'moed' in [user nagios]; a section takes mode, allow or lowest_mode"
        ),
        "{}",
        c.errors[0].summary
    );
    // A bad value in a section: that section's strictest choice, with its line.
    let c = config(
        "mode = enforce\n[user nagios]\nmode = readonyl\n",
        &[],
        &NAGIOS_SUDO,
    );
    assert_eq!(c.mode, GuardMode::Readonly);
    assert_eq!(c.errors[0].summary, "MFIGUARD_MODE=\"readonyl\" (from /etc/mfiguard.conf:3): unknown mode; use readonly, enforce, audit or off");
    assert_eq!(
        config(
            "mode = enforce\n[user nagios]\nmode = readonyl\n",
            &[],
            &ROOT
        )
        .mode,
        GuardMode::Enforce
    );
    // An account this host does not have: a note, not a refusal (one file for a fleet).
    let c = config(
        "mode = enforce\n[user icinga]\nmode = readonly\n",
        &[],
        &ROOT,
    );
    assert_eq!(c.errors.len(), 1);
    assert_eq!(c.errors[0].kind, ErrorKind::Note);
    assert!(
        c.errors[0].summary.starts_with(
            "/etc/mfiguard.conf:2: [user icinga]: no user 'icinga' in /etc/passwd here"
        ),
        "{}",
        c.errors[0].summary
    );
    let icinga = Subject {
        sudo_user: Some("icinga"),
        ..ROOT
    };
    assert_eq!(c.for_caller(&icinga).mode, GuardMode::Readonly);
}

#[test]
fn several_log_destinations() {
    let c = config("log = journal, /var/log/mfiguard/audit.jsonl\n", &[], &ROOT);
    let want = [
        LogTarget::Journal,
        LogTarget::File(std::ffi::CString::new("/var/log/mfiguard/audit.jsonl").unwrap()),
    ];
    assert_eq!(c.log.targets(), want);
    assert_eq!(c.log.names(), "journal, /var/log/mfiguard/audit.jsonl");
    assert_eq!(
        c.log.file().map(|p| p.to_str().unwrap()),
        Some("/var/log/mfiguard/audit.jsonl")
    );
    // Written twice: once.
    assert_eq!(
        config("log = stderr, STDERR\n", &[], &ROOT).log,
        LogTarget::Stderr
    );
    for (bad, why) in [
        (
            "none, syslog",
            "'none' cannot be combined with other destinations",
        ),
        ("syslog,", "an empty destination; use"),
        ("/a, /b, /c, /d, /e", "5 destinations; at most 4"),
        ("journal, stdout", "'stdout' is not a log target"),
    ] {
        let c = config(&format!("log = {bad}\n"), &[], &ROOT);
        assert_eq!(c.log, LogTarget::Syslog, "{bad}");
        assert!(
            c.errors[0].summary.contains(why),
            "{bad}: {}",
            c.errors[0].summary
        );
    }
}

/// What a process's environment claims (SUDO_USER, SUDO_UID, MFIGUARD_RUN_TOOL) can tighten
/// the policy, never loosen it: a claim matching a section weaker than the default gives
/// nothing, and a lowest_mode needs the caller's own ids.
#[test]
fn claims_only_tighten() {
    let text = "mode = readonly\n\
                [user alice]\nmode = enforce\nlowest_mode = off\n\
                [tool smartd]\nmode = enforce\n";
    // root claiming to run for alice, or to be smartd's run: still the default readonly.
    let claims_alice = Subject {
        sudo_user: Some("alice"),
        sudo_uid: Some(1000),
        login_uid: None,
        ..ROOT
    };
    assert_eq!(config(text, &[], &claims_alice).mode, GuardMode::Readonly);
    let c = config(text, &[("MFIGUARD_MODE", "off")], &claims_alice);
    assert_eq!(
        (c.mode, c.errors[0].kind),
        (GuardMode::Readonly, ErrorKind::Refused)
    );
    let claims_smartd = Subject {
        run_tool: Some("/usr/sbin/smartd"),
        ..ROOT
    };
    assert_eq!(config(text, &[], &claims_smartd).mode, GuardMode::Readonly);
    // The same accounts by their own ids: alice's login uid (kept by the kernel across sudo),
    // smartd's executable.
    let alice = Subject {
        login_uid: Some(1000),
        ..claims_alice
    };
    assert_eq!(config(text, &[], &alice).mode, GuardMode::Enforce);
    assert_eq!(
        config(text, &[("MFIGUARD_MODE", "off")], &alice).mode,
        GuardMode::Off
    );
    let smartd = Subject {
        exe: "/usr/sbin/smartd",
        ..ROOT
    };
    assert_eq!(config(text, &[], &smartd).mode, GuardMode::Enforce);
}
