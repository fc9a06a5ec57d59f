//! What every entry of the guard shares: the library's hook (`libmfiguard.so`) and the
//! wrapper and its supervisor (`mfiguard-run`) read one configuration, write one kind of
//! audit record, and recognise the management node the same way, by this code.
//!
//! - `config`: environment, else `/etc/mfiguard.conf`, else defaults (safe code);
//! - `guarded`: the one lifecycle of a guarded call, its recorder and its two memory strategies
//!   (safe code);
//! - `audit`: the records and their sinks (safe code);
//! - `device`: is a descriptor (or an `fstat` result) the management node (safe code);
//! - `sys`: thin wrappers over the few libc calls the safe modules need.
//!
//! Unsafe code is denied at the crate root and allowed only in `sys`.

#![deny(unsafe_code)]
#![deny(clippy::print_stdout)]

pub mod audit;
pub mod config;
pub mod device;
pub mod guarded;
pub mod sys;
