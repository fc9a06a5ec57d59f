//! Small text helpers the renderers share.

use std::ffi::c_int;
use std::fmt::{self, Display};

use mfiguard_sanitizer::Errno;

/// An errno as `ENAME` or its number.
#[derive(Clone, Copy, Debug)]
pub struct ErrnoName(pub c_int);

impl Display for ErrnoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The sanitizer names the errnos a call can return; these are the ones a sink meets.
        let sink = match self.0 {
            libc::ENOSPC => "ENOSPC",
            libc::EROFS => "EROFS",
            libc::ELOOP => "ELOOP",
            libc::EDQUOT => "EDQUOT",
            libc::EPIPE => "EPIPE",
            libc::EAGAIN => "EAGAIN",
            libc::ENOBUFS => "ENOBUFS",
            libc::EMSGSIZE => "EMSGSIZE",
            libc::ECONNREFUSED => "ECONNREFUSED",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::ENOSYS => "ENOSYS",
            libc::EMFILE => "EMFILE",
            libc::ENFILE => "ENFILE",
            libc::ENXIO => "ENXIO",
            libc::EPERM => "EPERM",
            _ => Errno(self.0).name(),
        };
        match sink {
            "errno" => write!(f, "errno {}", self.0),
            name => f.write_str(name),
        }
    }
}

pub(crate) fn hex16(v: u16) -> impl Display {
    struct H(u16);
    impl Display for H {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:#06x}", self.0)
        }
    }
    H(v)
}

pub(crate) fn hex32(v: u32) -> impl Display {
    struct H(u32);
    impl Display for H {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:#010x}", self.0)
        }
    }
    H(v)
}
