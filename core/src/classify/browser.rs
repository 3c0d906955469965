//! Browser automation decided by its arguments: what is clicked, and what
//! is typed and submitted.
//!
//! A click-like tool (`browser_click`, `puppeteer_click`, an "act" tool
//! whose description clicks) is judged by the words of the element's label,
//! selector or the action's wording, the most consequential word winning:
//! "Confirm purchase" is TRANSFER_VALUE (purchase), not SUBMIT (confirm).
//! Typing with `submit: true` into a message box sends the message.

use serde_json::Value;

use super::lexicon as lx;
use super::words::word_slices;
use crate::class::Class;

/// Keys whose text names what is clicked.
const LABEL_KEYS: &[&str] =
    &["element", "selector", "action", "instruction", "text", "label", "name", "button", "title", "description"];
/// Most bytes of one label looked at.
const MAX_LABEL: usize = 400;

fn head(s: &str) -> &str {
    let mut end = s.len().min(MAX_LABEL);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The most consequential class the clicked element's words give, with
/// the word.
pub(crate) fn clicked(args: &Value) -> Option<(Class, String)> {
    let map = args.as_object()?;
    let mut best: Option<(Class, String)> = None;
    for (k, v) in map {
        let Some(s) = v.as_str() else { continue };
        if !LABEL_KEYS.iter().any(|l| l.eq_ignore_ascii_case(k)) {
            continue;
        }
        for w in word_slices(head(s)) {
            let w = w.to_ascii_lowercase();
            if let Some(c) = lx::ui_label_class(&w)
                && best.as_ref().is_none_or(|(b, _)| c > *b)
            {
                best = Some((c, w));
            }
        }
    }
    best
}

/// Typing with `submit: true` into a message, comment or reply box sends
/// it.
pub(crate) fn typed_and_sent(args: &Value) -> Option<String> {
    let map = args.as_object()?;
    if map.get("submit").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    map.iter()
        .filter(|(k, _)| ["element", "selector", "target", "label"].iter().any(|l| l.eq_ignore_ascii_case(k)))
        .filter_map(|(_, v)| v.as_str())
        .flat_map(|s| word_slices(head(s)))
        .map(str::to_ascii_lowercase)
        .find(|w| matches!(w.as_str(), "message" | "comment" | "reply" | "chat" | "post" | "tweet" | "compose"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_most_consequential_word_wins() {
        assert_eq!(clicked(&json!({"element": "Confirm purchase button"})).map(|c| c.0), Some(Class::TransferValue));
        assert_eq!(
            clicked(&json!({"selector": "button:has-text('Place order')"})).map(|c| c.0),
            Some(Class::TransferValue)
        );
        assert_eq!(clicked(&json!({"action": "click 'Send' to send the message"})).map(|c| c.0), Some(Class::Send));
        assert_eq!(clicked(&json!({"element": "Next page"})), None);
        assert_eq!(clicked(&json!({"target": "Pay now"})), None, "a ref is not a label");
    }

    #[test]
    fn typing_then_submitting_a_message_sends_it() {
        assert_eq!(
            typed_and_sent(&json!({"element": "Message box", "text": "hi", "submit": true})).as_deref(),
            Some("message")
        );
        assert_eq!(typed_and_sent(&json!({"element": "Message box", "text": "hi"})), None);
        assert_eq!(typed_and_sent(&json!({"element": "Search box", "text": "shoes", "submit": true})), None);
    }
}
