//! A proof-of-work challenge: the seed and the difficulty (spec 3.3 step 1).

use std::fmt;

use sha3::{Digest, Sha3_512};

/// The difficulty of the requirements token sent to `sentinel/req` (spec 3.3).
pub const REQUIREMENTS_DIFFICULTY: &str = "0fffff";

/// A challenge: find an answer whose `SHA3-512(seed ‖ answer)` starts with bytes that are
/// `<=` the difficulty bytes (compared lexicographically as unsigned bytes).
///
/// ```
/// use sora2api_core::pow::PowChallenge;
///
/// let c = PowChallenge::new("0.4215", "06a7c5")?;
/// assert_eq!(c.target(), &[0x06, 0xa7, 0xc5]);
/// assert!(PowChallenge::new("0.4215", "6a7c5").is_err(), "odd length");
/// # Ok::<(), sora2api_core::pow::PowError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PowChallenge {
    seed: String,
    difficulty: String,
    target: Vec<u8>,
}

// === impl PowChallenge ===

impl PowChallenge {
    /// A challenge from `sentinel/req`'s `proofofwork.seed` and `.difficulty`.
    ///
    /// The difficulty is hex of even length, either case (Python's `bytes.fromhex` without
    /// the whitespace it tolerates). An empty difficulty is accepted and is met by any hash,
    /// as in PY's comparison of two empty byte strings.
    pub fn new(seed: impl Into<String>, difficulty: impl Into<String>) -> Result<Self, PowError> {
        let difficulty = difficulty.into();
        let target = hex_decode(&difficulty).ok_or(PowError::InvalidDifficulty)?;
        Ok(PowChallenge { seed: seed.into(), difficulty, target })
    }

    /// The challenge of the requirements token: this seed at [`REQUIREMENTS_DIFFICULTY`].
    /// The seed is PY's `str(random.random())`; see [`requirements_seed`](super::requirements_seed).
    pub fn requirements(seed: impl Into<String>) -> Self {
        PowChallenge {
            seed: seed.into(),
            difficulty: REQUIREMENTS_DIFFICULTY.to_owned(),
            target: vec![0x0f, 0xff, 0xff],
        }
    }

    /// The seed.
    pub fn seed(&self) -> &str {
        &self.seed
    }

    /// The difficulty as given (hex).
    pub fn difficulty(&self) -> &str {
        &self.difficulty
    }

    /// The difficulty bytes the hash prefix is compared with.
    pub fn target(&self) -> &[u8] {
        &self.target
    }

    /// `SHA3-512(utf8(seed) ‖ answer)`.
    pub fn hash(&self, answer: &str) -> [u8; 64] {
        let mut hasher = Sha3_512::new();
        hasher.update(self.seed.as_bytes());
        hasher.update(answer.as_bytes());
        hasher.finalize().into()
    }

    /// Whether `hash[..n] <= target`, `n` being the target's length (PY:
    /// `hash_value[:diff_len] <= target_diff`, with Python's byte-string ordering).
    pub fn accepts_hash(&self, hash: &[u8]) -> bool {
        meets(hash, &self.target)
    }

    /// The expected number of iterations to solve: `256^n / (int(target) + 1)`, about 16 for
    /// `0fffff` and 4096 for `000fff`.
    pub fn expected_iterations(&self) -> f64 {
        let mut space = 1.0f64;
        let mut value = 0.0f64;
        for &b in &self.target {
            space *= 256.0;
            value = value * 256.0 + f64::from(b);
        }
        space / (value + 1.0)
    }
}

/// `hash[..n] <= target` as Python compares byte strings (a proper prefix sorts first).
#[inline]
pub(crate) fn meets(hash: &[u8], target: &[u8]) -> bool {
    hash.get(..target.len()).unwrap_or(hash) <= target
}

/// Decodes even-length hex (either case); `None` on anything else.
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(*pair.first()?)? << 4 | nibble(*pair.get(1)?)?))
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why a challenge or a fingerprint could not be built, or a `sentinel/req` reply not read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PowError {
    /// The difficulty is not hex of even length.
    InvalidDifficulty,
    /// A fingerprint list the builder must pick from is empty.
    EmptyTable {
        /// The [`FingerprintTable`](super::FingerprintTable) field.
        field: &'static str,
    },
    /// A fingerprint range is empty, reversed or not finite.
    EmptyRange {
        /// The [`FingerprintTable`](super::FingerprintTable) field.
        field: &'static str,
    },
    /// The `sentinel/req` reply is not a JSON object.
    MalformedReply,
}

// === impl PowError ===

impl fmt::Display for PowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowError::InvalidDifficulty => {
                f.write_str("proof-of-work difficulty is not even-length hex")
            }
            PowError::EmptyTable { field } => write!(f, "fingerprint table `{field}` is empty"),
            PowError::EmptyRange { field } => write!(f, "fingerprint range `{field}` is empty"),
            PowError::MalformedReply => f.write_str("sentinel reply is not a JSON object"),
        }
    }
}

impl std::error::Error for PowError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_hex() {
        assert_eq!(PowChallenge::new("s", "0FfF").unwrap().target(), &[0x0f, 0xff]);
        assert_eq!(PowChallenge::new("s", "").unwrap().target(), &[] as &[u8]);
        for bad in ["0", "0g", "0fff f", "+1", "é0"] {
            assert_eq!(PowChallenge::new("s", bad), Err(PowError::InvalidDifficulty), "{bad}");
        }
        assert_eq!(PowChallenge::requirements("s"), PowChallenge::new("s", "0fffff").unwrap());
    }

    #[test]
    fn comparison_is_python_byte_order() {
        assert!(meets(&[0x0f, 0xff, 0xff, 0xff], &[0x0f, 0xff, 0xff]));
        assert!(meets(&[0x0f, 0xff, 0xfe], &[0x0f, 0xff, 0xff]));
        assert!(!meets(&[0x10, 0x00, 0x00], &[0x0f, 0xff, 0xff]));
        assert!(meets(&[1, 2], &[]));
        // A target longer than the hash: the hash is a prefix, so it sorts first.
        assert!(meets(&[1, 2], &[1, 2, 0]));
        assert!(!meets(&[1, 3], &[1, 2, 0]));
    }

    #[test]
    fn expected_iterations() {
        assert_eq!(PowChallenge::requirements("s").expected_iterations(), 16.0);
        let c = PowChallenge::new("s", "000fff").unwrap();
        assert_eq!(c.expected_iterations(), 4096.0);
    }
}
