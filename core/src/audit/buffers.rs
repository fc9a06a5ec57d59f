//! Where a record is assembled before its single `write`.

use std::fmt;

/// Where a line is assembled before its single `write`.
pub trait LineBuf: fmt::Write {
    /// Empties the buffer.
    fn clear(&mut self);
    /// The bytes written so far.
    fn bytes(&self) -> &[u8];
}

impl LineBuf for String {
    fn clear(&mut self) {
        String::clear(self);
    }
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// A fixed buffer on the stack, for signal-handler context where nothing may allocate.
/// A write that does not fit fails whole, so the contents stay valid UTF-8.
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    pub(crate) len: usize,
}

impl<const N: usize> StackBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> LineBuf for StackBuf<N> {
    fn clear(&mut self) {
        self.len = 0;
    }
    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Signal-context records are assembled in this many bytes of stack.
pub const NESTED_BUF: usize = 4096;
