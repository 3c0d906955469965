//! The user's policy: class defaults, rules, and the daemon's settings,
//! read from one TOML file (`policy.toml`; see [`DEFAULT_POLICY`] and
//! `docs/policy.md` for the format).
//!
//! # How a decision is made
//!
//! For one classified call, in this order; the first step that matches
//! decides and nothing after it is looked at:
//!
//! 1. **Built-in self-protection** ([`protect`]): a call that touches
//!    Latch itself (its policy file, database, socket, data folder, binary,
//!    or runs `latch approve …`) is denied. No rule can override it.
//! 2. **The user's `[[rule]]`s, in file order.** The first rule whose
//!    matchers all hold decides with its `effect`. Put narrow rules before
//!    broad ones. A rule with a plain-English `condition` ([`judge`])
//!    decides only if a model judges that the condition holds; the model
//!    is asked only when such a rule could change the outcome (it matches,
//!    comes before the rule or default that would decide otherwise, and
//!    its effect differs from what would follow). Evaluation never asks:
//!    it returns [`Question`]s with the decision *ask*, and is run again
//!    with the [`Answer`]s. A condition that cannot be judged makes its
//!    rule's outcome *ask*, never *allow*.
//! 3. **The class default** from `[defaults]`; SEND is split into
//!    `send_internal` (every address or host in the call is in
//!    `internal_domains`) and `send_external` (anything else, including a
//!    SEND with no recognisable address).
//!
//! The class itself comes from the classifier, where the user's
//! `[servers.NAME.classes]` overrides are the strongest input
//! ([`Policy::user_class`]). [`Policy::explain`] shows every step: the
//! class and its reasons, every rule that matched (not only the one that
//! decided), and the decision.
//!
//! Parsing validates everything at once and reports every problem with its
//! line, column and a fix ([`PolicyError`]); globs and regexes are compiled
//! at parse time, so evaluation only compares.

mod append;
mod audit;
mod cases;
pub mod command;
mod diff;
mod error;
mod evaluate;
mod export;
mod facts;
mod judge;
mod layer;
mod layered;
mod lease;
pub mod listing;
mod model;
pub mod narrow;
mod notify;
pub mod origin;
mod parse;
mod protect;
mod read;
pub mod replay;
mod rule;
mod telegram;
mod threats;
mod under;
mod workspace;

pub use append::{NewRule, append_rule, rule_block};
pub use audit::AuditSettings;
pub use cases::{Case, CaseResult, CaseTable};
pub use diff::{PolicyChange, PolicyDiff, compare};
pub use error::{PolicyError, Problem, ProblemKind, render_problems};
pub use evaluate::{Evaluation, Explanation, OUTSIDE_WORKSPACE_RULE, Otherwise, RuleMatch, SELF_PROTECT_RULE};
pub use export::{BadEndpoint, ExportConf, LOGS_PATH, logs_url};
pub use facts::Facts;
pub use judge::{
    Answer, DEFAULT_JUDGE_CACHE_SIZE, DEFAULT_JUDGE_CACHE_TTL_SECONDS, DEFAULT_JUDGE_TIMEOUT_MS, JudgeConf, Judgement,
    Provider, Question,
};
pub use layer::Layer;
pub use layered::{LOCKDOWN_RULE, MANAGED_RULE_PREFIX};
pub use model::{DEFAULT_GRANT_TTL_SECONDS, DEFAULT_HOLD_SECONDS, DEFAULT_POLICY, Policy};
pub use notify::{NotifySettings, QuietHours};
pub use protect::{CONFIG_SUFFIXES, Finding, Kind, LatchPaths, Place, Protected};
pub use telegram::TelegramConf;
pub use threats::ThreatPolicy;
