use super::*;
use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::fs;

use mfiguard_core::audit;
use mfiguard_core::config::Config;
use mfiguard_core::guarded::{self, Driver, Identity};
use mfiguard_sanitizer::Abi;

use super::calls::Calls;
use super::dispatch::{handle, reply_errno, Host};
use super::events::{AenFile, Events};
use super::instance::{Daemon, DaemonState};
use super::node::install_node;
use super::status::NodeState;
use crate::cuse::{self, InHeader, Op};
use crate::filter::{FIRMWARE, FIRMWARE32, GET_AEN};
use mfiguard_core::audit::AenGap;

use mfiguard_core::config::LogTarget;
use mfiguard_core::guarded::{PrivateCall, AEN_SIZE};
use mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_FRAME_OFFSET;

use crate::cuse::{FUSE_IOCTL_COMPAT, FUSE_IOCTL_UNRESTRICTED, OUT_HEADER_LEN};

/// A caller's memory: one region at `base`.
struct Fake {
    base: u64,
    mem: RefCell<Vec<u8>>,
    sent: RefCell<Vec<Vec<u8>>>,
    /// Packets the driver got.
    driver_calls: RefCell<Vec<Vec<u8>>>,
    driver_loaded: bool,
    caps: bool,
    /// What the driver answers.
    driver_answer: (c_int, c_int),
    /// An errno for every write into the caller.
    write_fails: Option<c_int>,
    /// An errno for the first reply sent.
    send_fails: Cell<Option<c_int>>,
    events: Events,
    calls: Calls,
    /// Workers interrupted by the watchdog.
    interrupted: RefCell<Vec<libc::pid_t>>,
    /// The watchdog's round runs while the driver has the command (its timeout passed).
    watchdog_in_driver: Option<Config>,
    /// How many first attempts the driver answers EINTR (interrupted while waiting for a
    /// command slot: the command never reached the firmware).
    eintr: Cell<u32>,
    /// The caller's file for GET_AEN: whether it has O_ASYNC, or why it cannot be reached.
    aen_file: Result<bool, AenGap>,
    /// The `megasas_aen` of each GET_AEN the driver got.
    aen_calls: RefCell<Vec<[u8; AEN_SIZE]>>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            base: 0x10_0000,
            mem: RefCell::new(vec![0u8; 0x4000]),
            sent: RefCell::new(Vec::new()),
            driver_calls: RefCell::new(Vec::new()),
            driver_loaded: true,
            caps: true,
            driver_answer: (0, 0),
            write_fails: None,
            send_fails: Cell::new(None),
            events: Events::default(),
            calls: Calls::new(None),
            interrupted: RefCell::new(Vec::new()),
            watchdog_in_driver: None,
            eintr: Cell::new(0),
            aen_file: Ok(true),
            aen_calls: RefCell::new(Vec::new()),
        }
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, c_int> {
        let start = addr.checked_sub(self.base).ok_or(libc::EFAULT)? as usize;
        let end = start.checked_add(len).ok_or(libc::EFAULT)?;
        (end <= self.mem.borrow().len())
            .then_some(start..end)
            .ok_or(libc::EFAULT)
    }

    /// The one reply sent: (error, ioctl result).
    fn reply(&self) -> (i32, Option<i32>) {
        let sent = self.sent.borrow();
        assert_eq!(sent.len(), 1, "one reply per request: {sent:?}");
        let r = &sent[0];
        assert_eq!(
            u32::from_ne_bytes(r[0..4].try_into().unwrap()) as usize,
            r.len()
        );
        let error = i32::from_ne_bytes(r[4..8].try_into().unwrap());
        let result = (r.len() == OUT_HEADER_LEN + 16)
            .then(|| i32::from_ne_bytes(r[16..20].try_into().unwrap()));
        (error, result)
    }
}

struct FakeDriver<'a>(&'a Fake);

impl Driver for FakeDriver<'_> {
    fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int) {
        self.0
            .driver_calls
            .borrow_mut()
            .push(call.packet().to_vec());
        if let Some(cfg) = &self.0.watchdog_in_driver {
            super::dispatch::expire(cfg, self.0);
        }
        if self.0.eintr.get() > 0 {
            self.0.eintr.set(self.0.eintr.get() - 1);
            return (-1, libc::EINTR);
        }
        // The firmware's status for the command, and data in the first buffer.
        let (bufs, _) = call.buffers_mut();
        if let Some(b) = bufs.first_mut() {
            b.fill(0xab);
        }
        self.0.driver_answer
    }
    fn get_aen(&mut self, aen: &mut [u8; AEN_SIZE]) -> (c_int, c_int) {
        self.0.aen_calls.borrow_mut().push(*aen);
        self.0.driver_answer
    }
}

impl Host for Fake {
    type Driver<'a> = FakeDriver<'a>;
    fn read(&self, _: libc::pid_t, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        let r = self.range(addr, out.len())?;
        out.copy_from_slice(&self.mem.borrow()[r]);
        Ok(())
    }
    fn write(&self, _: libc::pid_t, addr: u64, data: &[u8]) -> Result<(), c_int> {
        if let Some(e) = self.write_fails {
            return Err(e);
        }
        let r = self.range(addr, data.len())?;
        self.mem.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }
    fn identity(&self, tid: libc::pid_t) -> Identity {
        Identity {
            who: audit::Who {
                pid: tid as u32,
                uid: 0,
            },
            exe: "/usr/sbin/storcli64".into(),
            invoker: audit::Invoker::default(),
            groups: Vec::new(),
        }
    }
    fn may_open(&self, _: libc::pid_t) -> Result<(), c_int> {
        if self.caps {
            Ok(())
        } else {
            Err(libc::EACCES)
        }
    }
    fn driver(&self) -> Result<FakeDriver<'_>, c_int> {
        if self.driver_loaded {
            Ok(FakeDriver(self))
        } else {
            Err(libc::ENXIO)
        }
    }
    fn send(&self, reply: &[u8]) -> Result<(), c_int> {
        if let Some(e) = self.send_fails.take() {
            return Err(e);
        }
        self.sent.borrow_mut().push(reply.to_vec());
        Ok(())
    }
    fn calls(&self) -> &Calls {
        &self.calls
    }
    fn interrupt(&self, worker: libc::pid_t) {
        self.interrupted.borrow_mut().push(worker);
    }
    fn events(&self) -> &Events {
        &self.events
    }
    fn aen_file(&self, tid: libc::pid_t) -> Result<AenFile, AenGap> {
        self.aen_file.map(|asynchronous| AenFile {
            tgid: tid,
            fd: 3,
            asynchronous,
            pidfd: None,
        })
    }
}

fn cfg() -> Config {
    Config {
        log: LogTarget::None,
        ..Config::FALLBACK
    }
}

fn header(opcode: u32, pid: u32) -> InHeader {
    InHeader {
        len: 0,
        opcode,
        unique: 77,
        uid: 0,
        gid: 0,
        pid,
    }
}

/// A `MR_DCMD_CTRL_GET_INFO` packet reading 64 bytes, in `abi`'s layout, written into the
/// fake caller's memory at its base; its data buffer at base + 0x1000.
fn dcmd_packet(f: &Fake, abi: Abi, sgl_off: u32) -> u64 {
    let size = abi.packet_size();
    let mut p = vec![0u8; size];
    p[4..8].copy_from_slice(&sgl_off.to_ne_bytes());
    p[8..12].copy_from_slice(&1u32.to_ne_bytes());
    let fr = MEGASAS_IOC_FRAME_OFFSET;
    p[fr] = 0x05; // MFI_CMD_DCMD
    p[fr + 2] = 0xff; // cmd_status, as tools leave it
    p[fr + 7] = 1; // sge_count
    p[fr + 0x10..fr + 0x12].copy_from_slice(&0x0010u16.to_le_bytes()); // read
    p[fr + 0x14..fr + 0x18].copy_from_slice(&64u32.to_le_bytes());
    p[fr + 0x18..fr + 0x1c].copy_from_slice(&0x0101_0000u32.to_le_bytes());
    let sgl = fr + 0x80;
    let buf = f.base + 0x1000;
    match abi {
        Abi::Lp64 => {
            p[sgl..sgl + 8].copy_from_slice(&buf.to_ne_bytes());
            p[sgl + 8..sgl + 16].copy_from_slice(&64u64.to_ne_bytes());
        }
        Abi::Ilp32 => {
            p[sgl..sgl + 4].copy_from_slice(&(buf as u32).to_ne_bytes());
            p[sgl + 4..sgl + 8].copy_from_slice(&64u32.to_ne_bytes());
        }
    }
    f.mem.borrow_mut()[..size].copy_from_slice(&p);
    f.base
}

fn ioctl_op(flags: u32, cmd: u32, arg: u64) -> Op {
    Op::Ioctl { flags, cmd, arg }
}

/// A 64-bit caller (thread 4242) sends the `MR_DCMD_CTRL_GET_INFO` of [`dcmd_packet`].
fn get_info(cfg: &Config, f: &Fake) {
    let arg = dcmd_packet(f, Abi::Lp64, 0x28);
    handle(
        cfg,
        f,
        &header(cuse::FUSE_IOCTL, 4242),
        ioctl_op(FUSE_IOCTL_UNRESTRICTED, FIRMWARE, arg),
    );
}

#[test]
fn a_clean_call_runs_once_on_a_private_copy_and_its_results_are_copied_back() {
    for (abi, flags, cmd) in [
        (Abi::Lp64, FUSE_IOCTL_UNRESTRICTED, FIRMWARE),
        (
            Abi::Ilp32,
            FUSE_IOCTL_UNRESTRICTED | FUSE_IOCTL_COMPAT,
            FIRMWARE32,
        ),
    ] {
        let f = Fake::new();
        let arg = dcmd_packet(&f, abi, 0x28);
        handle(
            &cfg(),
            &f,
            &header(cuse::FUSE_IOCTL, 4242),
            ioctl_op(flags, cmd, arg),
        );
        assert_eq!(f.reply(), (0, Some(0)), "{abi:?}");
        let calls = f.driver_calls.borrow();
        assert_eq!(calls.len(), 1, "{abi:?}: the command ran once");
        // The driver was handed the native layout, pointing at a private buffer.
        let sge = guarded::private_iovecs(calls[0].as_slice().try_into().unwrap());
        assert_eq!(sge[0].len, 64);
        assert!(sge[0].base < f.base || sge[0].base >= f.base + 0x4000);
        // What the driver wrote reached the caller's buffer.
        assert_eq!(&f.mem.borrow()[0x1000..0x1040], &[0xab; 64][..], "{abi:?}");
    }
}

#[test]
fn every_ioctl_gets_exactly_one_reply_the_kernel_accepts() {
    let firmware = |f: &Fake| {
        let arg = dcmd_packet(f, Abi::Lp64, 0x28);
        handle(
            &cfg(),
            f,
            &header(cuse::FUSE_IOCTL, 4242),
            ioctl_op(0, FIRMWARE, arg),
        );
    };
    // The driver's ENOTSUPP (524) is beyond what a reply may carry (the kernel would refuse
    // it and the caller would wait for ever): EOPNOTSUPP.
    let f = Fake {
        driver_answer: (-1, 524),
        ..Fake::new()
    };
    firmware(&f);
    assert_eq!(f.reply(), (-libc::EOPNOTSUPP, None));
    assert_eq!(reply_errno(libc::ERANGE), libc::ERANGE);
    assert_eq!(reply_errno(512), libc::EIO);
    assert_eq!(reply_errno(0), libc::EIO);
    assert_eq!(reply_errno(-5), libc::EIO);
    // The command ran but its results could not be written back because the caller is
    // gone: still one reply.
    let f = Fake {
        write_fails: Some(libc::ESRCH),
        ..Fake::new()
    };
    firmware(&f);
    assert_eq!(f.driver_calls.borrow().len(), 1);
    assert_eq!(f.reply(), (-libc::EIO, None));
    // A reply the channel refuses is followed by EIO.
    let f = Fake::new();
    f.send_fails.set(Some(libc::EINVAL));
    firmware(&f);
    assert_eq!(f.reply(), (-libc::EIO, None));
    // A reply whose request is gone (ENOENT) is not retried.
    let f = Fake::new();
    f.send_fails.set(Some(libc::ENOENT));
    firmware(&f);
    assert!(f.sent.borrow().is_empty());
}

#[test]
fn the_sgl_off_hazard_is_refused_before_the_driver() {
    let f = Fake::new();
    let arg = dcmd_packet(&f, Abi::Lp64, 0x40000);
    handle(
        &cfg(),
        &f,
        &header(cuse::FUSE_IOCTL, 4242),
        ioctl_op(FUSE_IOCTL_UNRESTRICTED, FIRMWARE, arg),
    );
    assert_eq!(f.reply(), (-libc::EINVAL, None));
    assert!(f.driver_calls.borrow().is_empty());
}

#[test]
fn codes_the_driver_does_not_know_on_that_entry_are_enotty() {
    // The native code from a 32-bit caller, the compat code from a 64-bit one, any other
    // code, an x32 caller.
    for (flags, cmd) in [
        (FUSE_IOCTL_COMPAT, FIRMWARE),
        (0, FIRMWARE32),
        (0, 0x5401),
        (FUSE_IOCTL_COMPAT | cuse::FUSE_IOCTL_COMPAT_X32, FIRMWARE32),
    ] {
        let f = Fake::new();
        let arg = dcmd_packet(&f, Abi::Lp64, 0x28);
        handle(
            &cfg(),
            &f,
            &header(cuse::FUSE_IOCTL, 1),
            ioctl_op(flags, cmd, arg),
        );
        assert_eq!(f.reply(), (-libc::ENOTTY, None), "{flags:#x} {cmd:#x}");
        assert!(f.driver_calls.borrow().is_empty());
    }
}

#[test]
fn event_registration_is_carried_and_refused_only_where_it_cannot_be() {
    let aen = |f: &Fake, flags| {
        // struct megasas_aen: host 0, seq 7, class/locale 0x0000ffff.
        let mut m = f.mem.borrow_mut();
        m[..12].copy_from_slice(&[0, 0, 0, 0, 7, 0, 0, 0, 0xff, 0xff, 0, 0]);
        drop(m);
        handle(
            &cfg(),
            f,
            &header(cuse::FUSE_IOCTL, 1),
            ioctl_op(flags, GET_AEN, f.base),
        );
    };
    // Registered with the driver on the daemon's own descriptor, with the caller's
    // megasas_aen; the caller's file kept for the driver's SIGIO. The compat entry alike.
    for flags in [0, FUSE_IOCTL_COMPAT] {
        let f = Fake::new();
        aen(&f, flags);
        assert_eq!(f.reply(), (0, Some(0)));
        assert_eq!(
            *f.aen_calls.borrow(),
            vec![[0, 0, 0, 0, 7, 0, 0, 0, 0xff, 0xff, 0, 0]]
        );
        assert_eq!(f.events.files().len(), 1);
    }
    // The driver's answer on a file whose fasync was never called (no O_ASYNC): EINVAL, and
    // nothing registered.
    let f = Fake {
        aen_file: Ok(false),
        ..Fake::new()
    };
    aen(&f, 0);
    assert_eq!(f.reply(), (-libc::EINVAL, None));
    assert!(f.aen_calls.borrow().is_empty());
    assert!(f.events.files().is_empty());
    // The driver refuses it: nothing registered either.
    let f = Fake {
        driver_answer: (-1, libc::ENODEV),
        ..Fake::new()
    };
    aen(&f, 0);
    assert_eq!(f.reply(), (-libc::ENODEV, None));
    assert!(f.events.files().is_empty());
    // What cannot be carried is refused before the driver: EOPNOTSUPP.
    for why in [
        AenGap::NoPidfdGetfd,
        AenGap::DescriptorUnknown,
        AenGap::Full,
    ] {
        let f = Fake {
            aen_file: Err(why),
            ..Fake::new()
        };
        aen(&f, 0);
        assert_eq!(f.reply(), (-libc::EOPNOTSUPP, None), "{why:?}");
        assert!(f.aen_calls.borrow().is_empty());
    }
}

#[test]
fn a_caller_this_daemon_cannot_see_fails_closed() {
    let f = Fake::new();
    let arg = dcmd_packet(&f, Abi::Lp64, 0x28);
    handle(
        &cfg(),
        &f,
        &header(cuse::FUSE_IOCTL, 0),
        ioctl_op(0, FIRMWARE, arg),
    );
    assert_eq!(f.reply(), (-libc::EIO, None));
    assert!(f.driver_calls.borrow().is_empty());
}

#[test]
fn open_is_answered_as_the_driver_answers_it() {
    let f = Fake::new();
    handle(
        &cfg(),
        &f,
        &header(cuse::FUSE_OPEN, 1),
        Op::Open { flags: 2 },
    );
    assert_eq!(f.reply().0, 0);
    let f = Fake {
        caps: false,
        ..Fake::new()
    };
    handle(
        &cfg(),
        &f,
        &header(cuse::FUSE_OPEN, 1),
        Op::Open { flags: 2 },
    );
    assert_eq!(f.reply(), (-libc::EACCES, None));
    let f = Fake {
        driver_loaded: false,
        ..Fake::new()
    };
    handle(
        &cfg(),
        &f,
        &header(cuse::FUSE_OPEN, 1),
        Op::Open { flags: 2 },
    );
    assert_eq!(f.reply(), (-libc::ENXIO, None));
}

#[test]
fn other_requests_get_the_drivers_answers_and_interrupts_none() {
    for (op, want) in [
        (Op::Other(cuse::FUSE_READ), -libc::EINVAL),
        (Op::Other(cuse::FUSE_WRITE), -libc::EINVAL),
        (Op::Other(cuse::FUSE_FLUSH), -libc::ENOSYS),
        (Op::Release, 0),
    ] {
        let f = Fake::new();
        handle(&cfg(), &f, &header(0, 1), op);
        assert_eq!(f.reply().0, want, "{op:?}");
    }
    // Polls see the driver's event flag as the driver's own poll does: once.
    let f = Fake::new();
    let poll = |kh| {
        f.sent.borrow_mut().clear();
        let op = Op::Poll {
            kh,
            flags: cuse::FUSE_POLL_SCHEDULE_NOTIFY,
        };
        handle(&cfg(), &f, &header(cuse::FUSE_POLL, 1), op);
        let r = f.sent.borrow()[0].clone();
        assert_eq!(r.len(), OUT_HEADER_LEN + 8);
        u32::from_ne_bytes(r[OUT_HEADER_LEN..OUT_HEADER_LEN + 4].try_into().unwrap())
    };
    assert_eq!(poll(1), 0);
    assert_eq!(poll(2), 0);
    assert_eq!(poll(1), 0);
    // An event: the files that waited are to be woken, each once; the next poll sees it,
    // the one after does not.
    assert_eq!(f.events.arrived(), vec![1, 2]);
    assert_eq!(poll(3), (libc::POLLIN | libc::POLLRDNORM) as u32);
    assert_eq!(poll(3), 0);
    assert_eq!(f.events.arrived(), vec![3]);
    let f = Fake::new();
    handle(&cfg(), &f, &header(cuse::FUSE_INTERRUPT, 1), Op::Interrupt);
    assert!(f.sent.borrow().is_empty());
}

#[test]
fn status_names_each_state() {
    let major = 245u32;
    let cuse = libc::makedev(120, 28006);
    let cuse2 = libc::makedev(120, 28007);
    let driver = libc::makedev(major, 0);
    let node = |rdev| NodeState::Char {
        rdev,
        mode: 0o600,
        uid: 0,
        gid: 0,
    };
    let daemon = |name: &str, dev, state| Daemon {
        name: name.into(),
        dev,
        pid: Some(4242),
        state,
    };
    let live = DaemonState::Live { in_driver: 0 };
    let stuck = DaemonState::Stuck { in_driver: 1 };
    let st = |daemons: Vec<Daemon>, n| Status {
        node: n,
        driver_major: Some(major),
        daemons,
    };
    let one = |state| vec![daemon("megaraid_sas_ioctl_node", cuse, state)];
    assert_eq!(st(one(live), node(cuse)).coverage(), Coverage::Active);
    assert_eq!(st(one(live), node(driver)).coverage(), Coverage::Bypassed);
    assert_eq!(
        st(one(live), NodeState::Missing).coverage(),
        Coverage::Displaced
    );
    assert_eq!(st(vec![], node(driver)).coverage(), Coverage::Off);
    assert_eq!(st(vec![], node(cuse)).coverage(), Coverage::Stopped);
    assert_eq!(st(vec![], NodeState::Missing).coverage(), Coverage::Off);
    assert_eq!(
        st(vec![], NodeState::NotCharDevice).coverage(),
        Coverage::Stopped
    );
    // Killed while the driver held a command: its node at the path answers nothing.
    assert_eq!(st(one(stuck), node(cuse)).coverage(), Coverage::Stuck);
    // A daemon whose pid file is missing is taken as live.
    assert_eq!(
        st(one(DaemonState::Unknown), node(cuse)).coverage(),
        Coverage::Active
    );
    // Started again beside the stuck one: the new one serves the path.
    let both = |at| {
        st(
            vec![
                daemon("megaraid_sas_ioctl_node", cuse, stuck),
                daemon("megaraid_sas_ioctl_node.1", cuse2, live),
            ],
            node(at),
        )
    };
    assert_eq!(both(cuse2).coverage(), Coverage::Active);
    // ... and until it has put its node there, the path is not its.
    assert_eq!(both(cuse).coverage(), Coverage::Displaced);
    let p = Path::new("/dev/megaraid_sas_ioctl_node");
    assert!(both(cuse2).describe(p).contains(
        "killed earlier and still held by the driver: pid 4242, CUSE megaraid_sas_ioctl_node 120:28006 (1 thread(s) in the driver)"
    ));
    assert!(st(one(live), node(driver))
        .describe(p)
        .starts_with("BYPASSED: "));
    // The line for people starts with the state's name (the one --check --json and the
    // metrics use), and every state is listed once.
    for s in [
        st(one(live), node(cuse)),
        st(one(live), node(driver)),
        st(one(live), NodeState::Missing),
        st(vec![], node(driver)),
        st(vec![], node(cuse)),
        st(one(stuck), node(cuse)),
    ] {
        let line = s.describe(p).to_lowercase();
        assert!(
            line.starts_with(&format!("{}: ", s.coverage().name())),
            "{line}"
        );
        assert_eq!(
            Coverage::ALL.iter().filter(|c| **c == s.coverage()).count(),
            1
        );
    }
}

#[test]
fn install_node_replaces_what_is_there_in_one_rename() {
    let dir = std::env::temp_dir().join(format!("mfiguard-hostd-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("megaraid_sas_ioctl_node");
    fs::write(&path, b"not a node").unwrap();
    // /dev/null's number: a device that exists, created here as root.
    let dev = libc::makedev(1, 3);
    install_node(&path, dev, (0o640, 0, 0)).unwrap();
    assert_eq!(
        NodeState::of(&path),
        NodeState::Char {
            rdev: dev,
            mode: 0o640,
            uid: 0,
            gid: 0
        }
    );
    // No temporary file is left.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    fs::remove_dir_all(&dir).unwrap();
}

/// `MFIGUARD_LOG_REQUIRED=1` and a decision record that cannot be written (a directory as the
/// record file): the call is answered `EIO` and never reaches the driver, as under the library
/// and the supervisor; without it, the call goes on.
#[test]
fn a_required_record_that_cannot_be_written_fails_the_call_closed() {
    let dir = std::env::temp_dir().join(format!("mfiguard-hostd-required-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let required = Config {
        log: LogTarget::File(std::ffi::CString::new(dir.to_str().unwrap()).unwrap()),
        audit: mfiguard_core::config::AuditLevel::All,
        log_required: true,
        ..Config::FALLBACK
    };
    let f = Fake::new();
    get_info(&required, &f);
    assert_eq!(f.reply(), (-libc::EIO, None));
    assert!(f.driver_calls.borrow().is_empty());
    let not_required = Config {
        log_required: false,
        ..required
    };
    let f = Fake::new();
    get_info(&not_required, &f);
    assert_eq!(f.reply(), (0, Some(0)));
    assert_eq!(f.driver_calls.borrow().len(), 1);
    fs::remove_dir_all(&dir).unwrap();
}

/// Records of a config writing them all to a fresh file; the config and the file.
fn recording(name: &str) -> (Config, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "mfiguard-hostd-{name}-{}.jsonl",
        std::process::id()
    ));
    let _ = fs::remove_file(&path);
    let cfg = Config {
        log: LogTarget::File(std::ffi::CString::new(path.to_str().unwrap()).unwrap()),
        audit: mfiguard_core::config::AuditLevel::All,
        ..Config::FALLBACK
    };
    (cfg, path)
}

/// A command the driver holds past the timeout: its caller is answered ETIMEDOUT by the
/// watchdog, once; the worker that waits for the driver is interrupted (in case it waits for a
/// command slot); when the driver returns, nothing is written into the caller (who has moved
/// on), and the outcome record says the command ran and was not delivered.
#[test]
fn a_command_past_its_timeout_is_answered_etimedout_and_its_late_results_dropped() {
    let (rec_cfg, log) = recording("timeout");
    let f = Fake {
        calls: Calls::new(Some(std::time::Duration::ZERO)),
        watchdog_in_driver: Some(rec_cfg.clone()),
        ..Fake::new()
    };
    get_info(&rec_cfg, &f);
    assert_eq!(f.reply(), (-libc::ETIMEDOUT, None));
    assert_eq!(f.driver_calls.borrow().len(), 1);
    assert_eq!(*f.interrupted.borrow(), vec![crate::sys::gettid()]);
    // The driver's late data never reached the caller's buffer, nor its status byte.
    assert_eq!(&f.mem.borrow()[0x1000..0x1040], &[0u8; 64][..]);
    assert_eq!(f.mem.borrow()[MEGASAS_IOC_FRAME_OFFSET + 2], 0xff);
    let text = fs::read_to_string(&log).unwrap();
    let timeout = text
        .lines()
        .find(|l| l.contains(r#""key":"hostd.timeout""#))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        timeout.contains("answered ETIMEDOUT; the driver still holds the command"),
        "{timeout}"
    );
    let outcome = text
        .lines()
        .find(|l| l.contains(r#""record":"outcome""#))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        outcome.contains(r#""rule":"guard.not-delivered""#),
        "{outcome}"
    );
    assert!(outcome.contains("executed, not delivered"), "{outcome}");
    assert!(
        f.calls.held() == 0,
        "the call left the registry with its worker"
    );
    let _ = fs::remove_file(&log);
}

/// A worker interrupted while it waited for one of the driver's command slots (EINTR: the
/// command never reached the firmware) sends it again while its caller still waits; once the
/// watchdog answered the caller, it stops.
#[test]
fn an_interrupted_wait_for_a_command_slot_is_retried_until_the_caller_was_answered() {
    let f = Fake::new();
    f.eintr.set(2);
    get_info(&cfg(), &f);
    assert_eq!(f.reply(), (0, Some(0)));
    assert_eq!(f.driver_calls.borrow().len(), 3);
    assert_eq!(&f.mem.borrow()[0x1000..0x1040], &[0xab; 64][..]);
    let f = Fake {
        calls: Calls::new(Some(std::time::Duration::ZERO)),
        watchdog_in_driver: Some(cfg()),
        ..Fake::new()
    };
    f.eintr.set(5);
    get_info(&cfg(), &f);
    assert_eq!(f.reply(), (-libc::ETIMEDOUT, None));
    assert_eq!(
        f.driver_calls.borrow().len(),
        1,
        "not sent again after the answer"
    );
}

/// With as many commands held past their timeout as allowed, the next is refused at once with
/// EBUSY (`guard.stuck`) and never reaches the driver.
#[test]
fn a_driver_holding_too_many_commands_gets_no_more() {
    let f = Fake {
        calls: Calls::new(Some(std::time::Duration::ZERO)),
        ..Fake::new()
    };
    for n in 0..super::calls::HELD_MAX {
        let g = f.calls.read(1000 + n as u64, 1);
        assert!(g.take(2));
        g.to_driver(f.calls.start());
    }
    assert_eq!(f.calls.expire().len(), super::calls::HELD_MAX);
    get_info(&cfg(), &f);
    assert_eq!(f.reply(), (-libc::EBUSY, None));
    assert!(f.driver_calls.borrow().is_empty());
}
