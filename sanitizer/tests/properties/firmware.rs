//! The firmware-view oracle: a naive model of the driver and of the firmware behind it, written
//! apart from the rules (it imports nothing of the sanitizer's but the layout enum), that takes
//! the packet the guard sends and says whether every address the firmware uses is one the
//! driver wrote.
//!
//! The driver, in three configurations ([`DRIVERS`]): Linux 6.1 with 64-bit DMA (12-byte `sge64`
//! entries, 8-byte sense address, `IEEE` cleared and `SGL64|SENSE64` set), 6.1 without it
//! (8-byte `sge32` entries, 8-byte sense address, all three flags cleared) and the pre-3.3
//! driver (8-byte entries, 4-byte sense address, the caller's flags kept, no check at all). Each
//! copies the 128 frame bytes into a 256-byte frame slot whose other bytes it does not clear
//! (what they hold is unknown: `Stale`), and tags every byte with who wrote it.
//!
//! The firmware, from the frame layouts of Linux's `megaraid_sas.h`, QEMU's `hw/scsi/megasas.c`
//! and the BSD `mfireg.h`, restated here: the SGL at 0x28 (DCMD, LD read/write), 0x30 (LD/PD
//! SCSI, STP) or 0x20 (SMP), `hdr.sge_count` entries (SMP and STP: at least their two) at the
//! stride of the flags the driver left (`IEEE` 16, `SGL64` 12, else 8); the sense address at 0x18 of LD read/write and LD/PD SCSI
//! frames whenever `hdr.sense_len` is not 0 (4 bytes, 8 with `SENSE64`); INIT and ABORT frames
//! read physical addresses no driver fills; NVMe and toolbox frames are read nobody knows where;
//! and five DCMDs hand the firmware host memory to keep.
//!
//! The verdict: every entry the firmware reads is either all zero (no DMA) in bytes the
//! driver copied from the packet, or exactly one entry the driver wrote (its address and its
//! length, in order); the sense address is exactly the one the driver wrote, for a buffer at
//! least `hdr.sense_len` long; and the driver never wrote outside its frame slot.
//!
//! Then the driver's completion (`megasas_complete_cmd`, alike in every driver from the first
//! one to 6.1): it hands a frame from the ioctl back to its caller, except LD read and LD write
//! frames, which it completes through the block layer's SCSI command: a frame from the ioctl
//! has none, and the NULL dereference in interrupt kills the kernel; and no driver completes a
//! frame whose flags keep `DONT_POST_IN_REPLY_QUEUE` as an ioctl's (see [`completion`]).

#![allow(dead_code)] // each includer uses a different part

use mfiguard_sanitizer::Abi;

/// Which driver runs the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// Linux 6.1's `megasas_mgmt_fw_ioctl`; `dma64`: the controller's consistent DMA mask is
    /// 64-bit (Ventura and later), so it writes `sge64` entries.
    Linux61 { dma64: bool },
    /// A driver before Linux 3.3: `sge32` entries, a 4-byte sense address, the caller's flags.
    Legacy,
}

/// Every driver configuration the property runs.
pub const DRIVERS: [Driver; 3] = [
    Driver::Linux61 { dma64: true },
    Driver::Linux61 { dma64: false },
    Driver::Legacy,
];

/// The packet the guard sends, as the driver reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub sgl_off: u32,
    pub sge_count: u32,
    pub sense_off: u32,
    pub sense_len: u32,
    pub frame: [u8; 128],
    pub lens: [u64; 16],
}

impl Sent {
    /// Reads a whole packet (host-endian fields, the frame at 0x14, `sgl[]` at 0x94).
    pub fn parse(abi: Abi, b: &[u8]) -> Sent {
        let ne32 = |at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
        let ne64 = |at: usize| u64::from_ne_bytes(b[at..at + 8].try_into().unwrap());
        let mut frame = [0u8; 128];
        frame.copy_from_slice(&b[0x14..0x94]);
        let mut lens = [0u64; 16];
        for (i, len) in lens.iter_mut().enumerate() {
            *len = match abi {
                Abi::Lp64 => ne64(0x94 + 16 * i + 8),
                Abi::Ilp32 => u64::from(ne32(0x94 + 8 * i + 4)),
            };
        }
        Sent {
            sgl_off: ne32(0x04),
            sge_count: ne32(0x08),
            sense_off: ne32(0x0C),
            sense_len: ne32(0x10),
            frame,
            lens,
        }
    }
}

/// Who wrote a byte of the frame the firmware reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Copied from the packet.
    Caller,
    /// Not written for this command: whatever the frame slot held.
    Stale,
    /// The driver's own header fields (context, pad_0, flags).
    Header,
    /// Byte `byte` of the scatter/gather entry the driver wrote for `sgl[entry]`.
    Sge { entry: usize, byte: usize },
    /// Byte `byte` of the sense buffer's address.
    Sense { byte: usize },
}

/// The driver's frame slot (Fusion controllers; older ones have 1024 bytes, so 256 is the
/// bound every driver keeps).
const SLOT: usize = 256;

/// The frame as the firmware finds it.
struct Frame {
    bytes: [u8; SLOT],
    origin: [Origin; SLOT],
}

impl Frame {
    fn write(
        &mut self,
        at: u64,
        data: &[u8],
        origin: impl Fn(usize) -> Origin,
    ) -> Result<(), String> {
        let end = at + data.len() as u64;
        if end > SLOT as u64 {
            return Err(format!(
                "the driver writes [{at:#x}, {end:#x}), past its {SLOT}-byte frame slot"
            ));
        }
        for (k, byte) in data.iter().enumerate() {
            self.bytes[at as usize + k] = *byte;
            self.origin[at as usize + k] = origin(k);
        }
        Ok(())
    }
    fn le(&self, at: usize, n: usize) -> u64 {
        (0..n).fold(0, |v, k| v | u64::from(self.bytes[at + k]) << (8 * k))
    }
}

/// A bus address for the driver's buffer of `sgl[entry]` (and for the sense buffer): distinct,
/// non-zero, above 4 GiB in the 64-bit configuration.
fn dma_addr(driver: Driver, entry: usize) -> u64 {
    let base = match driver {
        Driver::Linux61 { dma64: true } => 0x1_2340_0000,
        _ => 0x9100_0000,
    };
    base + 0x10_0000 * (entry as u64 + 1)
}

/// The DCMDs that give the firmware host memory to keep, or that the driver takes for its own:
/// opcode, and the mailbox byte that makes it so (`None`: any mailbox). From Linux's
/// `megaraid_sas.h` and `megaraid_sas_fusion.h` (`MR_DCMD_CTRL_EVENT_WAIT`, the AEN
/// registration; `MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS`, `MR_DCMD_CTRL_SHARED_HOST_MEM_ALLOC`;
/// `MR_DCMD_LD_MAP_GET_INFO` and `MR_DCMD_SYSTEM_PD_MAP_GET_INFO`, whose pended form the firmware
/// keeps and whose every form a Fusion controller reset hands back to the pool under a waiting
/// ioctl, `megasas_refire_mgmt_cmd`) and FreeBSD's `mfireg.h` (`MFI_DCMD_CTRL_MFI_HOST_MEM_ALLOC`).
pub const HOST_MEMORY_DCMDS: [(u32, Option<(usize, u8)>); 6] = [
    (0x0104_0500, None),
    (0x0119_0100, None),
    (0x010e_8485, None),
    (0x0100_e100, None),
    (0x0300_e101, None),
    (0x0200_e102, None),
];

/// What the firmware reads in a frame of command `cmd`: the SGL offset and the sense address
/// slot, or why the frame may not reach it at all.
pub fn layout(cmd: u8) -> Result<(usize, Option<usize>), String> {
    match cmd {
        0x05 => Ok((0x28, None)),
        0x01 | 0x02 => Ok((0x28, Some(0x18))),
        0x03 | 0x04 => Ok((0x30, Some(0x18))),
        0x07 => Ok((0x20, None)),
        0x08 => Ok((0x30, None)),
        0x00 => Err("an INIT frame reaches the firmware: it reads queue addresses at 0x18".into()),
        0x06 => Err("an ABORT frame reaches the firmware: it reads a frame address at 0x20".into()),
        0x09 | 0x0A => Err(format!(
            "a {cmd:#04x} frame reaches the firmware, which reads its addresses nobody knows where"
        )),
        _ => Err(format!("an unknown frame {cmd:#04x} reaches the firmware")),
    }
}

/// How many SGL entries the firmware of a `cmd` frame reads when its header says `hdr_sge_count`:
/// that many, but at least both entries of SMP and STP frames, whose layout has exactly two
/// with fixed roles (`struct megasas_smp_frame` and `megasas_stp_frame`: `sge32[2]`/`sge64[2]`;
/// BSD `struct mfi_smp_frame`, `mfi_stp_frame`: `sg32[2]`/`sg64[2]`; SMP: response, request;
/// STP: the response FIS, the data), so a firmware may take either by its role, whatever the
/// count says.
pub fn entries_read(cmd: u8, hdr_sge_count: u8) -> usize {
    let n = usize::from(hdr_sge_count);
    match cmd {
        0x07 | 0x08 => n.max(2),
        _ => n,
    }
}

/// Runs `sent` through `driver`, the firmware and the driver's completion. `Ok` when the driver
/// refuses it, or when the firmware uses only addresses the driver wrote and the driver
/// completes the frame as an ioctl's; `Err` says what would go wrong.
pub fn check(driver: Driver, sent: &Sent) -> Result<(), String> {
    if addresses(driver, sent)? {
        // Every driver leaves DONT_POST_IN_REPLY_QUEUE as the caller set it (6.1 rewrites only
        // IEEE, SGL64 and SENSE64).
        completion(
            sent.frame[0],
            u16::from_le_bytes([sent.frame[0x10], sent.frame[0x11]]),
        )?;
    }
    Ok(())
}

/// How the driver completes a frame of command `cmd`, with header flags `flags`, that came
/// from the ioctl.
///
/// `MFI_FRAME_DONT_POST_IN_REPLY_QUEUE` (0x0001) tells the firmware not to post the
/// completion: the driver's own polled commands (`megasas_issue_polled`) set it and watch
/// `cmd_status` instead. The ioctl waits for the interrupt (`megasas_issue_blocked_cmd`,
/// `wait_event` without a timeout): on an MFI controller it never comes, and the caller hangs
/// in D state with the frame and a slot of `ioctl_sem`; on a Fusion controller
/// `build_mpt_mfi_pass_thru` marks the frame `DRV_DCMD_POLLED_MODE`, and the reply handler
/// returns it to the pool without waking the ioctl, which wakes when the frame's next user
/// completes and then frees DMA buffers by that command's entries and returns the frame twice.
pub fn completion(cmd: u8, flags: u16) -> Result<(), String> {
    if flags & 0x0001 != 0 {
        return Err(format!(
            "flags {flags:#06x}: DONT_POST_IN_REPLY_QUEUE reaches the firmware, so the ioctl's \
             completion is never posted (a hang on MFI controllers; on Fusion ones the frame \
             returns to the pool while the ioctl still waits on it)"
        ));
    }
    match cmd {
        0x01 | 0x02 => Err(format!(
            "the driver completes the {cmd:#04x} (LD read/write) frame through the block \
             layer's SCSI command, which a frame from the ioctl has not: a NULL dereference in \
             interrupt"
        )),
        _ => Ok(()),
    }
}

/// Runs `sent` through `driver` and the firmware: `Ok(false)` when the driver refuses it,
/// `Ok(true)` when it issues it and the firmware uses only addresses the driver wrote; `Err`
/// says what the firmware would use.
pub fn addresses(driver: Driver, sent: &Sent) -> Result<bool, String> {
    let legacy = driver == Driver::Legacy;
    if sent.sge_count > 16 {
        if legacy {
            return Err(format!(
                "sge_count {}: the legacy driver reads past sgl[16]",
                sent.sge_count
            ));
        }
        return Ok(false); // 6.1: EINVAL
    }
    if !legacy && sent.frame[0] >= 0x0B {
        return Ok(false); // 6.1: ENOTSUPP
    }
    let mut f = Frame {
        bytes: [0; SLOT],
        origin: [Origin::Stale; SLOT],
    };
    f.write(0, &sent.frame, |_| Origin::Caller)?;
    f.write(0x08, &[0x11, 0x22, 0x33, 0x44], |_| Origin::Header)?; // context
    f.write(0x0C, &[0; 4], |_| Origin::Header)?; // pad_0
    let mut flags = u16::from_le_bytes([sent.frame[0x10], sent.frame[0x11]]);
    match driver {
        Driver::Linux61 { dma64 } => {
            flags &= !0x0020;
            if dma64 {
                flags |= 0x0006;
            } else {
                flags &= !0x0006;
            }
            f.write(0x10, &flags.to_le_bytes(), |_| Origin::Header)?;
        }
        Driver::Legacy => {}
    }
    let entry = match driver {
        Driver::Linux61 { dma64: true } => 12,
        _ => 8,
    };
    for (i, &len) in sent.lens.iter().enumerate().take(sent.sge_count as usize) {
        if len == 0 {
            continue;
        }
        let addr = dma_addr(driver, i);
        let mut e = Vec::new();
        if entry == 12 {
            e.extend_from_slice(&addr.to_le_bytes());
        } else {
            e.extend_from_slice(&(addr as u32).to_le_bytes());
        }
        e.extend_from_slice(&(len as u32).to_le_bytes());
        let at = u64::from(sent.sgl_off) + (i * entry) as u64;
        f.write(at, &e, |byte| Origin::Sge { entry: i, byte })?;
    }
    if sent.sense_len != 0 {
        if !legacy && sent.sense_off > 56 {
            return Ok(false); // 6.1: EINVAL before the frame is issued
        }
        let addr = dma_addr(driver, 16);
        let bytes = if legacy {
            (addr as u32).to_le_bytes().to_vec()
        } else {
            addr.to_le_bytes().to_vec()
        };
        f.write(u64::from(sent.sense_off), &bytes, |byte| Origin::Sense {
            byte,
        })?;
    }

    // The firmware.
    let cmd = f.bytes[0];
    let (sgl_at, sense_at) = layout(cmd)?;
    if cmd == 0x05 {
        let opcode = f.le(0x18, 4) as u32;
        let mbox = &f.bytes[0x1C..0x28];
        if HOST_MEMORY_DCMDS
            .iter()
            .any(|(op, m)| *op == opcode && m.is_none_or(|(i, v)| mbox[i] == v))
        {
            return Err(format!(
                "DCMD {opcode:#010x} hands the firmware host memory to keep"
            ));
        }
    }
    let flags = f.le(0x10, 2) as u16;
    let stride = if flags & 0x0020 != 0 {
        16
    } else if flags & 0x0002 != 0 {
        12
    } else {
        8
    };
    let addr_len = if stride == 8 { 4 } else { 8 };
    for j in 0..entries_read(cmd, f.bytes[7]) {
        let at = sgl_at + j * stride;
        if at + stride > SLOT {
            return Err(format!(
                "the firmware reads SGL entry {j} at {at:#x}, past the frame slot"
            ));
        }
        let fields = at..at + addr_len + 4;
        let origins: Vec<Origin> = fields.clone().map(|k| f.origin[k]).collect();
        let driver_entry = match origins.first() {
            Some(Origin::Sge { entry: e, byte: 0 }) => origins
                .iter()
                .enumerate()
                .all(|(k, o)| *o == Origin::Sge { entry: *e, byte: k }),
            _ => false,
        };
        let no_dma =
            origins.iter().all(|o| *o == Origin::Caller) && fields.clone().all(|k| f.bytes[k] == 0);
        if !driver_entry && !no_dma {
            return Err(format!(
                "the firmware's SGL entry {j} at {at:#x} (stride {stride}) is address {:#x} \
                 length {} from {origins:?}: not an entry the driver wrote",
                f.le(at, addr_len),
                f.le(at + addr_len, 4)
            ));
        }
    }
    if let Some(slot) = sense_at {
        let hdr_sense_len = u32::from(f.bytes[1]);
        if hdr_sense_len > 0 {
            let n = if flags & 0x0004 != 0 { 8 } else { 4 };
            let exact = (0..n).all(|k| f.origin[slot + k] == Origin::Sense { byte: k });
            if !exact {
                let origins: Vec<Origin> = (slot..slot + n).map(|k| f.origin[k]).collect();
                return Err(format!(
                    "the firmware writes {hdr_sense_len} bytes of sense to {:#x} from {origins:?}: \
                     not the sense address the driver wrote",
                    f.le(slot, n)
                ));
            }
            if hdr_sense_len > sent.sense_len {
                return Err(format!(
                    "the firmware writes {hdr_sense_len} bytes of sense into a {}-byte buffer",
                    sent.sense_len
                ));
            }
        }
    }
    Ok(true)
}

/// [`check`] for every driver configuration.
pub fn check_every_driver(abi: Abi, bytes: &[u8]) -> Result<(), String> {
    let sent = Sent::parse(abi, bytes);
    for driver in DRIVERS {
        check(driver, &sent).map_err(|e| format!("{driver:?}: {e}"))?;
    }
    Ok(())
}

/// [`addresses`] for every driver configuration: what the firmware reads, whatever the
/// completion then does.
pub fn addresses_every_driver(abi: Abi, bytes: &[u8]) -> Result<(), String> {
    let sent = Sent::parse(abi, bytes);
    for driver in DRIVERS {
        addresses(driver, &sent).map_err(|e| format!("{driver:?}: {e}"))?;
    }
    Ok(())
}
