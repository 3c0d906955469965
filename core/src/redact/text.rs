//! Secrets inside free text: spans found by the rules, then masked.

use std::borrow::Cow;

use super::encoded;
use super::keys::is_secret_key;
use super::mask::MASK;
use super::rules::{Check, RULES, Rule, VALUE, passes};
use super::shell::{QuoteScan, has_syntax, literal_parts};

/// Spans of the values under secret keys in free text. Each key is looked
/// for after the previous key's separator, or after its secret when it had
/// one, so the work stays linear.
fn key_value_spans(rule: &Rule, text: &str, spans: &mut Vec<(usize, usize)>) {
    let mut pos = 0;
    while pos < text.len() {
        // `find_at` needs only the DFA; the key is the match without its
        // separator: `KEY` + optional `\"` or `'` + `:`/`=` with spaces.
        let Some(m) = rule.re.find_at(text, pos) else { break };
        // The separator is never empty, so this always moves forward.
        pos = m.end();
        let key = m.as_str().trim_end();
        let key = key.strip_suffix([':', '=']).unwrap_or(key).trim_end();
        let key = key.strip_suffix(['"', '\'']).unwrap_or(key);
        let key = key.strip_suffix('\\').unwrap_or(key);
        if !is_secret_key(key.trim_start_matches('-')) {
            continue;
        }
        let Some(value) = VALUE.captures(&text[m.end()..]) else { continue };
        let Some(secret) = value.iter().skip(1).flatten().last() else { continue };
        if !secret.is_empty() && !secret.as_str().contains(MASK) {
            spans.push((m.end() + secret.start(), m.end() + secret.end()));
        }
        // Past the secret only: a value read to an opening quote that never
        // closes reaches over later lines whose keys are secrets' too.
        pos = pos.max(m.end() + secret.end());
    }
}

/// Spans of the values of name/value pairs whose name is a secret's.
fn named_value_spans(rule: &Rule, text: &str, spans: &mut Vec<(usize, usize)>) {
    for caps in rule.re.captures_iter(text) {
        let (Some(m), Some(name)) = (caps.get(0), rule.key_group.and_then(|g| caps.get(g))) else { continue };
        if !passes(Check::NamedValue, Some(name.as_str()), "") {
            continue;
        }
        let Some(value) = VALUE.captures(&text[m.end()..]) else { continue };
        let Some(secret) = value.iter().skip(1).flatten().last() else { continue };
        if !secret.is_empty() && !secret.as_str().contains(MASK) {
            spans.push((m.end() + secret.start(), m.end() + secret.end()));
        }
    }
}

/// Byte ranges of `text` that are secrets, sorted and merged.
pub(super) fn secret_spans(text: &str) -> Vec<(usize, usize)> {
    spans_at(text, 0)
}

/// Whether `text` may hold a secret: the cheap first test.
fn may_hold_secret(text: &str) -> bool {
    RULES.set.is_match(text) || encoded::has_percent_escape(text) || encoded::base64_runs(text).next().is_some()
}

/// [`secret_spans`] inside `depth` levels of decoding.
fn spans_at(text: &str, depth: usize) -> Vec<(usize, usize)> {
    let mut spans = if RULES.set.is_match(text) { rule_spans(text) } else { Vec::new() };
    if depth < encoded::MAX_DECODE {
        // A base64 run is masked whole when the text it decodes to has a
        // secret; an image or compressed data fails at its first bytes.
        for (s, e) in encoded::base64_runs(text) {
            if encoded::base64_text(&text[s..e]).is_some_and(|t| !spans_at(&t, depth + 1).is_empty()) {
                spans.push((s, e));
            }
        }
    }
    if depth < encoded::MAX_DECODE && encoded::has_percent_escape(text) {
        let (decoded, from) = encoded::percent_decode(text);
        for (s, e) in spans_at(&decoded, depth + 1) {
            spans.push((from[s], from[e]));
        }
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Spans found by the rules in `text` itself.
fn rule_spans(text: &str) -> Vec<(usize, usize)> {
    let rules = &*RULES;
    // Spans of whole known formats (a PEM block, a provider key) and spans
    // of values read after a key, flag or scheme: only the latter can hold
    // shell syntax instead of a secret.
    let mut spans = Vec::new();
    let mut values = Vec::new();
    for i in rules.set.matches(text).iter() {
        let rule = rules.rule(i);
        if rule.check == Check::KeyValue {
            key_value_spans(rule, text, &mut values);
            continue;
        }
        if rule.check == Check::NamedValue {
            named_value_spans(rule, text, &mut values);
            continue;
        }
        let out = if rule.secret_groups.is_empty() { &mut spans } else { &mut values };
        for caps in rule.re.captures_iter(text) {
            let key = rule.key_group.and_then(|g| caps.get(g)).map(|m| m.as_str());
            let secret = if rule.secret_groups.is_empty() {
                caps.get(0)
            } else {
                rule.secret_groups.iter().find_map(|&g| caps.get(g))
            };
            let Some(secret) = secret else { continue };
            // A value holding a mask was redacted already: what surrounds the
            // mask was judged harmless when it was made. (Masking can join
            // lines or words, which must not make a rule match anew.)
            if secret.is_empty() || secret.as_str().contains(MASK) {
                continue;
            }
            if passes(rule.check, key, secret.as_str()) {
                let end = if rule.check == Check::KeyBlock {
                    whole_lines(text, secret.start(), secret.end())
                } else {
                    secret.end()
                };
                out.push((secret.start(), end));
            }
        }
    }
    values.sort_unstable();
    spans.extend(literal_only(text, values));
    spans
}

/// The end of a key block `start..end` cut back to its last whole line: a
/// last line followed by anything but a line break (real or escaped), a
/// quote or the end of the text is not part of the key.
fn whole_lines(text: &str, start: usize, end: usize) -> usize {
    let b = text.as_bytes();
    if end == b.len() || matches!(b[end], b'\n' | b'\r' | b'\\' | b'"' | b'\'') {
        return end;
    }
    let block = &text[start..end];
    let line_start = block.rfind(['\n', '\r']).max(block.rfind("\\n").map(|i| i + 1));
    match line_start {
        // Back to the break before the last line, blanks and escapes too.
        Some(i) => start + block[..i].trim_end_matches([' ', '\t', '\r', '\n', '\\']).len(),
        None => end,
    }
}

/// `spans` narrowed to their literal parts (see [`super::shell`]): shell
/// metasyntax inside a span stays visible. `spans` is sorted.
fn literal_only(text: &str, spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    if !spans.iter().any(|&(s, e)| has_syntax(&text[s..e])) {
        return spans;
    }
    let mut quotes = QuoteScan::new();
    let mut out = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        if has_syntax(&text[s..e]) {
            let quoted = quotes.quoted(text, s, e);
            literal_parts(text, s, e, quoted, &mut out);
        } else {
            out.push((s, e));
        }
    }
    out
}

/// Redacts secrets inside free text: returns the text itself, borrowed, when
/// there is nothing to redact.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let spans = secret_spans(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    // A mask can expose what its neighbour hid: in `…AGE-SECRET-KEY-1…HRKU-…`
    // the second key only starts at a word boundary once the first is
    // masked, and one rule's match can overlap (and so hide) another's, as
    // in a URL whose password holds a second URL. So a text that had
    // secrets is redacted again until nothing changes, at most MAX_PASSES
    // times: redacting a redacted text changes nothing.
    let mut out = apply_spans(text, &spans);
    for _ in 0..MAX_PASSES {
        if !may_hold_secret(&out) {
            break;
        }
        let spans = secret_spans(&out);
        if spans.is_empty() {
            break;
        }
        out = apply_spans(&out, &spans);
    }
    Cow::Owned(out)
}

/// Extra redaction passes over a text that had secrets; see [`redact_text`].
const MAX_PASSES: usize = 4;

/// `text` with each span replaced by [`MASK`].
pub(super) fn apply_spans(text: &str, spans: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(s, e) in spans {
        out.push_str(&text[at..s]);
        out.push_str(MASK);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

/// True when [`redact_text`] would change `text`.
pub fn text_has_secret(text: &str) -> bool {
    !secret_spans(text).is_empty()
}
