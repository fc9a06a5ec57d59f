//! A 32-bit tool built with 64-bit time (`-D_TIME_BITS=64 -D_FILE_OFFSET_BITS=64`, glibc 2.34
//! and later) calls `__ioctl_time64`, not `ioctl`: `<sys/ioctl.h>` redirects the name. The i386
//! library interposes both, so such a call is guarded like any other: rewritten, recorded, and
//! the simulator (preloaded after the guard) sees the private copy. Runs in the i686 suite
//! (`MFIGUARD_TEST_TARGET=i686-unknown-linux-gnu`), where the client and the guard are 32-bit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::process::Command;

#[test]
fn a_time64_client_is_guarded_by_the_i386_library() {
    if !cross_target().is_some_and(|t| t.starts_with("i686")) {
        eprintln!(
            "skipped: the i686 suite runs this (MFIGUARD_TEST_TARGET=i686-unknown-linux-gnu)"
        );
        return;
    }
    let dir = Scratch::new("time64");
    // A 32-bit library whose ioctl call is made as a 64-bit-time program makes it.
    let flags = ["-D_TIME_BITS=64", "-D_FILE_OFFSET_BITS=64"];
    let Some(lib) = ioctl_helper_lib(&dir, "time64", &flags) else {
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

    // The oracle: the simulator got the guard's private copy (IEEE cleared), once.
    assert_helper_call_guarded(&lib);
}
