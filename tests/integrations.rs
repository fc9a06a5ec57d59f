//! The smartd drop-in against systemd's conventions, with a stand-in `mfiguard-run`
//! (`systemd/smartd.service.d/mfiguard.conf`: smartd through `mfiguard-run --mode readonly`).
//! The Nagios plugin, the collectors, the units and the shims: `tests/monitoring.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use common::Scratch;

fn integration(rel: &str) -> PathBuf {
    common::root().join("examples/integrations").join(rel)
}

struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn dump(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn run(cmd: &mut Command) -> Out {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MFIGUARD_") || k.starts_with("FAKE_") {
            cmd.env_remove(&k);
        }
    }
    let (status, stdout, stderr) = common::run_with_timeout(
        cmd.env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        common::RUN_TIMEOUT,
    );
    Out {
        status,
        stdout,
        stderr,
    }
}

fn write_exec(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in for `mfiguard-run`: `--check` prints the file `$FAKE_CHECK` and exits
/// `$FAKE_CHECK_RC` (after `$FAKE_CHECK_SLEEP` seconds); a run writes its arguments to
/// `$FAKE_ARGS`, appends the file `$FAKE_RECORDS` to its `--log` file, and execs the tool.
const FAKE_WRAPPER: &str = r#"#!/bin/sh
if [ "$1" = --check ]; then
	[ -z "${FAKE_CHECK_SLEEP:-}" ] || sleep "$FAKE_CHECK_SLEEP"
	[ -z "${FAKE_CHECK:-}" ] || cat "$FAKE_CHECK"
	exit "${FAKE_CHECK_RC:-0}"
fi
[ -z "${FAKE_ARGS:-}" ] || printf '%s\n' "$*" >"$FAKE_ARGS"
log=
while [ "$1" != -- ]; do
	[ "$1" != --log ] || log=$2
	shift
done
shift
[ ! -s "${FAKE_RECORDS:-}" ] || cat "$FAKE_RECORDS" >>"$log"
exec "$@"
"#;

fn fake_wrapper(s: &Scratch) -> PathBuf {
    let p = s.path("mfiguard-run");
    write_exec(&p, FAKE_WRAPPER);
    p
}

// ---- smartd ---------------------------------------------------------------------------------

#[test]
fn the_smartd_drop_in_runs_smartd_read_only_through_the_wrapper() {
    let text =
        std::fs::read_to_string(integration("systemd/smartd.service.d/mfiguard.conf")).unwrap();
    let body: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    // A drop-in must clear the unit's ExecStart= before it sets its own; under the supervisor
    // smartd is mfiguard-run's child, so its readiness message needs NotifyAccess=all.
    assert_eq!(body[0], "[Service]", "{body:?}");
    let reset = body.iter().position(|l| *l == "ExecStart=");
    let first_set = body
        .iter()
        .position(|l| l.starts_with("ExecStart=") && *l != "ExecStart=");
    assert!(
        matches!((reset, first_set), (Some(r), Some(f)) if r < f),
        "{body:?}"
    );
    assert!(body.contains(&"NotifyAccess=all"), "{body:?}");
    let exec: Vec<&str> = body
        .iter()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .collect();
    assert_eq!(exec.len(), 2, "{exec:?}");
    assert!(
        exec[1].starts_with("/usr/bin/mfiguard-run --mode readonly --log /var/log/mfiguard/")
            && exec[1].contains(" -- /usr/sbin/smartd -n "),
        "{}",
        exec[1]
    );

    // systemd reads it: a smartd.service with the drop-in next to it verifies.
    let have = Command::new("sh")
        .args(["-c", "command -v systemd-analyze >/dev/null"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!("note: systemd-analyze not installed: the drop-in was not verified");
        return;
    }
    let s = Scratch::new("smartd");
    let units = s.path("units");
    std::fs::create_dir_all(units.join("smartd.service.d")).unwrap();
    let smartd = s.path("smartd");
    write_exec(&smartd, "#!/bin/sh\nexit 0\n");
    std::fs::write(
        units.join("smartd.service"),
        format!(
            "[Unit]\nDescription=stand-in smartd\n\n[Service]\nType=notify\nExecStart={} -n\n",
            smartd.display()
        ),
    )
    .unwrap();
    let wrapper = fake_wrapper(&s);
    std::fs::write(
        units.join("smartd.service.d/mfiguard.conf"),
        text.replace("/usr/bin/mfiguard-run", wrapper.to_str().unwrap())
            .replace("/usr/sbin/smartd", smartd.to_str().unwrap()),
    )
    .unwrap();
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("smartd.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning"));
    let complaints: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("smartd"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify:\n{}",
        out.dump()
    );
}
