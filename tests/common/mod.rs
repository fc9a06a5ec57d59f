//! Shared by the end-to-end tests: find (or build, once per test binary) the guard, the
//! legacy-driver simulator and the client, run the client as a real process under `LD_PRELOAD`,
//! and read what it printed, what the guard logged and what the simulator saw.
//!
//! Artifacts:
//! - `MFIGUARD_TEST_TARGET_DIR=DIR`: prebuilt `DIR/libmfiguard.so`, `DIR/examples/mfi_client`
//!   and `DIR/examples/liblegacy_sim.so` (e.g. `target/release`); nothing is built.
//! - `MFIGUARD_TEST_LIB=PATH`: the guard to test (e.g. an installed
//!   `/usr/lib/mfiguard/libmfiguard.so`), whatever the examples' origin.
//! - otherwise `cargo build` (same profile and target directory as the running test) builds the
//!   root package's examples, and the preload crate's library the first time a test needs it.
//!   `cargo test` does not build a `cdylib`-only artifact for us, so this is the only way to
//!   get `libmfiguard.so` from a fresh clone.
//! - `MFIGUARD_TEST_TARGET=i686-unknown-linux-gnu` builds all three for that target instead
//!   (`target/<triple>/<profile>/`): the same suite, run by 32-bit processes on the compat ABI.
//!
//! Every run gets a fresh directory: the guard's file log (`MFIGUARD_LOG`), the simulator's record
//! (`MFISIM_RECORD`), and an empty configuration file (`MFIGUARD_CONFIG`), so that a site's
//! `/etc/mfiguard.conf` never leaks into a test. `MFIGUARD_DEVICE=/dev/null` makes the guard treat
//! the simulator's descriptors as the management node.
#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod hardening;
pub mod wrapper;

pub use serde_json::Value;

/// How long one client run may take before the test kills it and fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The running test's profile directory (`target/debug`, `target/release`, ...): the test
/// binary is `<profile dir>/deps/<name>-<hash>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in <profile>/deps")
        .to_path_buf()
}

/// `MFIGUARD_TEST_TARGET`, if set: a target triple to build the artifacts for.
pub fn cross_target() -> Option<String> {
    std::env::var("MFIGUARD_TEST_TARGET")
        .ok()
        .filter(|t| !t.is_empty())
}

/// Where cargo puts the artifacts the tests run.
fn artifact_dir() -> PathBuf {
    artifact_dir_for(cross_target().as_deref())
}

/// Where cargo puts the artifacts built for `target` (`None`: the host) in this test's profile.
pub fn artifact_dir_for(target: Option<&str>) -> PathBuf {
    let dir = profile_dir();
    match target {
        Some(t) => {
            let profile = dir.file_name().expect("profile dir name").to_owned();
            dir.parent().expect("target dir").join(t).join(profile)
        }
        None => dir,
    }
}

fn cargo_build(args: &[&str]) {
    if let Err(e) = try_cargo_build(cross_target().as_deref(), args) {
        panic!("{e}");
    }
}

/// `cargo build ARGS` for `target` (`None`: the host), same profile and target directory as the
/// running test; the artifact directory, or why it failed (a target this host cannot build).
pub fn try_cargo_build(target: Option<&str>, args: &[&str]) -> Result<PathBuf, String> {
    let dir = profile_dir();
    let profile = match dir.file_name().and_then(|s| s.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(p) => p.to_owned(),
    };
    let target_dir = dir.parent().expect("target dir").to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root())
        .arg("build")
        .arg("--profile")
        .arg(&profile)
        .arg("--target-dir")
        .arg(&target_dir)
        .args(args);
    if let Some(t) = target {
        cmd.arg("--target").arg(t);
    }
    cmd.env_remove("CARGO_TARGET_DIR");
    let status = cmd.status().map_err(|e| format!("run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build {args:?}{} failed",
            target.map_or(String::new(), |t| format!(" --target {t}"))
        ));
    }
    Ok(artifact_dir_for(target))
}

pub struct Examples {
    pub client: PathBuf,
    pub sim: PathBuf,
}

/// The client and the simulator.
pub fn examples() -> &'static Examples {
    static E: OnceLock<Examples> = OnceLock::new();
    E.get_or_init(|| {
        let dir = match std::env::var_os("MFIGUARD_TEST_TARGET_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                cargo_build(&["-p", "mfiguard", "--examples"]);
                artifact_dir()
            }
        };
        let e = Examples {
            client: dir.join("examples/mfi_client"),
            sim: dir.join("examples/liblegacy_sim.so"),
        };
        assert!(e.client.exists(), "{} missing", e.client.display());
        assert!(e.sim.exists(), "{} missing", e.sim.display());
        // The records' validator too, now: a test that times a run must not time its build.
        schema_check_bin();
        e
    })
}

/// `libmfiguard.so`.
pub fn guard_lib() -> &'static Path {
    static G: OnceLock<PathBuf> = OnceLock::new();
    G.get_or_init(|| {
        let path = if let Some(lib) = std::env::var_os("MFIGUARD_TEST_LIB") {
            PathBuf::from(lib)
        } else if let Some(d) = std::env::var_os("MFIGUARD_TEST_TARGET_DIR") {
            PathBuf::from(d).join("libmfiguard.so")
        } else {
            cargo_build(&["-p", "mfiguard-preload", "--lib"]);
            artifact_dir().join("libmfiguard.so")
        };
        assert!(path.exists(), "{} missing", path.display());
        path
    })
}

/// `mfiguard-run`: `MFIGUARD_TEST_WRAPPER` (an installed one), else `DIR/mfiguard-run` under
/// `MFIGUARD_TEST_TARGET_DIR`, else built once by cargo for the host (the wrapper is a host
/// program whatever the guard's class).
pub fn wrapper_bin() -> &'static Path {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| {
        let path = if let Some(w) = std::env::var_os("MFIGUARD_TEST_WRAPPER") {
            PathBuf::from(w)
        } else if let Some(d) = std::env::var_os("MFIGUARD_TEST_TARGET_DIR") {
            PathBuf::from(d).join("mfiguard-run")
        } else {
            match try_cargo_build(None, &["-p", "mfiguard-cli", "--bin", "mfiguard-run"]) {
                Ok(dir) => dir.join("mfiguard-run"),
                Err(e) => panic!("{e}"),
            }
        };
        assert!(path.exists(), "{} missing", path.display());
        path
    })
}

/// `mfiguard-hostd`, built once by cargo for the host.
pub fn hostd_bin() -> &'static Path {
    static H: OnceLock<PathBuf> = OnceLock::new();
    H.get_or_init(|| {
        match try_cargo_build(None, &["-p", "mfiguard-cli", "--bin", "mfiguard-hostd"]) {
            Ok(dir) => dir.join("mfiguard-hostd"),
            Err(e) => panic!("{e}"),
        }
    })
}

/// A fresh scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "mfiguard-e2e-{}-{}-{n}-{tag}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the guard is preloaded, and in which mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Only the simulator: what a legacy host does with no guard.
    Without,
    /// `MFIGUARD_MODE=enforce`.
    Enforce,
    /// `MFIGUARD_MODE=audit`.
    Audit,
    /// `MFIGUARD_MODE=off`.
    Off,
    /// The guard with `MFIGUARD_MODE` unset (the default).
    DefaultMode,
}

/// One client run to set up.
pub struct Client {
    args: Vec<String>,
    guard: Guard,
    env: Vec<(String, String)>,
    unset: Vec<String>,
    device: bool,
}

/// `mfi_client --device /dev/null ARGS...`
pub fn client(args: &[&str]) -> Client {
    Client {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        guard: Guard::Without,
        env: Vec::new(),
        unset: Vec::new(),
        device: true,
    }
}

impl Client {
    pub fn guard(mut self, g: Guard) -> Client {
        self.guard = g;
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Client {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// Leaves a variable the harness would set out of the client's environment.
    pub fn unset(mut self, k: &str) -> Client {
        self.unset.push(k.to_owned());
        self
    }

    /// The command, with its environment pointing into `dir`.
    pub fn command(&self, dir: &Scratch) -> Command {
        let ex = examples();
        let mut cmd = Command::new(&ex.client);
        if self.device {
            cmd.arg("--device").arg("/dev/null");
        }
        cmd.args(&self.args);
        cmd.env_remove("LD_PRELOAD");
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("MFIGUARD_") || k.starts_with("MFISIM_") || k == "RUST_LOG" {
                cmd.env_remove(&k);
            }
        }
        // An empty configuration file of its own: /etc/mfiguard.conf never leaks in, and the
        // guard has no reason to complain about a missing file.
        let conf = dir.path("empty-mfiguard.conf");
        if !conf.exists() {
            std::fs::write(&conf, "").expect("write empty config");
        }
        cmd.env("MFIGUARD_CONFIG", &conf)
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFIGUARD_LOG", dir.path("audit.jsonl"))
            .env("MFISIM_RECORD", dir.path("sim.jsonl"));
        let sim = ex.sim.display().to_string();
        match self.guard {
            Guard::Without => {
                cmd.env("LD_PRELOAD", &sim);
            }
            g => {
                cmd.env("LD_PRELOAD", format!("{} {sim}", guard_lib().display()));
                match g {
                    Guard::Enforce => {
                        cmd.env("MFIGUARD_MODE", "enforce");
                    }
                    Guard::Audit => {
                        cmd.env("MFIGUARD_MODE", "audit");
                    }
                    Guard::Off => {
                        cmd.env("MFIGUARD_MODE", "off");
                    }
                    _ => {}
                }
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for k in &self.unset {
            cmd.env_remove(k);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    pub fn run(self) -> Run {
        let run = self.run_may_die();
        assert!(
            run.status.code().is_some(),
            "{}: killed by a signal ({:?})\nstderr:\n{}",
            run.desc,
            run.status,
            run.stderr
        );
        run
    }

    /// Like `run`, for scenarios where the client is meant to die.
    pub fn run_may_die(self) -> Run {
        let dir = Scratch::new("run");
        let mut cmd = self.command(&dir);
        let output = run_with_timeout(&mut cmd, RUN_TIMEOUT);
        let audit_text = std::fs::read_to_string(dir.path("audit.jsonl")).unwrap_or_default();
        let sim_text = std::fs::read_to_string(dir.path("sim.jsonl")).unwrap_or_default();
        let run = Run {
            desc: format!("{:?} mfi_client {}", self.guard, self.args.join(" ")),
            status: output.0,
            stdout: output.1,
            stderr: output.2,
            sim: parse_lines(&sim_text, "simulator record"),
            audit: parse_records(&audit_text, "audit log"),
            audit_text,
        };
        run
    }
}

/// Runs a command to completion (stdout, stderr read concurrently), killing it after `limit`.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> (ExitStatus, String, String) {
    let mut child = cmd.spawn().expect("spawn client");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    (status, stdout, stderr)
}

/// The validator of the audit records' schema (`tests/schema-check`), built once by cargo for
/// the host: every record an end-to-end test reads goes through it.
pub fn schema_check_bin() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let dir = try_cargo_build(
            None,
            &[
                "-p",
                "mfiguard-schema-check",
                "--bin",
                "mfiguard-schema-check",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        dir.join("mfiguard-schema-check")
    })
}

/// Fails the test unless every JSON line of `text` is valid by the schema the packages ship
/// (`doc/audit-record.schema.json`), naming each problem.
pub fn assert_valid_records(text: &str, what: &str) {
    use std::io::Write;
    let schema = root().join("doc/audit-record.schema.json");
    let mut child = Command::new(schema_check_bin())
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mfiguard-schema-check");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = text.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("mfiguard-schema-check");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "{what}: records that do not match doc/audit-record.schema.json ({}):\n{}{}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails the test unless `record` is valid by the shipped schema.
pub fn assert_valid_record(record: &Value, what: &str) {
    assert_valid_records(&format!("{record}\n"), what);
}

/// Parses an audit log's JSON lines, each validated against the shipped schema: every
/// end-to-end test that reads the guard's records checks them this way.
pub fn parse_records(text: &str, what: &str) -> Vec<Value> {
    let records = parse_lines(text, what);
    if !records.is_empty() {
        assert_valid_records(text, what);
    }
    records
}

/// Parses JSON lines; a line that is not a whole JSON object fails the test.
pub fn parse_lines(text: &str, what: &str) -> Vec<Value> {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{what} line {}: not JSON ({e}): {l:?}", i + 1));
            assert!(v.is_object(), "{what} line {}: not an object: {l}", i + 1);
            v
        })
        .collect()
}

/// One finished client run.
pub struct Run {
    pub desc: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The simulator's record: what reached the (simulated) kernel.
    pub sim: Vec<Value>,
    /// The guard's file log, parsed, and as written.
    pub audit: Vec<Value>,
    pub audit_text: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Everything known about the run, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "{}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}--- audit log\n{}--- simulator\n{}",
            self.desc,
            self.status,
            self.stdout,
            self.stderr,
            self.audit_text,
            self.sim
                .iter()
                .map(|v| format!("{v}\n"))
                .collect::<String>()
        )
    }

    /// The one call the simulator saw (fails unless there was exactly one).
    pub fn sim_call(&self) -> &Value {
        assert_eq!(
            self.sim.len(),
            1,
            "expected exactly one call to reach the simulator\n{}",
            self.dump()
        );
        &self.sim[0]
    }

    /// The simulator's records without what differs from run to run (the pid).
    pub fn sim_stable(&self) -> Vec<Value> {
        self.sim.iter().map(stable).collect()
    }

    /// The guarded calls in the audit log: the records of each (pid, seq) merged in order
    /// (a decision record written before the kernel call, completed by an outcome record
    /// after it), in order of first appearance. Records without a `seq` (configuration errors,
    /// say) are not calls.
    pub fn audit_calls(&self) -> Vec<Value> {
        merge_calls(&self.audit)
    }

    /// Audit records that are not about a call (no `seq`).
    pub fn audit_other(&self) -> Vec<&Value> {
        self.audit
            .iter()
            .filter(|r| r.get("seq").is_none())
            .collect()
    }

    /// The one guarded call in the audit log.
    pub fn audit_call(&self) -> Value {
        let calls = self.audit_calls();
        assert_eq!(
            calls.len(),
            1,
            "expected exactly one guarded call in the audit log\n{}",
            self.dump()
        );
        calls.into_iter().next().unwrap()
    }
}

pub fn stable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("pid");
    }
    v
}

pub fn merge_calls(records: &[Value]) -> Vec<Value> {
    let mut order: Vec<(String, Value)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for r in records {
        let Some(seq) = r.get("seq") else {
            continue;
        };
        let key = format!("{}/{seq}", r.get("pid").cloned().unwrap_or(Value::Null));
        match index.get(&key) {
            Some(&at) => {
                let merged = &mut order[at].1;
                if let (Some(m), Some(o)) = (merged.as_object_mut(), r.as_object()) {
                    for (k, v) in o {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
            None => {
                index.insert(key.clone(), order.len());
                order.push((key, r.clone()));
            }
        }
    }
    order.into_iter().map(|(_, v)| v).collect()
}

/// A field as an integer: a JSON number, or a string in decimal or `0x` hex.
pub fn int(v: &Value, field: &str) -> Option<i64> {
    match v.get(field)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(h) => i64::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

/// A field as a string (`None` if absent or not a string).
pub fn text<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field)?.as_str()
}

/// An errno field: a number, or a name such as `EINVAL`.
pub fn errno(v: &Value) -> Option<i64> {
    match v.get("errno")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => Some(match s.as_str() {
            "0" | "" => 0,
            "EPERM" => 1,
            "EIO" => 5,
            "EFAULT" => 14,
            "EINVAL" => 22,
            "ENOTTY" => 25,
            other => other.parse().ok()?,
        }),
        _ => None,
    }
}

/// The rule ids of a call's findings.
pub fn finding_rules(call: &Value) -> Vec<String> {
    call.get("findings")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.get("rule").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The rules `mfi_client rule ID` triggers: ID, for a bounds rule the offset rule that always
/// comes with it (an offset outside the frame is never the frame type's own), and for a second
/// line the first line before it ([`rule_scenario_first_line`]).
pub fn rule_scenario_findings(id: &str) -> Vec<&str> {
    match id {
        "sgl.bounds" => vec![id, "sgl.offset-unusual"],
        "sense.bounds" => vec![id, "sense.offset-unusual"],
        _ => rule_scenario_first_line(id)
            .into_iter()
            .chain([id])
            .collect(),
    }
}

/// The structural rules that refuse `mfi_client rule ID`'s packet before ID can decide alone:
/// `readonly.cmd` refuses nothing the structural rules let through, so its packet (an NVMe
/// frame) reaches it only with `frame.layout-unknown` allowed.
pub fn rule_scenario_first_line(id: &str) -> Vec<&str> {
    match id {
        "readonly.cmd" => vec!["frame.layout-unknown"],
        _ => Vec::new(),
    }
}

/// The finding for one rule.
pub fn finding<'a>(call: &'a Value, rule: &str) -> Option<&'a Value> {
    call.get("findings")?
        .as_array()?
        .iter()
        .find(|f| f.get("rule").and_then(Value::as_str) == Some(rule))
}

/// The simulator's `firmware_addrs`.
pub fn firmware_addrs(sim: &Value) -> Vec<String> {
    sim["firmware_addrs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What a program printed and how it ended.
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
}

impl Out {
    /// Its exit code (-1 when a signal ended it).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    /// The first line of its output.
    pub fn first(&self) -> &str {
        self.stdout.lines().next().unwrap_or("")
    }
    /// Everything, for a failed assertion.
    pub fn dump(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
    /// Its output as one JSON value (the test fails when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}\n{}", self.dump()))
    }
}

/// Runs `cmd` to its end (at most [`RUN_TIMEOUT`]), its output captured.
pub fn run(cmd: &mut Command) -> Out {
    let start = Instant::now();
    let (status, stdout, stderr) = run_with_timeout(
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()),
        RUN_TIMEOUT,
    );
    Out {
        status,
        stdout,
        stderr,
        took: start.elapsed(),
    }
}

/// `cmd` run by `setpriv` as `nobody` (uid and gid 65534, no supplementary groups), with the
/// same environment; `None` (said loudly) where setpriv is missing.
pub fn as_nobody(cmd: &Command) -> Option<Command> {
    if !have("setpriv") {
        eprintln!("note: setpriv (util-linux) not installed: not run as another user");
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    c.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.env("PATH", "/usr/bin:/bin");
    Some(c)
}

/// The legacy-driver simulator built for this host's ABI, whatever the client's: for a
/// supervisor's own process (`MFISIM_ONLY_IN`), which issues the calls in the native layout.
pub fn host_sim() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = try_cargo_build(None, &["-p", "mfiguard", "--example", "legacy_sim"])
            .unwrap_or_else(|e| panic!("{e}"));
        dir.join("examples/liblegacy_sim.so")
    })
}

/// Whether `tool` is on this machine's PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// A library whose `mfiguard_test_ioctl` calls `ioctl` itself, built as `lib{name}.so` with the
/// system's C compiler for the clients' word size (`-m32` in the i686 suite) and `flags`;
/// `None` (the test is skipped, loudly) without one.
pub fn ioctl_helper_lib(dir: &Scratch, name: &str, flags: &[&str]) -> Option<String> {
    let src = dir.path(&format!("{name}.c"));
    std::fs::write(
        &src,
        "#include <sys/ioctl.h>\n\
         int mfiguard_test_ioctl(int fd, unsigned long request, void *packet)\n\
         { return ioctl(fd, request, packet); }\n",
    )
    .unwrap();
    let lib = dir.path(&format!("lib{name}.so"));
    let mut cc = Command::new("cc");
    cc.args(["-shared", "-fPIC"])
        .args(flags)
        .arg("-o")
        .arg(&lib)
        .arg(&src);
    if cross_target().is_some_and(|t| t.starts_with("i686")) {
        cc.arg("-m32");
    }
    match cc.status() {
        Ok(s) if s.success() => Some(lib.to_str().unwrap().to_owned()),
        _ => {
            eprintln!("skipped: no C compiler for the helper library (cc, gcc-multilib for i686)");
            None
        }
    }
}

/// `mfi_client dl-limit plain LIB` under the guard: the helper's call reaches the guard's
/// `ioctl`, which rewrites it (the simulator sees IEEE cleared), answers and records it once.
pub fn assert_helper_call_guarded(lib: &str) {
    let run = client(&["dl-limit", "plain", lib])
        .guard(Guard::Enforce)
        .run();
    assert_eq!(
        run.stdout,
        "ret=0 errno=0 (0) cmd_status=0x00\n",
        "{}",
        run.dump()
    );
    assert_eq!(
        text(run.sim_call(), "flags"),
        Some("0x0010"),
        "{}",
        run.dump()
    );
    assert_eq!(run.audit_calls().len(), 1, "{}", run.dump());
}
