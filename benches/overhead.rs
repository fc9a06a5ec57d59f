//! What the guard costs, measured side by side in one run (issue 6).
//!
//!     cargo bench --bench overhead            # full run (about a minute)
//!     cargo bench --bench overhead -- --quick # the short version CI runs so this cannot rot
//!
//! Each pair runs the same client without and with `libmfiguard.so`, alternating, and reports
//! medians over the rounds, the spread (min..max) and the ratio or the added time:
//! - an unrelated ioctl (FIONREAD on a pipe): target ratio <= 1.03;
//! - a MegaRAID ioctl against the legacy-driver simulator, guard in enforce with no log, with the
//!   JSON file log, and in audit mode: target <= 2 us added per call without logging;
//! - process start-up (`/bin/true`): target <= 1 ms added;
//! - the sanitizer's decision alone is `cargo bench -p mfiguard-sanitizer --bench decide`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // a benchmark reports on stdout

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Artifacts {
    guard: PathBuf,
    sim: PathBuf,
    client: PathBuf,
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
        guard: dir.join("libmfiguard.so"),
        sim: dir.join("examples/liblegacy_sim.so"),
        client: dir.join("examples/bench_client"),
    }
}

/// Runs the client once and returns its nanoseconds per call.
fn client_ns(a: &Artifacts, preload: &str, env: &[(&str, &str)], args: &[&str]) -> f64 {
    let mut cmd = Command::new(&a.client);
    cmd.args(args).env_remove("LD_PRELOAD");
    for key in [
        "MFIGUARD_MODE",
        "MFIGUARD_LOG",
        "MFIGUARD_AUDIT",
        "MFIGUARD_ALLOW",
        "MFIGUARD_CONFIG",
    ] {
        cmd.env_remove(key);
    }
    // Keep the site's /etc/mfiguard.conf out of the measurement.
    cmd.env("MFIGUARD_CONFIG", "/nonexistent/mfiguard.conf");
    if !preload.is_empty() {
        cmd.env("LD_PRELOAD", preload);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run bench_client");
    assert!(
        out.status.success(),
        "bench_client {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("ns per call")
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

struct Row {
    name: String,
    base: (f64, f64, f64),
    guarded: (f64, f64, f64),
    unit: &'static str,
    target: String,
    met: bool,
    summary: String,
}

fn print(rows: &[Row]) {
    println!(
        "| {:<44} | {:>22} | {:>22} | {:>14} | {:<12} |",
        "pair", "without (median, min..max)", "with (median, min..max)", "cost", "target"
    );
    println!(
        "|{:-<46}|{:->24}|{:->24}|{:->16}|{:-<14}|",
        "", "", "", "", ""
    );
    for r in rows {
        let fmt =
            |(m, lo, hi): (f64, f64, f64)| format!("{m:.1} {u} ({lo:.1}..{hi:.1})", u = r.unit);
        println!(
            "| {:<44} | {:>22} | {:>22} | {:>14} | {:<12} |",
            r.name,
            fmt(r.base),
            fmt(r.guarded),
            r.summary,
            format!("{} {}", r.target, if r.met { "met" } else { "MISSED" })
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, calls, spawns) = if quick {
        (3, 200_000, 50)
    } else {
        (11, 2_000_000, 300)
    };
    let a = build();
    let guard = a.guard.to_str().unwrap().to_owned();
    let sim = a.sim.to_str().unwrap().to_owned();
    let both = format!("{guard} {sim}");
    let log = std::env::temp_dir().join(format!("mfiguard-bench-{}.jsonl", std::process::id()));
    let log_s = log.to_str().unwrap().to_owned();
    let n = calls.to_string();
    let n_mr = (calls / 4).to_string();
    println!(
        "machine: {} cores, {}; {rounds} rounds, {calls} unrelated / {} MegaRAID calls per round",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |s| s.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_else(|| "unknown CPU".into()),
        calls / 4
    );
    let mut rows = Vec::new();

    // Unrelated ioctl: ratio.
    let (mut base, mut with) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        base.push(client_ns(&a, "", &[], &["fionread", &n]));
        with.push(client_ns(&a, &guard, &[], &["fionread", &n]));
    }
    let (b, w) = (median(base), median(with));
    let ratio = w.0 / b.0;
    rows.push(Row {
        name: "FIONREAD on a pipe (unrelated ioctl)".into(),
        base: b,
        guarded: w,
        unit: "ns",
        target: "<= 1.03x".into(),
        met: ratio <= 1.03,
        summary: format!("{ratio:.3}x"),
    });

    // MegaRAID ioctl against the simulator: added microseconds.
    let dev = [("MFIGUARD_DEVICE", "/dev/null")];
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);
    let cases: [Case; 3] = [
        (
            "MegaRAID DCMD, enforce, no log",
            vec![("MFIGUARD_MODE", "enforce"), ("MFIGUARD_LOG", "none")],
            2.0,
        ),
        (
            "MegaRAID DCMD, enforce, JSON file log (all)",
            vec![
                ("MFIGUARD_MODE", "enforce"),
                ("MFIGUARD_LOG", &log_s),
                ("MFIGUARD_AUDIT", "all"),
            ],
            f64::INFINITY,
        ),
        (
            "MegaRAID DCMD, audit mode, no log",
            vec![("MFIGUARD_MODE", "audit"), ("MFIGUARD_LOG", "none")],
            2.0,
        ),
    ];
    for (name, env, target_us) in cases {
        let env: Vec<(&str, &str)> = dev.iter().copied().chain(env).collect();
        let (mut base, mut with) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            base.push(client_ns(&a, &sim, &dev, &["megaraid", &n_mr]));
            with.push(client_ns(&a, &both, &env, &["megaraid", &n_mr]));
            let _ = std::fs::remove_file(&log);
        }
        let (b, w) = (median(base), median(with));
        let added_us = (w.0 - b.0) / 1000.0;
        rows.push(Row {
            name: name.into(),
            base: b,
            guarded: w,
            unit: "ns",
            target: if target_us.is_finite() {
                format!("<= {target_us} us")
            } else {
                "(reported)".into()
            },
            met: added_us <= target_us,
            summary: format!("+{added_us:.2} us"),
        });
    }

    // Start-up: wall time per spawn of /bin/true.
    let spawn_ms = |preload: &str| {
        let start = Instant::now();
        for _ in 0..spawns {
            let mut cmd = Command::new("/bin/true");
            cmd.env_remove("LD_PRELOAD")
                .env("MFIGUARD_CONFIG", "/nonexistent/mfiguard.conf");
            if !preload.is_empty() {
                cmd.env("LD_PRELOAD", preload);
            }
            assert!(cmd.status().unwrap().success());
        }
        start.elapsed().as_secs_f64() * 1000.0 / f64::from(spawns)
    };
    let (mut base, mut with) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        base.push(spawn_ms(""));
        with.push(spawn_ms(&guard));
    }
    let (b, w) = (median(base), median(with));
    let added = w.0 - b.0;
    rows.push(Row {
        name: "process start-up (/bin/true)".into(),
        base: b,
        guarded: w,
        unit: "ms",
        target: "<= 1 ms".into(),
        met: added <= 1.0,
        summary: format!("+{added:.3} ms"),
    });

    print(&rows);
    let _ = std::fs::remove_file(&log);
}
