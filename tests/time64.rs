//! A 32-bit tool built with 64-bit time (`-D_TIME_BITS=64 -D_FILE_OFFSET_BITS=64`, glibc 2.34
//! and later) calls `__ioctl_time64`, not `ioctl`: `<sys/ioctl.h>` redirects the name. The i386
//! library interposes both, so such a call is guarded like any other: rewritten, recorded, and
//! the simulator (preloaded after the guard) sees the private copy. Runs in the i686 suite
//! (`MFIGUARD_TEST_TARGET=i686-unknown-linux-gnu`), where the client and the guard are 32-bit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::process::Command;

/// A 32-bit library whose `mfiguard_test_ioctl` calls `ioctl` as a `_TIME_BITS=64` program does,
/// loaded by the i686 client; `None` (skipped, loudly) without gcc-multilib or outside the i686
/// suite.
fn time64_helper(dir: &Scratch) -> Option<String> {
    if !cross_target().is_some_and(|t| t.starts_with("i686")) {
        eprintln!(
            "skipped: the i686 suite runs this (MFIGUARD_TEST_TARGET=i686-unknown-linux-gnu)"
        );
        return None;
    }
    let src = dir.path("time64.c");
    std::fs::write(
        &src,
        "#include <sys/ioctl.h>\n\
         int mfiguard_test_ioctl(int fd, unsigned long request, void *packet)\n\
         { return ioctl(fd, request, packet); }\n",
    )
    .unwrap();
    let lib = dir.path("libtime64.so");
    let status = Command::new("cc")
        .args(["-m32", "-D_TIME_BITS=64", "-D_FILE_OFFSET_BITS=64"])
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("skipped: no 32-bit C compiler (gcc-multilib)");
        return None;
    }
    Some(lib.to_str().unwrap().to_owned())
}

#[test]
fn a_time64_client_is_guarded_by_the_i386_library() {
    let dir = Scratch::new("time64");
    let Some(lib) = time64_helper(&dir) else {
        return;
    };
    // The helper really calls the other name (glibc >= 2.34): else this proves nothing.
    let nm = Command::new("nm")
        .args(["-D", "--undefined-only", &lib])
        .output();
    let undefined = String::from_utf8_lossy(&nm.unwrap().stdout).into_owned();
    assert!(
        undefined.contains("__ioctl_time64"),
        "the helper does not call __ioctl_time64:\n{undefined}"
    );
    assert!(!undefined.contains(" ioctl"), "{undefined}");

    let run = client(&["dl-limit", "plain", &lib])
        .guard(Guard::Enforce)
        .run();
    assert_eq!(
        run.stdout,
        "ret=0 errno=0 (0) cmd_status=0x00\n",
        "{}",
        run.dump()
    );
    // The oracle: the simulator got the guard's private copy (IEEE cleared), once.
    assert_eq!(
        text(run.sim_call(), "flags"),
        Some("0x0010"),
        "{}",
        run.dump()
    );
    assert_eq!(run.audit_calls().len(), 1, "{}", run.dump());
}
