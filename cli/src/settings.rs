//! The command line's raw options, validated into the settings of one run: the policy (the
//! shared configuration reader's [`Sources`] with the options laid over them) and where the
//! libraries are.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use mfiguard_core::config::{self, Config, ErrorKind, FileSource, Origin, Sources};

use crate::Error;

/// The raw command line. Help and version are ours (the man-page summary, `mfiguard-run X`),
/// not clap's. An option given twice takes its last value, as in the shell wrapper.
#[derive(Parser, Debug)]
#[command(
    name = "mfiguard-run",
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// enforce, audit, off or readonly (MFIGUARD_MODE).
    #[arg(long, overrides_with = "mode")]
    pub mode: Option<String>,
    /// syslog, stderr, none or an absolute path (MFIGUARD_LOG).
    #[arg(long, overrides_with = "log")]
    pub log: Option<String>,
    /// Rule ids downgraded to warnings; may be repeated (MFIGUARD_ALLOW).
    #[arg(long)]
    pub allow: Vec<String>,
    /// Record every MegaRAID call (MFIGUARD_AUDIT=all).
    #[arg(long, overrides_with = "audit_all")]
    pub audit_all: bool,
    /// The config file instead of /etc/mfiguard.conf (MFIGUARD_CONFIG).
    #[arg(long, overrides_with = "config")]
    pub config: Option<String>,
    /// Refuse to run TOOL when no mechanism can guard it (the default; kept for scripts).
    #[arg(long, overrides_with = "require_guard")]
    pub require_guard: bool,
    /// Run TOOL even when no mechanism can guard it (a warning and an audit record).
    #[arg(long, overrides_with = "allow_unguarded")]
    pub allow_unguarded: bool,
    /// auto, supervise, ptrace or preload: how TOOL is guarded (MFIGUARD_VIA, else auto).
    #[arg(long, value_enum, ignore_case = true, overrides_with = "via")]
    pub via: Option<crate::mechanism::Via>,
    /// The self-test.
    #[arg(long, overrides_with = "check")]
    pub check: bool,
    /// `--check` and `--report` print one JSON object instead of text.
    #[arg(long, overrides_with = "json")]
    pub json: bool,
    /// Summarise the audit records: refusals by rule, mode, account and tool.
    #[arg(long, overrides_with = "report", conflicts_with = "check")]
    pub report: bool,
    /// `--report`: only records of the last DURATION (90s, 15m, 1h, 7d, 2w).
    #[arg(long, overrides_with = "since", requires = "report")]
    pub since: Option<String>,
    /// Count new records into the status file and the Prometheus metrics (as root, from
    /// mfiguard-collect.timer).
    #[arg(long, overrides_with = "collect", conflicts_with_all = ["check", "report"])]
    pub collect: bool,
    /// `--collect`: the state directory (default /var/lib/mfiguard).
    #[arg(long, value_name = "DIR", requires = "collect")]
    pub state_dir: Option<String>,
    /// `--collect`: node_exporter's textfile directory (default /var/lib/prometheus/node-exporter).
    #[arg(long, value_name = "DIR", requires = "collect")]
    pub textfile_dir: Option<String>,
    /// The Nagios plugin: taken only as the first argument, before this parser runs.
    #[arg(long, hide = true)]
    pub nagios_plugin: bool,
    /// The manual's summary.
    #[arg(short = 'h', long)]
    pub help: bool,
    /// The version.
    #[arg(short = 'V', long)]
    pub version: bool,
    /// TOOL and its arguments: everything from the first word that is not an option.
    #[arg(trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

/// Where the libraries of each class are.
#[derive(Clone, Debug)]
pub struct Libraries {
    /// `MFIGUARD_LIB_DIR` or /usr/lib/mfiguard.
    pub dir: PathBuf,
    /// `MFIGUARD_LIB32_DIR` or `dir`/i386.
    pub dir32: PathBuf,
}

/// The library's file name.
pub const LIB_NAME: &str = "libmfiguard.so";

impl Libraries {
    /// As a run would find them (for `--check`).
    pub fn from_env_for_check() -> Libraries {
        Libraries::from_env()
    }

    fn from_env() -> Libraries {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = var("MFIGUARD_LIB_DIR").unwrap_or_else(|| PathBuf::from("/usr/lib/mfiguard"));
        let dir32 = var("MFIGUARD_LIB32_DIR").unwrap_or_else(|| dir.join("i386"));
        Libraries { dir, dir32 }
    }

    /// The library for programs of `class` (32 or 64).
    pub fn path(&self, class: u8) -> PathBuf {
        if class == 32 {
            self.dir32.join(LIB_NAME)
        } else {
            self.dir.join(LIB_NAME)
        }
    }
}

/// What a run (or `--check`) works with.
pub struct Settings {
    /// The config file's path.
    pub config_path: String,
    /// What reading it gave.
    pub file: FileSource,
    /// Each setting's text and origin: options, else environment, else file.
    pub sources: Sources,
    /// What the library would make of them.
    pub config: Config,
    /// The options to pass to the library, as `MFIGUARD_*` variables (normalised values).
    pub exports: Vec<(&'static str, String)>,
    /// The libraries.
    pub libraries: Libraries,
    /// `--allow-unguarded`.
    pub allow_unguarded: bool,
    /// `--via`.
    pub via: crate::mechanism::Via,
    /// Who the run is judged for (see [`Settings::settle_for`]).
    pub subject: config::OwnedSubject,
}

impl Settings {
    /// Validates the options, reads the environment and the config file with the library's
    /// reader, and lays the options over them.
    pub fn new(cli: &Cli) -> Result<Settings, Error> {
        let mut exports: Vec<(&'static str, String)> = Vec::new();
        let mut options: Vec<(&'static str, String, &'static str)> = Vec::new();
        if let Some(m) = &cli.mode {
            let mode = config::parse_mode(m).ok_or_else(|| {
                Error::Usage(format!(
                    "--mode: '{m}' is not one of {}",
                    config::closest(m, &config::MODES).join(", ")
                ))
            })?;
            options.push(("MFIGUARD_MODE", mode.name().into(), "--mode"));
        }
        if let Some(l) = &cli.log {
            let target = config::parse_log(l)
                .ok()
                .filter(|_| l.trim() != "/")
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--log: '{l}' is not syslog, stderr, none or an absolute path"
                    ))
                })?;
            options.push(("MFIGUARD_LOG", target.describe().into(), "--log"));
        }
        if !cli.allow.is_empty() {
            let mut ids: Vec<&str> = Vec::new();
            for list in &cli.allow {
                let items: Vec<&str> = list.split(',').map(str::trim).collect();
                if items.iter().any(|i| i.is_empty()) {
                    return Err(Error::Usage(format!(
                        "--allow: '{list}' is not a comma-separated list of rule ids"
                    )));
                }
                let set = config::parse_allow(list)
                    .map_err(|why| Error::Usage(format!("--allow: {why}")))?;
                ids.extend(set_names(list, set));
            }
            options.push(("MFIGUARD_ALLOW", ids.join(","), "--allow"));
        }
        if cli.audit_all {
            options.push(("MFIGUARD_AUDIT", "all".into(), "--audit-all"));
        }

        let env = config::process_env();
        let (config_path, explicit) = match &cli.config {
            Some(p) => {
                if !p.starts_with('/') || p.len() < 2 {
                    return Err(Error::Usage(format!(
                        "--config: '{p}' is not an absolute path"
                    )));
                }
                (p.clone(), true)
            }
            None => config::config_path(&env),
        };
        let file = config::read_file(&config_path, explicit);
        if let (Some(p), FileSource::Unreadable { reason, .. }) = (&cli.config, &file) {
            return Err(Error::Usage(format!("--config: cannot read {p}: {reason}")));
        }
        if let Some(p) = &cli.config {
            exports.push(("MFIGUARD_CONFIG", p.clone()));
        }
        let mut sources = config::collect(&env, &file);
        for (key, value, option) in options {
            sources.set(key, value.clone(), Origin::Option(option));
            exports.push((key, value));
        }
        let config = config::decide(&sources, &config::device_lookup);
        let mut settings = Settings {
            config_path,
            file,
            sources,
            config,
            exports,
            libraries: Libraries::from_env(),
            allow_unguarded: cli.allow_unguarded && !cli.require_guard,
            via: match cli.via {
                Some(v) => v,
                None => via_from_env()?,
            },
            subject: config::OwnedSubject::default(),
        };
        settings.settle_for(None);
        Ok(settings)
    }

    /// Judges the run for who starts it: this process's user, groups, sudo user and login uid,
    /// with `tool` (a run's resolved path; `--check TOOL`'s) as the executable. Every call of
    /// the run is judged for that too, besides the caller's own identity (the supervisor).
    pub fn settle_for(&mut self, tool: Option<&std::path::Path>) {
        let exe = tool
            .map(|t| {
                std::fs::canonicalize(t)
                    .unwrap_or_else(|_| t.to_path_buf())
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        // The program the run is for, as the tool's processes will know it: the one a script
        // that runs the wrapper for itself named (MFIGUARD_RUN_TOOL), else TOOL.
        self.exports.retain(|(k, _)| *k != "MFIGUARD_RUN_TOOL");
        let me = config::OwnedSubject::this_process(exe);
        if me.run_tool.is_none() && !me.exe.is_empty() {
            self.exports.push(("MFIGUARD_RUN_TOOL", me.exe.clone()));
        }
        self.config.settle(&[me.subject()], Some(me.clone()));
        self.subject = me;
    }

    /// One line per setting the library could not use as given: a run is refused for them.
    pub fn refusals(&self) -> Vec<String> {
        self.config
            .errors
            .iter()
            .filter(|e| e.kind != ErrorKind::Note)
            .map(|e| crate::printable(&e.summary))
            .collect()
    }
}

/// `MFIGUARD_VIA`, else `auto`.
fn via_from_env() -> Result<crate::mechanism::Via, Error> {
    use clap::ValueEnum;
    match std::env::var("MFIGUARD_VIA") {
        Err(_) => Ok(crate::mechanism::Via::Auto),
        Ok(v) if v.trim().is_empty() => Ok(crate::mechanism::Via::Auto),
        Ok(v) => crate::mechanism::Via::from_str(v.trim(), true).map_err(|_| {
            Error::Usage(format!(
                "MFIGUARD_VIA: '{v}' is not auto, supervise, ptrace or preload"
            ))
        }),
    }
}

/// The ids of a parsed `--allow` list, in the order written (the set is in table order).
fn set_names(list: &str, set: mfiguard_sanitizer::RuleSet) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for item in list.split(',').map(|i| i.trim().to_ascii_lowercase()) {
        if let Some(r) = set.iter().find(|r| r.name() == item) {
            if !out.contains(&r.name()) {
                out.push(r.name());
            }
        }
    }
    out
}
