//! Names of DCMD opcodes and MFI status codes, for records.
//!
//! TODO: a local stand-in until `mfiguard_sanitizer::abi::names::{dcmd_opcode_name,
//! mfi_status_name}` lands; then this module becomes a re-export of those and the tables go.
//! Only the values listed in `shared/megaraid-ioctl.md` are here.

/// The name of a DCMD opcode, without the `MR_DCMD_` prefix.
pub fn dcmd_opcode_name(opcode: u32) -> Option<&'static str> {
    Some(match opcode {
        0x0101_0000 => "CTRL_GET_INFO",
        0x0104_0100 => "CTRL_EVENT_GET_INFO",
        0x0104_0300 => "CTRL_EVENT_GET",
        0x0104_0500 => "CTRL_EVENT_WAIT",
        0x0105_0000 => "CTRL_SHUTDOWN",
        0x0110_1000 => "CTRL_CACHE_FLUSH",
        0x0201_0000 => "PD_GET_LIST",
        0x0201_0100 => "PD_LIST_QUERY",
        0x0202_0000 => "PD_GET_INFO",
        0x0301_0000 => "LD_GET_LIST",
        0x0301_0100 => "LD_LIST_QUERY",
        0x0303_0000 => "LD_GET_PROPERTIES",
        _ => return None,
    })
}

/// The name of an MFI completion status (`cmd_status`), without the `MFI_STAT_` prefix.
pub fn mfi_status_name(status: u8) -> Option<&'static str> {
    Some(match status {
        0x00 => "OK",
        0x01 => "INVALID_CMD",
        0x02 => "INVALID_DCMD",
        0x03 => "INVALID_PARAMETER",
        0x0C => "DEVICE_NOT_FOUND",
        0x2D => "SCSI_DONE_WITH_ERROR",
        0x2E => "SCSI_IO_FAILED",
        _ => return None,
    })
}
