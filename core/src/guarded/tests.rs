//! Both memory strategies with fakes: for the same call they give the same answer, call the
//! driver or not alike, send the same frame, and fail closed alike when a record is required
//! and cannot be written.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, CString};

use mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_FRAME_OFFSET;
use mfiguard_sanitizer::abi::mfi::{MFI_FLAGS_OFFSET, MR_DCMD_CTRL_GET_INFO};
use mfiguard_sanitizer::builder::{samples, PacketBuilder};
use mfiguard_sanitizer::{decode, Abi};

use super::*;
use crate::audit::Guard;
use crate::config::{AuditLevel, Config, GuardMode, LogTarget};

/// The caller's memory: one window at [`BASE`], the packet first, its buffers after it.
const BASE: u64 = 0x7f00_0000_0000;
const WINDOW: usize = 0x4000;
const BUF: u64 = BASE + 0x1000;
const SENSE: u64 = BASE + 0x2000;

struct Mem {
    mem: RefCell<Vec<u8>>,
}

impl Mem {
    fn with_packet(packet: &[u8]) -> Mem {
        let mut mem = vec![0u8; WINDOW];
        mem[..packet.len()].copy_from_slice(packet);
        Mem {
            mem: RefCell::new(mem),
        }
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, c_int> {
        let start = usize::try_from(addr.checked_sub(BASE).ok_or(libc::EFAULT)?)
            .map_err(|_| libc::EFAULT)?;
        let end = start.checked_add(len).ok_or(libc::EFAULT)?;
        (end <= WINDOW).then_some(start..end).ok_or(libc::EFAULT)
    }
}

impl Caller for Mem {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        let r = self.range(addr, out.len())?;
        out.copy_from_slice(&self.mem.borrow()[r]);
        Ok(())
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int> {
        let r = self.range(addr, data.len())?;
        self.mem.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }
    fn identity(&self) -> Option<Identity> {
        None
    }
    fn deliver(&self, _: Answer) -> Result<(), c_int> {
        Ok(())
    }
}

/// A driver for both strategies: records the frame flags it got, completes the command.
#[derive(Default)]
struct FakeDriver {
    flags_sent: RefCell<Vec<u16>>,
    called: Cell<u32>,
    /// The caller's packet, which a pass-through hands on unchanged.
    caller_packet: Vec<u8>,
}

impl FakeDriver {
    fn saw(&self, packet: &[u8]) {
        self.called.set(self.called.get() + 1);
        let at = MEGASAS_IOC_FRAME_OFFSET + MFI_FLAGS_OFFSET;
        let flags = u16::from_le_bytes([packet[at], packet[at + 1]]);
        self.flags_sent.borrow_mut().push(flags);
    }
}

impl Driver for &FakeDriver {
    fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int) {
        self.saw(call.packet());
        (0, 0)
    }
    fn get_aen(&mut self, _: &mut [u8; AEN_SIZE]) -> (c_int, c_int) {
        self.called.set(self.called.get() + 1);
        (0, 0)
    }
}

impl NextIoctl for &FakeDriver {
    fn fd(&self) -> c_int {
        3
    }
    fn available(&self) -> bool {
        true
    }
    fn pass_through(&mut self) -> (c_int, c_int) {
        self.saw(&self.caller_packet);
        (0, 0)
    }
    fn send(&mut self, mut packet: PrivatePacket<'_>) -> (c_int, c_int) {
        self.saw(packet.bytes_mut());
        (0, 0)
    }
}

fn cfg(mode: GuardMode) -> Config {
    Config {
        mode,
        log: LogTarget::None,
        ..Config::FALLBACK
    }
}

/// What a strategy made of a call: its answer, the flags of each frame the driver got, and the
/// caller's packet afterwards.
type Seen = ((c_int, c_int), Vec<u16>, Vec<u8>);

fn copied_run(cfg: &Config, packet: &[u8]) -> Seen {
    let mem = Mem::with_packet(packet);
    let driver = FakeDriver::default();
    let req = Request::new(
        Guard::Supervisor,
        Abi::NATIVE,
        Abi::NATIVE.firmware_request(),
        BASE,
    )
    .unwrap();
    let d = copied::run(cfg, req, &mem, &mut &driver);
    let flags = driver.flags_sent.borrow().clone();
    let after = mem.mem.borrow()[..PACKET_SIZE].to_vec();
    (d.delivery.answer.ret_errno(), flags, after)
}

fn in_place_run(cfg: &Config, packet: &[u8]) -> Seen {
    let mem = Mem::with_packet(packet);
    let driver = FakeDriver {
        caller_packet: packet.to_vec(),
        ..FakeDriver::default()
    };
    let req = Request::new(
        Guard::Preload,
        Abi::NATIVE,
        Abi::NATIVE.firmware_request(),
        BASE,
    )
    .unwrap();
    let mut progress = Progress::default();
    let ret = in_place::run(cfg, false, req, &mem, &mut &driver, &mut progress);
    assert_eq!(progress.kernel.is_some(), driver.called.get() > 0);
    let flags = driver.flags_sent.borrow().clone();
    let after = mem.mem.borrow()[..PACKET_SIZE].to_vec();
    (ret, flags, after)
}

fn packets() -> Vec<(&'static str, Vec<u8>)> {
    let abi = Abi::NATIVE;
    vec![
        (
            "clean DCMD",
            samples::dcmd_read(abi, MR_DCMD_CTRL_GET_INFO, BUF, 64).build(),
        ),
        (
            "the seed's STP probe",
            samples::megacli_8_01_06_stp_probe(abi, 3, BUF, BUF + 0x200).build(),
        ),
        (
            "sgl_off past the frame",
            samples::dcmd_read(abi, MR_DCMD_CTRL_GET_INFO, BUF, 64)
                .sgl_off(0x40000)
                .build(),
        ),
        (
            "an INQUIRY with sense",
            samples::scsi_inquiry(abi, 0, BUF, 36, SENSE).build(),
        ),
        ("17 entries", PacketBuilder::new(abi).sge_count(17).build()),
    ]
}

#[test]
fn both_strategies_answer_and_send_alike() {
    for mode in [GuardMode::Enforce, GuardMode::Readonly, GuardMode::Audit] {
        let cfg = cfg(mode);
        for (what, packet) in packets() {
            let copied = copied_run(&cfg, &packet);
            let in_place = in_place_run(&cfg, &packet);
            assert_eq!(copied.0, in_place.0, "{what}, {mode:?}: the answer");
            assert_eq!(copied.1, in_place.1, "{what}, {mode:?}: the frames sent");
            // The driver's status reached the caller alike.
            assert_eq!(
                copied.2[CMD_STATUS], in_place.2[CMD_STATUS],
                "{what}, {mode:?}: cmd_status"
            );
        }
    }
}

#[test]
fn the_seed_is_rewritten_and_sgl_off_refused_by_both() {
    let cfg = cfg(GuardMode::Enforce);
    let p = packets();
    for run in [copied_run, in_place_run] {
        let (answer, flags, _) = run(&cfg, &p[1].1);
        assert_eq!(answer, (0, 0));
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0] & 0x26, 0, "addressing flags reached the driver");
        let (answer, flags, _) = run(&cfg, &p[2].1);
        assert_eq!(answer, (-1, libc::EINVAL));
        assert!(flags.is_empty());
    }
}

/// `MFIGUARD_LOG_REQUIRED=1` and a decision record that cannot be written (a directory as the
/// record file): both strategies refuse with `EIO` before the driver, in every mode.
#[test]
fn a_required_record_that_cannot_be_written_fails_both_closed() {
    let dir = std::env::temp_dir().join(format!("mfiguard-log-required-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mode in [GuardMode::Enforce, GuardMode::Audit] {
        let cfg = Config {
            mode,
            log: LogTarget::File(CString::new(dir.to_str().unwrap()).unwrap()),
            audit: AuditLevel::All,
            log_required: true,
            ..Config::FALLBACK
        };
        let clean = &packets()[0].1;
        for run in [copied_run, in_place_run] {
            let (answer, flags, packet) = run(&cfg, clean);
            assert_eq!(answer, (-1, libc::EIO), "{mode:?}");
            assert!(flags.is_empty(), "{mode:?}: the driver was called");
            assert_eq!(&packet, clean, "{mode:?}: the caller's packet changed");
        }
        // Not required: the call goes on, the record is lost.
        let cfg = Config {
            log_required: false,
            ..cfg
        };
        for run in [copied_run, in_place_run] {
            assert_eq!(run(&cfg, clean).0, (0, 0), "{mode:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lending_points_one_entry_at_a_buffer() {
    let mut p = LocalPacket::zeroed();
    let mut buf = [0u8; 40];
    let base = buf.as_ptr() as u64;
    let _ = p.lending(1, &mut buf);
    let d = decode(Abi::NATIVE, p.as_bytes()).unwrap();
    assert_eq!((d.sgl[1].base, d.sgl[1].len), (base, 40));
    assert!(d
        .sgl
        .iter()
        .enumerate()
        .all(|(i, v)| i == 1 || (v.base, v.len) == (0, 0)));
    // Past sgl[15]: nothing is written.
    let before = p.as_bytes().to_vec();
    let _ = p.lending(16, &mut buf);
    assert_eq!(p.as_bytes(), &before[..]);
}

#[test]
fn only_the_drivers_requests_of_each_layout_are_guarded() {
    use mfiguard_sanitizer::abi::ioctl::{
        MEGASAS_IOC_FIRMWARE, MEGASAS_IOC_FIRMWARE32, MEGASAS_IOC_GET_AEN,
    };
    assert!(is_guarded(Abi::Lp64, MEGASAS_IOC_FIRMWARE));
    assert!(is_guarded(Abi::Ilp32, MEGASAS_IOC_FIRMWARE32));
    assert!(
        is_guarded(Abi::Lp64, MEGASAS_IOC_GET_AEN) && is_guarded(Abi::Ilp32, MEGASAS_IOC_GET_AEN)
    );
    // The other layout's code: the kernel answers ENOTTY, nothing reaches the driver.
    assert!(!is_guarded(Abi::Lp64, MEGASAS_IOC_FIRMWARE32));
    assert!(!is_guarded(Abi::Ilp32, MEGASAS_IOC_FIRMWARE));
    assert!(!is_guarded(Abi::Lp64, 0x5401));
    let r = Request::new(
        Guard::Hostd,
        Abi::Ilp32,
        MEGASAS_IOC_FIRMWARE32,
        0xffff_ffff_0804_a000,
    )
    .unwrap();
    assert_eq!(
        r.arg, 0x0804_a000,
        "a 32-bit caller's argument is its low 32 bits"
    );
    assert!(Request::new(Guard::Hostd, Abi::Ilp32, MEGASAS_IOC_FIRMWARE, 0).is_none());
}

/// `MR_DCMD_CFG_CLEAR` with no buffer, as `mfi_client dcmd 0x04030000 none 0` sends it.
fn cfg_clear() -> Vec<u8> {
    use mfiguard_sanitizer::abi::mfi::MfiCmd;
    PacketBuilder::new(Abi::NATIVE)
        .sgl_off(0x28)
        .frame_header(MfiCmd::Dcmd, 0, 0, 0)
        .frame_u32(0x18, 0x0403_0000)
        .build()
}

/// Another process as the supervisor or mfiguard-hostd sees it: its memory, who it is, and
/// what happened to its answer. `deliver` checks what the log holds at that moment.
struct Other<'a> {
    mem: Mem,
    uid: u32,
    sudo_user: Option<&'a str>,
    log: Option<&'a std::path::Path>,
    /// The records the log held when the answer was given.
    at_answer: RefCell<Option<Vec<serde_json::Value>>>,
    /// Whether the caller takes its answer.
    takes: bool,
}

fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

impl Caller for Other<'_> {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        self.mem.read(addr, out)
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int> {
        self.mem.write(addr, data)
    }
    fn identity(&self) -> Option<Identity> {
        Some(Identity {
            who: crate::audit::Who {
                pid: 4242,
                uid: self.uid,
            },
            exe: "/opt/MegaRAID/MegaCli/MegaCli64".into(),
            invoker: crate::audit::Invoker {
                sudo_user: self.sudo_user.map(String::from),
                ..Default::default()
            },
            groups: vec![self.uid],
        })
    }
    fn deliver(&self, _: Answer) -> Result<(), c_int> {
        if let Some(log) = self.log {
            *self.at_answer.borrow_mut() = Some(records(log));
        }
        if self.takes {
            Ok(())
        } else {
            Err(libc::ESRCH)
        }
    }
}

fn other<'a>(packet: &[u8], uid: u32, sudo_user: Option<&'a str>) -> Other<'a> {
    Other {
        mem: Mem::with_packet(packet),
        uid,
        sudo_user,
        log: None,
        at_answer: RefCell::new(None),
        takes: true,
    }
}

fn supervised() -> Request {
    Request::new(
        Guard::Supervisor,
        Abi::NATIVE,
        Abi::NATIVE.firmware_request(),
        BASE,
    )
    .unwrap()
}

/// The policy file's sections, for the caller the supervisor or mfiguard-hostd sees: the same
/// configuration holds the monitoring account to read-only and leaves root in enforce.
#[test]
fn each_caller_is_guarded_in_the_mode_the_policy_gives_it() {
    use crate::config::{collect, decide_with, Accounts, FileSource, Subject};
    let file = FileSource::Text {
        path: "/etc/mfiguard.conf".into(),
        text: "mode = enforce\nlog = none\n[user nagios]\nmode = readonly\n".into(),
    };
    let accounts = || Accounts::parse("nagios:x:110:115::/:/bin/false\n", "");
    let cfg = decide_with(
        &collect(&[], &file),
        &|_| Err(String::new()),
        &accounts,
        &[Subject::NOBODY],
    );
    let clear = cfg_clear();
    for (uid, sudo, refused) in [
        (0, None, false),
        (110, None, true),
        (0, Some("nagios"), true),
    ] {
        let caller = other(&clear, uid, sudo);
        let driver = FakeDriver::default();
        let d = copied::run(&cfg, supervised(), &caller, &mut &driver);
        let want = if refused { (-1, libc::EPERM) } else { (0, 0) };
        assert_eq!(
            d.delivery.answer.ret_errno(),
            want,
            "uid {uid} sudo {sudo:?}"
        );
        assert_eq!(
            driver.called.get(),
            u32::from(!refused),
            "uid {uid} sudo {sudo:?}"
        );
    }
}

/// In audit mode a call's records say what enforce and what read-only would have done: a
/// configuration clear passes (and would pass enforce) but read-only would refuse it; the
/// outcome record is on the log before the caller has its answer, and a caller that cannot take
/// it gets one more record, `undelivered`.
#[test]
fn audit_records_preview_readonly_and_the_outcome_precedes_the_answer() {
    let dir = std::env::temp_dir().join(format!("mfiguard-preview-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.jsonl");
    let cfg = Config {
        mode: GuardMode::Audit,
        log: LogTarget::File(CString::new(log.to_str().unwrap()).unwrap()),
        audit: AuditLevel::All,
        ..Config::FALLBACK
    };
    let clear = cfg_clear();
    for takes in [true, false] {
        let _ = std::fs::remove_file(&log);
        let mut caller = other(&clear, 0, None);
        caller.log = Some(&log);
        caller.takes = takes;
        let driver = FakeDriver::default();
        let d = copied::run(&cfg, supervised(), &caller, &mut &driver);
        assert_eq!(driver.called.get(), 1, "audit mode lets it through");
        assert_eq!(d.delivery.delivered, takes);
        let at_answer = caller.at_answer.borrow().clone().unwrap();
        let kinds: Vec<&str> = at_answer
            .iter()
            .map(|r| r["record"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["decision", "outcome"],
            "when the caller was answered"
        );
        let all = records(&log);
        let kinds: Vec<&str> = all.iter().map(|r| r["record"].as_str().unwrap()).collect();
        if takes {
            assert_eq!(kinds, ["decision", "outcome"]);
        } else {
            assert_eq!(kinds, ["decision", "outcome", "undelivered"]);
            assert_eq!(all[2]["findings"][0]["rule"], "guard.not-delivered");
        }
        for r in &all[..2] {
            assert_eq!(r["mode"], "audit");
            assert_eq!(r["would"]["enforce"]["verdict"], "pass", "{r}");
            assert_eq!(r["would"]["readonly"]["verdict"], "reject", "{r}");
            assert_eq!(
                r["would"]["readonly"]["findings"][0]["rule"], "readonly.dcmd",
                "{r}"
            );
            assert_eq!(r["opcode_name"], "MR_DCMD_CFG_CLEAR");
        }
    }
    // The library's strategy says the same.
    let _ = std::fs::remove_file(&log);
    let (answer, flags, _) = in_place_run(&cfg, &clear);
    assert_eq!((answer, flags.len()), ((0, 0), 1));
    let all = records(&log);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1]["would"]["readonly"]["verdict"], "reject");
    // Outside audit mode there is no preview.
    let _ = std::fs::remove_file(&log);
    let enforce = Config {
        mode: GuardMode::Enforce,
        ..cfg.clone()
    };
    in_place_run(&enforce, &clear);
    assert!(records(&log).iter().all(|r| r.get("would").is_none()));
    std::fs::remove_dir_all(&dir).unwrap();
}
