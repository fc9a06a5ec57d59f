//! Prints the read-only policy's allowlists (`sanitizer/src/readonly.rs`) as one compact
//! Markdown table, as doc/rules.md's "Read-only mode for monitoring jobs" section shows it:
//!
//!     cargo run -q -p mfiguard-sanitizer --example readonly-table
//!
//! Every value comes from the tables the policy itself uses, so doc/rules.md cannot list an
//! entry the code does not allow, or miss one it does. The docs check includes this file
//! as a module and compares [`markdown`]'s output with the text between
//! `<!-- readonly-table:begin -->` and `<!-- readonly-table:end -->`.
#![allow(clippy::print_stdout)] // printing the table is the point

use mfiguard_sanitizer::readonly::{
    CdbCheck, READ_ONLY_ATA_COMMANDS, READ_ONLY_CDBS, READ_ONLY_DCMDS, READ_ONLY_SMP_FUNCTIONS,
};

/// What the DCMD opcodes of each group (the opcode's top byte) are about. An opcode in a
/// group not named here still appears, under its bare group byte.
fn dcmd_group(top: u32) -> String {
    match top {
        0x01 => "controller, event log, patrol read, clock".to_owned(),
        0x02 => "physical drives (and enclosures)".to_owned(),
        0x03 => "logical drives (volumes)".to_owned(),
        0x04 => "configuration, foreign configuration".to_owned(),
        0x05 => "battery (BBU)".to_owned(),
        other => format!("group {other:#04x}"),
    }
}

/// The table, one row per DCMD opcode group and one each for SCSI, ATA and SMP.
pub fn markdown() -> String {
    let mut out = String::from("| frames | group | allowed |\n|---|---|---|\n");
    let mut tops: Vec<u32> = READ_ONLY_DCMDS.iter().map(|r| r.value >> 24).collect();
    tops.dedup();
    for top in tops {
        let list: Vec<String> = READ_ONLY_DCMDS
            .iter()
            .filter(|r| r.value >> 24 == top)
            .map(|r| format!("`{:#010x}` {}", r.value, r.name))
            .collect();
        out.push_str(&format!(
            "| DCMD | `{top:#04x}` {} | {} |\n",
            dcmd_group(top),
            list.join(", ")
        ));
    }
    let scsi: Vec<String> = READ_ONLY_CDBS
        .iter()
        .map(|c| match c.check {
            CdbCheck::ServiceAction(sa) => format!("`{:#04x}/{sa:#04x}` {}", c.opcode, c.name),
            CdbCheck::Opcode | CdbCheck::SaveBitClear | CdbCheck::AtaCommand => {
                format!("`{:#04x}` {}", c.opcode, c.name)
            }
        })
        .collect();
    out.push_str(&format!(
        "| SCSI pass-through (LD/PD SCSI I/O) | CDB opcode (`/service action`) | {} |\n",
        scsi.join(", ")
    ));
    let ata: Vec<String> = READ_ONLY_ATA_COMMANDS
        .iter()
        .map(|a| match a.feature {
            Some(f) => format!("`{:#04x}/{f:#04x}` {}", a.command, a.name),
            None => format!("`{:#04x}` {}", a.command, a.name),
        })
        .collect();
    out.push_str(&format!(
        "| STP, and ATA PASS-THROUGH CDBs | ATA command (`/features`) | {} |\n",
        ata.join(", ")
    ));
    let smp: Vec<String> = READ_ONLY_SMP_FUNCTIONS
        .iter()
        .map(|s| format!("`{:#04x}` {}", s.value, s.name))
        .collect();
    out.push_str(&format!(
        "| SMP | function (request byte 1, frame type `0x40`) | {} |\n",
        smp.join(", ")
    ));
    out
}

#[allow(dead_code)] // unused when a test includes this file as a module
fn main() {
    print!("{}", markdown());
}
