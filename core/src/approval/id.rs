//! Approval ids: short, human-typable, unique, and not guessable from the
//! outside without being random inside.
//!
//! An id is six characters of Crockford's base-32 alphabet (`0-9 a-z`
//! without `i l o u`): 30 bits. They come from a counter passed through a
//! salted permutation of those 30 bits (add, xor, odd multiplications and
//! right xor-shifts, each a bijection modulo 2^30), so the first 2^30
//! counter values give 2^30 different ids, in an order that depends on the
//! salt. The daemon chooses the salt (at random, once) and the counter and
//! salt are part of the persisted state.
//!
//! Typed ids are read leniently, as Crockford intends: case does not matter,
//! `i`/`l` read as `1`, `o` as `0`, spaces and dashes are ignored.

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BITS: u32 = 30;
const MASK: u64 = (1 << BITS) - 1;
/// Length of an id in characters.
pub const LEN: usize = 6;

/// The id for counter value `seq` under `salt`.
pub(super) fn make(seq: u64, salt: u64) -> String {
    let mut x = seq.wrapping_add(salt) & MASK;
    x ^= (salt >> BITS) & MASK;
    // Each step is a bijection on 30 bits: x < 2^30 and the factors are odd
    // and below 2^32, so the products never overflow 64 bits.
    x = (x * 0x2c1b_3c6d) & MASK;
    x ^= x >> 15;
    x = (x * 0x297a_2d39) & MASK;
    x ^= x >> 13;
    x = (x * 0x1b87_3593) & MASK;
    x ^= x >> 16;
    let mut out = String::with_capacity(LEN);
    for i in (0..LEN).rev() {
        out.push(char::from(ALPHABET[((x >> (5 * i)) & 31) as usize]));
    }
    out
}

/// An id as a person typed it, in the form approval ids are made.
pub fn normalize(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_from_consecutive_counters_are_distinct_and_well_formed() {
        let mut seen = HashSet::new();
        for seq in 0..200_000 {
            let id = make(seq, 0x9e37_79b9_7f4a_7c15);
            assert_eq!(id.len(), LEN);
            assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id}");
            assert!(seen.insert(id), "collision at {seq}");
        }
    }

    #[test]
    fn salt_changes_the_sequence() {
        assert_ne!(make(0, 1), make(0, 2));
        assert_ne!(make(1, 7), make(2, 7));
    }

    #[test]
    fn typed_ids_are_read_leniently() {
        assert_eq!(normalize(" AB-1O l "), "ab101");
        let id = make(42, 42);
        assert_eq!(normalize(&id.to_uppercase()), id);
    }
}
