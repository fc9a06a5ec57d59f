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

/// Text the caller controls (an executable's path, a user name, a configuration key), made
/// safe for a readable line: every control character (C0, DEL, C1) is written as an escape
/// (`\n`, `\t`, `\r`, `\e`, else `\xNN` or `\u{NNNN}`) and a backslash as `\\`, so that no
/// value can end the line, forge another record, or drive the terminal that shows it.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let s = self.0;
        // Fast path: nothing to escape (the usual executable path).
        if !s.chars().any(|c| c.is_control() || c == '\\') {
            return f.write_str(s);
        }
        for c in s.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                '\x1b' => f.write_str("\\e")?,
                c if (c as u32) < 0x80 && c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
                c if c.is_control() => write!(f, "\\u{{{:04x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn control_characters_are_escaped() {
        let e = |s: &str| Escaped(s).to_string();
        assert_eq!(e("/usr/sbin/MegaCli64"), "/usr/sbin/MegaCli64");
        assert_eq!(e("a\nb"), "a\\nb");
        assert_eq!(e("\x1b[31mred"), "\\e[31mred");
        assert_eq!(e("a\\nb"), "a\\\\nb");
        assert_eq!(e("\x00\x7f\u{85}\r\t"), "\\x00\\x7f\\u{0085}\\r\\t");
        // Printable non-ASCII stays as it is.
        assert_eq!(e("/opt/é"), "/opt/é");
    }
}
