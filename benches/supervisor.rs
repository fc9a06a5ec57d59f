//! What the supervisor costs, measured side by side in one run, with the preload's figures
//! next to them so a reader can choose (`cargo bench --bench supervisor [-- --quick]`).
//!
//! Each row pairs two runs of `examples/bench_client.rs`, once each per round, the order
//! swapped every round; the table gives the median over the rounds of each round's ratio (or
//! time added) and the spread:
//!
//! - a MegaRAID call answered by the kernel (`ENOTTY` on `/dev/null`, named as the node with
//!   `MFIGUARD_DEVICE`), no records: under the supervisor, against the same filter with a bare
//!   responder that answers every notification at once (no decision, no copy); target <= 1.5x;
//!   once with `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` on both sides (where the kernel has it,
//!   6.6+) and once without on either (as before 6.6);
//! - an unrelated system call (FIONREAD on a pipe, `getppid`) under mfiguard's filter against
//!   an allow-everything filter installed the same way; target <= 1.02x;
//! - `supervise /bin/true` (and `supervise --ptrace /bin/true`) against `/bin/true`: start-up,
//!   target <= 3 ms added;
//! - the ptrace fallback: the same MegaRAID call under it, against the same filter with a
//!   tracer that only resumes every stop (the call then runs as it is: the bare trace-stop
//!   round trip), target <= 1.5x; an unrelated system call under its filter against an
//!   allow-everything filter, target <= 1.02x;
//! - the preload's figures for the same MegaRAID call and FIONREAD, for comparison.
//!
//! `--check` fails the run only on a gross regression (a ratio above 3 for the MegaRAID row,
//! above 1.5 for unrelated calls, more than 20 ms of start-up) in every round, the best round
//! included: on a shared 2-core machine one round's median can be several times another's
//! (seen: the ptrace row at 2.1x..11.2x in one run), so the targets themselves are reported,
//! not enforced, and a real regression is one no round escapes.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Whether the runs go without `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6), on both sides
/// (`MFIGUARD_TEST_NO_SYNC_WAKE_UP` for the supervisor and the bare responder alike).
static NO_SYNC_WAKE_UP: AtomicBool = AtomicBool::new(false);

struct Artifacts {
    supervise: PathBuf,
    client: PathBuf,
    guard: PathBuf,
}

fn build() -> Artifacts {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--workspace", "--lib", "--examples"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --release failed");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("release");
    Artifacts {
        supervise: dir.join("examples/supervise"),
        client: dir.join("examples/bench_client"),
        guard: dir.join("libmfiguard.so"),
    }
}

/// How the client is run.
#[derive(Clone, Copy)]
enum Under<'a> {
    Nothing,
    Supervisor,
    Bare,
    AllowAll,
    Ptrace,
    BareTrace,
    Preload(&'a Path),
}

/// Runs `bench_client ARGS` under `how`; the nanoseconds per call it printed.
fn client_ns(a: &Artifacts, how: Under<'_>, args: &[&str]) -> f64 {
    client_ns_env(a, how, args, &[])
}

/// [`client_ns`] with more of the guard's settings in the environment.
fn client_ns_env(a: &Artifacts, how: Under<'_>, args: &[&str], env: &[(&str, &str)]) -> f64 {
    let mut cmd = match how {
        Under::Nothing | Under::Preload(_) => Command::new(&a.client),
        Under::Supervisor => {
            let mut c = Command::new(&a.supervise);
            c.arg(&a.client);
            c
        }
        Under::Bare | Under::AllowAll | Under::Ptrace | Under::BareTrace => {
            let mut c = Command::new(&a.supervise);
            c.arg(match how {
                Under::Bare => "--bare",
                Under::AllowAll => "--allow-all",
                Under::Ptrace => "--ptrace",
                _ => "--bare-trace",
            });
            c.arg(&a.client);
            c
        }
    };
    cmd.args(args)
        .env_remove("LD_PRELOAD")
        .env("MFIGUARD_CONFIG", "/dev/null")
        .env("MFIGUARD_DEVICE", "/dev/null")
        .env("MFIGUARD_LOG", "none");
    if let Under::Preload(lib) = how {
        cmd.env("LD_PRELOAD", lib);
    }
    if NO_SYNC_WAKE_UP.load(Ordering::Relaxed) {
        cmd.env("MFIGUARD_TEST_NO_SYNC_WAKE_UP", "1");
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run bench_client");
    assert!(
        out.status.success() || !out.stdout.is_empty(),
        "bench_client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number from bench_client {args:?}"))
}

fn startup_ns(a: &Artifacts, supervised: bool, flag: Option<&str>) -> f64 {
    let start = Instant::now();
    let status = if supervised {
        Command::new(&a.supervise)
            .args(flag)
            .arg("/bin/true")
            .env("MFIGUARD_CONFIG", "/dev/null")
            .env("MFIGUARD_LOG", "none")
            .status()
    } else {
        Command::new("/bin/true").status()
    }
    .expect("run /bin/true");
    assert!(status.success());
    start.elapsed().as_nanos() as f64
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|x, y| x.partial_cmp(y).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// `rounds` pairs of (base, with), the order swapped every round.
fn pairs(rounds: usize, mut measure: impl FnMut(bool) -> f64) -> Vec<(f64, f64)> {
    (0..rounds)
        .map(|r| {
            if r % 2 == 0 {
                let b = measure(false);
                (b, measure(true))
            } else {
                let w = measure(true);
                (measure(false), w)
            }
        })
        .collect()
}

enum Cost {
    Ratio(f64),
    AddedMs(f64),
    Info,
}

struct Row {
    name: String,
    base: f64,
    with: f64,
    cost: (f64, f64, f64),
    unit: &'static str,
    target: Cost,
    gross: f64,
}

fn row(name: &str, unit: &'static str, target: Cost, gross: f64, p: &[(f64, f64)]) -> Row {
    let base = median(p.iter().map(|x| x.0).collect()).0;
    let with = median(p.iter().map(|x| x.1).collect()).0;
    let cost = match target {
        Cost::AddedMs(_) => median(p.iter().map(|x| (x.1 - x.0) / 1e6).collect()),
        _ => median(p.iter().map(|x| x.1 / x.0).collect()),
    };
    Row {
        name: name.into(),
        base,
        with,
        cost,
        unit,
        target,
        gross,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let check = args.iter().any(|a| a == "--check");
    let (rounds, n) = if quick { (5, "20000") } else { (21, "200000") };
    let (mega_rounds, mega_n) = if quick { (5, "2000") } else { (21, "20000") };
    let a = build();

    let mut rows = Vec::new();
    let p = pairs(mega_rounds, |with| {
        let how = if with { Under::Supervisor } else { Under::Bare };
        client_ns(&a, how, &["kernel", mega_n])
    });
    rows.push(row(
        "MegaRAID call (kernel answers ENOTTY): supervisor vs bare notification round trip (synchronous wake-up where the kernel has it, 6.6+)",
        "ns/call",
        Cost::Ratio(1.5),
        3.0,
        &p,
    ));
    NO_SYNC_WAKE_UP.store(true, Ordering::Relaxed);
    let p = pairs(mega_rounds, |with| {
        let how = if with { Under::Supervisor } else { Under::Bare };
        client_ns(&a, how, &["kernel", mega_n])
    });
    NO_SYNC_WAKE_UP.store(false, Ordering::Relaxed);
    rows.push(row(
        "the same without SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on either side (kernels before 6.6)",
        "ns/call",
        Cost::Ratio(1.5),
        3.0,
        &p,
    ));
    for kind in ["fionread", "getppid"] {
        let p = pairs(rounds, |with| {
            let how = if with {
                Under::Supervisor
            } else {
                Under::AllowAll
            };
            client_ns(&a, how, &[kind, n])
        });
        let name = format!("{kind}: mfiguard's filter vs an allow-everything filter");
        rows.push(row(&name, "ns/call", Cost::Ratio(1.02), 1.5, &p));
    }
    let p = pairs(mega_rounds, |with| {
        let how = if with {
            Under::Ptrace
        } else {
            Under::BareTrace
        };
        client_ns(&a, how, &["kernel", mega_n])
    });
    rows.push(row(
        "MegaRAID call (kernel answers ENOTTY): ptrace vs bare trace-stop round trip",
        "ns/call",
        Cost::Ratio(1.5),
        3.0,
        &p,
    ));
    for kind in ["fionread", "getppid"] {
        let p = pairs(rounds, |with| {
            let how = if with { Under::Ptrace } else { Under::AllowAll };
            client_ns(&a, how, &[kind, n])
        });
        let name = format!("{kind}: the ptrace filter (traced) vs an allow-everything filter");
        rows.push(row(&name, "ns/call", Cost::Ratio(1.02), 1.5, &p));
    }
    let p = pairs(if quick { 10 } else { 41 }, |with| {
        startup_ns(&a, with, None)
    });
    rows.push(row(
        "start-up: supervise /bin/true vs /bin/true",
        "ns",
        Cost::AddedMs(3.0),
        20.0,
        &p,
    ));
    let p = pairs(if quick { 10 } else { 41 }, |with| {
        startup_ns(&a, with, Some("--ptrace"))
    });
    rows.push(row(
        "start-up: supervise --ptrace /bin/true vs /bin/true",
        "ns",
        Cost::AddedMs(3.0),
        20.0,
        &p,
    ));
    let p = pairs(mega_rounds, |with| {
        let how = if with {
            Under::Preload(&a.guard)
        } else {
            Under::Nothing
        };
        client_ns(&a, how, &["kernel", mega_n])
    });
    rows.push(row(
        "for comparison, preload: the same MegaRAID call, guard vs none",
        "ns/call",
        Cost::Info,
        f64::INFINITY,
        &p,
    ));
    let p = pairs(rounds, |with| {
        let how = if with {
            Under::Preload(&a.guard)
        } else {
            Under::Nothing
        };
        client_ns(&a, how, &["fionread", n])
    });
    rows.push(row(
        "for comparison, preload: FIONREAD, guard vs none",
        "ns/call",
        Cost::Info,
        f64::INFINITY,
        &p,
    ));

    // Every call recorded (audit = all, a JSON file): the decision record, then the outcome
    // record, written before the tool gets its answer (doc/audit-log.md).
    let log = std::env::temp_dir().join(format!("mfiguard-bench-{}.jsonl", std::process::id()));
    let log_s = log.to_str().unwrap().to_owned();
    let p = pairs(mega_rounds, |with| {
        let _ = std::fs::remove_file(&log);
        let env: &[(&str, &str)] = if with {
            &[("MFIGUARD_LOG", &log_s), ("MFIGUARD_AUDIT", "all")]
        } else {
            &[]
        };
        client_ns_env(&a, Under::Supervisor, &["kernel", mega_n], env)
    });
    let _ = std::fs::remove_file(&log);
    rows.push(row(
        "supervisor: every call recorded to a file (two records, the outcome before the answer) vs none",
        "ns/call",
        Cost::Info,
        f64::INFINITY,
        &p,
    ));

    println!("| pair | base | with | cost (median, min..max) | target |");
    println!("|---|---:|---:|---|---|");
    let mut gross = Vec::new();
    for r in &rows {
        let (m, lo, hi) = r.cost;
        let (cost, target, met) = match r.target {
            Cost::Ratio(t) => (
                format!("{m:.3}x ({lo:.3}..{hi:.3})"),
                format!("<= {t}x"),
                m <= t,
            ),
            Cost::AddedMs(t) => (
                format!("+{m:.2} ms ({lo:.2}..{hi:.2})"),
                format!("<= {t} ms"),
                m <= t,
            ),
            Cost::Info => (format!("{m:.3}x ({lo:.3}..{hi:.3})"), "-".into(), true),
        };
        let verdict = match r.target {
            Cost::Info => String::new(),
            _ if met => " met".into(),
            _ => " missed".into(),
        };
        println!(
            "| {} | {:.0} {u} | {:.0} {u} | {cost} | {target}{verdict} |",
            r.name,
            r.base,
            r.with,
            u = r.unit
        );
        if lo > r.gross {
            gross.push(r.name.clone());
        }
    }
    if check && !gross.is_empty() {
        eprintln!("gross regression: {gross:?}");
        std::process::exit(1);
    }
}
