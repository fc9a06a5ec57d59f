//! Fuzz target: the supervisor's guarded path (`mfiguard_core::guarded::guard_call`) on any
//! packet, in either layout, with a fake tool whose memory is the rest of the input and a fake
//! driver that checks what it is handed. Nothing panics, and:
//!
//! - every address in the private packet points into a buffer the private call owns, of the
//!   length the packet says (the `sgl[]` entries and the sense pointer), so a real driver
//!   handed it writes only there; nothing is copied beyond the rules' limits;
//! - in enforce mode a packet the rules refuse never reaches the driver, and what does has no
//!   addressing flags;
//! - after the driver, the tool's memory is written only where the driver would write (the
//!   used buffers, the sense buffer, the `cmd_status` byte), and only if the driver got that far;
//! - the tool's memory is read only before the driver is called.
//!
//! Input: one byte of options (bit 0: the i386 layout; bit 1: audit mode; bit 2: read-only;
//! bit 3: the driver fails), then the packet, then the tool's memory: a 64 KiB window starting
//! at address 0x10000, filled from what follows (the rest zero); anything outside it is
//! unreadable and unwritable, as a bad pointer is.

#![no_main]

use std::cell::{Cell, RefCell};
use std::ffi::c_int;

use libfuzzer_sys::fuzz_target;
use mfiguard_core::audit::{Guard, Invoker, Who};
use mfiguard_core::config::{Config, GuardMode, LogTarget};
use mfiguard_core::guarded::{
    guard_call, private_iovecs, Answer, Caller, Driver, Identity, PrivateCall, Request, AEN_SIZE,
};
use mfiguard_sanitizer::policy::{SENSE_LEN_MAX, SGE_LEN_MAX, SGE_TOTAL_MAX};
use mfiguard_sanitizer::{decode, Abi};

const BASE: u64 = 0x10000;
const WINDOW: usize = 64 * 1024;

struct Tool {
    mem: RefCell<Vec<u8>>,
    called: Cell<bool>,
    reads_after_call: Cell<u32>,
    writes: RefCell<Vec<(u64, usize)>>,
}

impl Tool {
    fn range(&self, addr: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(addr.checked_sub(BASE)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= WINDOW).then_some(start..end)
    }
}

impl Caller for Tool {
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), c_int> {
        if self.called.get() {
            self.reads_after_call.set(self.reads_after_call.get() + 1);
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
    fn identity(&self) -> Identity {
        Identity {
            who: Who { pid: 1, uid: 0 },
            exe: "fuzz".into(),
            invoker: Invoker::from_parts(None, None, None, b"fuzz\0"),
        }
    }
    fn deliver(&self, _: Answer) -> Result<(), c_int> {
        Ok(())
    }
}

struct FakeDriver<'t> {
    tool: &'t Tool,
    fail: bool,
    enforce: bool,
    seen: Option<[u8; 404]>,
}

impl Driver for FakeDriver<'_> {
    fn firmware(&mut self, call: &mut PrivateCall) -> (c_int, c_int) {
        self.tool.called.set(true);
        let packet = *call.packet();
        self.seen = Some(packet);
        let p = decode(Abi::Lp64, &packet).expect("a whole native packet");
        if self.enforce {
            assert_eq!(p.header().flags.get() & 0x26, 0, "addressing flags reached the driver");
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
            assert_eq!(ptr, sense.as_ptr() as u64, "the sense pointer is not the sense buffer");
            assert_eq!(sense.len(), p.sense_len as usize);
        }
        // What a driver does: fill the buffers, the sense, the status.
        for b in bufs.iter_mut() {
            b.fill(0xd5);
        }
        sense.fill(0x5e);
        if self.fail {
            (-1, libc::EINVAL)
        } else {
            (0, 0)
        }
    }
    fn get_aen(&mut self, _: &mut [u8; AEN_SIZE]) -> (c_int, c_int) {
        self.tool.called.set(true);
        (0, 0)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let abi = if options & 1 != 0 { Abi::Ilp32 } else { Abi::Lp64 };
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
        reads_after_call: Cell::new(0),
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
        seen: None,
    };
    let req = Request {
        code: abi.firmware_request(),
        arg: BASE,
        abi,
        guard: Guard::Supervisor,
    };
    let before = decode(abi, packet).expect("whole packet");
    let d = guard_call(&cfg, req, &tool, &mut driver);
    assert_eq!(tool.reads_after_call.get(), 0, "the tool's memory was read after the call");
    assert_eq!(d.executed, driver.seen.is_some());
    if !d.executed {
        assert!(tool.writes.borrow().is_empty(), "written back without a driver call");
    }
    // Every write-back lands in a used buffer, the sense buffer or the status byte.
    let mut allowed: Vec<(u64, u64)> = before
        .used_iovecs()
        .iter()
        .filter(|v| v.len > 0)
        .map(|v| (v.base, v.len))
        .collect();
    allowed.push((BASE + 0x16, 1));
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
    for &(addr, len) in tool.writes.borrow().iter() {
        assert!(
            allowed.iter().any(|&(a, l)| addr == a && len as u64 == l),
            "wrote {len} bytes at {addr:#x}, not a buffer of the packet"
        );
    }
    if d.executed && enforce {
        if let Answer::Errno(e) = d.answer {
            assert!(matches!(e, libc::EINVAL | libc::EFAULT), "errno {e}");
        }
    }
});
