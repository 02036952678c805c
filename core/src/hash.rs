//! Small, stable, non-cryptographic hashes: the same in every process and release (cursors, ETags, seeded
//! splits and generators). Never for secrets; pseudonyms use a keyed HMAC.

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64's output function: a fixed, well-mixed permutation of `u64`. `splitmix64(seed + k·γ)` for
/// k = 1, 2, … is the SplitMix64 sequence ([`GOLDEN_GAMMA`]).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64's increment.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
