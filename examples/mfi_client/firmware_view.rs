//! Packets whose firmware reads an address the driver did not write, for the end-to-end tests
//! and the kernel lane: `mfi_client firmware-view KIND WHERE [TARGET]`.
//!
//! Each puts a scatter/gather entry of the caller's choosing (`sge32 {WHERE, length}`) where the
//! frame type's firmware reads its SGL, and tells the driver (`sgl_off`) to write its own entry
//! one slot later; or moves what else the firmware reads. WHERE is a hex physical address, or
//! `canary`: a locked page of this process, filled with 0x5A, whose physical address comes from
//! `/proc/self/pagemap` (root only); after the call the client says whether the page changed
//! (`canary=untouched` or `canary=written bytes=N`; `canary=unavailable`, exit 4, when the page
//! has no physical address below 4 GiB to give).
//!
//!     dcmd       CTRL_GET_INFO, sgl_off 0x30: the firmware reads {WHERE, 4096} at 0x28
//!     pthru      INQUIRY to TARGET, sgl_off 0x38: the firmware reads {WHERE, 96} at 0x30
//!     stp        IDENTIFY to TARGET, sgl_off 0x40: response and data entries at 0x30, 0x38
//!     smp        DISCOVER, sgl_off 0x30: response and request entries at 0x20, 0x28
//!     sense      INQUIRY of an unsupported VPD page, sense_off 0x28: the firmware writes sense
//!                to the address at 0x18, which is 0 (WHERE unused)
//!     crash-dump MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS with a 4 KiB buffer (WHERE unused)
//!     past-frame a DCMD with 16 entries, then CTRL_GET_INFO with 16 empty ones: the firmware
//!                reads entries 11..15 past the 128 frame bytes, where the first call's driver
//!                entries were (WHERE unused)

use std::ffi::{c_int, c_ulong};

use mfiguard_sanitizer::abi::mfi::{
    MfiCmd, MR_DCMD_CTRL_GET_INFO, MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS,
};
use mfiguard_sanitizer::builder::{samples, PacketBuilder};
use mfiguard_sanitizer::RuleId;

use super::{
    buf_addr, ctrl_info_with, dcmd, inquiry_with, no_data, run_call, sense_at, stp_probe_with,
    Call, Opts, Report, ABI, DIR_READ,
};

/// The canary's fill byte.
const FILL: u8 = 0x5A;
const PAGE: usize = 4096;

/// A packet (and buffers) for one of the rules about what the firmware reads, triggering
/// exactly that rule.
pub(super) fn rule_call(h: u16, rule: RuleId) -> Result<Call, String> {
    Ok(match rule {
        // A toolbox frame, no data: its layout is not published.
        RuleId::FrameLayoutUnknown => no_data(h, MfiCmd::Toolbox, |b| b),
        // INQUIRY with its sense pointer at 0x28 (in the CDB past its 6 bytes) and 0 at 0x18.
        RuleId::SenseOffsetUnusual => inquiry_with(h, 8, 32, |b, sense| sense_at(b, 0x28, sense)),
        // CTRL_GET_INFO with eight entries, the last seven empty: entry 7's slot ends at 0x88.
        RuleId::SglEmptyEntryPastFrame => ctrl_info_with(h, 2048, |b| {
            (1..8)
                .fold(b.sge_count(8), |b, i| b.iovec(i, 0, 0))
                .header(|hd| hd.sge_count = 8)
        }),
        RuleId::DcmdHostAddress => {
            dcmd(h, MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS, 4096, Report::Nothing)
        }
        // IDENTIFY DEVICE to SATA disk 10 over STP with the response buffer only, and an
        // entry of the caller's in the data slot, which the driver never writes.
        RuleId::SglFixedEntryUnwritten => Call {
            report: Report::Nothing,
            ..stp_probe_with(h, 10, |b| {
                b.header(|hd| {
                    hd.flags = DIR_READ.into();
                    hd.sge_count = 1;
                    hd.data_xferlen = 20.into();
                })
                .sge_count(1)
                .frame_u32(0x38, 0x1234_5000)
                .frame_u32(0x3C, 512)
            })
        },
        other => return Err(format!("{other} is not a firmware-view rule")),
    })
}

/// Where the caller's entry points.
enum Where {
    Phys(u64),
    Canary(Canary),
}

/// A locked page of this process and its physical address.
struct Canary {
    page: *mut u8,
    phys: u64,
}

impl Canary {
    fn new() -> Option<Canary> {
        // SAFETY: an anonymous private mapping of one page, owned by this struct from here on
        // (never unmapped: the process is short-lived).
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | libc::MAP_LOCKED,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return None;
        }
        let page = page.cast::<u8>();
        // SAFETY: the page is ours, mapped read-write, PAGE bytes long.
        unsafe { std::ptr::write_bytes(page, FILL, PAGE) };
        let phys = physical_address(page as usize)?;
        (phys != 0 && phys + PAGE as u64 <= 1 << 32).then_some(Canary { page, phys })
    }

    /// Bytes of the page that no longer hold the fill.
    fn changed(&self) -> usize {
        // SAFETY: the page is ours and mapped; the controller may have written it by DMA, which
        // is what we look for (read after the call returned).
        let bytes = unsafe { std::slice::from_raw_parts(self.page, PAGE) };
        bytes.iter().filter(|b| **b != FILL).count()
    }
}

/// The physical address of a resident page of this process (`/proc/self/pagemap`: bit 63
/// present, bits 0..55 the frame number; zero without `CAP_SYS_ADMIN`).
fn physical_address(virt: usize) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open("/proc/self/pagemap").ok()?;
    let mut entry = [0u8; 8];
    f.read_exact_at(&mut entry, (virt / PAGE * 8) as u64).ok()?;
    let entry = u64::from_le_bytes(entry);
    (entry & (1 << 63) != 0).then_some((entry & ((1 << 55) - 1)) * PAGE as u64)
}

/// `firmware-view KIND WHERE [TARGET]`.
pub(super) fn run(fd: c_int, opts: &Opts) -> i32 {
    let (Some(kind), Some(at)) = (opts.args.first(), opts.args.get(1)) else {
        eprintln!("mfi_client: firmware-view needs KIND WHERE [TARGET]");
        return 2;
    };
    let target = opts
        .args
        .get(2)
        .and_then(|t| super::parse_num(t))
        .and_then(|t| u8::try_from(t).ok())
        .unwrap_or(0);
    let place = if at == "canary" {
        match Canary::new() {
            Some(c) => Where::Canary(c),
            None => {
                println!("canary=unavailable");
                return 4;
            }
        }
    } else {
        match super::parse_num(at) {
            Some(p) => Where::Phys(p),
            None => {
                eprintln!("mfi_client: WHERE is a hex address or canary");
                return 2;
            }
        }
    };
    let phys = match &place {
        Where::Phys(p) => *p,
        Where::Canary(c) => c.phys,
    };
    let h = opts.host;
    let call = match kind.as_str() {
        "dcmd" => ctrl_info_with(h, 4096, |b| {
            b.sgl_off(0x30)
                .frame_u32(0x28, phys as u32)
                .frame_u32(0x2C, 4096)
        }),
        "pthru" => inquiry_with(h, target, 32, |b, _| {
            b.sgl_off(0x38)
                .frame_u32(0x30, phys as u32)
                .frame_u32(0x34, 96)
        }),
        "stp" => Call {
            report: Report::Nothing,
            ..stp_probe_with(h, target, |b| {
                b.header(|hd| hd.flags = DIR_READ.into())
                    .sgl_off(0x40)
                    .frame_u32(0x30, phys as u32)
                    .frame_u32(0x34, 20)
                    .frame_u32(0x38, phys as u32 + 0x100)
                    .frame_u32(0x3C, 512)
            })
        },
        "smp" => {
            let mut response = vec![0u8; 64];
            let mut request = vec![0u8; 40];
            request[..4].copy_from_slice(&[0x40, 0x10, 0, 0]);
            let packet = PacketBuilder::new(ABI)
                .host_no(h)
                .sgl_off(0x30)
                .sge_count(2)
                .iovec(0, buf_addr(&mut response), 64)
                .iovec(1, buf_addr(&mut request), 40)
                .frame_header(MfiCmd::Smp, DIR_READ, 2, 64)
                .frame_u32(0x20, phys as u32)
                .frame_u32(0x24, 64)
                .frame_u32(0x28, phys as u32 + 0x100)
                .frame_u32(0x2C, 40)
                .build();
            Call {
                packet,
                request: c_ulong::from(ABI.firmware_request()),
                bufs: vec![response, request],
                report: Report::Nothing,
                label: None,
            }
        }
        // EVPD page 0x99, which no disk has: CHECK CONDITION, so the firmware writes sense.
        "sense" => inquiry_with(h, target, 32, |b, sense| {
            sense_at(b, 0x28, sense).frame_bytes(0x20, &[0x12, 0x01, 0x99, 0x00, 96, 0x00])
        }),
        "crash-dump" => dcmd(h, MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS, 4096, Report::Nothing),
        "past-frame" => {
            // First a DCMD whose driver writes sixteen entries, up to 0xA8 (sge32) or 0xE8 (sge64).
            let mut bufs: Vec<Vec<u8>> = (0..16).map(|_| vec![0u8; 1024]).collect();
            let mut b = samples::dcmd_read(ABI, MR_DCMD_CTRL_GET_INFO, 0, 0)
                .host_no(h)
                .sge_count(16)
                .header(|hd| hd.sge_count = 1);
            for (i, buf) in bufs.iter_mut().enumerate() {
                b = b.iovec(i, buf_addr(buf), 1024);
            }
            let mut first = b.build();
            let o = super::issue(fd, c_ulong::from(ABI.firmware_request()), &mut first);
            println!("first ret={} errno={}", o.ret, o.errno);
            drop(bufs);
            // Then sixteen empty entries, all of which the firmware reads.
            let packet = (0..16)
                .fold(
                    samples::dcmd_read(ABI, MR_DCMD_CTRL_GET_INFO, 0, 0)
                        .host_no(h)
                        .sge_count(16),
                    |b, i| b.iovec(i, 0, 0),
                )
                .header(|hd| {
                    hd.sge_count = 16;
                    hd.data_xferlen = 0.into();
                })
                .build();
            Call {
                packet,
                request: c_ulong::from(ABI.firmware_request()),
                bufs: Vec::new(),
                report: Report::Nothing,
                label: None,
            }
        }
        other => {
            eprintln!("mfi_client: unknown firmware-view kind {other}");
            return 2;
        }
    };
    let code = run_call(fd, opts, call);
    if let Where::Canary(c) = &place {
        match c.changed() {
            0 => println!("canary=untouched"),
            n => println!("canary=written bytes={n}"),
        }
    }
    code
}
