//! Spec 3.7's test vectors, bit-exact, and the solver's properties.

use base64::Engine as _;
use sha3::{Digest, Sha3_512};

use super::*;

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The fixed config of spec 3.7.
fn vector_config() -> ConfigArray {
    ConfigArray {
        screen: 1920,
        date: "Wed Jan 07 2026 12:00:00 GMT+0800 (CST)".into(),
        heap_limit: 4_294_705_152,
        user_agent: UA.into(),
        script: "https://sora-cdn.oaistatic.com/_next/static/chunks/main-app-5f0c58611778fb36.js"
            .into(),
        dpl: None,
        language: "en-US".into(),
        languages: "en-US,en".into(),
        dynamic_start: 5,
        navigator_probe: "webdriver−false".into(),
        document_key: "location".into(),
        window_key: "window".into(),
        perf_now: 12345.5,
        uuid: "00000000-0000-4000-8000-000000000000".into(),
        empty: String::new(),
        hardware_concurrency: 16,
        time_origin: 1_767_758_400_000.25,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// PY's loop, transcribed naively: serialise, encode, hash, compare.
/// Returns (answer, solving iteration), the iteration `None` for the fallback.
fn naive_solve(
    challenge: &PowChallenge,
    config: &ConfigArray,
    rule: JRule,
    cap: u32,
) -> (String, Option<u32>) {
    for i in 0..cap {
        let json = config.to_json(u64::from(i), rule.j(config.dynamic_start, i));
        let answer = b64(json.as_bytes());
        let hash = Sha3_512::new()
            .chain_update(challenge.seed().as_bytes())
            .chain_update(answer.as_bytes())
            .finalize();
        if challenge.accepts_hash(&hash) {
            return (answer, Some(i));
        }
    }
    (fallback_answer(challenge.seed()), None)
}

const VECTORS: [(&str, &str, JRule, u32, u64, &str); 6] = [
    ("0.5", "0fffff", JRule::PyHead, 12, 6, "0eb7501cb30ea24d0ef90909"),
    ("0.5", "0fffff", JRule::Go, 12, 6, "0eb7501cb30ea24d0ef90909"),
    ("0.42", "000fff", JRule::PyHead, 2557, 91, "000180d09e40d7bbb6c7728c"),
    ("0.42", "000fff", JRule::Go, 6673, 3336, "0007bbb6bcfe177ae7762d4e"),
    ("0.8796", "003a2b", JRule::PyHead, 1242, 47, "000d792c14d600c4ec7936eb"),
    ("0.8796", "003a2b", JRule::Go, 1353, 676, "0024ca0f0a788dc900d0aad0"),
];

#[test]
fn spec_3_7_vectors() {
    let config = vector_config();
    for (seed, difficulty, rule, i, j, prefix) in VECTORS {
        let challenge = PowChallenge::new(seed, difficulty).unwrap();
        let answer = Solver::with_rule(&challenge, &config, rule).solve();
        assert_eq!(answer.iteration(), Some(i), "{seed} {difficulty} {rule:?}");
        assert_eq!(rule.j(config.dynamic_start, i), j);
        assert_eq!(answer.as_str(), b64(config.to_json(u64::from(i), j).as_bytes()));
        assert!(hex(&challenge.hash(answer.as_str())).starts_with(prefix));
        assert_eq!(verify(&challenge, &answer.proof_token()), Ok(()));
    }
}

#[test]
fn spec_3_7_row_1_in_full() {
    let json = "[1920,\"Wed Jan 07 2026 12:00:00 GMT+0800 (CST)\",4294705152,12,\"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\",\"https://sora-cdn.oaistatic.com/_next/static/chunks/main-app-5f0c58611778fb36.js\",null,\"en-US\",\"en-US,en\",6,\"webdriver−false\",\"location\",\"window\",12345.5,\"00000000-0000-4000-8000-000000000000\",\"\",16,1767758400000.25]";
    let answer = "WzE5MjAsIldlZCBKYW4gMDcgMjAyNiAxMjowMDowMCBHTVQrMDgwMCAoQ1NUKSIsNDI5NDcwNTE1MiwxMiwiTW96aWxsYS81LjAgKFdpbmRvd3MgTlQgMTAuMDsgV2luNjQ7IHg2NCkgQXBwbGVXZWJLaXQvNTM3LjM2IChLSFRNTCwgbGlrZSBHZWNrbykgQ2hyb21lLzEzMS4wLjAuMCBTYWZhcmkvNTM3LjM2IiwiaHR0cHM6Ly9zb3JhLWNkbi5vYWlzdGF0aWMuY29tL19uZXh0L3N0YXRpYy9jaHVua3MvbWFpbi1hcHAtNWYwYzU4NjExNzc4ZmIzNi5qcyIsbnVsbCwiZW4tVVMiLCJlbi1VUyxlbiIsNiwid2ViZHJpdmVy4oiSZmFsc2UiLCJsb2NhdGlvbiIsIndpbmRvdyIsMTIzNDUuNSwiMDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAwIiwiIiwxNiwxNzY3NzU4NDAwMDAwLjI1XQ==";
    let hash = "0eb7501cb30ea24d0ef90909e721c5475ea098d05596950d93376b9ffb9aebd53e28eaff1a4063d5493ca8b49aefdf06fc8956e7bb440da49b492912a2aab082";
    let config = vector_config();
    assert_eq!(config.to_json(12, 6), json);
    let challenge = PowChallenge::new("0.5", "0fffff").unwrap();
    let solved = solve(&challenge, &config);
    assert_eq!(solved.as_str(), answer);
    assert_eq!(hex(&challenge.hash(answer)), hash);
    assert_eq!(solved.proof_token(), format!("gAAAAAB{answer}~S"));
    assert_eq!(solved.requirements_token(), format!("gAAAAAC{answer}"));

    let row3 = PowChallenge::new("0.42", "000fff").unwrap();
    assert_eq!(
        hex(&row3.hash(solve(&row3, &config).as_str())),
        "000180d09e40d7bbb6c7728cdc6ee2a997264f7aa92e8309545bb4086931c46b531126b0ba8587d677a6cd8eeda17b5ddf66ffc39517824c2c286ecaeca5c724"
    );
}

#[test]
fn spec_3_7_error_token() {
    let challenge = PowChallenge::new("0.5", "00000000000000000000").unwrap();
    let mut solver = Solver::new(&challenge, &vector_config()).with_max_iterations(50);
    let fallback = PowAnswer::fallback("0.5");
    assert_eq!(solver.step(49), Step::Pending);
    assert_eq!(solver.step(49), Step::Exhausted(fallback.clone()));
    assert_eq!(solver.iterations(), 50);
    assert_eq!(solver.step(1_000), Step::Exhausted(fallback.clone()), "idempotent");
    assert!(fallback.is_fallback());
    assert_eq!(
        [PROOF_PREFIX, fallback.as_str()].concat(),
        "gAAAAABwQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4DIjAuNSI="
    );
    assert_eq!(fallback.proof_token(), "gAAAAABwQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4DIjAuNSI=~S");
    assert_eq!(verify(&challenge, &fallback.proof_token()), Err(PowRejection::AboveTarget));
    assert_eq!(Solver::new(&challenge, &vector_config()).step(0), Step::Pending);
}

// === properties ===

/// Configs whose first slice covers every length mod 3, and user agents of several lengths.
fn configs() -> impl Iterator<Item = (u64, ConfigArray)> {
    let zones = ["UTC", "CST", "Coordinated Universal Time", "X", "EST5", "GMT+8"];
    (0..36u64).map(move |k| {
        let ua = UA.get(..40 + (k as usize * 7) % 60).unwrap_or(UA);
        let env = PowEnv {
            now_unix_ms: 1_767_758_400_000 + k * 1_234_567,
            utc_offset_minutes: (k as i32 % 5) * 60 - 120,
            tz_name: zones[k as usize % zones.len()],
            user_agent: ua,
        };
        (k, PY_HEAD.build(&env, &FingerprintPicks::from_seed(k)).unwrap())
    })
}

#[test]
fn first_slice_alignments_are_all_covered() {
    let mut seen = [false; 3];
    for (_, config) in configs() {
        let a = config.to_json(0, 0).find(",0,").unwrap() + 1;
        seen[a % 3] = true;
    }
    assert_eq!(seen, [true; 3]);
}

#[test]
fn solver_equals_naive_transcription() {
    for (k, config) in configs() {
        let seed = requirements_seed(k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let difficulty = ["0fffff", "00ffff", "01", "003fff"][k as usize % 4];
        let challenge = PowChallenge::new(seed, difficulty).unwrap();
        for rule in [JRule::PyHead, JRule::Go] {
            let fast = Solver::with_rule(&challenge, &config, rule).solve();
            let naive = naive_solve(&challenge, &config, rule, POW_MAX_ITERATION);
            assert_eq!((fast.as_str().to_owned(), fast.iteration()), naive, "{k}");
        }
    }
}

#[test]
fn solve_then_verify_and_tampering_fails() {
    for (k, config) in configs() {
        let challenge = PowChallenge::new(requirements_seed(k << 40), "000fff").unwrap();
        let answer = solve(&challenge, &config);
        let i = answer.iteration().unwrap();
        assert_eq!(verify(&challenge, &answer.proof_token()), Ok(()));
        assert_eq!(verify_not_required(&answer.proof_token()), Ok(()));
        assert_eq!(verify_not_required(&with_proof_suffix(&answer.requirements_token())), Ok(()));

        // Another nonce: well-formed, but its hash misses the target.
        let other = b64(config.to_json(u64::from(i) + 1, 0).as_bytes());
        assert_eq!(verify(&challenge, &proof_token(&other)), Err(PowRejection::AboveTarget));
        // One character changed.
        let mut chars: Vec<char> = answer.as_str().chars().collect();
        let at = (k as usize * 13) % (chars.len() - 4);
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(verify(&challenge, &proof_token(&tampered)).is_err());
        // Wrong seed, wrong shape.
        let elsewhere = PowChallenge::new("0.1", "000fff").unwrap();
        assert_eq!(verify(&elsewhere, &answer.proof_token()), Err(PowRejection::AboveTarget));
        let p = answer.proof_token();
        assert_eq!(verify(&challenge, &p[..p.len() - 2]), Err(PowRejection::MissingSuffix));
        assert_eq!(
            verify(&challenge, &with_proof_suffix(&answer.requirements_token())),
            Err(PowRejection::WrongPrefix)
        );
    }
}

#[test]
fn budget_one_steps_reach_the_same_answer_as_one_big_step() {
    for (k, config) in configs().take(12) {
        let challenge = PowChallenge::new(requirements_seed(k << 50), "00ffff").unwrap();
        let whole = match Solver::new(&challenge, &config).step(POW_MAX_ITERATION) {
            Step::Solved(answer) => answer,
            other => panic!("{other:?}"),
        };
        let mut solver = Solver::new(&challenge, &config);
        let mut steps = 0u32;
        let sliced = loop {
            steps += 1;
            match solver.step(1) {
                Step::Pending => assert_eq!(solver.iterations(), steps),
                Step::Solved(answer) => break answer,
                Step::Exhausted(_) => panic!("exhausted"),
            }
        };
        assert_eq!(sliced, whole);
        assert_eq!(Some(steps - 1), whole.iteration());
        assert_eq!(solver.step(7), Step::Solved(whole.clone()), "idempotent after solving");
        // Uneven slices too.
        let mut solver = Solver::new(&challenge, &config);
        let mut budget = 0;
        let uneven = loop {
            budget = budget % 17 + 3;
            if let Step::Solved(answer) = solver.step(budget) {
                break answer;
            }
        };
        assert_eq!(uneven, whole);
    }
}

#[test]
fn solver_can_move_to_a_blocking_thread() {
    fn movable<T: Send + Sync + 'static>() {}
    movable::<Solver>();
    movable::<PowAnswer>();
    movable::<Step>();
    movable::<PowChallenge>();
}

#[test]
fn deterministic_for_the_same_inputs() {
    let env = PowEnv {
        now_unix_ms: 1_767_758_400_000,
        utc_offset_minutes: 0,
        tz_name: "UTC",
        user_agent: UA,
    };
    let run = || {
        let config = PY_HEAD.build(&env, &FingerprintPicks::from_seed(99)).unwrap();
        solve(&PowChallenge::requirements(requirements_seed(42)), &config)
    };
    assert_eq!(run(), run());
    let config = PY_HEAD.build(&env, &FingerprintPicks::from_seed(99)).unwrap();
    let solver = Solver::new(&PowChallenge::requirements("0.5"), &config);
    assert_eq!(solver.clone().solve(), solver.solve());
}

#[test]
fn verifier_rejects_malformed_answers() {
    let anything = PowChallenge::new("s", "").unwrap();
    assert_eq!(verify(&anything, "gAAAAAB~S"), Err(PowRejection::MalformedAnswer));
    assert_eq!(verify(&anything, "gAAAAAB!!!!~S"), Err(PowRejection::MalformedAnswer));
    let short = b64(b"[1,2,3,4]");
    assert_eq!(verify(&anything, &proof_token(&short)), Err(PowRejection::MalformedAnswer));
    let float_nonce = vector_config().to_json(0, 0).replacen(",0,", ",0.5,", 1);
    assert_eq!(
        verify(&anything, &proof_token(&b64(float_nonce.as_bytes()))),
        Err(PowRejection::MalformedAnswer)
    );
    assert_eq!(verify_not_required("gAAAAAD~S"), Err(PowRejection::WrongPrefix));
    assert_eq!(verify(&anything, ""), Err(PowRejection::WrongPrefix));
}
