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

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Duration;

    use clap::Parser;

    use mfiguard_core::config;
    use mfiguard_supervisor::hostd::{self, Coverage, Options, Status};

    /// Serves the MegaRAID management node as a CUSE device: every call on the host is guarded.
    #[derive(Parser, Debug)]
    #[command(name = "mfiguard-hostd", version, disable_help_subcommand = true)]
    struct Cli {
        /// Print whether the host-wide guard is active (exit 0) or not (exit 1), and exit.
        #[arg(long, conflicts_with = "restore_node")]
        status: bool,
        /// Put the driver's own node back at the path (after `systemctl disable --now
        /// mfiguard-hostd`), and exit.
        #[arg(long)]
        restore_node: bool,
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
        /// How often the node's path is checked, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 200,
              value_parser = clap::value_parser!(u64).range(10..=60_000))]
        watch_ms: u64,
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
            let st = Status::of(&cli.node);
            println!("host-wide guard: {}", st.describe(&cli.node));
            return if st.coverage() == Coverage::Active {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        if cli.restore_node {
            return match hostd::restore_driver_node(&cli.node) {
                Ok(done) => {
                    eprintln!("mfiguard-hostd: {done}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mfiguard-hostd: error: {e}");
                    ExitCode::FAILURE
                }
            };
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
            device: Some(hostd::DEVICE_NUMBER),
        };
        // The configuration lives as long as the daemon's threads: the process.
        let cfg: &'static config::Config = Box::leak(Box::new(cfg));
        let Err(e) = hostd::serve(cfg, &opts);
        eprintln!("mfiguard-hostd: error: {e}");
        ExitCode::FAILURE
    }
}
