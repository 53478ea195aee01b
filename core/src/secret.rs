//! A secret string (access, session and refresh tokens, API keys) that never prints.

use std::fmt;

/// A secret. `Debug` and `Display` show only a short fingerprint, so a secret that ends up in
/// a log line or an error message does not leak. Read it with [`Secret::expose`], only where
/// it is put on the wire.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short, stable, non-reversible fingerprint (FNV-1a, 32 bits, hex) for logs and the
    /// admin API: enough to tell tokens apart, useless to an attacker.
    pub fn fingerprint(&self) -> String {
        let mut hash: u32 = 0x811c_9dc5;
        for b in self.0.bytes() {
            hash ^= u32::from(b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        format!("{hash:08x}")
    }

    /// A masked form for display: the first characters (6, but never more than a quarter of
    /// the secret: a short API key such as `han1234` would otherwise show all but one of its
    /// characters, and the fingerprint would confirm the last), then `…` and the fingerprint.
    pub fn masked(&self) -> String {
        let shown = (self.0.chars().count() / 4).min(6);
        let head: String = self.0.chars().take(shown).collect();
        format!("{head}…{}", self.fingerprint())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secret:{}", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("eyJhbGciOiJIUzI1NiJ9.very-secret-payload.sig");
        for shown in [format!("{s:?}"), format!("{s}"), s.masked()] {
            assert!(!shown.contains("very-secret-payload"), "{shown}");
        }
        assert_eq!(s.expose(), "eyJhbGciOiJIUzI1NiJ9.very-secret-payload.sig");
        assert_eq!(s.fingerprint(), Secret::new(s.expose()).fingerprint());
        assert_ne!(s.fingerprint(), Secret::new("other").fingerprint());
    }

    #[test]
    fn masked_shows_at_most_a_quarter() {
        let long = Secret::new("eyJhbGciOiJIUzI1NiJ9.payload.signature");
        assert_eq!(long.masked(), format!("eyJhbG…{}", long.fingerprint()));
        for (key, head) in [("han1234", "h"), ("abc", ""), ("", ""), ("0123456789abcdef", "0123")] {
            let masked = Secret::new(key).masked();
            assert_eq!(masked, format!("{head}…{}", Secret::new(key).fingerprint()), "{key}");
        }
        // Characters, not bytes.
        assert_eq!(Secret::new("ééééééééé").masked().chars().next(), Some('é'));
    }
}
