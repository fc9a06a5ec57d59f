//! Reentrancy: signal handlers that issue ioctls while their thread is inside the guard.
//!
//! - SIGALRM every 200 µs during thousands of guarded calls; the handler issues a MegaRAID call
//!   the guard must refuse, FIONREAD on a pipe and TCGETS on stderr. The interrupted calls and
//!   the handler's all end as they must, none of the handler's packets reaches the simulator,
//!   and the log has one outcome per call (many marked `"nested": true`).
//! - The same while the first guarded call is still reading the configuration (its opening
//!   slowed for a second by the simulator's `MFISIM_SLOW_OPEN`): the handler's calls are guarded even before the configuration (and
//!   `MFIGUARD_DEVICE`) is known.
//! - SIGUSR1 while the thread waits inside the driver (the simulator's `MFISIM_DELAY_US`): the
//!   handler's clean, rewritten and refused calls and an unrelated one all complete correctly
//!   and are recorded as nested; the interrupted call completes after them.
//! - The same two with the records on stderr and stderr a terminal (`script`), with the
//!   library's debug log on: writes to the terminal from inside the guard and from the handler,
//!   no deadlock, no recursion.
//!
//! Every run is bounded (a deadlock fails the test within a minute, not the CI's timeout).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::hardening::*;
use common::*;

use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const CALLS: u64 = 3000;
/// The refused packet the SIGALRM/SIGUSR1 handlers send: sgl.bounds, sgl_off 0x40000.
const HANDLER_SGL_OFF: i64 = 0x4_0000;

fn is_handler_packet(r: &Value) -> bool {
    int(r, "sgl_off") == Some(HANDLER_SGL_OFF)
}

#[test]
fn a_handler_calling_ioctl_during_thousands_of_guarded_calls() {
    let c = client(&["signals", &CALLS.to_string(), "200"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all");
    let run = run_within(c, LIMIT);
    assert_eq!(run.code(), 0, "{}", run.dump());
    let f = fields(&run.stdout);
    let n = |k: &str| count(&f, k);
    let signals = n("signals");
    assert_eq!(n("calls"), CALLS);
    assert_eq!(
        (n("ok"), n("einval")),
        (CALLS / 3 * 2, CALLS / 3),
        "{}",
        run.stdout
    );
    assert_eq!(n("unexpected"), 0);
    assert!(signals >= 100, "only {signals} signals: {}", run.stdout);
    assert_eq!(n("handler_reject_einval"), signals, "{}", run.stdout);
    assert_eq!(n("handler_unrelated_ok"), signals, "{}", run.stdout);
    assert_eq!(n("handler_unexpected"), 0);

    // The kernel saw the answered calls only, none of the handler's refused packet.
    assert_eq!(run.sim.len() as u64, n("ok"));
    for r in &run.sim {
        assert!(
            !is_handler_packet(r),
            "a handler's packet reached the driver: {r}"
        );
        assert_eq!(dangerous(r), None, "{r}");
    }

    // One outcome per call, the handler's among them, most of them nested inside the guard. A
    // handler that interrupts the first call while it reads the configuration records on the
    // built-in stderr sink (nothing else may be there).
    let early = stderr_outcome_seqs(&run.stderr);
    assert!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("mfiguard["))
            .count()
            == early.len()
            && run.stderr.matches("(in a signal handler)").count() == early.len(),
        "{}",
        run.dump()
    );
    let (_, p) = only_process(check_calls_besides(&run.audit, &early));
    assert_eq!(p.calls as u64 + early.len() as u64, CALLS + signals);
    assert_eq!(p.decisions as u64, n("ok"));
    let handler: Vec<&Value> = p.by_seq.values().filter(|r| is_handler_packet(r)).collect();
    assert_eq!(handler.len() as u64 + early.len() as u64, signals);
    assert!(handler
        .iter()
        .all(|r| text(r, "verdict") == Some("reject") && errno(r) == Some(22)));
    let nested = handler
        .iter()
        .filter(|r| r["nested"] == Value::Bool(true))
        .count();
    assert!(nested > 0, "no handler call interrupted the guard");
    assert_eq!(p.nested, nested, "only the handler's calls are nested");
    eprintln!(
        "figures: {CALLS} guarded calls, {signals} SIGALRM handlers each issuing a refused \
         MegaRAID call and two unrelated ioctls; {nested} handler calls interrupted the guard"
    );
}

#[test]
fn a_handler_calling_ioctl_while_the_configuration_is_being_read() {
    let dir = Scratch::new("slow-conf");
    let conf = dir.path("mfiguard.conf");
    std::fs::write(&conf, "audit = all\n").unwrap();
    // Let the first call wait a second in opening the file (the simulator's MFISIM_SLOW_OPEN)
    // while SIGALRM fires every 2 ms.
    let c = client(&["signals", "300", "2000"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all")
        .env("MFIGUARD_CONFIG", conf.to_str().unwrap())
        .env("MFISIM_SLOW_OPEN", &format!("{}:1000", conf.display()));
    let run = run_within(c, LIMIT);
    assert_eq!(run.code(), 0, "{}", run.dump());
    let f = fields(&run.stdout);
    let signals = count(&f, "signals");
    assert!(signals >= 100, "only {signals} signals: {}", run.stdout);
    assert_eq!(count(&f, "handler_unexpected"), 0, "{}", run.dump());
    assert_eq!(count(&f, "handler_reject_einval"), signals);
    for r in &run.sim {
        assert!(
            !is_handler_packet(r),
            "a handler's packet reached the driver before the configuration was read: {r}"
        );
        assert_eq!(dangerous(r), None, "{r}");
    }
    // Before the configuration is known, nested records go to stderr (the built-in default).
    assert!(
        run.stderr.contains("(in a signal handler)"),
        "{}",
        run.dump()
    );
}

#[test]
fn a_handler_calling_ioctl_while_the_thread_waits_in_the_driver() {
    let c = client(&["signal-in-kernel"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all")
        .env("MFISIM_DELAY_US", "300000");
    let run = run_within(c, LIMIT);
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(
        run.stdout,
        "outer ret=0 errno=0 (0) cmd_status=0x00\n\
         signal sent=1 handled=1 inside=1\n\
         nested clean ret=0 errno=0 (0) cmd_status=0x00\n\
         nested rewrite ret=0 errno=0 (0) cmd_status=0x00\n\
         nested reject ret=-1 errno=22 (EINVAL) cmd_status=0xff\n\
         nested unrelated ok=1\n",
        "{}",
        run.dump()
    );
    // The handler's two answered calls completed inside the interrupted one.
    let sim_seqs: Vec<i64> = run.sim.iter().map(|r| int(r, "seq").unwrap()).collect();
    assert_eq!(sim_seqs, [2, 3, 1], "{}", run.dump());
    for r in &run.sim {
        assert_eq!(text(r, "flags"), Some("0x0010"), "{r}");
        assert_eq!(dangerous(r), None, "{r}");
    }
    let order: Vec<(String, i64)> = run
        .audit
        .iter()
        .map(|r| {
            (
                text(r, "record").unwrap().to_owned(),
                int(r, "seq").unwrap(),
            )
        })
        .collect();
    let o = |k: &str, s: i64| (k.to_owned(), s);
    assert_eq!(
        order,
        [
            o("decision", 1),
            o("decision", 2),
            o("outcome", 2),
            o("decision", 3),
            o("outcome", 3),
            o("outcome", 4),
            o("outcome", 1),
        ],
        "{}",
        run.dump()
    );
    let (_, p) = only_process(check_calls(&run.audit));
    let call = |s: u64| &p.by_seq[&s];
    assert_eq!(call(1)["nested"], Value::Null);
    assert_eq!(text(call(1), "verdict"), Some("rewrite"));
    for (s, verdict) in [(2, "pass"), (3, "rewrite"), (4, "reject")] {
        assert_eq!(call(s)["nested"], Value::Bool(true), "{}", call(s));
        assert_eq!(text(call(s), "verdict"), Some(verdict), "{}", call(s));
    }
    assert_eq!(errno(call(4)), Some(22));
}

#[test]
fn records_on_a_terminal_from_inside_the_guard_and_from_a_handler() {
    if !have_script() {
        eprintln!("skipped: script(1) cannot allocate a terminal here");
        return;
    }
    let dir = Scratch::new("tty");
    // A handler interrupting the thread inside the driver, everything logged to the terminal.
    let cmd = client(&["signal-in-kernel"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", "stderr")
        .env("MFIGUARD_AUDIT", "all")
        .env("MFIGUARD_DEBUG", "debug")
        .env("MFISIM_DELAY_US", "200000")
        .command(&dir);
    let (status, shown) = run_on_tty(&cmd, LIMIT);
    assert!(status.success(), "{status:?}\n{shown}");
    assert!(
        shown.contains("nested reject ret=-1 errno=22 (EINVAL)"),
        "{shown}"
    );
    assert!(
        shown.contains("signal sent=1 handled=1 inside=1"),
        "{shown}"
    );
    let guard_lines: Vec<&str> = shown
        .lines()
        .filter(|l| l.starts_with("mfiguard[") && l.contains("]: #"))
        .collect();
    assert_eq!(guard_lines.len(), 7, "{shown}");
    assert_eq!(
        guard_lines
            .iter()
            .filter(|l| l.ends_with("(in a signal handler)"))
            .count(),
        5,
        "{shown}"
    );
    assert!(shown.contains(" DEBUG "), "the debug log is on: {shown}");

    // SIGALRM at a high rate, the handler and the guard both writing to the terminal.
    let cmd = client(&["signals", "1000", "300"])
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", "stderr")
        .env("MFIGUARD_AUDIT", "all")
        .command(&dir);
    let (status, shown) = run_on_tty(&cmd, LIMIT);
    assert!(status.success(), "{status:?}\n{shown}");
    let f = fields(
        shown
            .lines()
            .find(|l| l.starts_with("calls="))
            .unwrap_or_else(|| panic!("{shown}")),
    );
    assert_eq!(count(&f, "unexpected"), 0);
    assert_eq!(count(&f, "handler_unexpected"), 0);
    let signals = count(&f, "signals");
    // Counted as substrings: a handler's record can split a line the terminal took in part.
    let records = shown.matches("]: #").count() as u64;
    // 1000 calls (two records each for the 667 answered ones) and one per signal.
    assert_eq!(records, 667 * 2 + 333 + signals, "{shown}");
    assert!(shown.contains("(in a signal handler)"));
}

#[test]
fn early_records_on_stderr_are_found_by_seq() {
    let stderr = "mfiguard[12]: #1 outcome reject EINVAL MEGASAS_IOC_FIRMWARE; exe x uid 0 (in a signal handler)\n\
                  mfiguard[12]: #2 decision pass MEGASAS_IOC_FIRMWARE\n\
                  other text #3 outcome\n\
                  mfiguard[12]: #4 outcome pass MEGASAS_IOC_FIRMWARE\n";
    assert_eq!(stderr_outcome_seqs(stderr), vec![1, 4]);
}
