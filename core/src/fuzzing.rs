//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each function takes the raw fuzz input, must never panic, and asserts the invariants of
//! the code under test (a failed assertion is a crash the fuzzer reports).
