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
//! Every key is looked at, wherever it is: the walk is iterative (no
//! recursion, so depth costs nothing but the stack it keeps) and visits
//! every value up to [`MAX_NODES`]. Work is bounded by total size, never by
//! position: strings under keys that carry commands, code, SQL, addresses
//! or labels are examined whole within [`MAX_KEY_BYTES`]; free text is
//! scanned for addresses within [`MAX_TEXT_BYTES`] (64 MiB, about 175 ms in a
//! release build; past it, a value that is one short URL or address is
//! still checked). Whatever any bound leaves
//! unexamined sets `truncated`, with what was cut in `cut`, and the caller
//! flags the call [`Flag::Unchecked`](crate::Flag::Unchecked): the policy
//! never lets such a call through without asking.

use serde_json::Value;

use super::hosts;
use super::lexicon as lx;
use super::sql::{self, SqlVerdict};
use super::words::word_slices;
use crate::class::Class;

/// Most values visited (objects, arrays, strings, numbers …).
pub(crate) const MAX_NODES: usize = 2_000_000;
/// Deepest nesting followed (serde_json itself stops parsing at 128).
pub(crate) const MAX_DEPTH: usize = 1024;
/// Most bytes of strings under keys that matter, and of keys, examined.
pub(crate) const MAX_KEY_BYTES: usize = 8 * 1024 * 1024;
/// Most bytes of free text scanned for addresses.
pub(crate) const MAX_TEXT_BYTES: usize = 64 * 1024 * 1024;
/// Most bytes of one shell command part searched for destructive words.
const MAX_SHELL_PART_BYTES: usize = 256 * 1024;
/// Most distinct hosts kept in `domains`.
const MAX_DOMAINS: usize = 256;
/// Window over a long string for the host scanner, and the overlap between
/// windows (longer than any host name with its scheme and user part).
const SCAN_WINDOW: usize = hosts::MAX_SCAN_BYTES;
const SCAN_OVERLAP: usize = 2048;
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
    /// Some part of the arguments was not examined.
    pub truncated: bool,
    /// What a bound cut, for the reason (the first bound met).
    pub cut: Option<&'static str>,
}

/// What a key says about the values under it.
#[derive(Clone, Copy, Debug, Default)]
struct Kind {
    shell: bool,
    code: bool,
    sql: bool,
    /// Named for SQL: text under it that is not readable SQL counts as an
    /// unknown statement, never as prose.
    sql_strict: bool,
    host: bool,
    label: bool,
}

pub(crate) struct Walker<'a> {
    pub internal: &'a [String],
    pub sql_context: bool,
    pub ui: bool,
    nodes: usize,
    key_bytes: usize,
    text_bytes: usize,
    seen_domains: std::collections::HashSet<String>,
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
        Walker {
            internal,
            sql_context,
            ui,
            nodes: 0,
            key_bytes: 0,
            text_bytes: 0,
            seen_domains: Default::default(),
            facts: ArgFacts::default(),
        }
    }

    fn cut(&mut self, what: &'static str) {
        self.facts.truncated = true;
        if self.facts.cut.is_none() {
            self.facts.cut = Some(what);
        }
    }

    /// What a key says about the values under it, worked out once per key
    /// (an array's items inherit it).
    fn kind_of(&self, key: &str) -> Kind {
        if key.is_empty() {
            return Kind::default();
        }
        Kind {
            shell: is_shell_key(key),
            code: is_code_key(key),
            sql: is_sql_key(key, self.sql_context),
            sql_strict: word_slices(key).any(|w| w.eq_ignore_ascii_case("sql")),
            host: is_host_key(key),
            label: self.ui && is_ui_label_key(key),
        }
    }

    /// Walks every value, in document order, without recursion.
    pub fn walk(&mut self, root: &Value) {
        // (value, key it sits under, what the key says, under a target key, depth)
        let mut stack: Vec<(&Value, &str, Kind, bool, usize)> = vec![(root, "", Kind::default(), false, 0)];
        while let Some((v, key, kind, target, depth)) = stack.pop() {
            self.nodes += 1;
            if self.nodes > MAX_NODES {
                self.cut("more values than are checked");
                return;
            }
            if depth > MAX_DEPTH {
                self.cut("nesting deeper than is checked");
                continue;
            }
            match v {
                Value::String(s) => self.string(s, key, kind, target),
                Value::Array(items) => {
                    if kind.shell && !items.is_empty() && items.iter().all(Value::is_string) {
                        self.note_shell(key, items.iter().filter_map(Value::as_str));
                    }
                    stack.extend(items.iter().rev().map(|item| (item, key, kind, target, depth + 1)));
                }
                Value::Object(map) => {
                    let at = stack.len();
                    for (k, item) in map {
                        if self.facts.mongo_write.is_none() {
                            if k == "$out" {
                                self.facts.mongo_write = Some("$out");
                            } else if k == "$merge" {
                                self.facts.mongo_write = Some("$merge");
                            }
                        }
                        self.key_bytes += k.len();
                        let (kind, t) = if self.key_bytes > MAX_KEY_BYTES {
                            // Keys too many to read: every value counts as
                            // reaching what it names.
                            self.cut("more key text than is checked");
                            (Kind::default(), true)
                        } else {
                            (self.kind_of(k), target || is_target_key(k))
                        };
                        stack.push((item, k.as_str(), kind, t, depth + 1));
                    }
                    stack[at..].reverse();
                }
                _ => {}
            }
        }
    }

    fn note_shell<'s>(&mut self, key: &str, parts: impl Iterator<Item = &'s str>) {
        if self.facts.shell.is_none() {
            self.facts.shell = Some(key.to_owned());
        }
        if self.facts.shell_destructive.is_none() {
            for part in parts {
                let cut = &part[..floor_boundary(part, MAX_SHELL_PART_BYTES)];
                if cut.len() < part.len() {
                    self.cut("a shell command longer than is checked");
                }
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

    fn string(&mut self, s: &str, key: &str, kind: Kind, target: bool) {
        let keyed = target || kind.shell || kind.code || kind.sql || kind.host || kind.label;
        if keyed {
            self.key_bytes += s.len();
            if self.key_bytes > MAX_KEY_BYTES {
                self.cut("more command, address or SQL text than is checked");
                return;
            }
        } else {
            self.text_bytes += s.len();
            if self.text_bytes > MAX_TEXT_BYTES {
                self.cut("more free text than is scanned for addresses");
                // A value that is one URL or address is still a target.
                if s.len() > 2048 || !is_whole_address(s) {
                    return;
                }
            }
        }
        let mut reaches = target || is_whole_address(s);
        if !s.trim().is_empty() {
            if kind.shell {
                self.note_shell(key, std::iter::once(s));
                reaches = true;
            } else if kind.code && looks_like_code(s) {
                if self.facts.code.is_none() {
                    self.facts.code = Some(key.to_owned());
                }
                reaches = true;
            } else if kind.sql {
                if let Some(v) = sql::judge_text(s, kind.sql_strict) {
                    let better = match &self.facts.sql {
                        None => true,
                        Some((_, b)) => v.class > b.class || (v.class == b.class && v.destructive && !b.destructive),
                    };
                    if better {
                        self.facts.sql = Some((key.to_owned(), v));
                    }
                }
            } else if kind.label && self.facts.ui.is_none() {
                let head = &s[..floor_boundary(s, 200)];
                if let Some((c, w)) =
                    word_slices(head).find_map(|w| lx::ui_label_class(&w.to_ascii_lowercase()).map(|c| (c, w)))
                {
                    self.facts.ui = Some((c, w.to_ascii_lowercase()));
                }
            }
        }
        let host_key = kind.host;
        // Long strings are scanned in overlapping windows, so an address
        // anywhere in them is found.
        let mut start = 0;
        loop {
            let end = floor_boundary(s, start + SCAN_WINDOW);
            self.scan_hosts(&s[start..end], key, host_key && start == 0, reaches);
            if end >= s.len() {
                break;
            }
            let mut next = end.saturating_sub(SCAN_OVERLAP).max(start + 1);
            while !s.is_char_boundary(next) {
                next += 1;
            }
            start = next;
        }
    }

    fn scan_hosts(&mut self, s: &str, key: &str, host_key: bool, reaches: bool) {
        let internal = self.internal;
        let facts = &mut self.facts;
        let seen = &mut self.seen_domains;
        let mut too_many = false;
        hosts::scan(s, host_key, &mut |h| {
            if !seen.contains(h) {
                if seen.len() < MAX_DOMAINS {
                    seen.insert(h.to_owned());
                    facts.domains.push(h.to_owned());
                } else {
                    too_many = true;
                }
            }
            if reaches && !hosts::is_local(h) && !hosts::is_internal(h, internal) {
                facts.external_count += 1;
                if facts.external.len() < MAX_EXTERNAL_REASONS && !facts.external.iter().any(|(_, e)| e == h) {
                    facts.external.push((key.to_owned(), h.to_owned()));
                }
            }
        });
        if too_many {
            self.cut("more distinct hosts than are listed");
        }
    }
}

fn floor_boundary(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}
