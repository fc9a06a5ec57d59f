//! What the packages ship, checked from the tree: the README's links resolve where the .deb
//! installs it; the units verify and are as sandboxed as doc/monitoring.md says
//! (`systemd-analyze security --offline=true`); the alerting rules pass `promtool check rules`
//! and their unit tests; the Ansible role's files parse. The built packages themselves are
//! checked by packaging/build-packages.sh, their install and purge by packaging/test-purge.sh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{have, root};

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The .deb's assets ([package.metadata.deb] in Cargo.toml): (source in the tree, installed
/// path), globs expanded as cargo-deb does for the simple patterns used there.
fn deb_assets() -> Vec<(PathBuf, PathBuf)> {
    let toml = read("Cargo.toml");
    let start = toml.find("\nassets = [").expect("assets");
    let body = &toml[start..];
    let body = &body[..body.find("\n]\n").expect("end of assets")];
    let mut out = Vec::new();
    for line in body.lines().map(str::trim).filter(|l| l.starts_with("[\"")) {
        let fields: Vec<&str> = line
            .trim_start_matches('[')
            .trim_end_matches(',')
            .trim_end_matches(']')
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        let (src, dest) = (fields[0], fields[1]);
        let sources: Vec<PathBuf> = if let Some((dir, pat)) = src.rsplit_once("/*") {
            let set: Option<&str> = pat.strip_prefix(".[").and_then(|p| p.strip_suffix(']'));
            std::fs::read_dir(root().join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                    match set {
                        Some(chars) => ext.len() == 1 && chars.contains(ext),
                        None => Some(ext) == pat.strip_prefix('.'),
                    }
                })
                .map(|p| p.strip_prefix(root()).unwrap().to_path_buf())
                .collect()
        } else {
            vec![PathBuf::from(src)]
        };
        for s in sources {
            let installed = if dest.ends_with('/') {
                Path::new("/").join(dest).join(s.file_name().unwrap())
            } else {
                Path::new("/").join(dest)
            };
            out.push((s, installed));
        }
    }
    out
}

/// Relative link targets of a Markdown file (`[text](target)`, anchors dropped).
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        let target = rest[..end].split('#').next().unwrap_or("");
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target.to_string());
        }
    }
    out
}

/// `a/b/../c` -> `a/c`.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn every_link_of_the_installed_docs_resolves_where_the_package_puts_them() {
    let assets = deb_assets();
    let installed: BTreeSet<PathBuf> = assets.iter().map(|(_, i)| i.clone()).collect();
    for (src, _) in assets.iter().filter(|(s, _)| !s.starts_with("target")) {
        assert!(root().join(src).exists(), "asset {} missing", src.display());
    }
    // The pages the README links to (man pages too) are installed.
    for page in [
        "mfiguard-run.1",
        "mfiguard.conf.5",
        "libmfiguard.8",
        "mfiguard-hostd.8",
    ] {
        let section = page.rsplit('.').next().unwrap();
        assert!(
            installed.contains(&PathBuf::from(format!(
                "/usr/share/man/man{section}/{page}"
            ))),
            "{page} is not installed as a man page"
        );
    }
    // Links into the source tree, which the package does not ship, by design.
    let into_the_tree = [("doc/testing.md", "../kernel-lane/README.md")];
    let mut checked = 0;
    for (src, dest) in &assets {
        if src.extension().is_none_or(|e| e != "md") {
            continue;
        }
        for link in links(&read(src.to_str().unwrap())) {
            if into_the_tree.contains(&(src.to_str().unwrap(), link.as_str())) {
                continue;
            }
            let target = normalize(&dest.parent().unwrap().join(&link));
            assert!(
                installed.contains(&target),
                "{}: the link {link} is dead where it is installed ({})",
                src.display(),
                target.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} links checked");
    // The README itself.
    assert!(installed.contains(Path::new("/usr/share/doc/mfiguard/README.md")));
    let conf = read("packaging/mfiguard.conf");
    assert!(
        !conf.contains("README"),
        "/etc/mfiguard.conf points at the README"
    );
    assert!(conf.contains("/usr/share/doc/mfiguard/doc/rules.md"));
    assert!(installed.contains(Path::new("/usr/share/doc/mfiguard/doc/rules.md")));
}

#[test]
fn the_readme_stays_short_and_shows_a_working_nrpe_command() {
    let readme = read("README.md");
    assert!(
        readme.lines().count() < 350,
        "README.md: {} lines",
        readme.lines().count()
    );
    let nrpe = readme
        .lines()
        .find(|l| l.starts_with("command[check_mfiguard]="))
        .expect("an NRPE command in the README");
    assert!(nrpe.contains(" -w ") && nrpe.contains(" -c "), "{nrpe}");
    // The same command as the shipped NRPE file.
    assert!(read("examples/integrations/nagios/mfiguard.cfg").contains(nrpe));
}

/// `systemd-analyze security --offline=true UNIT`'s overall exposure.
fn exposure(unit: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for"))
        .unwrap_or_else(|| panic!("{}\n{}", text, String::from_utf8_lossy(&out.stderr)));
    let score = line
        .rsplit(": ")
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    score.parse().unwrap()
}

#[test]
fn the_units_are_as_sandboxed_as_the_docs_say() {
    if !have("systemd-analyze") {
        eprintln!("note: systemd-analyze not installed: the units were not scored");
        return;
    }
    let doc = read("doc/monitoring.md");
    for (unit, at_most) in [
        ("mfiguard-megacli.service", 3.0),
        ("mfiguard-collect.service", 3.0),
        ("mfiguard-hostd.service", 3.0),
    ] {
        let score = exposure(&root().join("examples/integrations/systemd").join(unit));
        assert!(score <= at_most, "{unit}: exposure {score} > {at_most}");
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{unit}`")))
            .unwrap_or_else(|| panic!("{unit} not in doc/monitoring.md"));
        assert!(
            row.contains(&format!("| {score:.1} OK |")),
            "doc/monitoring.md says {row}, systemd-analyze {score:.1}"
        );
    }
}

/// The daemon's devices are not listed: its CUSE node's number exists only once it runs, and
/// `ProtectClock=` implies `DeviceAllow=char-rtc r`, which would make a list of one.
#[test]
fn mfiguard_hostd_keeps_its_devices() {
    let unit = read("examples/integrations/systemd/mfiguard-hostd.service");
    for key in [
        "DevicePolicy=",
        "DeviceAllow=",
        "ProtectClock=",
        "PrivateDevices=",
    ] {
        assert!(
            !unit.lines().any(|l| l.starts_with(key)),
            "mfiguard-hostd.service sets {key}"
        );
    }
    // The snapshot's tool may make the driver's node, which the driver does not.
    let megacli = read("examples/integrations/systemd/mfiguard-megacli.service");
    assert!(megacli.contains("\nDeviceAllow=char-megaraid_sas_ioctl rwm\n"));
}

#[test]
fn the_units_verify() {
    if !have("systemd-analyze") {
        eprintln!("note: systemd-analyze not installed: the units were not verified");
        return;
    }
    let dir = std::env::temp_dir().join(format!("mfiguard-units-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("man/man1")).unwrap();
    std::fs::copy(
        root().join("doc/mfiguard-run.1"),
        dir.join("man/man1/mfiguard-run.1"),
    )
    .unwrap();
    let libexec = root().join("examples/integrations/libexec");
    let mut names = Vec::new();
    for unit in [
        "mfiguard-megacli.service",
        "mfiguard-megacli.timer",
        "mfiguard-collect.service",
        "mfiguard-collect.timer",
    ] {
        let text = read(&format!("examples/integrations/systemd/{unit}"))
            .replace("/usr/libexec/mfiguard/", &format!("{}/", libexec.display()))
            .replace("/usr/bin/mfiguard-run", "/bin/true")
            .replace(
                "file:/usr/share/doc/mfiguard/examples/README.md",
                "man:mfiguard-run(1)",
            );
        std::fs::write(dir.join(unit), text).unwrap();
        names.push(dir.join(unit));
    }
    let out = Command::new("systemd-analyze")
        .env("MANPATH", dir.join("man"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .arg("verify")
        .args(&names)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = err.lines().filter(|l| l.contains("mfiguard-")).collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(complaints.is_empty(), "systemd-analyze verify:\n{err}");
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_tests() {
    if !have("promtool") {
        eprintln!("note: promtool (Debian's prometheus package) not installed: rules not checked");
        return;
    }
    let dir = root().join("examples/integrations/prometheus");
    for args in [
        &["check", "rules", "mfiguard-alerts.yml"][..],
        &["test", "rules", "mfiguard-alerts.test.yml"][..],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every metric a rule or the dashboard names is one the collectors write.
    let written =
        read("cli/src/collect.rs") + &read("examples/integrations/prometheus/mfiguard-textfile");
    for file in [
        "examples/integrations/prometheus/mfiguard-alerts.yml",
        "examples/integrations/grafana/mfiguard-dashboard.json",
    ] {
        let text = read(file);
        let mut rest = text.as_str();
        while let Some(i) = rest.find("mfiguard_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            assert!(
                written.contains(&format!("\"{name}\""))
                    || written.contains(&format!("{name}{{"))
                    || written.contains(&format!("{name} ")),
                "{file} names {name}, which no collector writes"
            );
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(&read(
        "examples/integrations/grafana/mfiguard-dashboard.json",
    ))
    .unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 6);
}

#[test]
fn the_ansible_role_is_shipped_and_complete() {
    let role = root().join("examples/integrations/ansible/roles/mfiguard");
    for f in [
        "defaults/main.yml",
        "tasks/main.yml",
        "handlers/main.yml",
        "meta/main.yml",
        "templates/mfiguard.conf.j2",
        "templates/sudoers.j2",
        "templates/hostd-override.conf.j2",
    ] {
        assert!(role.join(f).is_file(), "{f}");
    }
    let tasks = read("examples/integrations/ansible/roles/mfiguard/tasks/main.yml");
    assert!(tasks.contains("validate: /usr/bin/mfiguard-run --check --config %s"));
    assert!(tasks.contains("validate: /usr/sbin/visudo -cf %s"));
    assert!(tasks.contains("exec /usr/bin/mfiguard-run --check --json"));
    let defaults = read("examples/integrations/ansible/roles/mfiguard/defaults/main.yml");
    for v in [
        "mfiguard_hostd_enabled:",
        "mfiguard_hostd_lock:",
        "mfiguard_mode:",
    ] {
        assert!(defaults.contains(v), "{v}");
    }
    let installed: BTreeSet<PathBuf> = deb_assets().into_iter().map(|(_, i)| i).collect();
    assert!(installed.contains(Path::new(
        "/usr/share/doc/mfiguard/examples/ansible/roles/mfiguard/tasks/main.yml"
    )));
}

/// Every option the role's drop-in can give mfiguard-hostd is one the daemon takes (a stale
/// option fails the unit's start on every host the play touches).
#[test]
fn the_roles_hostd_options_exist() {
    let template =
        read("examples/integrations/ansible/roles/mfiguard/templates/hostd-override.conf.j2");
    let help = Command::new(common::hostd_bin())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let options: Vec<&str> = template
        .split(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == '%')
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(options.contains(&"--no-lock"), "{template}");
    for o in options {
        assert!(
            help.contains(o),
            "mfiguard-hostd --help has no {o}:\n{help}"
        );
    }
}
