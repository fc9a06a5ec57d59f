//! Shared by the hardening tests (`tests/hardening_*.rs`): reading the client's
//! `key=value` counts, checking an audit log call by call, what makes a frame dangerous in the
//! simulator's record, a client driven line by line on stdin, and a client on a terminal.
#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use super::{int, text, Value};

/// `key=value` tokens of one line of the client's stdout.
pub fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A numeric `key=value` field (fails the test if absent).
pub fn count(f: &BTreeMap<String, String>, key: &str) -> u64 {
    f.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {key}= in {f:?}"))
}

/// Why a simulator record shows a frame that must never reach a legacy driver, if it does:
/// an addressing flag, a driver write outside its frame, `sgl[]` read past 16, or a firmware
/// DMA outside the driver's buffers.
pub fn dangerous(sim: &Value) -> Option<String> {
    let flags = int(sim, "flags").unwrap_or(-1);
    if flags < 0 || flags & 0x0026 != 0 {
        return Some(format!("flags {flags:#x}"));
    }
    for key in ["out_of_frame_writes", "wild_dma"] {
        if sim[key].as_array().is_some_and(|a| !a.is_empty()) {
            return Some(format!("{key} {}", sim[key]));
        }
    }
    if int(sim, "sgl_overrun").unwrap_or(0) != 0 {
        return Some(format!("sgl_overrun {}", sim["sgl_overrun"]));
    }
    None
}

/// Fields that differ between a call's decision and outcome records by design (`build` is in
/// the first record of a process only).
const OUTCOME_ONLY: [&str; 10] = [
    "build",
    "record",
    "ts",
    "ret",
    "errno",
    "errno_name",
    "cmd_status",
    "cmd_status_name",
    "latency_us",
    "records_lost",
];

/// What an audit log holds, call by call, for one process.
#[derive(Debug, Default)]
pub struct ProcessCalls {
    /// Calls (distinct seqs).
    pub calls: usize,
    /// Calls with a decision record (those that reached the kernel).
    pub decisions: usize,
    /// Outcome records by verdict.
    pub verdicts: BTreeMap<String, usize>,
    /// Outcome records marked `"nested": true`.
    pub nested: usize,
    /// The merged records of each call, by seq.
    pub by_seq: BTreeMap<u64, Value>,
}

/// Checks that every record is a call record and that, per process, each seq has exactly one
/// outcome record and at most one decision record written before it, agreeing with it on
/// every field of the call; that a refused call has no decision record and a decision never
/// says reject; and that seqs run 1..=N without a gap. Returns the calls per pid.
pub fn check_calls(records: &[Value]) -> BTreeMap<i64, ProcessCalls> {
    check_calls_besides(records, &[])
}

/// The seqs of the call outcomes a process wrote to stderr (`mfiguard[pid]: #seq outcome ...`):
/// the records of calls made before the configuration was known, which use the built-in stderr
/// sink.
pub fn stderr_outcome_seqs(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("mfiguard[")?
                .split_once("]: #")?
                .1
                .split_once(' ')
        })
        .filter(|(_, rest)| rest.starts_with("outcome "))
        .filter_map(|(seq, _)| seq.parse().ok())
        .collect()
}

/// As [`check_calls`], for a log that lacks the calls with the seqs in `elsewhere` (recorded on
/// another sink): the log's seqs and `elsewhere` together are 1..=n without gaps.
pub fn check_calls_besides(records: &[Value], elsewhere: &[u64]) -> BTreeMap<i64, ProcessCalls> {
    // (pid, seq) -> (decision index, outcome index)
    let mut seen: BTreeMap<(i64, u64), (Option<usize>, Option<usize>)> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        let pid = int(r, "pid").unwrap_or_else(|| panic!("record {i} without pid: {r}"));
        let seq = r["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("record {i} is not a call record: {r}"));
        let slot = seen.entry((pid, seq)).or_default();
        match text(r, "record") {
            Some("decision") => {
                assert!(
                    slot.0.is_none(),
                    "pid {pid} seq {seq}: two decision records"
                );
                assert!(
                    slot.1.is_none(),
                    "pid {pid} seq {seq}: decision after outcome"
                );
                assert!(
                    text(r, "verdict") != Some("reject") || r["enforced"] == Value::Bool(false),
                    "a refused call reached the decision stage: {r}"
                );
                slot.0 = Some(i);
            }
            Some("outcome") => {
                assert!(slot.1.is_none(), "pid {pid} seq {seq}: two outcome records");
                slot.1 = Some(i);
            }
            other => panic!("record {i}: unexpected record kind {other:?}: {r}"),
        }
    }
    let mut out: BTreeMap<i64, ProcessCalls> = BTreeMap::new();
    for ((pid, seq), (d, o)) in seen {
        let o = o.unwrap_or_else(|| panic!("pid {pid} seq {seq}: decision without outcome"));
        let outcome = &records[o];
        let p = out.entry(pid).or_default();
        p.calls += 1;
        if let Some(d) = d {
            p.decisions += 1;
            let decision = &records[d];
            for (k, v) in decision.as_object().unwrap() {
                if !OUTCOME_ONLY.contains(&k.as_str()) {
                    assert_eq!(
                        outcome.get(k),
                        Some(v),
                        "pid {pid} seq {seq}: {k} differs between decision and outcome"
                    );
                }
            }
        } else {
            assert_eq!(
                int(outcome, "ret"),
                Some(-1),
                "pid {pid} seq {seq}: a call without decision record must have been refused: {outcome}"
            );
        }
        *p.verdicts
            .entry(text(outcome, "verdict").unwrap_or("?").to_owned())
            .or_default() += 1;
        if outcome["nested"] == Value::Bool(true) {
            p.nested += 1;
        }
        p.by_seq.insert(seq, outcome.clone());
    }
    for (pid, p) in &out {
        let seqs: Vec<u64> = p.by_seq.keys().copied().collect();
        let all = seqs.len() + elsewhere.len();
        let expected: Vec<u64> = (1..=all as u64)
            .filter(|s| !elsewhere.contains(s))
            .collect();
        assert!(
            seqs == expected,
            "pid {pid}: seqs and {elsewhere:?} are not 1..={all} without gaps (first {:?}, last {:?})",
            seqs.first(),
            seqs.last()
        );
    }
    out
}

/// The single process of a log (fails unless there is exactly one).
pub fn only_process(calls: BTreeMap<i64, ProcessCalls>) -> (i64, ProcessCalls) {
    assert_eq!(
        calls.len(),
        1,
        "expected one process in the log: {:?}",
        calls.keys()
    );
    calls.into_iter().next().unwrap()
}

/// A client whose stdin the test writes line by line (the `lines` scenario), reading one
/// stdout line per call.
pub struct Interactive {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Interactive {
    pub fn spawn(mut cmd: Command) -> Interactive {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn client");
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        Interactive {
            child,
            stdin,
            lines: rx,
            stderr: Some(stderr),
        }
    }

    /// Sends one rule id (or `pass`) and returns the client's line about that call.
    pub fn call(&mut self, id: &str) -> String {
        self.send(id);
        self.line()
    }

    /// Sends one line without waiting for its answer.
    pub fn send(&mut self, id: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{id}").expect("write to the client");
        stdin.flush().unwrap();
    }

    /// The client's next stdout line (fails after 60 s).
    pub fn line(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no answer from the client: {e}"))
    }

    /// Closes stdin and waits (at most 60 s) for the client to end; its status and stderr.
    pub fn finish(mut self) -> (ExitStatus, String) {
        drop(self.stdin.take());
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("the client did not end after its stdin closed");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stderr = self.stderr.take().unwrap();
        (status, stderr.join().unwrap_or_default())
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `script` (util-linux/bsdutils) can give a command a terminal here.
pub fn have_script() -> bool {
    Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `cmd` (its program, arguments and environment changes) with stdin, stdout and stderr on
/// a fresh pseudo-terminal, through `script -qec`; returns its exit status and everything the
/// terminal showed (CR LF turned into LF). Fails after `limit`.
pub fn run_on_tty(cmd: &Command, limit: Duration) -> (ExitStatus, String) {
    let mut line = sh_quote(cmd.get_program().to_str().unwrap());
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&sh_quote(a.to_str().unwrap()));
    }
    let mut script = Command::new("script");
    script
        .args(["-qec", &line, "/dev/null"])
        .env("SHELL", "/bin/sh");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    script
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, out, err) = super::run_with_timeout(&mut script, limit);
    (status, format!("{out}{err}").replace("\r\n", "\n"))
}

/// Keeps answering readers of a FIFO with `text` (each reader that opens it gets the whole text
/// and an end of file), the first reader answered `delay` after it opened, until dropped: for configuration files that
/// more than one process reads.
pub struct FifoFeeder {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl FifoFeeder {
    pub fn start(path: &Path, text: &str, delay: Duration) -> FifoFeeder {
        use std::os::unix::fs::OpenOptionsExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (path, text, flag) = (path.to_owned(), text.to_owned(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut fed = 0;
            while !flag.load(Ordering::Relaxed) {
                match std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&path)
                {
                    Ok(mut f) => {
                        // The first reader waits `delay` from the moment it is there, however
                        // late the process started (a loaded machine, a first build).
                        if fed == 0 {
                            std::thread::sleep(delay);
                        }
                        let _ = f.write_all(text.as_bytes());
                        fed += 1;
                        // Let this reader see the end of file before the next open.
                        drop(f);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            fed
        });
        FifoFeeder {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops feeding; how many readers were fed.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for FifoFeeder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Makes a FIFO.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Like `Client::run`, but the client must end within `limit` (a deadlock fails the test
/// quickly) and not by a signal.
pub fn run_within(c: super::Client, limit: Duration) -> super::Run {
    use super::{parse_lines, parse_records, Scratch};
    let dir = Scratch::new("bounded");
    let mut cmd = c.command(&dir);
    let desc = format!("{cmd:?}");
    let (status, stdout, stderr) = super::run_with_timeout(&mut cmd, limit);
    let audit_text = std::fs::read_to_string(dir.path("audit.jsonl")).unwrap_or_default();
    let sim_text = std::fs::read_to_string(dir.path("sim.jsonl")).unwrap_or_default();
    let run = super::Run {
        desc,
        status,
        stdout,
        stderr,
        sim: parse_lines(&sim_text, "simulator record"),
        audit: parse_records(&audit_text, "audit log"),
        audit_text,
    };
    assert!(
        run.status.code().is_some(),
        "killed by a signal\n{}",
        run.dump()
    );
    run
}
