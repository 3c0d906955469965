//! HTTP for OAuth: no redirects followed (a 307 from a token endpoint
//! would carry the code and verifier elsewhere), time limits, and bodies
//! read up to a bound (metadata comes from servers Latch does not trust).

use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde::de::DeserializeOwned;

use super::OAuthError;
use super::discovery::shown;

/// Largest OAuth JSON body read.
const MAX_BODY: usize = 256 * 1024;

pub fn client() -> Result<Client, OAuthError> {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("latch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OAuthError::Internal(format!("no HTTP client: {e}")))
}

/// A failed request, said without the URL's query (nor anything sent).
pub fn http_err(url: &reqwest::Url, e: &reqwest::Error) -> OAuthError {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    OAuthError::Http(format!("{}: {why}", shown(url)))
}

/// The body, at most `MAX_BODY` bytes.
pub async fn body(url: &reqwest::Url, mut resp: Response) -> Result<Vec<u8>, OAuthError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| http_err(url, &e))? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(OAuthError::Http(format!("{}: answer too large", shown(url))));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// GET a JSON document; `Ok(None)` on 404 and other client errors (the
/// next well-known place is tried).
pub async fn get_json<T: DeserializeOwned>(client: &Client, url: &reqwest::Url) -> Result<Option<T>, OAuthError> {
    let resp = client
        .get(url.clone())
        .header("Accept", "application/json")
        .header("MCP-Protocol-Version", "2025-11-25")
        .send()
        .await
        .map_err(|e| http_err(url, &e))?;
    let status = resp.status();
    if status.is_client_error() {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(OAuthError::Http(format!("{}: HTTP {}", shown(url), status.as_u16())));
    }
    let bytes = body(url, resp).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| OAuthError::Discovery(format!("{}: not the expected JSON document", shown(url))))
}

/// An OAuth error response's `error` code, kept only when it is a plain
/// code (RFC 6749 §5.2 limits it to printable ASCII); descriptions are
/// dropped: they are the server's words, and could carry anything.
pub fn error_code(bytes: &[u8], status: StatusCode) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        error: String,
    }
    match serde_json::from_slice::<E>(bytes) {
        Ok(E { error })
            if !error.is_empty()
                && error.len() <= 64
                && error.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') =>
        {
            format!("{error} (HTTP {})", status.as_u16())
        }
        _ => format!("HTTP {}", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_only() {
        let s = StatusCode::BAD_REQUEST;
        assert_eq!(error_code(br#"{"error":"invalid_grant","error_description":"x"}"#, s), "invalid_grant (HTTP 400)");
        assert_eq!(error_code(br#"{"error":"tok3n eyJhbGciOi.x.y"}"#, s), "HTTP 400");
        assert_eq!(error_code(b"<html>", s), "HTTP 400");
    }
}
