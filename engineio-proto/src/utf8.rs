//! [`Utf8Bytes`]: a cheaply cloneable, reference-counted UTF-8 string.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// An immutable UTF-8 string backed by [`Bytes`].
///
/// Text messages are decoded into this type without copying: a WebSocket text frame
/// `4hello` becomes a `Utf8Bytes` that points into the frame's own buffer. Cloning is a
/// reference-count increment.
///
/// The invariant (the bytes are valid UTF-8) is checked once, when the value is built.
///
/// ```
/// use engineio_proto::Utf8Bytes;
///
/// let text = Utf8Bytes::from_static("héllo");
/// assert_eq!(text.as_str(), "héllo");
/// assert_eq!(text.len(), 6); // bytes, not characters
///
/// let bytes = bytes::Bytes::from_static(b"\xff");
/// assert!(Utf8Bytes::try_from(bytes).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

/// The bytes given to [`Utf8Bytes::try_from`] were not valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8: the first {valid_up_to} bytes are valid, the byte after them is not")]
pub struct InvalidUtf8 {
    /// Length of the longest valid UTF-8 prefix.
    pub valid_up_to: usize,
}

impl Utf8Bytes {
    /// An empty string.
    pub const fn new() -> Self {
        Utf8Bytes(Bytes::new())
    }

    /// Wraps a static string without copying it.
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes the caller knows to be UTF-8, without checking them again (for
    /// example a text message a WebSocket library has already validated).
    ///
    /// # Safety
    ///
    /// `bytes` must be valid UTF-8.
    #[allow(unsafe_code)]
    pub unsafe fn from_bytes_unchecked(bytes: Bytes) -> Self {
        Utf8Bytes(bytes)
    }

    /// The string.
    #[inline]
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor either takes a `str`/`String` or validates the bytes
        // with `std::str::from_utf8`, and the inner `Bytes` is never exposed mutably.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes (a cheap clone).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Unwraps the underlying [`Bytes`].
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Returns a sub-string without copying.
    ///
    /// Returns `None` when the range is out of bounds or does not fall on character
    /// boundaries.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Option<Utf8Bytes> {
        let s = self.as_str();
        if range.start > range.end
            || range.end > s.len()
            || !s.is_char_boundary(range.start)
            || !s.is_char_boundary(range.end)
        {
            return None;
        }
        Some(Utf8Bytes(self.0.slice(range)))
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = InvalidUtf8;

    /// Validates the bytes once; no copy is made.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(Utf8Bytes(bytes)),
            Err(e) => Err(InvalidUtf8 {
                valid_up_to: e.valid_up_to(),
            }),
        }
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = InvalidUtf8;

    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        Utf8Bytes::try_from(Bytes::from(bytes))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<Box<str>> for Utf8Bytes {
    fn from(s: Box<str>) -> Self {
        Utf8Bytes::from(String::from(s))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl From<Utf8Bytes> for String {
    fn from(s: Utf8Bytes) -> Self {
        s.as_str().to_owned()
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_once_and_shares_buffer() {
        let raw = Bytes::from_static("4héllo".as_bytes());
        let all = Utf8Bytes::try_from(raw.clone()).unwrap();
        let tail = all.slice(1..all.len()).unwrap();
        assert_eq!(tail, "héllo");
        // Same allocation: the slice points into the original buffer.
        assert_eq!(tail.as_bytes().as_ptr(), raw[1..].as_ptr());
    }

    #[test]
    fn slice_refuses_char_boundaries_and_out_of_range() {
        let s = Utf8Bytes::from_static("é");
        assert!(s.slice(1..2).is_none());
        assert!(s.slice(0..3).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 2..1;
        assert!(s.slice(backwards).is_none());
        assert_eq!(s.slice(0..2).unwrap(), "é");
    }

    #[test]
    fn reports_valid_prefix() {
        let err = Utf8Bytes::try_from(b"ab\xc3".to_vec()).unwrap_err();
        assert_eq!(err.valid_up_to, 2);
        assert!(err.to_string().contains("first 2 bytes"));
    }
}
