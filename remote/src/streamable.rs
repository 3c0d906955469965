//! MCP's streamable HTTP transport: every client message is a POST whose
//! answer is JSON or an event stream; server-initiated messages come on a
//! GET stream; `Mcp-Session-Id` ties them together; a dropped stream
//! resumes with `Last-Event-ID`; `DELETE` ends the session.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Response, StatusCode};

use crate::conn::{Conn, http_error, status_error};
use crate::message::Peek;
use crate::sse_parse::Parser;

const SESSION: &str = "mcp-session-id";
const VERSION: &str = "mcp-protocol-version";
/// How often a dropped stream is resumed in a row without progress.
const RESUMES: u32 = 5;
/// The wait before resuming when the server named none (`retry:`).
const DEFAULT_RETRY: Duration = Duration::from_millis(500);

/// HTTP requests in flight at once; more wait for a turn (the agent can
/// send requests faster than any server should be asked to take them).
pub const MAX_IN_FLIGHT: usize = 64;

/// What a POST came to.
pub enum Posted {
    Done,
    /// The server answered 4xx to the first message: it may speak the old
    /// HTTP+SSE transport instead (the MCP backwards-compatibility rule).
    NotStreamable(String),
}

pub struct Streamable {
    pub conn: Arc<Conn>,
    /// One new session at a time (requests in flight may all meet the 404).
    renewing: tokio::sync::Mutex<()>,
}

impl Streamable {
    pub fn new(conn: Arc<Conn>) -> Streamable {
        Streamable { conn, renewing: tokio::sync::Mutex::new(()) }
    }

    fn session_headers(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let st = self.conn.state();
        let mut rb = rb;
        if let Some(s) = &st.session_id {
            rb = rb.header(SESSION, s.clone());
        }
        if let Some(v) = &st.protocol_version {
            rb = rb.header(VERSION, v.clone());
        }
        rb
    }

    /// POSTs one client message and relays the answer. PROBE: this is the
    /// first message, and a 4xx may mean the server is an HTTP+SSE one.
    pub async fn post(&self, line: Vec<u8>, peek: &Peek, probe: bool) -> Posted {
        let conn = &self.conn;
        conn.sending(peek);
        match peek.method() {
            // Kept to start a new session with, should the server end this one.
            Some("initialize") => conn.state().init = Some(line.clone()),
            Some("notifications/initialized") => conn.state().initialized = Some(line.clone()),
            _ => {}
        }
        let id = peek.request_id().map(str::to_owned);
        let fail = |why: String| conn.fail_or_log(id.as_deref(), why);
        let mirrored = conn.mirrored(peek);
        let mut renewed = false;
        let resp = loop {
            let sent_session = conn.state().session_id.clone();
            let sent = conn
                .send(|| async {
                    let rb = conn.request(Method::POST, &conn.url).await?;
                    Ok(self
                        .session_headers(rb)
                        .headers(mirrored.clone())
                        .header(ACCEPT, "application/json, text/event-stream")
                        .header(CONTENT_TYPE, "application/json")
                        .body(line.clone()))
                })
                .await;
            let resp = match sent {
                Ok(resp) => resp,
                Err(why) => {
                    fail(why).await;
                    return Posted::Done;
                }
            };
            // 404 to a request in a session: the session is gone, and the
            // client must start a new one (MCP, streamable HTTP). The
            // bridge does it for the client, once per message.
            if resp.status() == StatusCode::NOT_FOUND
                && sent_session.is_some()
                && !renewed
                && peek.method() != Some("initialize")
            {
                renewed = true;
                drop(resp);
                match self.renew(sent_session).await {
                    Ok(()) => continue,
                    Err(why) => {
                        fail(format!(
                            "the server ended the session (HTTP 404) and a new one could not be started: {why}"
                        ))
                        .await;
                        return Posted::Done;
                    }
                }
            }
            break resp;
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            fail("the server requires authorization (HTTP 401) and none it accepts is configured; authorize this server in Latch or configure its header".into()).await;
            return Posted::Done;
        }
        if probe && status.is_client_error() && status != StatusCode::FORBIDDEN {
            let why = status_error(resp).await;
            conn.state().pending.clear();
            return Posted::NotStreamable(why);
        }
        if status == StatusCode::NOT_FOUND && conn.state().session_id.is_some() {
            fail("the server ended the session (HTTP 404) again after a new one was started".into()).await;
            return Posted::Done;
        }
        if !status.is_success() {
            fail(status_error(resp).await).await;
            return Posted::Done;
        }
        if let Some(s) = resp.headers().get(SESSION) {
            let mut st = conn.state();
            if st.session_id.is_none() {
                st.session_id = Some(s.clone());
            }
        }
        if status == StatusCode::ACCEPTED {
            return Posted::Done;
        }
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/event-stream"));
        if is_sse {
            self.read_stream(resp, id.as_deref()).await;
        } else {
            match read_body(resp, conn.max_message).await {
                Ok(body) if body.trim_ascii().is_empty() => {}
                Ok(body) => {
                    conn.deliver(&body).await;
                }
                Err(why) => fail(why).await,
            }
        }
        if let Some(id) = &id {
            // The stream ended without the answer and could not be resumed.
            conn.fail(id, "the server ended its answer without a result").await;
        }
        Posted::Done
    }

    /// Relays an event stream until the response to ID has come (or, for
    /// no ID, to its end), resuming it with `Last-Event-ID` when it drops.
    async fn read_stream(&self, resp: Response, id: Option<&str>) {
        let conn = &self.conn;
        let mut parser = Parser::new(conn.max_message);
        let mut resp = resp;
        let mut retry = DEFAULT_RETRY;
        let mut failures = 0;
        loop {
            let mut progressed = false;
            while let Ok(Some(bytes)) = resp.chunk().await {
                let events = match parser.feed(&bytes) {
                    Ok(ev) => ev,
                    Err(e) => {
                        if let Some(id) = id {
                            conn.fail(id, &format!("the server's event stream is malformed: {e}")).await;
                        }
                        return;
                    }
                };
                for ev in events {
                    if let Some(ms) = ev.retry {
                        retry = Duration::from_millis(ms.min(60_000));
                    }
                    progressed = true;
                    if !ev.is_message() || ev.data.is_empty() {
                        continue;
                    }
                    let answered = conn.deliver(ev.data.as_bytes()).await;
                    if id.is_some_and(|id| answered.iter().any(|a| a == id)) {
                        return;
                    }
                }
            }
            // Dropped or ended before the answer.
            let Some(id) = id else { return };
            let Some(last) = parser.last_id().map(str::to_owned) else {
                conn.fail(id, "the server's stream ended before the answer, and it cannot be resumed (no event id)")
                    .await;
                return;
            };
            failures = if progressed { 1 } else { failures + 1 };
            if failures > RESUMES {
                conn.fail(id, "the server's stream dropped and could not be resumed").await;
                return;
            }
            tokio::time::sleep(retry).await;
            match self.get_stream(Some(&last)).await {
                Ok(Some(r)) => {
                    parser.resume();
                    resp = r;
                }
                Ok(None) => {
                    conn.fail(id, "the server's stream dropped and the server does not offer resuming it").await;
                    return;
                }
                Err(_) => continue,
            }
        }
    }

    /// GET the server's stream (after LAST, when resuming). `Ok(None)`:
    /// the server offers none (405).
    async fn get_stream(&self, last: Option<&str>) -> Result<Option<Response>, String> {
        let conn = &self.conn;
        let resp = conn
            .send(|| async {
                let rb = self
                    .session_headers(conn.request(Method::GET, &conn.url).await?)
                    .header(ACCEPT, "text/event-stream");
                Ok(match last.and_then(|l| HeaderValue::from_str(l).ok()) {
                    Some(l) => rb.header("last-event-id", l),
                    None => rb,
                })
            })
            .await?;
        let status = resp.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(resp).await);
        }
        Ok(Some(resp))
    }

    /// The stream of server-initiated messages, kept open (and resumed)
    /// while the bridge runs.
    pub async fn listen(self: Arc<Self>) {
        let mut last: Option<String> = None;
        // Errors in a row (given up after RESUMES), and streams in a row
        // that ended without an event (only slowed down: a server may
        // close an idle stream on a timer).
        let mut failures = 0u32;
        let mut idle = 0u32;
        loop {
            match self.get_stream(last.as_deref()).await {
                Ok(None) => return,
                Ok(Some(mut resp)) => {
                    failures = 0;
                    idle += 1;
                    let mut parser = Parser::new(self.conn.max_message);
                    while let Ok(Some(bytes)) = resp.chunk().await {
                        let Ok(events) = parser.feed(&bytes) else { break };
                        for ev in events {
                            idle = 0;
                            if ev.is_message() && !ev.data.is_empty() {
                                self.conn.deliver(ev.data.as_bytes()).await;
                            }
                        }
                    }
                    if let Some(l) = parser.last_id() {
                        last = Some(l.to_owned());
                    }
                }
                Err(why) => {
                    failures += 1;
                    if failures > RESUMES {
                        eprintln!("latch bridge {}: the server's message stream stopped: {why}", self.conn.name);
                        return;
                    }
                }
            }
            tokio::time::sleep(backoff(failures.max(idle))).await;
        }
    }

    /// Starts a new session in place of GONE, which the server ended: the
    /// client's own `initialize` (under an id of the bridge's, its answer
    /// kept from the client, which has had one) and its
    /// `notifications/initialized`. Another request may have done it
    /// meanwhile: then there is nothing to do.
    async fn renew(&self, gone: Option<HeaderValue>) -> Result<(), String> {
        let conn = &self.conn;
        let _one = self.renewing.lock().await;
        let (init, initialized) = {
            let mut st = conn.state();
            if st.session_id != gone {
                return Ok(());
            }
            st.session_id = None;
            (st.init.clone(), st.initialized.clone())
        };
        let renewed = self.start_session(init, initialized).await;
        if renewed.is_err() {
            // The next message meets the 404 again and tries once more
            // (the server may be back), rather than going without a session.
            conn.state().session_id = gone;
        }
        renewed
    }

    async fn start_session(&self, init: Option<Vec<u8>>, initialized: Option<Vec<u8>>) -> Result<(), String> {
        let conn = &self.conn;
        let init = init.ok_or("the client's initialize was not seen")?;
        let mut msg: serde_json::Value =
            serde_json::from_slice(&init).map_err(|_| "the client's initialize is not JSON".to_owned())?;
        msg["id"] = serde_json::Value::from("latch-new-session");
        let body = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        let resp = self.send_quiet(body).await?;
        let Some(session) = resp.headers().get(SESSION).cloned() else {
            return Err("the server gave the new session no id".into());
        };
        let answer = read_answer(resp, conn.max_message).await?;
        if answer.get("result").is_none() {
            return Err("the server refused the new session's initialize".into());
        }
        conn.state().session_id = Some(session);
        if let Some(n) = initialized {
            self.send_quiet(n).await?;
        }
        Ok(())
    }

    /// POSTs a message of the bridge's own (its answer is not relayed).
    async fn send_quiet(&self, body: Vec<u8>) -> Result<Response, String> {
        let conn = &self.conn;
        let rb = conn.request(Method::POST, &conn.url).await?;
        let resp = self
            .session_headers(rb)
            .headers(conn.mirrored(&Peek::of(&body)))
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        Ok(resp)
    }

    /// Ends the session (the client closed its side).
    pub async fn close(&self) {
        let conn = &self.conn;
        if conn.state().session_id.is_none() {
            return;
        }
        let Ok(rb) = conn.request(Method::DELETE, &conn.url).await else { return };
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session_headers(rb).send()).await;
    }
}

/// The wait before the Nth reconnection in a row: doubling from
/// DEFAULT_RETRY, at most 30 s.
fn backoff(n: u32) -> Duration {
    (DEFAULT_RETRY * 2u32.saturating_pow(n.min(6))).min(Duration::from_secs(30))
}

/// The JSON-RPC answer in a response to a request of the bridge's own: a
/// JSON body, or the first message of an event stream.
async fn read_answer(resp: Response, max: usize) -> Result<serde_json::Value, String> {
    let is_sse = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/event-stream"));
    let not_json = || "the server's answer is not JSON".to_owned();
    if !is_sse {
        return serde_json::from_slice(&read_body(resp, max).await?).map_err(|_| not_json());
    }
    let mut resp = resp;
    let mut parser = Parser::new(max);
    while let Some(bytes) = resp.chunk().await.map_err(|e| http_error(&e))? {
        for ev in parser.feed(&bytes).map_err(|e| e.to_string())? {
            if ev.is_message() && !ev.data.is_empty() {
                let v: serde_json::Value = serde_json::from_str(&ev.data).map_err(|_| not_json())?;
                if v.get("id").is_some() {
                    return Ok(v);
                }
            }
        }
    }
    Err("the server's stream ended before its answer".into())
}

async fn read_body(mut resp: Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(b)) => {
                if body.len() + b.len() > max {
                    return Err(format!("the server's answer is larger than {} MiB", max / (1024 * 1024)));
                }
                body.extend_from_slice(&b);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(http_error(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnections_back_off_to_thirty_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(100), Duration::from_secs(30));
    }
}
