//! OAuth 2.1 for remote MCP servers.
//!
//! The bridge asks a [`Session`] for the `Authorization` header of each
//! request and tells it about a 401; everything else (discovery, the
//! browser step, PKCE, token storage and refresh) stays behind it.

use std::path::PathBuf;

/// Why a request could not be authorized. Never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    Failed(String),
}

/// One configured remote server's authorization.
pub struct Session {
    /// The server's name as configured (`--name`), the key of its tokens.
    pub name: String,
    /// The MCP endpoint URL.
    pub server_url: String,
    /// Where tokens are kept (the Latch home).
    pub home: PathBuf,
}

impl Session {
    pub fn new(name: String, server_url: String, home: PathBuf) -> Session {
        Session { name, server_url, home }
    }

    /// The `Authorization` header value for the next request, if the server
    /// has been authorized (refreshing a token that is about to expire).
    pub async fn authorization(&self) -> Result<Option<String>, OAuthError> {
        Ok(None)
    }

    /// The server answered 401 (with its `WWW-Authenticate` header, if
    /// any). Refreshes or authorizes anew; `Ok(true)` means a retry may
    /// succeed, `Ok(false)` that the server cannot be authorized by OAuth.
    pub async fn unauthorized(&self, www_authenticate: Option<&str>) -> Result<bool, OAuthError> {
        let _ = www_authenticate;
        Ok(false)
    }
}
