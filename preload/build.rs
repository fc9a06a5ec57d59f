//! Exports the `dlsym`/`dlvsym` trampolines (assembly in src/dl.rs) from libmfiguard.so: rustc's
//! own version script lists only Rust items and hides everything else, so a second script
//! names these two (GNU ld and lld merge them).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=exports.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/exports.map");
}
