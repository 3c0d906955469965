//! What goes into the audit log, and what can go wrong with it.

use std::path::{Path, PathBuf};

use latch_proto::AuditRow;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("audit database {path} is unsafe: {why} — {fix}")]
    Unsafe { path: PathBuf, why: String, fix: String },
    #[error("audit folder {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use the audit database {path}: {why} — {fix}")]
    Unusable { path: PathBuf, why: String, fix: String },
    #[error("the audit log {path} is damaged or unusable ({why}): Latch refuses calls until a person repairs it")]
    Damaged { path: PathBuf, why: String },
    #[error("the audit writer has stopped")]
    WriterGone,
    #[error("audit write failed: {0}")]
    Write(String),
}

/// A row to insert.
#[derive(Clone, Debug, Default)]
pub struct NewEvent {
    pub time_ms: i64,
    pub kind: &'static str,
    pub server: String,
    pub session: String,
    pub tool: String,
    pub class: String,
    pub decision: String,
    pub reasons: Vec<String>,
    /// Redacted arguments as JSON text.
    pub args: String,
    pub args_hash: String,
    pub rule: Option<String>,
    pub approval_id: Option<String>,
    pub outcome: Option<&'static str>,
    pub answered_by: Option<String>,
    pub detail: Option<String>,
}

impl NewEvent {
    /// The row a console is shown for a call just recorded as row `id`
    /// (no outcome yet), its redacted arguments `args`.
    pub(crate) fn shown(&self, id: i64, args: &serde_json::Value) -> AuditRow {
        AuditRow {
            id,
            time: self.time_ms,
            kind: self.kind.to_owned(),
            server: self.server.clone(),
            tool: self.tool.clone(),
            class: self.class.clone(),
            decision: self.decision.clone(),
            reasons: self.reasons.clone(),
            args: args.clone(),
            args_hash: self.args_hash.clone(),
            approval_id: self.approval_id.clone(),
            rule: self.rule.clone(),
            ..AuditRow::default()
        }
    }
}

/// How a person's answer ends the rows of the calls it decided.
#[derive(Clone, Debug)]
pub struct Conclusion {
    /// Rows of the calls the answer released.
    pub ids: Vec<i64>,
    pub approval_id: String,
    /// allow | deny
    pub answer: &'static str,
    /// channel:who
    pub answered_by: String,
    pub at_ms: i64,
    /// Rows of this approval's calls whose hold ended before the answer
    /// (the agent was told it waits) are concluded too.
    pub earlier: bool,
}

pub(super) fn sql(path: &Path, source: rusqlite::Error) -> AuditError {
    AuditError::Sqlite { path: path.to_owned(), source }
}
