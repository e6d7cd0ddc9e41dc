//! Deterministic mutations of seed inputs, for the replay in `cargo test`: the same
//! inputs on every run and machine, so a failure there is reproduced by running the
//! test again. libFuzzer (`scripts/fuzz.sh`) does the coverage-guided search; this
//! only shakes the seeds in the ways its mutators do most often.

/// A small, fixed-seed pseudo-random generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 if `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n as u64).unwrap_or(0)
    }
}

/// Bytes that parsers treat specially: bounds of integers, quotes, brackets,
/// separators of the targets' formats.
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xff\xff\xff\xff",
    b"\x7f\xff\xff\xff",
    b"\n",
    b"\n\n",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"-1",
    b"18446744073709551615",
    b"9223372036854775808",
    b"4294967296",
    b"1e400",
    b"\\u0000",
    b"\xc3\x28",
    b"262143-12-31",
];

/// A mutation of `input`; `other` is another seed to splice with.
pub fn mutate(input: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        let len = out.len();
        match rng.below(8) {
            // Flip a bit.
            0 if len > 0 => {
                let at = rng.below(len);
                out[at] ^= 1 << rng.below(8);
            }
            // Replace a byte.
            1 if len > 0 => {
                let at = rng.below(len);
                out[at] = u8::try_from(rng.below(256)).unwrap_or(0);
            }
            // Insert something interesting.
            2 => {
                let at = rng.below(len + 1);
                let token = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, token.iter().copied());
            }
            // Delete a range.
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                out.drain(at..end);
            }
            // Repeat a range.
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                let copy = out[at..end].to_vec();
                let to = rng.below(len + 1);
                out.splice(to..to, copy);
            }
            // Cut short.
            5 if len > 0 => out.truncate(rng.below(len)),
            // Splice with the other seed.
            6 if !other.is_empty() => {
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            // Change a digit, the commonest thing in these formats' numbers.
            _ => {
                let digits: Vec<usize> = (0..len).filter(|&i| out[i].is_ascii_digit()).collect();
                if !digits.is_empty() {
                    let at = digits[rng.below(digits.len())];
                    out[at] = b'0' + u8::try_from(rng.below(10)).unwrap_or(0);
                }
            }
        }
    }
    out
}
