//! What the preload cannot reach, kept true (doc/preload-guarantees.md): a library opened with
//! `RTLD_DEEPBIND`, or in a new `dlmopen` namespace, calls its own libc's `ioctl`, and neither
//! the guard nor the simulator (both preloaded) sees the call. Its plain-`dlopen` twin is
//! guarded. (The supervisor, which filters the system call, covers both.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

#[test]
fn deepbind_and_dlmopen_libraries_go_around_the_preload() {
    let dir = Scratch::new("dl-limits");
    let Some(lib) = ioctl_helper_lib(&dir, "helper", &[]) else {
        return;
    };
    // Opened plainly, its ioctl binds to the guard: rewritten, answered, recorded.
    assert_helper_call_guarded(&lib);

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
