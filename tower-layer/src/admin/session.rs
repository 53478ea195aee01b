//! The admin login: the password's salted hash and the in-memory sessions.
//!
//! - The password is kept only as an Argon2id hash (PHC string, RustCrypto's `argon2` with
//!   its default parameters) with a 16-byte salt from the OS (`getrandom`); decisions 17.
//! - A session token is `admin-` and 43 base64url characters (32 bytes from the OS), like
//!   the original's `token_urlsafe(32)`. Sessions expire (the original's never did), are lost
//!   on restart, and are all dropped when the password changes.

use std::collections::HashMap;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::HeaderMap;

/// The prefix of every session token.
const SESSION_PREFIX: &str = "admin-";

/// Sessions kept at most; a login beyond that drops the one closest to expiry.
const MAX_SESSIONS: usize = 1_024;

/// OS randomness is unavailable (or hashing failed): no salt, no session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NoRandomness;

/// A password's salted Argon2id hash as a PHC string (`$argon2id$v=19$m=…$salt$hash`): the
/// only form in which the admin password is kept or stored.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt. Slow on purpose (tens of ms): call it off
    /// the async threads.
    pub(super) fn new(password: &str) -> Result<Self, NoRandomness> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|_| NoRandomness)?;
        let hash = Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|_| NoRandomness)?;
        Ok(PasswordHash(hash.to_string()))
    }

    /// A stored PHC string; `None` if it is not an Argon2 hash we can verify against.
    pub(super) fn from_phc(phc: String) -> Option<Self> {
        argon2::PasswordHash::new(&phc).ok()?;
        phc.starts_with("$argon2").then_some(PasswordHash(phc))
    }

    /// The PHC string, for the store.
    pub(super) fn as_phc(&self) -> &str {
        &self.0
    }

    /// Whether `password` is the hashed one (the comparison inside is constant-time). Slow
    /// like [`PasswordHash::new`].
    pub(super) fn verify(&self, password: &str) -> bool {
        Argon2::default().verify_password(password.as_bytes(), self.0.as_str()).is_ok()
    }
}

/// A new session token: `admin-` + 43 base64url characters from 32 OS-random bytes.
fn new_session_token() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| NoRandomness)?;
    Ok(format!("{SESSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The session token a request presents: `Authorization: Bearer <token>`, or the raw token
/// (the original accepts both). `None` when there is no such header.
pub(super) fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    if value.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => value.get(7..)?.trim(),
        _ => value,
    };
    (!token.is_empty()).then_some(token)
}

/// Live sessions: token -> expiry (unix ms). Time comes in as an argument.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    expiry: HashMap<String, u64>,
}

impl Sessions {
    /// A new session valid until `now_ms + ttl_ms`. Expired sessions are dropped first; at
    /// [`MAX_SESSIONS`] the one closest to expiry goes.
    pub(super) fn issue(&mut self, now_ms: u64, ttl_ms: u64) -> Result<String, NoRandomness> {
        let token = new_session_token()?;
        self.expiry.retain(|_, until| *until > now_ms);
        if self.expiry.len() >= MAX_SESSIONS {
            let soonest =
                self.expiry.iter().min_by_key(|(_, until)| **until).map(|(t, _)| t.clone());
            if let Some(soonest) = soonest {
                self.expiry.remove(&soonest);
            }
        }
        self.expiry.insert(token.clone(), now_ms.saturating_add(ttl_ms));
        Ok(token)
    }

    /// Whether `token` is a live session at `now_ms` (an expired one is dropped).
    pub(super) fn check(&mut self, token: &str, now_ms: u64) -> bool {
        match self.expiry.get(token) {
            Some(until) if *until > now_ms => true,
            Some(_) => {
                self.expiry.remove(token);
                false
            }
            None => false,
        }
    }

    /// Ends one session; `false` if it was not live.
    pub(super) fn revoke(&mut self, token: &str) -> bool {
        self.expiry.remove(token).is_some()
    }

    /// Ends every session (after a password change).
    pub(super) fn clear(&mut self) {
        self.expiry.clear();
    }

    /// Live and expired-but-not-yet-dropped sessions.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.expiry.len()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn password_hash_verifies_only_the_password() {
        let hash = PasswordHash::new("correct horse").unwrap();
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct horse "));
        assert!(!hash.verify(""));
        assert!(hash.as_phc().starts_with("$argon2id$"), "{}", hash.as_phc());
        assert!(!hash.as_phc().contains("correct horse"));
        assert!(!format!("{hash:?}").contains("argon2"));
    }

    #[test]
    fn two_hashes_of_one_password_differ() {
        let (a, b) = (PasswordHash::new("pw").unwrap(), PasswordHash::new("pw").unwrap());
        assert_ne!(a, b, "fresh salt each time");
        assert!(a.verify("pw") && b.verify("pw"));
    }

    #[test]
    fn stored_hashes_round_trip() {
        let hash = PasswordHash::new("pw").unwrap();
        let back = PasswordHash::from_phc(hash.as_phc().to_owned()).unwrap();
        assert!(back.verify("pw"));
        assert!(PasswordHash::from_phc("pw".into()).is_none(), "plaintext is not a hash");
        assert!(PasswordHash::from_phc("$2b$12$notargon".into()).is_none());
    }

    #[test]
    fn sessions_expire_and_are_unguessable() {
        let mut sessions = Sessions::default();
        let a = sessions.issue(1_000, 500).unwrap();
        let b = sessions.issue(1_000, 500).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("admin-") && a.len() == 6 + 43, "{a}");
        assert!(sessions.check(&a, 1_499));
        assert!(!sessions.check(&a, 1_500), "expired at exactly ttl");
        assert!(!sessions.check(&a, 1_000), "dropped once expired");
        assert!(sessions.revoke(&b) && !sessions.check(&b, 1_000));
        let c = sessions.issue(2_000, 500).unwrap();
        sessions.clear();
        assert!(!sessions.check(&c, 2_000));
    }

    #[test]
    fn sessions_are_bounded() {
        let mut sessions = Sessions::default();
        let first = sessions.issue(0, 10).unwrap();
        for i in 0..MAX_SESSIONS as u64 {
            sessions.issue(0, 1_000 + i).unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(!sessions.check(&first, 0), "the one closest to expiry went");
    }

    #[test]
    fn presented_token_with_or_without_bearer() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented(&headers), None);
        for (value, want) in [
            ("Bearer admin-x", Some("admin-x")),
            ("bearer  admin-x ", Some("admin-x")),
            ("admin-x", Some("admin-x")),
            ("Bearer ", None),
            ("", None),
        ] {
            headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(presented(&headers), want, "{value:?}");
        }
    }
}
