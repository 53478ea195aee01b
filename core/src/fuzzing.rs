//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each function takes the raw fuzz input, must never panic, and asserts the invariants of
//! the code under test (a failed assertion is a crash the fuzzer reports).

use crate::prompt::invariants;
use crate::translate::{self, Endpoint, Limits};
use crate::Error;

/// The seed tests' inputs from one committed seed: the seed, its prefixes every
/// `prefix_step` bytes, and `flips` single-byte mutations chosen by a xorshift seeded from the
/// seed's length (the same inputs on every run), so `cargo test` exercises an entry point
/// beyond its seeds without a fuzzer.
pub fn mutations(seed: &[u8], prefix_step: usize, flips: usize) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec()];
    out.extend(
        (0..seed.len())
            .step_by(prefix_step.max(1))
            .filter_map(|n| seed.get(..n))
            .map(<[u8]>::to_vec),
    );
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed.len() as u64;
    for _ in 0..flips {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut m = seed.to_vec();
        let len = m.len();
        if let Some(byte) = (len > 0).then(|| (state as usize) % len).and_then(|i| m.get_mut(i)) {
            *byte = (state >> 32) as u8;
        }
        out.push(m);
    }
    out
}

/// Small limits so the fuzzer reaches the size checks with small inputs.
fn fuzz_limits() -> Limits {
    Limits {
        max_image_bytes: 4096,
        max_video_bytes: 4096,
        max_prompt_bytes: 2048,
        max_url_bytes: 512,
    }
}

/// Every translation error is a client error with a complete envelope.
fn assert_client_error(err: &Error) {
    let status = err.status();
    assert!((400..500).contains(&status), "translation answered {status}: {err:?}");
    let envelope = err.envelope();
    assert!(!envelope.error.message.is_empty());
    assert!(serde_json::from_str::<serde_json::Value>(&envelope.to_string()).is_ok());
}

/// `/v1/chat/completions` decode + translate: never panics; errors are 4xx envelopes.
pub fn chat_translate(data: &[u8]) {
    if let Err(err) = translate::chat(data, &fuzz_limits()) {
        assert_client_error(&err);
    }
}

/// Dedicated endpoint decode + translate: the first byte picks the endpoint, the rest is the
/// body. Never panics; errors are 4xx envelopes.
pub fn dedicated_translate(data: &[u8]) {
    let Some((first, body)) = data.split_first() else { return };
    let endpoint = Endpoint::ALL[usize::from(*first) % Endpoint::ALL.len()];
    if let Err(err) = translate::dedicated(endpoint, body, &fuzz_limits()) {
        assert_client_error(&err);
    }
}

/// Prompt directives on any text (the input as lossy UTF-8): `{style}` extraction, remix and
/// generation id finding and stripping, and storyboard parsing never panic, and their results
/// hold their invariants (found ids are substrings of the input of the right form, stripped
/// text holds no id and is collapsed, a style-free prompt is unchanged, storyboard errors name
/// shot 1 to 101).
pub fn prompt_directives(data: &[u8]) {
    invariants::check_directives(&String::from_utf8_lossy(data));
}

/// Storyboard round trip: whatever [`crate::prompt::Storyboard::parse`] accepts renders with
/// `render_client` to a text that parses back to the same storyboard, and `render_upstream`
/// does not panic.
pub fn storyboard_roundtrip(data: &[u8]) {
    invariants::check_storyboard_roundtrip(&String::from_utf8_lossy(data));
}

use crate::pow::{self, PowChallenge, SentinelHeader, SentinelReply, Solver, Step};

/// Feeds arbitrary text to the proof-of-work verifier and the sentinel parsers.
///
/// The input is read as `seed \n difficulty \n proof-or-header` (lossy UTF-8). Nothing may
/// panic; the invariants are: a header that parses renders and parses back to itself, and
/// whatever the solver finds within 64 iterations for the input's challenge verifies.
pub fn pow_verify(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let seed = parts.next().unwrap_or_default();
    let difficulty = parts.next().unwrap_or_default();
    let rest = parts.next().unwrap_or_default();

    let _ = pow::verify_not_required(rest);
    let _ = SentinelReply::parse(data);
    if let Ok(header) = SentinelHeader::parse(rest.as_bytes()) {
        assert_eq!(SentinelHeader::parse(header.render().as_bytes()), Ok(header));
    }
    if let Ok(challenge) = PowChallenge::new(seed, difficulty) {
        let _ = pow::verify(&challenge, rest);
        let config = fuzz_config(rest);
        if let Step::Solved(answer) = Solver::new(&challenge, &config).step(64) {
            assert_eq!(pow::verify(&challenge, &answer.proof_token()), Ok(()));
        }
    }
}

/// A fixed config array whose user agent is the fuzz text (any UTF-8, any length).
fn fuzz_config(user_agent: &str) -> pow::ConfigArray {
    pow::ConfigArray {
        screen: 1920,
        date: pow::browser_date(1_767_758_400_000, 480, "CST"),
        heap_limit: 4_294_705_152,
        user_agent: user_agent.to_owned(),
        script: String::new(),
        dpl: None,
        language: "en-US".into(),
        languages: "en-US,en".into(),
        dynamic_start: 5,
        navigator_probe: "webdriver−false".into(),
        document_key: "location".into(),
        window_key: "window".into(),
        perf_now: 12_345.5,
        uuid: pow::uuid4([0; 16]),
        empty: String::new(),
        hardware_concurrency: 16,
        time_origin: 1_767_758_400_000.25,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pow_verify_survives_odd_inputs() {
        for input in [
            &b""[..],
            b"\n\n",
            b"0.5\n0fffff\ngAAAAABx~S",
            b"0.5\n\n{\"p\":\"a\",\"t\":\"\",\"c\":\"\",\"id\":\"\",\"flow\":\"\\u2212\"}",
            b"\xff\xfe\n0\n\x00",
            b"s\n00\n\"\\\n\r\t\xe2\x88\x92",
        ] {
            super::pow_verify(input);
        }
    }
}

/// Token pool operation sequences: the bytes decode into adding tokens, requests, releases
/// with any outcome, time advances, polls, cancels and admin changes; concurrency limits are
/// never exceeded, every lease is released exactly once, every waiter gets at most one
/// answer, and all counters return to zero at the end.
pub fn pool_ops(data: &[u8]) {
    crate::pool::invariants::check_ops(data);
}

/// The token store's records: [`crate::pool::TokenRecord::from_bytes`] never panics, and a
/// record it accepts is written back to bytes that read as the same record and are written
/// again identically (`parse(render(x)) == x`).
pub fn token_record(data: &[u8]) {
    use crate::pool::TokenRecord;
    if let Ok(rec) = TokenRecord::from_bytes(data) {
        let bytes = rec.to_bytes();
        assert_eq!(TokenRecord::from_bytes(&bytes).as_ref(), Ok(&rec));
        let again = TokenRecord::from_bytes(&bytes).map(|r| r.to_bytes());
        assert_eq!(again.as_deref(), Ok(&bytes[..]));
    }
}

/// The per-task state machine against the simulated backend under an operation sequence
/// (steps, cancels, crash-and-resume, time jumps) with scripted upstream faults: at most one
/// lease at a time, each released exactly once, nothing sent after the end, no slot leaked.
#[cfg(feature = "sim")]
pub fn machine_ops(data: &[u8]) {
    crate::machine::harness::check_ops(data);
}

/// Runs every entry point over its committed seeds (`fuzz/seeds/<target>/`) and over
/// deterministic mutations of them (truncations and byte flips), so `cargo test` catches a
/// broken invariant without a fuzzer.
#[cfg(test)]
mod seed_tests {
    use std::path::PathBuf;

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds").join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds in {}", dir.display());
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    pub(super) fn run(target: &str, entry: fn(&[u8])) {
        for seed in seeds(target) {
            // Every 7th prefix and 64 single-byte mutations per seed.
            for input in super::mutations(&seed, 7, 64) {
                entry(&input);
            }
        }
    }

    #[test]
    fn chat_translate() {
        run("chat_translate", super::chat_translate);
    }

    #[test]
    fn dedicated_translate() {
        run("dedicated_translate", super::dedicated_translate);
    }

    #[test]
    fn prompt_directives() {
        run("prompt_directives", super::prompt_directives);
    }

    #[test]
    fn storyboard_roundtrip() {
        run("storyboard_roundtrip", super::storyboard_roundtrip);
    }

    #[test]
    fn pow_verify() {
        run("pow_verify", super::pow_verify);
    }

    #[cfg(feature = "sim")]
    #[test]
    fn machine_ops() {
        run("machine", super::machine_ops);
    }

    #[test]
    fn pool_ops() {
        run("pool", super::pool_ops);
    }

    #[test]
    fn token_record() {
        run("token_record", super::token_record);
    }
}
