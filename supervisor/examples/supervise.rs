//! The supervisor alone, for its own tests and benchmark: `supervise TOOL [ARG...]` runs TOOL
//! under it with the configuration of the environment (as `mfiguard-run --via supervise` does,
//! without the wrapper's checks). `MFIGUARD_TEST_NO_KILLABLE=1` does without
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, as on kernels before 5.19;
//! `MFIGUARD_TEST_NO_SYNC_WAKE_UP=1` without `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (before 6.6),
//! for the supervisor and the baselines alike.
//! `supervise --bare TOOL` and `supervise --allow-all TOOL` run it under the benchmark's
//! baselines instead (a responder that answers ENOTTY at once; a filter that allows all).
//!
//! `supervise --ptrace TOOL` runs it under the ptrace fallback (`MFIGUARD_TEST_NO_PIDFD_GETFD=1`
//! takes the tool's descriptors through `/proc`, as before Linux 5.6); `supervise --auto TOOL`
//! chooses as `mfiguard-run --via auto` does (`MFIGUARD_TEST_NO_USER_NOTIF=1` makes it believe
//! user notification is missing); `supervise --bare-trace TOOL` runs it under the ptrace
//! baseline (a tracer that only resumes).

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    use mfiguard_core::audit::Guard;
    use mfiguard_supervisor::{
        choose, exit_like, probe_notify, run, run_baseline, run_ptrace_with, Baseline, Command,
        Options,
    };

    let mut argv: Vec<_> = std::env::args_os().skip(1).collect();
    let mut baseline = None;
    let mut guard = Guard::Supervisor;
    match argv.first().and_then(|a| a.to_str()) {
        Some("--bare") => baseline = Some(Baseline::BareResponder),
        Some("--allow-all") => baseline = Some(Baseline::AllowAll),
        Some("--bare-trace") => baseline = Some(Baseline::BareTracer),
        Some("--ptrace") => guard = Guard::Ptrace,
        Some("--auto") => {
            let probe = if std::env::var_os("MFIGUARD_TEST_NO_USER_NOTIF").is_some() {
                Err(libc::ENOSYS)
            } else {
                probe_notify()
            };
            guard = choose(probe);
            eprintln!("supervise: --auto chose the {}", guard.name());
        }
        _ => {}
    }
    if argv
        .first()
        .and_then(|a| a.to_str())
        .is_some_and(|a| a.starts_with("--"))
    {
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
        sync_wake_up: std::env::var_os("MFIGUARD_TEST_NO_SYNC_WAKE_UP").is_none(),
    };
    let cfg = mfiguard_core::config::get_or_load();
    let result = match (baseline, guard) {
        (Some(b), _) => run_baseline(&cmd, b, opts),
        (None, Guard::Ptrace) => run_ptrace_with(
            cfg,
            &cmd,
            std::env::var_os("MFIGUARD_TEST_NO_PIDFD_GETFD").is_none(),
        ),
        (None, _) => run(cfg, &cmd, opts),
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
