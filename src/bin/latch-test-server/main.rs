//! `latch-test-server`: the MCP server Latch's own tests and benchmarks talk to.
//!
//! A stdio MCP server (one JSON-RPC 2.0 message per line on stdin/stdout,
//! nothing else on stdout, diagnostics on stderr) built on `std` and
//! `serde_json` only, so it starts in a millisecond and adds no noise to a
//! latency benchmark: it is the "minimal echo MCP server" of the speed bench.
//!
//! # Protocol
//! - `initialize`: speaks 2025-06-18 and 2025-11-25; echoes the client's
//!   version when it is one of those, answers 2025-11-25 otherwise.
//! - `server/discover` (2026-07-28): lists every version above plus
//!   2026-07-28; a discover that asks for an unknown version gets -32022 with
//!   `{supported, requested}`. A request that carries
//!   `_meta["io.modelcontextprotocol/protocolVersion"] = "2026-07-28"` is
//!   answered in that revision's shape (`resultType`, and `ttlMs`/`cacheScope`
//!   on cacheable results).
//! - `ping`, `notifications/initialized`, `notifications/cancelled` (stops a
//!   running `slow` call, which then sends no response).
//! - `tools/list`, paginated when `LATCH_TEST_PAGE_SIZE=N` is set (opaque
//!   `nextCursor`; a cursor we did not hand out gets -32602).
//! - `tools/call` on the tools below; an unknown tool gets -32602.
//! - Unknown method: -32601. A line that is not JSON: -32700 with id null. A
//!   JSON value that is not a request, notification or response (a batch
//!   array, a number…): -32600 with id null.
//!
//! # Tools, one per action class, with realistic definitions
//! | tool | arguments | class meant | effect |
//! |---|---|---|---|
//! | `read_file` | path | READ | reads the file for real |
//! | `write_file` | path, content | WRITE | writes the file for real |
//! | `send_email` | to, cc?, subject, body | SEND | simulated |
//! | `run_command` | command | EXECUTE | simulated, never executed |
//! | `create_pull_request` | repo, title, head, base | SUBMIT | simulated |
//! | `create_payment` | amount, currency, recipient | TRANSFER_VALUE | simulated |
//! | `echo` | anything | READ | returns its arguments as JSON text |
//! | `big` | bytes | READ | returns a text of exactly `bytes` bytes |
//! | `slow` | ms | READ | answers after `ms` milliseconds, with progress |
//! | `fail` | – | READ | a result with `isError: true` |
//! | `crash` | – | READ | the process exits with status 3, no answer |
//! | `ask_roots` | – | READ | asks the client `roots/list`, returns its answer |
//!
//! `slow` runs on its own thread so other requests are answered meanwhile
//! (responses then arrive out of order, as with real servers); it sends
//! `notifications/progress` every 100 ms when the request carries
//! `_meta.progressToken`. `ask_roots` sends a server-to-client `roots/list`
//! whose ids count from 0, deliberately overlapping the client's ids; on a
//! 2026-07-28 request it answers `resultType: "input_required"` instead and
//! completes when the client re-sends the call with `inputResponses.roots`.
//!
//! # What reached the server
//! When `LATCH_TEST_RECORD=FILE` is set, every `tools/call` that reaches the
//! server (known tool or not) is appended to FILE as one JSON line
//! `{"time", "id", "name", "arguments"}` before it runs, flushed at once. Tests
//! read it to prove that a denied or unanswered call never arrived.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

mod tools;
use tools::{INSTRUCTIONS, capabilities, server_info, tool_definitions};

const SERVER_NAME: &str = "latch-test-server";
const HANDSHAKE_VERSIONS: [&str; 2] = ["2025-06-18", "2025-11-25"];
const MODERN_VERSION: &str = "2026-07-28";
const VERSION_META_KEY: &str = "io.modelcontextprotocol/protocolVersion";
const SERVER_INFO_META_KEY: &str = "io.modelcontextprotocol/serverInfo";

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Largest text `big` agrees to build (64 MiB).
const BIG_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Longest sleep `slow` agrees to (10 minutes).
const SLOW_MAX_MS: u64 = 600_000;
/// Interval between progress notifications of `slow`.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// Exit status of the `crash` tool.
const CRASH_STATUS: i32 = 3;

fn main() {
    let mut server = Server::new();
    let stdin = io::stdin();
    let mut line = String::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => {
                eprintln!("{SERVER_NAME}: reading stdin failed: {err}");
                break;
            }
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        server.handle_line(text);
    }
}

/// Writes one message as one line on stdout; exits quietly when the client is gone.
fn send(message: &Value) {
    let mut text = serde_json::to_string(message).expect("a JSON value always serialises");
    text.push('\n');
    let mut out = io::stdout().lock();
    if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn respond(id: &Value, result: Value) {
    send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
}

fn respond_error(id: &Value, code: i64, message: &str, data: Option<Value>) {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    send(&json!({"jsonrpc": "2.0", "id": id, "error": error}));
}

/// Which revision of the protocol a request asked to be answered in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Era {
    /// 2025-06-18 / 2025-11-25, after an `initialize` handshake.
    Handshake,
    /// 2026-07-28: every request names its version in `_meta`.
    Modern,
}

impl Era {
    fn of(params: &Value) -> Era {
        match params.pointer("/_meta").and_then(|meta| meta.get(VERSION_META_KEY)) {
            Some(Value::String(v)) if v == MODERN_VERSION => Era::Modern,
            _ => Era::Handshake,
        }
    }

    /// Adds the fields this era requires on every result.
    fn finish(self, mut result: Value, cacheable: bool) -> Value {
        if self == Era::Modern
            && let Some(obj) = result.as_object_mut()
        {
            obj.entry("resultType").or_insert_with(|| json!("complete"));
            if cacheable {
                obj.insert("ttlMs".into(), json!(0));
                obj.insert("cacheScope".into(), json!("private"));
            }
        }
        result
    }
}

/// A server-to-client request we are waiting on, and the call it serves.
struct Outgoing {
    call_id: Value,
    era: Era,
}

struct Server {
    record: Option<File>,
    page_size: Option<usize>,
    /// Next id for server-to-client requests (counts from 0, like server-everything).
    next_out_id: u64,
    outgoing: HashMap<u64, Outgoing>,
    /// Ids (as JSON text) of running `slow` calls the client cancelled.
    cancelled: Arc<Mutex<HashSet<String>>>,
    /// Counter for the simulated effects' identifiers.
    effects: u64,
}

impl Server {
    fn new() -> Server {
        let record = std::env::var_os("LATCH_TEST_RECORD").map(|path| {
            OpenOptions::new().create(true).append(true).open(&path).unwrap_or_else(|err| {
                eprintln!("{SERVER_NAME}: cannot open LATCH_TEST_RECORD {}: {err}", path.to_string_lossy());
                std::process::exit(2);
            })
        });
        let page_size =
            std::env::var("LATCH_TEST_PAGE_SIZE").ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0);
        Server {
            record,
            page_size,
            next_out_id: 0,
            outgoing: HashMap::new(),
            cancelled: Arc::new(Mutex::new(HashSet::new())),
            effects: 0,
        }
    }

    fn handle_line(&mut self, text: &str) {
        let message: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(err) => {
                respond_error(&Value::Null, PARSE_ERROR, &format!("Parse error: {err}"), None);
                return;
            }
        };
        let Some(obj) = message.as_object() else {
            let what = if message.is_array() {
                "Invalid Request: JSON-RPC batches are not supported"
            } else {
                "Invalid Request: expected a JSON object"
            };
            respond_error(&Value::Null, INVALID_REQUEST, what, None);
            return;
        };
        let id = obj.get("id").cloned();
        match (obj.get("method"), id) {
            (Some(Value::String(method)), Some(id)) => {
                let params = obj.get("params").cloned().unwrap_or(Value::Null);
                self.handle_request(&id, method, &params);
            }
            (Some(Value::String(method)), None) => {
                let params = obj.get("params").cloned().unwrap_or(Value::Null);
                self.handle_notification(method, &params);
            }
            (None, Some(id)) if obj.contains_key("result") || obj.contains_key("error") => {
                self.handle_response(&id, obj);
            }
            (_, id) => respond_error(&id.unwrap_or(Value::Null), INVALID_REQUEST, "Invalid Request: no method", None),
        }
    }

    fn handle_notification(&mut self, method: &str, params: &Value) {
        if method == "notifications/cancelled"
            && let Some(request_id) = params.get("requestId")
        {
            self.cancelled.lock().expect("cancel set lock").insert(request_id.to_string());
        }
        // notifications/initialized and anything else: nothing to do.
    }

    fn handle_response(&mut self, id: &Value, obj: &Map<String, Value>) {
        let Some(out) = id.as_u64().and_then(|n| self.outgoing.remove(&n)) else {
            eprintln!("{SERVER_NAME}: response to an unknown request id {id}");
            return;
        };
        if let Some(result) = obj.get("result") {
            respond(&out.call_id, out.era.finish(roots_result(result), false));
        } else {
            let error = obj.get("error").cloned().unwrap_or(Value::Null);
            let text = format!("The client refused roots/list: {error}");
            respond(&out.call_id, out.era.finish(tool_error(&text), false));
        }
    }

    fn handle_request(&mut self, id: &Value, method: &str, params: &Value) {
        let era = Era::of(params);
        match method {
            "initialize" => {
                let asked = params.get("protocolVersion").and_then(Value::as_str);
                let version = match asked {
                    Some(v) if HANDSHAKE_VERSIONS.contains(&v) => v,
                    _ => HANDSHAKE_VERSIONS[HANDSHAKE_VERSIONS.len() - 1],
                };
                respond(
                    id,
                    json!({
                        "protocolVersion": version,
                        "capabilities": capabilities(),
                        "serverInfo": server_info(),
                        "instructions": INSTRUCTIONS,
                    }),
                );
            }
            "server/discover" => self.discover(id, params),
            "ping" => respond(id, era.finish(json!({}), false)),
            "tools/list" => self.list_tools(id, params, era),
            "tools/call" => self.call_tool(id, params, era),
            _ => respond_error(id, METHOD_NOT_FOUND, &format!("Method not found: {method}"), None),
        }
    }

    fn discover(&mut self, id: &Value, params: &Value) {
        let mut supported: Vec<&str> = HANDSHAKE_VERSIONS.to_vec();
        supported.push(MODERN_VERSION);
        let asked = params.pointer("/_meta").and_then(|meta| meta.get(VERSION_META_KEY)).and_then(Value::as_str);
        if let Some(asked) = asked
            && !supported.contains(&asked)
        {
            respond_error(
                id,
                UNSUPPORTED_PROTOCOL_VERSION,
                &format!("Unsupported protocol version: {asked}"),
                Some(json!({"supported": supported, "requested": asked})),
            );
            return;
        }
        let mut meta = Map::new();
        meta.insert(SERVER_INFO_META_KEY.into(), server_info());
        respond(
            id,
            json!({
                "supportedVersions": supported,
                "capabilities": capabilities(),
                "instructions": INSTRUCTIONS,
                "resultType": "complete",
                "ttlMs": 0,
                "cacheScope": "public",
                "_meta": meta,
            }),
        );
    }

    fn list_tools(&mut self, id: &Value, params: &Value, era: Era) {
        let tools = tool_definitions();
        let (start, end) = match self.page_size {
            None => (0, tools.len()),
            Some(size) => {
                let start = match params.get("cursor") {
                    None | Some(Value::Null) => 0,
                    Some(cursor) => match parse_cursor(cursor, tools.len()) {
                        Some(start) => start,
                        None => {
                            respond_error(id, INVALID_PARAMS, &format!("Invalid cursor: {cursor}"), None);
                            return;
                        }
                    },
                };
                (start, (start + size).min(tools.len()))
            }
        };
        let mut result = json!({"tools": tools[start..end]});
        if end < tools.len() {
            result["nextCursor"] = json!(format!("page-{end}"));
        }
        respond(id, era.finish(result, true));
    }

    fn call_tool(&mut self, id: &Value, params: &Value, era: Era) {
        let name = params.get("name").and_then(Value::as_str);
        let arguments = params.get("arguments").cloned().unwrap_or_else(|| json!({}));
        self.record(id, name, &arguments);
        let Some(name) = name else {
            respond_error(id, INVALID_PARAMS, "tools/call needs a string `name`", None);
            return;
        };
        if !arguments.is_object() {
            respond_error(id, INVALID_PARAMS, "`arguments` must be an object", None);
            return;
        }
        let result = match name {
            "read_file" => required_str(&arguments, "path").map(|path| match std::fs::read_to_string(path) {
                Ok(text) => tool_text(&text),
                Err(err) => tool_error(&format!("Cannot read {path}: {err}")),
            }),
            "write_file" => required_str(&arguments, "path").and_then(|path| {
                let content = required_str(&arguments, "content")?;
                Ok(match std::fs::write(path, content) {
                    Ok(()) => tool_text(&format!("Wrote {} bytes to {path}", content.len())),
                    Err(err) => tool_error(&format!("Cannot write {path}: {err}")),
                })
            }),
            "send_email" => required_str(&arguments, "to").and_then(|to| {
                let subject = required_str(&arguments, "subject")?;
                required_str(&arguments, "body")?;
                let n = self.effect();
                Ok(tool_text(&format!("Email \"{subject}\" sent to {to} (message id msg-{n})")))
            }),
            "run_command" => required_str(&arguments, "command")
                .map(|command| tool_text(&format!("$ {command}\n(simulated: exit status 0, no output)"))),
            "create_pull_request" => required_str(&arguments, "repo").and_then(|repo| {
                let title = required_str(&arguments, "title")?;
                let head = required_str(&arguments, "head")?;
                let base = required_str(&arguments, "base")?;
                let n = self.effect();
                Ok(tool_text(&format!("Opened pull request #{n} \"{title}\" in {repo}: {head} -> {base}")))
            }),
            "create_payment" => required_str(&arguments, "currency").and_then(|currency| {
                let recipient = required_str(&arguments, "recipient")?;
                let amount = arguments
                    .get("amount")
                    .filter(|a| a.is_number())
                    .ok_or_else(|| "`amount` must be a number".to_string())?;
                let n = self.effect();
                Ok(tool_text(&format!("Paid {amount} {currency} to {recipient} (payment id pay_{n})")))
            }),
            "echo" => Ok(tool_text(&arguments.to_string())),
            "big" => match arguments.get("bytes").and_then(Value::as_u64) {
                Some(n) if n <= BIG_MAX_BYTES => Ok(tool_text(&big_text(n as usize))),
                _ => Err(format!("`bytes` must be an integer from 0 to {BIG_MAX_BYTES}")),
            },
            "slow" => match arguments.get("ms").and_then(Value::as_u64) {
                Some(ms) if ms <= SLOW_MAX_MS => {
                    self.start_slow(id, params, ms, era);
                    return;
                }
                _ => Err(format!("`ms` must be an integer from 0 to {SLOW_MAX_MS}")),
            },
            "fail" => Ok(tool_error("The tool failed, as `fail` always does.")),
            "crash" => {
                eprintln!("{SERVER_NAME}: crash tool called, exiting with status {CRASH_STATUS}");
                std::process::exit(CRASH_STATUS);
            }
            "ask_roots" => {
                self.ask_roots(id, params, era);
                return;
            }
            other => {
                respond_error(id, INVALID_PARAMS, &format!("Unknown tool: {other}"), None);
                return;
            }
        };
        match result {
            Ok(result) => respond(id, era.finish(result, false)),
            Err(message) => respond_error(id, INVALID_PARAMS, &message, None),
        }
    }

    fn effect(&mut self) -> u64 {
        self.effects += 1;
        self.effects
    }

    fn record(&mut self, id: &Value, name: Option<&str>, arguments: &Value) {
        let Some(file) = self.record.as_mut() else {
            return;
        };
        let line = json!({
            "time": rfc3339_now(),
            "id": id,
            "name": name,
            "arguments": arguments,
        });
        let mut text = line.to_string();
        text.push('\n');
        if let Err(err) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
            eprintln!("{SERVER_NAME}: cannot append to LATCH_TEST_RECORD: {err}");
            std::process::exit(2);
        }
    }

    fn start_slow(&mut self, id: &Value, params: &Value, ms: u64, era: Era) {
        let id = id.clone();
        let token = params.pointer("/_meta/progressToken").cloned();
        let cancelled = Arc::clone(&self.cancelled);
        thread::spawn(move || {
            let key = id.to_string();
            let total = Duration::from_millis(ms);
            let mut elapsed = Duration::ZERO;
            let mut step = 0u64;
            while elapsed < total {
                let nap = PROGRESS_EVERY.min(total - elapsed);
                thread::sleep(nap);
                elapsed += nap;
                if cancelled.lock().expect("cancel set lock").remove(&key) {
                    return; // cancelled: no response at all
                }
                if let Some(token) = &token {
                    step += 1;
                    send(&json!({
                        "jsonrpc": "2.0",
                        "method": "notifications/progress",
                        "params": {
                            "progressToken": token,
                            "progress": elapsed.as_millis() as u64,
                            "total": ms,
                            "message": format!("step {step}"),
                        }
                    }));
                }
            }
            if cancelled.lock().expect("cancel set lock").remove(&key) {
                return;
            }
            respond(&id, era.finish(tool_text(&format!("Slept {ms} ms")), false));
        });
    }

    fn ask_roots(&mut self, id: &Value, params: &Value, era: Era) {
        if era == Era::Modern {
            if let Some(answer) = params.pointer("/inputResponses/roots") {
                respond(id, era.finish(roots_result(answer), false));
            } else {
                respond(
                    id,
                    json!({
                        "resultType": "input_required",
                        "inputRequests": {"roots": {"method": "roots/list", "params": {}}},
                        "requestState": "ask_roots",
                    }),
                );
            }
            return;
        }
        let out_id = self.next_out_id;
        self.next_out_id += 1;
        self.outgoing.insert(out_id, Outgoing { call_id: id.clone(), era });
        send(&json!({"jsonrpc": "2.0", "id": out_id, "method": "roots/list"}));
    }
}

fn parse_cursor(cursor: &Value, len: usize) -> Option<usize> {
    let start: usize = cursor.as_str()?.strip_prefix("page-")?.parse().ok()?;
    (start < len).then_some(start)
}

fn required_str<'a>(arguments: &'a Value, key: &str) -> Result<&'a str, String> {
    arguments.get(key).and_then(Value::as_str).ok_or_else(|| format!("`{key}` must be a string"))
}

fn tool_text(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

fn tool_error(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

/// The tool result for `ask_roots`: the client's `roots/list` result as JSON text.
fn roots_result(result: &Value) -> Value {
    let roots = result.get("roots").cloned().unwrap_or_else(|| json!([]));
    tool_text(&json!({"roots": roots}).to_string())
}

/// A text of exactly `n` bytes: numbered 64-byte lines, cut at `n`.
fn big_text(n: usize) -> String {
    let mut text = String::with_capacity(n + 64);
    let mut line = 0u64;
    while text.len() < n {
        let prefix = format!("{line:08} ");
        text.push_str(&prefix);
        text.extend(std::iter::repeat_n('x', 63 - prefix.len()));
        text.push('\n');
        line += 1;
    }
    text.truncate(n);
    text
}

/// The current UTC time as RFC 3339 with milliseconds, e.g. `2026-11-24T15:26:41.123Z`.
fn rfc3339_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = latch_proto::civil::civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        now.subsec_millis()
    )
}
