//! What `/proc` says of a calling thread: the one reader of `/proc/TID/status` (its thread
//! group, real uid and gid, groups, effective capabilities), and the identity records give the
//! caller and policies match.

use mfiguard_core::audit::{Invoker, Who};
use mfiguard_core::guarded::Identity;

/// The fields of `/proc/TID/status` the guard uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `Tgid:`: the thread group (process) the thread belongs to.
    pub tgid: Option<libc::pid_t>,
    /// `Uid:`'s first field: the real uid.
    pub uid: Option<u32>,
    /// `Gid:`'s first field, then `Groups:`: the real gid and the supplementary groups.
    pub groups: Vec<u32>,
    /// `CapEff:`: the effective capabilities (hexadecimal in the file).
    pub cap_eff: Option<u64>,
}

impl Status {
    /// Thread `tid`'s, or `None` when it cannot be read (the thread is gone).
    pub fn of(tid: libc::pid_t) -> Option<Status> {
        let text = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
        Some(Status::parse(&text))
    }

    /// The fields of a status file's text.
    pub fn parse(text: &str) -> Status {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
        };
        let mut groups: Vec<u32> = field("Gid:")
            .and_then(|v| v.parse().ok())
            .into_iter()
            .collect();
        let listed = text
            .lines()
            .find_map(|l| l.strip_prefix("Groups:"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|g| g.parse().ok());
        for g in listed {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        Status {
            tgid: field("Tgid:").and_then(|v| v.parse().ok()),
            uid: field("Uid:").and_then(|v| v.parse().ok()),
            groups,
            cap_eff: field("CapEff:").and_then(|v| u64::from_str_radix(v, 16).ok()),
        }
    }
}

/// The thread group of thread `tid`, from `/proc`.
pub fn tgid(tid: libc::pid_t) -> Option<libc::pid_t> {
    Status::of(tid)?.tgid
}

/// Who the thread `tid` is, for records: its process (thread group), real uid, executable and
/// invoker. What cannot be read stays visible as such: the thread's own id, uid 4294967295,
/// exe `?`.
pub fn identity(tid: libc::pid_t) -> Identity {
    let mut id = kernel_identity(tid);
    id.invoker = Invoker::of_process(id.who.pid);
    id
}

/// [`identity`] without who invoked it: only what the kernel holds (`status`, the `exe` link),
/// never the process's memory (`environ`, `cmdline`), which its owner can make unreadable for
/// ever (a FUSE mapping whose server never answers): for whatever must not wait on a caller.
pub fn kernel_identity(tid: libc::pid_t) -> Identity {
    let status = Status::of(tid).unwrap_or_default();
    let pid = status.tgid.map_or(tid as u32, |t| t as u32);
    let uid = status.uid.unwrap_or(u32::MAX);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".into());
    Identity {
        who: Who { pid, uid },
        exe,
        invoker: Invoker::default(),
        groups: status.groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_file_gives_its_thread_group_real_uid_and_capabilities() {
        let text = "Name:\tstorcli64\nTgid:\t4242\nPid:\t4243\nUid:\t1000\t0\t0\t0\n\
                    Gid:\t1000\t1000\t1000\t1000\nGroups:\t4 27 1000 \n\
                    CapEff:\t000001ffffffffff\n";
        let s = Status::parse(text);
        assert_eq!(s.tgid, Some(4242));
        assert_eq!(s.uid, Some(1000));
        assert_eq!(s.groups, [1000, 4, 27]);
        assert_eq!(s.cap_eff, Some(0x1ff_ffff_ffff));
        assert_eq!(Status::parse("Name:\tx\n"), Status::default());
        // This test's own thread.
        let me = std::process::id() as libc::pid_t;
        assert_eq!(tgid(me), Some(me));
        let id = identity(me);
        assert_eq!(id.who.pid, std::process::id());
        assert!(id.exe.contains("mfiguard_supervisor"), "{}", id.exe);
    }
}
