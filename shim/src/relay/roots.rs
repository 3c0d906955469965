//! The client's MCP roots, learnt from its answers to the server's
//! `roots/list` requests and reported to the daemon, which takes them as
//! the workspace of this server's calls.
//!
//! Only an answer to a `roots/list` request the server sent counts: the
//! server's request ids are remembered, and an id the server reuses for
//! another request while it waits is forgotten (which answer is which
//! could not be told). A `notifications/roots/list_changed` from the
//! client makes the roots unknown until the next answer.

use std::collections::HashSet;

use serde::Deserialize;

/// Unanswered `roots/list` requests remembered.
const MAX_ASKED: usize = 64;
/// Roots kept from one answer.
pub const MAX_ROOTS: usize = 64;

#[derive(Default)]
pub(super) struct Roots {
    /// Ids (raw JSON) of the server's `roots/list` requests not answered yet.
    asked: HashSet<String>,
    /// What the client last said, `None` when unknown.
    pub known: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Answer {
    result: Option<List>,
}

#[derive(Deserialize)]
struct List {
    roots: Vec<Root>,
}

#[derive(Deserialize)]
struct Root {
    uri: String,
}

impl Roots {
    /// A request from the server.
    pub fn server_request(&mut self, id: &str, method: &str) {
        if method == "roots/list" {
            if self.asked.len() < MAX_ASKED {
                self.asked.insert(id.to_owned());
            }
        } else {
            self.asked.remove(id);
        }
    }

    /// A response from the client (`line` holds the whole message). The
    /// new roots when it answers a `roots/list` request: `Some(None)` when
    /// the answer is not a list of roots.
    pub fn client_response(&mut self, id: &str, line: &[u8]) -> Option<Option<Vec<String>>> {
        if !self.asked.remove(id) {
            return None;
        }
        let roots = serde_json::from_slice::<Answer>(line)
            .ok()
            .and_then(|a| a.result)
            .map(|l| l.roots.into_iter().take(MAX_ROOTS).map(|r| r.uri).collect::<Vec<_>>());
        self.known = roots.clone();
        Some(roots)
    }

    /// The client said its roots changed.
    pub fn changed(&mut self) -> bool {
        self.known.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_to_roots_list_count() {
        let mut r = Roots::default();
        let answer = br#"{"jsonrpc":"2.0","id":1,"result":{"roots":[{"uri":"file:///p","name":"p"}]}}"#;
        assert_eq!(r.client_response("1", answer), None);
        r.server_request("1", "roots/list");
        assert_eq!(r.client_response("1", answer), Some(Some(vec!["file:///p".to_owned()])));
        assert_eq!(r.client_response("1", answer), None, "answered once");
        // An id reused for another request is forgotten.
        r.server_request("2", "roots/list");
        r.server_request("2", "sampling/createMessage");
        assert_eq!(r.client_response("2", answer), None);
        r.server_request("3", "roots/list");
        assert_eq!(r.client_response("3", br#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"x"}}"#), Some(None));
        assert!(r.known.is_none());
    }
}
