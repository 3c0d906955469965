//! Secrets hidden by an encoding: base64 (of a private key, a credentials
//! JSON, a `.dockerconfigjson`, `user:password`) and percent-encoding
//! (`password%3D…` in a URL or form body). The encoded text is decoded and
//! scanned by the same rules; a base64 run whose text holds a secret is
//! masked whole, and a secret found in percent-decoded text masks the
//! encoded bytes it came from.
//!
//! Decoding nests at most [`MAX_DECODE`] levels (base64 inside base64, as a
//! `.dockerconfigjson` holds `auth`), so no input can make the scan recurse
//! without end.

/// Shortest base64 run worth decoding: long enough to hide a credential.
const MIN_RUN: usize = 24;

/// Whether `c` belongs to a base64 alphabet (standard or URL-safe).
fn base64_byte(c: u8) -> bool {
    BASE64_BYTES[usize::from(c)]
}

const BASE64_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'_' | b'-');
        c += 1;
    }
    t
};

/// The base64 runs of `text` of at least [`MIN_RUN`] characters, with their
/// `=` padding, as byte ranges. One pass, no regex: long runs are common in
/// clean text (file contents, images, paths), so they are kept out of the
/// rules' set, which would send such text down the slow path.
///
/// The pass reads each window of [`MIN_RUN`] bytes from its end: at the
/// last byte that is not base64 no run before it can be long enough, so
/// the next window starts after it. Prose, whose words are shorter than a
/// run, is read a few bytes per window.
pub(super) fn base64_runs(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let b = text.as_bytes();
    // No run of MIN_RUN or more that is not reported yet starts before `i`.
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + MIN_RUN <= b.len() {
            // The last byte of [i, i + MIN_RUN) that is not base64: no
            // run that starts at or before it is long enough.
            let window = &b[i..i + MIN_RUN];
            if let Some(k) = window.iter().rposition(|&c| !base64_byte(c)) {
                i += k + 1;
                continue;
            }
            let start = i;
            let mut end = i + MIN_RUN;
            while end < b.len() && base64_byte(b[end]) {
                end += 1;
            }
            let pad = b[end..].iter().take(2).take_while(|&&c| c == b'=').count();
            i = end + pad;
            return Some((start, i));
        }
        None
    })
}

/// Levels of decoding a secret can hide under.
pub(super) const MAX_DECODE: usize = 2;

/// Shortest decoded text worth scanning.
const MIN_DECODED: usize = 12;

/// How much of a run is decoded first to see whether it is text at all: an
/// image or compressed data fails within the first few bytes.
const PROBE: usize = 64;

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    }))
}

/// Decodes base64, standard or URL-safe alphabet, padding optional; `None`
/// when `s` is not base64 or mixes the two alphabets.
pub(super) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let b = s.as_bytes();
    if b.iter().any(|c| matches!(c, b'+' | b'/')) && b.iter().any(|c| matches!(c, b'-' | b'_')) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in b {
        acc = (acc << 6) | sextet(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Whether decoded bytes are text: UTF-8 without control characters other
/// than white space.
fn is_text(bytes: &[u8]) -> bool {
    let ok = |c: char| !c.is_control() || matches!(c, '\n' | '\r' | '\t');
    match std::str::from_utf8(bytes) {
        Ok(s) => s.chars().all(ok),
        // The probe may cut a character in two.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).is_ok_and(|s| s.chars().all(ok))
        }
        Err(_) => false,
    }
}

/// The text a base64 run decodes to, when it is text long enough to scan.
pub(super) fn base64_text(run: &str) -> Option<String> {
    // A whole number of 4-character groups keeps the probe aligned.
    let probe = &run[..run.len().min(PROBE)];
    if !is_text(&decode_base64(probe)?) {
        return None;
    }
    let bytes = decode_base64(run)?;
    if bytes.len() < MIN_DECODED {
        return None;
    }
    String::from_utf8(bytes).ok().filter(|s| is_text(s.as_bytes()))
}

/// Whether `text` has a `%XX` escape of an ASCII character.
pub(super) fn has_percent_escape(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(p) = text[from..].find('%') {
        if escape_at(b, from + p).is_some() {
            return true;
        }
        from += p + 1;
    }
    false
}

/// The ASCII byte `%XX` at `i` stands for.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    let (h, l) = (hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?);
    let v = (h * 16 + l) as u8;
    (v < 0x80).then_some(v)
}

/// `text` with its ASCII `%XX` escapes decoded, and for each byte of the
/// result (plus one past the end) the offset in `text` it came from.
pub(super) fn percent_decode(text: &str) -> (String, Vec<usize>) {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut from = Vec::with_capacity(b.len() + 1);
    let mut i = 0;
    while i < b.len() {
        from.push(i);
        if b[i] == b'%'
            && let Some(v) = escape_at(b, i)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    from.push(b.len());
    // Only ASCII escapes were replaced, by ASCII bytes: still UTF-8.
    (String::from_utf8(out).unwrap_or_default(), from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte read, the way the runs were found before the jump.
    fn runs_byte_by_byte(text: &str) -> Vec<(usize, usize)> {
        let b = text.as_bytes();
        let (mut out, mut i) = (Vec::new(), 0);
        while i < b.len() {
            if !base64_byte(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && base64_byte(b[i]) {
                i += 1;
            }
            if i - start >= MIN_RUN {
                i += b[i..].iter().take(2).take_while(|&&c| c == b'=').count();
                out.push((start, i));
            }
        }
        out
    }

    #[test]
    fn the_jumping_pass_finds_every_run_a_byte_by_byte_pass_finds() {
        // Texts of runs of every length around MIN_RUN, separated by one
        // or more other bytes and padding, in many orders.
        let pieces = ["A", "b9", "=", "==", "===", " ", "\n", ".", "-_+/", "é"];
        let mut seed = 0x9e37_79b9_u64;
        for _ in 0..20_000 {
            let mut t = String::new();
            while t.len() < 120 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let p = pieces[(seed % pieces.len() as u64) as usize];
                let n = if p == "A" { (seed >> 8) as usize % (MIN_RUN + 3) } else { 1 };
                for _ in 0..n {
                    t.push_str(p);
                }
            }
            assert_eq!(base64_runs(&t).collect::<Vec<_>>(), runs_byte_by_byte(&t), "{t:?}");
        }
        for n in [0, 1, MIN_RUN - 1, MIN_RUN, MIN_RUN + 1, 3 * MIN_RUN] {
            let t = "A".repeat(n);
            assert_eq!(base64_runs(&t).collect::<Vec<_>>(), runs_byte_by_byte(&t), "{n}");
        }
    }

    #[test]
    fn base64_both_alphabets_and_text_only() {
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(decode_base64("-_-_").unwrap(), decode_base64("+/+/").unwrap());
        assert!(decode_base64("+/-_").is_none());
        assert_eq!(base64_text("aGVsbG8gd29ybGQgaGVsbG8=").as_deref(), Some("hello world hello"));
        assert!(base64_text("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk").is_none());
    }

    #[test]
    fn percent_decoding_keeps_offsets() {
        let (d, from) = percent_decode("a%3Db%e9");
        assert_eq!(d, "a=b%e9");
        assert_eq!(from[1], 1);
        assert_eq!(from[2], 4);
        assert_eq!(*from.last().unwrap(), 8);
        assert!(has_percent_escape("x%2Fy") && !has_percent_escape("100%") && !has_percent_escape("%e9"));
    }

    #[test]
    fn base64_runs_are_found_whole_with_their_padding() {
        let text = "a aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ= b/short c-d_e+f/ghijklmnopqrstuvwxyz01";
        let runs: Vec<&str> = base64_runs(text).map(|(s, e)| &text[s..e]).collect();
        assert_eq!(runs, ["aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=", "c-d_e+f/ghijklmnopqrstuvwxyz01"]);
    }
}
