//! The guarded path of a MegaRAID call, one lifecycle for every entry:
//!
//! ```text
//! (hook | notification | ptrace stop | CUSE request) -> Request -> snapshot -> decode
//!     -> policy -> verdict -> apply -> call the driver on a private copy
//!     -> copy back what the driver writes -> answer -> record
//! ```
//!
//! - [`request`]: which calls are guarded ([`is_guarded`], the one classifier every entry asks)
//!   and the [`Request`] an entry builds for one;
//! - [`caller`]: the seam each entry supplies, [`Caller`] (the caller's memory, identity and
//!   answer);
//! - [`recorder`]: the [`Recorder`], one per call: its sequence number, its record, the decision
//!   record (and the fail-closed refusal with `MFIGUARD_LOG_REQUIRED=1`, said on stderr), the
//!   refusals and the guard's own failures, the answer and the outcome record;
//! - two memory strategies, one for where the guard runs:
//!   - [`copied`]: for a call made by another process (the supervisor, its ptrace fallback,
//!     `mfiguard-hostd`): the packet and every buffer copied into this process, the driver
//!     handed a [`PrivateCall`] ([`private`]) that owns every buffer it points at, the results
//!     copied back; a [`Driver`] is this process's descriptor of the node;
//!   - [`in_place`]: for the library inside the caller's own process: nothing allocated, the
//!     private packet ([`LocalPacket`]) on the stack, the data buffers the caller's own; a
//!     [`NextIoctl`] is the `ioctl` after the guard.
//!
//! Nothing here makes a system call: the entries' seams do. The private packets are the
//! sanitizer's declared `megasas_iocpacket` structs, never byte offsets.

pub mod caller;
pub mod copied;
pub mod in_place;
pub mod private;
pub mod recorder;
pub mod request;
#[cfg(test)]
mod tests;

pub use caller::{Answer, Caller, Identity};
pub use copied::{Copied, Driver, Replay};
pub use in_place::{LocalPacket, NextIoctl, PrivatePacket, PACKET_SIZE, SMP_REQUEST_MAX};
pub use private::{
    plan, private_iovecs, Plan, PrivateCall, AEN_SIZE, CMD_STATUS, NATIVE_PACKET_SIZE,
};
pub use recorder::{after_fork, Delivery, Progress, Recorder};
pub use request::{is_guarded, Request};
