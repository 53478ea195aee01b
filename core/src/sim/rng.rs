//! Deterministic randomness and the upstream identifier shapes (spec 1.4).

/// Crockford base32, lower case (what `task_` and `gen_` ids use).
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// xorshift64* seeded from [`SimConfig::seed`](super::SimConfig::seed): every id, seed and
/// name the simulator hands out comes from here, so a run is reproducible.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        // splitmix the seed so that small seeds (0, 1, 2) still give unrelated streams, and
        // never leave xorshift at its fixed point 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`0` when `n == 0`).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    pub(super) fn bytes16(&mut self) -> [u8; 16] {
        ((u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())).to_be_bytes()
    }

    /// `n` lower-case hex digits.
    pub(super) fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(n);
        let mut word = 0u64;
        for i in 0..n {
            if i % 16 == 0 {
                word = self.next_u64();
            }
            out.push(char::from(HEX[(word & 0xf) as usize]));
            word >>= 4;
        }
        out
    }

    /// `n` characters of the URL-safe base64 alphabet (opaque token text).
    pub(super) fn token_text(&mut self, n: usize) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..n).map(|_| char::from(ALPHABET[(self.next_u64() % 64) as usize])).collect()
    }

    /// A ULID-like id: `prefix` + 10 characters of the millisecond time + 16 random ones, all
    /// lower-case Crockford base32 (`task_01km4f6bzff73vjq6hgpk3d0pw`).
    pub(super) fn ulid(&mut self, prefix: &str, now_ms: u64) -> String {
        let mut out = String::with_capacity(prefix.len() + 26);
        out.push_str(prefix);
        for i in (0..10).rev() {
            out.push(char::from(CROCKFORD[((now_ms >> (5 * i)) & 31) as usize]));
        }
        let mut word = self.next_u64();
        for i in 0..16 {
            if i == 12 {
                word = self.next_u64();
            }
            out.push(char::from(CROCKFORD[(word & 31) as usize]));
            word >>= 5;
        }
        out
    }

    /// A lower-case hyphenated uuid4.
    pub(super) fn uuid4(&mut self) -> String {
        crate::pow::uuid4(self.bytes16())
    }
}

/// Whether `id` is `prefix` + exactly 26 Crockford base32 characters (either case).
#[cfg(test)]
pub(super) fn is_ulid(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 26 && rest.bytes().all(|b| CROCKFORD.contains(&b.to_ascii_lowercase()))
    })
}

/// Whether `id` is `s_` + 32 lower-case hex digits (a post / share id).
pub(super) fn is_post_id(id: &str) -> bool {
    id.strip_prefix("s_").is_some_and(|rest| {
        rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_shapes() {
        let mut rng = Rng::new(1);
        let task = rng.ulid("task_", 1_767_225_600_000);
        assert!(is_ulid(&task, "task_"), "{task}");
        assert_eq!(task.len(), 31);
        let post = format!("s_{}", rng.hex(32));
        assert!(is_post_id(&post), "{post}");
        assert!(!is_post_id("s_123"));
        let uuid = rng.uuid4();
        assert_eq!(uuid.len(), 36);
        assert_ne!(Rng::new(0).next_u64(), Rng::new(1).next_u64());
    }
}
