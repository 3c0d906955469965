//! The argument readers for generic tools, run after the argument walk:
//! HTTP-request tools ([`http`](super::http)), browser clicks and typing
//! ([`browser`](super::browser)), kubectl-style tools
//! ([`kube`](super::kube)), SQL under keys the walk does not know
//! ([`statements`](super::statements)), and a review's `event`.
//!
//! What the words said decides how far the arguments may go: a tool whose
//! name has no verb, or only a generic one (an HTTP method, `run`), is
//! decided by its arguments, also downwards (`POST /search` reads,
//! `kubectl_generic {command: "get"}` reads); a tool whose name has a verb
//! of its own is only raised by them.

use serde_json::Value;

use super::args::ArgFacts;
use super::name::WordVerdict;
use super::sql::SqlVerdict;
use super::{browser, http, kube, statements};
use crate::class::Class;

/// What the words of the name and description said, as the readers need it.
pub(crate) struct Said {
    /// The main verb, when there is one.
    verb: Option<String>,
    /// The arguments may lower the class (no verb in the name, or a generic one).
    lowers: bool,
    /// An HTTP method the tool sends (from its name's last verb).
    method: Option<&'static str>,
    /// The name says it makes requests (`http_request`, `api_call`).
    requests: bool,
    /// A Kubernetes tool.
    kube: bool,
    /// A review tool (`create_pull_request_review`).
    review: bool,
}

impl Said {
    pub fn new(v: Option<&WordVerdict>, name: &[String], desc: &[String]) -> Said {
        let named = v.is_some_and(|v| v.named);
        let generic = v.is_some_and(|v| v.generic);
        // `playwright_post`, `jira_put`: the method is the name's last word.
        let method = v
            .filter(|v| v.named && name.last() == Some(&v.verb))
            .and_then(|v| http::method_word(&v.verb))
            .filter(|_| name.len() <= 3);
        let kube_name = name.iter().any(|w| kube::is_kube_word(w));
        Said {
            verb: v.map(|v| v.verb.clone()),
            lowers: !named || generic || method.is_some(),
            method,
            requests: name.iter().any(|w| http::is_request_word(w)),
            kube: kube_name || (!named && desc.iter().any(|w| kube::is_kube_word(w))),
            review: name.iter().any(|w| w == "review"),
        }
    }
}

/// A cluster verb found in the arguments.
pub(crate) struct KubeVerb {
    pub class: Class,
    pub key: String,
    why: String,
}

/// What the readers found.
#[derive(Default)]
pub(crate) struct Read {
    /// SQL under a key the walk does not know.
    pub sql: Option<(String, SqlVerdict)>,
    /// The request's class and why.
    request: Option<(Class, String)>,
    pub kube: Option<KubeVerb>,
    /// The clicked element's most consequential word.
    pub click: Option<(Class, String)>,
    /// Typed into a message box and submitted.
    sent: Option<String>,
    /// A review that approves.
    approves: bool,
    lowers: bool,
}

impl Read {
    /// Something in the arguments said what the call does.
    pub fn decided(&self) -> bool {
        self.sql.is_some()
            || self.request.is_some()
            || self.kube.is_some()
            || self.click.is_some()
            || self.sent.is_some()
            || self.approves
    }

    /// The request's class: replaces a generic tool's class, else raises.
    pub fn apply_request(&self, class: Class, reasons: &mut Vec<String>) -> Class {
        self.apply(self.request.as_ref().map(|(c, w)| (*c, w)), class, reasons)
    }

    /// The cluster verb's class, likewise.
    pub fn apply_kube(&self, class: Class, reasons: &mut Vec<String>) -> Class {
        self.apply(self.kube.as_ref().map(|k| (k.class, &k.why)), class, reasons)
    }

    fn apply(&self, found: Option<(Class, &String)>, class: Class, reasons: &mut Vec<String>) -> Class {
        let Some((c, why)) = found else { return class };
        let to = if self.lowers { c } else { class.max(c) };
        reasons.push(why.clone());
        to
    }

    /// Typing that sends, and a review that approves: raise only.
    pub fn apply_rest(&self, mut class: Class, reasons: &mut Vec<String>) -> Class {
        if let Some(w) = &self.sent
            && class < Class::Send
        {
            reasons.push(format!("typed into a '{w}' box and submitted: SEND"));
            class = Class::Send;
        }
        if self.approves && class < Class::Submit {
            reasons.push("argument `event` approves: SUBMIT".to_owned());
            class = Class::Submit;
        }
        class
    }
}

/// Runs the readers that apply to this tool.
pub(crate) fn read(args: &Value, said: &Said, ui: bool) -> Read {
    let mut r = Read { lowers: said.lowers, sql: statements::find(args), ..Read::default() };
    let method = said.method.or_else(|| if said.requests { http::method_arg(args) } else { None });
    if let Some(m) = method {
        r.request = http::judge(m, args);
    }
    if said.kube {
        r.kube = kube::judge(args).map(|(class, key, why)| KubeVerb { class, key, why });
    }
    if ui {
        r.click = browser::clicked(args);
    }
    if matches!(said.verb.as_deref(), Some("type" | "fill" | "press")) {
        r.sent = browser::typed_and_sent(args);
    }
    if said.review {
        r.approves =
            args.get("event").and_then(Value::as_str).is_some_and(|e| e.trim().eq_ignore_ascii_case("approve"));
    }
    r
}

/// Keys whose addresses are recipients or targets of the call.
fn is_recipient_key(k: &str) -> bool {
    super::words::word_slices(k).any(|w| {
        [
            "to",
            "cc",
            "bcc",
            "recipient",
            "recipients",
            "email",
            "emails",
            "address",
            "addresses",
            "attendee",
            "attendees",
            "invitees",
            "members",
            "participants",
            "url",
            "urls",
            "uri",
            "webhook",
            "endpoint",
            "host",
            "destination",
            "target",
            "phone",
            "number",
            "channel",
            "chat",
            "user",
            "users",
        ]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(w))
    })
}

/// Whether some address (`@` or `://`) sits under a recipient or target key,
/// at any depth (bounded): a SEND whose addresses are only mentioned in its
/// text has no recipient Latch can see.
pub(crate) fn has_visible_recipient(args: &Value) -> bool {
    fn walk(v: &Value, under: bool, depth: usize, budget: &mut usize) -> bool {
        if depth > 16 || *budget == 0 {
            return false;
        }
        *budget -= 1;
        match v {
            Value::String(s) => under && (s.contains('@') || s.contains("://")),
            Value::Array(items) => items.iter().any(|i| walk(i, under, depth + 1, budget)),
            Value::Object(map) => map.iter().any(|(k, i)| walk(i, under || is_recipient_key(k), depth + 1, budget)),
            _ => false,
        }
    }
    walk(args, false, 0, &mut 4096)
}

impl ArgFacts {
    /// Something in the arguments said what the call does.
    pub(crate) fn decided(&self) -> bool {
        self.sql.is_some()
            || self.shell.is_some()
            || self.code.is_some()
            || self.mongo_write.is_some()
            || self.ui.is_some()
    }
}
