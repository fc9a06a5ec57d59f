//! The scenarios: each parsed into the call (or the run) it makes, and a packet per rule.

use super::*;

// ---- scenarios -------------------------------------------------------------------------------

pub(crate) enum Plan {
    Call(Call),
    Aen,
    Unrelated,
    Poll(c_int),
    Fault(String),
    Race(u64),
    SmpRace(u64),
    Threads(usize, u64),
    Stress(usize, u64),
    Fork(usize, u64),
    ConfigInherit(String, String),
    ForkDuringLoad,
    Signals(u64, u64),
    SignalInKernel,
    Lines,
    CompatInt80(String),
    Soak,
    Dl,
    FirmwareView,
}

/// What to print from the buffers after a call.
#[derive(Clone, Copy)]
pub(crate) enum Report {
    CtrlInfo,
    PdList,
    LdList,
    EventInfo,
    Inquiry,
    Stp,
    Smp,
    Nothing,
}

/// One MEGASAS_IOC_FIRMWARE call: the packet and the buffers its iovecs point at.
pub(crate) struct Call {
    pub(crate) packet: Vec<u8>,
    pub(crate) request: c_ulong,
    /// Data buffers (and the sense buffer last, for pass-through): the packet holds their
    /// addresses, so they live as long as the call.
    pub(crate) bufs: Vec<Vec<u8>>,
    pub(crate) report: Report,
    /// A line printed before the result details, e.g. `rule=sgl.bounds`.
    pub(crate) label: Option<String>,
}

pub(crate) fn buf_addr(b: &mut [u8]) -> u64 {
    b.as_mut_ptr() as u64
}

pub(crate) fn dcmd(host: u16, opcode: u32, len: usize, report: Report) -> Call {
    let mut buf = vec![0u8; len];
    let packet = samples::dcmd_read(ABI, opcode, buf_addr(&mut buf), len as u32)
        .host_no(host)
        .build();
    Call {
        packet,
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![buf],
        report,
        label: None,
    }
}

/// A frame of `cmd` and no data buffer, with a builder edit applied before it is built.
pub(crate) fn no_data(
    host: u16,
    cmd: MfiCmd,
    edit: impl FnOnce(PacketBuilder) -> PacketBuilder,
) -> Call {
    let b = PacketBuilder::new(ABI)
        .host_no(host)
        .frame_header(cmd, 0, 0, 0);
    Call {
        packet: edit(b).build(),
        request: c_ulong::from(ABI.firmware_request()),
        bufs: Vec::new(),
        report: Report::Nothing,
        label: None,
    }
}

/// MegaCli 8.01.06's STP IDENTIFY probe (a 20-byte response FIS, 512 bytes of data), with a
/// builder edit applied before the packet is built.
pub(crate) fn stp_probe_with(
    host: u16,
    target: u8,
    edit: impl FnOnce(PacketBuilder) -> PacketBuilder,
) -> Call {
    let mut fis = vec![0u8; 20];
    let mut data = vec![0u8; 512];
    let b =
        samples::megacli_8_01_06_stp_probe(ABI, target, buf_addr(&mut fis), buf_addr(&mut data))
            .host_no(host);
    Call {
        packet: edit(b).build(),
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![fis, data],
        report: Report::Stp,
        label: None,
    }
}

/// CTRL_GET_INFO, with a builder edit applied before the packet is built.
pub(crate) fn ctrl_info_with(
    host: u16,
    len: usize,
    edit: impl FnOnce(PacketBuilder) -> PacketBuilder,
) -> Call {
    let mut buf = vec![0u8; len];
    let b = samples::dcmd_read(ABI, MR_DCMD_CTRL_GET_INFO, buf_addr(&mut buf), len as u32)
        .host_no(host);
    Call {
        packet: edit(b).build(),
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![buf],
        report: Report::CtrlInfo,
        label: None,
    }
}

/// INQUIRY pass-through (96 bytes, sense at 0x18), with a builder edit; the sense buffer is
/// `sense_buf_len` bytes (the packet's sense_len stays 32 unless the edit changes it).
pub(crate) fn inquiry_with(
    host: u16,
    target: u8,
    sense_buf_len: usize,
    edit: impl FnOnce(PacketBuilder, u64) -> PacketBuilder,
) -> Call {
    let mut buf = vec![0u8; 96];
    let mut sense = vec![0u8; sense_buf_len];
    let sense_addr = buf_addr(&mut sense);
    let b = samples::scsi_inquiry(ABI, target, buf_addr(&mut buf), 96, sense_addr).host_no(host);
    Call {
        packet: edit(b, sense_addr).build(),
        request: c_ulong::from(ABI.firmware_request()),
        bufs: vec![buf, sense],
        report: Report::Inquiry,
        label: None,
    }
}

pub(crate) fn target_arg(opts: &Opts) -> Result<u8, String> {
    arg_num(opts, "a TARGET")
        .and_then(|v| u8::try_from(v).map_err(|_| "TARGET must be 0..255".to_owned()))
}

pub(crate) fn prepare(opts: &Opts) -> Result<Plan, String> {
    let h = opts.host;
    let call = match opts.scenario.as_str() {
        "ctrl-info" => dcmd(h, MR_DCMD_CTRL_GET_INFO, 2048, Report::CtrlInfo),
        "pd-list" => dcmd(h, MR_DCMD_PD_GET_LIST, 4096, Report::PdList),
        // QEMU refuses an LD list buffer larger than struct mfi_ld_list (8 + 64 * 16 bytes).
        "ld-list" => dcmd(h, MR_DCMD_LD_GET_LIST, 8 + 64 * 16, Report::LdList),
        "event-info" => dcmd(h, MR_DCMD_CTRL_EVENT_GET_INFO, 20, Report::EventInfo),
        "inquiry" => inquiry_with(h, target_arg(opts)?, 32, |b, _| b),
        "stp-probe" => stp_probe_with(h, target_arg(opts)?, |b| b),
        "ieee-dcmd" => ctrl_info_with(h, 2048, |b| add_flags(b, IEEE_SGL64)),
        "high-bits" => {
            let mut c = ctrl_info_with(h, 2048, |b| add_flags(b, IEEE_SGL64));
            if cfg!(target_pointer_width = "64") {
                c.request |= 1 << (c_ulong::BITS - 32);
            }
            c
        }
        "sgl-off" => {
            let off = u32::try_from(arg_num(opts, "HEXOFF")?).map_err(|_| "HEXOFF too big")?;
            ctrl_info_with(h, 2048, |b| b.sgl_off(off))
        }
        "sense-off" => {
            let off = u32::try_from(arg_num(opts, "HEXOFF")?).map_err(|_| "HEXOFF too big")?;
            inquiry_with(h, 8, 32, |b, sense| sense_at(b, off, sense))
        }
        "ld-read" => {
            let target = target_arg(opts)?;
            let mut buf = vec![0u8; 512];
            Call {
                packet: samples::ld_io(ABI, MfiCmd::LdRead, target, buf_addr(&mut buf))
                    .host_no(h)
                    .build(),
                request: c_ulong::from(ABI.firmware_request()),
                bufs: vec![buf],
                report: Report::Nothing,
                label: None,
            }
        }
        "rule" => {
            let id = opts.args.first().ok_or("rule needs a RULE_ID (or pass)")?;
            let mut c = rule_call(h, id)?;
            c.label = Some(format!("rule={id}"));
            c
        }
        "aen" => return Ok(Plan::Aen),
        "unrelated" => return Ok(Plan::Unrelated),
        "poll" => {
            return Ok(Plan::Poll(
                arg_num(opts, "milliseconds")?.min(60_000) as c_int
            ))
        }
        "fault" => {
            let kind = opts.args.first().ok_or("fault needs a KIND")?;
            if !FAULT_KINDS.contains(&kind.as_str()) {
                return Err(format!("unknown fault kind {kind}"));
            }
            return Ok(Plan::Fault(kind.clone()));
        }
        "race" => return Ok(Plan::Race(arg_num(opts, "a count")?.max(1))),
        "dcmd" => dcmd_raw(h, opts)?,
        "smp" => {
            let f = arg_num(opts, "a FUNCTION")?;
            let f = u8::try_from(f).map_err(|_| "FUNCTION must be 0..255")?;
            match opts.args.get(1).map(String::as_str) {
                None => smp_call(h, f, 40, None),
                // A request buffer longer than any SMP request frame (and than a page).
                Some("long") => smp_call(h, f, 8192, None),
                // The request's iov_base points at a page that is not mapped.
                Some("unmapped") => smp_call(h, f, 40, Some(unmapped_page())),
                Some(other) => return Err(format!("unknown smp variant {other}")),
            }
        }
        "smp-race" => return Ok(Plan::SmpRace(arg_num(opts, "a count")?.max(1))),
        "threads" => {
            let n = arg_num(opts, "THREADS CALLS")?.clamp(1, 256);
            let m = opts
                .args
                .get(1)
                .and_then(|a| parse_num(a))
                .ok_or("threads needs THREADS CALLS")?
                .max(1);
            return Ok(Plan::Threads(n as usize, m));
        }
        "stress" | "fork" | "signals" => {
            let a = arg_num(opts, "two numbers")?;
            let b = opts
                .args
                .get(1)
                .and_then(|a| parse_num(a))
                .ok_or_else(|| format!("{} needs two numbers", opts.scenario))?;
            return Ok(match opts.scenario.as_str() {
                "stress" => Plan::Stress(a.clamp(1, 256) as usize, b),
                "fork" => Plan::Fork(a.clamp(1, 256) as usize, b),
                _ => Plan::Signals(a, b.max(1)),
            });
        }
        "config-inherit" => {
            let kv = opts.args.first().ok_or("config-inherit needs KEY=VALUE")?;
            let (k, v) = kv.split_once('=').ok_or("config-inherit needs KEY=VALUE")?;
            return Ok(Plan::ConfigInherit(k.to_owned(), v.to_owned()));
        }
        "fork-during-load" => return Ok(Plan::ForkDuringLoad),
        "signal-in-kernel" => return Ok(Plan::SignalInKernel),
        "lines" => return Ok(Plan::Lines),
        "compat-int80" => {
            let kind = opts
                .args
                .first()
                .ok_or("compat-int80 needs stp-probe or sgl-off")?;
            return Ok(Plan::CompatInt80(kind.clone()));
        }
        "soak" | "private-race" => return Ok(Plan::Soak),
        "dl-ioctl" | "dl-lookups" | "dl-limit" => return Ok(Plan::Dl),
        "firmware-view" => return Ok(Plan::FirmwareView),
        other => return Err(format!("unknown scenario {other}")),
    };
    Ok(Plan::Call(call))
}

pub(crate) fn add_flags(b: PacketBuilder, flags: u16) -> PacketBuilder {
    b.header(|h| h.flags.set(h.flags.get() | flags))
}

/// Moves the caller's sense pointer to `off` (if it fits in the frame) and clears 0x18.
pub(crate) fn sense_at(b: PacketBuilder, off: u32, sense: u64) -> PacketBuilder {
    let b = b.sense_off(off).frame_u64(0x18, 0);
    let ptr = ABI.iovec_size() / 2;
    if (off as usize).saturating_add(ptr) <= 128 {
        match ABI {
            Abi::Lp64 => b.frame_u64(off as usize, sense),
            Abi::Ilp32 => b.frame_u32(off as usize, sense as u32),
        }
    } else {
        b
    }
}

/// A packet that triggers exactly one rule (and nothing else), for every rule of the policy.
pub(crate) fn rule_call(h: u16, id: &str) -> Result<Call, String> {
    if id == "pass" {
        return Ok(dcmd(h, MR_DCMD_CTRL_GET_INFO, 2048, Report::Nothing));
    }
    let rule = RuleId::from_name(id).ok_or_else(|| format!("unknown rule id {id}"))?;
    let mut call = match rule {
        // The seed's flags on a plain DCMD.
        RuleId::FrameAddressingFlags => ctrl_info_with(h, 2048, |b| add_flags(b, IEEE_SGL64)),
        // A plain DCMD that asks the firmware not to post its completion.
        RuleId::FrameDontPostFlag => ctrl_info_with(h, 2048, |b| {
            add_flags(b, MfiFrameFlags::DONT_POST_IN_REPLY_QUEUE.bits())
        }),
        // One sgl[] entry more than the packet has.
        RuleId::IocSgeCount => ctrl_info_with(h, 2048, |b| b.sge_count(17)),
        // A command code past MFI_CMD_OP_COUNT.
        RuleId::FrameCmd => ctrl_info_with(h, 2048, |b| b.header(|hd| hd.cmd = 0x0B)),
        // MFI_CMD_INIT with a queue-info physical address of the caller's choosing.
        RuleId::FrameCmdForbidden => no_data(h, MfiCmd::Init, |b| b.frame_u64(0x18, 0x1234_5000)),
        // The driver writes the SGL 256 KiB past its frame (which is never the frame's own SGL
        // offset: `sgl.offset-unusual` comes with it).
        RuleId::SglBounds => ctrl_info_with(h, 2048, |b| b.sgl_off(0x40000)),
        // The sense address written 1 MiB past the frame (the caller's pointer is nowhere).
        RuleId::SenseBounds => inquiry_with(h, 8, 32, |b, sense| sense_at(b, 0x10_0000, sense)),
        // An 8 KiB sense buffer.
        RuleId::SenseLength => inquiry_with(h, 8, 8192, |b, _| b.sense_len(8192)),
        // A 17 MiB DCMD buffer.
        RuleId::SgeLength => ctrl_info_with(h, 17 << 20, |b| b),
        // hdr.sge_count 2 for one buffer, and caller bytes where a second sge32 would be.
        RuleId::SglStaleEntry => ctrl_info_with(h, 2048, |b| {
            b.header(|hd| hd.sge_count = 2)
                .frame_u32(0x30, 0x1234_5000)
                .frame_u32(0x34, 4096)
        }),
        // No sense buffer, but a physical sense address in the pass-through frame.
        RuleId::FrameRawPhysicalAddress => inquiry_with(h, 8, 32, |b, _| {
            b.sense_off(0)
                .sense_len(0)
                .header(|hd| hd.sense_len = 0)
                .frame_u64(0x18, 0x1234_5000)
        }),
        // The frame claims 96 bytes of sense for a 32-byte buffer, and the command fails (an
        // unsupported VPD page), so the firmware writes sense.
        RuleId::SenseLengthMismatch => inquiry_with(h, 8, 32, |b, _| {
            b.header(|hd| hd.sense_len = 96)
                .frame_bytes(0x20, &[0x12, 0x01, 0x99, 0x00, 96, 0x00])
        }),
        // data_xferlen twice the buffer.
        RuleId::XferLength => ctrl_info_with(h, 2048, |b| b.header(|hd| hd.data_xferlen.set(4096))),
        // The SGL one slot later than a DCMD keeps it (still inside the frame).
        RuleId::SglOffsetUnusual => ctrl_info_with(h, 2048, |b| b.sgl_off(0x30)),
        RuleId::FrameLayoutUnknown
        | RuleId::SenseOffsetUnusual
        | RuleId::SglEmptyEntryPastFrame
        | RuleId::DcmdHostAddress
        | RuleId::SglFixedEntryUnwritten => firmware_view::rule_call(h, rule)?,
        // The read-only policy's rules (MFIGUARD_MODE=readonly); each packet is well formed,
        // so outside that policy it passes, but for readonly.cmd's.
        // An NVMe frame, no data: refused first by frame.layout-unknown, so readonly.cmd
        // decides alone only with that rule allowed (what a tool that needs NVMe frames runs
        // with); a driver without NVMe pass-through answers ENOTSUPP.
        RuleId::ReadonlyCmd => no_data(h, MfiCmd::Nvme, |b| b),
        // MR_DCMD_CTRL_CACHE_FLUSH (controller and disk caches): an action, not a read.
        RuleId::ReadonlyDcmd => no_data(h, MfiCmd::Dcmd, |b| {
            b.sgl_off(0x28)
                .frame_u32(0x18, 0x0110_1000)
                .frame_bytes(0x1C, &[0x03])
        }),
        // SYNCHRONIZE CACHE(10) to a disk, sense at 0x18: not a reading command.
        RuleId::ReadonlyScsi => {
            let mut sense = vec![0u8; 32];
            let sense_addr = buf_addr(&mut sense);
            let b = PacketBuilder::new(ABI)
                .host_no(h)
                .sgl_off(0x30)
                .sense_off(0x18)
                .sense_len(32)
                .frame_header(MfiCmd::PdScsiIo, 0, 0, 0)
                .header(|hd| {
                    hd.target_id = 8;
                    hd.cdb_len = 10;
                    hd.sense_len = 32;
                    hd.timeout = 10.into();
                })
                .frame_bytes(0x20, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            let b = match ABI {
                Abi::Lp64 => b.frame_u64(0x18, sense_addr),
                Abi::Ilp32 => b.frame_u32(0x18, sense_addr as u32),
            };
            Call {
                packet: b.build(),
                request: c_ulong::from(ABI.firmware_request()),
                bufs: vec![sense],
                report: Report::Nothing,
                label: None,
            }
        }
        // ATA FLUSH CACHE (0xE7) tunnelled to a SATA disk: the probe's frame, another command.
        RuleId::ReadonlyAta => {
            let mut fis = vec![0u8; 20];
            let packet = PacketBuilder::new(ABI)
                .host_no(h)
                .sgl_off(0x30)
                .sge_count(1)
                .iovec(0, buf_addr(&mut fis), 20)
                .frame_header(MfiCmd::Stp, DIR_READ, 1, 0)
                .header(|hd| {
                    hd.target_id = 10;
                    hd.timeout = 10.into();
                })
                .frame_bytes(0x18, &[0x27, 0x80, 0xE7, 0x00])
                .build();
            Call {
                packet,
                request: c_ulong::from(ABI.firmware_request()),
                bufs: vec![fis],
                report: Report::Nothing,
                label: None,
            }
        }
        // SMP PHY CONTROL (function 0x91) to an expander: configuration, not discovery.
        RuleId::ReadonlySmp => {
            let mut call = smp_call(h, 0x91, 40, None);
            call.bufs[1][3] = 0x09; // PHY CONTROL's request length, in dwords
            call.report = Report::Nothing;
            call
        }
    };
    call.report = Report::Nothing;
    Ok(call)
}
