//! Small text helpers the renderers share.

use std::fmt::{self, Display};

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
