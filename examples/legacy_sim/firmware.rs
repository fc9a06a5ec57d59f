//! The firmware: the frame read the way its header says, and the commands it answers.

use super::*;

/// The firmware: parses the frame the way its header says and executes the command.
pub(crate) fn firmware(call: &mut Call, frame: &mut [u8], sgl_off: u32) -> (u8, String) {
    let cmd = frame[0];
    let flags = le16(frame, 0x10);
    let hdr_sge_count = usize::from(frame[7]);
    // SMP and STP frames have exactly two entries with fixed roles (`sge32[2]`/`sge64[2]`:
    // response and request, response FIS and data): this firmware reads both, whatever the
    // count says.
    let read = if matches!(cmd, MFI_CMD_SMP | MFI_CMD_STP) {
        hdr_sge_count.max(2)
    } else {
        hdr_sge_count
    };
    let data_xferlen = le32(frame, 0x14);
    let format = SglFormat::from_flags(flags);
    let fw_off = firmware_sgl_offset(cmd).unwrap_or(sgl_off as usize);
    let mut sges = Vec::new();
    let mut sgl_outside = false;
    for j in 0..read {
        let off = fw_off as u64 + (j * format.size()) as u64;
        if off + format.size() as u64 > FRAME_SLOT as u64 {
            sgl_outside = true;
            break;
        }
        let off = off as usize;
        let sge = match format {
            SglFormat::Skinny => Sge {
                addr: le64(frame, off),
                len: u64::from(le32(frame, off + 8)),
            },
            SglFormat::Sge64 => Sge {
                addr: le64(frame, off),
                len: u64::from(le32(frame, off + 8)),
            },
            SglFormat::Sge32 => Sge {
                addr: u64::from(le32(frame, off)),
                len: u64::from(le32(frame, off + 4)),
            },
        };
        sges.push(sge);
    }
    call.explain.push(format!(
        "firmware: flags {flags:#06x} say {}: it reads {read} entries at frame+{fw_off:#x} \
         (hdr.sge_count {hdr_sge_count})",
        match format {
            SglFormat::Skinny => "IEEE, 16-byte skinny entries {u64 addr, u32 len, u32 flag}",
            SglFormat::Sge64 => "SGL64, 12-byte entries {u64 addr, u32 len}",
            SglFormat::Sge32 => "32-bit, 8-byte entries {u32 addr, u32 len}",
        }
    ));
    for (j, sge) in sges.iter().enumerate() {
        call.explain.push(format!(
            "firmware: entry {j}: address {:#x}, length {}",
            sge.addr, sge.len
        ));
    }
    if sgl_outside {
        call.notes.push(format!(
            "firmware SGL at frame+{fw_off:#x} runs past the {FRAME_SLOT}-byte frame"
        ));
    }
    call.rec
        .str("firmware_flags", &format!("{flags:#06x}"))
        .str("firmware_sgl_format", format.name())
        .num("firmware_sgl_off", fw_off)
        .raw(
            "firmware_sges",
            &json_array(&sges, |s| {
                let mut j = Json::new();
                j.hex("addr", s.addr).num("len", s.len);
                j.finish()
            }),
        )
        .raw(
            "firmware_addrs",
            &json_array(&sges, |s| quote(&format!("{:#x}", s.addr))),
        );
    let addrs: Vec<String> = sges
        .iter()
        .map(|s| format!("{:#x}/{}", s.addr, s.len))
        .collect();
    let mut summary = format!(
        "firmware reads {} {} SGL at frame+{:#x}: [{}]",
        read,
        format.name(),
        fw_off,
        addrs.join(", ")
    );
    let sgl_bytes: u64 = sges.iter().map(|s| s.len).sum();
    let dir_write = flags & 0x0008 != 0;

    let status = match cmd {
        MFI_CMD_DCMD => {
            let opcode = le32(frame, 0x18);
            let mbox: [u8; 12] = frame[0x1C..0x28].try_into().unwrap_or([0; 12]);
            let (status, data) = dcmd(opcode, &mbox, sgl_bytes, &mut summary);
            if let Some(data) = data {
                if dir_write {
                    call.dma_from_host("DCMD data", &sges, u64::from(data_xferlen));
                } else {
                    call.dma_to_host("DCMD data", &sges, &data);
                }
            }
            status
        }
        MFI_CMD_LD_SCSI_IO | MFI_CMD_PD_SCSI_IO => {
            let sense_addr = if flags & MFI_FRAME_SENSE64 != 0 {
                le64(frame, 0x18)
            } else {
                u64::from(le32(frame, 0x18))
            };
            call.rec.hex("firmware_sense_addr", sense_addr);
            let target = frame[4];
            let exists = if cmd == MFI_CMD_PD_SCSI_IO {
                PD_IDS.contains(&u16::from(target))
            } else {
                LD_IDS.contains(&target)
            };
            if !exists {
                MFI_STAT_DEVICE_NOT_FOUND
            } else {
                let cdb_len = usize::from(frame[6]).min(16);
                let cdb = frame[0x20..0x20 + cdb_len].to_vec();
                match scsi(target, &cdb) {
                    Ok(data) => {
                        let n = data.len().min(data_xferlen as usize);
                        call.dma_to_host("SCSI data", &sges, &data[..n]);
                        MFI_STAT_OK
                    }
                    Err((key, asc, ascq)) => {
                        frame[3] = 0x02; // CHECK CONDITION
                                         // The firmware writes the whole sense buffer the frame declares.
                        let hdr_sense_len = usize::from(frame[1]);
                        if hdr_sense_len > 0 {
                            let mut sense = vec![0u8; hdr_sense_len];
                            let fixed = [
                                0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0,
                            ];
                            let n = fixed.len().min(hdr_sense_len);
                            sense[..n].copy_from_slice(&fixed[..n]);
                            call.dma_to_host(
                                "sense data",
                                &[Sge {
                                    addr: sense_addr,
                                    len: hdr_sense_len as u64,
                                }],
                                &sense,
                            );
                        }
                        let _ = write!(summary, "; CHECK CONDITION key {key:#x} asc {asc:#x}");
                        MFI_STAT_SCSI_DONE_WITH_ERROR
                    }
                }
            }
        }
        MFI_CMD_STP => {
            // Entry 0 takes the 20-byte response FIS, entry 1 the data.
            let fis_cmd = frame[0x1A];
            let response = d2h_fis();
            let first: Vec<Sge> = sges.iter().take(1).copied().collect();
            let rest: Vec<Sge> = sges.iter().skip(1).copied().collect();
            call.dma_to_host("STP response FIS", &first, &response);
            if fis_cmd == 0xEC {
                let n = 512usize.min(data_xferlen as usize);
                call.dma_to_host("STP IDENTIFY data", &rest, &identify(frame[4])[..n]);
            }
            // Any other command completes with the response FIS alone.
            MFI_STAT_OK
        }
        MFI_CMD_LD_READ | MFI_CMD_LD_WRITE => {
            let sense_addr = u64::from(le32(frame, 0x18));
            call.rec.hex("firmware_sense_addr", sense_addr);
            if !LD_IDS.contains(&frame[4]) {
                MFI_STAT_DEVICE_NOT_FOUND
            } else if cmd == MFI_CMD_LD_READ {
                let data = vec![0u8; (data_xferlen as usize).min(1 << 20)];
                call.dma_to_host("LD read data", &sges, &data);
                MFI_STAT_OK
            } else {
                call.dma_from_host("LD write data", &sges, u64::from(data_xferlen));
                MFI_STAT_OK
            }
        }
        MFI_CMD_SMP => {
            let first: Vec<Sge> = sges.iter().take(1).copied().collect();
            let rest: Vec<Sge> = sges.iter().skip(1).copied().collect();
            call.dma_from_host("SMP request", &rest, rest.iter().map(|s| s.len).sum());
            // What the expander would act on: the request's first bytes (frame type, function).
            let head = rest
                .first()
                .and_then(|s| call.read_dma(s.addr, s.len.min(4)));
            match &head {
                Some(head) => {
                    let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
                    call.rec.str("smp_request", &hex.join(" "));
                }
                None => {
                    call.rec.null("smp_request");
                }
            }
            call.dma_to_host("SMP response", &first, &[0x41, 0x10, 0, 0]);
            // MFISIM_SMP_WRITE_REQUEST=1: the firmware also writes into the request buffer
            // ("SIM!" at bytes 4..8), so that what the driver copies back from every buffer
            // can be seen by the caller.
            if std::env::var_os("MFISIM_SMP_WRITE_REQUEST").is_some_and(|v| v == "1") {
                if let Some(s) = rest.first().filter(|s| s.len >= 8) {
                    call.write_dma(s.addr + 4, b"SIM!");
                }
            }
            MFI_STAT_OK
        }
        MFI_CMD_INIT => {
            let pa = le64(frame, 0x18);
            call.notes.push(format!(
                "INIT: the firmware re-initialises its queues from physical address {pa:#x}"
            ));
            call.wild.push(Wild {
                what: "INIT queue info",
                addr: pa,
                len: 24,
                dir: "read",
            });
            MFI_STAT_OK
        }
        MFI_CMD_ABORT => {
            let pa = le64(frame, 0x20);
            call.notes
                .push(format!("ABORT of the frame at physical address {pa:#x}"));
            MFI_STAT_ABORT_NOT_POSSIBLE
        }
        _ => MFI_STAT_INVALID_CMD,
    };
    if u64::from(data_xferlen) > sgl_bytes && !matches!(cmd, MFI_CMD_INIT | MFI_CMD_ABORT) {
        call.notes.push(format!(
            "data_xferlen {data_xferlen} exceeds the {sgl_bytes} bytes the firmware's SGL describes"
        ));
    }
    let _ = write!(
        summary,
        "; cmd_status {status:#04x} ({})",
        status_name(status)
    );
    call.explain.push(format!(
        "firmware: cmd_status {status:#04x} ({})",
        status_name(status)
    ));
    (status, summary)
}

pub(crate) fn dcmd(
    opcode: u32,
    mbox: &[u8; 12],
    sgl_bytes: u64,
    summary: &mut String,
) -> (u8, Option<Vec<u8>>) {
    let _ = write!(summary, "; DCMD {opcode:#010x}");
    let need = |n: usize| sgl_bytes >= n as u64;
    match opcode {
        // MR_DCMD_CTRL_GET_INFO: struct megasas_ctrl_info, 0x800 bytes.
        0x0101_0000 => {
            if !need(0x800) {
                return (MFI_STAT_INVALID_PARAMETER, None);
            }
            (MFI_STAT_OK, Some(ctrl_info()))
        }
        // MR_DCMD_CTRL_EVENT_GET_INFO: struct megasas_evt_log_info.
        0x0104_0100 => {
            let mut d = vec![0u8; 20];
            put(&mut d, 0, &4711u32.to_le_bytes()); // newest_seq_num
            put(&mut d, 4, &1u32.to_le_bytes()); // oldest_seq_num
            put(&mut d, 8, &0u32.to_le_bytes()); // clear_seq_num
            put(&mut d, 12, &4690u32.to_le_bytes()); // shutdown_seq_num
            put(&mut d, 16, &4691u32.to_le_bytes()); // boot_seq_num
            (MFI_STAT_OK, Some(d))
        }
        // MR_DCMD_CTRL_EVENT_GET / _WAIT: one empty event list.
        0x0104_0300 | 0x0104_0500 => (MFI_STAT_OK, Some(vec![0u8; 8])),
        // MR_DCMD_CTRL_SHUTDOWN, MR_DCMD_CTRL_CACHE_FLUSH: nothing to transfer.
        0x0105_0000 | 0x0110_1000 => (MFI_STAT_OK, None),
        // MR_DCMD_PD_GET_LIST / MR_DCMD_PD_LIST_QUERY: struct MR_PD_LIST.
        0x0201_0000 | 0x0201_0100 => {
            if !need(8 + 24) {
                return (MFI_STAT_INVALID_PARAMETER, None);
            }
            let mut d = vec![0u8; 8 + 24 * PD_IDS.len()];
            let size = d.len() as u32;
            put(&mut d, 0, &size.to_le_bytes());
            put(&mut d, 4, &(PD_IDS.len() as u32).to_le_bytes());
            for (i, id) in PD_IDS.iter().enumerate() {
                let o = 8 + 24 * i;
                put(&mut d, o, &id.to_le_bytes()); // deviceId
                put(&mut d, o + 2, &252u16.to_le_bytes()); // enclDeviceId
                d[o + 4] = 0; // enclIndex
                d[o + 5] = i as u8; // slotNumber
                d[o + 6] = 0; // scsiDevType: disk
                d[o + 7] = 1; // connectedPortBitmap
                put(
                    &mut d,
                    o + 8,
                    &(0x5000_c500_0000_0000u64 | u64::from(*id)).to_le_bytes(),
                );
            }
            (MFI_STAT_OK, Some(d))
        }
        // MR_DCMD_PD_GET_INFO: struct MR_PD_INFO (512 bytes) for the device id in mbox[0..2].
        0x0202_0000 => {
            let id = u16::from_le_bytes([mbox[0], mbox[1]]);
            if !PD_IDS.contains(&id) {
                return (MFI_STAT_DEVICE_NOT_FOUND, None);
            }
            let mut d = vec![0u8; 512];
            put(&mut d, 0, &id.to_le_bytes());
            let inq = inquiry_data(id as u8);
            put(&mut d, 4, &inq[..96]);
            put(&mut d, 0xB8, &0x18u16.to_le_bytes()); // fwState: ONLINE
            (MFI_STAT_OK, Some(d))
        }
        // MR_DCMD_LD_GET_LIST: struct MR_LD_LIST.
        0x0301_0000 => {
            let mut d = vec![0u8; 8 + 16 * LD_IDS.len()];
            put(&mut d, 0, &(LD_IDS.len() as u32).to_le_bytes());
            for (i, t) in LD_IDS.iter().enumerate() {
                let o = 8 + 16 * i;
                d[o] = *t; // ref.targetId
                d[o + 4] = 3; // state: optimal
                put(&mut d, o + 8, &(1_953_525_168u64).to_le_bytes()); // size in blocks
            }
            (MFI_STAT_OK, Some(d))
        }
        // MR_DCMD_LD_GET_PROPERTIES.
        0x0303_0000 => {
            let mut d = vec![0u8; 48];
            d[0] = mbox[0];
            put_str(&mut d, 4, "sim-ld0");
            (MFI_STAT_OK, Some(d))
        }
        _ => (MFI_STAT_INVALID_DCMD, None),
    }
}

/// `struct megasas_ctrl_info` (0x800 bytes); offsets from `megaraid_sas.h`.
pub(crate) fn ctrl_info() -> Vec<u8> {
    let mut d = vec![0u8; 0x800];
    put(&mut d, 0x00, &0x1000u16.to_le_bytes()); // pci.vendor_id: LSI
    put(&mut d, 0x02, &0x0079u16.to_le_bytes()); // pci.device_id: SAS2108
    put(&mut d, 0x04, &0x1000u16.to_le_bytes()); // pci.sub_vendor_id
    put(&mut d, 0x06, &0x9261u16.to_le_bytes()); // pci.sub_device_id
    d[0x20] = 0x02; // host_interface: PCIE
    d[0x68] = 0x02; // device_interface: SAS_3G
    d[0x68 + 7] = 8; // device_interface.port_count
    put(&mut d, 0xB4, &1u32.to_le_bytes()); // image_component_count
    put_str(&mut d, 0xB8, "APP"); // image_component[0].name
    put_str(&mut d, 0xC0, "1.80-SIM"); // image_component[0].version
    put_str(&mut d, 0xE0, "Jan 10 2012"); // build_date
    put_str(&mut d, 0xF0, "12:00:00"); // build_time
    d[0x53C] = 32; // max_arms
    d[0x53D] = 8; // max_spans
    d[0x53E] = 128; // max_arrays
    d[0x53F] = 64; // max_lds
    put_str(&mut d, 0x540, "LSI MegaRAID SAS 9260-8i"); // product_name[80]
    put_str(&mut d, 0x590, "SIM0000001"); // serial_no[32]
    put(&mut d, 0x5B0, &0x34u32.to_le_bytes()); // hw_present: NVRAM|MEM|FLASH
    put(&mut d, 0x5B8, &1008u16.to_le_bytes()); // max_concurrent_cmds
    put(&mut d, 0x5BA, &80u16.to_le_bytes()); // max_sge_count
    put(&mut d, 0x5C0, &(LD_IDS.len() as u16).to_le_bytes()); // ld_present_count
    put(&mut d, 0x5C6, &(PD_IDS.len() as u16).to_le_bytes()); // pd_present_count
    put(&mut d, 0x5C8, &(PD_IDS.len() as u16).to_le_bytes()); // pd_disk_present_count
    put(&mut d, 0x5D0, &512u16.to_le_bytes()); // memory_size (MiB)
    put_str(&mut d, 0x640, "12.12.0-0048-SIM"); // package_version[0x60]
    d
}

/// Standard INQUIRY data for a simulated target.
pub(crate) fn inquiry_data(target: u8) -> Vec<u8> {
    let mut d = vec![0u8; 96];
    d[0] = 0x00; // direct access block device
    d[2] = 0x05; // SPC-3
    d[3] = 0x02; // response data format
    d[4] = 91; // additional length
    let (vendor, product, rev) = if target >= 10 {
        ("ATA     ", "SIM SATA SSD 240", "SIM1")
    } else if target >= 8 {
        ("SEAGATE ", "ST600MM0006     ", "0003")
    } else {
        ("LSI     ", "MR9260-8i       ", "2.13")
    };
    put_str(&mut d, 8, vendor);
    put_str(&mut d, 16, product);
    put_str(&mut d, 32, rev);
    d
}

/// A SCSI CDB: data in, or sense (key, asc, ascq).
pub(crate) fn scsi(target: u8, cdb: &[u8]) -> Result<Vec<u8>, (u8, u8, u8)> {
    const ILLEGAL_REQUEST: u8 = 0x05;
    match cdb.first() {
        Some(0x00) => Ok(Vec::new()), // TEST UNIT READY
        Some(0x12) => {
            let evpd = cdb.get(1).is_some_and(|b| b & 1 != 0);
            let page = cdb.get(2).copied().unwrap_or(0);
            let alloc = usize::from(u16::from_be_bytes([
                cdb.get(3).copied().unwrap_or(0),
                cdb.get(4).copied().unwrap_or(0),
            ]));
            // A 6-byte CDB from older tools has the length in byte 4 only.
            let alloc = if alloc == 0 { 96 } else { alloc };
            let mut d = if !evpd {
                inquiry_data(target)
            } else if page == 0x00 {
                vec![0, 0x00, 0, 2, 0x00, 0x80]
            } else if page == 0x80 {
                let mut d = vec![0, 0x80, 0, 10];
                d.extend_from_slice(format!("SIMSN{target:05}").as_bytes());
                d
            } else {
                return Err((ILLEGAL_REQUEST, 0x24, 0x00)); // INVALID FIELD IN CDB
            };
            d.truncate(alloc);
            Ok(d)
        }
        _ => Err((ILLEGAL_REQUEST, 0x20, 0x00)), // INVALID COMMAND OPERATION CODE
    }
}

/// The device-to-host register FIS an ATA command completes with.
pub(crate) fn d2h_fis() -> Vec<u8> {
    let mut f = vec![0u8; 20];
    f[0] = 0x34; // FIS type: register, device to host
    f[2] = 0x50; // status: DRDY|DSC, no error
    f
}

/// ATA IDENTIFY DEVICE data: strings are byte-swapped words, as ATA stores them.
pub(crate) fn identify(target: u8) -> Vec<u8> {
    let mut d = vec![0u8; 512];
    let mut ata_str = |off: usize, len: usize, s: &str| {
        let mut b = vec![b' '; len];
        b[..s.len().min(len)].copy_from_slice(&s.as_bytes()[..s.len().min(len)]);
        for pair in b.chunks_mut(2) {
            pair.swap(0, 1);
        }
        put(&mut d, off, &b);
    };
    ata_str(20, 20, &format!("SIMSSD{target:014}")); // words 10-19: serial
    ata_str(46, 8, "SIM1"); // words 23-26: firmware revision
    ata_str(54, 40, "SIM SATA SSD 240GB"); // words 27-46: model
    put(&mut d, 0, &0x0040u16.to_le_bytes()); // general configuration
    put(&mut d, 120, &468_862_128u32.to_le_bytes()); // words 60-61: user addressable sectors
    d
}
