//! The scripted agent's connection to one server through `latch shim`:
//! our own code speaking MCP over stdio.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use super::process::{ConsoleClosed, stop, stopping};

/// The scripted agent's connection to one server through `latch shim`.
pub(super) struct Agent {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    inbox: Receiver<Value>,
    next_id: u64,
}

impl Agent {
    pub(super) fn start(
        exe: &Path,
        name: &str,
        server: &[String],
        latch_home: &Path,
        workspace: &Path,
        log: std::fs::File,
    ) -> anyhow::Result<Agent> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(exe)
            .args(["shim", "--name", name, "--no-autostart", "--"])
            .args(server)
            .env("LATCH_HOME", latch_home)
            // The demo agent's project: its writes there are inside the workspace.
            .current_dir(workspace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start `latch shim` for {name}"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, inbox) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Agent { name: name.to_owned(), child, stdin, inbox, next_id: 1 })
    }

    pub(super) fn send(&mut self, msg: &Value) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("{} is closed", self.name))?;
        let mut line = serde_json::to_string(msg)?;
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .with_context(|| format!("the {} server went away; see servers.log", self.name))
    }

    pub(super) fn notify(&mut self, method: &str, params: Value) -> anyhow::Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
    }

    /// Sends a request and waits for its result; TICK runs about every
    /// 100 ms meanwhile. Requests from the server are answered "not
    /// supported": this agent offers no roots, sampling or elicitation.
    pub(super) fn request(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
        tick: &mut dyn FnMut(Duration) -> bool,
    ) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        let started = Instant::now();
        loop {
            if stopping() {
                bail!("interrupted");
            }
            if started.elapsed() > timeout {
                bail!("{} did not answer {method} within {} s", self.name, timeout.as_secs());
            }
            if !tick(started.elapsed()) {
                bail!(ConsoleClosed);
            }
            let msg = match self.inbox.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("the {} server closed its output; see servers.log", self.name)
                }
            };
            if msg.get("method").is_some() {
                if let Some(req_id) = msg.get("id") {
                    let error = json!({"code": -32601, "message": "the demo agent does not support this"});
                    self.send(&json!({"jsonrpc": "2.0", "id": req_id, "error": error}))?;
                }
                continue;
            }
            if msg.get("id") != Some(&json!(id)) {
                continue;
            }
            if let Some(e) = msg.get("error") {
                bail!("{} answered {method} with an error: {e}", self.name);
            }
            return Ok(msg.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    /// Closes stdin (the shim then stops its server and exits), waits, and
    /// escalates like an MCP client would.
    pub(super) fn close(&mut self) {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stop(&mut self.child, Duration::from_secs(3));
    }
}
