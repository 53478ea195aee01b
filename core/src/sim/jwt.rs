//! Access tokens: HS256-looking JWTs with the two claims clients read (spec 2.1), `exp` (unix
//! seconds) and `https://api.openai.com/profile.email`. The signature is random text: clients
//! decode without verifying, and the simulator recognises its tokens by lookup, not by
//! signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;

use super::rng::Rng;

/// Mints a token for `email` that expires at `exp_ms` (unix milliseconds; `exp` is written in
/// whole seconds, rounded down).
pub(super) fn mint(
    rng: &mut Rng,
    email: &str,
    user_id: &str,
    plan: &str,
    iat_ms: u64,
    exp_ms: u64,
) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let payload = json!({
        "aud": ["https://api.openai.com/v1"],
        "exp": exp_ms / 1000,
        "iat": iat_ms / 1000,
        "iss": "https://auth.openai.com",
        "jti": rng.uuid4(),
        "sub": format!("auth0|{}", rng.hex(24)),
        "https://api.openai.com/auth": {"user_id": user_id, "chatgpt_plan_type": plan},
        "https://api.openai.com/profile": {"email": email, "email_verified": true},
    });
    let signature: Vec<u8> = (0..4).flat_map(|_| rng.next_u64().to_be_bytes()).collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The payload of a JWT, decoded without verifying (what clients do).
#[cfg(test)]
pub(super) fn claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_carry_the_claims() {
        let mut rng = Rng::new(3);
        let at = mint(&mut rng, "a@example.com", "user-x", "chatgpt_pro", 1_000_500, 9_000_999);
        assert_eq!(at.split('.').count(), 3);
        let decoded = claims(&at).unwrap();
        assert_eq!(decoded["exp"], 9_000);
        assert_eq!(decoded["https://api.openai.com/profile"]["email"], "a@example.com");
        assert!(claims("not-a-jwt").is_none());
    }
}
