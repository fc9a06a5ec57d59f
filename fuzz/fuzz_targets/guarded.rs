//! Fuzz target: the guarded path (`mfiguard_core::guarded`) on any packet, in both memory
//! strategies, with a fake caller whose memory is the rest of the input and a fake driver that
//! checks what it is handed. Nothing panics, and:
//!
//! - copying strategy (the supervisor's, either layout): every address in the private packet
//!   points into a buffer the private call owns, of the length the packet says (the `sgl[]`
//!   entries and the sense pointer), so a real driver handed it writes only there; nothing is
//!   copied beyond the rules' limits; the caller's memory is read only before the driver is
//!   called, and written only where the driver would write (the used buffers, the sense
//!   buffer, the `cmd_status` byte), and only if the driver got that far;
//! - in-place strategy (the library's, its process's layout): the driver gets the private copy
//!   (in enforce and read-only) with the caller's own `sgl[]` pointers, except the SMP request
//!   the read-only policy lends from its private copy (`sgl[1]`, pointing outside the caller's
//!   memory, of the caller's length); the caller's memory is written only at the status byte
//!   and that request buffer;
//! - both: in enforce mode a packet the rules refuse never reaches the driver, and what does
//!   has no addressing flags.
//!
//! Input: one byte of options (bit 0: the i386 layout, copying strategy only; bit 1: audit
//! mode; bit 2: read-only; bit 3: the driver fails; bit 4: the in-place strategy), then the
//! packet, then the caller's memory: a 64 KiB window starting at address 0x10000, filled from
//! what follows (the rest zero); anything outside it is unreadable and unwritable, as a bad
//! pointer is.

#![no_main]

use std::cell::{Cell, RefCell};
use std::ffi::c_int;

use libfuzzer_sys::fuzz_target;
use mfiguard_core::audit::Guard;
use mfiguard_core::config::{Config, GuardMode, LogTarget};
use mfiguard_core::guarded::{
    copied, in_place, private_iovecs, Answer, Caller, Driver, Identity, NextIoctl, PrivateCall,
    PrivatePacket, Progress, Request, AEN_SIZE, CMD_STATUS,
};
use mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_FRAME_OFFSET;
use mfiguard_sanitizer::abi::mfi::MFI_FLAGS_OFFSET;
use mfiguard_sanitizer::decode::SMP_REQUEST_SGE_INDEX;
use mfiguard_sanitizer::policy::{SENSE_LEN_MAX, SGE_LEN_MAX, SGE_TOTAL_MAX};
use mfiguard_sanitizer::{decide_packet, decode, Abi, Decision};

const BASE: u64 = 0x10000;
const WINDOW: usize = 64 * 1024;
/// What the read-only policy copies of an SMP request at most (`guarded::SMP_REQUEST_MAX`).
const SMP_REQUEST_MAX: u64 = mfiguard_core::guarded::SMP_REQUEST_MAX as u64;

struct Tool {
    mem: RefCell<Vec<u8>>,
    called: Cell<bool>,
    reads_after_call: RefCell<Vec<(u64, usize)>>,
    writes: RefCell<Vec<(u64, usize)>>,
}

impl Tool {
    fn range(&self, addr: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(addr.checked_sub(BASE)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= WINDOW).then_some(start..end)
    }

    fn inside(&self, addr: u64) -> bool {
        addr >= BASE && addr < BASE + WINDOW as u64
    }
}

impl Caller for Tool {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        if self.called.get() {
            self.reads_after_call.borrow_mut().push((addr, out.len()));
        }
        let r = self.range(addr, out.len()).ok_or(libc::EFAULT)?;
        out.copy_from_slice(&self.mem.borrow()[r]);
        Ok(())
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), c_int> {
        let r = self.range(addr, data.len()).ok_or(libc::EFAULT)?;
        self.mem.borrow_mut()[r].copy_from_slice(data);
        self.writes.borrow_mut().push((addr, data.len()));
        Ok(())
    }
    fn identity(&self) -> Option<Identity> {
        None
    }
    fn deliver(&self, _: Answer) -> Result<(), c_int> {
        Ok(())
    }
}

fn flags_of(packet: &[u8]) -> u16 {
    let at = MEGASAS_IOC_FRAME_OFFSET + MFI_FLAGS_OFFSET;
    u16::from_le_bytes([packet[at], packet[at + 1]])
}

struct FakeDriver<'t> {
    tool: &'t Tool,
    fail: bool,
    enforce: bool,
    /// The caller's packet as it was (the in-place strategy's driver compares with it).
    caller_packet: Vec<u8>,
    sent: Option<Vec<u8>>,
}

impl FakeDriver<'_> {
    fn answer(&self) -> (c_int, c_int) {
        if self.fail {
            (-1, libc::EINVAL)
        } else {
            (0, 0)
        }
    }
}

impl Driver for FakeDriver<'_> {
    fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int) {
        self.tool.called.set(true);
        let packet = *call.packet();
        self.sent = Some(packet.to_vec());
        let p = decode(Abi::Lp64, &packet).expect("a whole native packet");
        if self.enforce {
            assert_eq!(
                p.header().flags.get() & 0x26,
                0,
                "addressing flags reached the driver"
            );
        }
        let iovs = private_iovecs(&packet);
        let (bufs, sense) = call.buffers_mut();
        let mut total = 0u64;
        for (i, iov) in iovs.iter().enumerate() {
            match bufs.get(i) {
                Some(b) if !b.is_empty() => {
                    assert_eq!(iov.base, b.as_ptr() as u64, "sgl[{i}] is not its buffer");
                    assert_eq!(iov.len, b.len() as u64);
                    assert!(iov.len <= SGE_LEN_MAX);
                    total += iov.len;
                }
                _ => assert_eq!((iov.base, iov.len), (0, 0), "sgl[{i}] points somewhere"),
            }
        }
        assert!(total <= SGE_TOTAL_MAX);
        if p.sense_len != 0 {
            assert!(p.sense_len <= SENSE_LEN_MAX);
            let at = p.sense_off as usize;
            let ptr = p.frame_u64(at).expect("sense pointer inside the frame");
            assert_eq!(
                ptr,
                sense.as_ptr() as u64,
                "the sense pointer is not the sense buffer"
            );
            assert_eq!(sense.len(), p.sense_len as usize);
        }
        // What a driver does: fill the buffers, the sense, the status.
        for b in bufs.iter_mut() {
            b.fill(0xd5);
        }
        sense.fill(0x5e);
        self.answer()
    }
    fn get_aen(&mut self, _: &mut [u8; AEN_SIZE]) -> (c_int, c_int) {
        self.tool.called.set(true);
        (0, 0)
    }
}

impl NextIoctl for FakeDriver<'_> {
    fn fd(&self) -> c_int {
        3
    }
    fn available(&self) -> bool {
        true
    }
    fn pass_through(&mut self) -> (c_int, c_int) {
        self.tool.called.set(true);
        self.sent = Some(self.caller_packet.clone());
        self.answer()
    }
    fn send(&mut self, mut packet: PrivatePacket<'_>) -> (c_int, c_int) {
        self.tool.called.set(true);
        let bytes = packet.bytes_mut();
        self.sent = Some(bytes.to_vec());
        if self.enforce {
            assert_eq!(
                flags_of(bytes) & 0x26,
                0,
                "addressing flags reached the driver"
            );
        }
        let sent = decode(Abi::NATIVE, bytes).expect("a whole packet");
        let caller = decode(Abi::NATIVE, &self.caller_packet).expect("a whole packet");
        for (i, (s, c)) in sent.sgl.iter().zip(caller.sgl.iter()).enumerate() {
            if s == c {
                continue;
            }
            // Only the read-only policy's private copy of the SMP request replaces one.
            assert_eq!(i, SMP_REQUEST_SGE_INDEX, "sgl[{i}] changed");
            assert_eq!(s.len, c.len, "the lent request's length");
            assert!(
                !self.tool.inside(s.base),
                "the lent request is the caller's memory"
            );
        }
        // The driver writes the frame's status (its copy-back) and, as a driver copies every
        // buffer back, fills nothing of the caller's here: they are the caller's own.
        bytes[CMD_STATUS] = 0x2d;
        self.answer()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let in_place = options & 0x10 != 0;
    let abi = if !in_place && options & 1 != 0 {
        Abi::Ilp32
    } else {
        Abi::NATIVE
    };
    let size = abi.packet_size();
    if rest.len() < size {
        return;
    }
    let (packet, memory) = rest.split_at(size);
    let mut mem = vec![0u8; WINDOW];
    let n = memory.len().min(WINDOW - 0x1000);
    mem[0x1000..0x1000 + n].copy_from_slice(&memory[..n]);
    // The packet itself lives at the window's start.
    mem[..size].copy_from_slice(packet);
    let tool = Tool {
        mem: RefCell::new(mem),
        called: Cell::new(false),
        reads_after_call: RefCell::new(Vec::new()),
        writes: RefCell::new(Vec::new()),
    };
    let mode = match (options & 2 != 0, options & 4 != 0) {
        (true, _) => GuardMode::Audit,
        (false, true) => GuardMode::Readonly,
        (false, false) => GuardMode::Enforce,
    };
    let cfg = Config {
        mode,
        log: LogTarget::None,
        ..Config::FALLBACK
    };
    let enforce = mode != GuardMode::Audit;
    let mut driver = FakeDriver {
        tool: &tool,
        fail: options & 8 != 0,
        enforce,
        caller_packet: packet.to_vec(),
        sent: None,
    };
    let before = decode(abi, packet).expect("whole packet");
    let (answer, executed) = if in_place {
        let req = Request::new(Guard::Preload, abi, abi.firmware_request(), BASE).unwrap();
        let mut progress = Progress::default();
        let (ret, errno) = in_place::run(&cfg, false, req, &tool, &mut driver, &mut progress);
        assert_eq!(progress.kernel.is_some(), driver.sent.is_some());
        (Answer::of(ret, errno), driver.sent.is_some())
    } else {
        let req = Request::new(Guard::Supervisor, abi, abi.firmware_request(), BASE).unwrap();
        let d = copied::run(&cfg, req, &tool, &mut driver).delivery;
        assert_eq!(d.executed, driver.sent.is_some());
        (d.answer, d.executed)
    };
    // In enforce, a packet the rules refuse never reaches the driver. (The read-only SMP rule
    // decides on a request the strategies read themselves: its refusals are checked by the
    // flags above and the lent request below, not by a decision taken here without it.)
    if mode == GuardMode::Enforce {
        if let Decision::Reject(_) = decide_packet(&cfg.policy(), &before).decision() {
            assert!(!executed, "a packet the rules refuse reached the driver");
        }
    }
    if in_place {
        // Read after the call: only the status byte, for the record (audit mode's pass-through).
        for &(addr, len) in tool.reads_after_call.borrow().iter() {
            assert_eq!(
                (addr, len),
                (BASE + CMD_STATUS as u64, 1),
                "read after the call"
            );
        }
    } else {
        assert!(
            tool.reads_after_call.borrow().is_empty(),
            "the tool's memory was read after the call"
        );
    }
    if !executed {
        assert!(
            tool.writes.borrow().is_empty(),
            "written back without a driver call"
        );
    }
    // Every write-back lands where the driver writes: the status byte, and (copying) a used
    // buffer or the sense buffer, or (in place) the lent SMP request.
    let mut allowed: Vec<(u64, u64)> = vec![(BASE + CMD_STATUS as u64, 1)];
    if in_place {
        if let Some(iov) = before.smp_request_iovec() {
            if iov.len <= SMP_REQUEST_MAX {
                allowed.push((iov.base, iov.len));
            }
        }
    } else {
        allowed.extend(
            before
                .used_iovecs()
                .iter()
                .filter(|v| v.len > 0)
                .map(|v| (v.base, v.len)),
        );
        if before.sense_len > 0 {
            let at = before.sense_off as usize;
            let ptr = match abi {
                Abi::Lp64 => before.frame_u64(at),
                Abi::Ilp32 => before
                    .frame
                    .get(at..at + 4)
                    .map(|b| u64::from(u32::from_le_bytes(b.try_into().unwrap()))),
            };
            if let Some(p) = ptr {
                allowed.push((p, u64::from(before.sense_len)));
            }
        }
    }
    for &(addr, len) in tool.writes.borrow().iter() {
        assert!(
            allowed.iter().any(|&(a, l)| addr == a && len as u64 == l),
            "wrote {len} bytes at {addr:#x}, not a buffer of the packet"
        );
    }
    if executed && enforce {
        if let Answer::Errno(e) = answer {
            assert!(matches!(e.0, libc::EINVAL | libc::EFAULT), "errno {e}");
        }
    }
});
