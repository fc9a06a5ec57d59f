//! The pure core of mfiguard: decode a MegaRAID management packet and decide, rule by rule,
//! what may reach the kernel.
//!
//! The data flows one way, and each step is one module:
//!
//! - **snapshot** (in the preload library): a private copy of the caller's `megasas_iocpacket`,
//!   taken once, so that what is checked is what is sent. This crate only ever sees bytes.
//! - **decode** ([`decode`]): those bytes, in either layout ([`Abi::Lp64`] or [`Abi::Ilp32`]),
//!   as a [`Packet`]: the packet's fields, its two MFI frames and its sixteen iovecs. Decoding
//!   fails only on a short input; any other content is representable, so the policy can name it.
//! - **firmware view** ([`firmware`]): where the firmware reads the addresses it DMAs to, per
//!   frame command, as data: the rules check what the firmware will read, not only where the
//!   driver writes.
//! - **rule** ([`policy`]): one function per rule of the spec, each with a stable id
//!   ([`RuleId`]), an action (rewrite, reject, warn), an errno and a reason, in one table
//!   ([`RULES`]).
//! - **verdict** ([`Verdict`]): every finding, and the combined decision: pass, rewrite, or
//!   reject with an errno. A [`Policy`] chooses enforce or audit and may downgrade rules.
//! - **apply** ([`Verdict::apply`]): the rewrites, written into the private copy before it
//!   is sent.
//!
//! The crate has no `unsafe`, does no I/O, never panics on any input and never allocates while
//! deciding.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::print_stdout
    )
)]

pub mod abi;
pub mod builder;
pub mod decode;
pub mod errno;
pub mod firmware;
pub mod policy;
pub mod readonly;
pub mod verdict;

pub use abi::ioctl::Abi;
pub use decode::{decode, DecodeError, IoVec, Packet, SMP_REQUEST_HEAD_LEN};
pub use errno::Errno;
pub use policy::{Action, Mode, Policy, Rule, RuleId, RuleSet, RULES};
pub use verdict::{
    decide, decide_packet, ApplyError, Decision, Detail, DriverWrite, Finding, Rewrites, Verdict,
};
