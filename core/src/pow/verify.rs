//! The server side of the proof (spec 3.6 step 3), for the simulated backend.
//!
//! Steps 1 ([`SentinelHeader::parse`](super::SentinelHeader::parse)), 2 (is `c` a token we
//! issued), 4 (`oai-device-id == id`) and 5 (`t` is not checked) belong to the simulator.

use std::fmt;

use base64::Engine as _;
use serde_json::Value;

use super::{PowChallenge, PROOF_PREFIX, PROOF_SUFFIX, REQUIREMENTS_PREFIX};

/// Why a sentinel header or proof was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PowRejection {
    /// The header is not a JSON object with string fields `p`, `t`, `c`, `id` and `flow`.
    MalformedHeader,
    /// `p` does not start with `gAAAAAB` (or, where allowed, `gAAAAAC`).
    WrongPrefix,
    /// `p` does not end with `~S`.
    MissingSuffix,
    /// `SHA3-512(seed ‖ answer)` does not meet the difficulty.
    AboveTarget,
    /// The answer is not base64 of a JSON array of 18 elements with an integer at index 3.
    MalformedAnswer,
}

impl fmt::Display for PowRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowRejection::MalformedHeader => {
                "sentinel token is not a JSON object with p, t, c, id, flow"
            }
            PowRejection::WrongPrefix => "proof has the wrong prefix",
            PowRejection::MissingSuffix => "proof does not end with ~S",
            PowRejection::AboveTarget => "proof does not meet the difficulty",
            PowRejection::MalformedAnswer => "proof answer is not an encoded config array",
        })
    }
}

impl std::error::Error for PowRejection {}

/// Checks a header's `p` against the challenge the simulator issued with its `c`:
/// `gAAAAAB` + answer + `~S`, where `SHA3-512(seed ‖ answer)` meets the difficulty and the
/// answer is base64 of an 18-element JSON array with an integer nonce at index 3.
///
/// ```
/// use sora2api_core::pow::{verify, PowChallenge, PowRejection};
///
/// let challenge = PowChallenge::new("0.5", "0fffff")?;
/// assert_eq!(verify(&challenge, "gAAAAABnope~S"), Err(PowRejection::AboveTarget));
/// assert_eq!(verify(&challenge, "gAAAAACnope~S"), Err(PowRejection::WrongPrefix));
/// # Ok::<(), sora2api_core::pow::PowError>(())
/// ```
pub fn verify(challenge: &PowChallenge, proof: &str) -> Result<(), PowRejection> {
    let answer = strip(proof, &[PROOF_PREFIX])?;
    if !challenge.accepts_hash(&challenge.hash(answer)) {
        return Err(PowRejection::AboveTarget);
    }
    check_structure(answer)
}

/// Checks a `p` when the simulator answered `proofofwork.required = false`: a `gAAAAAB` or
/// reused `gAAAAAC` proof ending in `~S` whose answer is an encoded config array. There is no
/// hash to check: the requirements token's seed never reaches the server.
pub fn verify_not_required(proof: &str) -> Result<(), PowRejection> {
    check_structure(strip(proof, &[PROOF_PREFIX, REQUIREMENTS_PREFIX])?)
}

fn strip<'p>(proof: &'p str, prefixes: &[&str]) -> Result<&'p str, PowRejection> {
    let rest = prefixes
        .iter()
        .find_map(|prefix| proof.strip_prefix(prefix))
        .ok_or(PowRejection::WrongPrefix)?;
    rest.strip_suffix(PROOF_SUFFIX).ok_or(PowRejection::MissingSuffix)
}

fn check_structure(answer: &str) -> Result<(), PowRejection> {
    let json = base64::engine::general_purpose::STANDARD
        .decode(answer)
        .map_err(|_| PowRejection::MalformedAnswer)?;
    let array: Vec<Value> =
        serde_json::from_slice(&json).map_err(|_| PowRejection::MalformedAnswer)?;
    if array.len() == 18 && array.get(3).is_some_and(Value::is_u64) {
        Ok(())
    } else {
        Err(PowRejection::MalformedAnswer)
    }
}
