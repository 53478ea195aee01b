//! The sentinel proof of work (spec section 3, decisions 13): the fingerprint config array,
//! the byte-exact solver with PY HEAD's j rule, the token strings, the `sentinel/req`
//! exchange, the `openai-sentinel-token` header, and the verifier the simulator uses.
//!
//! Sans-IO like the rest of the core: the time, the time zone and every random choice come in
//! as arguments ([`PowEnv`], [`FingerprintPicks`], [`requirements_seed`], [`uuid4`]), and the
//! solver is a budgeted [`Solver::step`] the shell runs off the async threads.
//!
//! One sentinel token, end to end:
//!
//! 1. [`FingerprintTable::build`] a [`ConfigArray`] from [`PY_HEAD`], the clock and random
//!    words.
//! 2. Solve [`PowChallenge::requirements`] (difficulty `0fffff`, about 16 hashes) and send
//!    [`sentinel_req_body`] with [`sentinel_req_headers`] to `sentinel/req`.
//! 3. [`SentinelReply::parse`] the reply. If it carries a challenge, solve it (PY builds a
//!    fresh config array for it; reusing the first is as good, the server checks neither).
//! 4. [`header_proof`] picks `p`; [`SentinelHeader::render`] is the header value, and its `id`
//!    is also sent as `oai-device-id`.
//!
//! ```
//! use sora2api_core::pow::{self, FingerprintPicks, PowChallenge, PowEnv, SentinelHeader};
//! use sora2api_core::pow::{SentinelReply, Solver, Step, PY_HEAD};
//!
//! // The shell injects the clock, the time zone, the user agent and random words.
//! let env = PowEnv {
//!     now_unix_ms: 1_767_758_400_000,
//!     utc_offset_minutes: 480,
//!     tz_name: "CST",
//!     user_agent: "Mozilla/5.0 (Linux; Android 6.0; Nexus 5 Build/MRA58N)",
//! };
//! let config = PY_HEAD.build(&env, &FingerprintPicks::from_seed(0x1234))?;
//!
//! // The requirements token and the sentinel/req request.
//! let seed = pow::requirements_seed(0x5eed_5eed_5eed_5eed);
//! let requirements = pow::solve(&PowChallenge::requirements(seed), &config).requirements_token();
//! let id = pow::uuid4([7; 16]);
//! let body = pow::sentinel_req_body(&requirements, &id);
//! let _headers = pow::sentinel_req_headers(env.user_agent, &body, None);
//!
//! // The reply demands a proof: solve it in budgeted slices.
//! let reply = SentinelReply::parse(br#"{"token":"c-token","turnstile":{"dx":"dx"},
//!     "proofofwork":{"required":true,"seed":"0.42","difficulty":"06a7c5"}}"#)?;
//! let challenge = reply.proof_of_work.clone().ok_or("no challenge")?;
//! let mut solver = Solver::new(&challenge, &config);
//! let answer = loop {
//!     match solver.step(256) {
//!         Step::Pending => continue, // the shell may yield or check for cancellation here
//!         Step::Solved(answer) | Step::Exhausted(answer) => break answer,
//!     }
//! };
//! let p = pow::header_proof(&requirements, Some(&answer));
//! let header = SentinelHeader::new(&p, &reply, &id, pow::FLOW_CREATE_TASK_AUTO).render();
//! assert!(header.starts_with(r#"{"p":"gAAAAAB"#));
//!
//! // The simulator's side.
//! let received = SentinelHeader::parse(header.as_bytes())?;
//! pow::verify(&challenge, &received.p)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod b64;
mod challenge;
mod config;
mod fingerprint;
mod solver;
mod token;
mod verify;

#[cfg(test)]
mod tests;

pub use challenge::{PowChallenge, PowError, REQUIREMENTS_DIFFICULTY};
pub use config::ConfigArray;
pub use fingerprint::{browser_date, uuid4, FingerprintPicks, FingerprintTable, PowEnv, PY_HEAD};
pub use solver::{solve, JRule, PowAnswer, Solver, Step, POW_MAX_ITERATION};
pub use token::{
    fallback_answer, header_proof, proof_token, requirements_seed, requirements_token,
    sentinel_req_body, sentinel_req_headers, with_proof_suffix, SentinelHeader, SentinelReply,
    FALLBACK_PREFIX, FLOW_CREATE_TASK, FLOW_CREATE_TASK_AUTO, FLOW_SORA_INIT, PROOF_PREFIX,
    PROOF_SUFFIX, REQUIREMENTS_PREFIX, SENTINEL_REQ_PATH,
};
pub use verify::{verify, verify_not_required, PowRejection};
