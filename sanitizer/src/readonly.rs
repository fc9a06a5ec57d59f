//! The read-only monitoring policy's tables (issue 8): which DCMD opcodes, SCSI commands,
//! ATA commands and SMP functions only read, where each entry was read, and the classifiers
//! the policy calls on a decoded frame.
//!
//! Every table is an allowlist: anything not listed is "not read-only" and the policy
//! refuses it. An entry is listed only if a cited source shows it reads, and it changes no
//! state a monitoring job could care about (configuration, drive state, firmware, caches,
//! LEDs, alarms, timers). Things that are reads but that no monitoring job needs are left
//! out on purpose (reading user data with READ(10), the RAID map the driver syncs with
//! pending DCMDs, SMP zone passwords); the notes say so next to the nearest entries.
//!
//! What this module does not decide: the data direction of the frame (a DCMD that sends
//! data, `DIR_WRITE`, is refused by the policy whatever its opcode), and anything about
//! the packet's structure (the rules of section 4 of the spec). The functions here look at
//! an opcode, a CDB, a FIS or an SMP request frame, never panic, and never allocate.
//!
//! Sources, cited per entry in the `source` field and in the comments:
//! - Linux `drivers/scsi/megaraid/megaraid_sas.h` (torvalds/linux), the MR_DCMD_* defines;
//! - OpenBSD `sys/dev/ic/mfireg.h` rev. 1.52 (openbsd/src), MR_DCMD_* defines;
//! - FreeBSD `sys/dev/mfi/mfireg.h`, `mfi_dcmd_t`, and what FreeBSD's `mfiutil`
//!   (`usr.sbin/mfiutil/*.c`, freebsd/freebsd-src) sends for its read-only queries:
//!   `show adapter|battery|config|drives|events|firmware|foreign|logstate|patrol|progress|
//!   volumes` and the display forms of `ctrlprop` and `volume cache`;
//! - Linux `include/scsi/scsi_proto.h` for SCSI opcodes and service actions;
//! - smartmontools `atacmds.h` and Linux `include/linux/ata.h` for ATA commands and SMART
//!   subcommands;
//! - smp_utils `include/smp_lib.h` (and Linux `include/scsi/sas.h` for the SAS-1.1 subset)
//!   for SMP function codes.

/// One allowlisted DCMD opcode or SMP function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOnly<T: 'static> {
    /// The opcode or function code.
    pub value: T,
    /// Its name in the source.
    pub name: &'static str,
    /// Where the value is defined, and who sends it to read.
    pub source: &'static str,
}

/// Shorthand for [`ReadOnly`] rows.
const fn r<T>(value: T, name: &'static str, source: &'static str) -> ReadOnly<T> {
    ReadOnly {
        value,
        name,
        source,
    }
}

// ---------------------------------------------------------------------------------------
// DCMD opcodes
// ---------------------------------------------------------------------------------------

/// DCMD opcodes that only read, sorted by opcode. Names agree with
/// [`crate::abi::names::dcmd_opcode_name`].
///
/// Deliberately absent: `MR_DCMD_CTRL_CACHE_FLUSH` (it writes the controller's and the
/// drives' caches out: no data is lost, but it is an action with side effects and a
/// performance cost, and no monitoring query needs it), every `*_SET*`, `*_START`, `*_STOP`,
/// flash, shutdown, configuration, spare, rebuild, clear, blink and speaker-control opcode,
/// `MFI_DCMD_CTRL_MFC_DEFAULTS_GET` (a read, but no monitoring tool is known to send it),
/// and the driver-internal map/sequence opcodes (`MR_DCMD_LD_MAP_GET_INFO`,
/// `MR_DCMD_SYSTEM_PD_MAP_GET_INFO`): the driver sends those as long-pending commands and,
/// in `megasas_sync_map_info()`, with `DIR_WRITE` data for the firmware.
pub const READ_ONLY_DCMDS: &[ReadOnly<u32>] = &[
    // Controller.
    r(0x0101_0000, "MR_DCMD_CTRL_GET_INFO",
        "Linux megaraid_sas.h; mfiutil show adapter, show firmware (mfi_ctrl_get_info)"),
    r(0x0102_0100, "MFI_DCMD_CTRL_GET_PROPS",
        "FreeBSD mfireg.h; mfiutil ctrlprop (mfi_properties.c, mfi_ctrl_get_properties)"),
    r(0x0103_0100, "MR_DCMD_SPEAKER_GET",
        "OpenBSD mfireg.h (bioctl alarm query); reads the alarm setting"),
    // Event log. Not EVENT_WAIT: it registers a buffer for the next event, and the driver
    // takes its completion for its own AEN (`dcmd.host-address` refuses it in every mode).
    r(0x0104_0100, "MR_DCMD_CTRL_EVENT_GET_INFO",
        "Linux megaraid_sas.h; mfiutil show logstate, show events (mfi_evt.c)"),
    r(0x0104_0300, "MR_DCMD_CTRL_EVENT_GET",
        "Linux megaraid_sas.h; mfiutil show events (mfi_evt.c, mfi_get_events)"),
    // Patrol read status and the controller clock.
    r(0x0107_0100, "MR_DCMD_PR_GET_STATUS",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_PR_GET_STATUS, mfiutil show patrol (mfi_patrol.c)"),
    r(0x0107_0200, "MR_DCMD_PR_GET_PROPERTIES",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_PR_GET_PROPERTIES, mfiutil show patrol"),
    r(0x0108_0201, "MR_DCMD_TIME_SECS_GET",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_TIME_SECS_GET, mfiutil show patrol (mfi_get_time)"),
    // Physical drives (enclosures are listed here too, as SES devices).
    r(0x0201_0000, "MR_DCMD_PD_GET_LIST",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_PD_GET_LIST, mfiutil show drives (mfi_pd_get_list)"),
    r(0x0201_0100, "MR_DCMD_PD_LIST_QUERY",
        "Linux megaraid_sas.h; the driver's own PD list (megasas_get_pd_list)"),
    r(0x0202_0000, "MR_DCMD_PD_GET_INFO",
        "Linux megaraid_sas.h; mfiutil show drives, show progress (mfi_pd_get_info)"),
    r(0x0206_0000, "MFI_DCMD_PD_GET_PROGRESS",
        "FreeBSD mfireg.h; rebuild/clear/patrol progress of one drive"),
    r(0x020a_0100, "MR_DCMD_PD_GET_ALLOWED_OPS_LIST",
        "OpenBSD mfireg.h; which state changes a drive allows (a query)"),
    // Logical drives (volumes).
    r(0x0301_0000, "MR_DCMD_LD_GET_LIST",
        "Linux megaraid_sas.h; mfiutil show volumes (mfi_ld_get_list)"),
    r(0x0301_0100, "MR_DCMD_LD_LIST_QUERY",
        "Linux megaraid_sas.h; the driver's own LD list (megasas_ld_list_query)"),
    r(0x0302_0000, "MR_DCMD_LD_GET_INFO",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_LD_GET_INFO, mfiutil show volumes (mfi_ld_get_info)"),
    r(0x0303_0000, "MR_DCMD_LD_GET_PROPERTIES",
        "Linux megaraid_sas.h; FreeBSD MFI_DCMD_LD_GET_PROP, mfiutil mfi_volume.c (mfi_ld_get_props)"),
    // Configuration reads.
    r(0x0401_0000, "MR_DCMD_CONF_GET",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_CFG_READ, mfiutil show config (mfi_config_read)"),
    r(0x0406_0100, "MR_DCMD_CFG_FOREIGN_SCAN",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_CFG_FOREIGN_SCAN, mfiutil show foreign (mfi_foreign.c)"),
    r(0x0406_0200, "MFI_DCMD_CFG_FOREIGN_DISPLAY",
        "FreeBSD mfireg.h; mfiutil show foreign (display_format, O_RDONLY)"),
    r(0x0406_0300, "MFI_DCMD_CFG_FOREIGN_PREVIEW",
        "FreeBSD mfireg.h; mfiutil foreign preview (display_format, O_RDONLY)"),
    // Battery.
    r(0x0501_0000, "MR_DCMD_BBU_GET_STATUS",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_BBU_GET_STATUS, mfiutil show battery (mfi_show.c)"),
    r(0x0502_0000, "MR_DCMD_BBU_GET_CAPACITY_INFO",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_BBU_GET_CAPACITY_INFO, mfiutil show battery"),
    r(0x0503_0000, "MR_DCMD_BBU_GET_DESIGN_INFO",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_BBU_GET_DESIGN_INFO, mfiutil show battery"),
    r(0x0505_0100, "MR_DCMD_BBU_GET_PROP",
        "OpenBSD mfireg.h; FreeBSD MFI_DCMD_BBU_GET_PROP, mfiutil show battery (mfi_bbu_get_props)"),
];

/// The allowlist entry for a DCMD opcode, if it only reads.
pub fn dcmd_read_only_entry(opcode: u32) -> Option<&'static ReadOnly<u32>> {
    READ_ONLY_DCMDS
        .binary_search_by(|row| row.value.cmp(&opcode))
        .ok()
        .and_then(|index| READ_ONLY_DCMDS.get(index))
}

/// True if the DCMD `opcode` only reads (it is in [`READ_ONLY_DCMDS`]). The policy must
/// still refuse a listed opcode whose frame sends data to the controller (`DIR_WRITE`).
pub fn dcmd_is_read_only(opcode: u32) -> bool {
    dcmd_read_only_entry(opcode).is_some()
}

// ---------------------------------------------------------------------------------------
// SCSI pass-through (MFI_CMD_LD_SCSI_IO / MFI_CMD_PD_SCSI_IO)
// ---------------------------------------------------------------------------------------

/// What, beyond the opcode, a CDB must satisfy to count as read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdbCheck {
    /// The opcode alone decides.
    Opcode,
    /// Only this service action (CDB byte 1, bits 4..0) of the opcode.
    ServiceAction(u8),
    /// LOG SENSE with the SP (save parameters, byte 1 bit 0) bit clear: with SP set the
    /// device saves its log parameters to non-volatile storage.
    SaveBitClear,
    /// ATA PASS-THROUGH: the ATA command carried in the CDB must be in
    /// [`READ_ONLY_ATA_COMMANDS`], sent with a non-data, PIO data-in, DMA or UDMA data-in
    /// protocol, and any data must flow from the device (`T_DIR` set).
    AtaCommand,
}

/// One allowlisted SCSI command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOnlyCdb {
    /// CDB byte 0.
    pub opcode: u8,
    /// The further condition on the CDB.
    pub check: CdbCheck,
    /// The command's name in SPC/SBC.
    pub name: &'static str,
    /// Where the value is defined.
    pub source: &'static str,
}

const SCSI_PROTO: &str = "Linux include/scsi/scsi_proto.h";

/// Shorthand for [`ReadOnlyCdb`] rows.
const fn cdb(opcode: u8, check: CdbCheck, name: &'static str, source: &'static str) -> ReadOnlyCdb {
    ReadOnlyCdb {
        opcode,
        check,
        name,
        source,
    }
}

/// SCSI commands that only read, sorted by opcode, then service action.
///
/// Deliberately absent: READ(6/10/12/16) and VERIFY (they read user data or exercise the
/// medium; a monitoring job only needs device information), READ BUFFER (its error-history
/// mode can clear the history), READ LONG, WRITE*, FORMAT UNIT, SEND DIAGNOSTIC, MODE/LOG
/// SELECT, WRITE BUFFER (microcode download), START STOP UNIT, SYNCHRONIZE CACHE, UNMAP,
/// SANITIZE, SECURITY PROTOCOL IN/OUT, PERSISTENT RESERVE OUT, MAINTENANCE OUT, and the
/// other service actions of SERVICE ACTION IN(16) and MAINTENANCE IN.
pub const READ_ONLY_CDBS: &[ReadOnlyCdb] = &[
    cdb(0x00, CdbCheck::Opcode, "TEST UNIT READY", SCSI_PROTO),
    cdb(0x03, CdbCheck::Opcode, "REQUEST SENSE", SCSI_PROTO),
    cdb(0x12, CdbCheck::Opcode, "INQUIRY", SCSI_PROTO),
    cdb(0x1a, CdbCheck::Opcode, "MODE SENSE(6)", SCSI_PROTO),
    // SES pages of an enclosure are read with RECEIVE DIAGNOSTIC RESULTS.
    cdb(
        0x1c,
        CdbCheck::Opcode,
        "RECEIVE DIAGNOSTIC RESULTS",
        SCSI_PROTO,
    ),
    cdb(0x25, CdbCheck::Opcode, "READ CAPACITY(10)", SCSI_PROTO),
    cdb(0x37, CdbCheck::Opcode, "READ DEFECT DATA(10)", SCSI_PROTO),
    cdb(0x4d, CdbCheck::SaveBitClear, "LOG SENSE (SP=0)", SCSI_PROTO),
    cdb(0x5a, CdbCheck::Opcode, "MODE SENSE(10)", SCSI_PROTO),
    cdb(0x5e, CdbCheck::Opcode, "PERSISTENT RESERVE IN", SCSI_PROTO),
    cdb(
        0x85,
        CdbCheck::AtaCommand,
        "ATA PASS-THROUGH(16), reading ATA commands only",
        "Linux scsi_proto.h ATA_16 (T10/04-262r7, SAT)",
    ),
    cdb(
        0x9e,
        CdbCheck::ServiceAction(0x10),
        "SERVICE ACTION IN(16) / READ CAPACITY(16)",
        "Linux scsi_proto.h SERVICE_ACTION_IN_16, SAI_READ_CAPACITY_16",
    ),
    cdb(0xa0, CdbCheck::Opcode, "REPORT LUNS", SCSI_PROTO),
    // 0xA1 is also MMC's BLANK on optical drives (SAT reuses the opcode); behind a MegaRAID
    // the targets are disks, but a SATA optical drive would read this CDB as BLANK.
    cdb(
        0xa1,
        CdbCheck::AtaCommand,
        "ATA PASS-THROUGH(12), reading ATA commands only",
        "Linux scsi_proto.h ATA_12 (T10/04-262r7, SAT)",
    ),
    cdb(
        0xa3,
        CdbCheck::ServiceAction(0x05),
        "MAINTENANCE IN / REPORT IDENTIFYING INFORMATION",
        "Linux scsi_proto.h MI_REPORT_IDENTIFYING_INFORMATION",
    ),
    cdb(
        0xa3,
        CdbCheck::ServiceAction(0x0a),
        "MAINTENANCE IN / REPORT TARGET PORT GROUPS",
        "Linux scsi_proto.h MI_REPORT_TARGET_PGS",
    ),
    cdb(
        0xa3,
        CdbCheck::ServiceAction(0x0c),
        "MAINTENANCE IN / REPORT SUPPORTED OPERATION CODES",
        "Linux scsi_proto.h MI_REPORT_SUPPORTED_OPERATION_CODES",
    ),
    cdb(
        0xa3,
        CdbCheck::ServiceAction(0x0d),
        "MAINTENANCE IN / REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
        "Linux scsi_proto.h MI_REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS",
    ),
    cdb(
        0xa3,
        CdbCheck::ServiceAction(0x0f),
        "MAINTENANCE IN / REPORT TIMESTAMP",
        "Linux scsi_proto.h MI_REPORT_TIMESTAMP",
    ),
    // smartctl -a (7.3) sends the 12-byte form only (seen in the kernel lane).
    cdb(0xb7, CdbCheck::Opcode, "READ DEFECT DATA(12)", SCSI_PROTO),
];

/// The length of a CDB by its group code (SPC-4, 4.2.5.1), `None` for the reserved and
/// vendor-specific groups and the variable-length opcode 0x7F.
const fn cdb_group_len(opcode: u8) -> Option<usize> {
    match opcode & 0xe0 {
        0x00 => Some(6),
        0x20 | 0x40 => Some(10),
        0x80 => Some(16),
        0xa0 => Some(12),
        _ => None,
    }
}

impl CdbCheck {
    fn allows(self, cdb: &[u8]) -> bool {
        match self {
            CdbCheck::Opcode => true,
            CdbCheck::ServiceAction(action) => cdb.get(1).is_some_and(|b| b & 0x1f == action),
            CdbCheck::SaveBitClear => cdb.get(1).is_some_and(|b| b & 0x01 == 0),
            CdbCheck::AtaCommand => ata_pass_through_is_read_only(cdb),
        }
    }
}

/// True if the SCSI command `cdb` only reads. `cdb` is the CDB as sent (its first
/// `cdb_len` bytes, or the frame's whole 16-byte array): the opcode is `cdb[0]`, service
/// actions are read from `cdb[1]`, and ATA pass-through CDBs are decoded down to the ATA
/// command. A CDB shorter than its opcode's group length, or empty, is not read-only.
pub fn scsi_cdb_is_read_only(cdb: &[u8]) -> bool {
    let Some(&opcode) = cdb.first() else {
        return false;
    };
    match cdb_group_len(opcode) {
        Some(len) if cdb.len() >= len => {}
        _ => return false,
    }
    READ_ONLY_CDBS
        .iter()
        .filter(|row| row.opcode == opcode)
        .any(|row| row.check.allows(cdb))
}

/// ATA PASS-THROUGH protocols (CDB byte 1, bits 4..1, kept in place) that a reading command
/// may use: non-data (3), PIO data-in (4), DMA (6), UDMA data-in (10). Resets (0, 1, 9),
/// data-out (5, 11), diagnostics (8), queued/FPDMA (7, 12) and response-only (15) are not.
const ATA_READ_PROTOCOLS: [u8; 4] = [0x06, 0x08, 0x0c, 0x14];

/// Decodes an ATA PASS-THROUGH(16) (0x85) or (12) (0xA1) CDB per SAT: byte 1 holds the
/// protocol, byte 2 `T_DIR` (bit 3) and `T_LENGTH` (bits 1..0); the features (7..0) and
/// command registers are bytes 4 and 14 of the 16-byte form, bytes 3 and 9 of the 12-byte.
fn ata_pass_through_is_read_only(cdb: &[u8]) -> bool {
    let (features, command) = match cdb.first() {
        Some(0x85) => (cdb.get(4), cdb.get(14)),
        Some(0xa1) => (cdb.get(3), cdb.get(9)),
        _ => return false,
    };
    let (Some(&byte1), Some(&byte2), Some(&features), Some(&command)) =
        (cdb.get(1), cdb.get(2), features, command)
    else {
        return false;
    };
    let protocol = byte1 & 0x1e;
    let transfers_data = byte2 & 0x03 != 0;
    let from_device = byte2 & 0x08 != 0;
    ATA_READ_PROTOCOLS.contains(&protocol)
        && (!transfers_data || from_device)
        && ata_command_is_read_only(command, features)
}

// ---------------------------------------------------------------------------------------
// ATA commands (STP frames, and ATA PASS-THROUGH CDBs)
// ---------------------------------------------------------------------------------------

/// One allowlisted ATA command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOnlyAta {
    /// The command register.
    pub command: u8,
    /// The features register (7..0) it requires, for commands whose subcommand is there
    /// (SMART); `None` when any value is allowed.
    pub feature: Option<u8>,
    /// The command's name in ACS.
    pub name: &'static str,
    /// Where the value is defined.
    pub source: &'static str,
}

const SMARTMONTOOLS: &str = "smartmontools atacmds.h";

/// Shorthand for [`ReadOnlyAta`] rows.
const fn ata(
    command: u8,
    feature: Option<u8>,
    name: &'static str,
    source: &'static str,
) -> ReadOnlyAta {
    ReadOnlyAta {
        command,
        feature,
        name,
        source,
    }
}

/// ATA commands that only read, sorted by command, then feature.
///
/// Deliberately absent: the other SMART subcommands (ENABLE/DISABLE OPERATIONS 0xD8/0xD9,
/// EXECUTE OFF-LINE IMMEDIATE 0xD4 which starts a self-test, AUTOSAVE 0xD2, SAVE 0xD3,
/// WRITE LOG 0xD6, AUTO OFF-LINE 0xDB), every write, DOWNLOAD MICROCODE, the SECURITY and
/// SANITIZE feature sets, SET FEATURES, SET MAX / DEVICE CONFIGURATION OVERLAY, power-state
/// changes (IDLE/STANDBY/SLEEP), NOP (subcommand 0 aborts queued commands), reads of user
/// data (READ SECTORS/DMA), and READ NATIVE MAX ADDRESS (a read, but the first half of the
/// HPA-changing sequence and not needed to monitor).
pub const READ_ONLY_ATA_COMMANDS: &[ReadOnlyAta] = &[
    ata(
        0x2f,
        None,
        "READ LOG EXT",
        "Linux include/linux/ata.h ATA_CMD_READ_LOG_EXT",
    ),
    ata(
        0x47,
        None,
        "READ LOG DMA EXT",
        "Linux include/linux/ata.h ATA_CMD_READ_LOG_DMA_EXT",
    ),
    ata(0xa1, None, "IDENTIFY PACKET DEVICE", SMARTMONTOOLS),
    ata(0xb0, Some(0xd0), "SMART READ DATA", SMARTMONTOOLS),
    ata(
        0xb0,
        Some(0xd1),
        "SMART READ ATTRIBUTE THRESHOLDS",
        SMARTMONTOOLS,
    ),
    ata(0xb0, Some(0xd5), "SMART READ LOG", SMARTMONTOOLS),
    ata(0xb0, Some(0xda), "SMART RETURN STATUS", SMARTMONTOOLS),
    ata(0xe5, None, "CHECK POWER MODE", SMARTMONTOOLS),
    ata(0xec, None, "IDENTIFY DEVICE", SMARTMONTOOLS),
];

/// True if the ATA `command`, with the features register (7..0) `features`, only reads.
pub fn ata_command_is_read_only(command: u8, features: u8) -> bool {
    READ_ONLY_ATA_COMMANDS
        .iter()
        .filter(|row| row.command == command)
        .any(|row| row.feature.is_none_or(|feature| feature == features))
}

/// Length of a host-to-device register FIS.
pub const ATA_H2D_FIS_LEN: usize = 20;
/// `FIS_TYPE_REG_H2D`, the first byte of a host-to-device register FIS.
pub const ATA_FIS_TYPE_REG_H2D: u8 = 0x27;
/// The C bit (byte 1, bit 7): the FIS carries a command, not a device-control update.
pub const ATA_FIS_C_BIT: u8 = 0x80;

/// True if the host-to-device register FIS of an STP frame (frame offset 0x18, 20 bytes)
/// carries a reading ATA command: `fis[0]` is 0x27, the C bit of `fis[1]` is set (a
/// device-control FIS could carry a soft reset instead), and the command `fis[2]` with
/// features `fis[3]` is in [`READ_ONLY_ATA_COMMANDS`]. A FIS shorter than 20 bytes is not.
pub fn ata_fis_is_read_only(fis: &[u8]) -> bool {
    if fis.len() < ATA_H2D_FIS_LEN {
        return false;
    }
    match (fis.first(), fis.get(1), fis.get(2), fis.get(3)) {
        (Some(&ATA_FIS_TYPE_REG_H2D), Some(&flags), Some(&command), Some(&features)) => {
            flags & ATA_FIS_C_BIT != 0 && ata_command_is_read_only(command, features)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// SMP functions (MFI_CMD_SMP)
// ---------------------------------------------------------------------------------------

const SMP_LIB: &str = "smp_utils smp_lib.h";
const SMP_LIB_AND_SAS_H: &str = "smp_utils smp_lib.h; Linux include/scsi/sas.h";

/// SMP functions that only discover or report, sorted by function code.
///
/// Deliberately absent: READ GPIO REGISTER (0x02, 0x07: SFF-8485 sideband, not discovery),
/// REPORT ZONE MANAGER PASSWORD (0x05: it discloses the password that guards zoning
/// changes), and every function from 0x80 up (CONFIGURE GENERAL, zoning, WRITE GPIO,
/// CONFIGURE ROUTE INFORMATION, PHY CONTROL, PHY TEST FUNCTION, CONFIGURE PHY EVENT).
pub const READ_ONLY_SMP_FUNCTIONS: &[ReadOnly<u8>] = &[
    r(0x00, "REPORT GENERAL", SMP_LIB_AND_SAS_H),
    r(0x01, "REPORT MANUFACTURER INFORMATION", SMP_LIB_AND_SAS_H),
    r(0x03, "REPORT SELF-CONFIGURATION STATUS", SMP_LIB),
    r(0x04, "REPORT ZONE PERMISSION TABLE", SMP_LIB),
    r(0x06, "REPORT BROADCAST", SMP_LIB),
    r(0x10, "DISCOVER", SMP_LIB_AND_SAS_H),
    r(0x11, "REPORT PHY ERROR LOG", SMP_LIB_AND_SAS_H),
    r(0x12, "REPORT PHY SATA", SMP_LIB_AND_SAS_H),
    r(0x13, "REPORT ROUTE INFORMATION", SMP_LIB_AND_SAS_H),
    r(0x14, "REPORT PHY EVENT", SMP_LIB),
    r(0x20, "DISCOVER LIST", SMP_LIB),
    r(0x21, "REPORT PHY EVENT LIST", SMP_LIB),
    r(0x22, "REPORT EXPANDER ROUTE TABLE LIST", SMP_LIB),
];

/// `SMP_FRAME_TYPE_REQ` / `SMP_REQUEST`: byte 0 of an SMP request frame.
pub const SMP_FRAME_TYPE_REQUEST: u8 = 0x40;

/// True if the SMP `function` (request frame byte 1) only discovers or reports.
pub fn smp_function_is_read_only(function: u8) -> bool {
    READ_ONLY_SMP_FUNCTIONS
        .binary_search_by(|row| row.value.cmp(&function))
        .is_ok()
}

/// True if `request` (the SMP request frame the SMP frame's second SGL entry points at)
/// starts with the request frame type 0x40, holds the 4-byte header, and names a
/// read-only function.
pub fn smp_request_is_read_only(request: &[u8]) -> bool {
    request.len() >= 4
        && request.first() == Some(&SMP_FRAME_TYPE_REQUEST)
        && request
            .get(1)
            .is_some_and(|&function| smp_function_is_read_only(function))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::names::dcmd_opcode_name;
    use std::collections::BTreeSet;

    const LINUX: &str = "Linux megaraid_sas.h";
    const OPENBSD: &str = "OpenBSD mfireg.h";
    const FREEBSD: &str = "FreeBSD mfireg.h";

    // -- tables ---------------------------------------------------------------------------

    #[test]
    fn tables_are_strictly_sorted() {
        assert!(READ_ONLY_DCMDS.windows(2).all(|w| w[0].value < w[1].value));
        assert!(READ_ONLY_SMP_FUNCTIONS
            .windows(2)
            .all(|w| w[0].value < w[1].value));
        let key = |row: &ReadOnlyCdb| {
            let action = match row.check {
                CdbCheck::ServiceAction(action) => Some(action),
                _ => None,
            };
            (row.opcode, action)
        };
        assert!(READ_ONLY_CDBS.windows(2).all(|w| key(&w[0]) < key(&w[1])));
        assert!(READ_ONLY_ATA_COMMANDS
            .windows(2)
            .all(|w| (w[0].command, w[0].feature) < (w[1].command, w[1].feature)));
    }

    #[test]
    fn dcmd_names_agree_with_the_name_tables() {
        for row in READ_ONLY_DCMDS {
            assert_eq!(
                dcmd_opcode_name(row.value),
                Some(row.name),
                "{:#010x}",
                row.value
            );
            assert!(
                row.source.starts_with(LINUX)
                    || row.source.starts_with(OPENBSD)
                    || row.source.starts_with(FREEBSD),
                "{}",
                row.source
            );
        }
    }

    #[test]
    fn table_shapes() {
        // Service actions only on the opcodes that have them; the ATA check only on the
        // two pass-through opcodes; SP only on LOG SENSE.
        for row in READ_ONLY_CDBS {
            match row.check {
                CdbCheck::ServiceAction(_) => assert!([0x9e, 0xa3].contains(&row.opcode)),
                CdbCheck::AtaCommand => assert!([0x85, 0xa1].contains(&row.opcode)),
                CdbCheck::SaveBitClear => assert_eq!(row.opcode, 0x4d),
                CdbCheck::Opcode => assert!(![0x85, 0x9e, 0xa1, 0xa3].contains(&row.opcode)),
            }
            assert!(cdb_group_len(row.opcode).is_some());
        }
        for row in READ_ONLY_ATA_COMMANDS {
            assert_eq!(row.feature.is_some(), row.command == 0xb0, "{}", row.name);
        }
        let names: BTreeSet<&str> = READ_ONLY_DCMDS.iter().map(|row| row.name).collect();
        assert_eq!(names.len(), READ_ONLY_DCMDS.len());
    }

    #[test]
    fn table_sizes() {
        assert_eq!(READ_ONLY_DCMDS.len(), 25);
        assert_eq!(READ_ONLY_CDBS.len(), 20);
        assert_eq!(READ_ONLY_ATA_COMMANDS.len(), 9);
        assert_eq!(READ_ONLY_SMP_FUNCTIONS.len(), 13);
    }

    // -- DCMDs ----------------------------------------------------------------------------

    /// The DCMDs of typical monitoring runs: adapter info, drive and volume lists and
    /// details, battery, enclosures (listed as drives), the event log, patrol read.
    #[test]
    fn monitoring_dcmds_pass() {
        let adapter = [0x0101_0000, 0x0102_0100, 0x0108_0201];
        let drives = [0x0201_0000, 0x0201_0100, 0x0202_0000, 0x0206_0000];
        let volumes = [
            0x0301_0000,
            0x0301_0100,
            0x0302_0000,
            0x0303_0000,
            0x0401_0000,
        ];
        let battery = [0x0501_0000, 0x0502_0000, 0x0503_0000, 0x0505_0100];
        let events = [0x0104_0100, 0x0104_0300];
        let patrol = [0x0107_0100, 0x0107_0200];
        for opcode in adapter
            .iter()
            .chain(&drives)
            .chain(&volumes)
            .chain(&battery)
            .chain(&events)
            .chain(&patrol)
        {
            assert!(dcmd_is_read_only(*opcode), "{opcode:#010x}");
        }
        assert_eq!(
            dcmd_read_only_entry(0x0101_0000).map(|row| row.name),
            Some("MR_DCMD_CTRL_GET_INFO")
        );
    }

    #[test]
    fn dcmds_that_change_state_are_refused() {
        for (opcode, what) in [
            (0x0105_0000, "CTRL_SHUTDOWN"),
            (0x0106_0000, "HIBERNATE_SHUTDOWN"),
            (0x0110_1000, "CTRL_CACHE_FLUSH"),
            (0x0102_0200, "CTRL_SET_PROPS"),
            (0x010e_0202, "MFC_DEFAULTS_SET"),
            (0x0119_0100, "SET_CRASH_DUMP_PARAMS"),
            (0xf001_0600, "DRIVER_SET_APP_CRASHDUMP_MODE"),
            (0x010f_0100, "FLASH_FW_OPEN"),
            (0x010f_0200, "FLASH_FW_DOWNLOAD"),
            (0x010f_0300, "FLASH_FW_FLASH"),
            (0x010f_0400, "FLASH_FW_CLOSE"),
            (0x0103_0200, "SPEAKER_ENABLE"),
            (0x0103_0400, "SPEAKER_SILENCE"),
            (0x0103_0500, "SPEAKER_TEST"),
            (0x0107_0300, "PR_SET_PROPERTIES"),
            (0x0107_0400, "PR_START"),
            (0x0107_0500, "PR_STOP"),
            (0x0203_0100, "PD_SET_STATE"),
            (0x0204_0100, "PD_REBUILD"),
            (0x0204_0200, "PD_REBUILD_ABORT"),
            (0x0205_0100, "PD_CLEAR_START"),
            (0x0207_0100, "PD_BLINK"),
            (0x0207_0200, "PD_UNBLINK"),
            (0x0300_e101, "LD_MAP_GET_INFO (driver map sync)"),
            (0x0300_e102, "LD_SYNC"),
            (0x0200_e102, "SYSTEM_PD_MAP_GET_INFO (driver sync)"),
            (0x0304_0000, "LD_SET_PROPERTIES"),
            (0x0306_0100, "LD_INIT_START"),
            (0x0309_0000, "LD_DELETE"),
            (0x0402_0000, "CFG_ADD"),
            (0x0403_0000, "CFG_CLEAR"),
            (0x0404_0000, "CFG_MAKE_SPARE"),
            (0x0405_0000, "CFG_REMOVE_SPARE"),
            (0x0406_0400, "CFG_FOREIGN_IMPORT"),
            (0x0406_0500, "CFG_FOREIGN_CLEAR"),
            (0x0504_0000, "BBU_START_LEARN"),
            (0x0505_0200, "BBU_SET_PROP"),
            (0x0801_0100, "CLUSTER_RESET_ALL"),
            (0x0801_0200, "CLUSTER_RESET_LD"),
            (0x0000_0000, "zero"),
            (0xdead_beef, "unknown"),
            (u32::MAX, "all ones"),
        ] {
            assert!(!dcmd_is_read_only(opcode), "{what} {opcode:#010x}");
        }
    }

    // -- SCSI -----------------------------------------------------------------------------

    fn cdb16(bytes: &[u8]) -> [u8; 16] {
        let mut cdb = [0u8; 16];
        cdb[..bytes.len()].copy_from_slice(bytes);
        cdb
    }

    /// A smartctl-style ATA PASS-THROUGH(16): protocol, T_DIR|BYTE_BLOCK|T_LENGTH flags,
    /// features, command; count 1, SMART signature in LBA mid/high.
    fn ata16(protocol: u8, flags: u8, features: u8, command: u8) -> [u8; 16] {
        [
            0x85,
            protocol << 1,
            flags,
            0,
            features,
            0,
            1,
            0,
            0,
            0,
            0x4f,
            0,
            0xc2,
            0,
            command,
            0,
        ]
    }

    fn ata12(protocol: u8, flags: u8, features: u8, command: u8) -> [u8; 12] {
        [
            0xa1,
            protocol << 1,
            flags,
            features,
            1,
            0,
            0x4f,
            0xc2,
            0,
            command,
            0,
            0,
        ]
    }

    const PIO_IN: u8 = 4;
    const NON_DATA: u8 = 3;
    const IN_512: u8 = 0x0e; // T_DIR=1, BYTE_BLOCK=1, T_LENGTH=2 (sector count)
    const OUT_512: u8 = 0x06; // T_DIR=0

    #[test]
    fn monitoring_cdbs_pass() {
        let cases: &[(&str, &[u8])] = &[
            ("TEST UNIT READY", &[0x00, 0, 0, 0, 0, 0]),
            ("REQUEST SENSE", &[0x03, 0, 0, 0, 252, 0]),
            ("INQUIRY", &[0x12, 0, 0, 0, 36, 0]),
            ("INQUIRY VPD 0x80", &[0x12, 1, 0x80, 0, 255, 0]),
            ("MODE SENSE(6)", &[0x1a, 0, 0x3f, 0, 255, 0]),
            (
                "RECEIVE DIAGNOSTIC RESULTS (SES page 2)",
                &[0x1c, 1, 2, 0x10, 0, 0],
            ),
            ("READ CAPACITY(10)", &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            (
                "READ DEFECT DATA(10)",
                &[0x37, 0, 0x0c, 0, 0, 0, 0, 0, 4, 0],
            ),
            ("LOG SENSE", &[0x4d, 0, 0x42, 0, 0, 0, 0, 0x10, 0, 0]),
            ("MODE SENSE(10)", &[0x5a, 0, 0x3f, 0, 0, 0, 0, 0x10, 0, 0]),
            (
                "PERSISTENT RESERVE IN",
                &[0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0, 0],
            ),
            ("REPORT LUNS", &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]),
            (
                "REPORT SUPPORTED OPCODES",
                &[0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0],
            ),
            (
                "REPORT TARGET PORT GROUPS",
                &[0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0],
            ),
            (
                "REPORT TIMESTAMP",
                &[0xa3, 0x0f, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0],
            ),
        ];
        for (what, cdb) in cases {
            assert!(scsi_cdb_is_read_only(cdb), "{what}");
            // The same CDB inside the frame's 16-byte array.
            assert!(scsi_cdb_is_read_only(&cdb16(cdb)), "{what} (16)");
        }
        let read_capacity_16 = cdb16(&[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]);
        assert!(scsi_cdb_is_read_only(&read_capacity_16));
    }

    #[test]
    fn ata_pass_through_reads_pass() {
        for (what, cdb) in [
            ("IDENTIFY DEVICE", ata16(PIO_IN, IN_512, 0, 0xec)),
            ("IDENTIFY PACKET DEVICE", ata16(PIO_IN, IN_512, 0, 0xa1)),
            ("SMART READ DATA", ata16(PIO_IN, IN_512, 0xd0, 0xb0)),
            ("SMART READ THRESHOLDS", ata16(PIO_IN, IN_512, 0xd1, 0xb0)),
            ("SMART READ LOG", ata16(PIO_IN, IN_512, 0xd5, 0xb0)),
            ("SMART RETURN STATUS", ata16(NON_DATA, 0x20, 0xda, 0xb0)),
            ("CHECK POWER MODE", ata16(NON_DATA, 0x20, 0, 0xe5)),
            ("READ LOG EXT", ata16(PIO_IN, IN_512, 0, 0x2f)),
            ("READ LOG DMA EXT", ata16(6, IN_512, 0, 0x47)),
            ("READ LOG DMA EXT (UDMA in)", ata16(10, IN_512, 0, 0x47)),
        ] {
            assert!(scsi_cdb_is_read_only(&cdb), "{what}");
        }
        assert!(scsi_cdb_is_read_only(&ata12(PIO_IN, IN_512, 0, 0xec)));
        assert!(scsi_cdb_is_read_only(&ata12(PIO_IN, IN_512, 0xd0, 0xb0)));
        // ATA PASS-THROUGH(16) with the EXTEND bit: features high byte is byte 3.
        let mut extended = ata16(PIO_IN, IN_512, 0, 0x2f);
        extended[1] |= 1;
        assert!(scsi_cdb_is_read_only(&extended));
    }

    #[test]
    fn scsi_writes_and_state_changes_are_refused() {
        let cases: &[(&str, &[u8])] = &[
            ("FORMAT UNIT", &[0x04, 0, 0, 0, 0, 0]),
            ("REASSIGN BLOCKS", &[0x07, 0, 0, 0, 0, 0]),
            ("WRITE(6)", &[0x0a, 0, 0, 0, 1, 0]),
            ("MODE SELECT(6)", &[0x15, 0x10, 0, 0, 24, 0]),
            ("START STOP UNIT", &[0x1b, 0, 0, 0, 0, 0]),
            ("SEND DIAGNOSTIC", &[0x1d, 0x04, 0, 0, 0, 0]),
            ("PREVENT ALLOW MEDIUM REMOVAL", &[0x1e, 0, 0, 0, 1, 0]),
            ("READ(10)", &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            ("WRITE(10)", &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            ("VERIFY(10)", &[0x2f, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            ("SYNCHRONIZE CACHE(10)", &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("WRITE BUFFER", &[0x3b, 0x05, 0, 0, 0, 0, 0, 0x10, 0, 0]),
            ("READ BUFFER", &[0x3c, 0x1c, 0xfe, 0, 0, 0, 0, 0x10, 0, 0]),
            ("WRITE SAME(10)", &[0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            ("UNMAP", &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0]),
            ("LOG SELECT", &[0x4c, 0x02, 0x40, 0, 0, 0, 0, 0, 0, 0]),
            (
                "LOG SENSE with SP",
                &[0x4d, 0x01, 0x42, 0, 0, 0, 0, 0x10, 0, 0],
            ),
            ("MODE SELECT(10)", &[0x55, 0x10, 0, 0, 0, 0, 0, 0, 24, 0]),
            (
                "PERSISTENT RESERVE OUT",
                &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0],
            ),
            ("SANITIZE", &[0x48, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]),
            (
                "WRITE(16)",
                &[0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
            ),
            (
                "READ(16)",
                &[0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
            ),
            (
                "SYNCHRONIZE CACHE(16)",
                &[0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            (
                "GET LBA STATUS",
                &[0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
            ),
            (
                "SERVICE ACTION OUT(16)",
                &[0x9f, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            (
                "SECURITY PROTOCOL IN",
                &[0xa2, 0xef, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0],
            ),
            (
                "MAINTENANCE IN, other action",
                &[0xa3, 0x10, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0],
            ),
            (
                "MAINTENANCE OUT / SET TIMESTAMP",
                &[0xa4, 0x0f, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0],
            ),
            ("WRITE(12)", &[0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]),
            (
                "SECURITY PROTOCOL OUT",
                &[0xb5, 0xef, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0],
            ),
            ("variable length", &[0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0, 0]),
            ("vendor specific", &[0xc0, 0, 0, 0, 0, 0]),
            (
                "vendor specific 0xff",
                &[0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
        ];
        for (what, cdb) in cases {
            assert!(!scsi_cdb_is_read_only(cdb), "{what}");
            assert!(!scsi_cdb_is_read_only(&cdb16(cdb)), "{what} (16)");
        }
    }

    #[test]
    fn short_cdbs_are_refused() {
        assert!(!scsi_cdb_is_read_only(&[]));
        assert!(!scsi_cdb_is_read_only(&[0x12]));
        assert!(!scsi_cdb_is_read_only(&[0x12, 0, 0, 0, 36])); // 5 of 6 bytes
        assert!(!scsi_cdb_is_read_only(&[0x25, 0, 0, 0, 0, 0])); // 6 of 10
        assert!(!scsi_cdb_is_read_only(&[
            0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0
        ])); // 10 of 16
        let identify = ata16(PIO_IN, IN_512, 0, 0xec);
        assert!(!scsi_cdb_is_read_only(&identify[..15]));
        let identify = ata12(PIO_IN, IN_512, 0, 0xec);
        assert!(!scsi_cdb_is_read_only(&identify[..11]));
    }

    #[test]
    fn ata_pass_through_writes_and_state_changes_are_refused() {
        for (what, cdb) in [
            ("WRITE DMA", ata16(6, OUT_512, 0, 0xca)),
            ("WRITE DMA EXT", ata16(6, OUT_512, 0, 0x35)),
            ("WRITE SECTORS", ata16(5, OUT_512, 0, 0x30)),
            ("READ DMA (user data)", ata16(6, IN_512, 0, 0xc8)),
            ("SECURITY ERASE PREPARE", ata16(NON_DATA, 0x20, 0, 0xf3)),
            ("SECURITY ERASE UNIT", ata16(5, OUT_512, 0, 0xf4)),
            ("SECURITY SET PASSWORD", ata16(5, OUT_512, 0, 0xf1)),
            ("SECURITY FREEZE LOCK", ata16(NON_DATA, 0x20, 0, 0xf5)),
            ("DOWNLOAD MICROCODE", ata16(5, OUT_512, 0x07, 0x92)),
            ("DOWNLOAD MICROCODE DMA", ata16(6, OUT_512, 0x07, 0x93)),
            ("SMART ENABLE OPERATIONS", ata16(NON_DATA, 0x20, 0xd8, 0xb0)),
            (
                "SMART DISABLE OPERATIONS",
                ata16(NON_DATA, 0x20, 0xd9, 0xb0),
            ),
            (
                "SMART EXECUTE OFF-LINE IMMEDIATE",
                ata16(NON_DATA, 0x20, 0xd4, 0xb0),
            ),
            ("SMART WRITE LOG", ata16(5, OUT_512, 0xd6, 0xb0)),
            ("SMART AUTOSAVE", ata16(NON_DATA, 0x20, 0xd2, 0xb0)),
            ("SET FEATURES", ata16(NON_DATA, 0x20, 0x02, 0xef)),
            ("STANDBY IMMEDIATE", ata16(NON_DATA, 0x20, 0, 0xe0)),
            ("DATA SET MANAGEMENT (TRIM)", ata16(6, OUT_512, 1, 0x06)),
            ("SANITIZE DEVICE", ata16(NON_DATA, 0x20, 0x12, 0xb4)),
            ("WRITE LOG EXT", ata16(5, OUT_512, 0, 0x3f)),
            ("SET MAX ADDRESS", ata16(NON_DATA, 0x20, 0, 0xf9)),
            ("DCO", ata16(NON_DATA, 0x20, 0xc0, 0xb1)),
            // Reading commands with the wrong protocol or direction.
            ("IDENTIFY as PIO data-out", ata16(5, OUT_512, 0, 0xec)),
            ("IDENTIFY with T_DIR=0", ata16(PIO_IN, OUT_512, 0, 0xec)),
            ("IDENTIFY with hard reset", ata16(0, 0, 0, 0xec)),
            ("IDENTIFY with SRST", ata16(1, 0, 0, 0xec)),
            ("IDENTIFY with device reset", ata16(9, 0, 0, 0xec)),
            ("IDENTIFY with diagnostic", ata16(8, 0, 0, 0xec)),
            ("READ LOG EXT as FPDMA", ata16(12, IN_512, 0, 0x2f)),
            ("return response information", ata16(15, 0, 0, 0xec)),
        ] {
            assert!(!scsi_cdb_is_read_only(&cdb), "{what}");
        }
        assert!(!scsi_cdb_is_read_only(&ata12(6, OUT_512, 0, 0xca)));
        assert!(!scsi_cdb_is_read_only(&ata12(NON_DATA, 0x20, 0xd8, 0xb0)));
        assert!(!scsi_cdb_is_read_only(&ata12(5, OUT_512, 0, 0xf4)));
    }

    // -- ATA FIS (STP) --------------------------------------------------------------------

    fn fis(command: u8, features: u8) -> [u8; ATA_H2D_FIS_LEN] {
        let mut fis = [0u8; ATA_H2D_FIS_LEN];
        fis[..4].copy_from_slice(&[0x27, 0x80, command, features]);
        fis[5] = 0x4f; // LBA mid/high: the SMART signature (ignored by the check)
        fis[6] = 0xc2;
        fis[12] = 1;
        fis
    }

    #[test]
    fn reading_fises_pass() {
        for (command, features) in [
            (0xec, 0),
            (0xa1, 0),
            (0xb0, 0xd0),
            (0xb0, 0xd1),
            (0xb0, 0xd5),
            (0xb0, 0xda),
            (0x2f, 0),
            (0x47, 0),
            (0xe5, 0),
        ] {
            assert!(
                ata_fis_is_read_only(&fis(command, features)),
                "{command:#04x}/{features:#04x}"
            );
            assert!(ata_command_is_read_only(command, features));
        }
        // The PM port bits in byte 1 do not matter.
        let mut with_port = fis(0xec, 0);
        with_port[1] = 0x8f;
        assert!(ata_fis_is_read_only(&with_port));
    }

    #[test]
    fn writing_and_malformed_fises_are_refused() {
        for (command, features, what) in [
            (0xca, 0, "WRITE DMA"),
            (0x35, 0, "WRITE DMA EXT"),
            (0xf4, 0, "SECURITY ERASE UNIT"),
            (0xf3, 0, "SECURITY ERASE PREPARE"),
            (0x92, 0x07, "DOWNLOAD MICROCODE"),
            (0xb0, 0xd8, "SMART ENABLE OPERATIONS"),
            (0xb0, 0xd9, "SMART DISABLE OPERATIONS"),
            (0xb0, 0xd4, "SMART EXECUTE OFF-LINE IMMEDIATE"),
            (0xef, 0x02, "SET FEATURES"),
            (0x00, 0x00, "NOP"),
            (0xc8, 0, "READ DMA (user data)"),
        ] {
            assert!(!ata_fis_is_read_only(&fis(command, features)), "{what}");
        }
        let identify = fis(0xec, 0);
        let mut wrong_type = identify;
        wrong_type[0] = 0x34; // device-to-host register FIS
        assert!(!ata_fis_is_read_only(&wrong_type));
        let mut control = identify;
        control[1] = 0x00; // C bit clear: a device-control update
        control[15] = 0x04; // SRST
        assert!(!ata_fis_is_read_only(&control));
        assert!(!ata_fis_is_read_only(&identify[..19]));
        assert!(!ata_fis_is_read_only(&identify[..4]));
        assert!(!ata_fis_is_read_only(&[]));
        // Longer than a FIS (the caller passed more of the frame): still decided on bytes 0..4.
        let mut longer = [0u8; 24];
        longer[..20].copy_from_slice(&identify);
        assert!(ata_fis_is_read_only(&longer));
    }

    // -- SMP ------------------------------------------------------------------------------

    #[test]
    fn smp_discovery_passes_and_configuration_is_refused() {
        for function in [
            0x00, 0x01, 0x03, 0x04, 0x06, 0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x21, 0x22,
        ] {
            assert!(smp_function_is_read_only(function), "{function:#04x}");
            assert!(smp_request_is_read_only(&[
                0x40, function, 0, 0, 0, 0, 0, 0
            ]));
        }
        for function in [
            0x02, 0x05, 0x07, 0x15, 0x80, 0x81, 0x82, 0x83, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
            0x8b, 0x90, 0x91, 0x92, 0x93, 0xc0, 0xff,
        ] {
            assert!(!smp_function_is_read_only(function), "{function:#04x}");
            assert!(!smp_request_is_read_only(&[
                0x40, function, 0, 0, 0, 0, 0, 0
            ]));
        }
        // A response frame type, or a truncated request, is not a read-only request.
        assert!(!smp_request_is_read_only(&[0x41, 0x10, 0, 0, 0, 0, 0, 0]));
        assert!(!smp_request_is_read_only(&[0x40, 0x10, 0]));
        assert!(!smp_request_is_read_only(&[0x40]));
        assert!(!smp_request_is_read_only(&[]));
    }

    // -- never panics ---------------------------------------------------------------------

    #[test]
    fn classifiers_never_panic_on_any_short_input() {
        let mut buf = [0u8; 24];
        for opcode in 0..=u8::MAX {
            for second in [0x00, 0x01, 0x06, 0x08, 0x0c, 0x10, 0x1e, 0x1f, 0xff] {
                buf[0] = opcode;
                buf[1] = second;
                for len in 0..=buf.len() {
                    let _ = scsi_cdb_is_read_only(&buf[..len]);
                    let _ = ata_fis_is_read_only(&buf[..len]);
                    let _ = smp_request_is_read_only(&buf[..len]);
                }
            }
            let _ = smp_function_is_read_only(opcode);
            for features in 0..=u8::MAX {
                let _ = ata_command_is_read_only(opcode, features);
            }
        }
    }
}
