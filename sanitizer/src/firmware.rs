//! The firmware's view of a frame: where the MFI firmware reads the addresses it will DMA to or
//! from, for every frame command ([`FRAME_VIEWS`]), and the DCMDs that hand it host memory to
//! keep ([`HOST_ADDRESS_DCMDS`]). Data, read by the rules of [`crate::policy`].
//!
//! The driver writes where the packet says (`sgl_off`, `sense_off`); the firmware reads where
//! the frame type says. Both must agree, because the promise the rules keep is about what the
//! firmware reads: **after the driver has done its part, every address the firmware can use is
//! one the driver wrote, or the packet does not reach the kernel.** How the firmware reads a
//! frame, whatever the command:
//!
//! - its scatter/gather list at the frame type's offset ([`FrameView::sgl`]), never at
//!   `sgl_off`: that field only tells the driver where to write;
//! - as many entries as the frame's own `hdr.sge_count` (byte 7) says, not the packet's
//!   `sge_count`, and in SMP and STP frames both of the two entries their layout fixes
//!   ([`FrameView::fixed_entries`]: response and request, response FIS and data), which a
//!   firmware may take by their role whatever the count says;
//! - at the stride the header flags give once the driver has rewritten them ([`sge_size`]):
//!   `IEEE` 16 bytes (`sge_skinny`), else `SGL64` 12 (`sge64`), else 8 (`sge32`);
//! - in LD read/write and LD/PD SCSI frames, the sense buffer's address at 0x18
//!   ([`FrameView::sense_address`]): 4 bytes, 8 with `SENSE64`, whenever `hdr.sense_len` lets it
//!   write sense;
//! - in INIT and ABORT frames, physical addresses of their own ([`FrameView::fixed_addresses`]);
//! - in DCMDs, an opcode-specific mailbox and data: [`HOST_ADDRESS_DCMDS`] lists the opcodes
//!   that give the firmware host memory to keep after the call.
//!
//! And how the driver writes (`megasas_mgmt_fw_ioctl`): an entry for every `sgl[i]` with a
//! non-zero `iov_len`, at `sgl_off + i * size` ([`DRIVER_SGE_SIZES`]: 12 bytes from Linux 6.1 with
//! 64-bit DMA, 8 from 6.1 without it and from every driver before 3.3); the sense address at
//! `sense_off` (8 bytes from 6.1, 4 before); the flags (6.1 clears `IEEE` and sets or clears
//! `SGL64|SENSE64` to match what it wrote; before 3.3 it kept the caller's). It copies the 128
//! frame bytes of the packet ([`FRAME_COPY_LEN`]) into a frame slot of 256 bytes or more, and
//! writes nothing else: an entry slot past those 128 bytes that the driver skips holds whatever
//! the slot's last command left there.
//!
//! Sources, cited per row in [`FrameView::source`] and [`HostAddressDcmd::source`]:
//! - Linux 6.1 `drivers/scsi/megaraid/megaraid_sas.h` (`struct megasas_dcmd_frame`,
//!   `megasas_pthru_frame`, `megasas_io_frame`, `megasas_smp_frame`, `megasas_stp_frame`,
//!   `megasas_init_frame`, `megasas_abort_frame`), `megaraid_sas_fusion.h`, and
//!   `megaraid_sas_base.c` (`megasas_mgmt_fw_ioctl`, `megasas_complete_cmd`);
//! - QEMU `hw/scsi/megasas.c`, what the emulated firmware reads: `megasas_map_dcmd`
//!   (`dcmd.sgl`), `megasas_handle_scsi` (`pass.sgl`), `megasas_handle_io` (`io.sgl`),
//!   `megasas_sgl_get_addr`/`megasas_sgl_next` (the stride), `megasas_build_sense`
//!   (`pass.sense_addr_lo`, `_hi` only with `SENSE64`, "passthrough sense and io sense are at
//!   the same offset"), `megasas_init_firmware` (`init.qinfo_new_addr`), `megasas_handle_abort`
//!   (`abort.abort_mfi_addr`); it answers SMP, STP, NVMe and toolbox frames with
//!   `MFI_STAT_INVALID_CMD`;
//! - FreeBSD `sys/dev/mfi/mfireg.h` and OpenBSD `sys/dev/ic/mfireg.h` (`struct mfi_*_frame`,
//!   `union mfi_sgl`, `mfi_dcmd_t`).
//!
//! NVMe encapsulation and toolbox frames (`MFI_CMD_NVME`, `MFI_CMD_TOOLBOX`) are declared by
//! none of them: Linux passes them through opaque (only on controllers that announce support),
//! and QEMU does not emulate them. Where their firmware reads addresses is not known, so their
//! view is [`Layout::Unpublished`].

use core::fmt;

use crate::abi::mfi::{
    MfiCmd, MfiFrameFlags, MFI_SGE32_SIZE, MFI_SGE64_SIZE, MFI_SGE_SKINNY_SIZE,
    MR_DCMD_CTRL_EVENT_WAIT, MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS,
    MR_DCMD_CTRL_SHARED_HOST_MEM_ALLOC, MR_DCMD_LD_MAP_GET_INFO, MR_DCMD_SYSTEM_PD_MAP_GET_INFO,
};
use crate::abi::names::dcmd_opcode_name;

/// Where a frame type keeps something the firmware reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// At this offset of the frame.
    At(u32),
    /// The frame type has none.
    None,
    /// Nobody publishes the frame's layout: where the firmware reads is not known.
    Unpublished,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layout::At(off) => write!(f, "{off:#04x}"),
            Layout::None => f.write_str("none"),
            Layout::Unpublished => f.write_str("not published"),
        }
    }
}

/// A physical address the firmware reads from a frame and that no driver fills for an ioctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressField {
    /// The field, as the kernel names it.
    pub name: &'static str,
    /// Its offset in the frame.
    pub offset: u32,
    /// Its size in bytes.
    pub len: u32,
}

/// What the firmware reads from one frame command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameView {
    /// The command.
    pub cmd: MfiCmd,
    /// Where it reads the scatter/gather list (`hdr.sge_count` entries).
    pub sgl: Layout,
    /// What the entries are, in order.
    pub entries: &'static str,
    /// Entries the layout fixes (`sge32[2]`/`sge64[2]` in SMP and STP frames), read whatever
    /// `hdr.sge_count` says; 0 for frames whose SGL is a list of `hdr.sge_count` entries.
    pub fixed_entries: u8,
    /// Where it reads the sense buffer's address (when `hdr.sense_len` is not 0).
    pub sense_address: Layout,
    /// Other physical addresses it reads.
    pub fixed_addresses: &'static [AddressField],
    /// Where this was read.
    pub source: &'static str,
}

/// The offset of the sense address in LD read/write and LD/PD SCSI frames.
pub const SENSE_ADDRESS_SLOT: u32 = 0x18;

const fn view(
    cmd: MfiCmd,
    sgl: Layout,
    entries: &'static str,
    fixed_entries: u8,
    sense_address: Layout,
    fixed_addresses: &'static [AddressField],
    source: &'static str,
) -> FrameView {
    FrameView {
        cmd,
        sgl,
        entries,
        fixed_entries,
        sense_address,
        fixed_addresses,
        source,
    }
}

/// LD read and LD write share `struct megasas_io_frame`.
const fn io_view(cmd: MfiCmd) -> FrameView {
    view(
        cmd,
        Layout::At(0x28),
        "data",
        0,
        Layout::At(SENSE_ADDRESS_SLOT),
        &[],
        "Linux `struct megasas_io_frame`; QEMU `megasas_handle_io` maps `io.sgl`, \
         `megasas_build_sense` the sense address; BSD `struct mfi_io_frame`",
    )
}

/// LD and PD SCSI I/O share `struct megasas_pthru_frame`.
const fn pthru_view(cmd: MfiCmd) -> FrameView {
    view(
        cmd,
        Layout::At(0x30),
        "data",
        0,
        Layout::At(SENSE_ADDRESS_SLOT),
        &[],
        "Linux `struct megasas_pthru_frame`; QEMU `megasas_handle_scsi` maps `pass.sgl`, \
         `megasas_build_sense` reads `pass.sense_addr_lo` (`_hi` with SENSE64); BSD \
         `struct mfi_pass_frame`",
    )
}

const fn field(name: &'static str, offset: u32, len: u32) -> AddressField {
    AddressField { name, offset, len }
}

/// The firmware's view of every frame command, in command order (`FRAME_VIEWS[cmd]`).
pub const FRAME_VIEWS: [FrameView; 11] = [
    view(
        MfiCmd::Init,
        Layout::None,
        "-",
        0,
        Layout::None,
        &[
            field("queue_info_new_phys_addr", 0x18, 8),
            field("queue_info_old_phys_addr", 0x20, 8),
            field("system_info", 0x30, 8),
        ],
        "Linux `struct megasas_init_frame`; QEMU `megasas_init_firmware` reads \
         `init.qinfo_new_addr` and the queue addresses behind it; BSD `struct mfi_init_frame`",
    ),
    io_view(MfiCmd::LdRead),
    io_view(MfiCmd::LdWrite),
    pthru_view(MfiCmd::LdScsiIo),
    pthru_view(MfiCmd::PdScsiIo),
    view(
        MfiCmd::Dcmd,
        Layout::At(0x28),
        "data (QEMU takes at most 1)",
        0,
        Layout::None,
        &[],
        "Linux `struct megasas_dcmd_frame`; QEMU `megasas_map_dcmd` reads `dcmd.sgl`; BSD \
         `struct mfi_dcmd_frame`; the mailbox at 0x1C is opcode-specific (host-address DCMDs \
         below)",
    ),
    view(
        MfiCmd::Abort,
        Layout::None,
        "-",
        0,
        Layout::None,
        &[field("abort_mfi_phys_addr", 0x20, 8)],
        "Linux `struct megasas_abort_frame`; QEMU `megasas_handle_abort` reads \
         `abort.abort_mfi_addr`; BSD `struct mfi_abort_frame`",
    ),
    view(
        MfiCmd::Smp,
        Layout::At(0x20),
        "[0] response, [1] request: both read, whatever `hdr.sge_count` says",
        2,
        Layout::None,
        &[],
        "Linux `struct megasas_smp_frame` (`sgl.sge32[2]`/`sge64[2]`); BSD \
         `struct mfi_smp_frame`; QEMU does not emulate SMP",
    ),
    view(
        MfiCmd::Stp,
        Layout::At(0x30),
        "[0] response FIS (20 bytes), [1] data: both read, whatever `hdr.sge_count` says",
        2,
        Layout::None,
        &[],
        "Linux `struct megasas_stp_frame` (`sgl.sge32[2]`/`sge64[2]`); BSD \
         `struct mfi_stp_frame`; QEMU does not emulate STP",
    ),
    view(
        MfiCmd::Nvme,
        Layout::Unpublished,
        "?",
        0,
        Layout::Unpublished,
        &[],
        "Linux passes `MFI_CMD_NVME` through opaque (`support_nvme_passthru`); no header \
         declares the frame; QEMU does not emulate it",
    ),
    view(
        MfiCmd::Toolbox,
        Layout::Unpublished,
        "?",
        0,
        Layout::Unpublished,
        &[],
        "Linux passes `MFI_CMD_TOOLBOX` through opaque (`support_pci_lane_margining`); no \
         header declares the frame; QEMU does not emulate it",
    ),
];

impl MfiCmd {
    /// What the firmware reads from a frame of this command.
    pub const fn firmware_view(self) -> &'static FrameView {
        // FRAME_VIEWS is in command order (`frame_views_are_in_command_order` checks it), and
        // every discriminant is below 11.
        match self {
            MfiCmd::Init => &FRAME_VIEWS[0],
            MfiCmd::LdRead => &FRAME_VIEWS[1],
            MfiCmd::LdWrite => &FRAME_VIEWS[2],
            MfiCmd::LdScsiIo => &FRAME_VIEWS[3],
            MfiCmd::PdScsiIo => &FRAME_VIEWS[4],
            MfiCmd::Dcmd => &FRAME_VIEWS[5],
            MfiCmd::Abort => &FRAME_VIEWS[6],
            MfiCmd::Smp => &FRAME_VIEWS[7],
            MfiCmd::Stp => &FRAME_VIEWS[8],
            MfiCmd::Nvme => &FRAME_VIEWS[9],
            MfiCmd::Toolbox => &FRAME_VIEWS[10],
        }
    }
}

/// The size of one scatter/gather entry as the firmware reads it, from the header flags the
/// driver left: `IEEE` 16 (`sge_skinny`), else `SGL64` 12 (`sge64`), else 8 (`sge32`). QEMU's
/// `megasas_sgl_next` tests them in that order.
pub const fn sge_size(flags: u16) -> usize {
    if flags & MfiFrameFlags::IEEE.bits() != 0 {
        MFI_SGE_SKINNY_SIZE
    } else if flags & MfiFrameFlags::SGL64.bits() != 0 {
        MFI_SGE64_SIZE
    } else {
        MFI_SGE32_SIZE
    }
}

/// The size of the sense address the firmware reads: 8 bytes with `SENSE64`, else 4.
pub const fn sense_address_size(flags: u16) -> usize {
    if flags & MfiFrameFlags::SENSE64.bits() != 0 {
        8
    } else {
        4
    }
}

/// The entry sizes a driver writes: `sge64` (Linux 6.1 with 64-bit DMA), `sge32` (6.1 without
/// it, and every driver before 3.3).
pub const DRIVER_SGE_SIZES: [usize; 2] = [MFI_SGE64_SIZE, MFI_SGE32_SIZE];

/// The frame bytes a packet carries (`2 * MEGAMFI_FRAME_SIZE`): all the driver copies, and all
/// the guard can rewrite.
pub const FRAME_COPY_LEN: usize = 128;

/// A DCMD that gives the firmware host memory to keep: it writes there later, after the call
/// has returned and the driver has freed the buffer, or when the driver's completion path has
/// taken the command for one of its own. The driver sends these itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostAddressDcmd {
    /// The opcode.
    pub opcode: u32,
    /// Only with this mailbox byte: `(index, value)`; `None`: whatever the mailbox holds.
    pub mbox: Option<(u8, u8)>,
    /// What the firmware keeps, and until when.
    pub keeps: &'static str,
    /// Where this was read.
    pub source: &'static str,
}

/// `MEGASAS_DCMD_MBOX_PEND_FLAG` (`megaraid_sas_fusion.h`): complete the DCMD only when the
/// map changes.
pub const MEGASAS_DCMD_MBOX_PEND_FLAG: u8 = 0x01;

/// The DCMDs that hand the firmware host memory, refused from userspace in every mode but `off`.
///
/// Read and left out: `MR_DRIVER_SET_APP_CRASHDUMP_MODE` (`0xF0010600`) never reaches the
/// firmware (`megasas_mgmt_fw_ioctl` handles it by sending `SET_CRASH_DUMP_PARAMS` with the
/// driver's own buffer).
pub const HOST_ADDRESS_DCMDS: [HostAddressDcmd; 6] = [
    HostAddressDcmd {
        opcode: 0x0100_e100,
        mbox: None,
        keeps: "host memory allocated to the firmware, for as long as it runs",
        source: "FreeBSD `mfireg.h` `MFI_DCMD_CTRL_MFI_HOST_MEM_ALLOC`; QEMU `mfi.h` (a no-op \
                 there)",
    },
    HostAddressDcmd {
        opcode: MR_DCMD_CTRL_SHARED_HOST_MEM_ALLOC,
        mbox: None,
        keeps: "the SR-IOV heartbeat buffer, written periodically",
        source: "Linux `megaraid_sas_fusion.h`; `megasas_sriov_start_heartbeat`",
    },
    HostAddressDcmd {
        opcode: MR_DCMD_CTRL_EVENT_WAIT,
        mbox: None,
        keeps: "the buffer for the next event (the AEN registration), written when one happens; \
                the driver takes the completion for its own AEN (`megasas_service_aen`), so the \
                ioctl is never woken and the frame returns to the pool twice",
        source: "Linux `megaraid_sas.h`; `megasas_register_aen`, `megasas_complete_cmd`; QEMU \
                 `megasas_event_wait` holds the command",
    },
    HostAddressDcmd {
        opcode: MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS,
        mbox: None,
        keeps: "the crash-dump buffer, written when the firmware crashes",
        source: "Linux `megaraid_sas.h`; `megasas_set_crash_dump_params`",
    },
    HostAddressDcmd {
        opcode: MR_DCMD_SYSTEM_PD_MAP_GET_INFO,
        mbox: None,
        keeps: "the JBOD sequence map, written when it changes (pended: `mbox[0] == 0x01`); the \
                driver completes a pended one as its own and re-arms it, and a controller reset \
                returns any pending one to the pool while its ioctl still waits",
        source: "Linux `megaraid_sas_fusion.h`; `megasas_sync_pd_seq_num`, \
                 `megasas_complete_cmd`, `megasas_refire_mgmt_cmd`",
    },
    HostAddressDcmd {
        opcode: MR_DCMD_LD_MAP_GET_INFO,
        mbox: None,
        keeps: "the RAID map, written when it changes (pended: `mbox[1] == 0x01`); the driver \
                completes a pended one as its own and returns the frame to its pool, and a \
                controller reset returns any pending one to the pool while its ioctl still waits",
        source: "Linux `megaraid_sas_fusion.h`; `megasas_sync_map_info`, \
                 `megasas_complete_cmd`, `megasas_refire_mgmt_cmd`",
    },
];

/// The host-address DCMD this opcode and mailbox are, if any.
pub fn host_address_dcmd(opcode: u32, mbox: &[u8; 12]) -> Option<&'static HostAddressDcmd> {
    HOST_ADDRESS_DCMDS.iter().find(|d| {
        d.opcode == opcode
            && d.mbox
                .is_none_or(|(i, v)| mbox.get(usize::from(i)).is_some_and(|b| *b == v))
    })
}

/// The model as Markdown, as doc/rules.md shows it (a test keeps the two equal).
pub fn markdown() -> String {
    let mut out = String::from(
        "| frame | cmd | SGL at | entries | sense address at | other addresses | source |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for v in &FRAME_VIEWS {
        let fixed: Vec<String> = v
            .fixed_addresses
            .iter()
            .map(|a| format!("`{}` @{:#04x}", a.name, a.offset))
            .collect();
        let fixed = if fixed.is_empty() {
            "-".to_owned()
        } else {
            fixed.join(", ")
        };
        out.push_str(&format!(
            "| {} | `{:#04x}` | {} | {} | {} | {} | {} |\n",
            v.cmd.name(),
            v.cmd as u8,
            v.sgl,
            v.entries,
            v.sense_address,
            fixed,
            v.source
        ));
    }
    out.push_str(
        "\n| host-address DCMD | opcode | mailbox | the firmware keeps | source |\n\
         |---|---|---|---|---|\n",
    );
    for d in &HOST_ADDRESS_DCMDS {
        let mbox = match d.mbox {
            Some((i, v)) => format!("`mbox[{i}] == {v:#04x}`"),
            None => "any".to_owned(),
        };
        out.push_str(&format!(
            "| {} | `{:#010x}` | {} | {} | {} |\n",
            dcmd_opcode_name(d.opcode).unwrap_or("?"),
            d.opcode,
            mbox,
            d.keeps,
            d.source
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::mfi::MFI_CMD_OP_COUNT;

    #[test]
    fn frame_views_are_in_command_order() {
        for code in 0..MFI_CMD_OP_COUNT {
            let cmd = MfiCmd::from_u8(code).unwrap();
            assert_eq!(FRAME_VIEWS[usize::from(code)].cmd, cmd);
            assert_eq!(cmd.firmware_view().cmd, cmd);
        }
    }

    /// The SGL offsets agree with the frame structs' sizes (`MfiCmd::sgl_offset`).
    #[test]
    fn sgl_offsets_agree_with_the_frame_structs() {
        for v in &FRAME_VIEWS {
            match (v.sgl, v.cmd.sgl_offset()) {
                (Layout::At(a), Some(b)) => assert_eq!(a, b, "{:?}", v.cmd),
                (Layout::None | Layout::Unpublished, None) => {}
                other => panic!("{:?}: {other:?}", v.cmd),
            }
            let sense = matches!(v.sense_address, Layout::At(SENSE_ADDRESS_SLOT));
            assert_eq!(sense, v.cmd.has_sense_phys_addr(), "{:?}", v.cmd);
        }
    }

    #[test]
    fn strides_follow_the_flags() {
        assert_eq!(sge_size(0x0000), 8);
        assert_eq!(sge_size(0x0002), 12);
        assert_eq!(sge_size(0x0022), 16);
        assert_eq!(sge_size(0x0020), 16);
        assert_eq!(sense_address_size(0x0004), 8);
        assert_eq!(sense_address_size(0x0002), 4);
    }

    #[test]
    fn host_address_dcmds_match_opcode_and_mailbox() {
        let mut mbox = [0u8; 12];
        assert!(host_address_dcmd(MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS, &mbox).is_some());
        // The map syncs in any mailbox: a controller reset takes even an unpended one.
        for pended in [0, MEGASAS_DCMD_MBOX_PEND_FLAG] {
            mbox[0] = pended;
            mbox[1] = pended;
            assert!(host_address_dcmd(MR_DCMD_LD_MAP_GET_INFO, &mbox).is_some());
            assert!(host_address_dcmd(MR_DCMD_SYSTEM_PD_MAP_GET_INFO, &mbox).is_some());
        }
        assert!(host_address_dcmd(0x0101_0000, &mbox).is_none());
        for d in &HOST_ADDRESS_DCMDS {
            assert!(dcmd_opcode_name(d.opcode).is_some(), "{:#x}", d.opcode);
        }
    }
}
