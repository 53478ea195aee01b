//! The budgeted solver (spec 3.3 step 3 and 4).
//!
//! The hot loop never re-serialises the JSON. The config array's compact JSON is
//! `a ‖ i ‖ b ‖ j ‖ d` with three constant slices (spec 3.3 step 2). Base64 maps every 3
//! input bytes to 4 output bytes independently, so the encoding of the longest prefix of `a`
//! whose length is a multiple of 3 is constant: it is encoded once and, with the seed before
//! it, fed once into a SHA3-512 state that each iteration clones. The rest of the JSON lives in
//! a reused buffer together with its base64; while the number of digits of `i` and the value
//! of `j` stay the same (29 of every 30 iterations), an iteration rewrites the digits of `i`
//! in place and re-encodes only the base64 quads that cover them.

use sha3::{Digest, Sha3_512};

use super::b64::{encode_into, encoded_len};
use super::challenge::meets;
use super::token::fallback_answer;
use super::{ConfigArray, PowChallenge};

/// The iteration cap of PY's loop (`POW_MAX_ITERATION`); after it the fallback answer is used.
pub const POW_MAX_ITERATION: u32 = 500_000;

/// How index 9 of the config array moves with the iteration `i` (spec 3.3 step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JRule {
    /// PY HEAD (our rule, decisions 13): `dynamic_start + (i + 29) / 30`.
    #[default]
    PyHead,
    /// GO and ZHU (older PY): `i >> 1`; `dynamic_start` is ignored.
    Go,
}

impl JRule {
    /// Index 9's value at iteration `i`.
    pub fn j(self, dynamic_start: u32, i: u32) -> u64 {
        match self {
            // (i + 29) / 30 as in the spec, which is ceil(i / 30).
            JRule::PyHead => u64::from(dynamic_start) + u64::from(i).div_ceil(30),
            JRule::Go => u64::from(i >> 1),
        }
    }
}

/// A found (or fallback) answer: the base64 text that goes between a token's prefix and
/// suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PowAnswer {
    answer: String,
    iteration: Option<u32>,
}

// === impl PowAnswer ===

impl PowAnswer {
    /// The fallback answer for a seed no iteration solved (spec 3.3 step 4). It is still sent;
    /// the server rejects it.
    pub fn fallback(seed: &str) -> Self {
        PowAnswer { answer: fallback_answer(seed), iteration: None }
    }

    /// The answer text (ASCII base64; the fallback answer starts with
    /// [`FALLBACK_PREFIX`](super::FALLBACK_PREFIX)).
    pub fn as_str(&self) -> &str {
        &self.answer
    }

    /// The iteration `i` that solved the challenge (hashes spent = `i + 1`); `None` for the
    /// fallback answer.
    pub fn iteration(&self) -> Option<u32> {
        self.iteration
    }

    /// Whether this is the fallback answer (no iteration solved the challenge).
    pub fn is_fallback(&self) -> bool {
        self.iteration.is_none()
    }

    /// The requirements token sent to `sentinel/req`: `gAAAAAC` + answer (spec 3.3).
    pub fn requirements_token(&self) -> String {
        super::requirements_token(&self.answer)
    }

    /// The final proof for the header's `p`: `gAAAAAB` + answer + `~S` (spec 3.3).
    pub fn proof_token(&self) -> String {
        super::proof_token(&self.answer)
    }
}

/// What one [`Solver::step`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Step {
    /// The budget ran out before a solution; call `step` again.
    Pending,
    /// Solved. Every later `step` returns the same answer.
    Solved(PowAnswer),
    /// No iteration below the cap solved the challenge; this is the fallback answer
    /// ([`PowAnswer::fallback`]). Every later `step` returns it again.
    Exhausted(PowAnswer),
}

/// A budgeted proof-of-work search for one challenge and one config array.
///
/// Deterministic: the same challenge, config and rule give the same answer however the work
/// is sliced. Call [`step`](Solver::step) with a budget (iterations = hashes) until it returns
/// [`Step::Solved`] or [`Step::Exhausted`]; the shell runs it on a blocking thread, in slices
/// if it wants to bound CPU per slice or cancel. The solver owns all its buffers and is
/// `Send`.
///
/// ```
/// use sora2api_core::pow::{FingerprintPicks, PowChallenge, PowEnv, Solver, Step, PY_HEAD};
///
/// let env = PowEnv { now_unix_ms: 1_767_758_400_000, utc_offset_minutes: 0, tz_name: "UTC", user_agent: "UA" };
/// let config = PY_HEAD.build(&env, &FingerprintPicks::from_seed(7))?;
/// let mut solver = Solver::new(&PowChallenge::requirements("0.5"), &config);
/// let answer = loop {
///     match solver.step(1_000) {
///         Step::Pending => continue,
///         Step::Solved(answer) | Step::Exhausted(answer) => break answer,
///     }
/// };
/// assert!(answer.requirements_token().starts_with("gAAAAAC"));
/// # Ok::<(), sora2api_core::pow::PowError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Solver {
    seed: String,
    target: Box<[u8]>,
    rule: JRule,
    dynamic_start: u32,
    max_iterations: u32,
    /// SHA3-512 already fed with `seed ‖ base64(a[..aligned])`.
    prefix: Sha3_512,
    /// `base64(a[..aligned])`: the constant head of every answer.
    head_b64: Vec<u8>,
    /// `a[aligned..]`: the 0 to 2 bytes of `a` that share a base64 quad with `i`.
    head: Vec<u8>,
    b: Vec<u8>,
    d: Vec<u8>,
    /// `head ‖ decimal(i) ‖ b ‖ decimal(j) ‖ d` of the last iteration.
    json: Vec<u8>,
    /// `base64(json)`.
    b64: Vec<u8>,
    /// Digits of `i` in `json`; 0 before the first iteration.
    i_len: usize,
    /// `j` in `json`.
    j: u64,
    /// The next iteration to try.
    next: u32,
    done: Option<Step>,
}

// === impl Solver ===

impl Solver {
    /// A solver with PY HEAD's j rule ([`JRule::PyHead`]).
    pub fn new(challenge: &PowChallenge, config: &ConfigArray) -> Self {
        Solver::with_rule(challenge, config, JRule::PyHead)
    }

    /// A solver with the given j rule.
    pub fn with_rule(challenge: &PowChallenge, config: &ConfigArray, rule: JRule) -> Self {
        let slices = config.slices();
        let aligned = slices.a.len() / 3 * 3;
        let (a_const, head) = slices.a.split_at(aligned);
        let mut head_b64 = vec![0; encoded_len(a_const.len())];
        encode_into(a_const, &mut head_b64);
        let mut prefix = Sha3_512::new();
        prefix.update(challenge.seed().as_bytes());
        prefix.update(&head_b64);
        Solver {
            seed: challenge.seed().to_owned(),
            target: challenge.target().into(),
            rule,
            dynamic_start: config.dynamic_start,
            max_iterations: POW_MAX_ITERATION,
            prefix,
            head_b64,
            head: head.to_vec(),
            b: slices.b,
            d: slices.d,
            json: Vec::new(),
            b64: Vec::new(),
            i_len: 0,
            j: 0,
            next: 0,
            done: None,
        }
    }

    /// Replaces the iteration cap ([`POW_MAX_ITERATION`] by default). For tests and knobs.
    pub fn with_max_iterations(mut self, max_iterations: u32) -> Self {
        self.max_iterations = max_iterations;
        self
    }

    /// Iterations (hashes) spent so far.
    pub fn iterations(&self) -> u32 {
        self.next
    }

    /// Tries up to `budget` more iterations. A budget of 0 does no work.
    pub fn step(&mut self, budget: u32) -> Step {
        if let Some(done) = &self.done {
            return done.clone();
        }
        let end = self.next.saturating_add(budget).min(self.max_iterations);
        while self.next < end {
            let i = self.next;
            self.next = i + 1; // i < end <= u32::MAX
            if self.try_iteration(i) {
                return self.finish(Step::Solved(PowAnswer {
                    answer: self.head_b64.iter().chain(&self.b64).map(|&c| char::from(c)).collect(),
                    iteration: Some(i),
                }));
            }
        }
        if self.next >= self.max_iterations {
            return self.finish(Step::Exhausted(PowAnswer::fallback(&self.seed)));
        }
        Step::Pending
    }

    /// Runs to the end: solved, or the fallback answer after the cap. Up to 500 000 hashes
    /// (about 1.4 s of one core in a release build): call it off the async threads.
    pub fn solve(mut self) -> PowAnswer {
        loop {
            match self.step(u32::MAX) {
                Step::Pending => continue,
                Step::Solved(answer) | Step::Exhausted(answer) => return answer,
            }
        }
    }

    fn finish(&mut self, step: Step) -> Step {
        self.done = Some(step.clone());
        step
    }

    /// Writes iteration `i` into the buffers and reports whether its hash meets the target.
    #[inline]
    fn try_iteration(&mut self, i: u32) -> bool {
        let j = self.rule.j(self.dynamic_start, i);
        let mut i_buf = [0u8; 20];
        let digits = itoa(u64::from(i), &mut i_buf);
        let start = self.head.len();
        let end = start + digits.len();
        match self.json.get_mut(start..end) {
            Some(slot) if digits.len() == self.i_len && j == self.j => {
                slot.copy_from_slice(digits);
                // Re-encode the quads covering bytes start..end (the last group may be partial,
                // and then it is the padded end of the encoding).
                let from = start / 3 * 3;
                let to = end.div_ceil(3).saturating_mul(3).min(self.json.len());
                if let (Some(input), Some(output)) =
                    (self.json.get(from..to), self.b64.get_mut(from / 3 * 4..))
                {
                    encode_into(input, output);
                }
            }
            _ => self.rebuild(digits, j),
        }
        let mut hasher = self.prefix.clone();
        hasher.update(&self.b64);
        meets(&hasher.finalize(), &self.target)
    }

    #[cold]
    fn rebuild(&mut self, i_digits: &[u8], j: u64) {
        let mut j_buf = [0u8; 20];
        self.json.clear();
        self.json.extend_from_slice(&self.head);
        self.json.extend_from_slice(i_digits);
        self.json.extend_from_slice(&self.b);
        self.json.extend_from_slice(itoa(j, &mut j_buf));
        self.json.extend_from_slice(&self.d);
        self.b64.clear();
        self.b64.resize(encoded_len(self.json.len()), 0);
        encode_into(&self.json, &mut self.b64);
        self.i_len = i_digits.len();
        self.j = j;
    }
}

/// Solves a challenge to the end with PY HEAD's j rule; see [`Solver::solve`].
pub fn solve(challenge: &PowChallenge, config: &ConfigArray) -> PowAnswer {
    Solver::new(challenge, config).solve()
}

/// The decimal digits of `v`, written at the end of `buf`.
#[inline]
fn itoa(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut pos = buf.len();
    loop {
        pos -= 1; // 20 digits hold u64::MAX, so pos never underflows
        if let Some(slot) = buf.get_mut(pos) {
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || pos == 0 {
            break;
        }
    }
    buf.get(pos..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itoa_writes_decimal() {
        let mut buf = [0; 20];
        for v in [0, 7, 10, 99, 100, 499_999, u64::MAX] {
            assert_eq!(itoa(v, &mut buf), v.to_string().as_bytes());
        }
    }

    /// After every iteration the buffers hold exactly base64 of the iteration's JSON, across
    /// every digit-count change of `i` and every `j` change, for each alignment of slice `a`.
    #[test]
    fn buffers_track_the_json_across_digit_boundaries() {
        use crate::pow::{FingerprintPicks, PowEnv, PY_HEAD};
        use base64::Engine as _;
        let challenge = PowChallenge::new("0.5", "00000000000000000000").unwrap();
        for (tz, rule) in [("UTC", JRule::PyHead), ("CSTX", JRule::Go), ("GMT+8", JRule::PyHead)] {
            let env = PowEnv {
                now_unix_ms: 1_767_758_400_000,
                utc_offset_minutes: 60,
                tz_name: tz,
                user_agent: "UA",
            };
            let config = PY_HEAD.build(&env, &FingerprintPicks::from_seed(3)).unwrap();
            let mut solver = Solver::with_rule(&challenge, &config, rule);
            for start in [0u32, 95, 995, 9_995, 99_995, 499_990] {
                solver.next = start;
                for _ in 0..40 {
                    let i = solver.next;
                    if solver.step(1) != Step::Pending {
                        assert_eq!(i, POW_MAX_ITERATION - 1);
                        break;
                    }
                    let json = config.to_json(u64::from(i), rule.j(config.dynamic_start, i));
                    let mut answer = solver.head_b64.clone();
                    answer.extend_from_slice(&solver.b64);
                    let expected = base64::engine::general_purpose::STANDARD.encode(json);
                    assert_eq!(String::from_utf8(answer).unwrap(), expected, "{tz} i={i}");
                }
            }
        }
    }

    #[test]
    fn j_rules() {
        assert_eq!(JRule::PyHead.j(5, 0), 5);
        assert_eq!(JRule::PyHead.j(5, 1), 6);
        assert_eq!(JRule::PyHead.j(5, 30), 6);
        assert_eq!(JRule::PyHead.j(5, 31), 7);
        assert_eq!(JRule::Go.j(5, 13), 6);
    }
}
