//! The type secret values live in.

use std::fmt;

use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};

/// A secret's value: bytes kept in a [`secrecy::SecretBox`], zeroed when dropped.
///
/// It has no `Display`, and its `Debug` prints `SecretValue(<redacted>)`, so a value
/// cannot end up in a log line by accident. Call [`expose`](Self::expose) (or
/// [`ExposeSecret::expose_secret`]) at the one place that needs the bytes.
pub struct SecretValue(SecretBox<[u8]>);

impl SecretValue {
    /// Wraps bytes, copying them into a fresh allocation of exactly their length.
    /// The caller stays responsible for zeroing `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(SecretBox::new(Box::from(bytes)))
    }

    /// `len` zero bytes, to be read into through [`expose_mut`](Self::expose_mut): a
    /// value read from a file lands in its final allocation, with no copy to zero.
    pub(crate) fn zeroed(len: usize) -> Self {
        Self(SecretBox::new(vec![0u8; len].into_boxed_slice()))
    }

    /// The bytes, to fill.
    pub(crate) fn expose_mut(&mut self) -> &mut [u8] {
        self.0.expose_secret_mut()
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The bytes as UTF-8 text, if they are.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(self.expose()).ok()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl ExposeSecret<[u8]> for SecretValue {
    fn expose_secret(&self) -> &[u8] {
        self.expose()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl From<Vec<u8>> for SecretValue {
    /// Takes the vector's bytes; the vector's buffer is zeroed before it is freed.
    fn from(mut bytes: Vec<u8>) -> Self {
        let value = Self::from_bytes(&bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        value
    }
}

/// A secret's text, for [`SecretsStore::read_string`](crate::SecretsStore::read_string):
/// a [`secrecy::SecretString`] (zeroed on drop, redacted `Debug`).
pub type SecretText = secrecy::SecretString;

/// Removes exactly one trailing line ending (`"\n"` or `"\r\n"`) if there is one.
///
/// This is the rule for secrets given as *text* (a CLI argument, standard input,
/// [`SecretsStore::write_str`](crate::SecretsStore::write_str), a platform-mounted
/// file): `echo key | …` and `echo -n key | …` store the same value. Only one line
/// ending is removed, so a value that really ends in a blank line keeps it. The bytes
/// API ([`SecretsStore::write`](crate::SecretsStore::write)) stores bytes exactly.
///
/// ```
/// use botmaker_secrets::trim_trailing_newline;
/// assert_eq!(trim_trailing_newline(b"sk-1\n"), b"sk-1");
/// assert_eq!(trim_trailing_newline(b"sk-1\r\n"), b"sk-1");
/// assert_eq!(trim_trailing_newline(b"sk-1"), b"sk-1");
/// assert_eq!(trim_trailing_newline(b"sk-1\n\n"), b"sk-1\n");
/// ```
pub fn trim_trailing_newline(bytes: &[u8]) -> &[u8] {
    if let Some(rest) = bytes.strip_suffix(b"\r\n") {
        rest
    } else if let Some(rest) = bytes.strip_suffix(b"\n") {
        rest
    } else {
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let v = SecretValue::from_bytes(b"hunter2-very-secret");
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(v.expose(), b"hunter2-very-secret");
        assert_eq!(v.len(), 19);
        assert!(!v.is_empty());
        assert_eq!(v.expose_str(), Some("hunter2-very-secret"));
    }

    #[test]
    fn trims_one_line_ending_only() {
        assert_eq!(trim_trailing_newline(b""), b"");
        assert_eq!(trim_trailing_newline(b"\n"), b"");
        assert_eq!(trim_trailing_newline(b"\r\n"), b"");
        assert_eq!(trim_trailing_newline(b"\r"), b"\r");
        assert_eq!(trim_trailing_newline(b"a\r\n\r\n"), b"a\r\n");
    }
}
