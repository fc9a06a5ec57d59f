//! Writes the seed corpus of the `decide` target from the builder's sample packets, in both
//! layouts, plus one near-miss per structural rule:
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/corpus/decide
//!
//! Each file is the target's input: an options byte (bit 0: i386), a four-byte allow list, then
//! the packet. Names are stable, so rerunning overwrites the same files.

use std::path::PathBuf;

use mfiguard_sanitizer::abi::mfi::{
    MR_DCMD_CTRL_EVENT_GET, MR_DCMD_CTRL_GET_INFO, MR_DCMD_LD_GET_LIST, MR_DCMD_PD_GET_LIST,
};
use mfiguard_sanitizer::builder::{samples, PacketBuilder};
use mfiguard_sanitizer::Abi;

const BUF: u64 = 0x7f00_1234_5000;
const SENSE: u64 = 0x7f00_1234_9000;

fn packets(abi: Abi) -> Vec<(&'static str, PacketBuilder)> {
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
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    let mut n = 0;
    for abi in Abi::ALL {
        for (name, packet) in packets(abi) {
            let options = u8::from(abi == Abi::Ilp32);
            let mut input = vec![options, 0, 0, 0, 0];
            input.extend(packet.build());
            let path = dir.join(format!("seed-{}-{name}", abi.name()));
            std::fs::write(&path, input).expect("write a seed");
            n += 1;
        }
    }
    eprintln!("{n} seeds in {}", dir.display());
}
