//! Writes the seed corpus of the `decide` target from the builder's sample packets, in both
//! layouts, plus one near-miss per structural rule:
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/corpus/decide
//!     cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/corpus/guarded guarded
//!
//! Each file is the target's input: for `decide`, an options byte (bit 0: i386), a four-byte
//! allow list, then the packet; for `guarded`, the options byte, the packet (its buffers inside
//! the fake tool's memory window), then that memory, once for the copying strategy in each
//! layout and once for the in-place one (its process's layout, enforce and read-only). Names are stable, so rerunning overwrites
//! the same files.

use std::path::PathBuf;

use mfiguard_sanitizer::abi::mfi::{
    MR_DCMD_CTRL_EVENT_GET, MR_DCMD_CTRL_GET_INFO, MR_DCMD_LD_GET_LIST, MR_DCMD_PD_GET_LIST,
};
use mfiguard_sanitizer::builder::{samples, PacketBuilder};
use mfiguard_sanitizer::Abi;

#[allow(non_snake_case)] // the two addresses read as constants
fn packets(abi: Abi, guarded: bool) -> Vec<(&'static str, PacketBuilder)> {
    // `guarded`'s fake tool maps 64 KiB at 0x10000, the packet first; buffers follow it.
    let (BUF, SENSE) = if guarded {
        (0x1_1000, 0x1_4000)
    } else {
        (0x7f00_1234_5000, 0x7f00_1234_9000)
    };
    let dcmd = |op| samples::dcmd_read(abi, op, BUF, 2048);
    let inquiry = || samples::scsi_inquiry(abi, 3, BUF, 96, SENSE);
    let stp = || samples::megacli_8_01_06_stp_probe(abi, 4, BUF, BUF + 0x1000);
    vec![
        ("dcmd-ctrl-get-info", dcmd(MR_DCMD_CTRL_GET_INFO)),
        ("dcmd-pd-get-list", dcmd(MR_DCMD_PD_GET_LIST)),
        ("dcmd-ld-get-list", dcmd(MR_DCMD_LD_GET_LIST)),
        ("dcmd-event-get", dcmd(MR_DCMD_CTRL_EVENT_GET)),
        ("scsi-inquiry", inquiry()),
        ("stp-probe-8.01.06", stp()),
        ("sge-count-17", dcmd(MR_DCMD_CTRL_GET_INFO).sge_count(17)),
        (
            "sgl-off-0x40000",
            dcmd(MR_DCMD_CTRL_GET_INFO).sgl_off(0x4_0000),
        ),
        ("sense-off-0x100000", inquiry().sense_off(0x10_0000)),
        ("sense-len-4097", inquiry().sense_len(4097)),
        (
            "iov-len-16mib-plus-1",
            dcmd(MR_DCMD_CTRL_GET_INFO).iovec(0, BUF, (16 << 20) + 1),
        ),
        (
            "stale-entry",
            stp().iovec(0, BUF, 0).frame_u64(0x30, 0x91df_c000),
        ),
        ("hdr-sense-len-255", inquiry().header(|h| h.sense_len = 255)),
        ("cmd-abort", dcmd(0).header(|h| h.cmd = 0x06)),
    ]
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or("corpus/decide".into()));
    let guarded = std::env::args().nth(2).as_deref() == Some("guarded");
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    let mut n = 0;
    for abi in Abi::ALL {
        for (name, packet) in packets(abi, guarded) {
            let options = u8::from(abi == Abi::Ilp32);
            // The guarded path's in-place strategy (options bit 4) runs in the native layout,
            // in enforce and in read-only mode (bit 2).
            let strategies: &[(u8, &str)] = match (guarded, abi) {
                (false, _) => &[(0, "")],
                (true, Abi::Lp64) => &[(0, ""), (0x10, "in-place-"), (0x14, "in-place-readonly-")],
                (true, Abi::Ilp32) => &[(0, "")],
            };
            for &(strategy, prefix) in strategies {
                let mut input = if guarded {
                    vec![options | strategy]
                } else {
                    vec![options, 0, 0, 0, 0]
                };
                input.extend(packet.clone().build());
                if guarded {
                    // The tool's memory after the packet: the data and sense buffers.
                    input.extend((0..0x4000u32).map(|i| (i * 7) as u8));
                }
                let path = dir.join(format!("seed-{}-{prefix}{name}", abi.name()));
                std::fs::write(&path, input).expect("write a seed");
                n += 1;
            }
        }
    }
    eprintln!("{n} seeds in {}", dir.display());
}
