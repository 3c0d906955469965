//! Command lines split into argv arrays.
//!
//! A server's command line or a tool's `args` list keeps a flag and its
//! value in two elements (`["--token", X]`, `["sshpass", "-p", X]`,
//! `["curl", "-u", "ada:X"]`), where no rule reading one string at a time
//! can pair them. An array of strings with a flag in it is read once more
//! as one command line (elements joined by a space); a secret span found
//! there is mapped back onto the elements it covers. An argv element is
//! one word whatever it holds, so a span that starts an element and stops
//! at a space inside it (`["--password", "correct horse"]`) covers the rest
//! of it, all but shell syntax.

use serde_json::Value;

use super::shell::literal_parts;
use super::text::secret_spans;

/// Per element of `items`, the spans (in the element's own text) that are
/// secrets only when the array is read as one command line. `None` when
/// the array is not a command line (not all strings, no flag, fewer than
/// two elements) or nothing was found.
pub(super) fn argv_spans(items: &[Value]) -> Option<Vec<Vec<(usize, usize)>>> {
    if items.len() < 2 || !items.iter().any(|v| v.as_str().is_some_and(|s| s.len() >= 2 && s.starts_with('-'))) {
        return None;
    }
    let mut line = String::new();
    let mut bounds = Vec::with_capacity(items.len());
    for v in items {
        let s = v.as_str()?;
        if !line.is_empty() {
            line.push(' ');
        }
        bounds.push((line.len(), line.len() + s.len()));
        line.push_str(s);
    }
    let spans = secret_spans(&line);
    if spans.is_empty() {
        return None;
    }
    let b = line.as_bytes();
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); items.len()];
    let mut found = false;
    for (s, e) in spans {
        for (i, &(a, z)) in bounds.iter().enumerate() {
            let (from, to) = (s.max(a), e.min(z));
            if from >= to {
                continue;
            }
            let mut pieces = vec![(from, to)];
            // A whole element that is a flag's value is one word: the rest
            // of it goes too, all but its shell syntax. A span inside an
            // element (`sh -c "TOKEN=x && …"`) keeps its own end.
            if from == a && to < z && b[to].is_ascii_whitespace() {
                pieces.clear();
                literal_parts(&line, from, z, true, &mut pieces);
            }
            let part = &mut out[i];
            for (f, t) in pieces {
                match part.last_mut() {
                    Some(last) if f - a <= last.1 => last.1 = last.1.max(t - a),
                    _ => part.push((f - a, t - a)),
                }
                found = true;
            }
        }
    }
    found.then_some(out)
}
