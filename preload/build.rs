//! Two things the library needs from the build:
//!
//! - its name: `MFIGUARD_BUILD_SUFFIX` is ` (git <commit>)` when the sources are a git checkout
//!   and git is installed, else empty (a source tarball: the version alone);
//! - the `dlsym`/`dlvsym` trampolines (assembly in src/dl.rs) exported from libmfiguard.so:
//!   rustc's own version script lists only Rust items and hides everything else, so a second
//!   script names these two (GNU ld and lld merge them).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit()));
    // Rebuild when HEAD moves (a worktree's HEAD lives under its own git dir).
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(refs) = git(&["rev-parse", "--symbolic-full-name", "HEAD"])
        .and_then(|r| git(&["rev-parse", "--git-path", &r]))
    {
        println!("cargo:rerun-if-changed={refs}");
    }
    let suffix = commit.map_or(String::new(), |c| format!(" (git {c})"));
    println!("cargo:rustc-env=MFIGUARD_BUILD_SUFFIX={suffix}");

    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=exports.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/exports.map");
}
