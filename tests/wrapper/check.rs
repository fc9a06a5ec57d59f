//! `--check`: the self-test through the probe, the running kernel's driver and protections, where
//! each setting comes from.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use crate::common::wrapper::*;
use crate::common::*;

// ---- --check: the self-test -----------------------------------------------------------------

#[test]
fn the_probe_alone_sees_dev_null_answer_enotty() {
    let out = run(scrub(&mut Command::new(probe_bin())).env("MFIGUARD_DEVICE", "/dev/null"));
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert_eq!(
        out.stdout,
        "intercepted: no (ENOTTY: the call reached /dev/null unguarded; libmfiguard is not loaded in this process)\n"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn check_fails_when_the_library_loads_but_does_not_intercept() {
    let s = Scratch::new("nointercept");
    let lib = stand_in(&s);
    let out = run(&mut wrap(&lib, &["--check"]));
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout.contains(&format!(
            "library (64-bit): {}/libmfiguard.so\n    intercepted: no (ENOTTY",
            lib.display()
        )),
        "{}",
        out.dump()
    );
    assert!(
        out.stdout.ends_with("result: FAILED: see above\n"),
        "{}",
        out.dump()
    );
    assert_eq!(out.stderr, "");

    // No probe beside the library: nothing is proven.
    let bare = s.path("bare");
    std::fs::create_dir_all(&bare).unwrap();
    symlink(libc_path(), bare.join("libmfiguard.so")).unwrap();
    let out = run(&mut wrap(&bare, &["--check"]));
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout
            .contains("mfiguard-probe not found: cannot prove interception"),
        "{}",
        out.dump()
    );

    // No library at all.
    let out = run(&mut wrap(&s.path("nothing"), &["--check"]));
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout
            .contains("/nothing/libmfiguard.so: not installed"),
        "{}",
        out.dump()
    );
}

#[test]
fn check_reports_the_running_kernels_driver() {
    let s = Scratch::new("driver");
    let out = run(&mut wrap(&s.0, &["--check"]));
    let line = |prefix: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line\n{}", out.dump()))
            .to_owned()
    };
    let release =
        String::from_utf8(Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    assert_eq!(
        line("kernel: "),
        format!("kernel: Linux {}", release.trim())
    );
    let driver = line("megaraid_sas: ");
    match std::fs::read_to_string("/sys/module/megaraid_sas/version") {
        Ok(v) => assert_eq!(
            driver,
            format!("megaraid_sas: version {} (loaded)", v.trim())
        ),
        Err(_) if Path::new("/sys/module/megaraid_sas").exists() => {
            assert!(driver.contains("loaded"), "{driver}")
        }
        Err(_) => assert!(driver.starts_with("megaraid_sas: not loaded"), "{driver}"),
    }
    let devices = read(Path::new("/proc/devices"));
    let node = line("management node: ");
    assert_eq!(
        devices.contains("megaraid_sas_ioctl"),
        node.contains("character major"),
        "{node}"
    );
    assert!(line("  sgl_off bound:").contains("ABSENT: no kernel checks sgl_off"));
}

/// The protections a kernel has, judged by version; commit 381d34e376e3 ("scsi: megaraid_sas:
/// Check user-provided offsets") is in 5.11 and was backported to 5.10.4, 5.4.86 and 4.19.164
/// (it failed to apply to 4.14, 4.9 and 4.4).
#[test]
fn check_judges_kernel_protections_by_version() {
    let s = Scratch::new("kernels");
    let cases: &[(&str, &str, &str)] = &[
        ("2.6.32-754.el6.x86_64", "ABSENT", "ABSENT"),
        ("3.2.0-4-amd64", "ABSENT", "ABSENT"),
        ("3.3.0", "present", "ABSENT"),
        ("3.10.0-1160.el7.x86_64", "present", "ABSENT"),
        ("4.4.302", "present", "ABSENT"),
        ("4.14.336", "present", "ABSENT"),
        ("4.18.0-553.el8_10.x86_64", "present", "ABSENT"),
        ("4.19.163", "present", "ABSENT"),
        ("4.19.164", "present", "present: backported in 4.19.164"),
        ("5.4.85", "present", "ABSENT"),
        ("5.4.86-generic", "present", "present: backported in 5.4.86"),
        ("5.10.3", "present", "ABSENT"),
        ("5.10.4", "present", "present: backported in 5.10.4"),
        ("5.10.0-30-amd64", "present", "unknown"),
        (
            "5.10.0-30-amd64 #1 SMP Debian 5.10.218-1 (2024-06-01) gcc 10.2.1",
            "present",
            "present: backported in 5.10.4",
        ),
        ("5.11.0", "present", "present: sense_off > 56 is refused"),
        (
            "6.1.0-28-amd64",
            "present",
            "present: sense_off > 56 is refused",
        ),
        ("not-a-version", "unknown", "unknown"),
    ];
    for (release, flag, sense) in cases {
        let out = run(wrap(&s.0, &["--check"]).env("MFIGUARD_KERNEL_RELEASE", release));
        let line = |prefix: &str| -> &str {
            out.stdout
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{release}: no {prefix:?}\n{}", out.dump()))
        };
        assert_eq!(line("kernel: "), format!("kernel: Linux {release}"));
        let f = line("  flag fix (2012, Linux 3.3):");
        let x = line("  sense_off check (2020, Linux 5.11):");
        assert!(
            f.contains(&format!(": {flag}")) || f.contains(&format!("  {flag}")),
            "{release}: {f}"
        );
        assert!(
            x.contains(&format!(": {sense}")) || x.contains(&format!("  {sense}")),
            "{release}: {x}"
        );
        assert!(line("  sgl_off bound:").contains("ABSENT"));
    }
}

#[test]
fn check_shows_where_each_setting_of_a_run_comes_from() {
    let s = Scratch::new("policy");
    let conf = s.path("mfiguard.conf");
    std::fs::write(
        &conf,
        "# site policy\nmode = audit   # roll-out\nMFIGUARD_LOG = /var/log/mfiguard/audit.jsonl\n#allow = sgl.bounds\n",
    )
    .unwrap();
    let conf_s = conf.to_str().unwrap();
    let p = policy(wrap(&s.0, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(
        p,
        format!(
            "policy for runs (config {conf_s}):\n  mode:  audit (from {conf_s}:2)\n  log:   /var/log/mfiguard/audit.jsonl (from {conf_s}:3)\n  allow: none (default)\n  audit: findings in enforce, all in audit (default)\n  log_sync:     off (default)\n  log_required: off (default)\n"
        )
    );
    // The file's mode holds a request to it: off is refused (a run would be), and audit is
    // as weak as a request may go here, so a rule may be allowed.
    let p = policy(
        wrap(
            &s.0,
            &["--config", conf_s, "--allow", "xfer.length", "--check"],
        )
        .env("MFIGUARD_MODE", "off"),
    );
    assert!(
        p.contains(&format!("mode:  audit (from {conf_s}:2)")),
        "{p}"
    );
    assert!(p.contains("  INVALID: MFIGUARD_MODE=\"off\" (from the environment): the environment asks for mode off, weaker than the policy lets this caller choose (at least audit;"), "{p}");
    assert!(p.contains("allow: xfer.length (from --allow)"), "{p}");
    let p = policy(
        wrap(&s.0, &["--mode", "enforce", "--audit-all", "--check"]).env("MFIGUARD_MODE", "off"),
    );
    assert!(p.starts_with("policy for runs (config /dev/null):"), "{p}");
    assert!(p.contains("mode:  enforce (from --mode)"), "{p}");
    assert!(p.contains("audit: all (from --audit-all)"), "{p}");
    // A config file that does not exist at the default path is no config file.
    if !Path::new("/etc/mfiguard.conf").exists() {
        let p = policy(wrap(&s.0, &["--check"]).env_remove("MFIGUARD_CONFIG"));
        assert!(
            p.starts_with("policy for runs (no config file at /etc/mfiguard.conf):"),
            "{p}"
        );
    }
}
