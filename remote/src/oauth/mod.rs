//! OAuth 2.1 for remote MCP servers (MCP authorization, 2025-06-18 and
//! 2025-11-25).
//!
//! The bridge asks a [`Session`] for the `Authorization` header of each
//! request and tells it about a 401; everything else stays behind it:
//! discovery (`discovery`, `flow`), the browser step (`callback`), PKCE
//! and `state` (`pkce`), tokens on disk (`store`).
//!
//! The bridge's part, per HTTP request:
//! 1. `authorization()`: `Some(value)` goes in the `Authorization` header;
//! 2. on a 401, `unauthorized(WWW-Authenticate)`; `Ok(true)`: send the
//!    request once more (with a new `authorization()`), else pass the 401
//!    on; on a 403, `forbidden(WWW-Authenticate)` the same way (scope
//!    step-up). An `Err` is said to the client as the request's error: its
//!    text names no token and no command.
//!
//! Tokens are secrets: they are sent only to the server they were issued
//! for (the record names it), never appear in an error, a message or a
//! `Debug` output, and live in a 0600 file in a 0700 folder.

mod callback;
mod challenge;
mod discovery;
mod flow;
mod net;
mod pkce;
mod store;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use sha2::{Digest, Sha256};

pub use challenge::{Challenge, parse as parse_challenge};
pub use store::{Record, Secret};

/// Why a request could not be authorized. Never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    Failed(String),
    #[error("OAuth discovery: {0}")]
    Discovery(String),
    #[error("refusing an insecure address: {0}")]
    Insecure(String),
    #[error("the authorization server {0} does not offer PKCE with S256; Latch refuses to authorize without it")]
    NoPkce(String),
    #[error("authorization refused: {0}")]
    Refused(String),
    #[error("no answer from the browser in time; authorize again")]
    Timeout,
    #[error("no refresh token")]
    NoRefreshToken,
    /// Worded for text that may reach the agent: no command to run.
    #[error("the MCP server {0} needs a person to authorize it again in Latch")]
    LoginNeeded(String),
    #[error("{0}")]
    Http(String),
    #[error("token store: {0}")]
    Store(String),
    #[error("{0}")]
    Internal(String),
}

/// How a session behaves where a person is needed.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run the browser step on a 401 that a refresh cannot cure (the
    /// bridge); `false` fails with [`OAuthError::LoginNeeded`] instead.
    pub interactive: bool,
    /// With `interactive`: run the browser step also when tokens are
    /// stored and their refresh failed. `false` (the bridge): only the
    /// first authorization prompts; afterwards a failed refresh is
    /// [`OAuthError::LoginNeeded`], so a server cannot make a browser
    /// window appear in the middle of an agent's run.
    pub reprompt: bool,
    /// Try to open the authorization address in a browser (it is always
    /// printed on stderr as well).
    pub open_browser: bool,
    /// How long the browser step may take.
    pub wait: Duration,
    /// A client ID registered with the authorization server beforehand
    /// (a public client with a loopback redirect URI), for servers without
    /// dynamic registration.
    pub client_id: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            interactive: true,
            reprompt: true,
            open_browser: true,
            wait: Duration::from_secs(300),
            client_id: None,
        }
    }
}

/// One configured remote server's authorization.
pub struct Session {
    /// The server's name as configured (`--name`), the key of its tokens.
    pub name: String,
    /// The MCP endpoint URL.
    pub server_url: String,
    /// Where tokens are kept (the Latch home: `<home>/oauth/NAME.json`).
    pub home: PathBuf,
    options: Options,
    /// One refresh or browser step at a time; what was last handed out.
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// SHA-256 of the access token `authorization` last looked at (sent
    /// or withheld as expired); `None` when there was none. A 401 with a
    /// record on disk that differs means new tokens arrived meanwhile.
    handed: Option<[u8; 32]>,
    /// When this session last ran the browser step, and how many scope
    /// step-ups it has run: a server that rejects what the person just
    /// granted must not make Latch ask them again and again.
    last_prompt: Option<std::time::Instant>,
    step_ups: u32,
}

/// After a browser step, a 401 within this long is not answered with
/// another one.
const PROMPT_GAP: Duration = Duration::from_secs(60);
/// Scope step-ups one session runs at most.
const MAX_STEP_UPS: u32 = 3;

impl State {
    fn may_prompt_again(&self) -> Result<(), OAuthError> {
        if self.last_prompt.is_some_and(|t| t.elapsed() < PROMPT_GAP) {
            return Err(OAuthError::Refused(
                "the server refused the authorization a person gave a moment ago; Latch will not ask them again so soon"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn fingerprint(s: &Secret) -> [u8; 32] {
    Sha256::digest(s.expose().as_bytes()).into()
}

/// What `login` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// Tokens were obtained and stored.
    Authorized,
    /// The server answered without asking for authorization.
    NotRequired,
    /// The server asked, but publishes no OAuth metadata.
    NotOAuth,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("name", &self.name).field("server_url", &self.server_url).finish()
    }
}

impl Session {
    pub fn new(name: String, server_url: String, home: PathBuf) -> Session {
        Session { name, server_url, home, options: Options::default(), state: Default::default() }
    }

    pub fn with_options(mut self, options: Options) -> Session {
        self.options = options;
        self
    }

    fn url(&self) -> Result<Url, OAuthError> {
        let url = Url::parse(&self.server_url)
            .map_err(|_| OAuthError::Discovery("the server address is not a URL".into()))?;
        // Bearer tokens go over TLS, or stay on this machine.
        discovery::check_secure(&url, "the MCP server", discovery::is_loopback(&url))?;
        Ok(url)
    }

    /// The stored record, if it is for this server's URL (a record made for
    /// another URL under the same name is never used: its tokens would go
    /// to a server they were not issued for).
    ///
    /// An unreadable record counts as none (no token is sent; the next
    /// authorization writes a good one).
    fn record(&self) -> Result<Option<Record>, OAuthError> {
        Ok(store::load(&self.home, &self.name).ok().flatten().filter(|r| r.server_url == self.server_url))
    }

    /// The `Authorization` header value for the next request, if the server
    /// has been authorized (refreshing a token that is about to expire).
    pub async fn authorization(&self) -> Result<Option<String>, OAuthError> {
        let mut state = self.state.lock().await;
        let Some(mut rec) = self.record()? else {
            state.handed = None;
            return Ok(None);
        };
        state.handed = Some(fingerprint(&rec.access_token));
        if self.url().is_err() {
            return Ok(None);
        }
        let now = store::now();
        if rec.needs_refresh(now) && rec.refresh_token.is_some() {
            match self.refreshed(&rec).await {
                Ok(new) => {
                    state.handed = Some(fingerprint(&new.access_token));
                    rec = new;
                }
                // Still valid: use it; the next request tries again.
                Err(_) if !rec.expired(now) => {}
                // Expired and not refreshable: go without, the 401 that
                // follows starts a new authorization.
                Err(_) => return Ok(None),
            }
        } else if rec.expired(now) {
            return Ok(None);
        }
        Ok(Some(format!("Bearer {}", rec.access_token.expose())))
    }

    /// The server answered 401 (with its `WWW-Authenticate` header, if
    /// any). Refreshes or authorizes anew; `Ok(true)` means a retry may
    /// succeed, `Ok(false)` that the server cannot be authorized by OAuth.
    pub async fn unauthorized(&self, www_authenticate: Option<&str>) -> Result<bool, OAuthError> {
        let challenge = www_authenticate.and_then(challenge::parse);
        if www_authenticate.is_some_and(|h| !h.trim().is_empty()) && challenge.is_none() {
            // Basic or another scheme: not OAuth's to answer.
            return Ok(false);
        }
        let url = self.url()?;
        let mut state = self.state.lock().await;
        let stored = self.record()?;
        if let Some(rec) = &stored {
            if state.handed != Some(fingerprint(&rec.access_token)) {
                // Someone (another request, `latch auth login`) got new
                // tokens since this request was sent: retry with them.
                state.handed = None;
                return Ok(true);
            }
            if rec.refresh_token.is_some() && self.refreshed(rec).await.is_ok() {
                state.handed = None;
                return Ok(true);
            }
        }
        if !self.options.interactive || (stored.is_some() && !self.options.reprompt) {
            return Err(OAuthError::LoginNeeded(self.name.clone()));
        }
        state.may_prompt_again()?;
        state.last_prompt = Some(std::time::Instant::now());
        let done = self.authorize(&url, challenge.as_ref()).await?;
        state.handed = None;
        Ok(done)
    }

    /// The server answered 403 (with its `WWW-Authenticate` header). With
    /// `error="insufficient_scope"` (MCP's scope challenge) this runs the
    /// browser step again for the scopes already granted plus those the
    /// challenge names; `Ok(true)` means a retry may succeed. `Ok(false)`:
    /// not a scope challenge, or nothing new asked for (no prompt loop).
    pub async fn forbidden(&self, www_authenticate: Option<&str>) -> Result<bool, OAuthError> {
        let Some(mut challenge) = www_authenticate.and_then(challenge::parse) else { return Ok(false) };
        if challenge.error.as_deref() != Some("insufficient_scope") {
            return Ok(false);
        }
        let url = self.url()?;
        let mut state = self.state.lock().await;
        let rec = self.record()?;
        if let Some(rec) = &rec
            && state.handed != Some(fingerprint(&rec.access_token))
        {
            state.handed = None;
            return Ok(true);
        }
        let granted = rec.as_ref().and_then(|r| r.scope.as_deref());
        let Some(scope) = challenge::step_up_scope(granted, challenge.scope.as_deref().unwrap_or("")) else {
            return Ok(false);
        };
        if !self.options.interactive {
            return Err(OAuthError::LoginNeeded(self.name.clone()));
        }
        if state.step_ups >= MAX_STEP_UPS {
            return Ok(false);
        }
        state.step_ups += 1;
        state.last_prompt = Some(std::time::Instant::now());
        challenge.scope = Some(scope);
        let done = self.authorize(&url, Some(&challenge)).await?;
        state.handed = None;
        Ok(done)
    }

    /// A fresh record in place of `stale`: refreshed under the record's
    /// lock, or the one another process refreshed while this one waited.
    async fn refreshed(&self, stale: &Record) -> Result<Record, OAuthError> {
        let (home, name) = (self.home.clone(), self.name.clone());
        let _lock = tokio::task::spawn_blocking(move || store::lock(&home, &name))
            .await
            .map_err(|e| OAuthError::Internal(e.to_string()))??;
        if let Some(current) = self.record()?
            && fingerprint(&current.access_token) != fingerprint(&stale.access_token)
        {
            return Ok(current);
        }
        let new = flow::refresh(&net::client()?, stale, store::now()).await?;
        store::save(&self.home, &new)?;
        Ok(new)
    }

    /// `latch auth login`: asks the server (an MCP `initialize` without
    /// credentials) whether and how it wants authorization, and runs the
    /// browser step.
    pub async fn login(&self) -> Result<Login, OAuthError> {
        let url = self.url()?;
        let http = net::client()?;
        let probe = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "latch-auth", "version": env!("CARGO_PKG_VERSION")}}
        });
        let resp = http
            .post(url.clone())
            .header("Accept", "application/json, text/event-stream")
            .json(&probe)
            .send()
            .await
            .map_err(|e| net::http_err(&url, &e))?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(Login::NotRequired);
        }
        let header = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
        drop(resp);
        let challenge = header.as_deref().and_then(challenge::parse);
        let _state = self.state.lock().await;
        if self.authorize(&url, challenge.as_ref()).await? { Ok(Login::Authorized) } else { Ok(Login::NotOAuth) }
    }

    /// Forgets this server's tokens, revoking them first when the server
    /// offers revocation. `Ok(None)`: there were none; `Ok(Some(revoked))`.
    pub async fn logout(&self) -> Result<Option<bool>, OAuthError> {
        let _state = self.state.lock().await;
        // An unreadable record is deleted all the same.
        let rec = match store::load(&self.home, &self.name) {
            Ok(Some(rec)) => Some(rec),
            Ok(None) => return Ok(None),
            Err(_) => None,
        };
        let revoked = match (net::client(), &rec) {
            (Ok(http), Some(rec)) => flow::revoke(&http, rec).await,
            _ => false,
        };
        store::delete(&self.home, &self.name)?;
        Ok(Some(revoked))
    }

    /// Discovery, registration, the browser step, the code exchange; the
    /// tokens stored. `Ok(false)` when the server has no OAuth metadata.
    async fn authorize(&self, url: &Url, challenge: Option<&Challenge>) -> Result<bool, OAuthError> {
        let http = net::client()?;
        let Some(d) = flow::discover(&http, url, challenge).await? else { return Ok(false) };
        let listener = callback::Listener::bind().await?;
        // A client ID given now, or given before for this server and issuer;
        // otherwise dynamic registration.
        let earlier = self.record()?.filter(|r| r.preregistered && r.issuer == d.server.issuer).map(|r| r.client_id);
        let (client, preregistered) = match self.options.client_id.clone().or(earlier) {
            Some(client_id) => (flow::Registered { client_id, client_secret: None, client_auth: None }, true),
            None => (flow::register(&http, &d.server, &listener.redirect_uri, "Latch").await?, false),
        };
        let pkce = pkce::Pkce::new()?;
        let state = pkce::new_state()?;
        let address = flow::authorize_url(&d, &client.client_id, &listener.redirect_uri, &pkce, &state)?;
        // The name on one line of its own (no control characters), so no
        // name can forge the address line.
        let name: String = self.name.chars().filter(|c| !c.is_control()).collect();
        tell(&format!(
            "latch: the MCP server {name} needs authorization. Open this address in a browser \
             (waiting {} s):\nlatch: authorize: {address}\n",
            self.options.wait.as_secs()
        ));
        if self.options.open_browser {
            open_browser(address.as_str());
        }
        let expect = callback::Expect {
            state,
            issuer: d.server.issuer.clone(),
            iss_required: d.server.authorization_response_iss_parameter_supported,
        };
        let redirect_uri = listener.redirect_uri.clone();
        let code = listener.wait(&expect, self.options.wait).await?;
        let tokens = flow::exchange(&http, &d, &client, &code, &redirect_uri, &pkce.verifier).await?;
        let now = store::now();
        let record = Record {
            name: self.name.clone(),
            server_url: self.server_url.clone(),
            resource: d.resource.clone(),
            issuer: d.server.issuer.clone(),
            token_endpoint: d.server.token_endpoint.clone(),
            revocation_endpoint: d.server.revocation_endpoint.clone(),
            client_id: client.client_id,
            client_secret: client.client_secret,
            client_auth: client.client_auth,
            preregistered,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
            obtained_at: now,
            scope: tokens.scope.or(d.scope),
        };
        store::save(&self.home, &record)?;
        tell(&format!("latch: {name} is authorized.\n"));
        Ok(true)
    }
}

/// Every stored server's record, sorted by name (for `latch auth list`;
/// show no token from it).
pub fn stored(home: &std::path::Path) -> Result<Vec<Record>, OAuthError> {
    store::list(home)
}

/// A message for the person, on stderr (stdout may be an MCP channel).
fn tell(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Opens `address` with the platform's opener when there is a desktop to
/// open it on; its output goes nowhere (the shim's stdout is MCP's).
fn open_browser(address: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        "xdg-open"
    } else {
        return;
    };
    let child = std::process::Command::new(opener)
        .arg(address)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        // Reaped in the background; the opener returns quickly.
        std::thread::spawn(move || child.wait());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bridge shares a session between tasks on any runtime.
    #[test]
    fn sessions_and_their_futures_are_send_and_sync() {
        fn send<T: Send>(_: &T) {}
        fn sync<T: Sync>(_: &T) {}
        let s = Session::new("n".into(), "https://mcp.example/mcp".into(), PathBuf::from("/nonexistent"));
        sync(&s);
        send(&s.authorization());
        send(&s.unauthorized(None));
        send(&s.login());
        send(&s.logout());
    }

    #[test]
    fn debug_shows_no_secrets() {
        let s = Session::new("n".into(), "https://mcp.example/mcp".into(), PathBuf::from("/h"));
        assert_eq!(format!("{s:?}"), r#"Session { name: "n", server_url: "https://mcp.example/mcp" }"#);
    }
}
