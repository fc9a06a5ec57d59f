//! `mfiguard-run`: runs a MegaRAID management tool with `libmfiguard.so` preloaded, then
//! replaces itself with the tool (`execve`): the tool's pid, exit status, stdout and stderr are
//! its own. See mfiguard-run(1).
//!
//! The flow: the command line ([`settings::Cli`], clap) is validated into [`Settings`], whose
//! policy is read by the library's own reader (`mfiguard_core::config`) with the options laid
//! over it; [`run`] refuses, checks or execs; every failure is one [`Error`], mapped to an exit
//! status in one place ([`Error::exit_code`]) and printed as one prefixed line per problem.
//!
//! The wrapper never writes to stdout except for `--help`, `--version` and `--check`.
//!
//! Exit status of the wrapper itself: 125 usage or set-up error (an invalid setting in the
//! environment or the config file included), 126 TOOL not executable, 127 TOOL not found (as
//! env(1), nice(1) and timeout(1) do); `--check`: 0 all good, 1 not.

#![deny(unsafe_code)]

mod check;
mod collect;
mod elf;
mod facts;
#[cfg(target_arch = "x86_64")]
mod hostd_state;
mod mechanism;
mod nagios;
mod privilege;
mod report;
mod settings;
mod sys;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::error::{ContextKind, ContextValue, ErrorKind as ClapErrorKind};
use clap::Parser;

use mfiguard_core::audit;
use mfiguard_core::config::GuardMode;

use crate::elf::Kind;
use crate::mechanism::{Mechanism, Via};
use crate::settings::{Cli, Settings, LIB_NAME};

/// The wrapper's version (the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const ME: &str = "mfiguard-run";

/// `--help`: the man page's summary.
const HELP: &str = include_str!("help.txt");

/// Everything that stops the wrapper before it execs the tool.
#[derive(Debug)]
pub enum Error {
    /// A bad command line (125).
    Usage(String),
    /// Settings the library cannot use as given (125): one line each.
    Policy(Vec<String>),
    /// The set-up is incomplete: no library, a path LD_PRELOAD cannot carry (125).
    Setup(String),
    /// `--require-guard` and a tool no mechanism reaches (125).
    Unguardable(String),
    /// TOOL does not exist (127).
    NotFound(String),
    /// TOOL cannot be executed (126).
    NotExecutable(String),
}

impl Error {
    /// The one mapping from errors to exit statuses.
    fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Policy(_) | Error::Setup(_) | Error::Unguardable(_) => 125,
            Error::NotExecutable(_) => 126,
            Error::NotFound(_) => 127,
        }
    }

    fn lines(&self) -> Vec<String> {
        match self {
            Error::Policy(lines) => lines.clone(),
            Error::Usage(m)
            | Error::Setup(m)
            | Error::Unguardable(m)
            | Error::NotFound(m)
            | Error::NotExecutable(m) => vec![m.clone()],
        }
    }
}

/// `text` with control characters shown as `?`: a message is one line on a terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

fn main() -> ExitCode {
    // The supervisor's records: the first names this build.
    audit::set_build(concat!("mfiguard-run ", env!("CARGO_PKG_VERSION")));
    sys::default_sigpipe();
    match run() {
        Ok(code) => code,
        Err(e) => {
            for line in e.lines() {
                eprintln!("{ME}: {}", printable(&line));
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Our wording of clap's errors, as the shell wrapper had it.
fn usage_error(e: &clap::Error) -> Error {
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.split_whitespace().next().unwrap_or("").to_string(),
        _ => String::new(),
    };
    let msg = match e.kind() {
        ClapErrorKind::UnknownArgument => format!("unknown option '{arg}' (see {ME} --help)"),
        ClapErrorKind::InvalidValue | ClapErrorKind::NoEquals => {
            format!("{arg} needs a value (see {ME} --help)")
        }
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            format!("{first} (see {ME} --help)")
        }
    };
    Error::Usage(msg)
}

fn run() -> Result<ExitCode, Error> {
    // The Nagios plugin (the installed check_mfiguard execs this): its own options.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--nagios-plugin") {
        return Ok(nagios::main(&args[1..]));
    }
    let cli = Cli::try_parse().map_err(|e| usage_error(&e))?;
    if cli.help {
        print!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    }
    if cli.version {
        println!("{ME} {VERSION}");
        return Ok(ExitCode::SUCCESS);
    }
    if cli.nagios_plugin {
        return Err(Error::Usage(format!(
            "--nagios-plugin must be the first argument (see {ME} --help)"
        )));
    }
    let mut settings = Settings::new(&cli)?;
    if cli.check {
        let tool = match cli.command.as_slice() {
            [] => None,
            [t] => Some(t.to_string_lossy().into_owned()),
            more => {
                let words: Vec<String> = more
                    .iter()
                    .map(|w| w.to_string_lossy().into_owned())
                    .collect();
                return Err(Error::Usage(format!(
                    "--check takes at most one TOOL (got: {})",
                    words.join(" ")
                )));
            }
        };
        // The policy for this user running TOOL (a tool section may name it).
        let tool_path = tool.as_deref().map(|t| {
            if t.contains('/') {
                PathBuf::from(t)
            } else {
                find_in_path(t).unwrap_or_else(|| PathBuf::from(t))
            }
        });
        settings.settle_for(tool_path.as_deref());
        let ok = if cli.json {
            let (ok, facts) = facts::collect(|| check::check(&settings, tool.as_deref()));
            println!("{}", check::to_json(ok, facts));
            ok
        } else {
            check::check(&settings, tool.as_deref())
        };
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if cli.report {
        return report::command(&cli, &settings);
    }
    if cli.collect {
        if !cli.command.is_empty() {
            return Err(Error::Usage(format!(
                "--collect takes no TOOL (see {ME} --help)"
            )));
        }
        return collect::run(
            &settings,
            cli.state_dir.as_deref(),
            cli.textfile_dir.as_deref(),
        );
    }
    if cli.json {
        return Err(Error::Usage(format!(
            "--json goes with --check or --report (see {ME} --help)"
        )));
    }
    let Some((tool, args)) = cli.command.split_first() else {
        return Err(Error::Usage(format!("no TOOL to run (see {ME} --help)")));
    };
    let path = resolve_tool(tool);
    // The policy for who runs this tool.
    settings.settle_for(path.as_deref().ok());
    // The library would run with a policy it cannot use (falling back to a stricter one, or,
    // for an unusable file, to readonly), or the command line asks for a mode the policy does
    // not let this user choose: refuse, naming each setting.
    let refusals = settings.refusals();
    if !refusals.is_empty() {
        return Err(Error::Policy(refusals));
    }
    if let Some(why) = log_dir_missing(&settings) {
        return Err(Error::Setup(why));
    }
    let path = path?;
    let kind = elf::describe(&path, find_in_path);
    // With the guard off there is nothing to install: the tool runs as it is (the library,
    // preloaded as before, passes everything on).
    let via = if settings.config.mode == GuardMode::Off {
        Via::Preload
    } else {
        settings.via
    };
    let mechanism = mechanism::choose(&path, &kind, via);
    privilege::warn_before_run(&path, &kind, &mechanism);
    match &mechanism {
        Mechanism::Supervisor { .. } | Mechanism::Ptrace { .. } => {
            let traced = matches!(mechanism, Mechanism::Ptrace { .. });
            match supervise(&settings, tool, &path, args, traced) {
                Ok(never) => match never {},
                // The kernel refused the filter (another listener already guards this
                // process, say): as --via auto, the ptrace fallback, then the preload; as
                // --via supervise or ptrace, a refusal.
                Err(Error::Setup(why)) if settings.via == Via::Auto => {
                    eprintln!(
                        "{ME}: warning: the supervisor could not start ({}); trying {}",
                        printable(&why),
                        if traced { "the preload" } else { "ptrace" }
                    );
                    if !traced && mechanism::ptrace_available().is_ok() {
                        if let Ok(never) = supervise(&settings, tool, &path, args, true) {
                            match never {}
                        }
                    }
                    let fallback = mechanism::choose(&path, &kind, Via::Preload);
                    // Under another mfiguard-run (a PATH shim called from a guarded script):
                    // its filter closes both doors, and its guard covers this tool already.
                    // The library applies this run's mode first where it can load (the
                    // stricter of the two then wins); a static tool has the outer guard's.
                    if mechanism::already_guarded() {
                        if let Mechanism::Unguarded { .. } = fallback {
                            eprintln!(
                                "{ME}: note: this process runs under mfiguard-run's guard already; the tool runs under it, in that guard's mode (a statically linked tool cannot take this run's)"
                            );
                            return exec_under_outer_guard(&settings, tool, &path, args);
                        }
                        eprintln!(
                            "{ME}: note: this process runs under mfiguard-run's guard already; the tool runs under it, with the library applying this run's mode first"
                        );
                    }
                    run_preloaded(&settings, &fallback, &kind, tool, &path, args)
                }
                Err(e) => Err(e),
            }
        }
        m => run_preloaded(&settings, m, &kind, tool, &path, args),
    }
}

/// Runs the tool as it is, for an `mfiguard-run` that is itself under another one's guard
/// (which covers the tool: its filter is inherited); the options' settings are exported as
/// for the library.
fn exec_under_outer_guard(
    settings: &Settings,
    tool: &OsString,
    path: &Path,
    args: &[OsString],
) -> Result<ExitCode, Error> {
    use std::os::unix::process::CommandExt;
    let e = std::process::Command::new(path)
        .arg0(tool)
        .args(args)
        .envs(settings.exports.iter().map(|(k, v)| (k, v)))
        .exec();
    Err(Error::NotExecutable(format!("{}: {e}", path.display())))
}

/// Runs the tool under `LD_PRELOAD` (or, with `--allow-unguarded`, unguarded).
fn run_preloaded(
    settings: &Settings,
    mechanism: &Mechanism,
    kind: &Kind,
    tool: &OsString,
    path: &Path,
    args: &[OsString],
) -> Result<ExitCode, Error> {
    if let Mechanism::Unguarded { why, .. } = mechanism {
        // A file that is neither ELF nor `#!` is the kernel's (or execvp's) business, as it is
        // without the wrapper; with the guard off, nothing is meant to guard it.
        if *kind != Kind::Other && settings.config.mode != GuardMode::Off {
            if !settings.allow_unguarded {
                return Err(Error::Unguardable(format!(
                    "{why}; not running it unguarded ({})",
                    what_would_work(settings.via)
                )));
            }
            eprintln!(
                "{ME}: warning: {}: the guard is NOT active (--allow-unguarded; see {ME} --check {})",
                printable(why),
                tool.to_string_lossy()
            );
            record_unguarded(settings, path, why);
        }
    }
    // A tool nothing guards still gets the library when there is one (a setuid tool that
    // drops it costs nothing); a missing one does not stop a run the user let go unguarded.
    let lib = match mechanism {
        Mechanism::Unguarded { .. } => pick_library(settings, mechanism.class(), path).ok(),
        _ => Some(pick_library(settings, mechanism.class(), path)?),
    };
    Err(exec(settings, lib.as_deref(), tool, path, args))
}

/// Why every record of the run would be lost: the file log's directory does not exist (a
/// typo, or a package not installed). The guard would still guard, but leave no trail.
fn log_dir_missing(settings: &Settings) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    if settings.config.mode == GuardMode::Off {
        return None;
    }
    let path = settings.config.log.file()?;
    let path = Path::new(std::ffi::OsStr::from_bytes(path.as_bytes()));
    let dir = path.parent()?;
    (!dir.is_dir()).then(|| {
        format!(
            "the audit log's directory {} does not exist: every record would be lost (create it, or choose another log)",
            dir.display()
        )
    })
}

/// What would guard a tool none of the mechanisms reaches, for the refusal's line.
fn what_would_work(via: Via) -> &'static str {
    match via {
        Via::Preload => {
            "--via supervise guards static and setuid tools on Linux >= 5.0; --allow-unguarded runs it anyway"
        }
        _ => {
            "a kernel with seccomp user notification (Linux >= 5.0) would let the supervisor guard it; --allow-unguarded runs it anyway"
        }
    }
}

/// An audit record of a run the user let go unguarded.
fn record_unguarded(settings: &Settings, path: &Path, why: &str) {
    let message = format!("ran unguarded (--allow-unguarded): {why}");
    let value = path.display().to_string();
    let rec = audit::ErrorRecord {
        key: "guard",
        value: &value,
        message: &message,
        exe: &settings.config.exe,
    };
    let _ = audit::emit(&settings.config, false, audit::Record::Error(&rec));
}

/// Runs the tool under the supervisor (`traced`: its ptrace fallback) and ends as it ends;
/// `Err` when it could not start.
fn supervise(
    settings: &Settings,
    tool: &OsString,
    path: &Path,
    args: &[OsString],
    traced: bool,
) -> Result<std::convert::Infallible, Error> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::{OsStrExt, OsStringExt};

        use mfiguard_supervisor::{Command as Tool, Options, SpawnError};

        let cstr = |b: &[u8]| {
            CString::new(b).map_err(|_| Error::Usage("an argument contains a NUL byte".into()))
        };
        let mut argv = vec![cstr(tool.as_bytes())?];
        for a in args {
            argv.push(cstr(a.as_bytes())?);
        }
        // The tool's environment: ours, with the options' settings (as the preload passes them).
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| !settings.exports.iter().any(|(e, _)| k == e))
            .collect();
        env.extend(
            settings
                .exports
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        let mut envp = Vec::with_capacity(env.len());
        for (k, v) in env {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envp.push(cstr(&kv)?);
        }
        let cmd = Tool {
            path: cstr(path.as_os_str().as_bytes())?,
            argv,
            envp,
        };
        let opts = Options {
            killable_wait: std::env::var_os("MFIGUARD_TEST_NO_KILLABLE").is_none(),
            ..Options::default()
        };
        let shown = path.display();
        let result = if traced {
            // MFIGUARD_TEST_NO_PIDFD_GETFD: the tool's descriptors through /proc, as before
            // Linux 5.6 (tests).
            let pidfd = std::env::var_os("MFIGUARD_TEST_NO_PIDFD_GETFD").is_none();
            mfiguard_supervisor::run_ptrace_with(&settings.config, &cmd, pidfd)
        } else {
            mfiguard_supervisor::run(&settings.config, &cmd, opts)
        };
        match result {
            Ok(exit) => mfiguard_supervisor::exit_like(exit),
            Err(SpawnError::Exec(e)) if e == libc::ENOENT => Err(Error::NotFound(format!(
                "{shown}: {}",
                std::io::Error::from_raw_os_error(e)
            ))),
            Err(SpawnError::Exec(e)) => Err(Error::NotExecutable(format!(
                "{shown}: {}",
                std::io::Error::from_raw_os_error(e)
            ))),
            Err(SpawnError::Filter(e)) => Err(Error::Setup(format!(
                "the seccomp filter could not be installed: {}{}",
                std::io::Error::from_raw_os_error(e),
                if e == libc::EBUSY {
                    " (another seccomp listener already guards this process)"
                } else {
                    ""
                }
            ))),
            Err(SpawnError::Setup(e)) => Err(Error::Setup(format!(
                "the supervisor could not start the tool: {}{}",
                std::io::Error::from_raw_os_error(e),
                if traced && e == libc::EPERM {
                    " (this process may not trace its children: Yama ptrace_scope 3, or it is traced itself)"
                } else {
                    ""
                }
            ))),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (settings, tool, path, args, traced);
        Err(Error::Setup("no supervisor in this build".into()))
    }
}

/// The first executable regular file `name` in `PATH`, as the shell finds it.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).find_map(|dir| {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let p = dir.join(name);
        (p.is_file() && sys::executable(&p)).then_some(p)
    })
}

/// The file exec would run, or 126/127 as a shell reports them.
fn resolve_tool(tool: &OsString) -> Result<PathBuf, Error> {
    let shown = tool.to_string_lossy();
    let path = if sys::bytes(tool).contains(&b'/') {
        PathBuf::from(tool)
    } else {
        find_in_path(&shown)
            .ok_or_else(|| Error::NotFound(format!("{shown}: command not found")))?
    };
    match std::fs::metadata(&path) {
        Err(_) => Err(Error::NotFound(format!("{}: no such file", path.display()))),
        Ok(m) if m.is_dir() || !sys::executable(&path) => Err(Error::NotExecutable(format!(
            "{}: not an executable file",
            path.display()
        ))),
        Ok(_) => Ok(path),
    }
}

/// The library for a tool of `class`, or why there is none.
fn pick_library(settings: &Settings, class: u8, tool: &Path) -> Result<PathBuf, Error> {
    let lib = settings.libraries.path(class);
    if !lib.is_file() {
        return Err(Error::Setup(if class == 32 {
            format!(
                "{} is a 32-bit program and the 32-bit guard library {} is not installed: a 64-bit {LIB_NAME} cannot load into it (install the 32-bit library, or set MFIGUARD_LIB32_DIR)",
                tool.display(),
                lib.display()
            )
        } else {
            format!(
                "the guard library {} is not installed (set MFIGUARD_LIB_DIR to a directory holding {LIB_NAME}, e.g. a build tree's target/release)",
                lib.display()
            )
        }));
    }
    if sys::bytes(lib.as_os_str())
        .iter()
        .any(|&b| b == b':' || b == b' ')
    {
        return Err(Error::Setup(format!(
            "{}: a path containing ':' or a space cannot go into LD_PRELOAD",
            lib.display()
        )));
    }
    Ok(lib)
}

/// `LD_PRELOAD` with `lib` first and any other `libmfiguard.so` removed.
fn preload_with(lib: &Path, caller: Option<OsString>) -> OsString {
    let mut out = lib.as_os_str().to_owned();
    let caller = caller.unwrap_or_default();
    for item in sys::bytes(&caller).split(|&b| b == b' ' || b == b':') {
        if item.is_empty() || item == LIB_NAME.as_bytes() || item.ends_with(b"/libmfiguard.so") {
            continue;
        }
        out.push(":");
        out.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(item));
    }
    out
}

/// Replaces this process with the tool; returns only on failure.
fn exec(
    settings: &Settings,
    lib: Option<&Path>,
    tool: &OsString,
    path: &Path,
    args: &[OsString],
) -> Error {
    // exec by the name given (argv[0] unchanged, PATH searched as the shell does), except a
    // name that starts with "-", which could be taken for an option.
    let program: &std::ffi::OsStr = if sys::bytes(tool).starts_with(b"-") {
        path.as_os_str()
    } else {
        tool
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(lib) = lib {
        cmd.env(
            "LD_PRELOAD",
            preload_with(lib, std::env::var_os("LD_PRELOAD")),
        );
    }
    for (k, v) in &settings.exports {
        cmd.env(k, v);
    }
    let e = cmd.exec();
    let shown = path.display();
    match e.raw_os_error() {
        Some(libc::ENOENT) => Error::NotFound(format!("{shown}: {e}")),
        _ => Error::NotExecutable(format!("{shown}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn preload_puts_the_guard_first_and_drops_other_guards() {
        let got = preload_with(
            Path::new("/g/libmfiguard.so"),
            Some("/a.so /old/libmfiguard.so:libmfiguard.so::/b.so".into()),
        );
        assert_eq!(got, "/g/libmfiguard.so:/a.so:/b.so");
        assert_eq!(
            preload_with(Path::new("/g/libmfiguard.so"), None),
            "/g/libmfiguard.so"
        );
    }
}
