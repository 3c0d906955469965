//! Classification of one tool call into a [`Class`] with risk [`Flag`]s,
//! the hosts it touches, and the reasons a person can read.
//!
//! # Inputs and their weight
//!
//! From strongest to weakest:
//!
//! 1. **The user's override** for this server and tool
//!    ([`Context::user_class`]) sets the class outright. Flags and domains
//!    are still computed from the call, so rules on them keep working.
//! 2. **Argument values** are facts about *this* call and may only raise the
//!    class: a shell command under a command-like key is EXECUTE whatever
//!    the tool's name (`get_status {command: "rm -rf /"}` is EXECUTE); a
//!    MongoDB `$out`/`$merge` stage is at least WRITE; a click on a button
//!    labelled "Pay now" is TRANSFER_VALUE. One exception lowers: on a
//!    database tool whose verb is generic (`run_sql`, `execute_sql`,
//!    `query`), the SQL statement decides, so `execute_sql {sql: "SELECT
//!    …"}` is READ and `… "DROP TABLE t"` is WRITE and destructive (see
//!    [`sql`](self) below). URLs and e-mail addresses decide the
//!    `external` flag and fill `domains`.
//! 3. **MCP annotations** are untrusted hints (the spec says so): they make
//!    a call stricter, never laxer. `readOnlyHint: false` makes it at least
//!    WRITE; `readOnlyHint: true` never lowers a class the words gave (it
//!    only decides when the words say nothing); `destructiveHint: true`
//!    and `openWorldHint: true` set their flags. When a tool declares at
//!    least one hint, the spec's defaults fill the absent ones
//!    (`readOnlyHint` false, `destructiveHint` true — for a call that is
//!    not READ — and `openWorldHint` true). When a tool declares no hint at
//!    all, as most servers still do, no default is applied: marking every
//!    such tool destructive and open-world would make those flags match
//!    everything, and the words and arguments already speak for the call.
//! 4. **Words of the tool's name**, split on snake_case, camelCase, kebab,
//!    dots and slashes ([`words`]); whole words only, never substrings
//!    (`read_file` on `billing/x.txt` is READ; `get_messages` is READ, not
//!    SEND). The main verb gives the class, the other words may raise it
//!    (see `name.rs`: `create_refund` is TRANSFER_VALUE, `list_refunds`
//!    READ, `create_pull_request` SUBMIT, `slack_post_message` SEND).
//! 5. **Words of the description's first sentence**, only when the name has
//!    no known verb (`git_branch`: "List Git branches" → READ).
//! 6. Nothing known: WRITE, a cautious default that a person can override.
//!
//! # Decisions on debatable tools
//!
//! - **SQL tools.** A tool that runs SQL is classified by what the SQL does:
//!   a lone `SELECT` is READ (it reads, whatever the tool is called);
//!   INSERT/UPDATE/DDL is WRITE, DELETE/DROP/TRUNCATE/UPDATE also
//!   destructive; `COPY … PROGRAM` is EXECUTE. The most consequential of
//!   several statements wins, and `SELECT` calling a side-effecting function
//!   is WRITE. A tool named for reading (`read_query`) is never lowered by
//!   its SQL, only raised.
//! - **Browsing.** `browser_navigate`, `fetch` and friends are READ: they
//!   retrieve a page. The URL's host lands in `domains` and an outside host
//!   sets `external`, so a rule can ask for navigation outside the user's
//!   domains. Clicking, typing and filling are WRITE (they change page
//!   state), raised by the clicked label. `*_evaluate` is EXECUTE.
//! - **Trackers and comments** (issues, comments, pages, tickets) are WRITE:
//!   updates in the user's workspace. SEND is for messages to people or
//!   addresses: e-mail, chat, SMS, webhooks.
//! - **Publishing** (pull/merge requests, merges, pushes, releases,
//!   deployments, `kubectl apply`, submitting reviews) is SUBMIT; drafts
//!   and pending reviews are WRITE.
//! - **Money**: creating, confirming or capturing payments, refunds,
//!   transfers, payouts, charges, orders, checkout sessions, and finalizing
//!   an invoice are TRANSFER_VALUE; reading them is READ; cancelling them is
//!   WRITE (destructive).
//!
//! # Flags
//!
//! `destructive` (annotation, a deleting verb, destructive SQL or shell
//! words such as `rm`, `--force`), `external` (a target address outside the
//! internal domains; every recipient counts; a SEND whose arguments were
//! too large to check completely counts as external), `shell` (a shell or
//! code argument, or an EXECUTE tool that is not a database tool),
//! `secrets_in_args` ([`crate::redact::has_secret`]), `open_world`
//! (annotation), `unchecked` (a bound of the argument walk left something
//! unexamined: the policy asks at least), `persistence` and `secret_read`
//! (a write to a place where a foothold persists, a read of a credential,
//! key or `.env` file; see [`crate::path::sensitive`]). `self_protect` is
//! left to the policy.
//!
//! # Cost
//!
//! No regex, no per-call compilation; one walk over every argument value,
//! bounded by total size (see `args.rs` for the limits); the description is read only when the
//! name has no verb, and only its first sentence.

mod args;
mod browser;
mod domain;
mod hosts;
mod http;
mod kube;
mod lexicon;
mod name;
mod readers;
mod sql;
mod statements;
mod words;

use serde_json::Value;

use crate::class::{Class, Flag, Flags};
use crate::tooldef::{Annotations, ToolDef};

pub use hosts::is_internal;
pub use words::words;

/// The SQL judge's class for a text (for the fuzz targets only).
#[doc(hidden)]
pub fn sql_class(text: &str, strict: bool) -> Option<Class> {
    sql::judge_text(text, strict).map(|v| v.class)
}

/// One call as the classifier sees it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub server: &'a str,
    pub tool: &'a str,
    pub args: &'a Value,
}

/// What the user's configuration contributes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// Domains whose hosts and addresses count as internal (exact or
    /// subdomain match on the parsed host, see [`is_internal`]).
    pub internal_domains: &'a [String],
    /// The user's override for this server and tool, strongest input.
    pub user_class: Option<Class>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    pub class: Class,
    pub flags: Flags,
    /// Why, one short phrase each; the user's override first.
    pub reasons: Vec<String>,
    /// Hosts and e-mail domains found in the arguments, lower-case,
    /// deduplicated, in the order the walk met them (object keys in
    /// serde_json's order).
    pub domains: Vec<String>,
}

fn any_hint(a: &Annotations) -> bool {
    a.read_only.is_some() || a.destructive.is_some() || a.idempotent.is_some() || a.open_world.is_some()
}

/// Classifies one call.
pub fn classify(call: &Call<'_>, def: Option<&ToolDef>, ctx: &Context<'_>) -> Classification {
    let mut flags = Flags::new();
    let mut reasons: Vec<String> = Vec::new();

    // Words of the name, then of the description.
    let name_words = words(call.tool);
    let desc_words = def.map(|d| name::description_words(&d.description)).unwrap_or_default();
    let scope = name::Scope::of(&words(call.server), &name_words, &desc_words);
    let sql_context = scope.database;
    let (verdict, signal) = name::judge(&name_words, &desc_words, scope);
    let annotations = def.map(|d| d.annotations).unwrap_or_default();
    let said = readers::Said::new(verdict.as_ref(), &name_words, &desc_words);
    let mut generic = false;
    let mut ui = false;
    let mut destructive_word = None;
    let mut class = if let Some(v) = verdict {
        reasons.extend(v.reasons);
        generic = v.generic;
        ui = v.flags & lexicon::UI != 0;
        destructive_word = v.destructive;
        v.class
    } else if let Some((c, why)) = signal {
        reasons.push(why);
        c
    } else if annotations.read_only == Some(true) {
        reasons.push("no known verb; annotation readOnlyHint=true: READ".to_owned());
        Class::Read
    } else {
        reasons.push("no known verb in the name or description: WRITE (cautious default)".to_owned());
        if !any_hint(&annotations) {
            flags.insert(Flag::NoEvidence);
        }
        Class::Write
    };
    let words_class = class;

    // Arguments.
    let mut walker = args::Walker::new(ctx.internal_domains, sql_context, ui);
    walker.walk(call.args);
    let facts = walker.facts;
    let read = readers::read(call.args, &said, ui);
    if read.decided() || facts.decided() {
        flags.remove(&Flag::NoEvidence);
    } else if flags.contains(&Flag::NoEvidence) {
        reasons.push(
            "no evidence: nothing in the name, description, annotations or arguments says what it does".to_owned(),
        );
    }

    if let Some((key, v)) = facts.sql.as_ref().or(read.sql.as_ref()) {
        // A generic verb (run, execute, query) defers to the statement;
        // any other verb is only raised by it.
        let to = if generic { v.class } else { class.max(v.class) };
        if to != class {
            reasons.push(format!("argument `{key}` is {} SQL: {to}", v.keyword));
            class = to;
        } else if generic {
            reasons.push(format!("argument `{key}` is {} SQL: {to}", v.keyword));
        }
        if v.destructive {
            flags.insert(Flag::Destructive);
            reasons.push(format!("argument `{key}` is a destructive {} statement ({} reading)", v.keyword, v.reading));
        }
    }
    class = read.apply_request(class, &mut reasons);
    // A cluster verb under `command` is judged as one, not as a shell line.
    let shell = facts.shell.as_ref().filter(|k| read.kube.as_ref().is_none_or(|kube| &kube.key != *k));
    let runs_code = shell.is_some() || facts.code.is_some();
    if let Some(key) = shell.or(facts.code.as_ref()) {
        let what = if shell.is_some() { "a shell command" } else { "code" };
        reasons.push(format!("argument `{key}` is {what}: EXECUTE"));
        class = class.max(Class::Execute);
    } else {
        class = read.apply_kube(class, &mut reasons);
    }
    let words_ran = class == Class::Execute && words_class == Class::Execute && !sql_context;
    if runs_code || (words_ran && read.kube.is_none()) {
        flags.insert(Flag::Shell);
    }
    if let Some(tok) = &facts.shell_destructive {
        flags.insert(Flag::Destructive);
        reasons.push(format!("shell word `{tok}` deletes or overwrites"));
    }
    if let Some(stage) = facts.mongo_write {
        if class < Class::Write {
            class = Class::Write;
        }
        reasons.push(format!("pipeline stage `{stage}` writes: at least WRITE"));
    }
    if let Some((c, w)) = read.click.as_ref().or(facts.ui.as_ref())
        && *c > class
    {
        class = *c;
        reasons.push(format!("clicked element says '{w}': {c}"));
    }
    class = read.apply_rest(class, &mut reasons);
    if scope.forge && class == Class::Send && flags.insert(Flag::External) {
        reasons.push("issues and comments on a hosted forge may be public: external".to_owned());
    }
    if class == Class::Send
        && !facts.domains.is_empty()
        && !readers::has_visible_recipient(call.args)
        && flags.insert(Flag::External)
    {
        reasons.push("the addresses are only mentioned in the text; the recipient is not visible: external".to_owned());
    }

    // Annotations: stricter only.
    let hinted = any_hint(&annotations);
    match annotations.read_only {
        Some(false) if class == Class::Read => {
            class = Class::Write;
            reasons.push("annotation readOnlyHint=false: at least WRITE".to_owned());
        }
        Some(true) if class > Class::Read => {
            reasons.push(format!("annotation readOnlyHint=true ignored: hints never lower {class}"));
        }
        _ => {}
    }
    match annotations.destructive {
        Some(true) => {
            flags.insert(Flag::Destructive);
            reasons.push("annotation destructiveHint=true".to_owned());
        }
        None if hinted && annotations.read_only != Some(true) && class > Class::Read => {
            flags.insert(Flag::Destructive);
            reasons.push("destructiveHint absent: spec default true".to_owned());
        }
        _ => {}
    }
    match annotations.open_world {
        Some(true) => {
            flags.insert(Flag::OpenWorld);
            reasons.push("annotation openWorldHint=true".to_owned());
        }
        None if hinted => {
            flags.insert(Flag::OpenWorld);
            reasons.push("openWorldHint absent: spec default true".to_owned());
        }
        _ => {}
    }
    if let Some(w) = destructive_word
        && flags.insert(Flag::Destructive)
    {
        reasons.push(format!("name word '{w}' deletes or overwrites"));
    }

    // Addresses.
    for (key, host) in &facts.external {
        let key = if key.is_empty() { "(value)" } else { key.as_str() };
        reasons.push(format!("argument `{key}` is an external address ({host})"));
    }
    if facts.external_count > facts.external.len() {
        reasons.push(format!("{} more external addresses", facts.external_count - facts.external.len()));
    }
    if facts.external_count > 0 {
        flags.insert(Flag::External);
    }
    if facts.truncated {
        flags.insert(Flag::Unchecked);
        reasons.push(format!(
            "arguments not checked completely ({}): at least ask",
            facts.cut.unwrap_or("a bound was reached")
        ));
        if class == Class::Send && flags.insert(Flag::External) {
            reasons.push("recipients not all checked: treated as external".to_owned());
        }
    }

    // Bounded: a huge argument costs no more than a 16 KiB one.
    if crate::redact::has_secret(&crate::redact::bounded(call.args)) {
        flags.insert(Flag::SecretsInArgs);
        reasons.push("arguments carry something that looks like a secret".to_owned());
    }

    if let Some(c) = ctx.user_class {
        reasons.insert(0, format!("user override: {c}"));
        class = c;
    }

    // Sensitive places (`persistence`, `secret_read`), on the final class.
    let shell = flags.contains(&Flag::Shell);
    for (flag, why) in crate::path::sensitive::scan(call.args, class != Class::Read, shell) {
        flags.insert(flag);
        reasons.push(why);
    }

    Classification { class, flags, reasons, domains: facts.domains }
}

#[cfg(test)]
mod tests;
