//! Sixteen threads for a bounded time, each cycling a clean DCMD, a packet the guard rewrites,
//! one it refuses, one a seventeenth thread keeps changing while it is in flight, and two
//! unrelated ioctls. Every call is counted by the thread that made it and must have ended the way
//! it must (no call lost, none answered wrongly); no frame a legacy driver would mishandle reaches
//! the simulator (its record is what reached the "kernel"); and the audit log has, for every
//! guarded call, exactly one outcome record, preceded by one decision record when the call
//! reached the kernel, matched by seq, all of them whole lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::hardening::*;
use common::*;

const THREADS: usize = 16;
const MILLIS: u64 = 2000;

#[test]
fn sixteen_threads_and_a_mutator_lose_no_call_and_leak_no_dangerous_frame() {
    let (t, ms) = (THREADS.to_string(), MILLIS.to_string());
    let run = client(&["stress", &t, &ms])
        .guard(Guard::Enforce)
        .env("MFIGUARD_AUDIT", "all")
        .run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    let f = fields(&run.stdout);
    let n = |k: &str| count(&f, k);

    // Every call accounted for by the thread that made it, each ending as it must.
    assert_eq!(n("threads"), THREADS as u64);
    assert_eq!(n("unexpected"), 0, "{}", run.stdout);
    assert_eq!(n("clean"), n("clean_ok"), "{}", run.stdout);
    assert_eq!(n("rewrite"), n("rewrite_ok"), "{}", run.stdout);
    assert_eq!(n("reject"), n("reject_einval"), "{}", run.stdout);
    assert_eq!(
        n("mutated"),
        n("mutated_ok") + n("mutated_einval"),
        "{}",
        run.stdout
    );
    assert_eq!(n("unrelated"), n("unrelated_ok"), "{}", run.stdout);
    let megaraid = n("clean") + n("rewrite") + n("reject") + n("mutated");
    assert_eq!(n("megaraid"), megaraid);
    assert_eq!(n("calls"), megaraid + n("unrelated"));
    // Enough of everything to mean something, and the mutator really changed packets in flight:
    // both outcomes of the mutated packet occurred.
    for k in ["clean", "rewrite", "reject", "mutated", "unrelated"] {
        assert!(n(k) >= 50, "only {} {k} calls in {MILLIS} ms", n(k));
    }
    assert!(
        n("mutated_ok") > 0 && n("mutated_einval") > 0,
        "{}",
        run.stdout
    );

    // What reached the kernel: exactly the calls that were answered, none of them dangerous.
    let reached = n("clean_ok") + n("rewrite_ok") + n("mutated_ok");
    assert_eq!(
        run.sim.len() as u64,
        reached,
        "calls that reached the simulator"
    );
    for r in &run.sim {
        if let Some(why) = dangerous(r) {
            panic!("a dangerous frame reached the simulator ({why}): {r}");
        }
        assert_eq!(firmware_addrs(r), ["0x91dfc000"], "{r}");
        assert_eq!(int(r, "cmd_status"), Some(0), "{r}");
    }

    // The log: one outcome per guarded call, a decision before it for each call that reached
    // the kernel, seqs 1..=N.
    let (_, p) = only_process(check_calls(&run.audit));
    assert_eq!(
        p.calls as u64, megaraid,
        "one outcome record per guarded call"
    );
    assert_eq!(
        p.decisions as u64, reached,
        "one decision record per call that reached the kernel"
    );
    let v = |k: &str| p.verdicts.get(k).copied().unwrap_or(0) as u64;
    assert_eq!(v("reject"), n("reject_einval") + n("mutated_einval"));
    assert_eq!(v("pass") + v("rewrite"), reached);
    assert!(v("rewrite") >= n("rewrite_ok"));
    assert!(run.audit_text.ends_with('\n'));

    eprintln!(
        "figures: {THREADS} threads x {MILLIS} ms: {} calls ({megaraid} MegaRAID: {} clean, {} \
         rewritten, {} refused, {} mutated in flight [{} answered, {} refused]; {} unrelated); \
         {} reached the simulator; {} audit records",
        n("calls"),
        n("clean"),
        n("rewrite"),
        n("reject"),
        n("mutated"),
        n("mutated_ok"),
        n("mutated_einval"),
        n("unrelated"),
        run.sim.len(),
        run.audit.len()
    );
}
