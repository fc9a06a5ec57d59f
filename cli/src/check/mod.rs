//! `--check [TOOL]`: the self-test. Everything goes to stdout; the result is the exit status
//! (0: the guard works, for TOOL when given; 1: it does not, or a run would be refused).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::elf::{self, Kind};
use crate::facts;
use crate::mechanism::{self, Mechanism};
use crate::settings::{Libraries, Settings};
use crate::sys;
use crate::VERSION;

mod policy;
use policy::check_policy;

/// Runs the self-test; returns whether everything passed.
pub fn check(settings: &Settings, tool: Option<&str>) -> bool {
    let mut ok = true;
    println!("mfiguard-run {VERSION}: self-test");
    let want = match tool {
        Some(t) => {
            let (tool_ok, class) = check_tool(t, settings.via);
            ok &= tool_ok;
            class
        }
        None => 64,
    };
    let libs = &settings.libraries;
    if check_library(libs, want) != LibState::Works {
        ok = false;
    }
    // The other class: reported, and failing only when installed and broken.
    let other = if want == 64 { 32 } else { 64 };
    if check_library(libs, other) == LibState::Broken {
        ok = false;
    }
    check_kernel();
    ok &= check_hostd();
    ok &= check_policy(settings);
    facts::set("/ok", ok);
    match (ok, tool) {
        (true, Some(t)) => {
            println!("result: OK: the guard loads, intercepts, and can apply to {t}")
        }
        (true, None) => println!("result: OK: the guard loads and intercepts"),
        (false, _) => println!("result: FAILED: see above"),
    }
    ok
}

/// `--check --json`: the facts `check` noted, with the format's version, the program's and the
/// verdict.
pub fn to_json(ok: bool, facts: serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert("check_version".into(), 1.into());
    out.insert("version".into(), VERSION.into());
    out.extend(facts);
    out.insert("ok".into(), ok.into());
    serde_json::Value::Object(out)
}

/// The host-wide guard (mfiguard-hostd): whether it serves the node's path. Its absence is no
/// failure (it is optional); a daemon whose node was replaced is.
#[cfg(target_arch = "x86_64")]
fn check_hostd() -> bool {
    use mfiguard_supervisor::hostd::{lock, Coverage, Status, NODE_PATH, PRIVATE_DIR};
    let path = std::path::Path::new(NODE_PATH);
    let st = Status::of(path, std::path::Path::new(PRIVATE_DIR));
    let lock = lock::status(std::path::Path::new(lock::PIN_DIR), true);
    println!("host-wide guard: {}", st.describe(path));
    println!(
        "    lock on the driver's device: {}: {}",
        lock.state.name(),
        lock.detail
    );
    facts::set("/hostd", crate::hostd_state::to_json(path, &st, &lock));
    match st.coverage() {
        Coverage::Bypassed | Coverage::Displaced => {
            println!("    WARNING: tools that open {NODE_PATH} now are not guarded by mfiguard-hostd; it puts its node back within its watch interval (journalctl -u mfiguard-hostd)");
            false
        }
        Coverage::Stuck => {
            println!("    WARNING: opens of {NODE_PATH} wait for a daemon that will not answer: systemctl restart mfiguard-hostd");
            false
        }
        Coverage::Active | Coverage::Off | Coverage::Stopped => true,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn check_hostd() -> bool {
    true
}

/// What LD_PRELOAD can do for TOOL; (whether the guard can apply, the class of its library).
fn check_tool(name: &str, via: mechanism::Via) -> (bool, u8) {
    let path = if name.contains('/') {
        PathBuf::from(name)
    } else {
        match crate::find_in_path(name) {
            Some(p) => p,
            None => {
                println!("tool: {name}: not found in PATH");
                facts::set("/tool/name", name);
                facts::set("/tool/found", false);
                return (false, 64);
            }
        }
    };
    println!("tool: {}", path.display());
    facts::set("/tool/path", path.display().to_string());
    let Ok(meta) = std::fs::metadata(&path) else {
        println!("    no such file");
        facts::set("/tool/found", false);
        return (false, 64);
    };
    facts::set("/tool/found", true);
    let mut ok = true;
    if meta.is_dir() || !sys::executable(&path) {
        println!("    not an executable file");
        ok = false;
    }
    let kind = elf::describe(&path, crate::find_in_path);
    facts::set("/tool/executable", ok);
    note_kind(&kind);
    match &kind {
        Kind::Unreadable => println!(
            "    cannot read it (permissions): cannot tell its ELF class; the 64-bit library would be used"
        ),
        Kind::Other => {
            println!("    not an ELF program nor a #! script: the loader cannot run it");
            ok = false;
        }
        Kind::Script { line, interp, elf } => {
            println!("    script: #!{line}");
            let interp = interp
                .as_deref()
                .map_or("?".into(), |p| p.display().to_string());
            match elf {
                None => println!(
                    "    interpreter {interp} is not a readable ELF program: cannot tell its class; the 64-bit library would be used"
                ),
                Some(e) => {
                    println!(
                        "    interpreter {interp}: ELF {}-bit, {} linked",
                        e.class,
                        e.linking()
                    );
                    if e.interp.is_none() {
                        println!("    the interpreter is statically linked: the library does not load into it, only into the dynamically linked programs the script starts");
                    }
                    println!("    LD_PRELOAD is inherited by the programs the script starts; those of the other ELF class ignore the library (ld.so prints 'wrong ELF class'), so run a 32-bit tool as mfiguard-run TOOL, not through a 64-bit script");
                }
            }
        }
        Kind::Elf(e) => match &e.interp {
            None => {
                println!(
                    "    ELF {}-bit, statically linked (no PT_INTERP): the dynamic loader never runs, LD_PRELOAD is ignored: the library does not load into it",
                    e.class
                );
            }
            Some(i) => println!("    ELF {}-bit, dynamically linked (interpreter {i})", e.class),
        },
    }
    if let Some(reason) = mechanism::secure_exec(&path) {
        println!("    {reason}: the loader runs it in secure mode and ignores LD_PRELOAD: the guard CANNOT apply for this user");
        facts::set("/tool/secure_exec", reason);
        ok = false;
    } else if mechanism::set_id_bits(&path) {
        println!("    setuid/setgid bit set, but for your ids: LD_PRELOAD works for you, not for other users");
    } else {
        println!("    setuid/setgid: no");
    }
    if let Some(caps) = file_caps(&path) {
        println!("    file capabilities ({caps}): callers that gain capabilities run it in secure mode, without LD_PRELOAD");
        facts::set("/tool/file_capabilities", caps.as_str());
        if sys::euid() != 0 {
            ok = false;
        }
    }
    let bytes = sys::bytes(path.as_os_str());
    if bytes.ends_with(b"sudo")
        || [&b"/su"[..], b"/doas", b"/pkexec"]
            .iter()
            .any(|s| bytes.ends_with(s))
    {
        println!("    this is a privilege switcher: it drops LD_PRELOAD; let it run mfiguard-run instead (sudo mfiguard-run -- TOOL)");
        facts::set("/tool/privilege_switcher", true);
        ok = false;
    }
    let mech = mechanism::choose(&path, &kind, via);
    println!("{}", mech.check_line());
    facts::set("/tool/mechanism", mech.name());
    facts::set("/tool/mechanism_reason", mech.reason());
    ok &= crate::privilege::check_line(&path, &kind, &mech);
    match mech {
        Mechanism::Unguarded { .. } => ok = false,
        // The tool's calls would go through the supervisor, not the library: prove that the
        // supervisor starts here and intercepts.
        Mechanism::Supervisor { .. } => ok &= run_probe_supervised("supervise"),
        Mechanism::Ptrace { .. } => ok &= run_probe_supervised("ptrace"),
        Mechanism::Preload { .. } => {}
    }
    facts::set("/tool/ok", ok);
    (ok, mech.class())
}

/// Runs `mfiguard-probe` (beside the 64-bit library) under this `mfiguard-run --via VIA`
/// (supervise or ptrace), with the fixed test policy; prints its report indented; whether the
/// supervisor refused the probe's packet (EINVAL) before `/dev/null` saw it.
fn run_probe_supervised(via: &str) -> bool {
    let Ok(me) = std::env::current_exe() else {
        println!("    supervisor probe: cannot find this program");
        return false;
    };
    let libs = crate::settings::Libraries::from_env_for_check();
    let probe = libs.path(64).with_file_name("mfiguard-probe");
    if !probe.is_file() {
        println!(
            "    supervisor probe: {} not found: cannot prove interception",
            probe.display()
        );
        return false;
    }
    let mut cmd = Command::new(me);
    cmd.args(["--via", via, "--mode", "enforce", "--log", "none"])
        .args(["--config", "/dev/null", "--"])
        .arg(&probe)
        .stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        if sys::bytes(&k).starts_with(b"MFIGUARD_") && k != "MFIGUARD_LIB_DIR" {
            cmd.env_remove(&k);
        }
    }
    cmd.env_remove("LD_PRELOAD")
        .env("MFIGUARD_DEVICE", "/dev/null");
    match cmd.output() {
        Ok(out) => {
            for line in String::from_utf8_lossy(&out.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
            {
                println!("    supervisor probe: {line}");
                facts::push("/tool/supervisor_probe/output", line);
            }
            facts::set("/tool/supervisor_probe/intercepted", out.status.success());
            out.status.success()
        }
        Err(e) => {
            println!("    supervisor probe: {}: {e}", probe.display());
            false
        }
    }
}

/// `getcap FILE`'s capabilities, when getcap is installed and the file has some.
fn file_caps(path: &Path) -> Option<String> {
    let out = Command::new("getcap")
        .arg(path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let shown = path.display().to_string();
    Some(text.strip_prefix(&shown).unwrap_or(text).trim().to_string())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LibState {
    Works,
    Missing,
    Broken,
}

/// Reports on the library of `class`.
fn check_library(libs: &Libraries, class: u8) -> LibState {
    let state = check_library_text(libs, class);
    let at = format!("/libraries/{class}");
    facts::set(
        &format!("{at}/path"),
        libs.path(class).display().to_string(),
    );
    facts::set(&format!("{at}/installed"), state != LibState::Missing);
    facts::set(&format!("{at}/intercepted"), state == LibState::Works);
    state
}

fn check_library_text(libs: &Libraries, class: u8) -> LibState {
    let lib = libs.path(class);
    if !lib.is_file() {
        println!("library ({class}-bit): {}: not installed", lib.display());
        return LibState::Missing;
    }
    println!("library ({class}-bit): {}", lib.display());
    if elf::read_elf(&lib).map(|e| e.class) != Some(class) {
        println!("    not a {class}-bit ELF library");
        return LibState::Broken;
    }
    if run_probe(&lib) {
        LibState::Works
    } else {
        LibState::Broken
    }
}

/// Runs `mfiguard-probe` (beside `lib`) under `lib` with a fixed test policy, whatever the
/// site's; prints its report indented; whether it saw the guard's EINVAL.
fn run_probe(lib: &Path) -> bool {
    let probe = lib.with_file_name("mfiguard-probe");
    if !probe.is_file() || !sys::executable(&probe) {
        println!(
            "    probe: {} not found: cannot prove interception",
            probe.display()
        );
        return false;
    }
    let mut cmd = Command::new(&probe);
    cmd.arg("--build").stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        if sys::bytes(&k).starts_with(b"MFIGUARD_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("LD_PRELOAD", lib)
        .env("MFIGUARD_DEVICE", "/dev/null")
        .env("MFIGUARD_MODE", "enforce")
        .env("MFIGUARD_LOG", "none")
        .env("MFIGUARD_ALLOW", "")
        .env("MFIGUARD_CONFIG", "/dev/null");
    // Its stdout and stderr in one pipe, in the order written (2>&1).
    let result = (|| -> std::io::Result<(bool, Vec<u8>)> {
        let (mut read, write) = sys::pipe().map(|(r, w)| (std::fs::File::from(r), w))?;
        cmd.stdout(write.try_clone()?).stderr(write);
        let mut child = cmd.spawn()?;
        // The parent's copies of the write end are in `cmd`: drop them to see EOF.
        drop(cmd);
        let mut out = Vec::new();
        read.read_to_end(&mut out)?;
        Ok((child.wait()?.success(), out))
    })();
    match result {
        Ok((ok, out)) => {
            for line in String::from_utf8_lossy(&out).lines() {
                println!("    {line}");
            }
            ok
        }
        Err(e) => {
            println!("    probe: {}: {e}", probe.display());
            false
        }
    }
}

/// (major, minor, sublevel) from a release string and /proc/version text; the sublevel is the
/// highest MAJOR.MINOR.Z seen (Debian's `uname -r` says 5.10.0-30 while /proc/version says
/// "Debian 5.10.218-1").
pub fn kernel_version(text: &str) -> Option<(u32, u32, u32)> {
    let numbers = |s: &str| -> Vec<Vec<u32>> {
        // Runs of digits separated by single dots.
        let mut out = Vec::new();
        for word in s.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
            for run in word.split("..") {
                let parts: Vec<&str> = run.split('.').collect();
                let mut cur: Vec<u32> = Vec::new();
                for p in parts {
                    match p.parse::<u32>() {
                        Ok(n) => cur.push(n),
                        Err(_) => {
                            if cur.len() >= 2 {
                                out.push(std::mem::take(&mut cur));
                            }
                            cur.clear();
                        }
                    }
                }
                if cur.len() >= 2 {
                    out.push(cur);
                }
            }
        }
        out
    };
    let found = numbers(text);
    let first = found.first()?;
    let (maj, min) = (first[0], first[1]);
    let sub = found
        .iter()
        .filter(|v| v.len() >= 3 && v[0] == maj && v[1] == min)
        .map(|v| v[2])
        .max()
        .unwrap_or(0);
    Some((maj, min, sub))
}

fn check_kernel() {
    let (release, text) = match std::env::var("MFIGUARD_KERNEL_RELEASE") {
        Ok(r) if !r.is_empty() => (r.clone(), r),
        _ => {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            let version = std::fs::read_to_string("/proc/version").unwrap_or_default();
            let text = format!("{release} {version}");
            (release, text)
        }
    };
    println!("kernel: Linux {release}");
    facts::set("/kernel/release", release.as_str());
    if let Ok(v) = std::fs::read_to_string("/sys/module/megaraid_sas/version") {
        println!("megaraid_sas: version {} (loaded)", v.trim());
        facts::set("/kernel/megaraid_sas/loaded", true);
        facts::set("/kernel/megaraid_sas/version", v.trim());
    } else if Path::new("/sys/module/megaraid_sas").is_dir() {
        println!("megaraid_sas: loaded (no version in /sys/module/megaraid_sas)");
        facts::set("/kernel/megaraid_sas/loaded", true);
    } else {
        let modinfo = Command::new("modinfo")
            .args(["-F", "version", "megaraid_sas"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty());
        match modinfo {
            Some(v) => println!("megaraid_sas: not loaded (modinfo: version {v} available)"),
            None => println!("megaraid_sas: not loaded"),
        }
    }
    // The node check's own reading of /proc/devices (the character devices only).
    let major = match mfiguard_core::device::node_major() {
        mfiguard_core::device::NodeMajor::Listed(m) => Some(m),
        _ => None,
    };
    facts::set("/kernel/management_node_major", major);
    if !Path::new("/sys/module/megaraid_sas").is_dir() {
        facts::set("/kernel/megaraid_sas/loaded", false);
    }
    match major {
        Some(m) => {
            println!("management node: character major {m} (megaraid_sas_ioctl in /proc/devices)")
        }
        None => println!("management node: none (no megaraid_sas_ioctl in /proc/devices)"),
    }

    println!("kernel protections (judged by version; distribution kernels may carry backports):");
    facts::set("/kernel/protections/sgl_off_bound", "absent");
    let Some((maj, min, sub)) = kernel_version(&text) else {
        facts::set("/kernel/protections/flag_fix", "unknown");
        facts::set("/kernel/protections/sense_off_check", "unknown");
        println!("  flag fix (2012, Linux 3.3):              unknown (cannot read a version from '{release}')");
        println!("  sense_off check (2020, Linux 5.11):      unknown");
        println!("  sgl_off bound:                           ABSENT: no kernel checks sgl_off; rule sgl.bounds");
        return;
    };
    let v = (maj, min, sub);
    facts::set(
        "/kernel/protections/flag_fix",
        if v >= (3, 3, 0) { "present" } else { "absent" },
    );
    facts::set(
        "/kernel/protections/sense_off_check",
        match stable_sense_off(maj, min) {
            _ if v >= (5, 11, 0) => "present",
            Some(st) if sub >= st => "present",
            Some(_) if sub == 0 => "unknown",
            _ => "absent",
        },
    );
    if v >= (3, 3, 0) {
        println!("  flag fix (2012, Linux 3.3):              present: the driver clears SGL64/SENSE64/IEEE");
    } else {
        println!("  flag fix (2012, Linux 3.3):              ABSENT: caller flags reach the firmware (the STP corruption); rule frame.addressing-flags");
    }
    // Commit 381d34e376e3 is in 5.11 and was backported to these stable lines.
    let stable = stable_sense_off(maj, min);
    let s = "  sense_off check (2020, Linux 5.11):      ";
    match stable {
        _ if v >= (5, 11, 0) => {
            println!("{s}present: sense_off > 56 is refused (commit 381d34e376e3)")
        }
        Some(st) if sub >= st => {
            println!("{s}present: backported in {maj}.{min}.{st} (commit 381d34e376e3)")
        }
        Some(st) if sub == 0 => println!(
            "{s}unknown: '{release}' does not tell which {maj}.{min}.y this is (present from {maj}.{min}.{st}); rule sense.bounds"
        ),
        Some(st) => println!(
            "{s}ABSENT: {maj}.{min}.{sub} predates the backport in {maj}.{min}.{st}; rule sense.bounds"
        ),
        None => println!(
            "{s}ABSENT by version (5.11, or stable 5.10.4, 5.4.86, 4.19.164); rule sense.bounds"
        ),
    }
    println!("  sgl_off bound:                           ABSENT: no kernel checks sgl_off; rule sgl.bounds");
}

/// The stable releases that carry commit 381d34e376e3 (in 5.11), by their first sublevel.
fn stable_sense_off(maj: u32, min: u32) -> Option<u32> {
    match (maj, min) {
        (5, 10) => Some(4),
        (5, 4) => Some(86),
        (4, 19) => Some(164),
        _ => None,
    }
}

/// Notes what the tool file is, for `--check --json`.
fn note_kind(kind: &Kind) {
    let (name, elf) = match kind {
        Kind::Elf(e) => ("elf", Some(e)),
        Kind::Script { interp, elf, .. } => {
            if let Some(i) = interp {
                facts::set("/tool/interpreter", i.display().to_string());
            }
            ("script", elf.as_ref())
        }
        Kind::Other => ("other", None),
        Kind::Unreadable => ("unreadable", None),
    };
    facts::set("/tool/kind", name);
    if let Some(e) = elf {
        facts::set("/tool/class", e.class);
        facts::set("/tool/static", e.interp.is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::kernel_version;

    #[test]
    fn kernel_versions_take_the_highest_sublevel_of_the_same_line() {
        assert_eq!(kernel_version("5.10.0-30-amd64"), Some((5, 10, 0)));
        assert_eq!(
            kernel_version("5.10.0-30-amd64 #1 SMP Debian 5.10.218-1 (2024-06-01) gcc 10.2.1"),
            Some((5, 10, 218))
        );
        assert_eq!(kernel_version("4.19.164"), Some((4, 19, 164)));
        assert_eq!(kernel_version("2.6.32-754.el6.x86_64"), Some((2, 6, 32)));
        assert_eq!(kernel_version("not-a-version"), None);
    }
}
