//! `latch hook AGENT`: a coding agent's pre-tool hook. Reads the hook's
//! JSON on stdin, asks the daemon, writes the answer in the agent's format
//! and exits (the pure parts are `latch_core::hook`).
//!
//! It always answers, and never in a way the agent reads as "the hook
//! failed, run the tool": a daemon that does not answer or is not ours, an
//! unreadable payload, an internal error, a panic (the panic hook answers)
//! and an approaching timeout (a watchdog thread answers before the
//! agent's own limit) all deny. Exactly one answer is written: the first
//! thread to answer exits the process.
//!
//! The daemon is asked over one connection, as a shim would ask (role
//! `hook`): hello, the built-in tool's definition, the call; an `ask` is
//! held until a person answers in Latch or the hold limit (below the
//! agent's timeout) passes, which denies and leaves the approval pending,
//! so the identical call goes through once approved.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use latch_core::hook::{self, Agent, Kind, Mapped, Target, Verdict};
use latch_proto::{ClientMsg, DaemonMsg, Decision, PROTOCOL_VERSION, Role, frame};

#[derive(clap::Args)]
pub struct HookArgs {
    /// The agent whose hook this is: claude-code, codex, gemini or copilot.
    agent: String,
    /// The agent's timeout for this hook, in seconds (what `latch install`
    /// wrote); Latch answers before it. Default: the agent's own default.
    #[arg(long)]
    timeout: Option<u64>,
    /// Let reads of files through while no daemon answers (default: nothing
    /// runs unchecked).
    #[arg(long)]
    allow_reads_offline: bool,
    /// Claude Code: hand Latch's asks to Claude Code's own permission prompt
    /// (interactive sessions) instead of holding them in Latch.
    #[arg(long)]
    ask_in_agent: bool,
}

/// Longest hook payload read (a Write tool's content can be large).
const MAX_INPUT: u64 = 64 * 1024 * 1024;

static AGENT: OnceLock<Agent> = OnceLock::new();
static ANSWERED: AtomicBool = AtomicBool::new(false);
/// Set once the payload is Claude Code's `PermissionRequest` (its own
/// dialog is on screen) or `PostToolUse` (the tool ran): a failure writes
/// nothing (the dialog stands) rather than a deny.
static PROMPT: AtomicBool = AtomicBool::new(false);

/// Claude Code's hook event after a tool ran.
const RAN_EVENT: &str = "PostToolUse";

/// Writes the answer and exits the process. Only the first caller
/// answers; any later one (the watchdog, a panic) waits for that exit.
fn answer(verdict: Verdict) -> ! {
    if ANSWERED.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    let agent = AGENT.get().copied().unwrap_or(Agent::ClaudeCode);
    // In a prompt, every `Deny` is a failure (Latch's own answers are
    // `PromptAllow` / `PromptDeny`): nothing is written, nothing allows.
    let verdict = match verdict {
        Verdict::Deny(_) if PROMPT.load(Ordering::SeqCst) => Verdict::Pass,
        v => v,
    };
    let reply = hook::reply(agent, &verdict);
    let mut code = reply.exit;
    let mut out = std::io::stdout().lock();
    if !reply.stdout.is_empty() && (out.write_all(reply.stdout.as_bytes()).is_err() || out.flush().is_err()) {
        // The JSON did not get out: exit 2 is a deny for every agent.
        code = 2;
    }
    let mut err = std::io::stderr().lock();
    let text = match &verdict {
        Verdict::Deny(r) if code == 2 && reply.stderr.is_empty() => format!("{r}\n"),
        _ => reply.stderr.clone(),
    };
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
    std::process::exit(code)
}

fn deny(text: impl Into<String>) -> Verdict {
    Verdict::Deny(text.into())
}

pub fn run(a: HookArgs) -> anyhow::Result<i32> {
    let Some(agent) = Agent::from_name(&a.agent) else {
        // No format to answer in: exit 2 is a deny for every agent.
        eprintln!(
            "latch hook: unknown agent `{}` (claude-code, codex, gemini, copilot); the tool did not run",
            a.agent
        );
        return Ok(2);
    };
    let _ = AGENT.set(agent);
    std::panic::set_hook(Box::new(|_| {
        answer(deny("Latch could not check this call (an internal error), so it did not run."));
    }));
    let timeout =
        Duration::from_millis(a.timeout.map(|s| s.saturating_mul(1000)).unwrap_or(agent.default_timeout_ms()));
    let start = Instant::now();
    // Answer a little before the agent gives up: it would run the tool.
    let margin = (timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(5));
    let budget = timeout.saturating_sub(margin);
    let watchdog = budget + margin / 2;
    std::thread::spawn(move || {
        std::thread::sleep(watchdog.saturating_sub(start.elapsed()));
        answer(deny("Latch could not decide this call in time, so it did not run."));
    });
    let verdict = std::panic::catch_unwind(|| decide(agent, &a, start + budget))
        .unwrap_or_else(|_| deny("Latch could not check this call (an internal error), so it did not run."));
    answer(verdict)
}

fn decide(agent: Agent, a: &HookArgs, deadline: Instant) -> Verdict {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().take(MAX_INPUT).read_to_end(&mut bytes) {
        return deny(format!("Latch could not read the hook input ({e}), so the call did not run."));
    }
    let input = match hook::read(agent, &bytes) {
        Ok(i) => i,
        Err(e) => return deny(format!("Latch could not read the hook input ({e}), so the call did not run.")),
    };
    let prompt = agent == Agent::ClaudeCode && input.is_permission_request();
    let ran = agent == Agent::ClaudeCode && input.event == RAN_EVENT;
    PROMPT.store(prompt || ran, Ordering::SeqCst);
    let home = std::env::var("HOME").ok().filter(|h| !h.is_empty());
    let target = hook::map(agent, &input, home.as_deref());
    let paths = match latch_proto::paths::Paths::from_env() {
        Ok(p) => p,
        Err(e) => return deny(format!("Latch could not find its files ({e}), so the call did not run.")),
    };
    // An MCP call no shim guards is decided as that server's call.
    let name = match &target {
        Target::Builtin(_) | Target::MaybeMcp(_) => agent.name().to_owned(),
        Target::Mcp { server, .. } => server.clone(),
    };
    let session = format!("{}:{}", agent.name(), input.session);
    let hello = ClientMsg::Hello {
        protocol: PROTOCOL_VERSION,
        role: Role::Hook,
        name,
        pid: std::process::id(),
        session,
        command: vec![
            agent.name().to_owned(),
            input.cwd.clone(),
            input.tool_use_id.clone(),
            input.event.clone(),
            asked_tool(&target).to_owned(),
        ],
    };
    let mut link = match Link::open(&paths.socket, &hello, deadline) {
        Ok(l) => l,
        Err(why) => {
            if a.allow_reads_offline
                && let Target::Builtin(m) = &target
                && m.kind == Kind::Read
            {
                // Self-protection still holds offline: Latch's own files are private.
                return match offline_guard(&paths, home.as_deref(), m) {
                    None => Verdict::Allow,
                    Some(why) => deny(format!("Latch denied {} while offline: {why}.", input.tool)),
                };
            }
            return deny(format!(
                "Latch could not check {} ({why}), so it did not run. A person must get Latch's daemon running; \
                 then retry.",
                input.tool
            ));
        }
    };
    if ran {
        // Saying hello was the message: the daemon withdraws this session's
        // prompts for the tool (Claude Code's own dialog was answered).
        return Verdict::Pass;
    }
    if prompt {
        return answer_prompt(&mut link, &target, &input.tool, deadline);
    }
    // Claude Code may be handed the ask instead of Latch holding it.
    let hold = !(a.ask_in_agent && agent == Agent::ClaudeCode);
    let result = match &target {
        Target::Builtin(m) => link.decide(m, deadline, hold),
        Target::Mcp { server, tool, args } => match link.shims(deadline) {
            Ok(shims) if shims.iter().any(|s| s == server) => return Verdict::Pass,
            Ok(_) => {
                let m = Mapped { kind: Kind::Other, tool: tool.clone(), def: None, args: args.clone() };
                link.decide(&m, deadline, hold)
            }
            Err(e) => Err(e),
        },
        Target::MaybeMcp(m) => match link.shims(deadline) {
            Ok(shims) if shims.iter().any(|s| m.tool.strip_prefix(s.as_str()).is_some_and(|r| r.starts_with('-'))) => {
                return Verdict::Pass;
            }
            Ok(_) => link.decide(m, deadline, hold),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(Outcome::Allow) => Verdict::Allow,
        Ok(Outcome::Deny(reason)) => {
            deny(format!("Latch denied {}: {reason}. This was decided in Latch; the call did not run.", input.tool))
        }
        Ok(Outcome::Held { approval_id, reason, call_id }) => {
            if !hold {
                link.send(&ClientMsg::Cancelled { call_id });
                return Verdict::AgentAsk(format!("Latch asks a person to decide: {reason}"));
            }
            link.send(&ClientMsg::HoldExpired { call_id });
            deny(format!(
                "Latch is holding {} for a person: approval {approval_id} is pending ({reason}). It did not run. \
                 Once a person approves it in Latch, the identical call will go through.",
                input.tool
            ))
        }
        Err(why) => deny(format!("Latch could not check {} ({why}), so it did not run.", input.tool)),
    }
}

/// The tool name a call of TARGET is decided under.
fn asked_tool(target: &Target) -> &str {
    match target {
        Target::Builtin(m) | Target::MaybeMcp(m) => &m.tool,
        Target::Mcp { tool, .. } => tool,
    }
}

/// Claude Code's `PermissionRequest`: Claude Code shows its own dialog and
/// runs this hook beside it. The daemon turns the call into a pending
/// approval (even where its policy allows: Claude Code asks, so a person
/// decides), held until a person answers in Latch or the deadline. A
/// person's allow or deny is Claude Code's answer; anything else writes
/// nothing, and Claude Code's dialog stands. When Claude Code's dialog is
/// answered first, the approval is withdrawn: "No" ends this process (the
/// daemon sees the connection close), "Yes" runs the tool, whose
/// `PostToolUse` hook makes the daemon withdraw it and end this wait.
fn answer_prompt(link: &mut Link, target: &Target, tool: &str, deadline: Instant) -> Verdict {
    let result = match target {
        Target::Builtin(m) | Target::MaybeMcp(m) => link.decide(m, deadline, true),
        Target::Mcp { tool, args, .. } => {
            let m = Mapped { kind: Kind::Other, tool: tool.clone(), def: None, args: args.clone() };
            link.decide(&m, deadline, true)
        }
    };
    match result {
        Ok(Outcome::Allow) => Verdict::PromptAllow,
        Ok(Outcome::Deny(reason)) => Verdict::PromptDeny(format!(
            "Latch denied {tool}: {reason}. This was decided in Latch; the call did not run."
        )),
        // Unanswered or failed: Claude Code's own dialog decides.
        Ok(Outcome::Held { .. }) | Err(_) => Verdict::Pass,
    }
}

/// Built-in self-protection on a read that passes while no daemon answers:
/// the reason when it touches Latch's own files or the agents' hook settings.
fn offline_guard(paths: &latch_proto::paths::Paths, home: Option<&str>, m: &Mapped) -> Option<String> {
    let exe = std::env::current_exe().ok();
    let mut protected = latch_core::policy::Protected::from_paths(
        &latch_daemon::wire::latch_paths(paths),
        home.map(std::path::Path::new),
        exe.as_deref(),
    );
    if let Some(h) = home {
        protected.paths.extend(hook::settings_files(h));
    }
    let mut policy = latch_core::Policy::builtin();
    policy.set_protected(protected);
    let def = m.def.as_ref().and_then(latch_core::ToolDef::from_value);
    let call = latch_core::Call { server: "offline", tool: &m.tool, args: &m.args };
    let verdict = latch_core::decide(&policy, &call, def.as_ref());
    (verdict.evaluation.decision == latch_core::Decision::Deny).then(|| verdict.evaluation.reasons.join("; "))
}

enum Outcome {
    Allow,
    Deny(String),
    /// Asked, and not answered within the hold limit.
    Held {
        approval_id: String,
        reason: String,
        call_id: String,
    },
}

/// One connection to the daemon, blocking: no runtime to start.
struct Link {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    line: Vec<u8>,
}

impl Link {
    /// Connects, checks the daemon runs as this user, says hello.
    fn open(socket: &std::path::Path, hello: &ClientMsg, deadline: Instant) -> Result<Link, String> {
        let stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                "no Latch daemon is running".to_owned()
            }
            _ => format!("cannot reach Latch's daemon: {e}"),
        })?;
        verify_peer(&stream)?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut link = Link { reader: BufReader::with_capacity(64 * 1024, stream), writer, line: Vec::new() };
        link.write(&frame::encode(hello))?;
        match link.recv(deadline)? {
            DaemonMsg::Welcome { .. } => Ok(link),
            DaemonMsg::Refused { reason } => Err(format!("the daemon refused: {reason}")),
            _ => Err("the daemon answered something unexpected".to_owned()),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.writer.write_all(bytes).map_err(|e| format!("lost the daemon: {e}"))
    }

    fn send(&mut self, msg: &ClientMsg) {
        let _ = self.write(&frame::encode(msg));
    }

    fn recv(&mut self, deadline: Instant) -> Result<DaemonMsg, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no answer in time".to_owned());
        }
        self.reader.get_ref().set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        self.line.clear();
        match self.reader.read_until(b'\n', &mut self.line) {
            Ok(0) => Err("the daemon closed the connection".to_owned()),
            Ok(_) => frame::decode(&self.line).map_err(|e| e.to_string()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Err("no answer in time".to_owned())
            }
            Err(e) => Err(format!("lost the daemon: {e}")),
        }
    }

    /// The names of the shims connected now (hooks are not listed).
    fn shims(&mut self, deadline: Instant) -> Result<Vec<String>, String> {
        self.write(&frame::encode(&ClientMsg::Status { req: 2 }))?;
        loop {
            match self.recv(deadline)? {
                DaemonMsg::Status { req: 2, status } => {
                    return Ok(status.shims.into_iter().map(|s| s.server).collect());
                }
                DaemonMsg::Error { req: 2, message } => return Err(message),
                _ => {}
            }
        }
    }

    /// The tool's definition and the call in one write; then the decision,
    /// and for an ask (when HOLD), the person's answer until the hold limit.
    fn decide(&mut self, m: &Mapped, deadline: Instant, hold: bool) -> Result<Outcome, String> {
        let mut out = Vec::new();
        if let Some(def) = &m.def {
            let tools = serde_json::value::to_raw_value(&[def]).map_err(|e| e.to_string())?;
            out.extend(frame::encode(&ClientMsg::ToolsListed { tools, first_page: false }));
        }
        let args = serde_json::to_string(&m.args).map_err(|e| e.to_string())?;
        out.extend(frame::encode_decide(1, &m.tool, &args, false));
        self.write(&out)?;
        let (call_id, reason, approval_id, hold_ms) = loop {
            match self.recv(deadline)? {
                DaemonMsg::Decision { req: 1, call_id, decision, reason, approval_id, hold_ms, .. } => match decision {
                    Decision::Allow => return Ok(Outcome::Allow),
                    Decision::Deny => return Ok(Outcome::Deny(reason)),
                    Decision::Ask => break (call_id, reason, approval_id.unwrap_or_default(), hold_ms.unwrap_or(0)),
                },
                DaemonMsg::Error { req: 1, message } => return Err(message),
                _ => {}
            }
        };
        if !hold {
            return Ok(Outcome::Held { approval_id, reason, call_id });
        }
        let held_until = (Instant::now() + Duration::from_millis(hold_ms)).min(deadline);
        loop {
            match self.recv(held_until) {
                Ok(DaemonMsg::Resolved { call_id: c, decision, reason: why, .. }) if c == call_id => {
                    return Ok(match decision {
                        Decision::Allow => Outcome::Allow,
                        Decision::Deny => Outcome::Deny(if why.is_empty() { "a person denied it".into() } else { why }),
                        // Still pending (the daemon's hold ran out, or a
                        // prompt was withdrawn): no answer now.
                        Decision::Ask => Outcome::Held { approval_id, reason, call_id },
                    });
                }
                Ok(_) => {}
                Err(_) if Instant::now() >= held_until => return Ok(Outcome::Held { approval_id, reason, call_id }),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The daemon must be the user's own and run Latch (the same executable
/// file as this hook): anything else bound at the socket, another user's
/// process or an impostor started after the daemon was killed, would
/// answer for Latch.
fn verify_peer(stream: &UnixStream) -> Result<(), String> {
    use std::os::fd::AsFd;
    latch_proto::peer::verify_daemon(stream.as_fd())
        .map(|_| ())
        .map_err(|e| format!("the process behind Latch's socket is not Latch's daemon ({e}); a person must stop it"))
}

/// What `latch policy explain --hook AGENT FILE` decides: the server, tool,
/// arguments and definition `latch hook AGENT` would send for that payload.
pub fn explain_inputs(
    agent: &str,
    payload: &std::path::Path,
) -> anyhow::Result<(String, String, serde_json::Value, Option<latch_core::ToolDef>)> {
    let agent = Agent::from_name(agent)
        .ok_or_else(|| anyhow::anyhow!("unknown agent `{agent}`: use claude-code, codex, gemini or copilot"))?;
    let bytes = std::fs::read(payload).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", payload.display()))?;
    let input = hook::read(agent, &bytes)?;
    let home = std::env::var("HOME").ok().filter(|h| !h.is_empty());
    Ok(match hook::map(agent, &input, home.as_deref()) {
        Target::Builtin(m) | Target::MaybeMcp(m) => {
            let def = m.def.as_ref().and_then(latch_core::ToolDef::from_value);
            (agent.name().to_owned(), m.tool, m.args, def)
        }
        Target::Mcp { server, tool, args } => (server, tool, args, None),
    })
}
