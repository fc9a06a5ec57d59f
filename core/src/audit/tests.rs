use super::*;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use mfiguard_sanitizer::{Abi, Decision, Errno, Verdict};

use super::emit::{render, LOST};
use super::json::json_string;
use super::json::{call_json, error_json};
use super::line::call_line;
use super::report::CutLine;
use super::sink::file::File;
use super::sink::file::{log_group_gid, open_log, LOG_PATH_CHECKED};
use super::sink::stderr::Stderr;
use super::sink::syslog::Syslog;
use super::sink::{Sink, SinkError};
use super::time::Rfc3164;
use crate::config::{Config, GuardMode, LogTarget};
use crate::sys;
use mfiguard_sanitizer::builder::samples;
use mfiguard_sanitizer::{decide_packet, decode, Policy, RuleId, RuleSet};

const WHO: Who = Who { pid: 4242, uid: 0 };

fn escaped(s: &str) -> String {
    let mut out = String::new();
    json_string(&mut out, s).unwrap();
    out
}

#[test]
fn json_strings_escape_quotes_backslashes_and_controls() {
    assert_eq!(escaped("plain"), "\"plain\"");
    assert_eq!(escaped("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(escaped("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
    assert_eq!(
        escaped("\u{0}\u{1f}\u{7f}\u{8}\u{c}"),
        r#""\u0000\u001f\u007f\b\f""#
    );
    assert_eq!(escaped("café ✓ \u{2028}"), "\"café ✓ \u{2028}\"");
    assert_eq!(escaped(""), "\"\"");
    // Every escaped string is valid JSON that decodes back (checked by a tiny decoder).
    for s in ["\"\\\"", "x\u{1}y", "/usr/sbin/Mega\"Cli\n64"] {
        assert_eq!(unescape(&escaped(s)), s);
    }
}

/// Decodes a JSON string literal produced by `json_string` (enough for the tests).
fn unescape(lit: &str) -> String {
    let inner = &lit[1..lit.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            assert!(c as u32 >= 0x20 && c != '"', "raw {c:?} in {lit}");
            out.push(c);
            continue;
        }
        match chars.next().unwrap() {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
            }
            other => panic!("bad escape {other}"),
        }
    }
    out
}

#[test]
fn timestamps() {
    let t = |s: u64, us: u32| {
        UNIX_EPOCH
            + std::time::Duration::from_secs(s)
            + std::time::Duration::from_micros(u64::from(us))
    };
    assert_eq!(Rfc3339(t(0, 0)).to_string(), "1970-01-01T00:00:00.000000Z");
    assert_eq!(
        Rfc3339(t(951_782_400, 7)).to_string(),
        "2000-02-29T00:00:00.000007Z"
    );
    assert_eq!(
        Rfc3339(t(1_714_566_896, 123_456)).to_string(),
        "2024-05-01T12:34:56.123456Z"
    );
    assert_eq!(
        Rfc3339(t(4_102_444_799, 999_999)).to_string(),
        "2099-12-31T23:59:59.999999Z"
    );
    assert_eq!(Rfc3164(t(1_714_566_896, 0)).to_string(), "May  1 12:34:56");
}

/// The reader of the records' times (`mfiguard-run --report`, the collector) takes back what the
/// writer wrote, and RFC 3339 times with an offset.
#[test]
fn timestamps_read_back() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800));
    assert_eq!(
        parse_rfc3339("2000-03-01T01:00:00+01:00"),
        Some(951_868_800)
    );
    let t = parse_rfc3339("2026-11-25T06:32:54.367825Z").unwrap();
    assert_eq!(Rfc3339Seconds(t).to_string(), "2026-11-25T06:32:54Z");
    assert_eq!(parse_rfc3339("2026-13-25T06:32:54Z"), None);
    assert_eq!(parse_rfc3339("yesterday"), None);
    for secs in [
        0,
        951_782_400,
        1_714_566_896,
        4_102_444_799,
        86_399,
        1_000_000_007,
    ] {
        let written = Rfc3339(UNIX_EPOCH + std::time::Duration::new(secs, 999_999_000));
        let secs = i64::try_from(secs).unwrap();
        assert_eq!(parse_rfc3339(&written.to_string()), Some(secs), "{written}");
        assert_eq!(parse_rfc3339(&Rfc3339Seconds(secs).to_string()), Some(secs));
    }
}

fn seed_record<'a>(verdict: &'a Verdict, info: PacketInfo) -> CallRecord<'a> {
    CallRecord {
        guard: Guard::Preload,
        caller: None,
        invoker: None,
        abi: Abi::NATIVE,
        seq: 7,
        exe: "/opt/MegaRAID/MegaCli/MegaCli64",
        mode: GuardMode::Enforce,
        preview_of: None,
        request: Abi::NATIVE.firmware_request(),
        nested: false,
        host_no: Some(info.host_no),
        packet: Some(info),
        decision: verdict.decision(),
        enforced: verdict.enforced(),
        verdict: Some(verdict),
        readonly_preview: None,
        issue: None,
        outcome: None,
    }
}

/// A CTRL_GET_INFO whose SGL lies outside its frame (`sgl.bounds`): its verdict and fields.
fn sgl_bounds_refusal() -> (Verdict, PacketInfo) {
    let bytes = samples::dcmd_read(Abi::NATIVE, 0x0101_0000, 0x1000, 2048)
        .sgl_off(0x40000)
        .build();
    let p = decode(Abi::NATIVE, &bytes).unwrap();
    let v = decide_packet(&Policy::default(), &p);
    let info = PacketInfo::new(&p, &v);
    (v, info)
}

/// The outcome of a call the guard refused with `EINVAL`.
const EINVAL_OUTCOME: Outcome = Outcome {
    ret: -1,
    errno: libc::EINVAL,
    cmd_status: None,
    latency_us: None,
};

fn stp_probe() -> (Verdict, PacketInfo) {
    let bytes =
        samples::megacli_8_01_06_stp_probe(Abi::NATIVE, 3, 0x7f00_0000_1000, 0x7f00_0000_2000)
            .build();
    let p = decode(Abi::NATIVE, &bytes).unwrap();
    let v = decide_packet(&Policy::default(), &p);
    let info = PacketInfo::new(&p, &v);
    (v, info)
}

#[test]
fn a_decision_and_its_outcome_as_json() {
    let (v, info) = stp_probe();
    assert_eq!(v.decision(), Decision::Rewrite);
    let mut rec = seed_record(&v, info);
    let ts = UNIX_EPOCH + std::time::Duration::from_secs(1_714_566_896);
    let mut decision = String::new();
    call_json(
        &mut decision,
        &rec,
        WHO,
        None,
        Phase::Decision,
        ts,
        0,
        true,
        None,
    )
    .unwrap();
    let (request, code, abi) = match Abi::NATIVE {
        Abi::Lp64 => ("MEGASAS_IOC_FIRMWARE", "0xc1944d01", "x86_64"),
        Abi::Ilp32 => ("MEGASAS_IOC_FIRMWARE32", "0xc1144d01", "i386"),
    };
    let host = crate::sys::NodeName::now().as_str().to_string();
    let expected = format!(
        r#"{{"record":"decision","schema_version":1,"seq":7,"ts":"2024-05-01T12:34:56.000000Z","host":"{host}","pid":4242,"exe":"/opt/MegaRAID/MegaCli/MegaCli64","uid":0,"guard":"preload","mode":"enforce","request":"{request}","request_code":"{code}","abi":"{abi}","host_no":0,"cmd":"STP","opcode":null,"opcode_name":null,"target_id":3,"flags":"0x0032","flags_sent":"0x0010","sgl_off":48,"sge_count":2,"#
    );
    assert!(decision.starts_with(&expected), "{decision}");
    assert!(decision.contains(r#""verdict":"rewrite","enforced":true,"findings":[{"rule":"frame.addressing-flags","action":"rewrite","downgraded":false,"detail":"flags 0x0032 (IEEE|SGL64|DIR_READ): cleared IEEE|SGL64"#), "{decision}");
    assert!(decision.ends_with(r#""ret":null,"errno":null,"errno_name":null,"cmd_status":null,"cmd_status_name":null,"latency_us":null}"#), "{decision}");
    rec.outcome = Some(Outcome {
        ret: 0,
        errno: 0,
        cmd_status: Some(0),
        latency_us: Some(153),
    });
    let mut outcome = String::new();
    call_json(
        &mut outcome,
        &rec,
        WHO,
        None,
        Phase::Outcome,
        ts,
        3,
        true,
        None,
    )
    .unwrap();
    assert!(outcome.starts_with(r#"{"record":"outcome","schema_version":1,"seq":7,"#));
    assert!(outcome.ends_with(r#""ret":0,"errno":0,"errno_name":null,"cmd_status":0,"cmd_status_name":"MFI_STAT_OK","latency_us":153,"records_lost":3}"#), "{outcome}");
    // The decision record never shows an outcome, even if one is known.
    let mut again = String::new();
    call_json(
        &mut again,
        &rec,
        WHO,
        None,
        Phase::Decision,
        ts,
        0,
        true,
        None,
    )
    .unwrap();
    assert_eq!(again, decision);
}

#[test]
fn a_rejection_as_a_readable_line() {
    let (v, info) = sgl_bounds_refusal();
    let mut rec = seed_record(&v, info);
    rec.outcome = Some(EINVAL_OUTCOME);
    let mut line = String::new();
    call_line(&mut line, &rec, WHO, None, Phase::Outcome, 0, true).unwrap();
    assert!(
        line.starts_with("#7 outcome reject EINVAL MEGASAS_IOC_FIRMWARE"),
        "{line}"
    );
    assert!(
        line.contains(
            " DCMD MR_DCMD_CTRL_GET_INFO host 0 target 0 flags 0x0010 sgl_off 0x40000 sge_count 1"
        ),
        "{line}"
    );
    assert!(
        line.contains("; sgl.bounds reject: SGL region [0x40000, 0x4000c)"),
        "{line}"
    );
    assert!(
        line.ends_with("; ret -1 EINVAL; exe /opt/MegaRAID/MegaCli/MegaCli64 uid 0"),
        "{line}"
    );
    assert!(!line.contains('\n'));
}

#[test]
fn allowed_rules_and_guard_issues_are_findings() {
    let bytes = samples::dcmd_read(Abi::NATIVE, 0x0101_0000, 0x1000, 2048)
        .sgl_off(0x40000)
        .build();
    let p = decode(Abi::NATIVE, &bytes).unwrap();
    let policy = Policy {
        allow: RuleSet::EMPTY.with(RuleId::SglBounds),
        ..Policy::default()
    };
    let v = decide_packet(&policy, &p);
    let rec = seed_record(&v, PacketInfo::new(&p, &v));
    let mut json = String::new();
    call_json(
        &mut json,
        &rec,
        WHO,
        None,
        Phase::Outcome,
        UNIX_EPOCH,
        0,
        false,
        None,
    )
    .unwrap();
    assert!(
        json.contains(r#"{"rule":"sgl.bounds","action":"warn","downgraded":true}"#),
        "{json}"
    );
    let fault = CallRecord {
        packet: None,
        host_no: None,
        verdict: None,
        decision: Decision::Reject(Errno::EFAULT),
        issue: Some(GuardIssue::Unreadable { addr: 0, len: 404 }),
        outcome: Some(Outcome {
            ret: -1,
            errno: libc::EFAULT,
            cmd_status: None,
            latency_us: None,
        }),
        ..rec
    };
    let mut json = String::new();
    call_json(
        &mut json,
        &fault,
        WHO,
        None,
        Phase::Outcome,
        UNIX_EPOCH,
        0,
        true,
        None,
    )
    .unwrap();
    assert!(json.contains(r#""cmd":null,"#));
    assert!(json.contains(r#""verdict":"reject","enforced":true,"findings":[{"rule":"guard.fault","action":"reject","downgraded":false,"detail":"the 404-byte packet at 0x0 is not readable"}],"ret":-1,"errno":14,"errno_name":"EFAULT""#), "{json}");
}

/// Every rule firing at once: the largest record a packet can make.
fn every_rule_at_once() -> (Verdict, PacketInfo) {
    let bytes = samples::scsi_inquiry(Abi::NATIVE, 1, 0x1000, 36, 0x2000)
        .sge_count(40)
        .sgl_off(0x1_0000)
        .sense_off(0x4_0000)
        .sense_len(0x10_0000)
        .header(|h| {
            h.cmd = 0x42;
            h.flags = 0xffff.into();
            h.sge_count = 200;
            h.data_xferlen = u32::MAX.into();
        })
        .build();
    let p = decode(Abi::NATIVE, &bytes).unwrap();
    let v = decide_packet(&Policy::default(), &p);
    let info = PacketInfo::new(&p, &v);
    (v, info)
}

#[test]
fn the_worst_record_fits_the_signal_context_buffer_or_degrades_to_compact() {
    // Every rule firing at once, the longest exe kept, audit mode.
    let (v, info) = every_rule_at_once();
    let exe = "\u{1}".repeat(crate::config::EXE_MAX);
    let rec = CallRecord {
        exe: &exe,
        ..seed_record(&v, info)
    };
    let mut big = String::new();
    call_json(
        &mut big,
        &rec,
        WHO,
        None,
        Phase::Outcome,
        UNIX_EPOCH,
        u64::MAX,
        true,
        None,
    )
    .unwrap();
    let mut buf = StackBuf::<NESTED_BUF>::new();
    let file = std::ffi::CString::new("/x").unwrap();
    assert!(render(
        &mut buf,
        &File(&file),
        Record::Call(&rec, Phase::Outcome),
        WHO,
        None,
        UNIX_EPOCH,
        u64::MAX,
        None
    ));
    assert!(buf.bytes().ends_with(b"}\n"));
    if big.len() < NESTED_BUF {
        assert_eq!(&buf.bytes()[..big.len()], big.as_bytes());
    }
    // A buffer too small for anything fails cleanly.
    let mut tiny = StackBuf::<16>::new();
    assert!(!render(
        &mut tiny,
        &Stderr,
        Record::Call(&rec, Phase::Outcome),
        WHO,
        None,
        UNIX_EPOCH,
        0,
        None
    ));
}

#[test]
fn stack_buffers_refuse_whole_writes() {
    let mut b = StackBuf::<8>::new();
    b.write_str("12345").unwrap();
    assert!(b.write_str("6789").is_err());
    assert_eq!(b.bytes(), b"12345");
    b.write_str("678").unwrap();
    assert_eq!(b.bytes(), b"12345678");
}

#[test]
fn error_records() {
    let e = ErrorRecord {
        key: "MFIGUARD_MODE",
        value: "enf\"orec",
        message: "unknown mode (enforce, readonly, audit, off); using readonly",
        exe: "/bin/x",
    };
    let mut json = String::new();
    error_json(
        &mut json,
        &e,
        Who { pid: 1, uid: 2 },
        None,
        UNIX_EPOCH,
        0,
        None,
    )
    .unwrap();
    let host = crate::sys::NodeName::now().as_str().to_string();
    assert_eq!(
        json,
        format!(
            r#"{{"record":"error","schema_version":1,"ts":"1970-01-01T00:00:00.000000Z","host":"{host}","pid":1,"exe":"/bin/x","uid":2,"key":"MFIGUARD_MODE","value":"enf\"orec","message":"unknown mode (enforce, readonly, audit, off); using readonly"}}"#
        )
    );
    let mut buf = String::new();
    assert!(render(
        &mut buf,
        &Syslog,
        Record::Error(&e),
        Who { pid: 1, uid: 2 },
        None,
        UNIX_EPOCH,
        0,
        None
    ));
    assert_eq!(buf, "<84>Jan  1 00:00:00 mfiguard[1]: configuration: MFIGUARD_MODE=\"enf\\\"orec\": unknown mode (enforce, readonly, audit, off); using readonly");
}

#[test]
fn long_sink_names_are_elided_and_long_reports_cut_not_dropped() {
    let short = "/var/log/mfiguard/audit.jsonl";
    assert_eq!(SinkName(short).to_string(), short);
    let long = format!("/nonexistent/{}é/audit.jsonl", "d".repeat(1000));
    let shown = SinkName(&long).to_string();
    assert_eq!(shown.chars().count(), 203, "{shown}");
    assert!(shown.starts_with("/nonexistent/ddd") && shown.ends_with("dé/audit.jsonl"));
    assert!(shown.contains("..."));
    let mut line = CutLine::<64> {
        buf: StackBuf::new(),
        cut: false,
    };
    assert!(write!(line, "mfiguard[1]: {}é{}", "x".repeat(45), "y".repeat(100)).is_err());
    assert!(line.cut);
    let text = std::str::from_utf8(line.buf.bytes()).unwrap();
    assert_eq!(text.len(), 60, "{text}");
    assert!(text.ends_with("xé"), "{text}");
    // Never half a character.
    let mut line = CutLine::<64> {
        buf: StackBuf::new(),
        cut: false,
    };
    assert!(write!(line, "{}é", "x".repeat(59)).is_err());
    assert_eq!(line.buf.bytes(), "x".repeat(59).as_bytes());
}

#[test]
fn the_record_file_must_be_a_regular_file_of_root_or_ours() {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let dir = std::env::temp_dir().join(format!("mfiguard-open-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let c = |p: &std::path::Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();

    // Created: a regular file, mode 0640 whatever the umask, group adm if there is one and
    // we may give it (root may).
    let new = dir.join("new.jsonl");
    assert!(open_log(&c(&new)).is_ok());
    let meta = std::fs::metadata(&new).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    if let (Some(adm), 0) = (log_group_gid(), sys::euid()) {
        assert_eq!(meta.gid(), adm);
    }
    // Existing and ours: opened, mode untouched.
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(open_log(&c(&new)).is_ok());
    assert_eq!(
        std::fs::metadata(&new).unwrap().permissions().mode() & 0o7777,
        0o600
    );

    // A FIFO with no reader: refused at once, never opened (no hang).
    let fifo = dir.join("fifo");
    let fifo_c = c(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    assert_eq!(
        open_log(&fifo_c).unwrap_err(),
        SinkError::Refused(Refusal::Fifo)
    );
    // Also once the path was found acceptable (no look before the open): the open fails
    // at once (ENXIO) and says why; with a reader, the opened descriptor is refused.
    LOG_PATH_CHECKED.store(true, Ordering::Relaxed);
    assert_eq!(
        open_log(&fifo_c).unwrap_err(),
        SinkError::Refused(Refusal::Fifo)
    );
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    LOG_PATH_CHECKED.store(true, Ordering::Relaxed);
    assert_eq!(
        open_log(&fifo_c).unwrap_err(),
        SinkError::Refused(Refusal::Fifo)
    );
    drop(reader);
    LOG_PATH_CHECKED.store(true, Ordering::Relaxed);
    assert_eq!(
        open_log(c"/dev/null").unwrap_err(),
        SinkError::Refused(Refusal::CharDevice)
    );
    assert_eq!(
        open_log(c"/dev/null").unwrap_err(),
        SinkError::Refused(Refusal::CharDevice)
    );
    assert_eq!(
        open_log(&c(&dir)).unwrap_err(),
        SinkError::Refused(Refusal::Directory)
    );
    let link = dir.join("link");
    std::os::unix::fs::symlink(&new, &link).unwrap();
    assert_eq!(
        open_log(&c(&link)).unwrap_err(),
        SinkError::Refused(Refusal::Symlink)
    );
    // A dangling symlink is not created through either.
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("target"), &dangling).unwrap();
    assert_eq!(
        open_log(&c(&dangling)).unwrap_err(),
        SinkError::Refused(Refusal::Symlink)
    );
    assert!(!dir.join("target").exists());

    // Someone else's file (root can make one to test with).
    if sys::euid() == 0 {
        let theirs = dir.join("theirs.jsonl");
        std::fs::write(&theirs, "").unwrap();
        std::os::unix::fs::chown(&theirs, Some(4321), None).unwrap();
        assert_eq!(
            open_log(&c(&theirs)).unwrap_err(),
            SinkError::Refused(Refusal::ForeignOwner {
                owner: 4321,
                euid: 0
            })
        );
        assert_eq!(std::fs::read(&theirs).unwrap(), b"");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refusals_read_clearly() {
    assert_eq!(
        Refusal::Fifo.to_string(),
        "it is a FIFO, not a regular file"
    );
    assert_eq!(
        Refusal::ForeignOwner {
            owner: 1000,
            euid: 0
        }
        .to_string(),
        "it is owned by uid 1000, neither root nor this process (uid 0): refused, not written to"
    );
    let kind = |mode, uid| sys::FileKind { mode, rdev: 0, uid };
    assert_eq!(Refusal::of(kind(libc::S_IFREG | 0o600, 0), 1000), None);
    assert_eq!(Refusal::of(kind(libc::S_IFREG | 0o600, 1000), 1000), None);
    assert_eq!(
        Refusal::of(kind(libc::S_IFREG | 0o666, 1001), 1000),
        Some(Refusal::ForeignOwner {
            owner: 1001,
            euid: 1000
        })
    );
    assert_eq!(
        Refusal::of(kind(libc::S_IFSOCK, 0), 0),
        Some(Refusal::Socket)
    );
    assert_eq!(
        Refusal::of(kind(libc::S_IFBLK, 0), 0),
        Some(Refusal::BlockDevice)
    );
}

/// A configuration error record, for the sinks' tests.
const AN_ERROR: ErrorRecord<'static> = ErrorRecord {
    key: "K",
    value: "V",
    message: "M",
    exe: "",
};

#[test]
fn a_file_sink_appends_whole_lines_and_reports_failure() {
    let dir = std::env::temp_dir().join(format!("mfiguard-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("log.jsonl");
    let _ = std::fs::remove_file(&path);
    let cfg = Config {
        log: LogTarget::File(std::ffi::CString::new(path.to_str().unwrap()).unwrap()),
        log_sync: true,
        ..Config::FALLBACK
    };
    let e = AN_ERROR;
    assert_eq!(emit(&cfg, false, Record::Error(&e)), Ok(true));
    assert_eq!(emit(&cfg, true, Record::Error(&e)), Ok(true));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text
        .lines()
        .all(|l| l.starts_with("{\"record\":\"error\"") && l.ends_with('}')));
    // A symlink is not followed. The failure is reported on stderr, past the test harness's
    // capture: the file's name says that this one is expected.
    let link = dir.join("expected-failure-symlink.jsonl");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let cfg = Config {
        log: LogTarget::File(std::ffi::CString::new(link.to_str().unwrap()).unwrap()),
        ..Config::FALLBACK
    };
    assert_eq!(emit(&cfg, false, Record::Error(&e)), Err(libc::ELOOP));
    assert!(LOST[0].load(Ordering::Relaxed) >= 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn who_ran_it_from_sudo_the_login_uid_and_a_bounded_argv() {
    let by = Invoker::from_parts(
        Some(b"alice"),
        Some(b"1000"),
        Some(b"1000\n"),
        b"/opt/MegaRAID/MegaCli/MegaCli64\0-AdpAllInfo\0-aALL\0",
    );
    assert_eq!(by.sudo_user.as_deref(), Some("alice"));
    assert_eq!(by.sudo_uid, Some(1000));
    assert_eq!(by.login_uid, Some(1000));
    assert_eq!(
        by.argv,
        ["/opt/MegaRAID/MegaCli/MegaCli64", "-AdpAllInfo", "-aALL"]
    );
    assert!(!by.argv_truncated);
    // No sudo, the kernel's unset login uid, an empty argument kept.
    let by = Invoker::from_parts(None, Some(b"x"), Some(b"4294967295"), b"tool\0\0-v\0");
    assert_eq!(
        (by.sudo_user, by.sudo_uid, by.login_uid),
        (None, None, None)
    );
    assert_eq!(by.argv, ["tool", "", "-v"]);
    // Bounded: the argument that crosses ARGV_MAX is cut at a character boundary.
    let long = "é".repeat(ARGV_MAX);
    // "tool1" leaves 251 bytes: the 126th two-byte "é" does not fit.
    let cmdline = format!("tool1\0{long}\0after\0");
    let by = Invoker::from_parts(
        Some("ü".repeat(SUDO_USER_MAX).as_bytes()),
        None,
        None,
        cmdline.as_bytes(),
    );
    assert!(by.argv_truncated);
    assert_eq!(by.argv.len(), 2, "nothing after the cut argument");
    assert_eq!(by.argv.iter().map(String::len).sum::<usize>(), ARGV_MAX - 1);
    assert!(by.sudo_user.unwrap().len() <= SUDO_USER_MAX);
    assert_eq!(
        Invoker::from_parts(None, None, None, b"").argv,
        Vec::<String>::new()
    );
}

#[test]
fn records_name_who_ran_the_tool_after_uid() {
    let (v, info) = stp_probe();
    let rec = seed_record(&v, info);
    let by = Invoker::from_parts(
        Some(b"alice"),
        Some(b"1000"),
        Some(b"1000"),
        b"MegaCli64\0-a\"x\0",
    );
    let mut json = String::new();
    call_json(
        &mut json,
        &rec,
        WHO,
        Some(&by),
        Phase::Outcome,
        UNIX_EPOCH,
        0,
        true,
        None,
    )
    .unwrap();
    assert!(
        json.contains(r#""uid":0,"sudo_user":"alice","sudo_uid":1000,"login_uid":1000,"argv":["MegaCli64","-a\"x"],"guard":"preload","mode":"#),
        "{json}"
    );
    // Without it, the record is as it always was.
    let mut plain = String::new();
    call_json(
        &mut plain,
        &rec,
        WHO,
        None,
        Phase::Outcome,
        UNIX_EPOCH,
        0,
        true,
        None,
    )
    .unwrap();
    let mut none = String::new();
    call_json(
        &mut none,
        &rec,
        WHO,
        None,
        Phase::Outcome,
        UNIX_EPOCH,
        0,
        true,
        None,
    )
    .unwrap();
    assert_eq!(plain, none);
    // The first record of a process names the build, after who ran it.
    let mut first = String::new();
    call_json(
        &mut first,
        &rec,
        WHO,
        Some(&by),
        Phase::Outcome,
        UNIX_EPOCH,
        0,
        true,
        Some("mfiguard 0.1.0 (git 1a2b3c4d5e6f)"),
    )
    .unwrap();
    assert!(
        first.contains(r#""argv":["MegaCli64","-a\"x"],"build":"mfiguard 0.1.0 (git 1a2b3c4d5e6f)","guard":"preload","#),
        "{first}"
    );
    // The compact form leaves argv out; the readable line names sudo and the login uid.
    let mut compact = String::new();
    call_json(
        &mut compact,
        &rec,
        WHO,
        Some(&by),
        Phase::Outcome,
        UNIX_EPOCH,
        0,
        false,
        None,
    )
    .unwrap();
    assert!(
        compact.contains(r#""login_uid":1000,"guard":"preload","mode":"#),
        "{compact}"
    );
    let mut line = String::new();
    call_line(&mut line, &rec, WHO, Some(&by), Phase::Outcome, 0, true).unwrap();
    assert!(
        line.ends_with("uid 0 sudo_user alice sudo_uid 1000 login_uid 1000"),
        "{line}"
    );
    let mut err = String::new();
    let e = ErrorRecord {
        key: "MFIGUARD_MODE",
        value: "x",
        message: "m",
        exe: "/bin/x",
    };
    error_json(&mut err, &e, WHO, Some(&by), UNIX_EPOCH, 0, None).unwrap();
    assert!(err.contains(r#""uid":0,"sudo_user":"alice","#), "{err}");
}

#[test]
fn the_worst_invoker_still_fits_the_signal_context_buffer() {
    // The longest argv of characters JSON escapes six-fold, the longest sudo user.
    let cmdline = "\u{1}".repeat(2 * ARGV_MAX);
    let by = Invoker::from_parts(
        Some("\u{1}".repeat(SUDO_USER_MAX).as_bytes()),
        Some(b"4294967294"),
        Some(b"4294967294"),
        cmdline.as_bytes(),
    );
    let (v, info) = every_rule_at_once();
    let exe = "\u{1}".repeat(crate::config::EXE_MAX);
    let rec = CallRecord {
        exe: &exe,
        ..seed_record(&v, info)
    };
    let file = std::ffi::CString::new("/x").unwrap();
    for t in [&File(&file) as &dyn Sink, &Stderr] {
        let mut buf = StackBuf::<NESTED_BUF>::new();
        assert!(render(
            &mut buf,
            t,
            Record::Call(&rec, Phase::Outcome),
            WHO,
            Some(&by),
            UNIX_EPOCH,
            u64::MAX,
            Some("mfiguard 0.1.0 (git 1a2b3c4d5e6f) and then some more")
        ));
        assert!(buf.bytes().ends_with(b"\n"));
    }
}

/// Parses a datagram of the journal's native protocol as journald does: `KEY=value\n`, or
/// `KEY\n`, a little-endian u64 length, the value and `\n`.
fn journal_fields(mut d: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut fields = Vec::new();
    while !d.is_empty() {
        let nl = d
            .iter()
            .position(|&b| b == b'\n')
            .expect("a field ends in a newline");
        let (line, rest) = (&d[..nl], &d[nl + 1..]);
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((
                String::from_utf8(line[..eq].to_vec()).unwrap(),
                line[eq + 1..].to_vec(),
            ));
            d = rest;
        } else {
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let value = rest[8..8 + len].to_vec();
            assert_eq!(rest[8 + len], b'\n', "the value is followed by a newline");
            fields.push((String::from_utf8(line.to_vec()).unwrap(), value));
            d = &rest[8 + len + 1..];
        }
    }
    fields
}

#[test]
fn a_refusal_as_a_journal_entry_through_a_socket() {
    let (v, info) = sgl_bounds_refusal();
    let mut rec = seed_record(&v, info);
    rec.outcome = Some(EINVAL_OUTCOME);
    // A newline in a value cannot end its field early, nor add a field.
    rec.exe = "/opt/x\nMFIGUARD_VERDICT=pass";
    let by = Invoker::from_parts(Some(b"alice"), Some(b"1000"), Some(b"1000"), b"x\0");

    // Through a real datagram socket, as journald receives it.
    let dir = std::env::temp_dir().join(format!("mfiguard-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("socket");
    let _ = std::fs::remove_file(&path);
    let journal = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let entry = journal_entry(Record::Call(&rec, Phase::Outcome), WHO, Some(&by), 3);
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    sys::send_datagram_nowait(&c_path, &entry).unwrap();
    let mut got = vec![0u8; 65536];
    let n = journal.recv(&mut got).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(&got[..n], &entry[..]);

    let fields = journal_fields(&got[..n]);
    let all = |k: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
            .collect()
    };
    let one = |k: &str| -> String {
        let v = all(k);
        assert_eq!(v.len(), 1, "{k}: {v:?}");
        v[0].clone()
    };
    let mut line = String::new();
    call_line(&mut line, &rec, WHO, Some(&by), Phase::Outcome, 3, true).unwrap();
    assert_eq!(one("MESSAGE"), line);
    assert_eq!(one("PRIORITY"), "4", "a refusal is a warning");
    assert_eq!(one("SYSLOG_FACILITY"), "10");
    assert_eq!(one("SYSLOG_IDENTIFIER"), "mfiguard");
    assert_eq!(one("SYSLOG_PID"), "4242");
    assert_eq!(one("MFIGUARD_RECORD"), "outcome");
    assert_eq!(one("MFIGUARD_SEQ"), "7");
    assert_eq!(one("MFIGUARD_VERDICT"), "reject");
    assert_eq!(all("MFIGUARD_RULE"), ["sgl.bounds", "sgl.offset-unusual"]);
    assert_eq!(one("MFIGUARD_CMD"), "DCMD");
    assert_eq!(one("MFIGUARD_OPCODE"), "0x01010000");
    assert_eq!(one("MFIGUARD_OPCODE_NAME"), "MR_DCMD_CTRL_GET_INFO");
    assert_eq!(one("MFIGUARD_RET"), "-1");
    assert_eq!(one("MFIGUARD_ERRNO"), "EINVAL");
    assert_eq!(one("MFIGUARD_EXE"), "/opt/x\nMFIGUARD_VERDICT=pass");
    assert_eq!(one("MFIGUARD_UID"), "0");
    assert_eq!(one("MFIGUARD_SUDO_USER"), "alice");
    assert_eq!(one("MFIGUARD_LOGIN_UID"), "1000");
    assert_eq!(one("MFIGUARD_RECORDS_LOST"), "3");
    // Every key is what journald accepts: upper case, digits and '_', not starting with '_'.
    for (k, _) in &fields {
        assert!(
            !k.starts_with('_')
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "{k}"
        );
    }

    // An error record.
    let e = ErrorRecord {
        key: "MFIGUARD_MODE",
        value: "readonyl",
        message: "unknown mode (enforce, readonly, audit, off); using readonly",
        exe: "/bin/x",
    };
    let fields = journal_fields(&journal_entry(Record::Error(&e), WHO, None, 0));
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&"MFIGUARD_KEY") && !keys.contains(&"MFIGUARD_RECORDS_LOST"),
        "{keys:?}"
    );
    assert!(fields.contains(&("MFIGUARD_RECORD".into(), b"error".to_vec())));
    assert!(fields.contains(&("PRIORITY".into(), b"4".to_vec())));
}

/// The one errno table (the sanitizer's) names each errno a call or a sink meets by the C
/// library's number for it; an unnamed one keeps its number.
#[test]
fn errno_names_are_the_c_librarys() {
    for (e, name) in [
        (libc::EPERM, "EPERM"),
        (libc::ENOENT, "ENOENT"),
        (libc::EINTR, "EINTR"),
        (libc::EIO, "EIO"),
        (libc::ENXIO, "ENXIO"),
        (libc::EBADF, "EBADF"),
        (libc::EAGAIN, "EAGAIN"),
        (libc::ENOMEM, "ENOMEM"),
        (libc::EACCES, "EACCES"),
        (libc::EFAULT, "EFAULT"),
        (libc::EBUSY, "EBUSY"),
        (libc::ENODEV, "ENODEV"),
        (libc::ENOTDIR, "ENOTDIR"),
        (libc::EISDIR, "EISDIR"),
        (libc::EINVAL, "EINVAL"),
        (libc::ENFILE, "ENFILE"),
        (libc::EMFILE, "EMFILE"),
        (libc::ENOTTY, "ENOTTY"),
        (libc::ENOSPC, "ENOSPC"),
        (libc::EROFS, "EROFS"),
        (libc::EPIPE, "EPIPE"),
        (libc::ENOSYS, "ENOSYS"),
        (libc::ELOOP, "ELOOP"),
        (libc::EMSGSIZE, "EMSGSIZE"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::ENOBUFS, "ENOBUFS"),
        (libc::ECONNREFUSED, "ECONNREFUSED"),
        (libc::EDQUOT, "EDQUOT"),
    ] {
        assert_eq!(Errno(e).name(), name);
        assert_eq!(Errno(e).to_string(), name);
    }
    assert_eq!(Errno(libc::ERANGE).name(), "errno");
    assert_eq!(
        Errno(libc::ERANGE).to_string(),
        format!("errno {}", libc::ERANGE)
    );
}

/// Each sink frames a record as it always has: the file a JSON line, stderr a line after
/// `mfiguard[PID]: `, syslog a datagram after its RFC 3164 header (priority authpriv.notice for
/// a rewrite), without a newline.
#[test]
fn each_sink_frames_its_records() {
    let (v, info) = stp_probe();
    let rec = seed_record(&v, info);
    let file = std::ffi::CString::new("/x").unwrap();
    let sinks: [(&dyn Sink, &str, &str); 3] = [
        (
            &File(&file),
            "{\"record\":\"outcome\",\"schema_version\":1,\"seq\":",
            "}\n",
        ),
        (&Stderr, "mfiguard[4242]: #7 outcome rewrite ", "\n"),
        (
            &Syslog,
            "<85>Jan  1 00:00:00 mfiguard[4242]: #7 outcome rewrite ",
            "uid 0",
        ),
    ];
    for (sink, head, tail) in sinks {
        let mut buf = String::new();
        assert!(render(
            &mut buf,
            sink,
            Record::Call(&rec, Phase::Outcome),
            WHO,
            None,
            UNIX_EPOCH,
            0,
            None
        ));
        assert!(buf.starts_with(head), "{buf}");
        assert!(buf.ends_with(tail), "{buf}");
    }
}

/// A readable line (stderr, syslog, the journal's MESSAGE) of a record whose executable path,
/// sudo user and configuration key hold a newline and an ESC: one line, no control character,
/// no forged "outcome pass".
#[test]
fn every_readable_form_escapes_what_the_caller_controls() {
    let (v, info) = sgl_bounds_refusal();
    let mut rec = seed_record(&v, info);
    rec.outcome = Some(EINVAL_OUTCOME);
    let forged = "/tmp/x\nmfiguard[1]: #8 outcome pass MEGASAS_IOC_FIRMWARE\x1b[2K";
    rec.exe = forged;
    let by = Invoker::from_parts(Some(b"eve\n\x1b[1A"), None, None, b"x\0");
    let clean = |what: &str, text: &str| {
        let body = text.strip_suffix('\n').unwrap_or(text);
        assert!(
            !body.chars().any(|c| c.is_control()),
            "{what}: a control character in {body:?}"
        );
        assert!(
            body.contains("exe /tmp/x\\nmfiguard[1]: #8 outcome pass MEGASAS_IOC_FIRMWARE\\e[2K"),
            "{what}: {body}"
        );
        assert!(body.contains("sudo_user eve\\n\\e[1A"), "{what}: {body}");
    };
    for (what, sink) in [("stderr", &Stderr as &dyn Sink), ("syslog", &Syslog)] {
        let mut buf = String::new();
        assert!(render(
            &mut buf,
            sink,
            Record::Call(&rec, Phase::Outcome),
            WHO,
            Some(&by),
            UNIX_EPOCH,
            0,
            None
        ));
        clean(what, &buf);
    }
    // The nested path's stack buffer renders the same line.
    let mut stack = StackBuf::<NESTED_BUF>::new();
    assert!(render(
        &mut stack,
        &Stderr,
        Record::Call(&rec, Phase::Outcome),
        WHO,
        Some(&by),
        UNIX_EPOCH,
        0,
        None
    ));
    clean(
        "stderr (nested)",
        std::str::from_utf8(stack.bytes()).unwrap(),
    );
    let entry = journal_entry(Record::Call(&rec, Phase::Outcome), WHO, Some(&by), 0);
    let fields = journal_fields(&entry);
    let message = fields.iter().find(|(k, _)| k == "MESSAGE").unwrap();
    clean("journal MESSAGE", std::str::from_utf8(&message.1).unwrap());
    // The structured field keeps the exact bytes (binary-safe), for a query to match.
    let exe = fields.iter().find(|(k, _)| k == "MFIGUARD_EXE").unwrap();
    assert_eq!(exe.1, forged.as_bytes());

    // A configuration error's key and message too.
    let e = ErrorRecord {
        key: "MFIGUARD_\nMODE",
        value: "x\ny",
        message: "bad\x1b",
        exe: forged,
    };
    for sink in [&Stderr as &dyn Sink, &Syslog] {
        let mut buf = String::new();
        assert!(render(
            &mut buf,
            sink,
            Record::Error(&e),
            WHO,
            None,
            UNIX_EPOCH,
            0,
            None
        ));
        let body = buf.strip_suffix('\n').unwrap_or(&buf);
        assert!(!body.chars().any(|c| c.is_control()), "{body:?}");
    }
}

/// Several destinations: each record goes to each; one that fails (a directory as the file)
/// loses the record there, counted in its own records_lost, and the call's emit says so (the
/// errno, for MFIGUARD_LOG_REQUIRED), while the other still gets it; the journal alone, where
/// journald does not run, is a failure too, never a fallback to /dev/log.
#[test]
fn several_destinations_each_get_every_record() {
    let dir = std::env::temp_dir().join(format!("mfiguard-several-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a-directory")).unwrap();
    let good = dir.join("good.jsonl");
    let file =
        |p: &std::path::Path| LogTarget::File(std::ffi::CString::new(p.to_str().unwrap()).unwrap());
    let cfg = Config {
        log: LogTarget::Several(
            vec![file(&dir.join("a-directory")), file(&good)].into_boxed_slice(),
        ),
        ..Config::FALLBACK
    };
    let e = AN_ERROR;
    // The failure of the first is reported on stderr, past the test harness's capture.
    assert_eq!(emit(&cfg, false, Record::Error(&e)), Err(libc::EISDIR));
    assert_eq!(emit(&cfg, false, Record::Error(&e)), Err(libc::EISDIR));
    let text = std::fs::read_to_string(&good).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(LOST[0].load(Ordering::Relaxed) >= 2);
    assert!(
        !text.contains("records_lost"),
        "the good file lost nothing: {text}"
    );
    if !std::path::Path::new(JOURNAL_SOCKET).exists() {
        let journal = Config {
            log: LogTarget::Journal,
            ..Config::FALLBACK
        };
        assert_eq!(emit(&journal, false, Record::Error(&e)), Err(libc::ENOENT));
    } else {
        eprintln!("note: journald runs here: the journal's absence is not checked");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
