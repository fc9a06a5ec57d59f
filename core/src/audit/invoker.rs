//! Who ran the tool: sudo's variables, the login uid, the command line.

use crate::sys::Published;

/// Longest `argv` kept for records, in bytes (the arguments' own bytes, without separators).
pub const ARGV_MAX: usize = 256;
/// Longest `sudo_user` kept (user names are at most 32 bytes on Linux).
pub const SUDO_USER_MAX: usize = 64;

/// Who started the tool, for records. Read once per process, outside a signal handler, and
/// kept: a child forked without exec is the same invocation; one that execs reads its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invoker {
    /// `SUDO_USER`, when the environment has it (sudo sets it; anyone can, so it is a claim
    /// that the login uid can confirm), at most [`SUDO_USER_MAX`] bytes.
    pub sudo_user: Option<String>,
    /// `SUDO_UID`, when it is a number.
    pub sudo_uid: Option<u32>,
    /// `/proc/self/loginuid`: the uid the session logged in as, kept by the kernel across
    /// su and sudo; `None` when unset (4294967295: daemons, containers) or unreadable.
    pub login_uid: Option<u32>,
    /// `/proc/self/cmdline`, at most [`ARGV_MAX`] bytes of arguments in all: the argument that
    /// crosses the bound is cut (at a character boundary) and the rest dropped.
    pub argv: Vec<String>,
    /// Whether `argv` was cut.
    pub argv_truncated: bool,
    /// `MFIGUARD_RUN_TOOL`: the program the run was started for (set by `mfiguard-run`, or by
    /// a script that runs it for itself), matched by the policy's `[tool ...]` sections; not
    /// recorded. At most [`EXE_MAX`](crate::config::EXE_MAX) bytes.
    pub run_tool: Option<String>,
}

/// Cuts `s` to at most `max` bytes, at a character boundary; whether it cut.
fn cut_to(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at = at.saturating_sub(1);
    }
    s.truncate(at);
    true
}

impl Invoker {
    /// From its sources: the `SUDO_USER` and `SUDO_UID` values, `/proc/self/loginuid`'s
    /// content and `/proc/self/cmdline`'s (NUL-terminated arguments).
    pub fn from_parts(
        sudo_user: Option<&[u8]>,
        sudo_uid: Option<&[u8]>,
        loginuid: Option<&[u8]>,
        cmdline: &[u8],
    ) -> Invoker {
        let number = |b: &[u8]| -> Option<u32> { std::str::from_utf8(b).ok()?.trim().parse().ok() };
        let sudo_user = sudo_user.filter(|u| !u.is_empty()).map(|u| {
            let mut u = String::from_utf8_lossy(u).into_owned();
            cut_to(&mut u, SUDO_USER_MAX);
            u
        });
        let mut argv = Vec::new();
        let mut left = ARGV_MAX;
        let mut argv_truncated = false;
        let args = cmdline.strip_suffix(b"\0").unwrap_or(cmdline);
        if !args.is_empty() {
            for arg in args.split(|&b| b == 0) {
                let mut a = String::from_utf8_lossy(arg).into_owned();
                if cut_to(&mut a, left) {
                    argv_truncated = true;
                    argv.push(a);
                    break;
                }
                left = left.saturating_sub(a.len());
                argv.push(a);
            }
        }
        Invoker {
            sudo_user,
            sudo_uid: sudo_uid.and_then(number),
            // The kernel's "unset" is (uid_t)-1.
            login_uid: loginuid.and_then(number).filter(|&u| u != u32::MAX),
            argv,
            argv_truncated,
            run_tool: None,
        }
    }

    /// With the program the run was started for, from `MFIGUARD_RUN_TOOL`'s value.
    fn with_run_tool(mut self, value: Option<&[u8]>) -> Invoker {
        self.run_tool = value.filter(|v| !v.is_empty()).map(|v| {
            let mut t = String::from_utf8_lossy(v).into_owned();
            cut_to(&mut t, crate::config::EXE_MAX);
            t
        });
        self
    }

    /// This process's. Allocates: never from the nested path.
    pub fn read() -> Invoker {
        use std::os::unix::ffi::OsStrExt;
        let env = |k: &str| std::env::var_os(k);
        let (user, uid) = (env("SUDO_USER"), env("SUDO_UID"));
        let loginuid = std::fs::read("/proc/self/loginuid").ok();
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
        let run_tool = env("MFIGUARD_RUN_TOOL");
        Invoker::from_parts(
            user.as_deref().map(|u| u.as_bytes()),
            uid.as_deref().map(|u| u.as_bytes()),
            loginuid.as_deref(),
            &cmdline,
        )
        .with_run_tool(run_tool.as_deref().map(|t| t.as_bytes()))
    }

    /// Another process's, from `/proc/PID/` (the supervisor's tool): its environment's
    /// `SUDO_USER`/`SUDO_UID` and `MFIGUARD_RUN_TOOL` as it started, its login uid, its
    /// command line.
    pub fn of_process(pid: u32) -> Invoker {
        let read = |f: &str| std::fs::read(format!("/proc/{pid}/{f}")).ok();
        let environ = read("environ").unwrap_or_default();
        let var = |k: &[u8]| {
            environ
                .split(|&b| b == 0)
                .find_map(|kv| kv.strip_prefix(k).and_then(|rest| rest.strip_prefix(b"=")))
        };
        let loginuid = read("loginuid");
        let cmdline = read("cmdline").unwrap_or_default();
        Invoker::from_parts(
            var(b"SUDO_USER"),
            var(b"SUDO_UID"),
            loginuid.as_deref(),
            &cmdline,
        )
        .with_run_tool(var(b"MFIGUARD_RUN_TOOL"))
    }
}

/// This process's [`Invoker`], once read (fork-safe: see `sys::Published`).
static INVOKER: Published<Invoker> = Published::new();

/// This process's [`Invoker`], read on the first call (allocates: not from the nested path).
pub fn invoker() -> &'static Invoker {
    INVOKER.get_or_init(Invoker::read)
}

/// This process's [`Invoker`] if it was read; never waits, never allocates.
pub fn invoker_if_read() -> Option<&'static Invoker> {
    INVOKER.get()
}
