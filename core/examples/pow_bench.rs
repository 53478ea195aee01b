//! Proof-of-work throughput on one core: solves per second, solver hashes per second, and the
//! raw SHA3-512 rate over inputs of the solver's hashed length.
//!
//! `cargo run --release -p sora2api-core --example pow_bench`
#![expect(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
#![expect(clippy::print_stdout, reason = "a benchmark prints its results")]

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use sha3::{Digest, Sha3_512};
use sora2api_core::pow::{
    requirements_seed, FingerprintPicks, PowChallenge, PowEnv, Solver, Step, PY_HEAD,
};

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn main() -> Result<(), Box<dyn Error>> {
    let env = PowEnv {
        now_unix_ms: 1_767_758_400_000,
        utc_offset_minutes: 480,
        tz_name: "CST",
        user_agent: UA,
    };
    let config = PY_HEAD.build(&env, &FingerprintPicks::from_seed(2026))?;
    println!("pow_bench: one thread, PY_HEAD fingerprint, desktop Chrome 131 UA");

    let mut input_len = 0usize;
    for (difficulty, solves) in [("0fffff", 20_000u64), ("000fff", 400)] {
        let mut hashes = 0u64;
        let mut lens = 0usize;
        let started = Instant::now();
        for k in 0..solves {
            let seed = requirements_seed(k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let challenge = PowChallenge::new(seed, difficulty)?;
            let answer = Solver::new(&challenge, &config).solve();
            hashes += u64::from(answer.iteration().ok_or("fallback")?) + 1;
            lens += challenge.seed().len() + answer.as_str().len();
        }
        let secs = started.elapsed().as_secs_f64();
        input_len = lens / usize::try_from(solves)?;
        println!(
            "difficulty {difficulty}: {solves} solves in {secs:.3} s = {:.0} solves/s, \
             mean {:.1} hashes/solve (expected {:.0}), {:.0} hashes/s, hashed input ~{input_len} B",
            solves as f64 / secs,
            hashes as f64 / solves as f64,
            PowChallenge::new("", difficulty)?.expected_iterations(),
            hashes as f64 / secs,
        );
    }

    // A long run that never solves: the solver's steady hashing rate.
    let impossible = PowChallenge::new(requirements_seed(7), "0000000000000000")?;
    let mut solver = Solver::new(&impossible, &config);
    let started = Instant::now();
    while solver.step(10_000) == Step::Pending {}
    let secs = started.elapsed().as_secs_f64();
    let solver_rate = f64::from(solver.iterations()) / secs;
    println!(
        "solver: {} iterations (the cap, then the fallback) in {secs:.3} s = {solver_rate:.0} hashes/s",
        solver.iterations()
    );

    // Raw SHA3-512 over inputs of the same length, one fresh hasher per input.
    let mut input = vec![b'A'; input_len];
    let mut count = 0u64;
    let mut acc = 0u8;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        for _ in 0..10_000 {
            if let Some(b) = input.get_mut((count % 64) as usize) {
                *b = b.wrapping_add(1);
            }
            let digest = Sha3_512::digest(black_box(&input));
            acc ^= digest.first().copied().unwrap_or(0);
            count += 1;
        }
    }
    black_box(acc);
    let raw_rate = count as f64 / started.elapsed().as_secs_f64();
    println!("raw SHA3-512 over {input_len}-byte inputs: {raw_rate:.0} hashes/s");
    println!("solver / raw = {:.1} %", 100.0 * solver_rate / raw_rate);
    Ok(())
}
