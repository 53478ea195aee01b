//! The two access-token claims the gateway reads (2.1): `exp` and the profile e-mail. The
//! signature is not checked (the upstream checks it); this only tells when a token expires
//! and whose it is.
//!
//! ```
//! use sora2api_core::upstream::jwt_claims;
//!
//! // {"alg":"none"} . {"exp":1767225600,"https://api.openai.com/profile":{"email":"a@b.c"}} . sig
//! let token = "eyJhbGciOiJub25lIn0.\
//!     eyJleHAiOjE3NjcyMjU2MDAsImh0dHBzOi8vYXBpLm9wZW5haS5jb20vcHJvZmlsZSI6eyJlbWFpbCI6ImFAYi5jIn19.sig";
//! let claims = jwt_claims(token).unwrap();
//! assert_eq!(claims.exp_unix_ms, Some(1_767_225_600_000));
//! assert_eq!(claims.email.as_deref(), Some("a@b.c"));
//! ```

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};
use serde::Deserialize;

use super::decode::{seconds_to_ms, Lenient};

/// base64url, padding optional.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims read from an access token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JwtClaims {
    /// `exp` (unix seconds) as unix milliseconds; `None` if absent or not a non-negative number.
    pub exp_unix_ms: Option<u64>,
    /// `https://api.openai.com/profile`.`email`, if present.
    pub email: Option<String>,
}

/// Why a token is not a readable JWT. Never carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three non-empty-header dot-separated parts.
    NotJwt,
    /// The payload is not base64url.
    Base64,
    /// The payload is not a JSON object.
    Json,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwtError::NotJwt => "the token is not a JWT (three dot-separated parts)",
            JwtError::Base64 => "the token's payload is not base64url",
            JwtError::Json => "the token's payload is not a JSON object",
        })
    }
}

impl std::error::Error for JwtError {}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    exp: Lenient<f64>,
    #[serde(default, rename = "https://api.openai.com/profile")]
    profile: Lenient<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    email: Lenient<String>,
}

/// Reads `exp` and the profile e-mail from a JWT without checking its signature.
/// Surrounding whitespace and a `Bearer ` prefix are ignored; a missing claim is `None`.
pub fn jwt_claims(token: &str) -> Result<JwtClaims, JwtError> {
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotJwt);
    };
    if header.is_empty() || payload.is_empty() {
        return Err(JwtError::NotJwt);
    }
    let bytes = B64URL.decode(payload).map_err(|_| JwtError::Base64)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| JwtError::Json)?;
    if !value.is_object() {
        return Err(JwtError::Json);
    }
    let p: Payload = serde_json::from_value(value).map_err(|_| JwtError::Json)?;
    Ok(JwtClaims {
        exp_unix_ms: p.exp.0.and_then(seconds_to_ms),
        email: p.profile.into_inner().and_then(|pr| pr.email.0).filter(|e| !e.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};

    use super::*;

    fn token(payload: &str, engine: &GeneralPurpose) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            engine.encode(payload)
        )
    }

    #[test]
    fn valid_and_missing_claims() {
        let full = r#"{"exp":1767225600,"iat":1,"https://api.openai.com/profile":{"email":"a@b.c","email_verified":true},"https://api.openai.com/auth":{"user_id":"u"}}"#;
        let cases = [
            (full, JwtClaims { exp_unix_ms: Some(1_767_225_600_000), email: Some("a@b.c".into()) }),
            (
                r#"{"exp":1767225600.5}"#,
                JwtClaims { exp_unix_ms: Some(1_767_225_600_500), email: None },
            ),
            (
                r#"{"https://api.openai.com/profile":{"email":"x@y"}}"#,
                JwtClaims { exp_unix_ms: None, email: Some("x@y".into()) },
            ),
            (r#"{}"#, JwtClaims::default()),
            (
                r#"{"exp":"1767225600","https://api.openai.com/profile":"x@y"}"#,
                JwtClaims::default(),
            ),
            (r#"{"exp":-5,"https://api.openai.com/profile":{"email":null}}"#, JwtClaims::default()),
            (r#"{"exp":null,"https://api.openai.com/profile":{"email":""}}"#, JwtClaims::default()),
            (r#"{"exp":1e300}"#, JwtClaims { exp_unix_ms: Some(u64::MAX), email: None }),
        ];
        for (payload, want) in cases {
            assert_eq!(jwt_claims(&token(payload, &URL_SAFE_NO_PAD)), Ok(want), "{payload}");
        }
    }

    #[test]
    fn padding_and_alphabet_variants() {
        // Lengths 1..=3 mod 3 exercise every padding case; `?`/`>` exercise `-` and `_`.
        for email in ["a", "ab", "abc", "abcd", "?>?>~", "ü"] {
            let payload =
                format!(r#"{{"exp":10,"https://api.openai.com/profile":{{"email":"{email}"}}}}"#);
            let want = JwtClaims { exp_unix_ms: Some(10_000), email: Some(email.into()) };
            for engine in [&URL_SAFE_NO_PAD, &URL_SAFE] {
                assert_eq!(jwt_claims(&token(&payload, engine)), Ok(want.clone()), "{payload}");
            }
            assert_eq!(
                jwt_claims(&format!("  Bearer {} \n", token(&payload, &URL_SAFE_NO_PAD))),
                Ok(want)
            );
        }
        // The standard alphabet's `+` and `/` are not base64url.
        let std_only = STANDARD.encode(r#"{"email":"??>>"}"#);
        assert!(std_only.contains('+') || std_only.contains('/'));
        assert_eq!(jwt_claims(&format!("eyJ.{std_only}.sig")), Err(JwtError::Base64));
    }

    #[test]
    fn garbage() {
        let cases = [
            ("", JwtError::NotJwt),
            ("not a token", JwtError::NotJwt),
            ("a.b", JwtError::NotJwt),
            ("a.b.c.d", JwtError::NotJwt),
            (".eyJ9.sig", JwtError::NotJwt),
            ("eyJ..sig", JwtError::NotJwt),
            ("eyJ.!!!.sig", JwtError::Base64),
            ("eyJ.e.sig", JwtError::Base64),
            ("eyJ.bm90IGpzb24.sig", JwtError::Json),
            ("eyJ.WzEsMl0.sig", JwtError::Json),
            ("eyJ.bnVsbA.sig", JwtError::Json),
            ("é.ü.ö", JwtError::Base64),
            // serde_json refuses numbers beyond f64.
            ("eyJ.eyJleHAiOjFlNDAwfQ.sig", JwtError::Json),
        ];
        for (token, want) in cases {
            assert_eq!(jwt_claims(token), Err(want), "{token:?}");
            assert!(!want.to_string().contains(token) || token.is_empty());
        }
        // No signature part content is fine (unsigned tokens).
        assert!(jwt_claims(&format!("eyJ.{}.", URL_SAFE_NO_PAD.encode("{}"))).is_ok());
    }
}
