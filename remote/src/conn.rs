//! What both transports share: the HTTP client, the configured and OAuth
//! headers, the way out to stdout, and what the bridge learns from the
//! messages it relays (pending requests, the protocol version, the
//! `x-mcp-header` declarations).

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, Url};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::headers::ConfigHeaders;
use crate::mcp_headers::ToolHeaders;
use crate::message::{self, Kind, Peek};
use crate::oauth::Session;

/// What an authorization failure comes to.
pub enum Retry {
    /// New credentials: send the request once more.
    Again,
    /// OAuth has nothing to add: the status goes to the client as it is.
    No,
    /// OAuth tried and failed: this is the client's answer.
    Fail(String),
}

#[derive(Default)]
pub struct State {
    pub session_id: Option<HeaderValue>,
    pub protocol_version: Option<HeaderValue>,
    /// Requests sent and not yet answered: id as written → method.
    pub pending: HashMap<String, String>,
    pub tools: ToolHeaders,
    /// The client's `initialize` and `notifications/initialized`, as sent.
    pub init: Option<Vec<u8>>,
    pub initialized: Option<Vec<u8>>,
}

pub struct Conn {
    pub name: String,
    pub client: reqwest::Client,
    pub url: Url,
    pub headers: ConfigHeaders,
    pub oauth: Session,
    pub out: mpsc::Sender<Vec<u8>>,
    pub state: Mutex<State>,
    pub max_message: usize,
}

impl Conn {
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The URL as shown to people: no credentials, no query.
    pub fn shown_url(&self) -> String {
        shown(&self.url)
    }

    /// A request with the configured headers and, unless the configuration
    /// sets `Authorization` itself, OAuth's.
    pub async fn request(&self, method: reqwest::Method, url: &Url) -> Result<RequestBuilder, String> {
        let mut h: HeaderMap = self.headers.map().clone();
        if !self.headers.has("authorization") {
            match self.oauth.authorization().await {
                Ok(Some(v)) => {
                    let mut v = HeaderValue::from_str(&v)
                        .map_err(|_| "the stored authorization is not a valid header".to_owned())?;
                    v.set_sensitive(true);
                    h.insert(reqwest::header::AUTHORIZATION, v);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("authorization failed: {e}")),
            }
        }
        Ok(self.client.request(method, url.clone()).headers(h))
    }

    /// Sends the request `build` makes, and makes and sends it once more
    /// when the answer was a 401 or 403 that OAuth could answer. `Err`
    /// says why no answer came (the request could not be made or sent, or
    /// OAuth could not help).
    pub async fn send<F, Fut>(&self, mut build: F) -> Result<reqwest::Response, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, String>>,
    {
        let mut retried = false;
        loop {
            let resp = build().await?.send().await.map_err(|e| http_error(&e))?;
            if !retried {
                match self.reauthorize(&resp).await {
                    Retry::Again => {
                        retried = true;
                        continue;
                    }
                    Retry::Fail(why) => return Err(why),
                    Retry::No => {}
                }
            }
            return Ok(resp);
        }
    }

    /// After a 401, or a 403 (an OAuth scope challenge): may a retry
    /// succeed? `Retry::Fail` carries why OAuth could not help (no token
    /// in it, no command to run), said to the client in place of the
    /// bare status.
    pub async fn reauthorize(&self, resp: &reqwest::Response) -> Retry {
        let status = resp.status();
        if self.headers.has("authorization")
            || !matches!(status, reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN)
        {
            return Retry::No;
        }
        let www = resp.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
        let asked = if status == reqwest::StatusCode::FORBIDDEN {
            self.oauth.forbidden(www).await
        } else {
            self.oauth.unauthorized(www).await
        };
        match asked {
            Ok(true) => Retry::Again,
            Ok(false) => Retry::No,
            Err(e) => Retry::Fail(e.to_string()),
        }
    }

    /// Notes a client message about to be sent.
    pub fn sending(&self, peek: &Peek) {
        if let Kind::Request { id, method } = &peek.kind {
            self.state().pending.insert(id.clone(), method.clone());
        }
    }

    /// Relays what the server sent (one message, or a batch) to stdout and
    /// learns from it. Returns the ids of the responses among it.
    pub async fn deliver(&self, bytes: &[u8]) -> Vec<String> {
        let Some(lines) = message::lines(bytes) else {
            eprintln!("latch bridge {}: dropped a server message that is not JSON", self.name);
            return Vec::new();
        };
        let mut answered = Vec::new();
        for line in lines {
            let peek = Peek::of(&line);
            if let Kind::Response { id } = &peek.kind {
                self.learn(id, &peek);
                answered.push(id.clone());
            }
            if self.out.send(line).await.is_err() {
                break;
            }
        }
        answered
    }

    fn learn(&self, id: &str, peek: &Peek) {
        let mut st = self.state();
        let Some(method) = st.pending.remove(id) else { return };
        let result = || peek.result.as_ref().and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
        match method.as_str() {
            "initialize" => {
                let v = result();
                let version = v.as_ref().and_then(|r| r.get("protocolVersion")).and_then(Value::as_str);
                st.protocol_version = version.and_then(|s| HeaderValue::from_str(s).ok());
            }
            "tools/list" => {
                if let Some(r) = result() {
                    st.tools.learn(&r);
                }
            }
            _ => {}
        }
    }

    /// Answers the client's request ID with an error saying WHY, once.
    pub async fn fail(&self, id: &str, why: &str) {
        if self.state().pending.remove(id).is_none() {
            return;
        }
        let msg = format!(
            "Latch could not relay this request to the remote MCP server \"{}\" ({}): {why}",
            self.name,
            self.shown_url()
        );
        let _ = self.out.send(message::error_response(id, &msg)).await;
    }

    /// `fail` for a request, a line on stderr for anything else.
    pub async fn fail_or_log(&self, id: Option<&str>, why: String) {
        match id {
            Some(id) => self.fail(id, &why).await,
            None => eprintln!("latch bridge {}: a message could not be delivered: {why}", self.name),
        }
    }

    /// Fails every request still waiting (the connection is gone).
    pub async fn fail_all(&self, why: &str) {
        let ids: Vec<String> = self.state().pending.keys().cloned().collect();
        for id in ids {
            self.fail(&id, why).await;
        }
    }

    /// `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` for a client message.
    pub fn mirrored(&self, peek: &Peek) -> HeaderMap {
        let mut h = HeaderMap::new();
        let Some(method) = peek.method() else { return h };
        let params: Option<Value> = peek.params.as_ref().and_then(|p| serde_json::from_str(p.get()).ok());
        let mut pairs = crate::mcp_headers::standard(method, params.as_ref());
        if method == "tools/call" {
            pairs.extend(self.state().tools.for_call(params.as_ref()));
        }
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
                h.insert(k, v);
            }
        }
        h
    }
}

/// scheme://host[:port]/path of URL.
pub fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A transport error in words, without the URL (it may carry a secret).
pub fn http_error(e: &reqwest::Error) -> String {
    let mut why = if e.is_connect() {
        "the server could not be reached".to_owned()
    } else if e.is_timeout() {
        "the connection timed out".to_owned()
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut src = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    if let Some(last) = last {
        why.push_str(&format!(" ({last})"));
    }
    why
}

/// How much of an error body is read: its start is all that is shown.
const ERROR_BODY: usize = 4096;

/// An HTTP status the server answered with, and the start of its body
/// (only that much is read: an endless error body costs nothing).
pub async fn status_error(mut resp: reqwest::Response) -> String {
    let status = resp.status();
    let mut raw = Vec::new();
    while raw.len() < ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(b)) => raw.extend_from_slice(&b[..b.len().min(ERROR_BODY - raw.len())]),
            _ => break,
        }
    }
    let body = String::from_utf8_lossy(&raw);
    let body: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
    if body.is_empty() {
        format!("the server answered HTTP {status}")
    } else {
        format!("the server answered HTTP {status}: {body}")
    }
}

/// A URL given on the command line, shown without what may be a secret.
pub fn redact_url_text(s: &str) -> String {
    match Url::parse(s) {
        Ok(u) => shown(&u),
        Err(_) => s.split(['?', '#', '@']).next().unwrap_or("").to_owned(),
    }
}
