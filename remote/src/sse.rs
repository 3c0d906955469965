//! The older HTTP+SSE transport (MCP 2024-11-05): a GET opens an event
//! stream whose first event, `endpoint`, names where to POST client
//! messages; every server message, responses included, comes on that
//! stream.

use std::sync::Arc;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response, Url};

use crate::conn::{Conn, http_error, status_error};
use crate::message::Peek;
use crate::sse_parse::Parser;

/// The `endpoint` event comes first; a stream that sends this much without
/// it is not an HTTP+SSE server (or is stalling the client).
const ENDPOINT_WITHIN: usize = 64 * 1024;

pub struct Sse {
    pub conn: Arc<Conn>,
    endpoint: Url,
}

/// The open stream, read by [`Sse::relay`].
pub struct Stream {
    resp: Response,
    parser: Parser,
}

impl Sse {
    /// Opens the stream and waits for the `endpoint` event. The endpoint
    /// must be on the server's own origin: a server cannot send the
    /// client's messages (and its headers) anywhere else.
    pub async fn connect(conn: Arc<Conn>) -> Result<(Sse, Stream), String> {
        let mut resp = conn
            .send(async || Ok(conn.request(Method::GET, &conn.url).await?.header(ACCEPT, "text/event-stream")))
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        let mut parser = Parser::new(conn.max_message);
        let mut seen = 0usize;
        loop {
            if seen > ENDPOINT_WITHIN {
                return Err("the server's event stream did not name its endpoint first".into());
            }
            let bytes = match resp.chunk().await {
                Ok(Some(b)) => b,
                Ok(None) => return Err("the server's event stream ended before it named its endpoint".into()),
                Err(e) => return Err(http_error(&e)),
            };
            seen += bytes.len();
            let events = parser.feed(&bytes).map_err(|e| e.to_string())?;
            let mut endpoint = None;
            let mut early = Vec::new();
            for ev in events {
                if endpoint.is_none() && ev.event == "endpoint" {
                    endpoint = Some(ev.data);
                } else if endpoint.is_some() && ev.is_message() && !ev.data.is_empty() {
                    early.push(ev.data);
                }
            }
            if let Some(e) = endpoint {
                let url =
                    conn.url.join(e.trim()).map_err(|_| "the server named an endpoint that is not a URL".to_owned())?;
                if url.origin() != conn.url.origin() {
                    return Err(format!(
                        "the server named an endpoint on another origin ({}); refused",
                        crate::conn::shown(&url)
                    ));
                }
                for data in early {
                    conn.deliver(data.as_bytes()).await;
                }
                return Ok((Sse { conn, endpoint: url }, Stream { resp, parser }));
            }
        }
    }

    /// Relays the stream until it ends; then every unanswered request is
    /// answered with an error (the session is gone with it).
    pub async fn relay(conn: Arc<Conn>, mut stream: Stream) {
        let why = loop {
            match stream.resp.chunk().await {
                Ok(Some(bytes)) => match stream.parser.feed(&bytes) {
                    Ok(events) => {
                        for ev in events {
                            if ev.is_message() && !ev.data.is_empty() {
                                conn.deliver(ev.data.as_bytes()).await;
                            }
                        }
                    }
                    Err(e) => break format!("the server's event stream is malformed: {e}"),
                },
                Ok(None) => break "the server closed its event stream".to_owned(),
                Err(e) => break http_error(&e),
            }
        };
        conn.fail_all(&why).await;
        eprintln!("latch bridge {}: {why}", conn.name);
    }

    /// POSTs one client message; its answer comes on the stream.
    pub async fn post(&self, line: Vec<u8>, peek: &Peek) {
        let conn = &self.conn;
        conn.sending(peek);
        let id = peek.request_id();
        let sent = conn
            .send(|| async {
                let rb = conn.request(Method::POST, &self.endpoint).await?;
                Ok(rb.header(CONTENT_TYPE, "application/json").body(line.clone()))
            })
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(why) => return conn.fail_or_log(id, why).await,
        };
        if !resp.status().is_success() {
            let why = status_error(resp).await;
            conn.fail_or_log(id, why).await;
        }
    }
}
