//! Decisions per second of the sanitizer alone: decode + every rule + verdict (+ apply for
//! rewrites), on the packets a monitoring run sends and on the seed's STP probe.
//!
//! `cargo bench -p mfiguard-sanitizer --bench decide [-- --quick]`. Prints a markdown table: per
//! packet, the median over repeated runs, the spread (min..max) and nanoseconds per decision.
#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark reports on stdout

use std::hint::black_box;
use std::time::Instant;

use mfiguard_sanitizer::abi::mfi::MR_DCMD_CTRL_GET_INFO;
use mfiguard_sanitizer::builder::samples;
use mfiguard_sanitizer::{decide, Abi, Decision, Policy};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (runs, iters) = if quick { (5, 20_000) } else { (15, 200_000) };
    let abi = Abi::NATIVE;
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "dcmd CTRL_GET_INFO (pass)",
            samples::dcmd_read(abi, MR_DCMD_CTRL_GET_INFO, 0x7f00_0000_1000, 2048).build(),
        ),
        (
            "scsi INQUIRY + sense (pass)",
            samples::scsi_inquiry(abi, 3, 0x7f00_0000_1000, 96, 0x7f00_0000_2000).build(),
        ),
        (
            "STP probe 8.01.06 (rewrite)",
            samples::megacli_8_01_06_stp_probe(abi, 4, 0x7f00_0000_1000, 0x7f00_0000_2000).build(),
        ),
        (
            "sgl_off 0x40000 (reject)",
            samples::dcmd_read(abi, MR_DCMD_CTRL_GET_INFO, 0x7f00_0000_1000, 2048)
                .sgl_off(0x40000)
                .build(),
        ),
    ];
    let policy = Policy::default();
    println!("Sanitizer decision alone: {runs} runs x {iters} decisions, {abi:?} layout.");
    println!();
    println!("| packet | decisions/s: median (min..max) | ns per decision |");
    println!("|---|---:|---:|");
    for (name, bytes) in &cases {
        let mut rates = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mut copy = bytes.clone();
            let start = Instant::now();
            for _ in 0..iters {
                let v = decide(&policy, abi, black_box(&copy)).unwrap();
                if v.decision() == Decision::Rewrite {
                    v.apply(black_box(&mut copy)).unwrap();
                    copy.copy_from_slice(bytes);
                }
                black_box(v);
            }
            rates.push(iters as f64 / start.elapsed().as_secs_f64());
        }
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = rates[rates.len() / 2];
        println!(
            "| {} | {:.2} M ({:.2}..{:.2}) | {:.0} |",
            name,
            median / 1e6,
            rates[0] / 1e6,
            rates[rates.len() - 1] / 1e6,
            1e9 / median
        );
    }
}
