//! The wire format: the kernel's ioctl packet and the firmware's MFI frames.

pub mod ioctl;
pub mod mfi;
pub mod names;
