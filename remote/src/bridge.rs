//! The stdio side: newline-delimited JSON-RPC in from the shim, each
//! message sent over the chosen HTTP transport, everything the server
//! sends written back one line per message.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::conn::{Conn, State};
use crate::headers::{ConfigHeaders, HeaderError};
use crate::message::{Kind, Peek};
use crate::oauth::Session;
use crate::sse::Sse;
use crate::streamable::{Posted, Streamable};

/// Which HTTP transport to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP, falling back to HTTP+SSE when the first POST is
    /// refused with a 4xx.
    Auto,
    Streamable,
    Sse,
}

pub struct Options {
    pub name: String,
    pub url: String,
    /// `Name: value` templates; `${VAR}` is expanded here, at run time.
    pub headers: Vec<String>,
    pub transport: Transport,
    pub max_message: usize,
    /// The Latch home (OAuth keeps its tokens there).
    pub home: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("--url {0:?} is not an http:// or https:// URL")]
    Url(String),
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("cannot start: {0}")]
    Start(String),
}

/// How long connecting may take. Requests themselves have no time limit:
/// the client's own rules decide how long a call may run, as for stdio.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the bridge until the client closes stdin (0) or the server's
/// HTTP+SSE stream ends (1).
pub fn run(opts: Options) -> Result<i32, BridgeError> {
    // `${VAR}` in the URL too (a client that expands it itself leaves none).
    let lookup = |v: &str| std::env::var(v).ok();
    let url = crate::headers::expand(&opts.url, "the URL", &lookup)
        .map_err(|_| BridgeError::Url(crate::conn::redact_url_text(&opts.url)))?;
    let url = Url::parse(&url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
    let url = url.ok_or_else(|| BridgeError::Url(crate::conn::redact_url_text(&opts.url)))?;
    let headers = ConfigHeaders::parse(&opts.headers, |v| std::env::var(v).ok())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BridgeError::Start(e.to_string()))?;
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect would carry the configured headers to wherever
            // the server points; an MCP endpoint has no reason to move.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BridgeError::Start(e.to_string()))?;
        let (out, rx) = mpsc::channel(256);
        let writer = tokio::spawn(write_out(rx));
        // The browser step runs on first use only (see `Options::reprompt`).
        let oauth = Session::new(opts.name.clone(), url.to_string(), opts.home.clone())
            .with_options(crate::oauth::Options { reprompt: false, ..Default::default() });
        let conn = Arc::new(Conn {
            name: opts.name,
            client,
            url,
            headers,
            oauth,
            out,
            state: Mutex::new(State::default()),
            max_message: opts.max_message,
        });
        let code = relay(conn, opts.transport).await;
        let _ = writer.await;
        Ok(code)
    })
}

enum Active {
    Streamable(Arc<Streamable>),
    Sse(Arc<Sse>),
    /// No transport could be set up: every request gets this answer.
    Dead(String),
}

async fn relay(conn: Arc<Conn>, choice: Transport) -> i32 {
    let mut stdin = BufReader::with_capacity(64 * 1024, tokio::io::stdin());
    let mut active: Option<Active> = None;
    let (gone_tx, mut gone) = mpsc::channel::<()>(1);
    let mut tasks = tokio::task::JoinSet::new();
    let turns = Arc::new(tokio::sync::Semaphore::new(crate::streamable::MAX_IN_FLIGHT));
    let mut line = Vec::new();
    let code = loop {
        // Finished tasks are reaped here, or a long session would keep one
        // entry per request it ever made.
        while tasks.try_join_next().is_some() {}
        line.clear();
        let n = tokio::select! {
            n = stdin.read_until(b'\n', &mut line) => n.unwrap_or(0),
            _ = gone.recv() => break 1,
        };
        if n == 0 {
            break 0;
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        let msg = line.clone();
        let peek = Peek::of(&msg);
        let act = match active.take() {
            Some(a) => a,
            None => {
                let a = first(&conn, choice, msg, &peek, &gone_tx, &mut tasks).await;
                active = Some(a);
                continue;
            }
        };
        match &act {
            // Requests run side by side (a long call must not hold up the
            // next message); the wait for a turn is in the task, so stdin
            // keeps being read (a server request's answer may be next).
            Active::Streamable(s) if matches!(peek.kind, Kind::Request { .. }) => {
                let (s, turns) = (s.clone(), turns.clone());
                tasks.spawn(async move {
                    let _turn = turns.acquire_owned().await;
                    s.post(msg, &peek, false).await;
                });
            }
            Active::Streamable(s) => {
                s.post(msg, &peek, false).await;
            }
            Active::Sse(s) if matches!(peek.kind, Kind::Request { .. }) => {
                let (s, turns) = (s.clone(), turns.clone());
                tasks.spawn(async move {
                    let _turn = turns.acquire_owned().await;
                    s.post(msg, &peek).await
                });
            }
            Active::Sse(s) => s.post(msg, &peek).await,
            Active::Dead(why) => {
                conn.sending(&peek);
                if let Some(id) = peek.request_id() {
                    conn.fail(id, why).await;
                }
            }
        }
        active = Some(act);
    };
    if let Some(Active::Streamable(s)) = &active {
        s.close().await;
    }
    tasks.abort_all();
    drop(active);
    code
}

/// The first message chooses (and, in auto mode, probes) the transport.
async fn first(
    conn: &Arc<Conn>,
    choice: Transport,
    msg: Vec<u8>,
    peek: &Peek,
    gone: &mpsc::Sender<()>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Active {
    let streamable = Arc::new(Streamable::new(conn.clone()));
    let refused = match choice {
        Transport::Sse => None,
        Transport::Streamable | Transport::Auto => {
            match streamable.post(msg.clone(), peek, choice == Transport::Auto).await {
                Posted::Done => {
                    let st = conn.state();
                    if st.session_id.is_some() || st.protocol_version.is_some() {
                        tasks.spawn(streamable.clone().listen());
                    }
                    return Active::Streamable(streamable);
                }
                Posted::NotStreamable(why) => Some(why),
            }
        }
    };
    match Sse::connect(conn.clone()).await {
        Ok((sse, stream)) => {
            let gone = gone.clone();
            let c = conn.clone();
            tasks.spawn(async move {
                Sse::relay(c, stream).await;
                let _ = gone.send(()).await;
            });
            let sse = Arc::new(sse);
            sse.post(msg, peek).await;
            Active::Sse(sse)
        }
        Err(e) => {
            let why = match refused {
                Some(r) => format!("as a streamable HTTP server: {r}; as an HTTP+SSE server: {e}"),
                None => e,
            };
            conn.sending(peek);
            if let Some(id) = peek.request_id() {
                conn.fail(id, &why).await;
            }
            Active::Dead(why)
        }
    }
}

async fn write_out(mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut stdout = tokio::io::stdout();
    while let Some(mut line) = rx.recv().await {
        line.push(b'\n');
        if stdout.write_all(&line).await.is_err() {
            return;
        }
        while let Ok(mut more) = rx.try_recv() {
            more.push(b'\n');
            if stdout.write_all(&more).await.is_err() {
                return;
            }
        }
        if stdout.flush().await.is_err() {
            return;
        }
    }
}
