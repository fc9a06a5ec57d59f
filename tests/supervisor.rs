//! The supervisor end to end: tools an `LD_PRELOAD` guard cannot reach (a static client, raw
//! system calls, `int 0x80`, Python `ctypes`, a grandchild with a clean environment) run under
//! it, with the legacy-driver simulator preloaded into the supervisor alone
//! (`MFISIM_ONLY_IN`): its record is what reached the "kernel". Every rule gives the same
//! errno, the same packet at the driver and the same audit record as under the library.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mfiguard_sanitizer::RULES;
use serde_json::Value;

/// `mfiguard-run`, built for this host (its supervisor guards 32-bit tools from a 64-bit
/// process); run as `mfiguard-run TOOL ...`, so `--via auto` chooses the supervisor here.
fn supervisor() -> &'static Path {
    wrapper_bin()
}

/// `mfi_client` linked statically for `target` (as storcli64 is), in a target directory of its
/// own; `None` (said on stderr) when this host cannot build it.
fn static_client(target: &str) -> Option<PathBuf> {
    let dir = root().join("target/static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "build",
            "-p",
            "mfiguard",
            "--example",
            "mfi_client",
            "--target",
            target,
        ])
        .arg("--target-dir")
        .arg(&dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo");
    if !out.status.success() {
        eprintln!(
            "SKIPPED part: cannot build a static client for {target}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let path = dir.join(target).join("debug/examples/mfi_client");
    let bytes = std::fs::read(&path).expect("read static client");
    assert!(
        !has_interp(&bytes),
        "{} has PT_INTERP: not static",
        path.display()
    );
    Some(path)
}

/// Whether an ELF file asks for a program interpreter (`PT_INTERP`): a dynamic executable.
fn has_interp(elf: &[u8]) -> bool {
    let n = |at: usize, len: usize| -> usize {
        let mut v = 0usize;
        for (i, b) in elf[at..at + len].iter().enumerate() {
            v |= usize::from(*b) << (8 * i);
        }
        v
    };
    let wide = elf[4] == 2;
    let (phoff, phentsize, phnum) = if wide {
        (n(0x20, 8), n(0x36, 2), n(0x38, 2))
    } else {
        (n(0x1c, 4), n(0x2a, 2), n(0x2c, 2))
    };
    (0..phnum).any(|i| n(phoff + i * phentsize, 4) == 3)
}

/// The static client of the ABI the tests run (`MFIGUARD_TEST_TARGET`, else x86_64), so that it
/// compares with the library's runs of the same ABI.
fn static_client_native() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let target = cross_target().unwrap_or_else(|| "x86_64-unknown-linux-gnu".into());
        static_client(&target).expect("static client")
    })
}

/// Which mechanism guards the tool: every test runs under both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// Seccomp user notification (`mfiguard-run --via supervise`).
    Notify,
    /// The ptrace fallback (`mfiguard-run --via ptrace`).
    Ptrace,
}

impl Via {
    /// The `guard` field of its records.
    fn guard(self) -> &'static str {
        match self {
            Via::Notify => "supervisor",
            Via::Ptrace => "ptrace",
        }
    }
}

/// `#[test] fn notify()` and `#[test] fn ptrace()` in a module named after `body(via)`.
macro_rules! both {
    ($body:ident) => {
        mod $body {
            #[test]
            fn notify() {
                super::$body(super::Via::Notify)
            }
            #[test]
            fn ptrace() {
                super::$body(super::Via::Ptrace)
            }
        }
    };
}

/// A tool run under the supervisor.
struct Supervised {
    via: Via,
    /// `--via` instead of the mechanism's (`auto`).
    flag: Option<&'static str>,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// A program (and its arguments) that runs the supervisor, e.g. `setpriv ... --`.
    wrapper: Vec<&'static str>,
}

fn supervised(via: Via, program: &Path, args: &[&str]) -> Supervised {
    Supervised {
        via,
        flag: None,
        program: program.to_path_buf(),
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        env: Vec::new(),
        wrapper: Vec::new(),
    }
}

/// `mfi_client --device /dev/null ARGS` under the supervisor.
fn supervised_client(via: Via, client: &Path, args: &[&str]) -> Supervised {
    let mut all = vec!["--device", "/dev/null"];
    all.extend_from_slice(args);
    supervised(via, client, &all)
}

impl Supervised {
    fn env(mut self, k: &str, v: &str) -> Supervised {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    fn flag(mut self, f: &'static str) -> Supervised {
        self.flag = Some(f);
        self
    }

    fn under(mut self, wrapper: &[&'static str]) -> Supervised {
        self.wrapper = wrapper.to_vec();
        self
    }

    fn command(&self, dir: &Scratch) -> Command {
        let sup = supervisor();
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(sup);
                c
            }
            None => Command::new(sup),
        };
        // mfiguard-run --via MECHANISM -- TOOL ARGS (the flag: another --via, e.g. auto).
        let via = match (self.flag, self.via) {
            (Some(f), _) => f,
            (None, Via::Ptrace) => "ptrace",
            (None, Via::Notify) => "supervise",
        };
        cmd.args(["--via", via, "--"])
            .arg(&self.program)
            .args(&self.args);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("MFIGUARD_") || k.starts_with("MFISIM_") || k.starts_with("MFI_CLIENT")
            {
                cmd.env_remove(&k);
            }
        }
        let conf = dir.path("empty-mfiguard.conf");
        std::fs::write(&conf, "").expect("write empty config");
        cmd.env("MFIGUARD_CONFIG", &conf)
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFIGUARD_LOG", dir.path("audit.jsonl"))
            .env("MFISIM_RECORD", dir.path("sim.jsonl"))
            .env("LD_PRELOAD", host_sim())
            .env("MFISIM_ONLY_IN", sup.file_name().expect("supervisor name"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(self) -> Run {
        let dir = Scratch::new("sup");
        let mut cmd = self.command(&dir);
        let (status, stdout, stderr) = run_with_timeout(&mut cmd, RUN_TIMEOUT);
        let audit_text = std::fs::read_to_string(dir.path("audit.jsonl")).unwrap_or_default();
        let sim_text = std::fs::read_to_string(dir.path("sim.jsonl")).unwrap_or_default();
        Run {
            desc: format!(
                "supervised ({:?}) {} {}",
                self.via,
                self.program.display(),
                self.args.join(" ")
            ),
            status,
            stdout,
            stderr,
            sim: parse_lines(&sim_text, "simulator record"),
            audit: parse_records(&audit_text, "audit log"),
            audit_text,
        }
    }
}

/// A simulator record without what depends on the process that issued the call (its pid, its
/// ABI: the supervisor always issues the native layout).
fn sim_view(v: &Value) -> Value {
    let mut v = stable(v);
    if let Some(o) = v.as_object_mut() {
        for k in ["abi", "request", "request_name"] {
            o.remove(k);
        }
    }
    v
}

/// An audit call without what differs between entries and runs.
fn audit_view(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in [
            "pid",
            "ts",
            "exe",
            "guard",
            "build",
            "latency_us",
            "uid",
            "argv",
        ] {
            o.remove(k);
        }
    }
    v
}

fn mode_for(id: &str) -> &'static str {
    if id.starts_with("readonly.") {
        "readonly"
    } else {
        "enforce"
    }
}

both!(every_rule_in_a_static_tool_as_under_the_library);
fn every_rule_in_a_static_tool_as_under_the_library(via: Via) {
    let ids: Vec<&str> = RULES.iter().map(|r| r.id.name()).chain(["pass"]).collect();
    for id in ids {
        let mode = mode_for(id);
        let lib = client(&["rule", id])
            .guard(Guard::DefaultMode)
            .env("MFIGUARD_MODE", mode)
            .env("MFIGUARD_AUDIT", "all")
            .run();
        let sup = supervised_client(via, static_client_native(), &["rule", id])
            .env("MFIGUARD_MODE", mode)
            .env("MFIGUARD_AUDIT", "all")
            .run();
        let ctx = format!(
            "rule {id}\n--- library\n{}\n--- supervisor\n{}",
            lib.dump(),
            sup.dump()
        );
        assert_eq!(lib.code(), sup.code(), "{ctx}");
        assert_eq!(lib.stdout, sup.stdout, "{ctx}");
        let lib_sim: Vec<Value> = lib.sim.iter().map(sim_view).collect();
        let sup_sim: Vec<Value> = sup.sim.iter().map(sim_view).collect();
        assert_eq!(lib_sim, sup_sim, "what reached the driver differs\n{ctx}");
        let lib_audit: Vec<Value> = lib.audit_calls().iter().map(audit_view).collect();
        let sup_audit: Vec<Value> = sup.audit_calls().iter().map(audit_view).collect();
        assert_eq!(lib_audit, sup_audit, "the records differ\n{ctx}");
        for rec in &sup.audit {
            assert_eq!(text(rec, "guard"), Some(via.guard()), "{ctx}");
            assert!(
                text(rec, "exe").is_some_and(|e| e.ends_with("mfi_client")),
                "the record names the tool, not the supervisor\n{ctx}"
            );
            // The tool's command line, not the supervisor's.
            let argv: Vec<&str> = rec["argv"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert!(
                argv.first().is_some_and(|a| a.ends_with("mfi_client"))
                    && argv[1..] == ["--device", "/dev/null", "rule", id],
                "argv {argv:?}\n{ctx}"
            );
        }
    }
}

both!(an_ld_read_never_reaches_the_driver);
/// A raw LD read, which every driver's completion turns into a fatal oops (`tests/ld_io.rs`):
/// refused before the driver, in enforce and read-only mode, from a static tool.
fn an_ld_read_never_reaches_the_driver(via: Via) {
    for mode in ["enforce", "readonly"] {
        let run = supervised_client(via, static_client_native(), &["ld-read", "0"])
            .env("MFIGUARD_MODE", mode)
            .run();
        assert_eq!(run.code(), 1, "{}", run.dump());
        assert!(
            run.stdout.contains("ret=-1 errno=22 (EINVAL)"),
            "{}",
            run.dump()
        );
        assert!(
            run.sim.is_empty(),
            "the frame reached the driver\n{}",
            run.dump()
        );
        let call = run.audit_call();
        assert_eq!(text(&call, "guard"), Some(via.guard()), "{}", run.dump());
        assert!(
            finding(&call, "frame.cmd-forbidden").is_some(),
            "{}",
            run.dump()
        );
    }
}

/// The seed's STP probe and the unchecked `sgl_off`, as a tool sends them by `how`.
fn seed_and_hazard(via: Via, client: &Path, how: &str) {
    let probe = supervised_client(via, client, &["stp-probe", "10"])
        .env("MFI_CLIENT_SYSCALL", how)
        .run();
    let sim = probe.sim_call();
    assert_eq!(
        text(sim, "flags"),
        Some("0x0010"),
        "{how}\n{}",
        probe.dump()
    );
    let call = probe.audit_call();
    assert_eq!(
        text(&call, "flags_sent"),
        Some("0x0010"),
        "{}",
        probe.dump()
    );
    assert!(
        probe.stdout.contains("model=SIM SATA SSD"),
        "{}",
        probe.dump()
    );

    let hazard = supervised_client(via, client, &["sgl-off", "0x40000"])
        .env("MFI_CLIENT_SYSCALL", how)
        .run();
    assert!(
        hazard.sim.is_empty(),
        "sgl_off reached the driver\n{}",
        hazard.dump()
    );
    assert!(hazard.stdout.contains("errno=22"), "{}", hazard.dump());
    assert_eq!(finding_rules(&hazard.audit_call())[0], "sgl.bounds");
}

both!(libc_raw_syscall_and_the_instruction_are_all_guarded);
fn libc_raw_syscall_and_the_instruction_are_all_guarded(via: Via) {
    for how in ["libc", "syscall", "asm"] {
        seed_and_hazard(via, &examples().client, how);
        seed_and_hazard(via, static_client_native(), how);
    }
}

both!(the_i386_entry_from_a_64_bit_process_is_guarded);
fn the_i386_entry_from_a_64_bit_process_is_guarded(via: Via) {
    if cfg!(not(target_arch = "x86_64")) || cross_target().is_some() {
        eprintln!("SKIPPED: int 0x80 from a 64-bit process needs a 64-bit client");
        return;
    }
    let probe =
        supervised_client(via, static_client_native(), &["compat-int80", "stp-probe"]).run();
    assert_eq!(
        text(probe.sim_call(), "flags"),
        Some("0x0010"),
        "{}",
        probe.dump()
    );
    let call = probe.audit_call();
    assert_eq!(text(&call, "abi"), Some("i386"), "{}", probe.dump());
    assert_eq!(text(&call, "request"), Some("MEGASAS_IOC_FIRMWARE32"));
    assert!(
        probe.stdout.contains("model=SIM SATA SSD"),
        "{}",
        probe.dump()
    );
    let hazard = supervised_client(via, static_client_native(), &["compat-int80", "sgl-off"]).run();
    assert!(hazard.sim.is_empty(), "{}", hazard.dump());
    assert!(hazard.stdout.contains("errno=22"), "{}", hazard.dump());
}

both!(a_static_32_bit_tool_using_int_0x80_is_guarded);
fn a_static_32_bit_tool_using_int_0x80_is_guarded(via: Via) {
    let Some(client) = static_client("i686-unknown-linux-gnu") else {
        return;
    };
    seed_and_hazard(via, &client, "asm");
    seed_and_hazard(via, &client, "libc");
}

const CTYPES: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = os.open("/dev/null", os.O_RDWR)
pkt = (ctypes.c_ubyte * 404)()
pkt[0x14] = 0x05                       # DCMD
pkt[0x14 + 0x10] = 0x32                # IEEE|SGL64|DIR_READ
if sys.argv[1] == "hazard":
    pkt[6] = 0x04                      # sgl_off = 0x40000
    pkt[8] = 1                         # sge_count = 1
    buf = (ctypes.c_ubyte * 64)()
    ctypes.memmove(ctypes.addressof(pkt) + 0x94, ctypes.byref(ctypes.c_uint64(ctypes.addressof(buf))), 8)
    pkt[0x94 + 8] = 64
ret = libc.ioctl(fd, ctypes.c_ulong(0xc1944d01), pkt)
print("ret=%d errno=%d" % (ret, ctypes.get_errno()))
"#;

fn python() -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "command -v python3"])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!p.is_empty()).then(|| PathBuf::from(p))
}

both!(python_ctypes_is_guarded);
fn python_ctypes_is_guarded(via: Via) {
    if cross_target().is_some() {
        return;
    }
    let Some(py) = python() else {
        eprintln!("SKIPPED: no python3");
        return;
    };
    let ok = supervised(via, &py, &["-c", CTYPES, "probe"]).run();
    assert!(ok.stdout.contains("ret=0 errno=0"), "{}", ok.dump());
    assert_eq!(
        text(ok.sim_call(), "flags"),
        Some("0x0010"),
        "{}",
        ok.dump()
    );
    let hazard = supervised(via, &py, &["-c", CTYPES, "hazard"]).run();
    assert!(
        hazard.stdout.contains("ret=-1 errno=22"),
        "{}",
        hazard.dump()
    );
    assert!(hazard.sim.is_empty(), "{}", hazard.dump());
}

both!(a_grandchild_with_a_clean_environment_is_guarded);
fn a_grandchild_with_a_clean_environment_is_guarded(via: Via) {
    let client = examples().client.display().to_string();
    let script = format!("exec /usr/bin/env -i {client} --device /dev/null stp-probe 10");
    let run = supervised(via, Path::new("/bin/sh"), &["-c", &script]).run();
    assert_eq!(
        text(run.sim_call(), "flags"),
        Some("0x0010"),
        "{}",
        run.dump()
    );
    let script = format!("/usr/bin/env -i {client} --device /dev/null sgl-off 0x40000; exit 0");
    let run = supervised(via, Path::new("/bin/sh"), &["-c", &script]).run();
    assert!(run.sim.is_empty(), "{}", run.dump());
    assert!(run.stdout.contains("errno=22"), "{}", run.dump());
}

both!(megaraid_calls_on_other_files_are_refused_not_executed);
fn megaraid_calls_on_other_files_are_refused_not_executed(via: Via) {
    // A MegaRAID request on a pipe: the kernel would answer ENOTTY; the guard answers the same
    // without executing it (it would run with the guard's credentials and memory), and says so.
    let plain = client(&["unrelated"]).run();
    let sup = supervised_client(via, static_client_native(), &["unrelated"]).run();
    assert_eq!(plain.stdout, sup.stdout, "{}\n{}", plain.dump(), sup.dump());
    assert!(sup.stdout.contains("errno=25 (ENOTTY)"), "{}", sup.dump());
    assert!(sup.sim.is_empty(), "{}", sup.dump());
    let calls = sup.audit_calls();
    assert_eq!(calls.len(), 1, "{}", sup.dump());
    assert_eq!(
        finding_rules(&calls[0]),
        ["guard.unrecognised-file"],
        "{}",
        sup.dump()
    );
    assert_eq!(
        errno(&calls[0]),
        Some(i64::from(libc::ENOTTY)),
        "{}",
        sup.dump()
    );
}

both!(get_aen_as_under_the_library);
fn get_aen_as_under_the_library(via: Via) {
    let lib = client(&["aen"]).guard(Guard::Enforce).run();
    let sup = supervised_client(via, static_client_native(), &["aen"]).run();
    assert_eq!(lib.stdout, sup.stdout, "{}\n{}", lib.dump(), sup.dump());
    let views = |r: &Run| r.sim.iter().map(sim_view).collect::<Vec<_>>();
    assert_eq!(views(&lib), views(&sup));
    assert_eq!(
        text(&sup.audit_call(), "request"),
        Some("MEGASAS_IOC_GET_AEN")
    );
}

both!(a_thread_flipping_the_packet_never_gets_its_flags_to_the_driver);
fn a_thread_flipping_the_packet_never_gets_its_flags_to_the_driver(via: Via) {
    let run = supervised_client(via, static_client_native(), &["race", "3000"])
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert!(!run.sim.is_empty(), "{}", run.dump());
    let calls = run.audit_calls();
    let mut sent = std::collections::BTreeMap::new();
    for c in &calls {
        if text(c, "verdict") != Some("reject") {
            sent.insert(
                int(c, "seq").unwrap(),
                text(c, "flags_sent").unwrap().to_owned(),
            );
        }
    }
    for s in &run.sim {
        let flags = int(s, "flags").unwrap();
        assert_eq!(flags & 0x26, 0, "addressing flags reached the driver: {s}");
    }
    // The driver saw exactly what each record says was sent, call by call.
    let at_driver: Vec<String> = run
        .sim
        .iter()
        .map(|s| text(s, "flags").unwrap().to_owned())
        .collect();
    let recorded: Vec<String> = sent.into_values().collect();
    assert_eq!(at_driver, recorded);
}

/// `signals CALLS US` with a slow driver: every firmware command the driver saw belongs to
/// exactly one call the tool saw succeed.
fn signal_storm(via: Via, killable: bool, sa_restart: bool) {
    let mut s = supervised_client(via, static_client_native(), &["signals", "300", "3000"])
        .env("MFISIM_DELAY_US", "300")
        .env("MFI_CLIENT_SA_RESTART", if sa_restart { "1" } else { "0" });
    if !killable {
        s = s.env("MFIGUARD_TEST_NO_KILLABLE", "1");
    }
    let run = s.run();
    let line = run.stdout.lines().next().unwrap_or_default().to_owned();
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {line}\n{}", run.dump()))
    };
    let ctx = format!(
        "killable={killable} SA_RESTART={sa_restart}\n{}",
        run.dump()
    );
    assert_eq!(field("handler_unexpected"), 0, "{ctx}");
    let commands = run.sim.len() as u64;
    // Under ptrace a call is answered in its seccomp stop and never restarted: one command
    // per call whatever the signals.
    if killable || sa_restart || via == Via::Ptrace {
        // Every call interrupted after its command ran is restarted and answered from that run.
        assert_eq!(
            commands,
            field("ok"),
            "firmware commands != calls that succeeded\n{ctx}"
        );
    } else {
        // Without both, the kernel may end an interrupted call with EINTR after its command
        // ran (the tool sees a failure): still never a second command for one call.
        let sendable = field("calls") - field("calls") / 3;
        assert!(
            (field("ok")..=sendable).contains(&commands),
            "{commands} firmware commands for {} successful calls of {sendable}\n{ctx}",
            field("ok")
        );
    }
    if sa_restart {
        assert_eq!(field("unexpected"), 0, "a restarted call failed\n{ctx}");
    }
}

both!(one_firmware_command_per_call_under_a_signal_storm);
fn one_firmware_command_per_call_under_a_signal_storm(via: Via) {
    // The killable wait is a user-notification flag: once under ptrace.
    let killables: &[bool] = match via {
        Via::Notify => &[true, false],
        Via::Ptrace => &[true],
    };
    for &killable in killables {
        for sa_restart in [true, false] {
            signal_storm(via, killable, sa_restart);
        }
    }
}

both!(the_tool_exit_status_is_its_own);
fn the_tool_exit_status_is_its_own(via: Via) {
    let run = supervised(
        via,
        Path::new("/bin/sh"),
        &["-c", "echo out; echo err >&2; exit 7"],
    )
    .run();
    assert_eq!(run.code(), 7);
    assert_eq!(run.stdout, "out\n");
    assert_eq!(run.stderr, "err\n");
    let dir = Scratch::new("sig");
    let mut cmd = supervised(via, Path::new("/bin/sh"), &["-c", "kill -TERM $$"]).command(&dir);
    let (status, _, _) = run_with_timeout(&mut cmd, RUN_TIMEOUT);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

both!(a_signal_to_the_supervisor_reaches_the_tool);
fn a_signal_to_the_supervisor_reaches_the_tool(via: Via) {
    use std::os::unix::process::ExitStatusExt;
    let dir = Scratch::new("term");
    let mut cmd = supervised(via, Path::new("/bin/sleep"), &["30"]).command(&dir);
    let mut child = cmd.spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    // SAFETY: our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

both!(a_killed_supervisor_fails_the_tool_closed);
fn a_killed_supervisor_fails_the_tool_closed(via: Via) {
    // Slow calls, one after another; the supervisor is killed after the first reaches the
    // driver. Under user notification the tool's later calls must fail (ENOSYS), none may
    // succeed without it; under ptrace the tool dies with its tracer (PTRACE_O_EXITKILL).
    let dir = Scratch::new("kill");
    let mut cmd = supervised_client(
        via,
        static_client_native(),
        &["--repeat", "40", "ieee-dcmd"],
    )
    .env("MFISIM_DELAY_US", "50000")
    .command(&dir);
    let mut child = cmd.spawn().expect("spawn");
    let sim = dir.path("sim.jsonl");
    wait_for_lines(&sim, 1);
    let wrapper = child.id() as i32;
    let tool = tool_of(wrapper);
    // The guard: the wrapper itself under user notification; under ptrace, the tracer, a
    // process of its own between the wrapper and the tool.
    let guard = match via {
        Via::Notify => wrapper,
        Via::Ptrace => child_of(wrapper).expect("the tracer"),
    };
    // SAFETY: our own child, or its child.
    unsafe { libc::kill(guard, libc::SIGKILL) };
    let _ = child.wait();
    // The tool, orphaned, still holds our stdout pipe: read it to its end.
    let start = Instant::now();
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    let seen = std::fs::read_to_string(&sim)
        .unwrap_or_default()
        .lines()
        .count();
    assert!(seen <= 2, "calls reached the driver after the kill: {seen}");
    match via {
        Via::Notify => {
            assert!(
                out.contains("errno=38"),
                "the last call did not fail with ENOSYS:\n{out}"
            );
            assert!(out.contains("calls=40"), "the tool did not finish:\n{out}");
        }
        Via::Ptrace => {
            // Its 40 slow calls would take 2 s: it ended at once, by SIGKILL, without a word.
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "the tool outlived its tracer"
            );
            assert!(!out.contains("calls="), "the tool finished:\n{out}");
            if let Some(tool) = tool {
                // Its files are closed early in its exit: give the rest a moment.
                let dead = || matches!(proc_state(tool), None | Some('Z' | 'X'));
                let start = Instant::now();
                while !dead() && start.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                assert!(dead(), "the tool {tool} still runs: {:?}", proc_state(tool));
            }
        }
    }
}

/// Waits (at most 30 s) until `path` has `n` lines.
fn wait_for_lines(path: &Path, n: usize) {
    let start = Instant::now();
    while std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
        < n
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "fewer than {n} calls reached the driver"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The first child of process `pid` (the tool, for a supervisor), from `/proc`.
fn tool_of(pid: i32) -> Option<i32> {
    let child = child_of(pid)?;
    // Under ptrace the tracer is a process of its own between the wrapper and the tool.
    let exe = |p: i32| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    if exe(child).is_some() && exe(child) == exe(pid) {
        return child_of(child);
    }
    Some(child)
}

fn child_of(pid: i32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    if let Some(c) = children.split_whitespace().next() {
        return c.parse().ok();
    }
    // Without CONFIG_PROC_CHILDREN: every process's parent.
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let p: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        (proc_ppid(p) == Some(pid)).then_some(p)
    })
}

/// Field `n` (1-based, after the command name) of `/proc/PID/stat`.
fn proc_stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(n - 1).map(str::to_owned)
}

fn proc_state(pid: i32) -> Option<char> {
    proc_stat_field(pid, 1)?.chars().next()
}

fn proc_ppid(pid: i32) -> Option<i32> {
    proc_stat_field(pid, 2)?.parse().ok()
}

const THREADS_AFTER: &str = r#"
import ctypes, os, sys, threading
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = os.open("/dev/null", os.O_RDWR)
def call():
    pkt = (ctypes.c_ubyte * 404)()
    pkt[0x14] = 0x05                   # DCMD
    pkt[0x14 + 0x10] = 0x32            # IEEE|SGL64|DIR_READ
    return libc.ioctl(fd, ctypes.c_ulong(0xc1944d01), pkt)
first = call()                         # before any thread exists
n, m = int(sys.argv[1]), int(sys.argv[2])
ok = []
def worker():
    ok.append(sum(1 for _ in range(m) if call() == 0))
threads = [threading.Thread(target=worker) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print("first=%d ok=%d" % (first, sum(ok)))
"#;

both!(threads_created_after_the_first_call_are_guarded);
fn threads_created_after_the_first_call_are_guarded(via: Via) {
    if cross_target().is_some() {
        return;
    }
    let Some(py) = python() else {
        eprintln!("SKIPPED: no python3");
        return;
    };
    let run = supervised(via, &py, &["-c", THREADS_AFTER, "4", "25"])
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert!(run.stdout.contains("first=0 ok=100"), "{}", run.dump());
    // Every call, the first thread's and the later threads', reached the driver rewritten.
    assert_eq!(run.sim.len(), 101, "{}", run.dump());
    for s in &run.sim {
        assert_eq!(text(s, "flags"), Some("0x0010"), "{s}");
    }
    let calls = run.audit_calls();
    assert_eq!(calls.len(), 101, "{}", run.dump());
    for c in &calls {
        assert_eq!(text(c, "guard"), Some(via.guard()));
    }
}

both!(a_tool_that_forks_and_execs_a_static_child_is_guarded);
fn a_tool_that_forks_and_execs_a_static_child_is_guarded(via: Via) {
    let client = static_client_native().display().to_string();
    // sh forks and execs the static client (twice): both children are guarded.
    let script = format!(
        "{client} --device /dev/null stp-probe 10; {client} --device /dev/null sgl-off 0x40000; exit 0"
    );
    let run = supervised(via, Path::new("/bin/sh"), &["-c", &script]).run();
    assert_eq!(
        run.sim.len(),
        1,
        "only the probe reaches the driver\n{}",
        run.dump()
    );
    assert_eq!(
        text(run.sim_call(), "flags"),
        Some("0x0010"),
        "{}",
        run.dump()
    );
    assert!(run.stdout.contains("model=SIM SATA SSD"), "{}", run.dump());
    assert!(run.stdout.contains("errno=22"), "{}", run.dump());
    // A client that forks after its first call: 4 children, each 10 rewritten calls and 10
    // refused ones, the parent 2 calls.
    let run = supervised_client(via, static_client_native(), &["fork", "4", "20"]).run();
    assert!(
        run.stdout.contains("children_ok=4") && run.stdout.contains("parent_ok=2"),
        "{}",
        run.dump()
    );
    assert_eq!(run.sim.len(), 2 + 4 * 10, "{}", run.dump());
    for s in &run.sim {
        assert_eq!(int(s, "flags").unwrap() & 0x26, 0, "{s}");
    }
}

both!(a_stopped_tool_stays_stopped_until_continued);
fn a_stopped_tool_stays_stopped_until_continued(via: Via) {
    let dir = Scratch::new("stop");
    let mut cmd = supervised_client(
        via,
        static_client_native(),
        &["--repeat", "30", "ieee-dcmd"],
    )
    .env("MFISIM_DELAY_US", "20000")
    .command(&dir);
    let mut child = cmd.spawn().expect("spawn");
    let sim = dir.path("sim.jsonl");
    let lines = || {
        std::fs::read_to_string(&sim)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_for_lines(&sim, 2);
    let tool = tool_of(child.id() as i32).expect("the tool's pid");
    // SAFETY: a process of ours (the supervisor's child).
    unsafe { libc::kill(tool, libc::SIGSTOP) };
    let stopped = || matches!(proc_state(tool), Some('T' | 't'));
    let start = Instant::now();
    while !stopped() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the tool never stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // At most the call in progress ends; then nothing while it is stopped.
    std::thread::sleep(Duration::from_millis(200));
    let before = lines();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(lines(), before, "calls ran while the tool was stopped");
    assert!(
        stopped(),
        "the tool did not stay stopped: {:?}",
        proc_state(tool)
    );
    assert!(before < 30, "the tool finished before it was stopped");
    assert!(child.try_wait().expect("try_wait").is_none());
    // SAFETY: as above.
    unsafe { libc::kill(tool, libc::SIGCONT) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the tool never finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert!(status.success(), "{status:?}\n{out}");
    assert!(out.contains("calls=30 failed=0"), "{out}");
    assert_eq!(lines(), 30);
}

#[test]
fn ptrace_without_pidfd_getfd_reopens_the_descriptor() {
    // As on kernels before 5.6: the tool's descriptor through /proc/<tid>/fd/N.
    let via = Via::Ptrace;
    for how in ["libc", "syscall"] {
        let probe = supervised_client(via, static_client_native(), &["stp-probe", "10"])
            .env("MFI_CLIENT_SYSCALL", how)
            .env("MFIGUARD_TEST_NO_PIDFD_GETFD", "1")
            .run();
        assert_eq!(
            text(probe.sim_call(), "flags"),
            Some("0x0010"),
            "{}",
            probe.dump()
        );
        assert!(
            probe.stdout.contains("model=SIM SATA SSD"),
            "{}",
            probe.dump()
        );
        let hazard = supervised_client(via, static_client_native(), &["sgl-off", "0x40000"])
            .env("MFI_CLIENT_SYSCALL", how)
            .env("MFIGUARD_TEST_NO_PIDFD_GETFD", "1")
            .run();
        assert!(hazard.sim.is_empty(), "{}", hazard.dump());
        assert!(hazard.stdout.contains("errno=22"), "{}", hazard.dump());
    }
    // GET_AEN is not compared here: the simulator's stand-in node, /dev/null, cannot keep
    // O_ASYNC, so the tool's registration is invisible in /proc/<tid>/fdinfo (on the real
    // node it is, and the tracer mirrors it: see ptrace.rs, `node_fd`).
    let unrelated = supervised_client(via, static_client_native(), &["unrelated"])
        .env("MFIGUARD_TEST_NO_PIDFD_GETFD", "1")
        .run();
    let plain = client(&["unrelated"]).run();
    assert_eq!(plain.stdout, unrelated.stdout, "{}", unrelated.dump());
    assert!(unrelated.sim.is_empty(), "{}", unrelated.dump());
}

#[test]
fn auto_chooses_ptrace_where_user_notification_is_missing() {
    // Forced: the probe is told user notification is missing.
    let run = supervised_client(Via::Ptrace, static_client_native(), &["stp-probe", "10"])
        .flag("auto")
        .env("MFIGUARD_TEST_NO_USER_NOTIF", "1")
        .run();
    assert_eq!(
        text(&run.audit_call(), "guard"),
        Some("ptrace"),
        "{}",
        run.dump()
    );
    assert_eq!(
        text(run.sim_call(), "flags"),
        Some("0x0010"),
        "{}",
        run.dump()
    );
    // This kernel has it: auto takes user notification.
    let run = supervised_client(Via::Notify, static_client_native(), &["stp-probe", "10"])
        .flag("auto")
        .run();
    assert_eq!(
        text(&run.audit_call(), "guard"),
        Some("supervisor"),
        "{}",
        run.dump()
    );
}

const TRACEME: &str = r#"
import ctypes
libc = ctypes.CDLL("libc.so.6", use_errno=True)
ret = libc.ptrace(0, 0, None, None)    # PTRACE_TRACEME
print("ret=%d errno=%d" % (ret, ctypes.get_errno()))
"#;

/// Under user notification `PTRACE_TRACEME` would make the supervisor the tool's tracer
/// without its knowing: not tried there.
#[test]
fn a_tool_that_uses_ptrace_itself_is_refused_at_once() {
    let via = Via::Ptrace;
    if cross_target().is_some() {
        return;
    }
    let Some(py) = python() else {
        eprintln!("SKIPPED: no python3");
        return;
    };
    let start = Instant::now();
    let run = supervised(via, &py, &["-c", TRACEME]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    // Already traced by us: the kernel refuses at once (EPERM), nothing hangs.
    assert!(run.stdout.contains("ret=-1 errno=1"), "{}", run.dump());
    assert!(start.elapsed() < Duration::from_secs(20));
}

/// A "shell" on a pseudo-terminal: it starts the job (`argv[1..]`) in its own foreground
/// process group and waits for it with `WUNTRACED`, as a shell does; on a stop it records
/// it, continues the job (`fg`: `SIGCONT` to its group) and records its exit. The terminal
/// side types Ctrl-Z once the job's second call reached the driver.
const JOB_CONTROL: &str = r#"
import os, pty, signal, sys, time
job_argv, out, sim = sys.argv[1:], os.environ["JOBCTL_OUT"], os.environ["MFISIM_RECORD"]
def note(s):
    with open(out, "a") as f: f.write(s + "\n")
pid, master = pty.fork()
if pid == 0:
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    job = os.fork()
    if job == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(0, os.getpid())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.execv(job_argv[0], job_argv)
    os.setpgid(job, job)
    os.tcsetpgrp(0, job)
    _, st = os.waitpid(job, os.WUNTRACED)
    note("stopped=%d" % os.WIFSTOPPED(st))
    if os.WIFSTOPPED(st):
        time.sleep(0.3)
        with open(sim) as f: note("calls_while_stopped_from=%d" % len(f.read().splitlines()))
        time.sleep(0.5)
        with open(sim) as f: note("calls_while_stopped_to=%d" % len(f.read().splitlines()))
        os.tcsetpgrp(0, job)
        os.killpg(job, signal.SIGCONT)
        _, st = os.waitpid(job, 0)
    note("exit=%d" % os.waitstatus_to_exitcode(st))
    os._exit(0)
deadline = time.time() + 30
def calls():
    try:
        with open(sim) as f: return len(f.read().splitlines())
    except FileNotFoundError: return 0
while calls() < 2 and time.time() < deadline: time.sleep(0.01)
os.write(master, b"\x1a")
while True:
    try: d = os.read(master, 4096)
    except OSError: break
    if not d: break
    sys.stdout.write(d.decode(errors="replace"))
os.waitpid(pid, 0)
"#;

both!(ctrl_z_in_a_terminal_stops_the_job_and_fg_resumes_it);
fn ctrl_z_in_a_terminal_stops_the_job_and_fg_resumes_it(via: Via) {
    if cross_target().is_some() {
        return;
    }
    let Some(py) = python() else {
        eprintln!("SKIPPED: no python3");
        return;
    };
    let dir = Scratch::new("jobctl");
    let job = supervised_client(
        via,
        static_client_native(),
        &["--repeat", "30", "ieee-dcmd"],
    )
    .env("MFISIM_DELAY_US", "20000")
    .command(&dir);
    let mut cmd = Command::new(&py);
    cmd.arg("-c")
        .arg(JOB_CONTROL)
        .arg(job.get_program())
        .args(job.get_args());
    for (k, v) in job.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = dir.path("jobctl.txt");
    cmd.env("JOBCTL_OUT", &out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, stdout, stderr) = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let notes = std::fs::read_to_string(&out).unwrap_or_default();
    let ctx = format!("{status:?}\n--- notes\n{notes}--- terminal\n{stdout}\n--- stderr\n{stderr}");
    assert!(
        notes.contains("stopped=1"),
        "the shell never saw the job stop\n{ctx}"
    );
    let field = |k: &str| -> usize {
        notes
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k}\n{ctx}"))
    };
    assert_eq!(
        field("calls_while_stopped_from"),
        field("calls_while_stopped_to"),
        "calls ran while the job was stopped\n{ctx}"
    );
    assert!(notes.contains("exit=0"), "{ctx}");
    assert!(stdout.contains("calls=30 failed=0"), "{ctx}");
    let sim = std::fs::read_to_string(dir.path("sim.jsonl")).unwrap_or_default();
    assert_eq!(sim.lines().count(), 30, "{ctx}");
}

both!(a_descendant_left_running_when_the_tool_ends_stays_guarded);
fn a_descendant_left_running_when_the_tool_ends_stays_guarded(via: Via) {
    // The tool (sh) leaves a child that makes its call after sh has ended, and mfiguard-run
    // returns sh's status at once. The guard outlives it (the supervisor's server, the tracer)
    // and keeps the child guarded: the call rewritten, recorded.
    let dir = Scratch::new("orphan");
    let out = dir.path("bg.txt");
    let client = static_client_native().display().to_string();
    let script = format!(
        "(sleep 1; {client} --device /dev/null stp-probe 10 > {out}.tmp 2>&1; mv {out}.tmp {out}) \
         </dev/null >/dev/null 2>&1 & exit 3",
        out = out.display()
    );
    let start = Instant::now();
    let mut cmd = supervised(via, Path::new("/bin/sh"), &["-c", &script]).command(&dir);
    let (status, _, stderr) = run_with_timeout(&mut cmd, RUN_TIMEOUT);
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(20), "{stderr}");
    let waited = Instant::now();
    while !out.exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the background child never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let sim = std::fs::read_to_string(dir.path("sim.jsonl")).unwrap_or_default();
    assert!(text.contains("model=SIM SATA SSD"), "{text}");
    let sim = parse_lines(&sim, "simulator record");
    assert_eq!(sim.len(), 1, "{via:?}: {sim:?}");
    assert_eq!(common::text(&sim[0], "flags"), Some("0x0010"));
}

#[test]
fn an_mfiguard_run_under_another_runs_its_tool_under_the_outer_guard() {
    // mfiguard-run under mfiguard-run (a PATH shim called from a guarded script): the outer
    // filter refuses a second listener and ptrace, the inner one finds the outer guard
    // (its probe is answered EALREADY) and runs the tool under it: guarded once, by the outer
    // supervisor.
    let client = static_client_native().display().to_string();
    let inner = supervisor().display().to_string();
    let run = supervised(
        Via::Notify,
        Path::new(&inner),
        &[
            "--via",
            "auto",
            "--",
            &client,
            "--device",
            "/dev/null",
            "stp-probe",
            "10",
        ],
    )
    .run();
    assert_eq!(run.sim.len(), 1, "{}", run.dump());
    assert_eq!(
        text(run.sim_call(), "flags"),
        Some("0x0010"),
        "{}",
        run.dump()
    );
    assert!(run.stdout.contains("model=SIM SATA SSD"), "{}", run.dump());
    let calls: Vec<_> = run
        .audit_calls()
        .into_iter()
        .filter(|c| text(c, "request").is_some_and(|r| r.starts_with("MEGASAS_IOC_FIRMWARE")))
        .collect();
    assert_eq!(calls.len(), 1, "{}", run.dump());
    assert_eq!(
        text(&calls[0], "guard"),
        Some("supervisor"),
        "{}",
        run.dump()
    );
    // The inner one's attempts were refused and recorded: a listener, then ptrace.
    let refused: Vec<String> = run
        .audit_calls()
        .iter()
        .flat_map(finding_rules)
        .filter(|r| r == "guard.contained")
        .collect();
    assert!(!refused.is_empty(), "{}", run.dump());
}

/// The same with a dynamically linked tool and a stricter inner mode (a read-only PATH shim
/// called from a script guarded in enforce): the library applies the inner read-only mode
/// first, so CFG_CLEAR never reaches the outer guard, let alone the driver.
#[test]
fn a_stricter_inner_mfiguard_run_wins_under_another() {
    // The library of the client's class where the inner mfiguard-run looks for it.
    let lib_dir = Scratch::new("nested-lib");
    let dir = wrapper::guard_dir(&lib_dir);
    if dir != lib_dir.path("guard") {
        std::os::unix::fs::symlink(&dir, lib_dir.path("guard")).unwrap();
    }
    let client = examples().client.display().to_string();
    let inner = supervisor().display().to_string();
    let run = supervised(
        Via::Notify,
        Path::new(&inner),
        &[
            "--mode",
            "readonly",
            "--",
            &client,
            "--device",
            "/dev/null",
            "dcmd",
            "0x04030000",
            "none",
            "0",
        ],
    )
    .env("MFIGUARD_LIB_DIR", lib_dir.path("guard").to_str().unwrap())
    .run();
    assert!(
        run.stdout.contains("ret=-1 errno=1 (EPERM)"),
        "{}",
        run.dump()
    );
    assert_eq!(run.sim.len(), 0, "{}", run.dump());
    let refused: Vec<Value> = run
        .audit_calls()
        .into_iter()
        .filter(|c| finding_rules(c).iter().any(|r| r == "readonly.dcmd"))
        .collect();
    assert!(!refused.is_empty(), "{}", run.dump());
    assert_eq!(
        text(&refused[0], "guard"),
        Some("preload"),
        "{}",
        run.dump()
    );
    assert_eq!(
        text(&refused[0], "mode"),
        Some("readonly"),
        "{}",
        run.dump()
    );
}

both!(a_tool_killed_mid_call_is_recorded_as_executed_not_delivered);
fn a_tool_killed_mid_call_is_recorded_as_executed_not_delivered(via: Via) {
    use std::os::unix::process::ExitStatusExt;
    // One slow call (3 s in the driver); the tool is killed while the supervisor runs it.
    let dir = Scratch::new("killtool");
    let mut cmd = supervised_client(via, static_client_native(), &["ieee-dcmd"])
        .env("MFISIM_DELAY_US", "3000000")
        .command(&dir);
    let mut child = cmd.spawn().expect("spawn");
    let start = Instant::now();
    let tool = loop {
        if let Some(t) = tool_of(child.id() as i32) {
            break t;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no tool");
        std::thread::sleep(Duration::from_millis(5));
    };
    // Wait until the tool is inside its MegaRAID ioctl (/proc/PID/syscall names the call it
    // is blocked in), whatever the machine's load; then give the supervisor time to take it.
    // x86_64: ioctl is 16, the code 0xc1944d01; an i386 tool: 54 and 0xc1144d01.
    while !std::fs::read_to_string(format!("/proc/{tool}/syscall")).is_ok_and(|s| {
        (s.starts_with("16 ") && s.contains("0xc1944d01"))
            || (s.starts_with("54 ") && s.contains("0xc1144d01"))
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the tool never made its call"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: the supervisor's child.
    unsafe { libc::kill(tool, libc::SIGKILL) };
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the supervisor never ended"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let sim = std::fs::read_to_string(dir.path("sim.jsonl")).unwrap_or_default();
    assert_eq!(sim.lines().count(), 1, "one command: {sim}");
    let audit = std::fs::read_to_string(dir.path("audit.jsonl")).unwrap_or_default();
    let calls = parse_records(&audit, "audit log");
    let last = calls.last().expect("a record");
    assert!(
        finding_rules(last)
            .iter()
            .any(|r| r == "guard.not-delivered"),
        "{audit}"
    );
    assert!(
        last.to_string().contains("executed, not delivered"),
        "{audit}"
    );
}

/// `mfiguard-run` with nothing from the runner's environment but what is given.
fn wrapper_cmd(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(wrapper_bin());
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MFIGUARD_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("MFIGUARD_CONFIG", "/dev/null")
        .env("MFIGUARD_LIB_DIR", guard_lib().parent().unwrap())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (status, out, err) = run_with_timeout(&mut cmd, RUN_TIMEOUT);
    (status.code().unwrap_or(-1), out, err)
}

#[test]
fn the_wrapper_chooses_the_supervisor_and_refuses_what_nothing_guards() {
    let tool = static_client_native().to_str().unwrap().to_owned();
    // --check names the mechanism.
    let (code, out, _) = wrapper_cmd(&["--check", &tool], &[]);
    assert!(
        out.contains("guard: supervisor (static")
            && out.contains("supervisor probe: intercepted: yes (EINVAL from mfiguard)"),
        "exit {code}\n{out}"
    );
    let (_, out, _) = wrapper_cmd(&["--via", "preload", "--check", &tool], &[]);
    assert!(out.contains("guard: none ("), "{out}");
    // Forced to the preload, a static tool is refused, saying what would work.
    let (code, out, err) = wrapper_cmd(&["--via", "preload", &tool, "ctrl-info"], &[]);
    assert_eq!(code, 125, "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("statically linked") && err.contains("--via supervise"),
        "{err}"
    );
    // The same through the environment; an unknown mechanism is a usage error.
    let (code, _, _) = wrapper_cmd(&[&tool, "ctrl-info"], &[("MFIGUARD_VIA", "Preload")]);
    assert_eq!(code, 125);
    let (code, _, err) = wrapper_cmd(&["--via", "magic", "/bin/true"], &[]);
    assert_eq!(code, 125, "{err}");
    // --allow-unguarded runs it, with a warning and a record.
    let dir = Scratch::new("unguarded");
    let log = dir.path("audit.jsonl");
    let (code, _, err) = wrapper_cmd(
        &[
            "--via",
            "preload",
            "--allow-unguarded",
            "--log",
            log.to_str().unwrap(),
            &tool,
            "--device",
            "/dev/null",
            "unrelated",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the guard is NOT active"), "{err}");
    let records = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        records.contains("\"key\":\"guard\"") && records.contains("--allow-unguarded"),
        "{records}"
    );
    // A file log whose directory does not exist would lose every record: refused.
    let (code, _, err) = wrapper_cmd(&["--log", "/nonexistent-dir/audit.jsonl", "/bin/true"], &[]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("/nonexistent-dir does not exist"), "{err}");
    // With the guard off, nothing is installed: the tool simply runs, static or not.
    let (code, _, err) = wrapper_cmd(&["--mode", "off", "/bin/sh", "-c", "exit 4"], &[]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = wrapper_cmd(
        &["--mode", "off", &tool, "--device", "/dev/null", "unrelated"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
}

both!(log_required_fails_closed_as_under_the_library);
/// `MFIGUARD_LOG_REQUIRED=1` with a record file that cannot be written (a directory): every
/// recorded call fails closed with `EIO` before the driver, and stderr says so line for line as
/// under the library: the sink's refusal, then each call's records and its refusal, every line
/// naming the tool's pid.
fn log_required_fails_closed_as_under_the_library(via: Via) {
    let dir = Scratch::new("required-dir");
    let log = dir.path("audit.jsonl");
    std::fs::create_dir(&log).unwrap();
    let log = log.to_str().unwrap();
    let args = ["--repeat", "3", "ieee-dcmd"];
    let lib = client(&args)
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", log)
        .env("MFIGUARD_LOG_REQUIRED", "1")
        .run();
    let sup = supervised_client(via, &examples().client, &args)
        .env("MFIGUARD_LOG", log)
        .env("MFIGUARD_LOG_REQUIRED", "1")
        .run();
    let ctx = format!(
        "--- library\n{}\n--- supervisor\n{}",
        lib.dump(),
        sup.dump()
    );
    assert_eq!(lib.code(), 1, "{ctx}");
    assert_eq!(sup.code(), lib.code(), "{ctx}");
    assert_eq!(sup.stdout, lib.stdout, "{ctx}");
    assert!(lib.sim.is_empty() && sup.sim.is_empty(), "{ctx}");
    let lines = |stderr: &str| -> (Vec<String>, Vec<String>) {
        let guard: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("mfiguard["))
            .collect();
        let (pids, texts) = guard
            .iter()
            .map(|l| l.split_once("]: ").unwrap())
            .map(|(p, t)| (p.to_owned(), t.to_owned()))
            .unzip();
        (pids, texts)
    };
    let (lib_pids, lib_lines) = lines(&lib.stderr);
    let (sup_pids, sup_lines) = lines(&sup.stderr);
    assert_eq!(sup_lines, lib_lines, "{ctx}");
    // The refusal, then for each call its decision, the refusal and the outcome.
    assert_eq!(lib_lines.len(), 1 + 3 * 3, "{ctx}");
    assert!(
        lib_lines[2].starts_with("#1 refused with EIO (guard.log-required): "),
        "{ctx}"
    );
    for pids in [&lib_pids, &sup_pids] {
        assert!(pids.windows(2).all(|w| w[0] == w[1]), "{ctx}");
    }
}

/// Without `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (Linux before 5.19, forced here), calls
/// with 4 MiB buffers interrupted by signals and never restarted (no `SA_RESTART`: `EINTR`)
/// leave the supervisor's memory bounded: its peak stays far below what one kept buffer per
/// interrupted call would take, and still one firmware command per call at most.
#[test]
fn interrupted_calls_without_the_killable_wait_hold_bounded_memory() {
    const LEN: u64 = 4 << 20;
    let s = supervised_client(
        Via::Notify,
        static_client_native(),
        &["signals", "150", "4000"],
    )
    .env("MFISIM_DELAY_US", "5000")
    .env("MFI_CLIENT_SA_RESTART", "0")
    .env("MFI_CLIENT_SIGNALS_LEN", &LEN.to_string())
    .env("MFI_CLIENT_SIGNALS_DISTINCT", "1")
    .env("MFIGUARD_TEST_NO_KILLABLE", "1")
    .env("MFIGUARD_AUDIT", "all");
    let dir = Scratch::new("sup-restarts");
    let mut cmd = s.command(&dir);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn mfiguard-run");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    // The supervisor's own peak (VmHWM of the image it runs: a wait4 rusage would count the
    // test binary it was spawned from), read until it ends.
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        let hwm = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0);
        peak_kib = peak_kib.max(hwm);
        assert!(started.elapsed() < RUN_TIMEOUT, "the run did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = reader.join().unwrap();
    let audit = std::fs::read_to_string(dir.path("audit.jsonl")).unwrap_or_default();
    let interrupted = audit
        .lines()
        .filter(|l| l.contains("executed, not delivered"))
        .count() as u64;
    let ctx = format!(
        "{out}\ninterrupted={interrupted} peak={peak_kib} KiB\n{}",
        audit.lines().take(3).collect::<Vec<_>>().join("\n")
    );
    // Enough interrupted calls that keeping each one's buffer would pass the bound by far.
    assert!(
        interrupted >= 20,
        "too few interrupted calls to tell\n{ctx}"
    );
    // The bound (8 MiB of kept buffers) plus a call in flight (private copy and the
    // simulator's) and the process itself; one kept buffer each would be 80 MiB and more.
    assert!(
        peak_kib < 48 * 1024,
        "the supervisor held {peak_kib} KiB\n{ctx}"
    );
    // Never a second command for one call, results kept or not.
    let commands = std::fs::read_to_string(dir.path("sim.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    let field = |k: &str| -> u64 {
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k}\n{ctx}"))
    };
    let sendable = field("calls") - field("calls") / 3;
    assert!(commands <= sendable, "{commands} commands\n{ctx}");
}

/// `tests/data/escape.c`, built once with the system's C compiler.
fn escape_tool() -> Option<&'static Path> {
    static TOOL: OnceLock<Option<PathBuf>> = OnceLock::new();
    TOOL.get_or_init(|| {
        let dir = artifact_dir_for(None).join("escape-test");
        std::fs::create_dir_all(&dir).ok()?;
        let out = dir.join("escape");
        let ok = Command::new("cc")
            .args(["-O1", "-o"])
            .arg(&out)
            .arg(root().join("tests/data/escape.c"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: no C compiler for tests/data/escape.c");
        }
        ok.then_some(out)
    })
    .as_deref()
}

both!(the_doors_a_raid_tool_never_uses_are_closed_with_a_record);
fn the_doors_a_raid_tool_never_uses_are_closed_with_a_record(via: Via) {
    let Some(tool) = escape_tool() else {
        return;
    };
    let run = supervised(via, tool, &[]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    let eperm = libc::EPERM;
    for name in [
        "ptrace_traceme",
        "clone_untraced",
        "pidfd_getfd",
        "process_vm_writev",
        "listener",
    ] {
        assert!(
            run.stdout
                .contains(&format!("{name} ret=-1 errno={eperm}\n")),
            "{name}\n{}",
            run.dump()
        );
    }
    // The supervisor's memory: the tool has no CAP_SYS_PTRACE (even as root), and the
    // supervisor is not dumpable.
    assert!(
        run.stdout
            .contains(&format!("proc_mem ret=-1 errno={}\n", libc::EACCES)),
        "{}",
        run.dump()
    );
    // clone3: ENOSYS, so that libc falls back to clone; no record (every thread asks it).
    assert!(
        run.stdout
            .contains(&format!("clone3 ret=-1 errno={}\n", libc::ENOSYS)),
        "{}",
        run.dump()
    );
    // Their ordinary twins work: fork, and a filter without a listener.
    assert!(
        run.stdout.contains("fork ret=3 errno=0\n"),
        "{}",
        run.dump()
    );
    assert!(
        run.stdout.contains("plain_filter ret=0 errno=0\n"),
        "{}",
        run.dump()
    );
    // One record each, naming what was refused.
    let details: Vec<String> = run
        .audit_calls()
        .iter()
        .filter_map(|c| finding(c, "guard.contained"))
        .filter_map(|f| text(f, "detail").map(str::to_owned))
        .collect();
    assert_eq!(details.len(), 5, "{details:#?}\n{}", run.dump());
    for name in [
        "ptrace refused",
        "clone(CLONE_UNTRACED) refused",
        "pidfd_getfd refused",
        "process_vm_writev refused",
        "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER) refused",
    ] {
        assert!(
            details.iter().any(|d| d.starts_with(name)),
            "{name}: {details:#?}"
        );
    }
    for c in run.audit_calls() {
        assert_eq!(text(&c, "guard"), Some(via.guard()));
    }
}

both!(an_inheritable_cap_sys_ptrace_does_not_reach_the_tool);
/// Root's program gets the inheritable set too at exec: a caller that holds CAP_SYS_PTRACE
/// there (`setpriv --inh-caps +sys_ptrace`) must not hand it to the tool, which could then open
/// the supervisor's memory.
fn an_inheritable_cap_sys_ptrace_does_not_reach_the_tool(via: Via) {
    let Some(tool) = escape_tool() else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if !have("setpriv") || unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let run = supervised(via, tool, &[])
        .under(&["setpriv", "--inh-caps", "+sys_ptrace", "--"])
        .run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert!(
        run.stdout.contains("cap_sys_ptrace ret=0 errno=0\n"),
        "{}",
        run.dump()
    );
    assert!(
        run.stdout
            .contains(&format!("proc_mem ret=-1 errno={}\n", libc::EACCES)),
        "{}",
        run.dump()
    );
}

both!(a_descendant_cannot_install_a_listener_after_the_first_process_exits);
fn a_descendant_cannot_install_a_listener_after_the_first_process_exits(via: Via) {
    let Some(tool) = escape_tool() else {
        return;
    };
    // The first process forks and exits at once; its child waits a second, then tries (its
    // line reaches the run's stdout, which it still holds).
    let run = supervised(via, tool, &["late"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    // The guard outlives the first process (the supervisor's server, the tracer): refused and
    // recorded, as before it.
    assert!(
        run.stdout
            .contains(&format!("late_listener ret=-1 errno={}\n", libc::EPERM)),
        "{}",
        run.dump()
    );
    let refused = run
        .audit_calls()
        .iter()
        .filter(|c| finding(c, "guard.contained").is_some())
        .count();
    assert_eq!(refused, 1, "{}", run.dump());
}

both!(a_descriptor_swapped_between_calls_is_recognised_again);
fn a_descriptor_swapped_between_calls_is_recognised_again(via: Via) {
    let Some(tool) = escape_tool() else {
        return;
    };
    // The supervisor keeps the file it recognised for a descriptor; another file put at that
    // number (dup2) must be recognised anew: a pipe is not the node.
    let run = supervised(via, tool, &["swap"]).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert!(
        !run.stdout.contains("node ret=-1 errno=25\n"),
        "{}",
        run.dump()
    );
    assert!(
        run.stdout.contains("swapped ret=-1 errno=25\n"),
        "{}",
        run.dump()
    );
    let last = run.audit_calls().pop().expect("records");
    assert_eq!(
        finding_rules(&last),
        ["guard.unrecognised-file"],
        "{}",
        run.dump()
    );
}
