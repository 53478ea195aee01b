//! Standard base64 with padding into caller-owned buffers, for the solver's hot loop
//! (infallible, allocation-free; cross-checked against the `base64` crate in the tests).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Length of the padded encoding of `n` bytes.
#[inline]
pub(crate) fn encoded_len(n: usize) -> usize {
    n.div_ceil(3).saturating_mul(4)
}

/// Encodes `input` into the start of `out` (padded). Writes `encoded_len(input.len())` bytes;
/// if `out` is shorter, the encoding is cut off at its end.
#[inline]
pub(crate) fn encode_into(input: &[u8], out: &mut [u8]) {
    let chunks = input.chunks_exact(3);
    let rest = chunks.remainder();
    let mut quads = out.chunks_exact_mut(4);
    for (triple, quad) in chunks.zip(&mut quads) {
        if let ([a, b, c], [w, x, y, z]) = (triple, quad) {
            let n = u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c);
            *w = sym(n >> 18);
            *x = sym(n >> 12);
            *y = sym(n >> 6);
            *z = sym(n);
        }
    }
    let tail = match rest {
        [a] => {
            let n = u32::from(*a) << 16;
            [sym(n >> 18), sym(n >> 12), b'=', b'=']
        }
        [a, b] => {
            let n = u32::from(*a) << 16 | u32::from(*b) << 8;
            [sym(n >> 18), sym(n >> 12), sym(n >> 6), b'=']
        }
        _ => return,
    };
    if let Some(quad) = quads.next() {
        quad.copy_from_slice(&tail);
    }
}

#[inline(always)]
fn sym(six: u32) -> u8 {
    ALPHABET[(six & 63) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn matches_the_base64_crate() {
        let mut x: u32 = 1;
        for len in 0..200usize {
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let mut out = vec![0; encoded_len(len)];
            encode_into(&input, &mut out);
            let expected = base64::engine::general_purpose::STANDARD.encode(&input);
            assert_eq!(out, expected.as_bytes(), "len {len}");
        }
    }

    #[test]
    fn short_output_is_cut_not_a_panic() {
        let mut out = [0u8; 5];
        encode_into(b"abcdefgh", &mut out);
        assert_eq!(&out[..4], b"YWJj");
    }
}
