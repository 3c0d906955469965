//! HTTP-request tools (`playwright_post`, `jira_put`, `http_request
//! {method, url}`) decided by their arguments: the method and the words of
//! the endpoint's host and path.
//!
//! `GET`, `HEAD` and `OPTIONS` read. Any other method is judged by the
//! endpoint's words, the most consequential first: money (`/refunds`,
//! `/payments`, `/invoices/…/pay`) is TRANSFER_VALUE; publishing
//! (`/deployments`, `/pulls/17/merge`, `/releases`) is SUBMIT; messages
//! (`/comments`, `/messages`, a `hooks.` host) are SEND; a `POST /search`
//! reads; anything else writes.

use serde_json::{Map, Value};

use crate::class::Class;

/// Keys that hold the endpoint.
const ENDPOINT_KEYS: &[&str] = &["url", "uri", "path", "endpoint", "route", "href"];
/// Most bytes of an endpoint looked at.
const MAX_ENDPOINT: usize = 2048;

/// The HTTP method a name word stands for.
pub(crate) fn method_word(w: &str) -> Option<&'static str> {
    Some(match w {
        "get" => "GET",
        "head" => "HEAD",
        "options" => "OPTIONS",
        "post" => "POST",
        "put" => "PUT",
        "patch" => "PATCH",
        "delete" => "DELETE",
        _ => return None,
    })
}

/// Name words of a tool that sends requests it is told to.
pub(crate) fn is_request_word(w: &str) -> bool {
    matches!(w, "request" | "requests" | "http" | "https" | "fetch" | "curl" | "api" | "rest" | "call")
}

/// The method under a `method` argument, upper-case.
pub(crate) fn method_arg(args: &Value) -> Option<&'static str> {
    let m = args.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case("method"))?.1.as_str()?;
    method_word(&m.trim().to_ascii_lowercase())
}

fn endpoint(map: &Map<String, Value>) -> Option<(&str, &str)> {
    map.iter().find_map(|(k, v)| {
        let s = v.as_str()?;
        ENDPOINT_KEYS.iter().any(|e| e.eq_ignore_ascii_case(k)).then_some((k.as_str(), s))
    })
}

/// The class of a request with `method` to the endpoint in `args`, and
/// why. `None` when the arguments name no endpoint.
pub(crate) fn judge(method: &str, args: &Value) -> Option<(Class, String)> {
    let map = args.as_object()?;
    let (key, url) = endpoint(map)?;
    let mut end = url.len().min(MAX_ENDPOINT);
    while !url.is_char_boundary(end) {
        end -= 1;
    }
    let url = &url[..end];
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let rest = without_query.split_once("://").map_or(without_query, |(_, r)| r);
    if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return Some((Class::Read, format!("{method} request to `{key}`: READ")));
    }
    // `/v1/%72efunds` is `/v1/refunds` to the server.
    let rest = percent_decoded(rest);
    let words = || rest.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty());
    let find = |pred: fn(&str) -> bool| words().map(str::to_ascii_lowercase).find(|w| pred(w));
    let (class, word) = if let Some(w) = find(is_money_word) {
        (Class::TransferValue, w)
    } else if let Some(w) = find(is_publish_word) {
        (Class::Submit, w)
    } else if let Some(w) = find(is_message_word) {
        (Class::Send, w)
    } else if method == "POST"
        && let Some(w) = find(is_read_word)
    {
        (Class::Read, w)
    } else {
        return Some((Class::Write, format!("{method} request to `{key}`: WRITE")));
    };
    Some((class, format!("{method} request, endpoint word '{word}': {class}")))
}

/// `%hh` escapes decoded (twice, for `%2572`), others kept as they are.
fn percent_decoded(s: &str) -> String {
    fn once(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if b[i] == b'%'
                && i + 2 < b.len()
                && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
            {
                out.push((h * 16 + l) as u8);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    once(&once(s))
}

fn is_money_word(w: &str) -> bool {
    matches!(
        w,
        "pay"
            | "payment"
            | "payments"
            | "payout"
            | "payouts"
            | "refund"
            | "refunds"
            | "transfer"
            | "transfers"
            | "charge"
            | "charges"
            | "checkout"
            | "checkouts"
            | "order"
            | "orders"
            | "subscription"
            | "subscriptions"
            | "invoice"
            | "invoices"
            | "capture"
            | "purchase"
            | "purchases"
            | "withdrawal"
            | "withdrawals"
            | "trade"
            | "trades"
            | "positions"
    )
}

fn is_publish_word(w: &str) -> bool {
    matches!(
        w,
        "deployment"
            | "deployments"
            | "deploy"
            | "deploys"
            | "merge"
            | "merges"
            | "release"
            | "releases"
            | "publish"
            | "rollback"
            | "rollout"
            | "promote"
    )
}

fn is_message_word(w: &str) -> bool {
    matches!(
        w,
        "message"
            | "messages"
            | "comment"
            | "comments"
            | "email"
            | "emails"
            | "mail"
            | "sms"
            | "chat"
            | "reply"
            | "replies"
            | "notify"
            | "notification"
            | "notifications"
            | "hooks"
            | "webhook"
            | "webhooks"
            | "tweet"
            | "tweets"
    )
}

fn is_read_word(w: &str) -> bool {
    matches!(w, "search" | "query" | "lookup" | "find" | "list" | "batchget")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn class(method: &str, url: &str) -> Class {
        judge(method, &json!({ "url": url })).expect("an endpoint").0
    }

    #[test]
    fn method_and_endpoint_decide() {
        assert_eq!(class("GET", "https://api.stripe.com/v1/refunds"), Class::Read);
        assert_eq!(class("POST", "https://api.stripe.com/v1/refunds"), Class::TransferValue);
        assert_eq!(class("POST", "https://api.example.com/v1/invoices/in_1/pay"), Class::TransferValue);
        assert_eq!(class("DELETE", "https://api.example.com/v1/subscriptions/sub_1"), Class::TransferValue);
        assert_eq!(class("POST", "https://api.vercel.com/v13/deployments"), Class::Submit);
        assert_eq!(class("PUT", "https://api.github.com/repos/a/b/pulls/1/merge"), Class::Submit);
        assert_eq!(class("POST", "https://api.github.com/repos/a/b/issues/1/comments"), Class::Send);
        assert_eq!(class("POST", "https://hooks.slack.com/services/T/B/X"), Class::Send);
        assert_eq!(class("POST", "/rest/api/3/search"), Class::Read);
        assert_eq!(class("PATCH", "/rest/api/3/search"), Class::Write);
        assert_eq!(class("POST", "/v1/todos?next=payments"), Class::Write);
        assert_eq!(judge("POST", &json!({ "body": "x" })), None);
        assert_eq!(class("POST", "https://bank.example/v1/%72efunds"), Class::TransferValue);
        assert_eq!(class("POST", "https://bank.example/v1/%2572efunds"), Class::TransferValue);
        assert_eq!(class("POST", "https://bank.example/v1/x%2"), Class::Write);
    }

    #[test]
    fn method_argument() {
        assert_eq!(method_arg(&json!({ "method": "post" })), Some("POST"));
        assert_eq!(method_arg(&json!({ "Method": " GET " })), Some("GET"));
        assert_eq!(method_arg(&json!({ "method": "BREW" })), None);
    }
}
