//! `POST /backend-api/sentinel/req` (spec 3.4) and the verifier of `openai-sentinel-token`
//! (spec 3.6).

use serde_json::{json, Map, Value};

use crate::pow::{self, PowChallenge, SentinelHeader, FLOW_CREATE_TASK, FLOW_CREATE_TASK_AUTO};
use crate::upstream::{UpstreamReply, UpstreamRequest};

use super::http::{invalid_request, json_reply};
use super::Sim;

/// A sentinel token (`c`) the simulator issued.
#[derive(Debug, Clone)]
pub(super) struct Issued {
    /// The challenge, when `proofofwork.required` was true.
    challenge: Option<PowChallenge>,
    expires_at_ms: u64,
    used: bool,
    /// The `id` of the `sentinel/req` body.
    device_id: String,
    /// The account whose bearer came with `sentinel/req`, if any.
    account: Option<usize>,
}

impl Sim {
    /// `POST /backend-api/sentinel/req`: a JSON body (sent as `text/plain` or
    /// `application/json`) with `p` (a `gAAAAAC` requirements token whose answer is an
    /// encoded config array), `id` (a uuid) and `flow` (non-empty); else 400
    /// `invalid_request`. Answers `{token, expire_after, turnstile:{required, dx},
    /// proofofwork:{required, seed, difficulty}}`. A valid bearer binds the token to its
    /// account.
    pub(super) fn sentinel_req(&mut self, now: u64, req: &UpstreamRequest) -> UpstreamReply {
        let Ok(body) = serde_json::from_slice::<Map<String, Value>>(&req.body) else {
            return invalid_request();
        };
        let text = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let (Some(p), Some(id), Some(_flow)) = (text("p"), text("id"), text("flow")) else {
            return invalid_request();
        };
        if !p.starts_with(pow::REQUIREMENTS_PREFIX)
            || pow::verify_not_required(&pow::with_proof_suffix(p)).is_err()
            || !is_uuid(id)
        {
            return invalid_request();
        }
        let account = self.authenticate(now, req).ok();
        let token = format!("gAAAAAB{}", self.rng.token_text(140));
        let dx = self.rng.token_text(96);
        let seed = pow::requirements_seed(self.rng.next_u64());
        let required = self.cfg.pow_required;
        let challenge = if required {
            match PowChallenge::new(seed.clone(), self.cfg.pow_difficulty.clone()) {
                Ok(challenge) => Some(challenge),
                // A misconfigured difficulty: hand out one nobody can meet rather than panic.
                Err(_) => PowChallenge::new(seed.clone(), "00000000").ok(),
            }
        } else {
            None
        };
        let proofofwork = match &challenge {
            Some(c) => json!({"required": true, "seed": c.seed(), "difficulty": c.difficulty()}),
            None => json!({"required": false}),
        };
        self.sentinels.insert(
            token.clone(),
            Issued {
                challenge,
                expires_at_ms: now.saturating_add(self.cfg.sentinel_ttl_ms),
                used: false,
                device_id: id.to_owned(),
                account,
            },
        );
        json_reply(
            200,
            &json!({
                "persona": if account.is_some() { "chatgpt-paid" } else { "chatgpt-noauth" },
                "token": token,
                "expire_after": self.cfg.sentinel_ttl_ms / 1000,
                "turnstile": {"required": true, "dx": dx},
                "proofofwork": proofofwork,
            }),
        )
    }

    /// Spec 3.6 for one sentinel-protected call by `account`; every failure is the observed
    /// 400 `invalid_request`.
    pub(super) fn verify_sentinel(
        &mut self,
        now: u64,
        req: &UpstreamRequest,
        account: usize,
    ) -> Result<(), UpstreamReply> {
        self.sentinel_attempts += 1;
        if self.cfg.reject_sentinel_on_attempts.contains(&self.sentinel_attempts) {
            return Err(invalid_request());
        }
        let header = req.header("openai-sentinel-token").ok_or_else(invalid_request)?;
        let header = SentinelHeader::parse(header.as_bytes()).map_err(|_| invalid_request())?;
        let strict = self.cfg.strict_device_id;
        let single_use = self.cfg.sentinel_single_use;
        let issued = self.sentinels.get_mut(&header.c).ok_or_else(invalid_request)?;
        let flow_ok = header.flow == FLOW_CREATE_TASK_AUTO || header.flow == FLOW_CREATE_TASK;
        let proof_ok = match &issued.challenge {
            Some(challenge) => pow::verify(challenge, &header.p).is_ok(),
            None => pow::verify_not_required(&header.p).is_ok(),
        };
        let device_ok = !strict
            || (req.header("oai-device-id") == Some(header.id.as_str())
                && header.id == issued.device_id);
        if now >= issued.expires_at_ms
            || (single_use && issued.used)
            || issued.account.is_some_and(|a| a != account)
            || !flow_ok
            || !proof_ok
            || !device_ok
        {
            return Err(invalid_request());
        }
        issued.used = true;
        Ok(())
    }
}

/// A hyphenated uuid: 8-4-4-4-12 hex digits.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}
