//! Asking the person inside the MCP client (elicitation, 2025-06-18 on)
//! while a call is held, for clients the policy names.
//!
//! The daemon decides whether a client may be asked (it sends the question
//! with an `ask` decision); the shim asks only a client that declared form
//! elicitation in `initialize`. The request ids are the shim's own: a
//! random prefix per shim, never shown to the server, so they cannot meet
//! the ids of the server's own requests, and the client's answers to them
//! are taken out of the stream, never forwarded. The answer offers once or
//! deny, never more; it goes to the daemon, which decides whether it
//! counts. When the call ends another way (another channel answered, the
//! hold passed, the client cancelled), the question is withdrawn with
//! `notifications/cancelled`.

use latch_proto::ClientMsg;
use serde_json::{Value, json};

use super::Relay;
use crate::continuation;

/// The schema's one field and its two values.
const FIELD: &str = "answer";
const ONCE: &str = "once";
const DENY: &str = "deny";

/// Whether `initialize` capabilities offer form elicitation: an
/// `elicitation` object that is empty (2025-06-18) or has `form`.
pub(super) fn offers_form(capabilities: Option<&str>) -> bool {
    let Some(caps) = capabilities.and_then(|c| serde_json::from_str::<Value>(c).ok()) else {
        return false;
    };
    match caps.get("elicitation") {
        Some(Value::Object(e)) => e.is_empty() || e.get("form").is_some_and(Value::is_object),
        _ => false,
    }
}

/// A fresh prefix for this shim's request ids.
pub(super) fn id_prefix() -> Option<String> {
    continuation::random_hex().map(|hex| format!("latch-{hex}-"))
}

/// The `elicitation/create` request (a line) for `question`.
fn request(id: &str, question: &str) -> Vec<u8> {
    let msg = json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "elicitation/create",
        "params": params(question),
    });
    let mut line = msg.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// The question's `params`: the message and a schema of once or deny.
pub(super) fn params(question: &str) -> Value {
    json!({
            "message": question,
            "requestedSchema": {
                "type": "object",
                "properties": {
                    FIELD: {
                        "type": "string",
                        "title": "Latch approval",
                        "description": "Allow this one call, or deny it",
                        "enum": [ONCE, DENY],
                        "enumNames": ["Allow once", "Deny"],
                    },
                },
                "required": [FIELD],
            },
    })
}

/// What the person chose: `Some(true)` approve once, `Some(false)` deny,
/// `None` no answer (dismissed, an error, anything else).
pub(super) fn chosen(reply: &Value) -> Option<bool> {
    choice(reply.get("result")?)
}

/// What the person chose, from an elicitation result (`action`, `content`).
pub(super) fn choice(result: &Value) -> Option<bool> {
    match result.get("action")?.as_str()? {
        "accept" => match result.get("content")?.get(FIELD)?.as_str()? {
            ONCE => Some(true),
            DENY => Some(false),
            _ => None,
        },
        "decline" => Some(false),
        _ => None,
    }
}

impl Relay {
    /// Asks the client about held call `call_id`; the request id is kept
    /// on the held call.
    pub(super) fn ask_in_client(&mut self, call_id: &str, question: &str) {
        let Some(prefix) = &self.elicit_prefix else { return };
        self.next_elicit += 1;
        let id = format!("{prefix}{}", self.next_elicit);
        let Some(h) = self.held.get_mut(call_id) else { return };
        let raw = Value::from(id.as_str()).to_string();
        h.elicit = Some(raw.clone());
        self.asking.insert(raw, call_id.to_owned());
        self.send_client(request(&id, question));
    }

    /// Withdraws the question about a call that no longer waits for it.
    pub(super) fn withdraw(&mut self, elicit: Option<String>) {
        if let Some(line) = self.withdrawal(elicit) {
            self.send_client(line);
        }
    }

    /// The `notifications/cancelled` line that withdraws question `elicit`
    /// (raw id), if it is still open.
    pub(super) fn withdrawal(&mut self, elicit: Option<String>) -> Option<Vec<u8>> {
        let raw = elicit?;
        self.asking.remove(&raw)?;
        let mut line = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{raw},"reason":"answered or ended in Latch"}}}}"#
        )
        .into_bytes();
        line.push(b'\n');
        Some(line)
    }

    /// A response from the client to one of the shim's own questions
    /// (`id` raw): taken out of the stream, its answer sent to the daemon.
    /// False when `id` is not one of them.
    pub(super) fn on_elicit_reply(&mut self, id: &str, base: &[u8]) -> bool {
        let Some(call_id) = self.asking.remove(id) else { return false };
        if let Some(h) = self.held.get_mut(&call_id) {
            h.elicit = None;
        }
        let answer = serde_json::from_slice::<Value>(base).ok().as_ref().and_then(chosen);
        match answer {
            Some(approve) => {
                self.send_daemon(&ClientMsg::InClientAnswer { call_id, approve });
            }
            None => eprintln!("latch shim: the client gave no answer to the approval question; it waits in Latch"),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_elicitation_is_read_from_the_capabilities() {
        assert!(offers_form(Some(r#"{"elicitation":{}}"#)));
        assert!(offers_form(Some(r#"{"elicitation":{"form":{},"url":{}}}"#)));
        assert!(!offers_form(Some(r#"{"elicitation":{"url":{}}}"#)));
        assert!(!offers_form(Some(r#"{"sampling":{}}"#)));
        assert!(!offers_form(Some(r#"{"elicitation":true}"#)));
        assert!(!offers_form(None));
    }

    #[test]
    fn the_question_offers_once_or_deny_and_nothing_wider() {
        let line = request("latch-ab-1", "Latch: allow \"x\"?");
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["method"], "elicitation/create");
        assert_eq!(v["id"], "latch-ab-1");
        let field = &v["params"]["requestedSchema"]["properties"][FIELD];
        assert_eq!(field["enum"], json!([ONCE, DENY]));
        assert!(!line.contains(&b'\n') || line.iter().filter(|b| **b == b'\n').count() == 1);
    }

    #[test]
    fn only_an_explicit_choice_answers() {
        let reply = |r: Value| json!({"jsonrpc": "2.0", "id": "x", "result": r});
        assert_eq!(chosen(&reply(json!({"action": "accept", "content": {FIELD: ONCE}}))), Some(true));
        assert_eq!(chosen(&reply(json!({"action": "accept", "content": {FIELD: DENY}}))), Some(false));
        assert_eq!(chosen(&reply(json!({"action": "decline"}))), Some(false));
        assert_eq!(chosen(&reply(json!({"action": "cancel"}))), None);
        assert_eq!(chosen(&reply(json!({"action": "accept", "content": {FIELD: "always"}}))), None);
        assert_eq!(chosen(&reply(json!({"action": "accept", "content": {FIELD: true}}))), None);
        assert_eq!(chosen(&reply(json!({"action": "accept"}))), None);
        assert_eq!(chosen(&json!({"jsonrpc": "2.0", "id": "x", "error": {"code": -1, "message": "no"}})), None);
    }
}
