//! `mfiguard-hostd`: the host-wide guard. Serves `/dev/megaraid_sas_ioctl_node` as a CUSE
//! device, so that every MegaRAID management call on the host goes through mfiguard, whichever
//! tool makes it and however it is started. See mfiguard-hostd(8).
//!
//! Exit status: 0 `--status` active / `--restore-node` done; 1 an error (the daemon could not
//! start or its channel closed; `--status` not active); 2 a usage error.

#![deny(unsafe_code)]

#[cfg(target_arch = "x86_64")]
fn main() -> std::process::ExitCode {
    imp::main()
}

/// The daemon serves 64-bit and 32-bit callers alike from a 64-bit build.
#[cfg(not(target_arch = "x86_64"))]
fn main() -> std::process::ExitCode {
    eprintln!("mfiguard-hostd: built for x86_64 only (it serves 32-bit tools too)");
    std::process::ExitCode::FAILURE
}

/// The state as JSON: the same code as `mfiguard-run --check --json`'s `hostd` object.
#[cfg(target_arch = "x86_64")]
#[path = "../hostd_state.rs"]
mod hostd_state;

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::time::Duration;

    use clap::Parser;

    use mfiguard_core::audit::{self, ErrorRecord, Record};
    use mfiguard_core::config;
    use mfiguard_supervisor::hostd::{self, lock, Coverage, Options, Status};

    use super::hostd_state;

    /// Serves the MegaRAID management node as a CUSE device: every call on the host is guarded.
    #[derive(Parser, Debug)]
    #[command(name = "mfiguard-hostd", version, disable_help_subcommand = true)]
    struct Cli {
        /// Print whether the host-wide guard is active (exit 0) or not (exit 1), the daemons
        /// that hold a device and the lock on the driver's device, and exit.
        #[arg(long, conflicts_with = "restore_node")]
        status: bool,
        /// With --status: one JSON object (mfiguard-hostd(8), JSON OUTPUT).
        #[arg(long, requires = "status")]
        json: bool,
        /// Put the driver's own node back at the path and remove the lock on the driver's
        /// device (after `systemctl disable --now mfiguard-hostd`), recorded, and exit.
        #[arg(long)]
        restore_node: bool,
        /// Do not lock the driver's device to this daemon.
        #[arg(long)]
        no_lock: bool,
        /// Answer a call ETIMEDOUT when the driver has not answered it after this many seconds
        /// (0: never, as the driver itself waits).
        #[arg(long, value_name = "SECS", default_value_t = hostd::COMMAND_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(0..=86_400))]
        command_timeout: u64,
        /// The node tools open; its file name is the CUSE device's name.
        #[arg(long, value_name = "PATH", default_value = hostd::NODE_PATH)]
        node: PathBuf,
        /// The root-only directory that holds the driver's private node.
        #[arg(long, value_name = "DIR", default_value = hostd::PRIVATE_DIR)]
        private_dir: PathBuf,
        /// The CUSE channel.
        #[arg(long, value_name = "PATH", default_value = hostd::CUSE_CHANNEL)]
        cuse: PathBuf,
        /// Workers started at once; more are started (up to 64) when calls arrive while every
        /// worker is busy, so that no call waits behind a slow firmware command.
        #[arg(long, value_name = "N", default_value_t = 8,
              value_parser = clap::value_parser!(u16).range(1..=256))]
        workers: u16,
        /// The CUSE device's number, MAJOR:MINOR (a restart while a daemon is stuck takes the
        /// next minors).
        #[arg(long, value_name = "MAJ:MIN", default_value = "120:28006", value_parser = device_number)]
        device_number: (u32, u32),
        /// How often the node's path is checked, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 200,
              value_parser = clap::value_parser!(u64).range(10..=60_000))]
        watch_ms: u64,
    }

    fn device_number(s: &str) -> Result<(u32, u32), String> {
        let (major, minor) = s.split_once(':').ok_or("MAJOR:MINOR")?;
        let number = |n: &str| n.parse::<u32>().map_err(|e| format!("{n:?}: {e}"));
        match (number(major)?, number(minor)?) {
            (0, _) => Err("major 0 would let the kernel choose".into()),
            (major, minor) if major < 4096 && minor < (1 << 20) => Ok((major, minor)),
            _ => Err("beyond the kernel's device numbers (major < 4096, minor < 1048576)".into()),
        }
    }

    pub fn main() -> ExitCode {
        let cli = match Cli::try_parse() {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
        };
        if cli.status {
            let st = Status::of(&cli.node, &cli.private_dir);
            let lock = lock::status(Path::new(lock::PIN_DIR), true);
            if cli.json {
                let mut v = hostd_state::to_json(&cli.node, &st, &lock);
                if let Some(o) = v.as_object_mut() {
                    o.insert("status_version".into(), 1.into());
                    o.insert("version".into(), env!("CARGO_PKG_VERSION").into());
                }
                println!("{v}");
            } else {
                println!("host-wide guard: {}", st.describe(&cli.node));
                println!("lock: {}: {}", lock.state.name(), lock.detail);
            }
            return if st.coverage() == Coverage::Active {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        if cli.restore_node {
            return restore(&cli);
        }
        // Rust's runtime ignores SIGPIPE: a record written to a stderr nobody reads fails with
        // EPIPE and does not end the daemon.
        // A panic anywhere ends the daemon at once: the kernel then fails every request it
        // held (a thread that unwound would leave its caller waiting for ever), and systemd
        // starts it again.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            std::process::abort();
        }));
        mfiguard_core::audit::set_build(concat!("mfiguard-hostd ", env!("CARGO_PKG_VERSION")));
        let cfg = config::load();
        let opts = Options {
            node: cli.node,
            private_dir: cli.private_dir,
            channel: cli.cuse,
            workers: usize::from(cli.workers),
            watch: Duration::from_millis(cli.watch_ms),
            device: Some(cli.device_number),
            command_timeout: (cli.command_timeout > 0)
                .then(|| Duration::from_secs(cli.command_timeout)),
            lock_dir: (!cli.no_lock).then(|| lock::PIN_DIR.into()),
        };
        // The configuration lives as long as the daemon's threads: the process.
        let cfg: &'static config::Config = Box::leak(Box::new(cfg));
        let Err(e) = hostd::serve(cfg, &opts);
        eprintln!("mfiguard-hostd: error: {e}");
        ExitCode::FAILURE
    }

    /// `--restore-node`: the driver's node back at the path, the lock removed; each said and
    /// recorded (`hostd.node`, `hostd.lock`), as turning the guard off should be.
    fn restore(cli: &Cli) -> ExitCode {
        mfiguard_core::audit::set_build(concat!("mfiguard-hostd ", env!("CARGO_PKG_VERSION")));
        let cfg = config::load();
        let record = |key: &'static str, value: &str, message: &str| {
            let rec = ErrorRecord {
                key,
                value,
                message,
                exe: &cfg.exe,
            };
            let _ = audit::emit(&cfg, false, Record::Error(&rec));
        };
        let node = cli.node.to_string_lossy();
        let serving = Status::of(&cli.node, &cli.private_dir).serving().is_some();
        // While a daemon serves, the lock stays too; else it goes first (the device program
        // refuses the mknod of the driver's node), even when the driver is not loaded (it
        // would be locked when loaded again).
        let unlocked = (!serving).then(|| lock::remove(Path::new(lock::PIN_DIR)));
        let restored = hostd::restore_driver_node(&cli.node, &cli.private_dir);
        let mut ok = true;
        match &restored {
            Ok(done) => {
                eprintln!("mfiguard-hostd: {done}");
                record("hostd.node", &node, done);
            }
            Err(e) => {
                eprintln!("mfiguard-hostd: error: {e}");
                ok = false;
            }
        }
        match unlocked {
            Some(Ok(done)) => {
                eprintln!("mfiguard-hostd: {done}");
                record("hostd.lock", lock::PIN_DIR, &done);
            }
            Some(Err(e)) => {
                eprintln!(
                    "mfiguard-hostd: error: the lock on the driver's device was not removed: {e}"
                );
                ok = false;
            }
            None => {}
        }
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
