//! HMAC-SHA256 (RFC 2104) and PBKDF2-HMAC-SHA256 (RFC 8018), written over
//! the `sha2` crate the workspace already uses: two small functions did not
//! justify two more crates.

use sha2::block_api::compress256;
use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// HMAC-SHA256 with the key's inner and outer pads hashed once, so many
/// MACs under one key (PBKDF2's iterations) cost two compressions each.
#[derive(Clone)]
pub struct Hmac {
    inner: Sha256,
    outer: Sha256,
}

impl Hmac {
    pub fn new(key: &[u8]) -> Hmac {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut h = Sha256::new();
            h.update(k.map(|b| b ^ byte));
            h
        };
        Hmac { inner: pad(0x36), outer: pad(0x5c) }
    }

    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        for p in parts {
            inner.update(p);
        }
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

/// PBKDF2-HMAC-SHA256, first 32 bytes of output (one block).
///
/// The iterations MAC a 32-byte value each: one padded block for the
/// inner hash and one for the outer, run on SHA-256's compression function
/// directly from the key's precomputed pad states.
pub fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let prf = Hmac::new(password);
    let mut u = prf.mac(&[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    let key = if password.len() > BLOCK { Sha256::digest(password).to_vec() } else { password.to_vec() };
    let pad_state = |byte: u8| {
        let mut block = [byte; BLOCK];
        for (b, k) in block.iter_mut().zip(&key) {
            *b ^= k;
        }
        let mut state = IV;
        compress256(&mut state, &[block]);
        state
    };
    let (inner, outer) = (pad_state(0x36), pad_state(0x5c));
    // A 32-byte message after one 64-byte block: 96 bytes = 768 bits.
    let mut block = [0u8; BLOCK];
    block[32] = 0x80;
    block[56..].copy_from_slice(&768u64.to_be_bytes());
    for _ in 1..iterations {
        block[..32].copy_from_slice(&u);
        let mut s = inner;
        compress256(&mut s, &[block]);
        block[..32].copy_from_slice(&words(&s));
        let mut s = outer;
        compress256(&mut s, &[block]);
        u = words(&s);
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

/// SHA-256's initial state.
const IV: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

fn words(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, w) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = Hmac::new(b"Jefe").mac(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn hmac_hashes_a_long_key_first() {
        // RFC 4231 case 6: a 131-byte key.
        let mac = Hmac::new(&[0xaa; 131]).mac(&[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
        assert_eq!(hex(&mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        // RFC 7914 section 11: P="passwd", S="salt", c=1 (first 32 bytes).
        assert_eq!(
            hex(&pbkdf2(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn pbkdf2_iterates() {
        // Widely published vector: P="password", S="salt", c=4096.
        assert_eq!(
            hex(&pbkdf2(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert_eq!(unhex(&hex(&[0, 255, 16])), Some(vec![0, 255, 16]));
        assert_eq!(unhex("zz"), None);
    }
}
#[cfg(test)]
mod timing {
    #[test]
    #[ignore]
    fn time_one() {
        let t = std::time::Instant::now();
        super::pbkdf2(b"123456", b"saltsaltsaltsalt", super::super::ITERATIONS);
        eprintln!("pbkdf2 {} rounds: {:?}", super::super::ITERATIONS, t.elapsed());
    }
}
