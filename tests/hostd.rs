//! `mfiguard-hostd` on a host without CUSE (this one: the kernel lane boots the kernel that has
//! it and runs the daemon there, `kernel-lane/scenarios.sh` `hostd_*`): its status report, its
//! refusals, what it leaves alone when it cannot start, its unit and its page. The request
//! handling itself is unit-tested in `supervisor/src/hostd/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{have, Out, Scratch};

fn hostd(args: &[&std::ffi::OsStr]) -> Out {
    let mut cmd = Command::new(common::hostd_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MFIGUARD_") {
            cmd.env_remove(&k);
        }
    }
    // A config file of its own: no site policy of this machine.
    cmd.env("MFIGUARD_CONFIG", "/dev/null")
        .env("MFIGUARD_LOG", "none")
        .args(args)
        .stdin(Stdio::null());
    common::run(&mut cmd)
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn driver_loaded() -> bool {
    std::fs::read_to_string("/proc/devices")
        .is_ok_and(|d| d.lines().any(|l| l.ends_with(" megaraid_sas_ioctl")))
}

#[test]
fn status_reports_off_or_stopped_and_fails_without_the_daemon() {
    let s = Scratch::new("hostd-status");
    let node = s.path("megaraid_sas_ioctl_node");
    // Nothing at the path: off, with how to turn it on.
    let out = hostd(&[os("--status"), os("--node"), node.as_os_str()]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout
            .starts_with("host-wide guard: off: mfiguard-hostd is not running")
            && out.stdout.contains("systemctl enable --now mfiguard-hostd"),
        "{}",
        out.dump()
    );
    // A node that is not the driver's (a stopped daemon's, here /dev/null's number): stopped,
    // opens fail until it is back.
    let status = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(status.success());
    let out = hostd(&[os("--status"), os("--node"), node.as_os_str()]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout
            .starts_with("host-wide guard: stopped: mfiguard-hostd is not running")
            && out.stdout.contains("a character device 1:3"),
        "{}",
        out.dump()
    );
    assert_eq!(out.stderr, "");
}

/// `--status --json`: one object, the shape mfiguard-hostd(8) documents; the same exit status.
#[test]
fn status_json_is_one_object_with_the_documented_fields() {
    let s = Scratch::new("hostd-status-json");
    let node = s.path("megaraid_sas_ioctl_node");
    let out = hostd(&[
        os("--status"),
        os("--json"),
        os("--node"),
        node.as_os_str(),
        os("--private-dir"),
        s.path("private").as_os_str(),
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let v = out.json();
    assert_eq!(v["status_version"], 1);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["state"], "off");
    assert!(v["description"]
        .as_str()
        .unwrap()
        .starts_with("off: mfiguard-hostd is not running"));
    assert_eq!(v["node"]["kind"], "missing");
    assert_eq!(v["node"]["path"], node.to_str().unwrap());
    assert!(v["daemons"].as_array().unwrap().is_empty());
    assert_eq!(v["driver"]["loaded"], driver_loaded());
    for key in [
        "state",
        "mechanism",
        "major",
        "allowed_pid",
        "allowed_cgroup",
        "probe",
        "detail",
    ] {
        assert!(v["lock"].get(key).is_some(), "lock.{key}: {v}");
    }
    // A node of another number: stopped.
    let status = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(status.success());
    let out = hostd(&[os("--status"), os("--json"), os("--node"), node.as_os_str()]);
    assert_eq!(out.code(), 1);
    let v = out.json();
    assert_eq!(v["state"], "stopped");
    assert_eq!(v["node"]["device"], "1:3");
    // --json belongs to --status.
    let out = hostd(&[os("--json")]);
    assert_eq!(out.code(), 2, "{}", out.dump());
}

#[test]
fn without_cuse_it_fails_with_the_reason_and_leaves_the_path_alone() {
    let s = Scratch::new("hostd-nocuse");
    let node = s.path("megaraid_sas_ioctl_node");
    std::fs::write(&node, b"what was there").unwrap();
    let private = s.path("private");
    let out = hostd(&[
        os("--node"),
        node.as_os_str(),
        os("--private-dir"),
        private.as_os_str(),
        os("--cuse"),
        s.path("no-cuse").as_os_str(),
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(out.stdout.is_empty(), "{}", out.dump());
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("mfiguard-hostd: error: cannot open ")
            && last.ends_with("(load the cuse module: modprobe cuse)"),
        "{}",
        out.dump()
    );
    // What was at the path is untouched, and no temporary node was left beside it.
    assert_eq!(std::fs::read(&node).unwrap(), b"what was there");
    let names: Vec<_> = std::fs::read_dir(&s.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("mfiguard-hostd")),
        "{names:?}"
    );
    // Nothing else was touched: no node of the driver's was made, no lock taken.
    assert!(!private.join("megaraid_sas_ioctl_node").exists());
    assert!(!out.stderr.contains("locked"), "{}", out.dump());
}

#[test]
fn restore_node_says_what_it_cannot_do() {
    let s = Scratch::new("hostd-restore");
    let node = s.path("megaraid_sas_ioctl_node");
    let out = hostd(&[os("--restore-node"), os("--node"), node.as_os_str()]);
    if driver_loaded() {
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert!(std::fs::metadata(&node)
            .unwrap()
            .file_type()
            .is_char_device());
    } else {
        assert_eq!(out.code(), 1, "{}", out.dump());
        assert!(
            out.stderr
                .starts_with("mfiguard-hostd: error: the megaraid_sas driver is not loaded"),
            "{}",
            out.dump()
        );
        assert!(!node.exists());
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[os("--workers"), os("0")][..],
        &[os("--watch-ms"), os("1")][..],
        &[os("--status"), os("--restore-node")][..],
        &[os("--bogus")][..],
    ] {
        let out = hostd(args);
        assert_eq!(out.code(), 2, "{args:?}\n{}", out.dump());
        assert!(out.stdout.is_empty());
    }
    let out = hostd(&[os("--version")]);
    assert_eq!(out.code(), 0);
    assert_eq!(
        out.stdout,
        format!("mfiguard-hostd {}\n", env!("CARGO_PKG_VERSION"))
    );
}

fn unit_text() -> String {
    std::fs::read_to_string(
        common::root().join("examples/integrations/systemd/mfiguard-hostd.service"),
    )
    .unwrap()
}

fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_unit_fails_closed_restarts_and_is_hardened() {
    let unit = unit_text();
    let one = |k: &str| {
        let v = unit_values(&unit, k);
        assert_eq!(v.len(), 1, "{k}: {v:?}");
        v[0].clone()
    };
    assert_eq!(one("ExecStart"), "/usr/sbin/mfiguard-hostd");
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("Restart"), "always");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("RuntimeDirectory"), "mfiguard");
    assert_eq!(one("RuntimeDirectoryMode"), "0700");
    assert_eq!(one("WantedBy"), "multi-user.target");
    let mut caps: Vec<String> = one("CapabilityBoundingSet")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    caps.sort();
    assert_eq!(
        caps,
        [
            "CAP_BPF",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_KILL",
            "CAP_MKNOD",
            "CAP_PERFMON",
            "CAP_SYS_ADMIN",
            "CAP_SYS_PTRACE"
        ]
    );
    // The lock's pins outlive the daemon in the host's bpf file system; a stuck earlier
    // daemon's device is aborted through sysfs; its system calls are allowed.
    let rw = unit_values(&unit, "ReadWritePaths").join(" ");
    assert!(
        rw.contains("-/var/log/mfiguard")
            && rw.contains("-/sys/fs/bpf")
            && rw.contains("-/sys/devices/virtual/cuse"),
        "{rw}"
    );
    let filter = unit_values(&unit, "SystemCallFilter").join(" ");
    assert!(
        filter.contains(" bpf") && filter.contains(" pidfd_getfd"),
        "{filter}"
    );
    // The package ships it, and nothing enables it.
    let root = common::root();
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(cargo.contains(
        r#"["examples/integrations/systemd/mfiguard-hostd.service", "usr/lib/systemd/system/mfiguard-hostd.service", "644"]"#
    ));
    // The maintainer scripts start nothing and enable only what was enabled before an
    // upgrade (deb-systemd-helper's was-enabled); the RPM applies the presets (disabled on
    // EL); packaging/test-purge.sh checks that a fresh install enables no unit.
    for script in ["packaging/debian/postinst", "packaging/rpm/mfiguard.spec"] {
        let text = std::fs::read_to_string(root.join(script)).unwrap();
        assert!(
            !text.contains("systemctl enable") && !text.contains("systemctl start"),
            "{script} enables the unit"
        );
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.contains("deb-systemd-helper enable") {
                assert!(
                    lines[i.saturating_sub(1)].contains("was-enabled"),
                    "{script}: an enable outside the was-enabled branch"
                );
            }
        }
    }
}

#[test]
fn the_unit_verifies_and_the_page_renders() {
    let s = Scratch::new("hostd-unit");
    let page = common::root().join("doc/mfiguard-hostd.8");
    if have("groff") {
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&page)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warnings");
    }
    if !have("systemd-analyze") {
        eprintln!("note: systemd-analyze not installed: the unit was not verified");
        return;
    }
    let units = s.path("units");
    std::fs::create_dir_all(&units).unwrap();
    let unit = unit_text().replace(
        "ExecStart=/usr/sbin/mfiguard-hostd",
        &format!("ExecStart={}", common::hostd_bin().display()),
    );
    let path: PathBuf = units.join("mfiguard-hostd.service");
    std::fs::write(&path, unit).unwrap();
    let man8 = s.path("man/man8");
    std::fs::create_dir_all(&man8).unwrap();
    std::fs::copy(&page, man8.join("mfiguard-hostd.8")).unwrap();
    let out = Command::new("systemd-analyze")
        .env("MANPATH", s.path("man"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("mfiguard-hostd"))
        .collect();
    assert!(complaints.is_empty(), "systemd-analyze verify:\n{stderr}");
}
