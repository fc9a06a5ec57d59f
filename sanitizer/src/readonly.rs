//! The read-only monitoring policy's tables: which DCMD opcodes, SCSI commands,
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
mod tests;
