//! An in-process daemon on a temporary home: started on a current-thread
//! runtime of its own (as `latch daemon` runs it), stopped when dropped.

use std::time::{Duration, Instant};

use latch_daemon::{Daemon, Options};
use latch_proto::client::{self, Hello, Reader, Writer};
use latch_proto::paths::Paths;
use latch_proto::{ClientMsg, DaemonMsg, Role};

use super::TempHome;

pub struct Running {
    pub paths: Paths,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _home: TempHome,
}

/// Starts a daemon whose policy file says `policy` (the defaults when None).
pub fn start(name: &str, policy: Option<&str>, options: Options) -> Running {
    let home = TempHome::new(name);
    let paths = Paths::resolve(Some(home.0.clone()), None).unwrap();
    if let Some(p) = policy {
        std::fs::write(&paths.policy, p).unwrap();
    }
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let p = paths.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let daemon = Daemon::start(p, options).await.expect("the daemon starts");
            ready_tx.send(()).unwrap();
            let _ = stop_rx.await;
            daemon.stop().await;
        });
    });
    ready_rx.recv_timeout(Duration::from_secs(30)).expect("the daemon is ready");
    Running { paths, stop: Some(stop_tx), thread: Some(thread), _home: home }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Options for tests: no desktop or Telegram channel.
pub fn quiet() -> Options {
    Options { channels: false, ..Options::default() }
}

pub async fn shim(paths: &Paths, server: &str, session: &str) -> (Reader, Writer) {
    let hello = Hello { role: Role::Shim, name: server.into(), session: session.into(), command: Vec::new() };
    client::connect(paths, &hello).await.expect("the shim connects")
}

/// Asks for a decision on `tool` and waits for it; returns the answer and
/// how long it took.
pub async fn decide(
    r: &mut Reader,
    w: &mut Writer,
    req: u64,
    tool: &str,
    args: serde_json::Value,
) -> (DaemonMsg, Duration) {
    let t = Instant::now();
    w.send(&ClientMsg::Decide { req, tool: tool.into(), args, retry: false }).await.unwrap();
    loop {
        let msg = r.recv().await.unwrap();
        if client::reply_req(&msg) == Some(req) {
            return (msg, t.elapsed());
        }
    }
}
