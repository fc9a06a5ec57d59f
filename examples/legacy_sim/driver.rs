//! The driver: the legacy `megasas_mgmt_fw_ioctl`, copying the packet and every buffer in and
//! out with no checks, and `MEGASAS_IOC_GET_AEN`.

use super::*;

// ---- the driver ----------------------------------------------------------------------------

pub(crate) struct DmaBuf {
    pub(crate) index: usize,
    pub(crate) addr: u64,
    pub(crate) data: Vec<u8>,
}

pub(crate) struct OutOfFrame {
    pub(crate) what: String,
    pub(crate) offset: u64,
    pub(crate) bytes: u64,
}

pub(crate) struct Wild {
    pub(crate) what: &'static str,
    pub(crate) addr: u64,
    pub(crate) len: u64,
    pub(crate) dir: &'static str,
}

#[derive(Clone, Copy)]
pub(crate) struct Sge {
    pub(crate) addr: u64,
    pub(crate) len: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SglFormat {
    Skinny,
    Sge64,
    Sge32,
}

impl SglFormat {
    pub(crate) fn from_flags(flags: u16) -> SglFormat {
        if flags & MFI_FRAME_IEEE != 0 {
            SglFormat::Skinny
        } else if flags & MFI_FRAME_SGL64 != 0 {
            SglFormat::Sge64
        } else {
            SglFormat::Sge32
        }
    }
    pub(crate) fn size(self) -> usize {
        match self {
            SglFormat::Skinny => 16,
            SglFormat::Sge64 => 12,
            SglFormat::Sge32 => 8,
        }
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            SglFormat::Skinny => "skinny",
            SglFormat::Sge64 => "sge64",
            SglFormat::Sge32 => "sge32",
        }
    }
}

/// Where the firmware finds a frame type's scatter/gather list.
pub(crate) fn firmware_sgl_offset(cmd: u8) -> Option<usize> {
    match cmd {
        MFI_CMD_DCMD | MFI_CMD_LD_READ | MFI_CMD_LD_WRITE => Some(0x28),
        MFI_CMD_LD_SCSI_IO | MFI_CMD_PD_SCSI_IO | MFI_CMD_STP => Some(0x30),
        MFI_CMD_SMP => Some(0x20),
        _ => None,
    }
}

/// One simulated `MEGASAS_IOC_FIRMWARE` call: driver, firmware, completion, record.
pub(crate) struct Call {
    pub(crate) seq: u32,
    pub(crate) rec: Json,
    pub(crate) dma: Vec<DmaBuf>,
    pub(crate) sense: Option<DmaBuf>,
    pub(crate) out_of_frame: Vec<OutOfFrame>,
    pub(crate) wild: Vec<Wild>,
    pub(crate) notes: Vec<String>,
    /// The call told step by step (MFISIM_VERBOSE=2).
    pub(crate) explain: Vec<String>,
    pub(crate) next_addr: u64,
    /// The kernel died completing the call: why.
    pub(crate) oops: Option<String>,
    /// The call never completes (the caller hangs in the driver): why.
    pub(crate) hang: Option<String>,
}

impl Call {
    pub(crate) fn alloc(&mut self, len: u64) -> Option<u64> {
        if len > DMA_LIMIT {
            return None;
        }
        let addr = self.next_addr;
        self.next_addr = (addr + len.max(1)).div_ceil(PAGE) * PAGE;
        Some(addr)
    }

    /// The firmware writes `data` through `sges` in order; returns how many bytes landed.
    pub(crate) fn dma_to_host(&mut self, what: &'static str, sges: &[Sge], data: &[u8]) -> usize {
        let mut done = 0usize;
        for sge in sges {
            if done >= data.len() {
                break;
            }
            if sge.len == 0 {
                continue;
            }
            let n = (data.len() - done).min(usize::try_from(sge.len).unwrap_or(usize::MAX));
            let chunk = &data[done..done + n];
            if self.write_dma(sge.addr, chunk) {
                self.explain.push(format!(
                    "firmware: DMA {n} bytes of {what} to {:#x}: a buffer the driver allocated",
                    sge.addr
                ));
            } else {
                self.explain.push(format!(
                    "firmware: DMA {n} bytes of {what} to {:#x}: {} (on a real host: memory \
                     corruption)",
                    sge.addr,
                    self.miss(sge.addr)
                ));
                self.wild.push(Wild {
                    what,
                    addr: sge.addr,
                    len: n as u64,
                    dir: "write",
                });
            }
            done += n;
        }
        done
    }

    /// The firmware reads `len` bytes through `sges` (host to controller).
    pub(crate) fn dma_from_host(&mut self, what: &'static str, sges: &[Sge], len: u64) {
        let mut left = len;
        for sge in sges {
            if left == 0 {
                break;
            }
            if sge.len == 0 {
                continue;
            }
            let n = left.min(sge.len);
            if self.find_dma(sge.addr, n).is_some() {
                self.explain.push(format!(
                    "firmware: DMA {n} bytes of {what} from {:#x}: a buffer the driver allocated",
                    sge.addr
                ));
            } else {
                self.explain.push(format!(
                    "firmware: DMA {n} bytes of {what} from {:#x}: {} (on a real host: reads \
                     someone else's memory)",
                    sge.addr,
                    self.miss(sge.addr)
                ));
                self.wild.push(Wild {
                    what,
                    addr: sge.addr,
                    len: n,
                    dir: "read",
                });
            }
            left -= n;
        }
    }

    /// Why a DMA range is not inside a driver buffer: it overruns one, or misses them all.
    pub(crate) fn miss(&self, addr: u64) -> String {
        let starts_in = self
            .dma
            .iter()
            .chain(self.sense.as_ref())
            .find(|b| addr >= b.addr && addr < b.addr + b.data.len() as u64);
        match starts_in {
            Some(b) => format!(
                "runs past the end of the driver's {}-byte buffer at {:#x}",
                b.data.len(),
                b.addr
            ),
            None => "NOT a buffer the driver allocated".to_owned(),
        }
    }

    pub(crate) fn find_dma(&self, addr: u64, n: u64) -> Option<(bool, usize, usize)> {
        let hit = |b: &DmaBuf| {
            let end = b.addr + b.data.len() as u64;
            (addr >= b.addr && addr.checked_add(n).is_some_and(|e| e <= end))
                .then(|| (addr - b.addr) as usize)
        };
        if let Some((i, off)) = self
            .dma
            .iter()
            .enumerate()
            .find_map(|(i, b)| hit(b).map(|o| (i, o)))
        {
            return Some((false, i, off));
        }
        self.sense.as_ref().and_then(hit).map(|off| (true, 0, off))
    }

    /// `n` bytes of a driver buffer at `addr`, if that range is inside one.
    pub(crate) fn read_dma(&self, addr: u64, n: u64) -> Option<Vec<u8>> {
        let n = usize::try_from(n).ok()?;
        match self.find_dma(addr, n as u64)? {
            (false, i, off) => Some(self.dma[i].data[off..off + n].to_vec()),
            (true, _, off) => self.sense.as_ref().map(|s| s.data[off..off + n].to_vec()),
        }
    }

    pub(crate) fn write_dma(&mut self, addr: u64, data: &[u8]) -> bool {
        match self.find_dma(addr, data.len() as u64) {
            Some((false, i, off)) => {
                self.dma[i].data[off..off + data.len()].copy_from_slice(data);
                true
            }
            Some((true, _, off)) => {
                if let Some(s) = self.sense.as_mut() {
                    s.data[off..off + data.len()].copy_from_slice(data);
                }
                true
            }
            None => false,
        }
    }
}

/// The driver's frame slot as the last call left it.
static FRAME: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// A copy of the frame slot (zeros before the first call).
fn last_frame() -> Vec<u8> {
    let kept = FRAME.lock().map(|f| f.clone()).unwrap_or_default();
    if kept.len() == FRAME_SLOT {
        kept
    } else {
        vec![0u8; FRAME_SLOT]
    }
}

/// Keeps the frame slot for the next call (the driver never clears it).
fn keep_frame(frame: Vec<u8>) {
    if let Ok(mut f) = FRAME.lock() {
        *f = frame;
    }
}

pub(crate) fn firmware_ioctl(request: c_ulong, user: usize) -> (c_int, c_int) {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut call = Call {
        seq,
        rec: Json::new(),
        dma: Vec::new(),
        sense: None,
        out_of_frame: Vec::new(),
        wild: Vec::new(),
        notes: Vec::new(),
        explain: Vec::new(),
        next_addr: DMA_BASE,
        oops: None,
        hang: None,
    };
    call.rec
        .str("sim", "legacy_sim")
        .num("pid", std::process::id())
        .num("seq", seq)
        .hex("request", u64::from(request_code(request)))
        .str("request_name", "MEGASAS_IOC_FIRMWARE")
        .str("abi", ABI_NAME);
    // On x86_64 a request code has 64 bits, of which the kernel reads 32.
    #[allow(clippy::useless_conversion)]
    let full = u64::from(request);
    if full >> 32 != 0 {
        call.rec.hex("request_full", full);
    }
    let (ret, errno, summary) = run_firmware(&mut call, user as u64);
    let Call {
        mut rec,
        out_of_frame,
        wild,
        notes,
        mut explain,
        oops,
        hang,
        ..
    } = call;
    explain.push(match (oops.as_ref().or(hang.as_ref()), ret) {
        (Some(why), _) => format!("completion: {why}; the ioctl never returns"),
        (None, 0) => "completion: buffers copied back, cmd_status written to the caller's \
                      packet; ioctl returns 0"
            .to_owned(),
        (None, _) => format!("ioctl returns -1, errno {errno}"),
    });
    rec.raw(
        "out_of_frame_writes",
        &json_array(&out_of_frame, |w| {
            let mut j = Json::new();
            j.str("what", &w.what)
                .num("offset", w.offset)
                .num("bytes", w.bytes);
            j.finish()
        }),
    )
    .raw(
        "wild_dma",
        &json_array(&wild, |w| {
            let mut j = Json::new();
            j.str("what", w.what)
                .hex("addr", w.addr)
                .num("len", w.len)
                .str("dir", w.dir);
            j.finish()
        }),
    )
    .raw("notes", &json_array(&notes, |n| quote(n)));
    match (&oops, &hang) {
        (Some(why), _) => rec.str("oops", why).null("ret").null("errno"),
        (None, Some(why)) => rec.str("hang", why).null("ret").null("errno"),
        (None, None) => rec.num("ret", ret).num("errno", errno),
    };
    append_record(&rec.finish());
    let crash = std::env::var_os("MFISIM_CRASH").is_some_and(|v| !v.is_empty() && v != "0");
    if crash || oops.is_some() || hang.is_some() {
        // The seed's ending, or a kernel oops: the host dies inside the driver. SIGKILL leaves
        // no chance to flush anything, so whatever the layers above wrote before the call is
        // all there is. A hang ends the same way here: on a real host the caller sleeps in
        // the driver, unkillable, until the machine reboots.
        match (&oops, &hang) {
            (Some(why), _) => {
                eprintln!("legacy_sim[{seq}]: OOPS: {why}: the host dies inside the driver")
            }
            (None, Some(why)) => {
                eprintln!("legacy_sim[{seq}]: HANG: {why}: the caller never leaves the driver")
            }
            (None, None) => {
                eprintln!("legacy_sim[{seq}]: MFISIM_CRASH: the host dies inside the driver")
            }
        }
        // SAFETY: signalling our own process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    if verbosity() >= 2 {
        let mut text = format!("legacy_sim[{seq}]: MEGASAS_IOC_FIRMWARE\n");
        for line in &explain {
            let _ = writeln!(text, "  {line}");
        }
        eprint!("{text}");
    } else if verbose() {
        let mut line = format!("legacy_sim[{seq}]: {summary}");
        for w in &out_of_frame {
            let _ = write!(
                line,
                "; OUT-OF-FRAME WRITE: {} at frame+{:#x} ({} bytes past a {FRAME_SLOT}-byte slot)",
                w.what, w.offset, w.bytes
            );
        }
        for w in &wild {
            let _ = write!(
                line,
                "; WILD DMA: firmware {} {} bytes {} {:#x} ({}), not a buffer the driver allocated",
                if w.dir == "write" { "writes" } else { "reads" },
                w.len,
                if w.dir == "write" { "to" } else { "from" },
                w.addr,
                w.what
            );
        }
        let _ = write!(line, " -> ret={ret}");
        if ret < 0 {
            let _ = write!(line, " errno={errno}");
        }
        eprintln!("{line}");
    }
    (ret, errno)
}

/// Driver + firmware + completion. Returns (ret, errno, one-line summary for stderr).
pub(crate) fn run_firmware(call: &mut Call, user: u64) -> (c_int, c_int, String) {
    // 1. memdup_user: the whole packet, once.
    let mut pkt = vec![0u8; PACKET_SIZE];
    if copy_from_user(user, &mut pkt).is_err() {
        call.notes
            .push("copy_from_user of the packet failed".into());
        return (-1, libc::EFAULT, "packet unreadable: EFAULT".into());
    }
    let host_no = u16::from_ne_bytes([pkt[0], pkt[1]]);
    let sgl_off = ne32(&pkt, 0x04);
    let sge_count = ne32(&pkt, 0x08);
    let sense_off = ne32(&pkt, 0x0C);
    let sense_len = ne32(&pkt, 0x10);
    let pframe = pkt[FRAME_OFFSET..FRAME_OFFSET + 128].to_vec();
    let iov = |i: usize| {
        let off = SGL_OFFSET + i * IOVEC_SIZE;
        (ne_word(&pkt, off), ne_word(&pkt, off + IOVEC_SIZE / 2))
    };
    let used = (sge_count as usize).min(MAX_IOCTL_SGE);
    let cmd = pframe[0];
    let flags = le16(&pframe, 0x10);
    call.rec
        .num("host_no", host_no)
        .num("sgl_off", sgl_off)
        .num("sge_count", sge_count)
        .num("sense_off", sense_off)
        .num("sense_len", sense_len)
        .raw(
            "iov_lens",
            &json_array(&(0..used).collect::<Vec<_>>(), |&i| iov(i).1.to_string()),
        )
        .num("cmd", cmd)
        .str("cmd_name", &cmd_name(cmd))
        .num("target_id", pframe[4])
        .str("flags", &format!("{flags:#06x}"))
        .str("flags_name", &flags_name(flags))
        .num("hdr_sge_count", pframe[7])
        .num("hdr_sense_len", pframe[1])
        .num("data_xferlen", le32(&pframe, 0x14));
    if cmd == MFI_CMD_DCMD {
        call.rec
            .str("opcode", &format!("{:#010x}", le32(&pframe, 0x18)));
    }
    call.explain.push(format!(
        "driver: {} frame for target {}, flags {:#06x} ({}): kept as the caller set them \
         (a pre-3.3 driver never looks at them)",
        cmd_name(cmd),
        pframe[4],
        flags,
        flags_name(flags)
    ));
    let summary_head = format!(
        "{} flags {:#06x} ({}) sgl_off {:#x} sge_count {}",
        cmd_name(cmd),
        flags,
        flags_name(flags),
        sgl_off,
        sge_count
    );

    // The instance lookup: one simulated controller.
    if host_no != 0 {
        call.notes
            .push(format!("no controller with host_no {host_no}"));
        return (-1, libc::ENODEV, format!("{summary_head}: ENODEV"));
    }

    // 2. The driver's own frame, a copy of the caller's 128 bytes over what the slot kept.
    let mut frame = last_frame();
    frame[..128].copy_from_slice(&pframe);
    put(&mut frame, 0x08, &call.seq.to_le_bytes()); // context
    put(&mut frame, 0x0C, &[0; 4]); // pad_0
                                    // (legacy: the flags are left exactly as the caller set them)

    // 3. DMA buffers and the 32-bit SGL at sgl_off.
    if sge_count as usize > MAX_IOCTL_SGE {
        call.notes.push(format!(
            "sge_count {sge_count}: the driver read {} iovecs past sgl[16]",
            sge_count as usize - MAX_IOCTL_SGE
        ));
    }
    call.rec.num(
        "sgl_overrun",
        (sge_count as usize).saturating_sub(MAX_IOCTL_SGE),
    );
    let mut driver_sgl = Vec::new();
    for i in 0..used {
        let (base, len) = iov(i);
        if len == 0 {
            continue;
        }
        let Some(addr) = call.alloc(len) else {
            call.notes
                .push(format!("dma_alloc_coherent({len}) for sgl[{i}] failed"));
            record_dma(call, &driver_sgl);
            return (-1, libc::ENOMEM, format!("{summary_head}: ENOMEM"));
        };
        // kern_sge32[i] = { (u32) buf_handle, (u32) iov_len } at frame + sgl_off + i * 8,
        // written before the caller's data is copied in (as the driver orders it): an
        // unreadable iov_base is EFAULT only after the entry has landed, wherever it landed.
        let off = u64::from(sgl_off) + i as u64 * 8;
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&(addr as u32).to_le_bytes());
        entry[4..].copy_from_slice(&(len as u32).to_le_bytes());
        if off + 8 <= FRAME_SLOT as u64 {
            put(&mut frame, off as usize, &entry);
            call.explain.push(format!(
                "driver: sgl[{i}]: DMA buffer at {addr:#x}, {len} bytes; 32-bit entry \
                 {{{addr:#x}, {len}}} written at frame+{off:#x}"
            ));
        } else {
            call.explain.push(format!(
                "driver: sgl[{i}]: DMA buffer at {addr:#x}, {len} bytes; its entry belongs at \
                 frame+{off:#x}, past the {FRAME_SLOT}-byte frame: a kernel heap overwrite"
            ));
            call.out_of_frame.push(OutOfFrame {
                what: format!("sge32 sgl[{i}]"),
                offset: off,
                bytes: 8,
            });
        }
        driver_sgl.push((off, addr, len));
        let mut data = vec![0u8; len as usize];
        if copy_from_user(base, &mut data).is_err() {
            call.notes
                .push(format!("copy_from_user of sgl[{i}] ({len} bytes) failed"));
            record_dma(call, &driver_sgl);
            return (-1, libc::EFAULT, format!("{summary_head}: EFAULT"));
        }
        call.dma.push(DmaBuf {
            index: i,
            addr,
            data,
        });
    }

    // 4. The sense buffer, its 4-byte address at sense_off.
    if sense_len != 0 {
        let Some(addr) = call.alloc(u64::from(sense_len)) else {
            call.notes
                .push(format!("dma_alloc_coherent({sense_len}) for sense failed"));
            record_dma(call, &driver_sgl);
            return (-1, libc::ENOMEM, format!("{summary_head}: ENOMEM"));
        };
        call.sense = Some(DmaBuf {
            index: usize::MAX,
            addr,
            data: vec![0u8; sense_len as usize],
        });
        let off = u64::from(sense_off);
        if off + 4 <= FRAME_SLOT as u64 {
            put(&mut frame, off as usize, &(addr as u32).to_le_bytes());
            call.explain.push(format!(
                "driver: sense buffer at {addr:#x}, {sense_len} bytes; its 4-byte address \
                 written at frame+{off:#x}"
            ));
        } else {
            call.explain.push(format!(
                "driver: sense buffer at {addr:#x}; its address belongs at frame+{off:#x}, past \
                 the {FRAME_SLOT}-byte frame: a kernel heap overwrite"
            ));
            call.out_of_frame.push(OutOfFrame {
                what: "sense address".into(),
                offset: off,
                bytes: 4,
            });
        }
        call.rec.hex("sense_addr", addr);
    } else {
        call.rec.null("sense_addr");
    }
    record_dma(call, &driver_sgl);

    // 5. The firmware, which believes the frame; the driver waits for it (MFISIM_DELAY_US).
    let (status, fw_summary) = firmware(call, &mut frame, sgl_off);
    let cmd = frame[0];
    let fw_flags = le16(&frame, 0x10);
    keep_frame(frame);
    firmware_delay();
    call.rec
        .num("cmd_status", status)
        .str("cmd_status_name", status_name(status));

    // MFI_FRAME_DONT_POST_IN_REPLY_QUEUE: the firmware writes cmd_status into the frame and
    // posts nothing to the reply queue (what the driver's own polled commands rely on). The
    // ioctl waits for that completion (wait_event, no timeout): the caller never returns.
    if fw_flags & MFI_FRAME_DONT_POST != 0 {
        let why = format!(
            "flags {fw_flags:#06x}: DONT_POST_IN_REPLY_QUEUE, so the firmware posts no \
             completion and the driver waits for it forever"
        );
        call.hang = Some(why.clone());
        return (
            -1,
            libc::EIO,
            format!("{summary_head}; {fw_summary}; HANG: {why}"),
        );
    }

    // The interrupt: megasas_complete_cmd takes an LD read/write frame for the block layer's,
    // and completes it through cmd->scmd, which is NULL for a frame from the ioctl (only the
    // LD/PD SCSI I/O case looks at sync_cmd first).
    if matches!(cmd, MFI_CMD_LD_READ | MFI_CMD_LD_WRITE) {
        let why = format!(
            "megasas_complete_cmd completes the {} frame through its NULL scmd: a NULL pointer \
             dereference in interrupt, fatal",
            cmd_name(cmd)
        );
        call.oops = Some(why.clone());
        return (
            -1,
            libc::EIO,
            format!("{summary_head}; {fw_summary}; OOPS: {why}"),
        );
    }

    // 6. Completion: buffers back to the caller, sense to the caller's pointer, one status byte.
    let bufs: Vec<(usize, Vec<u8>)> = call.dma.iter().map(|b| (b.index, b.data.clone())).collect();
    for (i, data) in bufs {
        if copy_to_user(iov(i).0, &data).is_err() {
            call.notes.push(format!("copy_to_user of sgl[{i}] failed"));
            return (
                -1,
                libc::EFAULT,
                format!("{summary_head}; {fw_summary}: EFAULT on copy-back"),
            );
        }
    }
    if let Some(sense) = call.sense.as_ref().map(|s| s.data.clone()) {
        // uptr = *(unsigned long *)(ioc->frame.raw + sense_off), in the driver's packet copy.
        let at = FRAME_OFFSET as u64 + u64::from(sense_off);
        if at + (IOVEC_SIZE / 2) as u64 <= PACKET_SIZE as u64 {
            let uptr = ne_word(&pkt, at as usize);
            if copy_to_user(uptr, &sense).is_err() {
                call.notes
                    .push(format!("copy_to_user of sense to {uptr:#x} failed"));
                return (
                    -1,
                    libc::EFAULT,
                    format!("{summary_head}; {fw_summary}: EFAULT on sense copy-back"),
                );
            }
        } else {
            call.notes.push(format!(
                "sense user pointer read at packet+{at:#x}, past the packet: sense not copied"
            ));
        }
    }
    if copy_to_user(user + FRAME_OFFSET as u64 + 2, &[status]).is_err() {
        return (
            -1,
            libc::EFAULT,
            format!("{summary_head}: EFAULT on status"),
        );
    }
    (0, 0, format!("{summary_head}; {fw_summary}"))
}

pub(crate) fn record_dma(call: &mut Call, driver_sgl: &[(u64, u64, u64)]) {
    let bufs = json_array(&call.dma, |b| {
        let mut j = Json::new();
        j.num("index", b.index)
            .hex("addr", b.addr)
            .num("len", b.data.len());
        j.finish()
    });
    let sgl = json_array(driver_sgl, |&(off, addr, len)| {
        let mut j = Json::new();
        j.num("offset", off).hex("addr", addr).num("len", len);
        j.finish()
    });
    call.rec.raw("dma_buffers", &bufs).raw("driver_sge32", &sgl);
}

pub(crate) fn aen_ioctl(fd: c_int, request: c_ulong, user: usize) -> (c_int, c_int) {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut rec = Json::new();
    rec.str("sim", "legacy_sim")
        .num("pid", std::process::id())
        .num("seq", seq)
        .hex("request", u64::from(request_code(request)))
        .str("request_name", "MEGASAS_IOC_GET_AEN")
        .str("abi", ABI_NAME);
    let mut aen = [0u8; 12];
    let (ret, errno) = if copy_from_user(user as u64, &mut aen).is_err() {
        (-1, libc::EFAULT)
    } else {
        rec.num("host_no", u16::from_ne_bytes([aen[0], aen[1]]))
            .num("seq_num", ne32(&aen, 4))
            .hex("class_locale_word", u64::from(ne32(&aen, 8)));
        // The driver refuses GET_AEN until the caller registered with F_SETOWN + O_ASYNC
        // (its fasync handler). /dev/null has no fasync handler, so O_ASYNC does not stick on
        // it; the owner F_SETOWN set is the evidence the simulator checks instead.
        // SAFETY: F_GETOWN on the caller's descriptor.
        let owner = unsafe { libc::fcntl(fd, libc::F_GETOWN) };
        if owner <= 0 {
            (-1, libc::EINVAL)
        } else if u16::from_ne_bytes([aen[0], aen[1]]) != 0 {
            (-1, libc::ENODEV)
        } else {
            (0, 0)
        }
    };
    rec.num("ret", ret).num("errno", errno);
    append_record(&rec.finish());
    if verbose() {
        eprintln!("legacy_sim[{seq}]: GET_AEN -> ret={ret} errno={errno}");
    }
    (ret, errno)
}
