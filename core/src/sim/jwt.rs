//! Access tokens: HS256-looking JWTs with the two claims clients read (spec 2.1), `exp` (unix
//! seconds) and `https://api.openai.com/profile.email`. The signature of a token minted by a
//! [`Sim`](super::Sim) is random text: clients decode without verifying, and the simulator
//! recognises its tokens by lookup, not by signature.
//!
//! Offline tokens ([`mint_offline_token`]) are the exception: their signature is a keyed
//! SHA3-256 of the JWT's signing input under a key derived from [`SimConfig::seed`], so a
//! process that knows only the seed (`sora2api sim mint-token`) can mint tokens a running
//! simulator with [`SimConfig::accept_offline_tokens`] accepts, without talking to it.
//!
//! [`SimConfig::seed`]: super::SimConfig::seed
//! [`SimConfig::accept_offline_tokens`]: super::SimConfig::accept_offline_tokens

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha3::{Digest, Sha3_256};

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

/// Domain separation of the offline-token key.
const OFFLINE_DOMAIN: &[u8] = b"sora2api-sim offline access token v1\0";

/// Mints an access token for `email` on `plan` (a plan id such as `chatgpt_pro`, as in
/// [`AccountSpec::plan`](super::AccountSpec::plan)) that expires at `expires_at_ms` (unix ms;
/// `exp` is whole seconds, rounded down), signed for every simulator whose
/// [`SimConfig::seed`](super::SimConfig::seed) is `seed`.
///
/// A simulator with [`SimConfig::accept_offline_tokens`](super::SimConfig::accept_offline_tokens)
/// accepts it on first use: it creates the account (a Pro-like [`AccountSpec`] with this plan,
/// no session or refresh token) if no account has this email, else attaches the token to the
/// existing account. Deterministic: the same arguments give the same token; `issued_at_ms`
/// also seeds the `jti`, so tokens minted at different times differ.
///
/// ```
/// use sora2api_core::sim::{mint_offline_token, Sim, SimConfig, SimResponse};
/// use sora2api_core::upstream::{Method, UpstreamRequest};
///
/// let now = 1_767_225_600_000;
/// let config = SimConfig { accept_offline_tokens: true, ..SimConfig::fast() };
/// let token = mint_offline_token(config.seed, "bo@example.com", "chatgpt_plus", now, now + 3_600_000);
/// let mut sim = Sim::new(config);
/// let me = UpstreamRequest {
///     method: Method::Get,
///     url: "http://sim/backend/me".into(),
///     headers: vec![("authorization".into(), format!("Bearer {token}"))],
///     body: Default::default(),
///     timeout_ms: 1_000,
///     proxy: None,
/// };
/// assert_eq!(sim.handle(now, &me).status(), Some(200));
/// assert_eq!(sim.account("bo@example.com").map(|a| a.is_pro()), Some(false));
/// ```
///
/// [`AccountSpec`]: super::AccountSpec
pub fn mint_offline_token(
    seed: u64,
    email: &str,
    plan: &str,
    issued_at_ms: u64,
    expires_at_ms: u64,
) -> String {
    let digest = |parts: &[&[u8]]| {
        let mut hasher = Sha3_256::new();
        hasher.update(OFFLINE_DOMAIN);
        hasher.update(seed.to_be_bytes());
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize()
    };
    let jti = digest(&[b"jti\0", email.as_bytes(), b"\0", &issued_at_ms.to_be_bytes()]);
    let mut jti_bytes = [0u8; 16];
    jti_bytes.copy_from_slice(&jti[..16]);
    let user = digest(&[b"user\0", email.as_bytes()]);
    let user_hex: String = user[..12].iter().map(|b| format!("{b:02x}")).collect();
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let payload = json!({
        "aud": ["https://api.openai.com/v1"],
        "exp": expires_at_ms / 1000,
        "iat": issued_at_ms / 1000,
        "iss": "https://auth.openai.com",
        "jti": crate::pow::uuid4(jti_bytes),
        "sub": format!("auth0|{user_hex}"),
        "https://api.openai.com/auth": {"user_id": format!("user-{user_hex}"), "chatgpt_plan_type": plan},
        "https://api.openai.com/profile": {"email": email, "email_verified": true},
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = offline_signature(seed, &signing_input);
    format!("{signing_input}.{signature}")
}

fn offline_signature(seed: u64, signing_input: &str) -> String {
    let mut hasher = Sha3_256::new();
    hasher.update(OFFLINE_DOMAIN);
    hasher.update(seed.to_be_bytes());
    hasher.update(b"sig\0");
    hasher.update(signing_input.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// What a verified offline token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OfflineClaims {
    pub(super) email: String,
    pub(super) plan: String,
    /// `exp` in unix ms.
    pub(super) expires_at_ms: u64,
}

/// The claims of `token` if it is an offline token signed for `seed` (never panics).
pub(super) fn verify_offline(seed: u64, token: &str) -> Option<OfflineClaims> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    if offline_signature(seed, signing_input) != signature {
        return None;
    }
    let (_, payload) = signing_input.split_once('.')?;
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let email = payload.get("https://api.openai.com/profile")?.get("email")?.as_str()?;
    let plan = payload.get("https://api.openai.com/auth")?.get("chatgpt_plan_type")?.as_str()?;
    let exp = payload.get("exp")?.as_u64()?;
    Some(OfflineClaims {
        email: email.to_owned(),
        plan: plan.to_owned(),
        expires_at_ms: exp.saturating_mul(1000),
    })
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

    #[test]
    fn offline_tokens_verify_only_under_their_seed() {
        let at = mint_offline_token(7, "o@example.com", "chatgpt_pro", 1_000_500, 9_000_999);
        assert_eq!(at, mint_offline_token(7, "o@example.com", "chatgpt_pro", 1_000_500, 9_000_999));
        assert_ne!(at, mint_offline_token(7, "o@example.com", "chatgpt_pro", 1_001_500, 9_000_999));
        let verified = verify_offline(7, &at).unwrap();
        assert_eq!(
            verified,
            OfflineClaims {
                email: "o@example.com".into(),
                plan: "chatgpt_pro".into(),
                expires_at_ms: 9_000_000
            }
        );
        assert_eq!(
            claims(&at).unwrap()["https://api.openai.com/profile"]["email"],
            "o@example.com"
        );
        assert!(verify_offline(8, &at).is_none());
        // A changed payload breaks the signature.
        let mut parts: Vec<&str> = at.split('.').collect();
        let other = mint_offline_token(7, "x@example.com", "chatgpt_pro", 1_000_500, 9_000_999);
        parts[1] = other.split('.').nth(1).unwrap();
        assert!(verify_offline(7, &parts.join(".")).is_none());
        for junk in ["", ".", "a.b.c", "not-a-jwt", "..."] {
            assert!(verify_offline(7, junk).is_none());
        }
        // Random-signature tokens of a Sim never verify.
        let minted = mint(&mut Rng::new(7), "o@example.com", "u", "chatgpt_pro", 0, 1);
        assert!(verify_offline(7, &minted).is_none());
    }
}
