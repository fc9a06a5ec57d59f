//! What the preload cannot reach, kept true (doc/preload-guarantees.md): a library opened with
//! `RTLD_DEEPBIND`, or in a new `dlmopen` namespace, calls its own libc's `ioctl`, and neither
//! the guard nor the simulator (both preloaded) sees the call. Its plain-`dlopen` twin is
//! guarded. (The supervisor, which filters the system call, covers both.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::process::Command;

/// A library whose `mfiguard_test_ioctl` calls `ioctl` itself, built with the system's C
/// compiler for the clients' word size; `None` (the test is skipped, loudly) without one.
fn helper(dir: &Scratch) -> Option<String> {
    let src = dir.path("helper.c");
    std::fs::write(
        &src,
        "#include <sys/ioctl.h>\n\
         int mfiguard_test_ioctl(int fd, unsigned long request, void *packet)\n\
         { return ioctl(fd, request, packet); }\n",
    )
    .unwrap();
    let lib = dir.path("libhelper.so");
    let mut cc = Command::new("cc");
    cc.args(["-shared", "-fPIC", "-o"]).arg(&lib).arg(&src);
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

#[test]
fn deepbind_and_dlmopen_libraries_go_around_the_preload() {
    let dir = Scratch::new("dl-limits");
    let Some(lib) = helper(&dir) else {
        return;
    };
    // Opened plainly, its ioctl binds to the guard: rewritten, answered, recorded.
    let run = client(&["dl-limit", "plain", &lib])
        .guard(Guard::Enforce)
        .run();
    assert_eq!(
        run.stdout,
        "ret=0 errno=0 (0) cmd_status=0x00\n",
        "{}",
        run.dump()
    );
    assert_eq!(text(run.sim_call(), "flags"), Some("0x0010"));
    assert_eq!(run.audit_calls().len(), 1, "{}", run.dump());

    // With RTLD_DEEPBIND or in its own namespace: the libc's ioctl, straight to the kernel
    // (/dev/null: ENOTTY), unseen by the guard and the simulator. (In the dlmopen namespace the
    // errno is that namespace's libc's: the client's own reads 0.)
    for how in ["deepbind", "dlmopen"] {
        let run = client(&["dl-limit", how, &lib]).guard(Guard::Enforce).run();
        assert!(
            run.stdout.starts_with("ret=-1 errno="),
            "{how}\n{}",
            run.dump()
        );
        assert!(run.sim.is_empty(), "{how}\n{}", run.dump());
        assert!(run.audit_calls().is_empty(), "{how}\n{}", run.dump());
    }
}
