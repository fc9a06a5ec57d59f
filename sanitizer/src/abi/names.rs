//! Names for humans: DCMD opcodes and MFI completion codes, spelled as the headers that
//! define them spell them. These feed the audit log; nothing decides on a name.
//!
//! Each table holds the values one source defines, sorted by value, and is searched by
//! binary search. A value appears in one table only, so every value has one name; where
//! several sources define the same value, the first of these wins:
//!
//! 1. Linux: `drivers/scsi/megaraid/megaraid_sas.h` and `megaraid_sas_fusion.h`
//!    (torvalds/linux; values checked against the 6.x headers), the kernel this project
//!    guards. Its names carry the `MR_DCMD_` prefix.
//! 2. OpenBSD: `sys/dev/ic/mfireg.h` rev. 1.52 (openbsd/src), which uses the same `MR_DCMD_`
//!    style for the opcodes Linux does not define (`MR_DCMD_PD_GET_LIST`, the BBU, patrol
//!    read, configuration and speaker opcodes).
//! 3. FreeBSD: `sys/dev/mfi/mfireg.h`, `enum mfi_dcmd_t` (freebsd/freebsd-src), for the rest;
//!    those keep FreeBSD's `MFI_DCMD_` spelling, so a reader can grep for them.
//!
//! Completion codes come from Linux's `enum MFI_STAT`, plus the three codes only FreeBSD's
//! `mfi_status_t` defines.

/// A value and the name a header gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name<T: 'static> {
    /// The value on the wire.
    pub value: T,
    /// Its name, as spelled in the source header.
    pub name: &'static str,
}

/// Shorthand for table rows.
const fn n<T>(value: T, name: &'static str) -> Name<T> {
    Name { value, name }
}

// Linux, drivers/scsi/megaraid/megaraid_sas.h (MR_DCMD_* defines after `enum MFI_CMD_OP`);
// the rows marked "fusion" are from drivers/scsi/megaraid/megaraid_sas_fusion.h (the block
// after MAX_RAIDMAP_PHYSICAL_DEVICES_DYN). MR_DRIVER_SET_APP_CRASHDUMP_MODE is not sent to
// the firmware: megasas_mgmt_fw_ioctl() in megaraid_sas_base.c intercepts that opcode and
// issues MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS itself.
/// DCMD opcodes named by Linux's `megaraid_sas.h` / `megaraid_sas_fusion.h`, sorted.
pub const LINUX_DCMD_NAMES: &[Name<u32>] = &[
    n(0x0101_0000, "MR_DCMD_CTRL_GET_INFO"),
    n(0x0104_0100, "MR_DCMD_CTRL_EVENT_GET_INFO"),
    n(0x0104_0300, "MR_DCMD_CTRL_EVENT_GET"),
    n(0x0104_0500, "MR_DCMD_CTRL_EVENT_WAIT"),
    n(0x0105_0000, "MR_DCMD_CTRL_SHUTDOWN"),
    n(0x0106_0000, "MR_DCMD_HIBERNATE_SHUTDOWN"),
    n(0x010e_8485, "MR_DCMD_CTRL_SHARED_HOST_MEM_ALLOC"), // fusion
    n(0x0110_1000, "MR_DCMD_CTRL_CACHE_FLUSH"),
    n(0x0119_0100, "MR_DCMD_CTRL_SET_CRASH_DUMP_PARAMS"),
    n(0x0119_0600, "MR_DCMD_CTRL_DEVICE_LIST_GET"), // fusion
    n(0x0120_0100, "MR_DCMD_CTRL_SNAPDUMP_GET_PROPERTIES"), // fusion
    n(0x0200_e102, "MR_DCMD_SYSTEM_PD_MAP_GET_INFO"), // fusion
    n(0x0200_e103, "MR_DCMD_DRV_GET_TARGET_PROP"),  // fusion
    n(0x0201_0100, "MR_DCMD_PD_LIST_QUERY"),
    n(0x0202_0000, "MR_DCMD_PD_GET_INFO"),
    n(0x0300_e101, "MR_DCMD_LD_MAP_GET_INFO"), // fusion
    n(0x0301_0000, "MR_DCMD_LD_GET_LIST"),
    n(0x0301_0100, "MR_DCMD_LD_LIST_QUERY"),
    n(0x0303_0000, "MR_DCMD_LD_GET_PROPERTIES"),
    n(0x0315_0200, "MR_DCMD_LD_VF_MAP_GET_ALL_LDS"), // fusion
    n(0x0320_0200, "MR_DCMD_LD_VF_MAP_GET_ALL_LDS_111"), // fusion
    n(0x0800_0000, "MR_DCMD_CLUSTER"),
    n(0x0801_0100, "MR_DCMD_CLUSTER_RESET_ALL"),
    n(0x0801_0200, "MR_DCMD_CLUSTER_RESET_LD"),
    n(0xf001_0600, "MR_DRIVER_SET_APP_CRASHDUMP_MODE"),
];

// OpenBSD, sys/dev/ic/mfireg.h rev. 1.52 ("direct commands" block and the MR_DCMD_SPEAKER_*
// block after it), only the values Linux does not name.
/// DCMD opcodes named by OpenBSD's `mfireg.h` and not by Linux, sorted.
pub const OPENBSD_DCMD_NAMES: &[Name<u32>] = &[
    n(0x0103_0100, "MR_DCMD_SPEAKER_GET"),
    n(0x0103_0200, "MR_DCMD_SPEAKER_ENABLE"),
    n(0x0103_0300, "MR_DCMD_SPEAKER_DISABLE"),
    n(0x0103_0400, "MR_DCMD_SPEAKER_SILENCE"),
    n(0x0103_0500, "MR_DCMD_SPEAKER_TEST"),
    n(0x0107_0100, "MR_DCMD_PR_GET_STATUS"),
    n(0x0107_0200, "MR_DCMD_PR_GET_PROPERTIES"),
    n(0x0107_0300, "MR_DCMD_PR_SET_PROPERTIES"),
    n(0x0107_0400, "MR_DCMD_PR_START"),
    n(0x0107_0500, "MR_DCMD_PR_STOP"),
    n(0x0108_0201, "MR_DCMD_TIME_SECS_GET"),
    n(0x0201_0000, "MR_DCMD_PD_GET_LIST"),
    n(0x0203_0100, "MR_DCMD_PD_SET_STATE"),
    n(0x0204_0100, "MR_DCMD_PD_REBUILD"),
    n(0x0207_0100, "MR_DCMD_PD_BLINK"),
    n(0x0207_0200, "MR_DCMD_PD_UNBLINK"),
    n(0x020a_0100, "MR_DCMD_PD_GET_ALLOWED_OPS_LIST"),
    n(0x0302_0000, "MR_DCMD_LD_GET_INFO"),
    n(0x0304_0000, "MR_DCMD_LD_SET_PROPERTIES"),
    n(0x0309_0000, "MR_DCMD_LD_DELETE"),
    n(0x0401_0000, "MR_DCMD_CONF_GET"),
    n(0x0402_0000, "MR_DCMD_CFG_ADD"),
    n(0x0403_0000, "MR_DCMD_CFG_CLEAR"),
    n(0x0404_0000, "MR_DCMD_CFG_MAKE_SPARE"),
    n(0x0406_0100, "MR_DCMD_CFG_FOREIGN_SCAN"),
    n(0x0406_0500, "MR_DCMD_CFG_FOREIGN_CLEAR"),
    n(0x0501_0000, "MR_DCMD_BBU_GET_STATUS"),
    n(0x0502_0000, "MR_DCMD_BBU_GET_CAPACITY_INFO"),
    n(0x0503_0000, "MR_DCMD_BBU_GET_DESIGN_INFO"),
    n(0x0504_0000, "MR_DCMD_BBU_START_LEARN"),
    n(0x0505_0100, "MR_DCMD_BBU_GET_PROP"),
    n(0x0505_0200, "MR_DCMD_BBU_SET_PROP"),
];

// FreeBSD, sys/dev/mfi/mfireg.h, `typedef enum { ... } mfi_dcmd_t` ("Direct commands"),
// only the values neither Linux nor OpenBSD names.
/// DCMD opcodes named only by FreeBSD's `mfireg.h`, sorted.
pub const FREEBSD_DCMD_NAMES: &[Name<u32>] = &[
    n(0x0100_e100, "MFI_DCMD_CTRL_MFI_HOST_MEM_ALLOC"),
    n(0x0102_0100, "MFI_DCMD_CTRL_GET_PROPS"),
    n(0x0102_0200, "MFI_DCMD_CTRL_SET_PROPS"),
    n(0x010e_0201, "MFI_DCMD_CTRL_MFC_DEFAULTS_GET"),
    n(0x010e_0202, "MFI_DCMD_CTRL_MFC_DEFAULTS_SET"),
    n(0x010f_0100, "MFI_DCMD_FLASH_FW_OPEN"),
    n(0x010f_0200, "MFI_DCMD_FLASH_FW_DOWNLOAD"),
    n(0x010f_0300, "MFI_DCMD_FLASH_FW_FLASH"),
    n(0x010f_0400, "MFI_DCMD_FLASH_FW_CLOSE"),
    n(0x0204_0200, "MFI_DCMD_PD_REBUILD_ABORT"),
    n(0x0205_0100, "MFI_DCMD_PD_CLEAR_START"),
    n(0x0205_0200, "MFI_DCMD_PD_CLEAR_ABORT"),
    n(0x0206_0000, "MFI_DCMD_PD_GET_PROGRESS"),
    n(0x0300_e102, "MFI_DCMD_LD_SYNC"),
    n(0x0306_0100, "MFI_DCMD_LD_INIT_START"),
    n(0x0405_0000, "MFI_DCMD_CFG_REMOVE_SPARE"),
    n(0x0406_0200, "MFI_DCMD_CFG_FOREIGN_DISPLAY"),
    n(0x0406_0300, "MFI_DCMD_CFG_FOREIGN_PREVIEW"),
    n(0x0406_0400, "MFI_DCMD_CFG_FOREIGN_IMPORT"),
];

/// The DCMD tables in precedence order (a value is in one of them at most).
pub const DCMD_NAME_TABLES: [&[Name<u32>]; 3] =
    [LINUX_DCMD_NAMES, OPENBSD_DCMD_NAMES, FREEBSD_DCMD_NAMES];

// Linux, drivers/scsi/megaraid/megaraid_sas.h, `enum MFI_STAT` (complete, including
// MFI_STAT_CONFIG_SEQ_MISMATCH 0x67 and the driver's "not completed" MFI_STAT_INVALID_STATUS
// 0xFF; the "FOUNT" typo is the header's).
/// MFI completion codes (`cmd_status`) named by Linux's `enum MFI_STAT`, sorted.
pub const LINUX_MFI_STAT_NAMES: &[Name<u8>] = &[
    n(0x00, "MFI_STAT_OK"),
    n(0x01, "MFI_STAT_INVALID_CMD"),
    n(0x02, "MFI_STAT_INVALID_DCMD"),
    n(0x03, "MFI_STAT_INVALID_PARAMETER"),
    n(0x04, "MFI_STAT_INVALID_SEQUENCE_NUMBER"),
    n(0x05, "MFI_STAT_ABORT_NOT_POSSIBLE"),
    n(0x06, "MFI_STAT_APP_HOST_CODE_NOT_FOUND"),
    n(0x07, "MFI_STAT_APP_IN_USE"),
    n(0x08, "MFI_STAT_APP_NOT_INITIALIZED"),
    n(0x09, "MFI_STAT_ARRAY_INDEX_INVALID"),
    n(0x0a, "MFI_STAT_ARRAY_ROW_NOT_EMPTY"),
    n(0x0b, "MFI_STAT_CONFIG_RESOURCE_CONFLICT"),
    n(0x0c, "MFI_STAT_DEVICE_NOT_FOUND"),
    n(0x0d, "MFI_STAT_DRIVE_TOO_SMALL"),
    n(0x0e, "MFI_STAT_FLASH_ALLOC_FAIL"),
    n(0x0f, "MFI_STAT_FLASH_BUSY"),
    n(0x10, "MFI_STAT_FLASH_ERROR"),
    n(0x11, "MFI_STAT_FLASH_IMAGE_BAD"),
    n(0x12, "MFI_STAT_FLASH_IMAGE_INCOMPLETE"),
    n(0x13, "MFI_STAT_FLASH_NOT_OPEN"),
    n(0x14, "MFI_STAT_FLASH_NOT_STARTED"),
    n(0x15, "MFI_STAT_FLUSH_FAILED"),
    n(0x16, "MFI_STAT_HOST_CODE_NOT_FOUNT"),
    n(0x17, "MFI_STAT_LD_CC_IN_PROGRESS"),
    n(0x18, "MFI_STAT_LD_INIT_IN_PROGRESS"),
    n(0x19, "MFI_STAT_LD_LBA_OUT_OF_RANGE"),
    n(0x1a, "MFI_STAT_LD_MAX_CONFIGURED"),
    n(0x1b, "MFI_STAT_LD_NOT_OPTIMAL"),
    n(0x1c, "MFI_STAT_LD_RBLD_IN_PROGRESS"),
    n(0x1d, "MFI_STAT_LD_RECON_IN_PROGRESS"),
    n(0x1e, "MFI_STAT_LD_WRONG_RAID_LEVEL"),
    n(0x1f, "MFI_STAT_MAX_SPARES_EXCEEDED"),
    n(0x20, "MFI_STAT_MEMORY_NOT_AVAILABLE"),
    n(0x21, "MFI_STAT_MFC_HW_ERROR"),
    n(0x22, "MFI_STAT_NO_HW_PRESENT"),
    n(0x23, "MFI_STAT_NOT_FOUND"),
    n(0x24, "MFI_STAT_NOT_IN_ENCL"),
    n(0x25, "MFI_STAT_PD_CLEAR_IN_PROGRESS"),
    n(0x26, "MFI_STAT_PD_TYPE_WRONG"),
    n(0x27, "MFI_STAT_PR_DISABLED"),
    n(0x28, "MFI_STAT_ROW_INDEX_INVALID"),
    n(0x29, "MFI_STAT_SAS_CONFIG_INVALID_ACTION"),
    n(0x2a, "MFI_STAT_SAS_CONFIG_INVALID_DATA"),
    n(0x2b, "MFI_STAT_SAS_CONFIG_INVALID_PAGE"),
    n(0x2c, "MFI_STAT_SAS_CONFIG_INVALID_TYPE"),
    n(0x2d, "MFI_STAT_SCSI_DONE_WITH_ERROR"),
    n(0x2e, "MFI_STAT_SCSI_IO_FAILED"),
    n(0x2f, "MFI_STAT_SCSI_RESERVATION_CONFLICT"),
    n(0x30, "MFI_STAT_SHUTDOWN_FAILED"),
    n(0x31, "MFI_STAT_TIME_NOT_SET"),
    n(0x32, "MFI_STAT_WRONG_STATE"),
    n(0x33, "MFI_STAT_LD_OFFLINE"),
    n(0x34, "MFI_STAT_PEER_NOTIFICATION_REJECTED"),
    n(0x35, "MFI_STAT_PEER_NOTIFICATION_FAILED"),
    n(0x36, "MFI_STAT_RESERVATION_IN_PROGRESS"),
    n(0x37, "MFI_STAT_I2C_ERRORS_DETECTED"),
    n(0x38, "MFI_STAT_PCI_ERRORS_DETECTED"),
    n(0x67, "MFI_STAT_CONFIG_SEQ_MISMATCH"),
    n(0xff, "MFI_STAT_INVALID_STATUS"),
];

// FreeBSD, sys/dev/mfi/mfireg.h, `mfi_status_t`: the three codes after
// MFI_STAT_PCI_ERRORS_DETECTED that Linux's enum lacks (implicit values 0x39..0x3b).
/// MFI completion codes named only by FreeBSD's `mfi_status_t`, sorted.
pub const FREEBSD_MFI_STAT_NAMES: &[Name<u8>] = &[
    n(0x39, "MFI_STAT_DIAG_FAILED"),
    n(0x3a, "MFI_STAT_BOOT_MSG_PENDING"),
    n(0x3b, "MFI_STAT_FOREIGN_CONFIG_INCOMPLETE"),
];

/// The completion-code tables in precedence order (a value is in one of them at most).
pub const MFI_STAT_NAME_TABLES: [&[Name<u8>]; 2] = [LINUX_MFI_STAT_NAMES, FREEBSD_MFI_STAT_NAMES];

/// Looks `value` up in tables sorted by value, first table first.
fn lookup<T: Ord + Copy>(tables: &[&'static [Name<T>]], value: T) -> Option<&'static str> {
    tables.iter().find_map(|table| {
        table
            .binary_search_by(|row| row.value.cmp(&value))
            .ok()
            .and_then(|index| table.get(index))
            .map(|row| row.name)
    })
}

/// The name of a DCMD opcode (`megasas_dcmd_frame.opcode`), e.g. `MR_DCMD_CTRL_GET_INFO`
/// for `0x01010000`; `None` for an opcode no source header names.
pub fn dcmd_opcode_name(opcode: u32) -> Option<&'static str> {
    lookup(&DCMD_NAME_TABLES, opcode)
}

/// The name of an MFI completion code (the frame's `cmd_status`), e.g. `MFI_STAT_OK` for
/// `0x00`, `MFI_STAT_INVALID_PARAMETER` for `0x03`; `None` for an unnamed code.
pub fn mfi_status_name(status: u8) -> Option<&'static str> {
    lookup(&MFI_STAT_NAME_TABLES, status)
}

/// Every named DCMD opcode, table by table (each table sorted; values unique overall).
pub fn dcmd_names() -> impl Iterator<Item = &'static Name<u32>> {
    DCMD_NAME_TABLES.into_iter().flatten()
}

/// Every named completion code, table by table (each table sorted; values unique overall).
pub fn mfi_status_names() -> impl Iterator<Item = &'static Name<u8>> {
    MFI_STAT_NAME_TABLES.into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn strictly_sorted<T: Ord + Copy>(table: &[Name<T>]) -> bool {
        table.windows(2).all(|w| w[0].value < w[1].value)
    }

    #[test]
    fn every_table_is_strictly_sorted() {
        for table in DCMD_NAME_TABLES {
            assert!(strictly_sorted(table));
        }
        for table in MFI_STAT_NAME_TABLES {
            assert!(strictly_sorted(table));
        }
    }

    #[test]
    fn values_are_unique_across_tables_so_precedence_never_hides_a_name() {
        let all: Vec<u32> = dcmd_names().map(|row| row.value).collect();
        let unique: BTreeSet<u32> = all.iter().copied().collect();
        assert_eq!(all.len(), unique.len());
        let all: Vec<u8> = mfi_status_names().map(|row| row.value).collect();
        let unique: BTreeSet<u8> = all.iter().copied().collect();
        assert_eq!(all.len(), unique.len());
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let names: Vec<&str> = dcmd_names().map(|row| row.name).collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len());
        for name in names {
            assert!(
                name.starts_with("MR_DCMD_")
                    || name.starts_with("MFI_DCMD_")
                    || name == "MR_DRIVER_SET_APP_CRASHDUMP_MODE",
                "{name}"
            );
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
        }
        for row in mfi_status_names() {
            assert!(row.name.starts_with("MFI_STAT_"), "{}", row.name);
        }
    }

    #[test]
    fn every_row_is_found_by_its_value() {
        for row in dcmd_names() {
            assert_eq!(dcmd_opcode_name(row.value), Some(row.name));
        }
        for row in mfi_status_names() {
            assert_eq!(mfi_status_name(row.value), Some(row.name));
        }
    }

    /// The opcodes listed in section 2 of `shared/megaraid-ioctl.md`.
    #[test]
    fn spec_opcodes_have_their_spec_names() {
        for (opcode, name) in [
            (0x0101_0000, "MR_DCMD_CTRL_GET_INFO"),
            (0x0104_0100, "MR_DCMD_CTRL_EVENT_GET_INFO"),
            (0x0104_0300, "MR_DCMD_CTRL_EVENT_GET"),
            (0x0104_0500, "MR_DCMD_CTRL_EVENT_WAIT"),
            (0x0105_0000, "MR_DCMD_CTRL_SHUTDOWN"),
            (0x0110_1000, "MR_DCMD_CTRL_CACHE_FLUSH"),
            (0x0201_0000, "MR_DCMD_PD_GET_LIST"),
            (0x0201_0100, "MR_DCMD_PD_LIST_QUERY"),
            (0x0202_0000, "MR_DCMD_PD_GET_INFO"),
            (0x0301_0000, "MR_DCMD_LD_GET_LIST"),
            (0x0301_0100, "MR_DCMD_LD_LIST_QUERY"),
            (0x0303_0000, "MR_DCMD_LD_GET_PROPERTIES"),
        ] {
            assert_eq!(dcmd_opcode_name(opcode), Some(name), "{opcode:#010x}");
        }
    }

    #[test]
    fn precedence_and_sources() {
        // Defined by both Linux and FreeBSD (MFI_DCMD_CTRL_FLUSHCACHE): Linux's name.
        assert_eq!(
            dcmd_opcode_name(0x0110_1000),
            Some("MR_DCMD_CTRL_CACHE_FLUSH")
        );
        // OpenBSD's MR_ name over FreeBSD's MFI_DCMD_CFG_READ / MFI_DCMD_PD_LOCATE_START.
        assert_eq!(dcmd_opcode_name(0x0401_0000), Some("MR_DCMD_CONF_GET"));
        assert_eq!(dcmd_opcode_name(0x0207_0100), Some("MR_DCMD_PD_BLINK"));
        // FreeBSD only.
        assert_eq!(
            dcmd_opcode_name(0x010f_0300),
            Some("MFI_DCMD_FLASH_FW_FLASH")
        );
        assert_eq!(
            dcmd_opcode_name(0x0102_0200),
            Some("MFI_DCMD_CTRL_SET_PROPS")
        );
        // Same low bits, different class: LD_SYNC (FreeBSD) is not SYSTEM_PD_MAP (Linux).
        assert_eq!(dcmd_opcode_name(0x0300_e102), Some("MFI_DCMD_LD_SYNC"));
        assert_eq!(
            dcmd_opcode_name(0x0200_e102),
            Some("MR_DCMD_SYSTEM_PD_MAP_GET_INFO")
        );
    }

    #[test]
    fn unknown_opcodes_have_no_name() {
        for opcode in [0, 1, 0x0101_0001, 0x0102_0000, 0xdead_beef, u32::MAX] {
            assert_eq!(dcmd_opcode_name(opcode), None, "{opcode:#010x}");
        }
    }

    /// The codes listed in section 2 of the spec, and the table's shape.
    #[test]
    fn status_names_match_the_spec() {
        for (status, name) in [
            (0x00, "MFI_STAT_OK"),
            (0x01, "MFI_STAT_INVALID_CMD"),
            (0x02, "MFI_STAT_INVALID_DCMD"),
            (0x03, "MFI_STAT_INVALID_PARAMETER"),
            (0x0c, "MFI_STAT_DEVICE_NOT_FOUND"),
            (0x2d, "MFI_STAT_SCSI_DONE_WITH_ERROR"),
            (0x2e, "MFI_STAT_SCSI_IO_FAILED"),
            (0x22, "MFI_STAT_NO_HW_PRESENT"),
            (0x39, "MFI_STAT_DIAG_FAILED"),
            (0x67, "MFI_STAT_CONFIG_SEQ_MISMATCH"),
            (0xff, "MFI_STAT_INVALID_STATUS"),
        ] {
            assert_eq!(mfi_status_name(status), Some(name), "{status:#04x}");
        }
        // Linux's enum is dense from 0x00 to 0x38, FreeBSD continues to 0x3b.
        for status in 0x00..=0x3b_u8 {
            assert!(mfi_status_name(status).is_some(), "{status:#04x}");
        }
        for status in [0x3c_u8, 0x66, 0x68, 0xfe] {
            assert_eq!(mfi_status_name(status), None, "{status:#04x}");
        }
        assert_eq!(mfi_status_names().count(), 0x3c + 2);
    }

    #[test]
    fn lookups_never_panic() {
        for status in 0..=u8::MAX {
            let _ = mfi_status_name(status);
        }
        for opcode in (0..=u32::MAX).step_by(65_521) {
            let _ = dcmd_opcode_name(opcode);
        }
    }
}
