//! The syslog sink prefers the journal: with a real systemd-journald listening on its native
//! socket, a guarded refusal and a rewrite are found with `journalctl MFIGUARD_VERDICT=...`,
//! with their structured fields; `log = journal, FILE` puts each record in both, with audit
//! mode's preview of read-only (`MFIGUARD_WOULD_READONLY`). journald runs in a private mount namespace with its own tmpfs
//! on /run (and on /var/log/journal), so the host's /run and journal are never touched; the
//! test says why and returns when this machine cannot do that (not root, no journald, no
//! `unshare -m`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{examples, guard_lib, Scratch};
use serde_json::Value;

fn journald() -> Option<&'static str> {
    [
        "/lib/systemd/systemd-journald",
        "/usr/lib/systemd/systemd-journald",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

fn can_run(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const SCRIPT: &str = r#"
set -u
mount -t tmpfs tmpfs /run || exit 90
[ ! -d /var/log/journal ] || mount -t tmpfs tmpfs /var/log/journal || exit 91
mkdir -p /run/systemd/journal /run/log/journal
"$JOURNALD" </dev/null >/dev/null 2>&1 &
jpid=$!
trap 'kill $jpid 2>/dev/null; wait $jpid 2>/dev/null' EXIT
i=0
while [ ! -S /run/systemd/journal/socket ]; do
	i=$((i + 1))
	[ $i -le 100 ] || exit 92
	sleep 0.1
done
export MFIGUARD_DEVICE=/dev/null MFIGUARD_CONFIG=/dev/null MFIGUARD_LOG=syslog SUDO_USER=alice
LD_PRELOAD="$GUARD $SIM" MFISIM_RECORD="$SCRATCH/reject.sim" "$CLIENT" --device /dev/null sgl-off 0x40000 >/dev/null 2>"$SCRATCH/reject.err"
LD_PRELOAD="$GUARD $SIM" MFISIM_RECORD="$SCRATCH/rewrite.sim" "$CLIENT" --device /dev/null stp-probe 4 >/dev/null 2>"$SCRATCH/rewrite.err"
# Two destinations at once, in audit mode: a configuration clear goes through, and both the
# journal and the file say that read-only would have refused it.
MFIGUARD_MODE=audit MFIGUARD_LOG="journal, $SCRATCH/both.jsonl" LD_PRELOAD="$GUARD $SIM" MFISIM_RECORD="$SCRATCH/clear.sim" \
	"$CLIENT" --device /dev/null dcmd 0x04030000 none 0 >/dev/null 2>"$SCRATCH/clear.err"
# The entries are in the journal once journalctl shows the last one.
i=0
until journalctl --no-pager -D /run/log/journal -o json MFIGUARD_WOULD_READONLY=reject MFIGUARD_RECORD=outcome | grep -q .; do
	i=$((i + 1))
	[ $i -le 100 ] || exit 93
	sleep 0.1
done
journalctl --no-pager -D /run/log/journal -o json SYSLOG_IDENTIFIER=mfiguard
"#;

#[test]
fn records_reach_a_real_journald_with_their_fields() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: not root: cannot mount a private /run for journald");
        return;
    }
    let Some(journald) = journald() else {
        eprintln!("skipped: systemd-journald is not installed");
        return;
    };
    if !can_run("command -v journalctl") || !can_run("unshare -m true") {
        eprintln!("skipped: journalctl or a private mount namespace (unshare -m) is unavailable");
        return;
    }
    let s = Scratch::new("journald");
    let ex = examples();
    let (status, stdout, stderr) = common::run_with_timeout(
        Command::new("unshare")
            .args(["-m", "sh", "-c", SCRIPT])
            .env_remove("LD_PRELOAD")
            .env("JOURNALD", journald)
            .env("GUARD", guard_lib())
            .env("SIM", &ex.sim)
            .env("CLIENT", &ex.client)
            .env("SCRATCH", &s.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        common::RUN_TIMEOUT,
    );
    assert!(
        status.success(),
        "{status:?} (90-93: set-up)\n--- stdout\n{stdout}--- stderr\n{stderr}"
    );
    let entries: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let field = |e: &Value, k: &str| -> Value { e.get(k).cloned().unwrap_or(Value::Null) };
    let with = |verdict: &str, record: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| {
                field(e, "MFIGUARD_VERDICT") == verdict && field(e, "MFIGUARD_RECORD") == record
            })
            .collect()
    };

    // The refusal: one outcome record; nothing reached the simulated driver.
    let reject = with("reject", "outcome");
    assert_eq!(reject.len(), 1, "{stdout}");
    let r = reject[0];
    assert_eq!(field(r, "SYSLOG_IDENTIFIER"), "mfiguard");
    assert_eq!(field(r, "SYSLOG_FACILITY"), "10");
    assert_eq!(field(r, "PRIORITY"), "4");
    assert_eq!(
        field(r, "MFIGUARD_RULE"),
        serde_json::json!(["sgl.bounds", "sgl.offset-unusual"])
    );
    assert_eq!(field(r, "MFIGUARD_OPCODE_NAME"), "MR_DCMD_CTRL_GET_INFO");
    assert_eq!(field(r, "MFIGUARD_ERRNO"), "EINVAL");
    assert_eq!(field(r, "MFIGUARD_SUDO_USER"), "alice");
    let message = field(r, "MESSAGE");
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.starts_with("#1 outcome reject EINVAL ")
                && m.contains("; sgl.bounds reject: ")),
        "{message}"
    );
    assert!(
        !s.path("reject.sim").exists(),
        "the refused call reached the driver"
    );

    // The rewrite: a decision and an outcome; the driver got the flags the journal names.
    for record in ["decision", "outcome"] {
        let e = with("rewrite", record);
        assert_eq!(e.len(), 1, "{record}\n{stdout}");
        assert_eq!(field(e[0], "PRIORITY"), "5");
        assert_eq!(field(e[0], "MFIGUARD_FLAGS"), "0x0032");
        assert_eq!(field(e[0], "MFIGUARD_FLAGS_SENT"), "0x0010");
        assert_eq!(field(e[0], "MFIGUARD_RULE"), "frame.addressing-flags");
    }
    let sim = std::fs::read_to_string(s.path("rewrite.sim")).unwrap();
    assert!(sim.contains("\"flags\":\"0x0010\""), "{sim}");

    // log = journal, FILE: each record in both; audit mode's preview of read-only in both.
    let clear: Vec<&Value> = entries
        .iter()
        .filter(|e| field(e, "MFIGUARD_OPCODE_NAME") == "MR_DCMD_CFG_CLEAR")
        .collect();
    assert_eq!(clear.len(), 2, "a decision and an outcome\n{stdout}");
    for e in &clear {
        assert_eq!(field(e, "MFIGUARD_MODE"), "audit");
        assert_eq!(field(e, "MFIGUARD_WOULD_ENFORCE"), "pass");
        assert_eq!(field(e, "MFIGUARD_WOULD_READONLY"), "reject");
        assert_eq!(field(e, "MFIGUARD_WOULD_READONLY_RULE"), "readonly.dcmd");
    }
    let file = common::parse_records(
        &std::fs::read_to_string(s.path("both.jsonl")).unwrap(),
        "the file beside the journal",
    );
    assert_eq!(file.len(), 2, "{file:?}");
    assert_eq!(file[1]["would"]["readonly"]["verdict"], "reject");
    assert!(
        std::fs::read_to_string(s.path("clear.sim"))
            .unwrap()
            .contains("\"opcode\":\"0x04030000\""),
        "audit mode let it through"
    );
    // Nothing was lost, so nothing was reported on stderr.
    for run in ["reject.err", "rewrite.err", "clear.err"] {
        let err = std::fs::read_to_string(s.path(run)).unwrap();
        assert!(!err.contains("mfiguard["), "{run}: {err}");
    }
}
