//! `latch auth`: OAuth tokens of remote MCP servers. `login` authorizes a
//! server ahead of time (the shim would otherwise do it on the first 401),
//! `list` shows what is stored (servers, expiry, scopes; never a token),
//! `logout` revokes and forgets.

use latch_remote::oauth::{Login, Options, Session};

#[derive(clap::Subcommand)]
pub enum AuthCmd {
    /// Servers with stored OAuth tokens: address, expiry and scopes (never the tokens).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Authorize a remote MCP server now: the address to open is printed
    /// (and opened in a browser when there is one).
    Login {
        /// The server's name, as given to `latch shim --name`.
        name: String,
        /// The server's MCP endpoint.
        #[arg(long)]
        url: String,
        /// Only print the address; do not open a browser.
        #[arg(long)]
        no_browser: bool,
        /// A client ID registered with the server's authorization server
        /// beforehand, for servers without dynamic registration (kept for
        /// later logins of this server).
        #[arg(long)]
        client_id: Option<String>,
    },
    /// Forget a server's tokens (revoked first when the server offers it).
    Logout {
        /// The server's name.
        name: String,
    },
    /// One MCP `initialize` through the stored authorization (refreshing,
    /// and retrying once after a 401 or a 403 scope challenge), for tests;
    /// prints the HTTP status.
    #[command(hide = true)]
    Probe {
        name: String,
        #[arg(long)]
        url: String,
        /// Run the browser step on a 401 as the shim does (address printed only).
        #[arg(long)]
        login: bool,
        /// Requests to send, one after the other (a status line each).
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
}

pub fn run(cmd: AuthCmd) -> anyhow::Result<i32> {
    let home = super::paths()?.data_dir;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match cmd {
        AuthCmd::List { json } => list(&home, json),
        AuthCmd::Login { name, url, no_browser, client_id } => {
            let options = Options { open_browser: !no_browser, client_id, ..Options::default() };
            let session = Session::new(name.clone(), url, home).with_options(options);
            match rt.block_on(session.login())? {
                Login::Authorized => Ok(0),
                Login::NotRequired => {
                    eprintln!("latch: {name} answered without asking for authorization; nothing to do");
                    Ok(0)
                }
                Login::NotOAuth => {
                    eprintln!("latch: {name} asks for credentials but publishes no OAuth metadata");
                    Ok(1)
                }
            }
        }
        AuthCmd::Logout { name } => {
            let session = Session::new(name.clone(), String::new(), home);
            match rt.block_on(session.logout())? {
                None => {
                    eprintln!("latch: no tokens stored for {name}");
                    Ok(1)
                }
                Some(revoked) => {
                    let how = if revoked { "revoked and deleted" } else { "deleted" };
                    println!("{name}: tokens {how}");
                    Ok(0)
                }
            }
        }
        AuthCmd::Probe { name, url, login, count } => {
            let options = Options { interactive: login, open_browser: false, ..Options::default() };
            let session = Session::new(name, url.clone(), home).with_options(options);
            let mut all_ok = true;
            for _ in 0..count {
                let status = rt.block_on(probe(&session, &url))?;
                println!("{status}");
                all_ok &= status == 200;
            }
            Ok(if all_ok { 0 } else { 1 })
        }
    }
}

fn list(home: &std::path::Path, json: bool) -> anyhow::Result<i32> {
    let records = latch_remote::oauth::stored(home)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    if json {
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name, "url": r.server_url, "issuer": r.issuer,
                    "expires_at": r.expires_at, "refreshable": r.refresh_token.is_some(), "scope": r.scope,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if records.is_empty() {
        println!("no OAuth tokens stored");
        return Ok(0);
    }
    for r in records {
        let expiry = match r.expires_at {
            None => "no expiry given".to_owned(),
            Some(at) if at <= now => "expired".to_owned(),
            Some(at) => format!("expires in {}", human(at - now)),
        };
        let refresh = if r.refresh_token.is_some() { ", refreshable" } else { "" };
        let scope = r.scope.as_deref().unwrap_or("-");
        println!("{}\t{}\t{expiry}{refresh}\tscopes: {scope}", r.name, r.server_url);
    }
    Ok(0)
}

fn human(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        _ => format!("{} h", secs / 3600),
    }
}

/// What the bridge does for one request: the header, and on a 401 one
/// retry after the session has refreshed.
async fn probe(session: &Session, url: &str) -> anyhow::Result<u16> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "latch-auth-probe", "version": "0"}}
    });
    let mut retried = false;
    loop {
        let mut req = http.post(url).header("Accept", "application/json, text/event-stream").json(&body);
        if let Some(value) = session.authorization().await? {
            req = req.header("Authorization", value);
        }
        let resp = req.send().await.map_err(|e| anyhow::anyhow!("cannot reach the server: {}", e.without_url()))?;
        let status = resp.status().as_u16();
        if !matches!(status, 401 | 403) || retried {
            return Ok(status);
        }
        let header = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let again = if status == 401 {
            session.unauthorized(header.as_deref()).await?
        } else {
            session.forbidden(header.as_deref()).await?
        };
        if !again {
            return Ok(status);
        }
        retried = true;
    }
}
