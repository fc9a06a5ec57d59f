//! What would guard a tool, and why: the one place that chooses the mechanism. Today there is
//! one, `LD_PRELOAD` of `libmfiguard.so` of the tool's ELF class; a tool it cannot reach (a
//! statically linked program, one the loader runs in secure mode) is unguarded.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::elf::Kind;
use crate::sys;

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
    /// No mechanism reaches the tool; it would run unguarded.
    Unguarded {
        /// The library the tool would still be given (the class of its program).
        class: u8,
        /// Why, as a clause (`/x is statically linked: LD_PRELOAD has no effect on it`).
        why: String,
    },
}

impl Mechanism {
    /// The ELF class of the library the wrapper preloads.
    pub fn class(&self) -> u8 {
        match self {
            Mechanism::Preload { class, .. } | Mechanism::Unguarded { class, .. } => *class,
        }
    }

    /// The `guard:` line of `--check TOOL`.
    pub fn check_line(&self) -> String {
        match self {
            Mechanism::Preload { why, .. } => format!("guard: preload ({why})"),
            Mechanism::Unguarded { why, .. } => format!("guard: none ({why})"),
        }
    }
}

/// Chooses the mechanism for the tool at `path`, described as `kind`.
pub fn choose(path: &Path, kind: &Kind) -> Mechanism {
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
