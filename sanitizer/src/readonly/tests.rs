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
        0x02, 0x05, 0x07, 0x15, 0x80, 0x81, 0x82, 0x83, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b,
        0x90, 0x91, 0x92, 0x93, 0xc0, 0xff,
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
