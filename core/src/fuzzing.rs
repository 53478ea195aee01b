//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each function takes the raw fuzz input, must never panic, and asserts the invariants of
//! the code under test (a failed assertion is a crash the fuzzer reports).

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
