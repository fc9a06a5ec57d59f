//! The supervisor alone, for its own tests and benchmark: `supervise TOOL [ARG...]` runs TOOL
//! under it with the configuration of the environment (as `mfiguard-run --via supervise` does,
//! without the wrapper's checks). `MFIGUARD_TEST_NO_KILLABLE=1` does without
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, as on kernels before 5.19.
//! `supervise --bare TOOL` and `supervise --allow-all TOOL` run it under the benchmark's
//! baselines instead (a responder that answers ENOTTY at once; a filter that allows all).

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    use mfiguard_supervisor::{exit_like, run, run_baseline, Baseline, Command, Options};

    let mut argv: Vec<_> = std::env::args_os().skip(1).collect();
    let baseline = match argv.first().and_then(|a| a.to_str()) {
        Some("--bare") => Some(Baseline::BareResponder),
        Some("--allow-all") => Some(Baseline::AllowAll),
        _ => None,
    };
    if baseline.is_some() {
        argv.remove(0);
    }
    let args: Vec<CString> = argv
        .into_iter()
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
    let result = match baseline {
        Some(b) => run_baseline(&cmd, b),
        None => run(mfiguard_core::config::get_or_load(), &cmd, opts),
    };
    match result {
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
