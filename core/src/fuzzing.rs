//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each function takes the raw fuzz input, must never panic, and asserts the invariants of
//! the code under test (a failed assertion is a crash the fuzzer reports).

use crate::prompt::invariants;
use crate::translate::{self, Endpoint, Limits};
use crate::Error;

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

/// Token pool operation sequences: the bytes decode into adding tokens, requests, releases
/// with any outcome, time advances, polls, cancels and admin changes; concurrency limits are
/// never exceeded, every lease is released exactly once, every waiter gets at most one
/// answer, and all counters return to zero at the end.
pub fn pool_ops(data: &[u8]) {
    crate::pool::invariants::check_ops(data);
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

    /// The seed, every prefix of it, and 64 single-byte mutations per seed.
    fn mutations(seed: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![seed.to_vec()];
        out.extend((0..seed.len()).step_by(7).map(|n| seed[..n].to_vec()));
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed.len() as u64;
        for _ in 0..64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut m = seed.to_vec();
            if let Some(i) = (!m.is_empty()).then(|| (state as usize) % m.len()) {
                m[i] = (state >> 32) as u8;
            }
            out.push(m);
        }
        out
    }

    pub(super) fn run(target: &str, entry: fn(&[u8])) {
        for seed in seeds(target) {
            for input in mutations(&seed) {
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
    fn pool_ops() {
        run("pool", super::pool_ops);
    }
}
