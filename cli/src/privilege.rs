//! Tools that call sudo themselves (check_lsi_raid, check_raid -S): under the supervisor and
//! its ptrace fallback the tool runs with the `no_new_privs` flag, which the seccomp filter
//! needs; the kernel then execs a setuid program (sudo) without its privilege, and sudo fails
//! ("The 'no new privileges' flag is set", or "effective uid is not 0" from older sudo).
//! Under the preload, sudo runs but drops `LD_PRELOAD`: what it starts is not guarded. Either
//! way the recipe is sudo outside, mfiguard-run inside: `sudo mfiguard-run -- PLUGIN`.
//!
//! What can be seen: the supervisor does not stop the tool's `execve` (only MegaRAID ioctls),
//! and the exec of sudo under `no_new_privs` succeeds; what fails is sudo's own check, in the
//! tool. So it is caught before the run, from the files: a script whose text runs a privilege
//! switcher, or a tool that is itself setuid.

use std::io::Read;
use std::path::Path;

use mfiguard_core::audit::Guard;

use crate::elf::Kind;
use crate::facts;
use crate::mechanism::Mechanism;

/// The programs that gain privilege through their setuid bit.
const SWITCHERS: [&str; 4] = ["sudo", "doas", "pkexec", "su"];

/// The first line of a script (up to 1 MiB read) that runs a privilege switcher by name:
/// (line number, the line, the switcher). Comments are skipped; `su` counts only as a command
/// word followed by an option or nothing (not in "summary").
pub fn script_switcher(path: &Path) -> Option<(usize, String, &'static str)> {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_end(&mut text)
        .ok()?;
    let text = String::from_utf8_lossy(&text);
    for (i, line) in text.lines().enumerate().skip(1) {
        let code = line.trim_start();
        if code.starts_with('#') {
            continue;
        }
        let words = code.split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '"' | '\'' | '`' | '(' | ')' | ';' | '|' | '&' | '{' | '=' | '[' | ','
                )
        });
        let mut prev_was_start = true;
        for w in words {
            if w.is_empty() {
                continue;
            }
            let base = w.rsplit('/').next().unwrap_or(w);
            if let Some(s) = SWITCHERS.iter().find(|s| **s == base) {
                // "su" only where it looks like a command, not a word in a message.
                if *s != "su" || prev_was_start || w.starts_with('/') {
                    let shown: String = line.trim().chars().take(120).collect();
                    return Some((i + 1, shown, s));
                }
            }
            prev_was_start = false;
        }
    }
    None
}

/// Why a run of the tool at `path` under `mech` will not get the privilege it asks for, or
/// will leave what it starts unguarded; `None` when nothing of the kind is seen.
pub fn problem(path: &Path, kind: &Kind, mech: &Mechanism) -> Option<String> {
    let root = crate::sys::euid() == 0;
    let supervised = matches!(mech.guard(), Some(Guard::Supervisor | Guard::Ptrace));
    if supervised && !root {
        if let Some(reason) = crate::mechanism::secure_exec(path) {
            return Some(format!(
                "{} is {reason}: under the supervisor it runs with no_new_privs and gains no privilege; run mfiguard-run as the user it needs (sudo mfiguard-run -- TOOL)",
                path.display()
            ));
        }
    }
    if !matches!(kind, Kind::Script { .. }) {
        return None;
    }
    let (n, line, s) = script_switcher(path)?;
    match mech {
        _ if supervised && !root => Some(format!(
            "the script runs {s} (line {n}: {line}): under the supervisor it runs with no_new_privs, so {s} cannot gain root and fails (sudo: \"no new privileges\" flag set / \"effective uid is not 0\"); run {s} outside and the guard inside: sudo mfiguard-run --mode readonly -- {}",
            path.display()
        )),
        Mechanism::Preload { .. } => Some(format!(
            "the script runs {s} (line {n}: {line}): {s} drops LD_PRELOAD, so what it starts is NOT guarded; run {s} outside and the guard inside: sudo mfiguard-run --mode readonly -- {}",
            path.display()
        )),
        _ => None,
    }
}

/// The `--check TOOL` line for [`problem`]; whether the tool passes.
pub fn check_line(path: &Path, kind: &Kind, mech: &Mechanism) -> bool {
    match problem(path, kind, mech) {
        Some(why) => {
            println!("    CANNOT: {why}");
            facts::set("/tool/privilege_problem", why);
            false
        }
        None => true,
    }
}

/// A warning before a run that [`problem`] foresees (the tool still runs: the site may know
/// better, e.g. a sudo rule that is never reached).
pub fn warn_before_run(path: &Path, kind: &Kind, mech: &Mechanism) {
    if let Some(why) = problem(path, kind, mech) {
        eprintln!("mfiguard-run: warning: {}", crate::printable(&why));
    }
}

#[cfg(test)]
mod tests {
    use super::script_switcher;

    fn scan(text: &str) -> Option<(usize, String, &'static str)> {
        let p = std::env::temp_dir().join(format!(
            "mfiguard-priv-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&p, text).unwrap();
        let r = script_switcher(&p);
        std::fs::remove_file(&p).unwrap();
        r
    }

    #[test]
    fn sudo_in_code_is_found_and_in_comments_or_words_is_not() {
        assert_eq!(
            scan("#!/bin/sh\n# sudo is needed\nout=$(sudo -n /opt/MegaRAID/MegaCli/MegaCli64 -LDInfo)\n").map(|r| (r.0, r.2)),
            Some((3, "sudo"))
        );
        assert_eq!(
            scan("#!/usr/bin/perl\nmy @cmd = ('/usr/bin/sudo', $storcli);\n").map(|r| r.2),
            Some("sudo")
        );
        assert_eq!(scan("#!/bin/sh\necho summary; echo pseudo\n"), None);
        assert_eq!(scan("#!/bin/sh\nsu -c true\n").map(|r| r.2), Some("su"));
        assert_eq!(scan("#!/bin/sh\necho the su of it\n"), None);
    }
}
