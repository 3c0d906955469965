//! What the argument values of a call say, found in one bounded walk.
//!
//! - A shell command under a command-like key (`command`, `cmd`, `script`,
//!   `shell`, or any key whose last word is `command`/`cmd`/`script`, as
//!   `cli_command`) — a non-empty string or an argv array — and code under a
//!   code key (`code`, `function`, `expression` …) when it looks like code.
//! - A SQL statement under `sql`/`statement` (always) or `query` (on
//!   database tools only, so a search box saying "delete old mail" is not a
//!   DELETE).
//! - MongoDB pipeline stages that write (`$out`, `$merge`).
//! - Hosts and e-mail domains. Addresses under a target key (`to`, `cc`,
//!   `bcc`, `recipients`, `url`, `webhook`, `endpoint`, `host` …, at any
//!   depth, in arrays and nested objects), a value that is one URL or one
//!   address whatever its key, and URLs inside shell commands and code are
//!   *targets*: the call reaches them, and any target outside the internal
//!   domains (and not loopback or a private network) is external. Addresses
//!   mentioned inside free text (a message body) are recorded in `domains`
//!   but do not make the call external.
//! - For click-like tools, the words of the clicked element's label.
//!
//! Bounds: at most [`MAX_NODES`] values, [`MAX_DEPTH`] levels,
//! [`MAX_STRINGS`] strings and [`MAX_TOTAL_BYTES`] bytes of string data are
//! looked at; past that the walk stops and says so (`truncated`), and the
//! caller treats the unseen part cautiously.

use serde_json::Value;

use super::hosts;
use super::lexicon as lx;
use super::sql::{self, SqlVerdict};
use super::word_slices;
use crate::class::Class;

pub(crate) const MAX_NODES: usize = 4096;
pub(crate) const MAX_DEPTH: usize = 32;
pub(crate) const MAX_STRINGS: usize = 512;
pub(crate) const MAX_TOTAL_BYTES: usize = 256 * 1024;
/// Most external addresses named in reasons.
const MAX_EXTERNAL_REASONS: usize = 4;

#[derive(Debug, Default)]
pub(crate) struct ArgFacts {
    /// Key holding a shell command.
    pub shell: Option<String>,
    /// Key holding code.
    pub code: Option<String>,
    /// A shell word that deletes or overwrites.
    pub shell_destructive: Option<String>,
    /// Key and verdict of the most consequential SQL text.
    pub sql: Option<(String, SqlVerdict)>,
    /// A MongoDB stage that writes.
    pub mongo_write: Option<&'static str>,
    /// Class raised by a clicked label, with the word.
    pub ui: Option<(Class, String)>,
    /// Every host and e-mail domain, lower-case, first-seen order.
    pub domains: Vec<String>,
    /// External targets: (key, host), the first few.
    pub external: Vec<(String, String)>,
    pub external_count: usize,
    pub truncated: bool,
}

pub(crate) struct Walker<'a> {
    pub internal: &'a [String],
    pub sql_context: bool,
    pub ui: bool,
    nodes: usize,
    strings: usize,
    bytes: usize,
    pub facts: ArgFacts,
}

fn key_words_any(key: &str, set: &[&str]) -> bool {
    word_slices(key).any(|w| set.iter().any(|s| s.eq_ignore_ascii_case(w)))
}

fn is_shell_key(key: &str) -> bool {
    const WHOLE: &[&str] = &[
        "command",
        "cmd",
        "script",
        "shell",
        "bash",
        "sh",
        "zsh",
        "powershell",
        "pwsh",
        "cmdline",
        "commandline",
        "commands",
        "shellcommand",
    ];
    if WHOLE.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        return true;
    }
    word_slices(key).last().is_some_and(|w| {
        ["command", "cmd", "script", "commands", "cmdline", "commandline"].iter().any(|k| k.eq_ignore_ascii_case(w))
    })
}

fn is_code_key(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "code",
        "function",
        "expression",
        "js",
        "javascript",
        "python",
        "snippet",
        "program",
        "source_code",
        "sourceCode",
        "func",
        "lambda",
    ];
    KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

fn looks_like_code(s: &str) -> bool {
    s.contains('(') || s.contains(';') || s.contains("=>") || s.contains('\n') || s.contains('{') || s.contains('=')
}

fn is_sql_key(key: &str, sql_context: bool) -> bool {
    const ALWAYS: &[&str] = &["sql", "statement", "stmt", "sql_query", "sqlQuery", "sqlStatement", "sql_statement"];
    if ALWAYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        return true;
    }
    sql_context && ["query", "queries", "statements"].iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// Keys whose addresses the call reaches.
fn is_target_key(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "to",
        "cc",
        "bcc",
        "recipient",
        "recipients",
        "email",
        "emails",
        "mail",
        "address",
        "addresses",
        "url",
        "urls",
        "uri",
        "uris",
        "href",
        "link",
        "links",
        "webhook",
        "webhooks",
        "endpoint",
        "endpoints",
        "host",
        "hosts",
        "hostname",
        "domain",
        "domains",
        "server",
        "remote",
        "destination",
        "dest",
        "target",
        "origin",
        "callback",
        "redirect",
        "website",
        "site",
        "upstream",
        "attendees",
        "attendee",
        "invitees",
        "members",
        "participants",
        "reply",
        "forward",
    ];
    key_words_any(key, WORDS)
}

/// Keys whose value may be a bare host (`api.example.com`).
fn is_host_key(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "url", "uri", "host", "hostname", "domain", "endpoint", "server", "remote", "website", "site", "origin",
        "webhook", "href", "upstream",
    ];
    key_words_any(key, WORDS)
}

fn is_ui_label_key(key: &str) -> bool {
    ["element", "selector", "text", "label", "name", "button", "title", "description"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
}

/// The whole value is one URL or one or more addresses.
fn is_whole_address(s: &str) -> bool {
    let t = s.trim();
    if t.is_empty() || t.len() > 2048 {
        return false;
    }
    if !t.contains(char::is_whitespace) {
        return t.contains("://") || t.contains('@');
    }
    t.contains('@') && t.ends_with('>')
}

impl<'a> Walker<'a> {
    pub fn new(internal: &'a [String], sql_context: bool, ui: bool) -> Self {
        Walker { internal, sql_context, ui, nodes: 0, strings: 0, bytes: 0, facts: ArgFacts::default() }
    }

    pub fn walk(&mut self, v: &Value) {
        self.value(v, "", false, 0);
    }

    fn value(&mut self, v: &Value, key: &str, target: bool, depth: usize) {
        self.nodes += 1;
        if self.nodes > MAX_NODES || depth > MAX_DEPTH {
            self.facts.truncated = true;
            return;
        }
        match v {
            Value::String(s) => self.string(s, key, target),
            Value::Array(items) => {
                if !key.is_empty() && is_shell_key(key) && !items.is_empty() && items.iter().all(Value::is_string) {
                    self.note_shell(key, items.iter().filter_map(Value::as_str));
                }
                for item in items {
                    if self.facts.truncated {
                        return;
                    }
                    self.value(item, key, target, depth + 1);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    if self.facts.truncated {
                        return;
                    }
                    if self.facts.mongo_write.is_none() {
                        if k == "$out" {
                            self.facts.mongo_write = Some("$out");
                        } else if k == "$merge" {
                            self.facts.mongo_write = Some("$merge");
                        }
                    }
                    let t = target || is_target_key(k);
                    self.value(item, k, t, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn note_shell<'s>(&mut self, key: &str, parts: impl Iterator<Item = &'s str>) {
        if self.facts.shell.is_none() {
            self.facts.shell = Some(key.to_owned());
        }
        if self.facts.shell_destructive.is_none() {
            for part in parts.take(256) {
                let cut = &part[..floor_boundary(part, 8192)];
                if let Some(tok) = cut
                    .split(|c: char| c.is_whitespace() || ";|&()`".contains(c))
                    .find(|t| lx::shell_destructive(&t.to_ascii_lowercase()))
                {
                    self.facts.shell_destructive = Some(tok.to_owned());
                    break;
                }
            }
        }
    }

    fn string(&mut self, s: &str, key: &str, target: bool) {
        self.strings += 1;
        self.bytes += s.len().min(hosts::MAX_SCAN_BYTES);
        if self.strings > MAX_STRINGS || self.bytes > MAX_TOTAL_BYTES {
            self.facts.truncated = true;
            return;
        }
        let mut reaches = target || is_whole_address(s);
        if !key.is_empty() && !s.trim().is_empty() {
            if is_shell_key(key) {
                self.note_shell(key, std::iter::once(s));
                reaches = true;
            } else if is_code_key(key) && looks_like_code(s) {
                if self.facts.code.is_none() {
                    self.facts.code = Some(key.to_owned());
                }
                reaches = true;
            } else if is_sql_key(key, self.sql_context) {
                if let Some(v) = sql::judge(s) {
                    let better = match &self.facts.sql {
                        None => true,
                        Some((_, b)) => v.class > b.class || (v.class == b.class && v.destructive && !b.destructive),
                    };
                    if better {
                        self.facts.sql = Some((key.to_owned(), v));
                    }
                }
            } else if self.ui && self.facts.ui.is_none() && is_ui_label_key(key) {
                let head = &s[..floor_boundary(s, 200)];
                if let Some((c, w)) =
                    word_slices(head).find_map(|w| lx::ui_label_class(&w.to_ascii_lowercase()).map(|c| (c, w)))
                {
                    self.facts.ui = Some((c, w.to_ascii_lowercase()));
                }
            }
        }
        let host_key = !key.is_empty() && is_host_key(key);
        let internal = self.internal;
        let facts = &mut self.facts;
        hosts::scan(s, host_key, &mut |h| {
            if !facts.domains.iter().any(|d| d == h) {
                facts.domains.push(h.to_owned());
            }
            if reaches && !hosts::is_local(h) && !hosts::is_internal(h, internal) {
                facts.external_count += 1;
                if facts.external.len() < MAX_EXTERNAL_REASONS && !facts.external.iter().any(|(_, e)| e == h) {
                    facts.external.push((key.to_owned(), h.to_owned()));
                }
            }
        });
    }
}

fn floor_boundary(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}
