//! The lock: only mfiguard-hostd may open the driver's character device, through whatever path
//! or node. Without it, any root process could `mknod` the driver's major anywhere and reach
//! the driver unguarded, and a tool that puts the driver's node back at the path would bypass
//! the daemon until the watcher noticed.
//!
//! Two mechanisms ([`ebpf`](crate::ebpf) has the programs), the first the kernel offers:
//!
//! 1. **`bpf-lsm`**: where `bpf` is an active LSM (`/sys/kernel/security/lsm`; Linux 5.7,
//!    `CONFIG_BPF_LSM`) and the kernel has BTF: programs on the `file_open` and `file_ioctl`
//!    hooks (and `file_ioctl_compat` where the kernel has it) refuse every open of a
//!    character device of the driver's major, and every ioctl on one opened elsewhere, with
//!    `EPERM`, except by the daemon's own process (its thread group id and start time). A
//!    program attached while the BPF LSM is not active would never run: after attaching, a
//!    child of the daemon opens a node of a test number, and only an `EPERM` keeps this
//!    mechanism.
//! 2. **`cgroup-device`**: else, on cgroup v2 (Linux 4.15; the hierarchy systemd mounts), a
//!    device program on the root cgroup, which runs for every process: an open or `mknod` of
//!    the driver's major is refused (`EPERM`) unless the caller is in the daemon's cgroup. The
//!    daemon keeps a cgroup of its own (systemd's unit cgroup, or `mfiguard-hostd` under the
//!    root when it shares one).
//!
//! Both read one map entry ([`LockValue`]): the driver's major and the daemon's identity. The
//! map and the programs are pinned in a bpf file system (`/sys/fs/bpf/mfiguard/`), so that
//! they outlive the daemon: while no daemon runs, nobody may open the driver (fail closed). A
//! daemon that starts finds them there and writes its own identity. Only
//! `mfiguard-hostd --restore-node` removes them (recorded).
//!
//! What a root attacker can still do is documented (doc/hostd.md): detach or unpin the
//! programs, move itself into the daemon's cgroup (`cgroup-device`), take the daemon's
//! descriptor with `pidfd_getfd` and use it (`cgroup-device` only: the LSM also checks ioctls).

use std::ffi::{c_int, CString};
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zerocopy::byteorder::native_endian::{U32, U64};

use crate::ebpf::btf::{kind, Btf, VMLINUX};
use crate::ebpf::sys::{self as bpf, ProgSpec};
use crate::ebpf::{self, LockValue, Offsets};
use crate::sys;

/// Where the lock is pinned by default.
pub const PIN_DIR: &str = "/sys/fs/bpf/mfiguard";

/// The map's pin, in the pin directory.
const MAP_PIN: &str = "lock";
/// The device program's pin.
const CGROUP_PIN: &str = "cgroup_device";
/// The LSM links' pins: `lsm_<hook>`.
const LSM_PIN_PREFIX: &str = "lsm_";

/// The number the daemon tries to open in a child to see that the LSM programs run: major 120
/// is reserved for local use and its minor 0 is none of the daemon's CUSE devices (28006 and
/// after), so that without a lock the open fails with `ENXIO`, with one with `EPERM`.
const PROBE_DEVICE: (u32, u32) = (120, 0);

/// Which program holds the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// The BPF LSM programs.
    BpfLsm,
    /// The cgroup v2 device program on the root cgroup.
    CgroupDevice,
}

impl Mechanism {
    /// Its name in `--status` and `--check`.
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::BpfLsm => "bpf-lsm",
            Mechanism::CgroupDevice => "cgroup-device",
        }
    }
}

/// The lock, as the daemon holds it: the map it writes.
pub struct Lock {
    /// Which program holds it.
    pub mechanism: Mechanism,
    map: OwnedFd,
    value: Mutex<LockValue>,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

impl Lock {
    /// Locks major `major` (0: nothing) to this daemon.
    pub fn set_major(&self, major: u32) -> Result<(), c_int> {
        let mut v = self.value.lock().unwrap_or_else(|e| e.into_inner());
        if v.major.get() == major {
            return Ok(());
        }
        v.major = U32::new(major);
        bpf::lock_map_update(self.map.as_fd(), &v)
    }

    /// The major locked now.
    pub fn major(&self) -> u32 {
        self.value
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .major
            .get()
    }
}

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| format!("{}: a NUL in the path", p.display()))
}

fn errno_text(e: c_int) -> String {
    io::Error::from_raw_os_error(e).to_string()
}

/// This daemon, as the programs know it: its thread group, its start and its cgroup.
fn identity(cgroup_id: u64) -> Result<LockValue, String> {
    let stat =
        fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    let start: u64 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|v| v.parse().ok())
        .ok_or("/proc/self/stat: no start time")?;
    Ok(LockValue {
        major: U32::new(0),
        flags: U32::new(0),
        cgroup_id: U64::new(cgroup_id),
        tgid: U64::new(u64::from(std::process::id())),
        start_ticks: U64::new(start),
    })
}

/// Nanoseconds a clock tick, as `/proc` counts start times.
fn tick_ns() -> i32 {
    let hz = crate::sys::clock_ticks();
    i32::try_from(1_000_000_000 / hz.max(1)).unwrap_or(10_000_000)
}

/// The mount point of the cgroup v2 hierarchy, from this process's mount table.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let table = fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let point = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(point))
    })
}

/// The active LSMs, when securityfs says (`None`: it is not mounted here).
pub fn active_lsms() -> Option<String> {
    fs::read_to_string("/sys/kernel/security/lsm")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// This process's cgroup v2 directory under `mount`, made its own: when it shares it with live
/// processes (or it is the root), it moves into `mfiguard-hostd` under the root first. Its
/// path and id.
fn own_cgroup(mount: &Path) -> Result<(PathBuf, u64), String> {
    let mine = |()| -> Option<PathBuf> {
        let text = fs::read_to_string("/proc/self/cgroup").ok()?;
        let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        Some(mount.join(rel.trim_start_matches('/')))
    };
    let me = std::process::id().to_string();
    let dir = mine(()).ok_or("no cgroup v2 line in /proc/self/cgroup")?;
    let alone = |dir: &Path| {
        fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|procs| {
            procs.lines().all(|p| {
                p == me
                    || fs::read_to_string(format!("/proc/{p}/stat"))
                        .ok()
                        .and_then(|s| super::instance::stat_state(&s))
                        .is_none_or(|c| c == 'Z' || c == 'X')
            })
        })
    };
    let dir = if dir != mount && alone(&dir) {
        dir
    } else {
        let own = mount.join("mfiguard-hostd");
        match fs::DirBuilder::new().mode(0o755).create(&own) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot make the cgroup {}: {e}", own.display())),
        }
        fs::write(own.join("cgroup.procs"), &me)
            .map_err(|e| format!("cannot move into the cgroup {}: {e}", own.display()))?;
        own
    };
    let id = bpf::cgroup_id(&cstr(&dir)?)
        .map_err(|e| format!("the id of cgroup {}: {}", dir.display(), errno_text(e)))?;
    Ok((dir, id))
}

/// The hooks to attach to, with their type ids in the kernel's BTF.
type Hooks = Vec<(&'static str, u32)>;

/// The offsets and hook ids the LSM programs need, from the kernel's BTF.
fn lsm_facts() -> Result<(Offsets, Hooks), String> {
    let bytes = fs::read(VMLINUX).map_err(|e| format!("{VMLINUX}: {e} (no kernel BTF)"))?;
    let btf = Btf::parse(&bytes).map_err(|e| format!("{VMLINUX}: {e}"))?;
    let off16 = |s: &str, m: &str| {
        btf.member_offset(s, m)
            .and_then(|o| i16::try_from(o).ok())
            .ok_or(format!("{s}.{m} not in the kernel's BTF"))
    };
    let off32 = |s: &str, m: &str| {
        btf.member_offset(s, m)
            .and_then(|o| i32::try_from(o).ok())
            .ok_or(format!("{s}.{m} not in the kernel's BTF"))
    };
    let o = Offsets {
        f_inode: off16("file", "f_inode")?,
        i_mode: off16("inode", "i_mode")?,
        i_rdev: off16("inode", "i_rdev")?,
        group_leader: off32("task_struct", "group_leader")?,
        start_boottime: off32("task_struct", "start_boottime")?,
    };
    let hooks: Vec<(&str, u32)> = ebpf::LSM_HOOKS
        .iter()
        .filter_map(|h| Some((*h, btf.id_of(kind::FUNC, &format!("bpf_lsm_{h}"))?)))
        .collect();
    if !hooks.iter().any(|(h, _)| *h == "file_open") {
        return Err("bpf_lsm_file_open not in the kernel's BTF (no BPF LSM)".into());
    }
    Ok((o, hooks))
}

/// Loads and attaches the LSM programs; their links.
fn attach_lsm(map: &OwnedFd) -> Result<Vec<(&'static str, OwnedFd)>, String> {
    let (offsets, hooks) = lsm_facts()?;
    let prog = ebpf::lsm(map.as_raw_fd(), offsets, tick_ns());
    let mut links = Vec::new();
    for (hook, id) in hooks {
        let spec = ProgSpec {
            prog_type: ebpf::BPF_PROG_TYPE_LSM,
            attach_type: ebpf::BPF_LSM_MAC,
            attach_btf_id: id,
        };
        let p = bpf::prog_load(spec, ebpf::NAME, &prog)
            .map_err(|(e, log)| format!("loading the {hook} program: {} ({log})", errno_text(e)))?;
        let link = bpf::lsm_attach(p.as_fd())
            .map_err(|e| format!("attaching the {hook} program: {}", errno_text(e)))?;
        links.push((hook, link));
    }
    Ok(links)
}

/// Whether the LSM programs run: a child of this process (another process) opens a node of
/// [`PROBE_DEVICE`] locked to this one; `EPERM` says they do, `ENXIO` (no such device) that
/// the open went on to the driver.
fn lsm_refuses(map: &OwnedFd, me: &LockValue, private_dir: &Path) -> Result<(), String> {
    let node = private_dir.join("lock-probe");
    let c = cstr(&node)?;
    let _ = fs::remove_file(&node);
    sys::mknod_char(&c, 0o600, libc::makedev(PROBE_DEVICE.0, PROBE_DEVICE.1))
        .map_err(|e| format!("{}: {}", node.display(), errno_text(e)))?;
    let probe = LockValue {
        major: U32::new(PROBE_DEVICE.0),
        ..*me
    };
    let seen = bpf::lock_map_update(map.as_fd(), &probe)
        .map_err(errno_text)
        .and_then(|()| bpf::open_in_child(&c).map_err(errno_text));
    let _ = bpf::lock_map_update(map.as_fd(), me);
    let _ = fs::remove_file(&node);
    match seen? {
        libc::EPERM => Ok(()),
        0 | libc::ENXIO => Err(format!(
            "the programs are attached but do not run: bpf is not an active LSM ({})",
            active_lsms().unwrap_or_else(|| "securityfs not mounted".into())
        )),
        e => Err(format!("probing it: {}", errno_text(e))),
    }
}

/// Loads the device program and attaches it to the root cgroup; the program.
fn attach_cgroup(map: &OwnedFd, root: &Path) -> Result<OwnedFd, String> {
    let prog = ebpf::cgroup_device(map.as_raw_fd());
    let spec = ProgSpec {
        prog_type: ebpf::BPF_PROG_TYPE_CGROUP_DEVICE,
        attach_type: ebpf::BPF_CGROUP_DEVICE,
        attach_btf_id: 0,
    };
    let p = bpf::prog_load(spec, ebpf::NAME, &prog)
        .map_err(|(e, log)| format!("loading the device program: {} ({log})", errno_text(e)))?;
    let dir = crate::sys::open(&cstr(root)?, libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| format!("{}: {}", root.display(), errno_text(e)))?;
    bpf::prog_attach(
        dir.as_fd(),
        p.as_fd(),
        ebpf::BPF_CGROUP_DEVICE,
        ebpf::BPF_F_ALLOW_MULTI,
    )
    .map_err(|e| {
        format!(
            "attaching the device program to {}: {}",
            root.display(),
            errno_text(e)
        )
    })?;
    Ok(p)
}

fn pin(dir: &Path, name: &str, fd: &OwnedFd) -> Result<(), String> {
    let path = dir.join(name);
    let _ = fs::remove_file(&path);
    bpf::obj_pin(fd.as_fd(), &cstr(&path)?)
        .map_err(|e| format!("pinning {}: {}", path.display(), errno_text(e)))
}

fn pinned(dir: &Path, name: &str) -> Option<OwnedFd> {
    bpf::obj_get(&cstr(&dir.join(name)).ok()?).ok()
}

/// The LSM link pins there are.
fn lsm_pins(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(LSM_PIN_PREFIX))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// At the daemon's start: takes the lock an earlier daemon left (its map gets this daemon's
/// identity), or installs one; `major` is the driver's when it is loaded (else 0: locked once
/// it is). Err says why there is none.
pub fn take(pin_dir: &Path, private_dir: &Path, major: u32) -> Result<Lock, String> {
    let cgroup = cgroup2_mount();
    let mut me = identity(0)?;
    me.major = U32::new(major);
    // The device program knows the daemon by its cgroup, one of its own (it may move there):
    // taken only when that program holds the lock, or will.
    let with_cgroup = |mut me: LockValue| {
        if let Some(m) = &cgroup {
            me.cgroup_id = U64::new(own_cgroup(m).map(|(_, id)| id).unwrap_or(0));
        }
        me
    };
    if let Some(map) = pinned(pin_dir, MAP_PIN) {
        let mechanism = if !lsm_pins(pin_dir).is_empty() {
            Mechanism::BpfLsm
        } else if let (Some(p), Some(root)) = (pinned(pin_dir, CGROUP_PIN), &cgroup) {
            me = with_cgroup(me);
            // Attached still? (Someone may have detached it.)
            let id = bpf::prog_id(p.as_fd()).map_err(errno_text)?;
            let dir = crate::sys::open(&cstr(root)?, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(errno_text)?;
            let on = bpf::prog_query(dir.as_fd(), ebpf::BPF_CGROUP_DEVICE).map_err(errno_text)?;
            if !on.contains(&id) {
                bpf::prog_attach(
                    dir.as_fd(),
                    p.as_fd(),
                    ebpf::BPF_CGROUP_DEVICE,
                    ebpf::BPF_F_ALLOW_MULTI,
                )
                .map_err(errno_text)?;
            }
            Mechanism::CgroupDevice
        } else {
            return install(pin_dir, private_dir, me, cgroup.as_deref(), with_cgroup);
        };
        if mechanism == Mechanism::CgroupDevice && me.cgroup_id.get() == 0 {
            return Err(
                "the lock is a cgroup device program, but this daemon has no cgroup of its own"
                    .into(),
            );
        }
        bpf::lock_map_update(map.as_fd(), &me)
            .map_err(|e| format!("taking the lock: {}", errno_text(e)))?;
        return Ok(Lock {
            mechanism,
            map,
            value: Mutex::new(me),
        });
    }
    install(pin_dir, private_dir, me, cgroup.as_deref(), with_cgroup)
}

/// Installs the lock: the first mechanism the kernel offers, pinned in `pin_dir`. `with_cgroup`
/// adds this daemon's own cgroup to its identity, for the device program.
fn install(
    pin_dir: &Path,
    private_dir: &Path,
    mut me: LockValue,
    cgroup: Option<&Path>,
    with_cgroup: impl FnOnce(LockValue) -> LockValue,
) -> Result<Lock, String> {
    let parent = pin_dir.parent().unwrap_or(Path::new("/"));
    match bpf::fs_type(&cstr(parent)?) {
        Ok(bpf::BPF_FS_MAGIC) => {}
        Ok(_) | Err(_) => {
            return Err(format!(
                "no bpf file system at {} to pin it in (mount -t bpf bpf {})",
                parent.display(),
                parent.display()
            ))
        }
    }
    match fs::DirBuilder::new().mode(0o700).create(pin_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("{}: {e}", pin_dir.display())),
    }
    let map = bpf::lock_map_create(ebpf::NAME)
        .map_err(|e| format!("creating its map: {}", errno_text(e)))?;
    bpf::lock_map_update(map.as_fd(), &me).map_err(errno_text)?;
    let lsm_why = match active_lsms() {
        Some(list) if !list.split(',').any(|l| l == "bpf") => {
            Err(format!("bpf is not an active LSM ({list})"))
        }
        _ => attach_lsm(&map).and_then(|links| {
            lsm_refuses(&map, &me, private_dir)?;
            for (hook, link) in &links {
                pin(pin_dir, &format!("{LSM_PIN_PREFIX}{hook}"), link)?;
            }
            Ok(())
        }),
    };
    let mechanism = match lsm_why {
        Ok(()) => Mechanism::BpfLsm,
        Err(lsm_why) => {
            let root = cgroup.ok_or_else(|| {
                format!("no BPF LSM ({lsm_why}) and no cgroup v2 hierarchy mounted (legacy cgroup v1 only)")
            })?;
            me = with_cgroup(me);
            bpf::lock_map_update(map.as_fd(), &me).map_err(errno_text)?;
            if me.cgroup_id.get() == 0 {
                return Err(format!(
                    "no BPF LSM ({lsm_why}), and this daemon could not take a cgroup v2 of its own"
                ));
            }
            let p =
                attach_cgroup(&map, root).map_err(|e| format!("no BPF LSM ({lsm_why}); {e}"))?;
            pin(pin_dir, CGROUP_PIN, &p)?;
            Mechanism::CgroupDevice
        }
    };
    pin(pin_dir, MAP_PIN, &map)?;
    Ok(Lock {
        mechanism,
        map,
        value: Mutex::new(me),
    })
}

/// What is locked, as `--status` and `--check` report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockStatus {
    /// Which program holds the lock, if one does.
    pub mechanism: Option<Mechanism>,
    /// Whether it holds the driver now.
    pub state: LockState,
    /// The locked major (0: none yet).
    pub major: u32,
    /// The thread group allowed (LSM) and the cgroup id allowed (device program).
    pub allowed: Option<(u64, u64)>,
    /// One line for people.
    pub detail: String,
    /// What a test open by this process (not the daemon) got, when one was made.
    pub probe: Option<Probe>,
}

/// Whether the lock holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// A program refuses the driver's major to all but the daemon.
    Active,
    /// Pinned, but nothing is locked yet (the driver was not loaded when the daemon started).
    Idle,
    /// No lock.
    None,
    /// Its pins cannot be read by this user (run as root).
    Unknown,
}

impl LockState {
    /// Its name in `--status --json`.
    pub const fn name(self) -> &'static str {
        match self {
            LockState::Active => "active",
            LockState::Idle => "idle",
            LockState::None => "none",
            LockState::Unknown => "unknown",
        }
    }
}

/// What a test open of the locked device by a process other than the daemon got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Refused (`EPERM`), at `mknod` or at open: the lock holds.
    Refused,
    /// Opened: the lock does NOT hold.
    Opened,
    /// Another errno.
    Failed(c_int),
}

impl Probe {
    /// Its name in `--status --json`.
    pub fn name(self) -> String {
        match self {
            Probe::Refused => "refused".into(),
            Probe::Opened => "opened".into(),
            Probe::Failed(e) => format!("failed: {}", mfiguard_sanitizer::Errno(e).name()),
        }
    }
}

/// Opens (a fresh node of) `major`:0 as this process: what the lock does to anyone but the
/// daemon. The node is made in a private temporary directory and removed.
fn probe(major: u32) -> Probe {
    let dir = std::env::temp_dir().join(format!("mfiguard-lock-probe.{}", std::process::id()));
    let _ = fs::DirBuilder::new().mode(0o700).create(&dir);
    let node = dir.join("node");
    let Ok(c) = cstr(&node) else {
        return Probe::Failed(libc::EINVAL);
    };
    let _ = fs::remove_file(&node);
    let out = match sys::mknod_char(&c, 0o600, libc::makedev(major, 0)) {
        Err(libc::EPERM) => Probe::Refused,
        Err(e) => Probe::Failed(e),
        Ok(()) => match crate::sys::open(&c, libc::O_RDONLY) {
            Ok(_) => Probe::Opened,
            Err(libc::EPERM) => Probe::Refused,
            Err(e) => Probe::Failed(e),
        },
    };
    let _ = fs::remove_file(&node);
    let _ = fs::remove_dir(&dir);
    out
}

/// The lock as pinned in `pin_dir`; with `test`, and as root, a test open of the locked device
/// by this process (see [`probe`]).
pub fn status(pin_dir: &Path, test: bool) -> LockStatus {
    let none = |detail: String| LockStatus {
        mechanism: None,
        state: LockState::None,
        major: 0,
        allowed: None,
        detail,
        probe: None,
    };
    match fs::read_dir(pin_dir) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return LockStatus {
                state: LockState::Unknown,
                ..none(format!(
                    "{}: not readable by this user (run as root)",
                    pin_dir.display()
                ))
            }
        }
        Err(_) => {
            return none(format!(
                "no lock pinned in {}: {}",
                pin_dir.display(),
                offered()
            ))
        }
        Ok(_) => {}
    }
    let Some(map) = pinned(pin_dir, MAP_PIN) else {
        return none(format!(
            "no lock map pinned in {}: {}",
            pin_dir.display(),
            offered()
        ));
    };
    let Ok(v) = bpf::lock_map_lookup(map.as_fd()) else {
        return none("its map cannot be read".into());
    };
    let lsm = !lsm_pins(pin_dir).is_empty();
    let mechanism = if lsm {
        Some(Mechanism::BpfLsm)
    } else if let Some(p) = pinned(pin_dir, CGROUP_PIN) {
        let attached = cgroup2_mount()
            .and_then(|root| {
                crate::sys::open(&cstr(&root).ok()?, libc::O_RDONLY | libc::O_DIRECTORY).ok()
            })
            .and_then(|dir| bpf::prog_query(dir.as_fd(), ebpf::BPF_CGROUP_DEVICE).ok())
            .zip(bpf::prog_id(p.as_fd()).ok())
            .is_some_and(|(on, id)| on.contains(&id));
        if !attached {
            return none("its device program is pinned but not attached to the root cgroup (detached by hand?)".into());
        }
        Some(Mechanism::CgroupDevice)
    } else {
        return none("its map is pinned, but no program".into());
    };
    let major = v.major.get();
    let allowed = Some((v.tgid.get(), v.cgroup_id.get()));
    let who = match mechanism {
        Some(Mechanism::BpfLsm) => {
            let tgid = v.tgid.get();
            // The same process still runs when its start time is the one locked.
            let runs = fs::read_to_string(format!("/proc/{tgid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(19)?
                        .parse()
                        .ok()
                })
                == Some(v.start_ticks.get());
            if runs {
                format!("process {tgid}")
            } else {
                format!("process {tgid}, which no longer runs: nobody may open it")
            }
        }
        _ => format!("cgroup {}", v.cgroup_id.get()),
    };
    let name = mechanism.map_or("", Mechanism::name);
    if major == 0 {
        return LockStatus {
            mechanism,
            state: LockState::Idle,
            major,
            allowed,
            detail: format!("{name}: pinned, nothing locked yet (the driver was not loaded when mfiguard-hostd last started)"),
            probe: None,
        };
    }
    // A test open needs root (the node is root's), and is not made by the daemon itself.
    let probe = (test && crate::sys::euid() == 0).then(|| probe(major));
    let said = match probe {
        Some(Probe::Refused) => "; a test open by another process was refused",
        Some(Probe::Opened) => "; a test open by another process SUCCEEDED: the lock does not hold",
        _ => "",
    };
    LockStatus {
        mechanism,
        state: if probe == Some(Probe::Opened) {
            LockState::None
        } else {
            LockState::Active
        },
        major,
        allowed,
        detail: format!("{name}: char major {major} may be opened only by {who}{said}"),
        probe,
    }
}

/// What this kernel offers for a lock, for a status that has none.
pub fn offered() -> String {
    let lsm = match active_lsms() {
        Some(l) if l.split(',').any(|x| x == "bpf") => "bpf is an active LSM".to_string(),
        Some(l) => format!("bpf is not an active LSM ({l})"),
        None => "the active LSMs are unknown (securityfs not mounted)".to_string(),
    };
    let cg = match cgroup2_mount() {
        Some(m) => format!("cgroup v2 at {}", m.display()),
        None => "no cgroup v2 hierarchy".to_string(),
    };
    format!("mfiguard-hostd locks the driver when it starts; this kernel offers: {lsm}, {cg}")
}

/// Removes the lock (`--restore-node`): the device program detached, every pin removed; what
/// was removed.
pub fn remove(pin_dir: &Path) -> Result<String, String> {
    if !pin_dir.exists() {
        return Ok(format!("no lock was pinned in {}", pin_dir.display()));
    }
    let mut what = Vec::new();
    if let Some(p) = pinned(pin_dir, CGROUP_PIN) {
        if let Some(root) = cgroup2_mount() {
            let dir = crate::sys::open(&cstr(&root)?, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| format!("{}: {}", root.display(), errno_text(e)))?;
            match bpf::prog_detach(dir.as_fd(), p.as_fd(), ebpf::BPF_CGROUP_DEVICE) {
                Ok(()) | Err(libc::ENOENT) => {}
                Err(e) => return Err(format!("detaching the device program: {}", errno_text(e))),
            }
        }
        what.push(Mechanism::CgroupDevice.name());
    }
    let lsm = lsm_pins(pin_dir);
    if !lsm.is_empty() {
        what.push(Mechanism::BpfLsm.name());
    }
    // An LSM link is detached when its pin, its last reference, goes.
    for p in lsm {
        fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    for name in [CGROUP_PIN, MAP_PIN] {
        match fs::remove_file(pin_dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", pin_dir.join(name).display())),
        }
    }
    let _ = fs::remove_dir(pin_dir);
    Ok(if what.is_empty() {
        format!("the lock's map in {} was removed", pin_dir.display())
    } else {
        format!(
            "the lock on the driver's device ({}) was removed: any root process may open it again",
            what.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock map, for a test that needs root to make one (`None`, said, when not root).
    fn root_map() -> Option<OwnedFd> {
        if crate::sys::euid() != 0 {
            eprintln!("note: not root: skipped");
            return None;
        }
        Some(bpf::lock_map_create("mfiguard_test").unwrap())
    }

    /// Both programs pass this kernel's verifier (the LSM ones where the kernel has the BPF LSM
    /// hooks); loading attaches nothing.
    #[test]
    fn the_programs_pass_this_kernels_verifier() {
        let Some(map) = root_map() else {
            return;
        };
        let spec = ProgSpec {
            prog_type: ebpf::BPF_PROG_TYPE_CGROUP_DEVICE,
            attach_type: ebpf::BPF_CGROUP_DEVICE,
            attach_btf_id: 0,
        };
        bpf::prog_load(spec, ebpf::NAME, &ebpf::cgroup_device(map.as_raw_fd()))
            .unwrap_or_else(|(e, log)| panic!("{}: {log}", errno_text(e)));
        let (offsets, hooks) = match lsm_facts() {
            Ok(f) => f,
            Err(why) => {
                eprintln!("note: no LSM programs here: {why}");
                return;
            }
        };
        for (hook, id) in hooks {
            let spec = ProgSpec {
                prog_type: ebpf::BPF_PROG_TYPE_LSM,
                attach_type: ebpf::BPF_LSM_MAC,
                attach_btf_id: id,
            };
            match bpf::prog_load(
                spec,
                ebpf::NAME,
                &ebpf::lsm(map.as_raw_fd(), offsets, tick_ns()),
            ) {
                Ok(_) => {}
                // Refused before the verifier ran (no log): this machine does not let even
                // root load tracing programs; the kernel lane loads them.
                Err((libc::EPERM, log)) if log.is_empty() => {
                    eprintln!("note: {hook}: loading LSM programs is not permitted here: skipped");
                    return;
                }
                Err((e, log)) => panic!("{hook}: {}: {log}", errno_text(e)),
            }
        }
    }

    /// The device program, attached to a cgroup of the test's own (never the root: this is a
    /// shared machine), refuses a child in that cgroup `/dev/null` (char 1:3) when the map
    /// locks major 1 to another cgroup, and lets it through when the map names the child's
    /// cgroup, or locks another major.
    #[test]
    fn the_device_program_refuses_all_but_the_allowed_cgroup() {
        let Some(map) = root_map() else {
            return;
        };
        let Some(mount) = cgroup2_mount() else {
            eprintln!("note: no cgroup v2 here: skipped");
            return;
        };
        let dir = mount.join(format!("mfiguard-test-{}", std::process::id()));
        if let Err(e) = fs::create_dir(&dir) {
            eprintln!("note: cannot make {}: {e}: skipped", dir.display());
            return;
        }
        let spec = ProgSpec {
            prog_type: ebpf::BPF_PROG_TYPE_CGROUP_DEVICE,
            attach_type: ebpf::BPF_CGROUP_DEVICE,
            attach_btf_id: 0,
        };
        let prog = bpf::prog_load(spec, ebpf::NAME, &ebpf::cgroup_device(map.as_raw_fd()))
            .unwrap_or_else(|(e, log)| panic!("{}: {log}", errno_text(e)));
        let cg =
            crate::sys::open(&cstr(&dir).unwrap(), libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        bpf::prog_attach(
            cg.as_fd(),
            prog.as_fd(),
            ebpf::BPF_CGROUP_DEVICE,
            ebpf::BPF_F_ALLOW_MULTI,
        )
        .unwrap();
        let id = bpf::cgroup_id(&cstr(&dir).unwrap()).unwrap();
        let procs = cstr(&dir.join("cgroup.procs")).unwrap();
        let null = CString::new("/dev/null").unwrap();
        let set = |major: u32, cgroup_id: u64| {
            let v = LockValue {
                major: U32::new(major),
                cgroup_id: U64::new(cgroup_id),
                ..LockValue::default()
            };
            bpf::lock_map_update(map.as_fd(), &v).unwrap();
            assert_eq!(bpf::lock_map_lookup(map.as_fd()).unwrap(), v);
        };
        set(1, id + 1);
        let refused = bpf::open_in_child_in_cgroup(&procs, &null);
        set(1, id);
        let allowed = bpf::open_in_child_in_cgroup(&procs, &null);
        set(5, id + 1);
        let other = bpf::open_in_child_in_cgroup(&procs, &null);
        set(0, id + 1);
        let nothing = bpf::open_in_child_in_cgroup(&procs, &null);
        let attached = bpf::prog_query(cg.as_fd(), ebpf::BPF_CGROUP_DEVICE).unwrap();
        let _ = bpf::prog_detach(cg.as_fd(), prog.as_fd(), ebpf::BPF_CGROUP_DEVICE);
        let _ = fs::remove_dir(&dir);
        assert_eq!(attached, vec![bpf::prog_id(prog.as_fd()).unwrap()]);
        assert_eq!(refused, Ok(libc::EPERM), "another cgroup, the locked major");
        assert_eq!(allowed, Ok(0), "the allowed cgroup");
        assert_eq!(other, Ok(0), "another major");
        assert_eq!(nothing, Ok(0), "nothing locked");
    }

    /// Where this kernel runs the BPF LSM, the programs refuse a child of this process a device
    /// of the locked major, and this process passes; where it does not, the probe says so
    /// (the daemon then uses the device program). The probe's number, 120:0, is no device's.
    #[test]
    fn the_lsm_programs_refuse_another_process_where_the_bpf_lsm_runs() {
        let Some(map) = root_map() else {
            return;
        };
        let links = match attach_lsm(&map) {
            Ok(l) => l,
            Err(why) => {
                eprintln!("note: no LSM programs here: {why}");
                return;
            }
        };
        let dir = std::env::temp_dir().join(format!("mfiguard-lsm-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let me = identity(0).unwrap();
        let probe = lsm_refuses(&map, &me, &dir);
        // This process itself, the one allowed: the open goes on to the (absent) driver.
        let node = dir.join("own");
        let c = cstr(&node).unwrap();
        sys::mknod_char(&c, 0o600, libc::makedev(PROBE_DEVICE.0, PROBE_DEVICE.1)).unwrap();
        bpf::lock_map_update(
            map.as_fd(),
            &LockValue {
                major: U32::new(PROBE_DEVICE.0),
                ..me
            },
        )
        .unwrap();
        let own = crate::sys::open(&c, libc::O_RDONLY).err();
        drop(links);
        let _ = fs::remove_dir_all(&dir);
        match probe {
            Ok(()) => assert_eq!(own, Some(libc::ENXIO), "the allowed process is not refused"),
            Err(why) => {
                assert!(why.contains("do not run"), "{why}");
                eprintln!("note: the BPF LSM does not run here: {why}");
            }
        }
    }
}
