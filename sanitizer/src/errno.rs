//! Errno values and their names: the one table every part of the guard names errnos with (the
//! records' `errno_name`, the readable lines, the client's and the probe's output).

use core::fmt;

/// A Linux errno value (the same numbers on x86_64 and i386).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// `EPERM`: refused by the read-only policy.
    pub const EPERM: Errno = Errno(1);
    /// `EIO`: the guard failed internally and fails closed.
    pub const EIO: Errno = Errno(5);
    /// `EFAULT`: the caller's packet could not be read.
    pub const EFAULT: Errno = Errno(14);
    /// `EINVAL`: a structural rule refused the packet.
    pub const EINVAL: Errno = Errno(22);
    /// `EOPNOTSUPP`: an operation the guard does not carry.
    pub const EOPNOTSUPP: Errno = Errno(95);

    /// The symbolic name, for logs: the errnos a guarded call can return, and those an audit
    /// sink meets; `errno` for any other (see the `Display` form, which adds the number).
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "0",
            1 => "EPERM",
            2 => "ENOENT",
            4 => "EINTR",
            5 => "EIO",
            6 => "ENXIO",
            9 => "EBADF",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            16 => "EBUSY",
            19 => "ENODEV",
            20 => "ENOTDIR",
            21 => "EISDIR",
            22 => "EINVAL",
            23 => "ENFILE",
            24 => "EMFILE",
            25 => "ENOTTY",
            28 => "ENOSPC",
            30 => "EROFS",
            32 => "EPIPE",
            38 => "ENOSYS",
            40 => "ELOOP",
            90 => "EMSGSIZE",
            95 => "EOPNOTSUPP",
            105 => "ENOBUFS",
            111 => "ECONNREFUSED",
            122 => "EDQUOT",
            // The kernel-internal code the driver returns for commands it does not know.
            524 => "ENOTSUPP",
            _ => "errno",
        }
    }
}

/// `ENAME`, or `errno N` for a value without a name.
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "errno" => write!(f, "errno {}", self.0),
            name => f.write_str(name),
        }
    }
}
