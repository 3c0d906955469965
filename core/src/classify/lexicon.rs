//! The words the classifier knows, and what each one means.
//!
//! Every lookup is on a whole, lower-case word (never a substring): `read`
//! in `read_file` is a verb, `billing` in an argument is nothing.

use crate::class::Class;

pub(crate) use super::domain::*;

/// Create-like verb: a submit noun (`pull request`) or a message noun
/// (`message`) makes it SUBMIT or SEND.
pub(crate) const CREATES: u16 = 1;
/// A value noun (`payment`, `refund`) makes it TRANSFER_VALUE.
pub(crate) const VALUE: u16 = 1 << 1;
/// An HTTP method word (`post`, `get`, `patch`): a later verb decides.
pub(crate) const HTTP: u16 = 1 << 2;
/// `run`, `execute`, `query`: what is run (a SQL statement) decides.
pub(crate) const GENERIC: u16 = 1 << 3;
/// Deletes or overwrites.
pub(crate) const DESTRUCTIVE: u16 = 1 << 4;
/// `post`, `push`: SEND when the object is a message, channel or thread.
pub(crate) const POSTS: u16 = 1 << 5;
/// `apply`, `install`, `upgrade`: SUBMIT in a deployment context.
pub(crate) const DEPLOYS: u16 = 1 << 6;
/// `click`, `press`, `tap`: the label of what is clicked may raise the class.
pub(crate) const UI: u16 = 1 << 7;
/// A drafting word (`draft`, `pending`): blocks SEND/SUBMIT escalation.
pub(crate) const DRAFTS: u16 = 1 << 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verb {
    pub class: Class,
    pub flags: u16,
}

impl Verb {
    pub fn has(self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// A verb's class and behaviour, for a lower-case word.
pub(crate) fn verb(w: &str) -> Option<Verb> {
    use Class::*;
    let (class, flags) = match w {
        // READ
        "get" => (Read, 0),
        "query" => (Read, GENERIC),
        "open" => (Read, CREATES),
        "capture" | "take" => (Read, VALUE),
        "list" | "ls" | "read" | "cat" | "search" | "find" | "fetch" | "show" | "describe" | "view" | "lookup"
        | "retrieve" | "count" | "inspect" | "browse" | "check" | "explain" | "diff" | "log" | "logs" | "status"
        | "analyze" | "analyse" | "summarize" | "summarise" | "head" | "tail" | "tree" | "stat" | "stats" | "info"
        | "whoami" | "grep" | "navigate" | "go" | "back" | "screenshot" | "snapshot" | "wait" | "hover" | "scroll"
        | "watch" | "poll" | "ping" | "echo" | "print" | "resolve" | "convert" | "calculate" | "compute"
        | "estimate" | "preview" | "validate" | "lint" | "aggregate" | "export" | "think" | "plan" | "sample"
        | "geocode" | "translate" | "verify" | "audit" | "trace" | "monitor" | "measure" | "compare" | "render"
        | "parse" | "extract" | "suggest" | "recommend" | "return" | "returns" | "connect" | "download" | "scrape"
        | "crawl" | "research" | "rerank" | "map" | "simulate" | "observe" | "display" | "track" => (Read, 0),
        // WRITE
        "create" | "add" | "new" | "make" | "start" | "schedule" | "process" | "confirm" | "authorize" | "initiate"
        | "place" | "complete" | "retry" => (Write, CREATES | VALUE),
        "request" => (Write, VALUE),
        "post" => (Write, HTTP | POSTS | CREATES | VALUE),
        "put" | "patch" => (Write, HTTP),
        "remove" | "delete" | "rm" | "del" | "drop" | "truncate" | "destroy" | "purge" | "wipe" | "erase" | "clear"
        | "empty" | "prune" | "revoke" | "void" | "cancel" | "kill" | "terminate" | "reset" | "uninstall"
        | "overwrite" | "evict" | "rebuild" | "recycle" | "power" | "drain" | "cordon" | "uncordon" | "cleanup"
        | "pause" => (Write, DESTRUCTIVE),
        "apply" | "install" | "upgrade" => (Write, DEPLOYS),
        "click" | "press" | "tap" => (Write, UI),
        "draft" | "compose" => (Write, DRAFTS),
        "generate" => (Write, CREATES),
        "update" | "edit" | "write" | "set" | "insert" | "upsert" | "save" | "modify" | "append" | "replace"
        | "rename" | "move" | "mv" | "copy" | "cp" | "mkdir" | "touch" | "upload" | "stop" | "restart" | "reboot"
        | "archive" | "unarchive" | "close" | "reopen" | "assign" | "unassign" | "label" | "unlabel" | "tag"
        | "untag" | "commit" | "checkout" | "switch" | "revert" | "restore" | "rollback" | "stash" | "init"
        | "initialize" | "clone" | "fork" | "star" | "unstar" | "follow" | "unfollow" | "subscribe" | "unsubscribe"
        | "configure" | "enable" | "disable" | "lock" | "unlock" | "mark" | "pin" | "unpin" | "react" | "comment"
        | "record" | "remember" | "store" | "import" | "sync" | "scale" | "resize" | "type" | "fill" | "select"
        | "uncheck" | "drag" | "dismiss" | "accept" | "reject" | "decline" | "transition" | "link" | "unlink"
        | "attach" | "detach" | "handle" | "change" | "toggle" | "reorder" | "duplicate" | "backup" | "migrate"
        | "grant" | "block" | "unblock" | "mute" | "unmute" | "ban" | "kick" | "rate" | "vote" | "like" | "unlike"
        | "bookmark" | "favorite" | "favourite" | "snooze" | "compress" | "decompress" | "zip" | "unzip" | "gzip"
        | "rebase" | "cherry" | "squash" | "amend" | "stage" | "unstage" | "bump" | "flag" | "annotate"
        | "log_work" => (Write, 0),
        // SEND
        "send" => (Send, VALUE),
        "reply" | "respond" | "forward" | "notify" | "broadcast" | "announce" | "invite" | "share" | "dm" | "tweet"
        | "retweet" | "message" | "email" | "text" | "call" => (Send, 0),
        // EXECUTE
        "run" | "execute" | "exec" => (Execute, GENERIC),
        "eval" | "evaluate" | "spawn" | "launch" | "invoke" | "interpret" | "trigger" | "rerun" | "build"
        | "compile" => (Execute, 0),
        // SUBMIT
        "submit" => (Submit, VALUE),
        "push" => (Submit, POSTS | VALUE),
        "finalize" | "finalise" => (Submit, 0),
        "publish" | "deploy" | "merge" | "release" | "approve" | "ship" | "promote" | "rollout" | "redeploy"
        | "undeploy" => (Submit, 0),
        // TRANSFER_VALUE
        "pay" | "transfer" | "refund" | "charge" | "withdraw" | "purchase" | "buy" | "sell" | "trade" | "swap"
        | "stake" | "unstake" | "donate" | "payout" | "remit" | "bid" | "invest" | "deposit" | "fund" | "tip"
        | "exercise" | "liquidate" | "reserve" => (TransferValue, 0),
        _ => return None,
    };
    Some(Verb { class, flags })
}

/// Verbs that are also common nouns: they count as the tool's verb only in
/// first position among known words (`email_search` is not a send).
pub(crate) fn noun_like_verb(w: &str) -> bool {
    matches!(
        w,
        "message"
            | "email"
            | "text"
            | "call"
            | "log"
            | "logs"
            | "status"
            | "tree"
            | "info"
            | "stats"
            | "stat"
            | "label"
            | "tag"
            | "comment"
            | "record"
            | "link"
            | "type"
            | "flag"
            | "snapshot"
            | "screenshot"
            | "head"
            | "tail"
            | "back"
            | "return"
            | "returns"
            | "build"
            | "release"
            | "star"
            | "order"
            | "plan"
            | "sample"
            | "trace"
            | "block"
            | "lock"
            | "store"
            | "view"
            | "schedule"
            | "check"
            | "request"
            | "process"
            | "trigger"
            | "commit"
            | "checkout"
            | "draft"
            | "transfer"
            | "refund"
            | "charge"
            | "purchase"
            | "deposit"
            | "fund"
            | "tip"
            | "payout"
            | "trade"
            | "swap"
            | "bid"
            | "share"
            | "tweet"
            | "dm"
            | "export"
            | "import"
            | "backup"
            | "archive"
            | "diff"
            | "copy"
            | "change"
            | "move"
            | "update"
            | "vote"
            | "rate"
            | "like"
            | "bookmark"
            | "favorite"
            | "favourite"
            | "stage"
            | "scale"
            | "forward"
            | "connect"
            | "broadcast"
            | "place"
            | "map"
            | "power"
            | "reserve"
            | "eval"
    )
}

/// Money-moving nouns: with a create-like or sending verb, TRANSFER_VALUE.
pub(crate) fn is_value_noun(w: &str) -> bool {
    matches!(
        w,
        "payment"
            | "payments"
            | "payout"
            | "payouts"
            | "refund"
            | "refunds"
            | "transfer"
            | "transfers"
            | "charge"
            | "charges"
            | "checkout"
            | "purchase"
            | "purchases"
            | "order"
            | "orders"
            | "subscription"
            | "withdrawal"
            | "withdrawals"
            | "deposit"
            | "deposits"
            | "transaction"
            | "transactions"
            | "donation"
            | "donations"
            | "remittance"
            | "wire"
            | "money"
            | "funds"
            | "swap"
            | "trade"
            | "trades"
            | "bid"
            | "tip"
            | "tips"
            | "paymentintent"
            | "payment_intent"
            | "cost"
            | "costs"
    )
}

/// Billing documents: a SUBMIT verb on them (`finalize_invoice`) bills.
pub(crate) fn is_billing_noun(w: &str) -> bool {
    matches!(w, "invoice" | "invoices" | "bill" | "bills")
}

/// Things that are sent: with a create-like verb, SEND.
pub(crate) fn is_message_noun(w: &str) -> bool {
    matches!(
        w,
        "message"
            | "messages"
            | "msg"
            | "email"
            | "emails"
            | "mail"
            | "sms"
            | "tweet"
            | "tweets"
            | "dm"
            | "dms"
            | "notification"
            | "notifications"
            | "text"
            | "reply"
            | "status"
            | "toot"
            | "announcement"
            | "post"
            | "posts"
            | "reminder"
            | "reminders"
            | "call"
            | "calls"
    )
}

/// Where a post goes: with `post`, SEND.
pub(crate) fn is_channel_noun(w: &str) -> bool {
    matches!(
        w,
        "channel"
            | "channels"
            | "thread"
            | "threads"
            | "chat"
            | "room"
            | "webhook"
            | "slack"
            | "discord"
            | "teams"
            | "conversation"
            | "feed"
            | "timeline"
            | "group"
    )
}

/// Not-yet-sent things: no SEND/SUBMIT escalation.
pub(crate) fn is_draft_word(w: &str) -> bool {
    matches!(w, "draft" | "drafts" | "pending" | "template" | "templates")
}

/// What a "send" to a terminal or process really does: run it.
pub(crate) fn is_terminal_noun(w: &str) -> bool {
    matches!(
        w,
        "terminal"
            | "tty"
            | "pty"
            | "shell"
            | "process"
            | "keys"
            | "keystrokes"
            | "stdin"
            | "input"
            | "character"
            | "characters"
            | "signal"
            | "console"
            | "repl"
    )
}

/// Words that make `apply`/`install`/`upgrade` a deployment.
pub(crate) fn is_deploy_context(w: &str) -> bool {
    matches!(
        w,
        "kubectl"
            | "kubernetes"
            | "k8s"
            | "helm"
            | "chart"
            | "charts"
            | "manifest"
            | "manifests"
            | "deployment"
            | "deployments"
            | "terraform"
            | "stack"
            | "stacks"
            | "cloudformation"
            | "pulumi"
            | "production"
            | "prod"
    )
}

/// Nouns that make `transfer` not about money.
pub(crate) fn is_transfer_exception(w: &str) -> bool {
    matches!(
        w,
        "issue"
            | "issues"
            | "app"
            | "apps"
            | "application"
            | "pipeline"
            | "space"
            | "site"
            | "repo"
            | "repository"
            | "repositories"
            | "ownership"
            | "file"
            | "files"
            | "project"
            | "projects"
            | "team"
            | "data"
            | "domain"
            | "conversation"
            | "chat"
            | "call"
            | "ticket"
    )
}

/// Words that make a tool a database tool (SQL arguments are judged).
pub(crate) fn is_sql_context(w: &str) -> bool {
    matches!(
        w,
        "sql"
            | "database"
            | "databases"
            | "db"
            | "postgres"
            | "postgresql"
            | "psql"
            | "pg"
            | "mysql"
            | "mariadb"
            | "sqlite"
            | "mssql"
            | "tsql"
            | "bigquery"
            | "snowflake"
            | "duckdb"
            | "supabase"
            | "clickhouse"
            | "redshift"
            | "oracle"
            | "table"
            | "tables"
            | "cockroachdb"
            | "neon"
            | "athena"
            | "trino"
            | "presto"
            | "databricks"
    )
}

/// Nouns that mean running code when a tool has no verb (`shell`).
pub(crate) fn exec_signal(w: &str) -> bool {
    matches!(w, "shell" | "bash" | "sh" | "zsh" | "powershell" | "pwsh" | "terminal" | "repl" | "cmd")
}

pub(crate) fn is_prep(w: &str) -> bool {
    matches!(w, "to" | "for" | "in" | "on" | "from" | "by" | "with" | "of" | "into" | "at" | "as" | "via")
}

pub(crate) fn is_article(w: &str) -> bool {
    matches!(w, "a" | "an" | "the")
}

pub(crate) fn is_conj(w: &str) -> bool {
    matches!(w, "or" | "and")
}

/// Publishing nouns, as the head of a create-like verb's object.
pub(crate) fn submit_head(object: &[&str]) -> Option<&'static str> {
    let n = object.len();
    let last = *object.last()?;
    let prev = if n >= 2 { object[n - 2] } else { "" };
    Some(match (prev, last) {
        ("pull", "request" | "requests") => "pull request",
        ("merge", "request" | "requests") => "merge request",
        (_, "pr" | "prs") => "pull request",
        (_, "mr") => "merge request",
        (_, "release" | "releases") => "release",
        (_, "deployment" | "deployments" | "deploy") => "deployment",
        _ => return None,
    })
}

/// Words in a clicked element's label that say what the click does.
pub(crate) fn ui_label_class(w: &str) -> Option<Class> {
    Some(match w {
        "pay" | "purchase" | "buy" | "checkout" | "order" | "donate" | "transfer" | "withdraw" | "subscribe" => {
            Class::TransferValue
        }
        "submit" | "publish" | "deploy" | "merge" | "confirm" | "approve" => Class::Submit,
        "send" | "post" | "reply" | "tweet" | "share" => Class::Send,
        _ => return None,
    })
}

/// Shell words that delete or overwrite.
pub(crate) fn shell_destructive(token: &str) -> bool {
    matches!(
        token,
        "rm" | "rmdir"
            | "shred"
            | "dd"
            | "truncate"
            | "unlink"
            | "mkfs"
            | "wipefs"
            | "delete"
            | "destroy"
            | "drop"
            | "--force"
            | "-rf"
            | "-fr"
            | "--hard"
            | "purge"
            | "del"
            | "format"
            | "rd"
    ) || token.starts_with("mkfs.")
}

/// The base form of a verb word (`generates` → `generate`), or the word.
pub(crate) fn base_form(w: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if verb(w).is_some() {
        return Cow::Borrowed(w);
    }
    if let Some(b) = w.strip_suffix("ies") {
        let y = format!("{b}y");
        if verb(&y).is_some() {
            return Cow::Owned(y);
        }
    }
    for suffix in ["es", "s"] {
        if let Some(b) = w.strip_suffix(suffix)
            && verb(b).is_some()
        {
            return Cow::Borrowed(b);
        }
    }
    Cow::Borrowed(w)
}

/// Description words to stem: `Reads` → `read`, `Searches` → `search`,
/// `Applies` → `apply`.
pub(crate) fn stem_verb(w: &str) -> Option<Verb> {
    if let Some(v) = verb(w) {
        return Some(v);
    }
    if let Some(b) = w.strip_suffix("ies") {
        let mut s = String::with_capacity(b.len() + 1);
        s.push_str(b);
        s.push('y');
        if let Some(v) = verb(&s) {
            return Some(v);
        }
    }
    if let Some(b) = w.strip_suffix("es")
        && let Some(v) = verb(b)
    {
        return Some(v);
    }
    w.strip_suffix('s').and_then(verb)
}
