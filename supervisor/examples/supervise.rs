//! The supervisor alone, for its own tests: `supervise TOOL [ARG...]` runs TOOL under it with
//! the configuration of the environment (as `mfiguard-run --via supervise` does, without the
//! wrapper's checks). `MFIGUARD_TEST_NO_KILLABLE=1` does without
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, as on kernels before 5.19.

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    use mfiguard_supervisor::{exit_like, run, Command, Options};

    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let Some(tool) = args.first() else {
        eprintln!("usage: supervise TOOL [ARG...]");
        std::process::exit(125);
    };
    let envp = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let cmd = Command {
        path: tool.clone(),
        argv: args.clone(),
        envp,
    };
    let opts = Options {
        killable_wait: std::env::var_os("MFIGUARD_TEST_NO_KILLABLE").is_none(),
    };
    let cfg = mfiguard_core::config::get_or_load();
    match run(cfg, &cmd, opts) {
        Ok(exit) => exit_like(exit),
        Err(e) => {
            eprintln!("supervise: {e:?}");
            std::process::exit(125)
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    eprintln!("supervise: the supervisor is built for x86_64 only");
    std::process::exit(125);
}
