//! Fuzz target: any bytes, either layout, several policies. Decide and apply never panic; the
//! verdict agrees with the independent model of the rule table; applying the rewrites and
//! deciding again leaves nothing to rewrite and the same reject status; every packet the
//! default policy lets through satisfies the invariants, and the firmware-view oracle finds every
//! address its firmware reads written by the driver, on Linux 6.1 (64- and 32-bit DMA) and on the
//! pre-3.3 driver; audit decides as enforce does; allowing rules never makes a decision stricter.
//!
//! Input: one byte of options (bit 0: the i386 layout; bit 1: audit mode; bit 2: the read-only
//! policy), four bytes of allow list (bit `i` allows `RuleId::ALL[i]`), then the packet (short
//! inputs are packets too). Every input is also checked under the default policy.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mfiguard_sanitizer::{decode, Abi, Mode, Policy};

#[path = "../../sanitizer/tests/properties/firmware.rs"]
mod firmware;
#[path = "../../sanitizer/tests/properties/oracle.rs"]
mod oracle;


fn check(policy: &Policy, abi: Abi, packet: &[u8]) {
    if let Err(e) = oracle::check_all(policy, abi, packet) {
        panic!("{e}\npolicy {policy:?}, {abi:?}, packet {packet:02x?}");
    }
    if let Err(e) = oracle::check_allow_monotone(policy, abi, packet) {
        panic!("{e}\npolicy {policy:?}, {abi:?}, packet {packet:02x?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (options, allow, packet) = match data {
        [o, a0, a1, a2, a3, rest @ ..] => (*o, u32::from_le_bytes([*a0, *a1, *a2, *a3]), rest),
        _ => (0, 0, data),
    };
    let abi = if options & 1 != 0 {
        Abi::Ilp32
    } else {
        Abi::Lp64
    };
    let chosen = Policy {
        mode: if options & 2 != 0 {
            Mode::Audit
        } else {
            Mode::Enforce
        },
        readonly: options & 4 != 0,
        allow: oracle::rule_set(allow),
    };
    // The other layout must not panic on the same bytes either.
    let other = match abi {
        Abi::Lp64 => Abi::Ilp32,
        Abi::Ilp32 => Abi::Lp64,
    };
    let _ = decode(other, packet);
    check(&Policy::default(), abi, packet);
    if chosen != Policy::default() {
        check(&chosen, abi, packet);
    }
});
