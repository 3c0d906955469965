//! The browser step's return: a one-shot HTTP listener on 127.0.0.1 (a
//! random port, RFC 8252 §7.3) that takes the authorization response.
//!
//! Only the response carrying this attempt's `state` counts; a request
//! without it (a page, a probe, another attempt) is answered 400 and the
//! wait goes on. A response with the right `state` but the wrong issuer
//! (RFC 9207, a mix-up) ends the attempt.

use std::time::Duration;

use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::OAuthError;

pub const PATH: &str = "/callback";

/// Callback connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 16;

/// What the authorization server must have said for the response to count.
#[derive(Debug, Clone)]
pub struct Expect {
    pub state: String,
    pub issuer: String,
    /// The server said it sends `iss` (`authorization_response_iss_parameter_supported`).
    pub iss_required: bool,
}

/// What one request to the callback means.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The authorization code.
    Code(String),
    /// Not this attempt's response: ignore it, keep waiting.
    Ignore(&'static str),
    /// This attempt's response, refused: the attempt ends.
    Fail(String),
}

/// Judges a request target (`/callback?code=…&state=…&iss=…`). Pure.
pub fn judge(target: &str, expect: &Expect) -> Outcome {
    let Ok(url) = Url::parse("http://127.0.0.1").and_then(|b| b.join(target)) else {
        return Outcome::Ignore("not a callback");
    };
    if url.path() != PATH {
        return Outcome::Ignore("not a callback");
    }
    let mut state = None;
    let mut code = None;
    let mut iss = None;
    let mut error = None;
    let mut seen = std::collections::HashSet::new();
    for (k, v) in url.query_pairs() {
        // A parameter given twice is a forged response (RFC 6749 §3.1).
        if !seen.insert(k.to_string()) {
            return Outcome::Ignore("a parameter is repeated");
        }
        match &*k {
            "state" => state = Some(v.into_owned()),
            "code" => code = Some(v.into_owned()),
            "iss" => iss = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            _ => {}
        }
    }
    if state.as_deref() != Some(expect.state.as_str()) {
        return Outcome::Ignore("state does not match this authorization");
    }
    match iss {
        Some(iss) if iss != expect.issuer => {
            return Outcome::Fail("the response came from another issuer than the one asked (RFC 9207)".into());
        }
        None if expect.iss_required => {
            return Outcome::Fail("the response lacks the issuer the server promised to send (RFC 9207)".into());
        }
        _ => {}
    }
    if let Some(error) = error {
        let error: String = error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
        return Outcome::Fail(format!("authorization refused: {error}"));
    }
    match code {
        Some(code) if !code.is_empty() => Outcome::Code(code),
        _ => Outcome::Fail("the response has no code".into()),
    }
}

/// The listener, bound before the browser is opened.
pub struct Listener {
    inner: TcpListener,
    pub redirect_uri: String,
}

impl Listener {
    pub async fn bind() -> Result<Listener, OAuthError> {
        let inner = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| OAuthError::Internal(format!("cannot listen on 127.0.0.1: {e}")))?;
        let port = inner.local_addr().map_err(|e| OAuthError::Internal(e.to_string()))?.port();
        Ok(Listener { inner, redirect_uri: format!("http://127.0.0.1:{port}{PATH}") })
    }

    /// Waits for this attempt's response, at most `limit`. Connections are
    /// served side by side (at most [`MAX_CONNECTIONS`]), so one that sends
    /// nothing cannot hold the real answer back.
    pub async fn wait(self, expect: &Expect, limit: Duration) -> Result<String, OAuthError> {
        let mut tasks = tokio::task::JoinSet::new();
        tokio::time::timeout(limit, async {
            loop {
                tokio::select! {
                    accepted = self.inner.accept(), if tasks.len() < MAX_CONNECTIONS => {
                        if let Ok((stream, _)) = accepted {
                            let expect = expect.clone();
                            tasks.spawn(async move { one(stream, &expect).await });
                        }
                    }
                    Some(done) = tasks.join_next() => match done {
                        Ok(Some(Outcome::Code(code))) => return Ok(code),
                        Ok(Some(Outcome::Fail(why))) => return Err(OAuthError::Refused(why)),
                        _ => {}
                    },
                }
            }
        })
        .await
        .map_err(|_| OAuthError::Timeout)?
    }
}

/// Reads one request head (bounded in size and time) and answers it.
async fn one(mut stream: TcpStream, expect: &Expect) -> Option<Outcome> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    if read != Ok(true) {
        return None;
    }
    let line = String::from_utf8_lossy(head.split(|&b| b == b'\n').next()?).into_owned();
    let mut parts = line.split_whitespace();
    let outcome = match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => judge(target, expect),
        _ => Outcome::Ignore("not a GET"),
    };
    let (status, text) = match &outcome {
        Outcome::Code(_) => ("200 OK", "Latch is authorized. You can close this tab.".to_owned()),
        Outcome::Ignore(why) => ("400 Bad Request", format!("Latch: {why}.")),
        Outcome::Fail(why) => ("400 Bad Request", format!("Latch refused this authorization: {why}.")),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
    Some(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(iss_required: bool) -> Expect {
        Expect { state: "S1".into(), issuer: "https://auth.example".into(), iss_required }
    }

    #[test]
    fn the_code_with_the_right_state() {
        assert_eq!(judge("/callback?code=abc&state=S1", &expect(false)), Outcome::Code("abc".into()));
        assert_eq!(
            judge("/callback?code=abc&state=S1&iss=https%3A%2F%2Fauth.example", &expect(true)),
            Outcome::Code("abc".into())
        );
    }

    #[test]
    fn wrong_or_missing_state_is_ignored() {
        for t in ["/callback?code=abc&state=S2", "/callback?code=abc", "/other?code=abc&state=S1", "/favicon.ico", "::"]
        {
            assert!(matches!(judge(t, &expect(false)), Outcome::Ignore(_)), "{t}");
        }
        assert!(matches!(judge("/callback?code=a&state=S1&state=S1", &expect(false)), Outcome::Ignore(_)));
        assert!(matches!(judge("/callback?code=a&code=b&state=S1", &expect(false)), Outcome::Ignore(_)));
    }

    #[test]
    fn issuer_mismatch_or_absence_ends_the_attempt() {
        assert!(matches!(
            judge("/callback?code=abc&state=S1&iss=https%3A%2F%2Fevil.example", &expect(false)),
            Outcome::Fail(_)
        ));
        assert!(matches!(judge("/callback?code=abc&state=S1", &expect(true)), Outcome::Fail(_)));
    }

    #[test]
    fn errors_are_reported_without_the_servers_words() {
        let Outcome::Fail(why) =
            judge("/callback?error=access_denied&error_description=%3Cscript%3E&state=S1", &expect(false))
        else {
            panic!()
        };
        assert_eq!(why, "authorization refused: access_denied");
    }

    #[tokio::test]
    async fn listener_answers_and_waits_for_the_right_state() {
        let l = Listener::bind().await.unwrap();
        let addr = l.redirect_uri.trim_start_matches("http://").trim_end_matches(PATH).to_owned();
        let e = expect(false);
        let waiter = tokio::spawn(async move { l.wait(&e, Duration::from_secs(10)).await });
        let get = |target: &'static str| {
            let addr = addr.clone();
            async move {
                let mut s = TcpStream::connect(&addr).await.unwrap();
                s.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
                out
            }
        };
        // A connection that never sends a request does not hold the others.
        let _silent = TcpStream::connect(&addr).await.unwrap();
        assert!(get("/callback?code=x&state=WRONG").await.starts_with("HTTP/1.1 400"));
        assert!(get("/callback?code=good&state=S1").await.starts_with("HTTP/1.1 200"));
        assert_eq!(waiter.await.unwrap().unwrap(), "good");
    }
}
