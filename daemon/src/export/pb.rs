//! A small protocol-buffers writer: what the OTLP messages need and no
//! more (varints, fixed-width numbers, length-delimited fields). Fields are
//! written in the order they are called; proto3 defaults (empty strings,
//! zero numbers) are written only when the caller asks.

/// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// An encoded message being built.
#[derive(Default, Debug)]
pub struct Pb {
    buf: Vec<u8>,
}

impl Pb {
    pub fn new() -> Pb {
        Pb::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// `uint64`/`uint32`/enum.
    pub fn uint(&mut self, field: u32, v: u64) {
        self.key(field, VARINT);
        self.varint(v);
    }

    /// `int64` (negative numbers take ten bytes, as protobuf says).
    pub fn int64(&mut self, field: u32, v: i64) {
        self.uint(field, v as u64);
    }

    pub fn bool(&mut self, field: u32, v: bool) {
        self.uint(field, u64::from(v));
    }

    pub fn fixed64(&mut self, field: u32, v: u64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    #[cfg(test)]
    pub fn fixed32(&mut self, field: u32, v: u32) {
        self.key(field, FIXED32);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    #[cfg(test)]
    pub fn double(&mut self, field: u32, v: f64) {
        self.fixed64(field, v.to_bits());
    }

    pub fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    pub fn string(&mut self, field: u32, v: &str) {
        self.bytes(field, v.as_bytes());
    }

    /// An embedded message, built by `f`.
    pub fn message(&mut self, field: u32, f: impl FnOnce(&mut Pb)) {
        let mut inner = Pb::new();
        f(&mut inner);
        self.bytes(field, &inner.buf);
    }
}

/// Reads the varint at the start of `b`: the value and its length.
pub fn read_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The first varint field numbered `want` at the top level of message `b`
/// (other fields skipped); None when absent or the message is malformed.
pub fn find_varint(mut b: &[u8], want: u32) -> Option<u64> {
    while !b.is_empty() {
        let (key, n) = read_varint(b)?;
        b = &b[n..];
        let (field, wire) = ((key >> 3) as u32, (key & 7) as u8);
        match wire {
            VARINT => {
                let (v, n) = read_varint(b)?;
                if field == want {
                    return Some(v);
                }
                b = &b[n..];
            }
            FIXED64 => b = b.get(8..)?,
            FIXED32 => b = b.get(4..)?,
            LEN => {
                let (len, n) = read_varint(b)?;
                let end = n.checked_add(usize::try_from(len).ok()?)?;
                b = b.get(end..)?;
            }
            _ => return None,
        }
    }
    None
}

/// The first length-delimited field numbered `want` at the top level of `b`.
pub fn find_bytes(mut b: &[u8], want: u32) -> Option<&[u8]> {
    while !b.is_empty() {
        let (key, n) = read_varint(b)?;
        b = &b[n..];
        let (field, wire) = ((key >> 3) as u32, (key & 7) as u8);
        match wire {
            VARINT => b = b.get(read_varint(b)?.1..)?,
            FIXED64 => b = b.get(8..)?,
            FIXED32 => b = b.get(4..)?,
            LEN => {
                let (len, n) = read_varint(b)?;
                let end = n.checked_add(usize::try_from(len).ok()?)?;
                if field == want {
                    return b.get(n..end);
                }
                b = b.get(end..)?;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn varints_are_little_endian_groups_of_seven_bits() {
        let enc = |v: u64| {
            let mut p = Pb::new();
            p.uint(1, v);
            hex(&p.into_bytes())
        };
        assert_eq!(enc(0), "0800");
        assert_eq!(enc(1), "0801");
        assert_eq!(enc(127), "087f");
        assert_eq!(enc(150), "089601"); // the protobuf documentation's example
        assert_eq!(enc(300), "08ac02");
        assert_eq!(enc(u64::MAX), "08ffffffffffffffffff01");
        for v in [0, 1, 127, 128, 150, 300, 1 << 35, u64::MAX] {
            let mut p = Pb::new();
            p.uint(1, v);
            assert_eq!(read_varint(&p.into_bytes()[1..]).map(|(v, _)| v), Some(v));
        }
    }

    #[test]
    fn known_byte_vectors() {
        let mut p = Pb::new();
        p.string(2, "testing"); // the documentation's example
        assert_eq!(hex(&p.into_bytes()), "120774657374696e67");
        let mut p = Pb::new();
        p.int64(3, -1);
        assert_eq!(hex(&p.into_bytes()), "18ffffffffffffffffff01");
        let mut p = Pb::new();
        p.fixed64(1, 1_700_000_000_123_000_000);
        assert_eq!(hex(&p.into_bytes()), "09c0d47e3dfe9c9717");
        let mut p = Pb::new();
        p.fixed32(8, 1);
        p.bool(2, true);
        p.double(4, 1.5);
        assert_eq!(hex(&p.into_bytes()), "4501000000100121000000000000f83f");
        let mut p = Pb::new();
        p.message(5, |m| m.string(1, "deny"));
        assert_eq!(hex(&p.into_bytes()), "2a060a0464656e79");
        // A field key beyond 15 takes two bytes.
        let mut p = Pb::new();
        p.string(16, "");
        assert_eq!(hex(&p.into_bytes()), "820100");
    }

    #[test]
    fn fields_are_found_and_malformed_input_is_none() {
        let mut p = Pb::new();
        p.string(2, "x");
        p.fixed64(3, 9);
        p.uint(1, 7);
        p.message(4, |m| m.uint(1, 3));
        let b = p.into_bytes();
        assert_eq!(find_varint(&b, 1), Some(7));
        assert_eq!(find_varint(&b, 9), None);
        assert_eq!(find_bytes(&b, 4), Some(&[0x08, 0x03][..]));
        assert_eq!(find_varint(&[0x0a, 0x05, 0x01], 1), None); // length past the end
        assert_eq!(find_varint(&[0x08], 1), None);
        assert_eq!(find_varint(&[0x0b], 1), None); // wire type 3
        assert_eq!(read_varint(&[0xff; 11]), None);
    }

    #[test]
    fn any_answer_a_collector_sends_is_read_without_panicking() {
        // The reader parses what the collector answers: bytes an attacker
        // may choose. Every prefix of a valid answer and pseudo-random
        // bytes end in a value or None.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut bytes = vec![0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, b'x'];
        for n in 0..2_000 {
            for cut in 0..=bytes.len() {
                let _ = find_varint(&bytes[..cut], 1);
                let _ = find_bytes(&bytes[..cut], 1).map(|b| find_varint(b, 1));
            }
            bytes.clear();
            for _ in 0..(n % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
        }
    }
}
