//! What would guard a tool, and why: the one place that chooses the mechanism.
//!
//! - the supervisor (`mfiguard_supervisor`): seccomp user notification, from outside the tool;
//!   guards whatever it runs (static, raw system calls, children with a clean environment);
//!   needs Linux 5.0 (`--via supervise`, and `--via auto` where the kernel has it);
//! - its ptrace fallback, the same from a tracer, for kernels without user notification
//!   (RHEL 7 and 8: `--via ptrace`, and `--via auto` there);
//! - the preload: `libmfiguard.so` of the tool's ELF class in `LD_PRELOAD`, then `execve`;
//!   reaches dynamically linked programs the loader runs normally (`--via preload`, and `auto`
//!   where there is no supervisor);
//! - none: a tool no mechanism reaches is refused (exit 125) unless `--allow-unguarded`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use mfiguard_core::audit::Guard;

use crate::elf::Kind;
use crate::sys;

/// `--via`: which mechanism the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// The supervisor where the kernel offers it, else the preload.
    Auto,
    /// The seccomp user-notification supervisor.
    Supervise,
    /// The ptrace supervisor (kernels without user notification).
    Ptrace,
    /// `LD_PRELOAD` of the library.
    Preload,
}

/// How a tool would be guarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// `libmfiguard.so` of this ELF class in `LD_PRELOAD`, then `execve` of the tool.
    Preload {
        /// 32 or 64: which library.
        class: u8,
        /// What the choice rests on, for `--check` (`dynamic 64-bit ELF, interpreter ...`).
        why: String,
    },
    /// The supervisor runs the tool as its child and executes its MegaRAID calls.
    Supervisor {
        /// What the choice rests on.
        why: String,
    },
    /// The ptrace supervisor: the same, as the tool's tracer.
    Ptrace {
        /// What the choice rests on.
        why: String,
    },
    /// No mechanism reaches the tool; it would run unguarded.
    Unguarded {
        /// The library the tool would still be given (the class of its program).
        class: u8,
        /// Why, as a clause (`/x is statically linked: LD_PRELOAD has no effect on it`).
        why: String,
    },
}

impl Mechanism {
    /// The ELF class of the library the wrapper would preload.
    pub fn class(&self) -> u8 {
        match self {
            Mechanism::Preload { class, .. } | Mechanism::Unguarded { class, .. } => *class,
            Mechanism::Supervisor { .. } | Mechanism::Ptrace { .. } => 64,
        }
    }

    /// Its name in `--check --json`: the name records give the guard, or `none`.
    pub fn name(&self) -> &'static str {
        self.guard().map_or("none", Guard::name)
    }

    /// What the choice rests on.
    pub fn reason(&self) -> &str {
        match self {
            Mechanism::Preload { why, .. }
            | Mechanism::Supervisor { why }
            | Mechanism::Ptrace { why }
            | Mechanism::Unguarded { why, .. } => why,
        }
    }

    /// The guard the records of its calls will name, if any.
    pub fn guard(&self) -> Option<Guard> {
        match self {
            Mechanism::Preload { .. } => Some(Guard::Preload),
            Mechanism::Supervisor { .. } => Some(Guard::Supervisor),
            Mechanism::Ptrace { .. } => Some(Guard::Ptrace),
            Mechanism::Unguarded { .. } => None,
        }
    }

    /// The `guard:` line of `--check TOOL`: the name records give the guard.
    pub fn check_line(&self) -> String {
        format!("guard: {} ({})", self.name(), self.reason())
    }
}

/// Whether this kernel knows seccomp user notification (`SECCOMP_GET_ACTION_AVAIL`: no fork;
/// a kernel that knows it and still refuses the install is found out when the tool starts,
/// and `--via auto` then falls back); `Err` says why not. `MFIGUARD_TEST_NO_USER_NOTIF=1`
/// makes it answer no (tests).
pub fn supervisor_available() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var_os("MFIGUARD_TEST_NO_USER_NOTIF").is_some() {
            return Err("no seccomp user notification (MFIGUARD_TEST_NO_USER_NOTIF)".into());
        }
        mfiguard_supervisor::probe().map_err(|e| {
            format!(
                "this kernel has no usable seccomp user notification ({}; Linux >= 5.0 needed, and no other listener on this process)",
                std::io::Error::from_raw_os_error(e)
            )
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Err("this mfiguard-run is not an x86_64 build: no supervisor".into())
    }
}

/// Whether this process runs under an `mfiguard-run` supervisor or tracer already.
pub fn already_guarded() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        mfiguard_supervisor::already_guarded()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the ptrace fallback's filter installs here (a real install in a forked child: only
/// asked where user notification is missing); `Err` says why not.
pub fn ptrace_available() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        mfiguard_supervisor::probe_ptrace().map_err(|e| {
            format!(
                "no seccomp filter can be installed ({})",
                std::io::Error::from_raw_os_error(e)
            )
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Err("this mfiguard-run is not an x86_64 build: no supervisor".into())
    }
}

/// Chooses the mechanism for the tool at `path`, described as `kind`, as `via` asks.
pub fn choose(path: &Path, kind: &Kind, via: Via) -> Mechanism {
    let class = kind.elf().map_or(64, |e| e.class);
    let unguarded = |why: String| Mechanism::Unguarded { class, why };
    match via {
        Via::Preload => preload(path, kind),
        // Asked for by name: whether its filter installs shows when the tool starts.
        Via::Ptrace => ptrace(kind),
        Via::Supervise => match supervisor_available() {
            Ok(()) => supervise(kind),
            Err(why) => unguarded(format!("--via supervise: {why}")),
        },
        Via::Auto => match supervisor_available() {
            Ok(()) => supervise(kind),
            Err(why) => match ptrace_available() {
                Ok(()) => Mechanism::Ptrace {
                    why: format!("{}; user notification: {why}", describe(kind)),
                },
                Err(pwhy) => match preload(path, kind) {
                    Mechanism::Unguarded { class, why: w } => Mechanism::Unguarded {
                        class,
                        why: format!("{w}; and no supervisor: {why}; no ptrace: {pwhy}"),
                    },
                    m => m,
                },
            },
        },
    }
}

fn describe(kind: &Kind) -> String {
    match kind {
        Kind::Elf(e) => format!(
            "{} {}-bit ELF",
            if e.interp.is_some() {
                "dynamic"
            } else {
                "static"
            },
            e.class
        ),
        Kind::Script { .. } => "script".into(),
        _ => "program".into(),
    }
}

fn ptrace(kind: &Kind) -> Mechanism {
    Mechanism::Ptrace {
        why: format!(
            "{}; a tracer: every MegaRAID call of it and its children, whatever their linkage",
            describe(kind)
        ),
    }
}

fn supervise(kind: &Kind) -> Mechanism {
    Mechanism::Supervisor {
        why: format!(
            "{}; seccomp user notification: every MegaRAID call of it and its children, whatever their linkage",
            describe(kind)
        ),
    }
}

fn preload(path: &Path, kind: &Kind) -> Mechanism {
    let class = kind.elf().map_or(64, |e| e.class);
    if let Kind::Elf(e) = kind {
        if e.interp.is_none() {
            return Mechanism::Unguarded {
                class,
                why: format!(
                    "{} is statically linked: LD_PRELOAD has no effect on it",
                    path.display()
                ),
            };
        }
    }
    if let Some(reason) = secure_exec(path) {
        return Mechanism::Unguarded {
            class,
            why: format!(
                "{} is {reason}: the loader ignores LD_PRELOAD for it",
                path.display()
            ),
        };
    }
    let why = match kind {
        Kind::Elf(e) => format!(
            "dynamic {}-bit ELF, interpreter {}",
            e.class,
            e.interp.as_deref().unwrap_or("?")
        ),
        Kind::Script {
            interp, elf: Some(e), ..
        } => format!(
            "script; interpreter {}: {} {}-bit ELF{}; the library reaches the dynamically linked programs it starts",
            interp.as_deref().map_or("?".into(), |p| p.display().to_string()),
            if e.interp.is_some() { "dynamic" } else { "static" },
            e.class,
            e.interp
                .as_deref()
                .map_or(String::new(), |i| format!(", interpreter {i}"))
        ),
        Kind::Script { .. } => {
            "script whose interpreter is not a readable ELF program: the 64-bit library".into()
        }
        Kind::Unreadable => "cannot read the file: the 64-bit library".into(),
        Kind::Other => {
            return Mechanism::Unguarded {
                class,
                why: "not an ELF program nor a #! script".into(),
            }
        }
    };
    Mechanism::Preload { class, why }
}

/// Why exec of `path` by this user switches the loader to secure mode (`AT_SECURE`), in which
/// `LD_PRELOAD` with a path is ignored: a setuid file of another user, a setgid file of
/// another group (from the file's mode and owner).
pub fn secure_exec(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.permissions().mode();
    let (uid, gid) = (sys::euid(), sys::egid());
    if mode & 0o4000 != 0 && meta.uid() != uid {
        return Some(format!(
            "setuid (owner uid {}, you are uid {uid})",
            meta.uid()
        ));
    }
    if mode & 0o2000 != 0 && meta.gid() != gid {
        return Some(format!(
            "setgid (group gid {}, yours is gid {gid})",
            meta.gid()
        ));
    }
    None
}

/// Whether the setuid or setgid bit is set at all.
pub fn set_id_bits(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o6000 != 0)
}
