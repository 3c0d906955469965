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
mod diff;
mod error;
mod facts;
mod judge;
mod notify;
mod parse;
mod protect;
mod rule;
mod telegram;
mod threats;
mod workspace;

use serde::Serialize;

pub use append::{NewRule, append_rule};
pub use audit::AuditSettings;
pub use cases::{Case, CaseResult, CaseTable};
pub use diff::{PolicyChange, PolicyDiff, compare};
pub use error::{PolicyError, Problem, ProblemKind, render_problems};
pub use facts::Facts;
pub use judge::{
    Answer, DEFAULT_JUDGE_CACHE_SIZE, DEFAULT_JUDGE_CACHE_TTL_SECONDS, DEFAULT_JUDGE_TIMEOUT_MS, JudgeConf, Judgement,
    Provider, Question,
};
pub use notify::{NotifySettings, QuietHours};
pub use protect::{CONFIG_SUFFIXES, Finding, Kind, Place, Protected};
pub use telegram::TelegramConf;
pub use threats::ThreatPolicy;

use crate::class::{Class, Decision, Flag, Flags};
use crate::classify::{self, Call, Classification};
use crate::glob::Glob;
use crate::tooldef::ToolDef;
use protect::Guard;
use rule::{Rule, RuleIndex, Subject, class_bit, flags_mask, is_internal};

/// The commented policy file the daemon writes on first run. It parses to
/// [`Policy::builtin`].
pub const DEFAULT_POLICY: &str = include_str!("default.toml");

/// Hold limit when neither the policy nor the client table says otherwise:
/// under the 60 s after which common clients give up on a call.
pub const DEFAULT_HOLD_SECONDS: u64 = 50;
/// How long an approval grant stays usable, by default.
pub const DEFAULT_GRANT_TTL_SECONDS: u64 = 600;
/// The `rule` of an [`Evaluation`] decided by self-protection.
pub const SELF_PROTECT_RULE: &str = "builtin:self-protect";
/// The built-in ask on `outside_workspace` when no rule requiring the flag
/// allowed the call.
pub const OUTSIDE_WORKSPACE_RULE: &str = "builtin:outside-workspace";

/// The outcome of evaluating the policy on one classified call.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub decision: Decision,
    /// The rule that decided ([`SELF_PROTECT_RULE`], a rule's name, or
    /// `rule #N (line L)`), or `None` when a class default did.
    pub rule: Option<String>,
    /// Why, for a person: the rule or default that decided, and what matched.
    pub reasons: Vec<String>,
    /// Line of the deciding user rule's `[[rule]]` header (for
    /// [`NewRule::insert_before`]).
    pub rule_line: Option<usize>,
    /// Flags the policy found beyond the classifier's
    /// ([`Flag::SelfProtect`]).
    pub added_flags: Flags,
    /// Conditions a model must judge before this call is decided, in rule
    /// order. While any is open the decision is *ask* (fail closed):
    /// evaluate again with [`Answer`]s ([`Policy::evaluate_judged`]).
    pub questions: Vec<Question>,
}

/// Decision per class; SEND split by where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Defaults {
    pub read: Decision,
    pub write: Decision,
    pub send_internal: Decision,
    pub send_external: Decision,
    pub execute: Decision,
    pub submit: Decision,
    pub transfer_value: Decision,
    /// For a call flagged `no_evidence`, when stricter than its class's.
    pub no_evidence: Decision,
}

impl Defaults {
    const BUILTIN: Defaults = Defaults {
        read: Decision::Allow,
        write: Decision::Allow,
        send_internal: Decision::Allow,
        send_external: Decision::Ask,
        execute: Decision::Ask,
        submit: Decision::Ask,
        transfer_value: Decision::Deny,
        no_evidence: Decision::Ask,
    };
}

/// `[servers.NAME]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ServerConf {
    pub name: String,
    pub hold_seconds: Option<u64>,
    /// Tool (glob) → class, plain names first, then globs in file order.
    pub classes: Vec<(Glob, Class)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    defaults: Defaults,
    internal_domains: Vec<String>,
    servers: Vec<ServerConf>,
    rules: Vec<Rule>,
    index: RuleIndex,
    hold_seconds: Option<u64>,
    grant_ttl_seconds: u64,
    /// `[approvals] in_client`: MCP clients (by `clientInfo.name`) a
    /// person answers in, so the shim may ask there too.
    in_client: Vec<String>,
    guard: Guard,
    warnings: Vec<Problem>,
    notify: NotifySettings,
    /// `[judge]`: the model that judges conditions.
    judge: Option<JudgeConf>,
    /// Some rule has a `condition`.
    conditional: bool,
    audit: AuditSettings,
    telegram: Option<TelegramConf>,
    /// `[workspace] paths`: folders that count as every server's workspace.
    workspace: Vec<String>,
    /// `[threats]`, `[[limits]]`, `[budget]`.
    threats: ThreatPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::builtin()
    }
}

/// One rule that matched a call, for [`Explanation`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    /// [`SELF_PROTECT_RULE`], the rule's name, or `rule #N (line L)`.
    pub rule: String,
    /// Line of its `[[rule]]` header; `None` for built-in rules.
    pub line: Option<usize>,
    pub effect: Decision,
    /// What it matches on, in one line.
    pub matches: String,
    /// This is the rule that decided.
    pub decided: bool,
    /// Its plain-English condition, if it has one.
    pub condition: Option<String>,
    /// What the model judged about the condition: `None` when it was not
    /// asked (or could not answer).
    pub holds: Option<bool>,
}

/// What would decide if no open condition held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Otherwise {
    pub decision: Decision,
    /// The rule, `None` for a class default.
    pub rule: Option<String>,
}

/// Everything about one call's decision, as `latch policy explain` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub server: String,
    pub tool: String,
    pub class: Class,
    pub flags: Vec<Flag>,
    /// Hosts and e-mail domains found in the arguments.
    pub domains: Vec<String>,
    /// Why this class, strongest first.
    pub class_reasons: Vec<String>,
    pub decision: Decision,
    /// The rule that decided, `None` for a class default.
    pub rule: Option<String>,
    /// `builtin`, `rule`, `default`, or `model` while a condition waits
    /// for the model (the decision is then *ask*).
    pub decided_by: &'static str,
    /// Class reasons, then why this decision.
    pub reasons: Vec<String>,
    /// Every rule that matched, in evaluation order.
    pub matched_rules: Vec<RuleMatch>,
    /// Conditions the model would be asked about, in order.
    pub questions: Vec<Question>,
    /// When `questions` is not empty: the decision if none of them holds.
    pub otherwise: Option<Otherwise>,
}

impl Policy {
    /// The product's defaults, as [`DEFAULT_POLICY`] says: READ allow,
    /// WRITE allow, SEND allow internal / ask external, EXECUTE ask, SUBMIT
    /// ask, TRANSFER_VALUE deny; one rule (a write to a persistence place
    /// asks); no internal domains.
    pub fn builtin() -> Policy {
        static BUILTIN: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
        BUILTIN.get_or_init(|| parse::parse(DEFAULT_POLICY).expect("the default policy parses")).clone()
    }

    /// The class defaults alone, no rules: what parsing starts from.
    pub(crate) fn bare() -> Policy {
        Policy {
            defaults: Defaults::BUILTIN,
            internal_domains: Vec::new(),
            servers: Vec::new(),
            rules: Vec::new(),
            index: RuleIndex::default(),
            hold_seconds: None,
            grant_ttl_seconds: DEFAULT_GRANT_TTL_SECONDS,
            in_client: Vec::new(),
            guard: Guard::default(),
            warnings: Vec::new(),
            notify: NotifySettings::default(),
            judge: None,
            conditional: false,
            audit: AuditSettings::default(),
            telegram: None,
            workspace: Vec::new(),
            threats: ThreatPolicy::default(),
        }
    }

    /// Parses and validates a policy file; every problem is reported at once.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        parse::parse(text)
    }

    /// Sets Latch's own paths for self-protection (the daemon calls this
    /// after every parse, from `Paths` and `$HOME`). The Telegram token
    /// file, when the policy names one, is protected too.
    pub fn set_protected(&mut self, mut p: Protected) {
        if let Some(file) = self.telegram.as_ref().and_then(|t| t.token_path(p.home.as_deref())) {
            p.paths.push(file);
        }
        self.guard = Guard::new(&p);
    }

    pub fn internal_domains(&self) -> &[String] {
        &self.internal_domains
    }

    /// Problems that do not stop the policy from loading (a rule that an
    /// earlier rule always decides first).
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// `[notify]`: desktop notification settings.
    pub fn notify(&self) -> &NotifySettings {
        &self.notify
    }

    /// `[judge]`: the model that judges conditions, if configured.
    pub fn judge(&self) -> Option<&JudgeConf> {
        self.judge.as_ref()
    }

    /// Some rule has a `condition` (when not, no evaluation ever returns
    /// [`Question`]s).
    pub fn has_conditions(&self) -> bool {
        self.conditional
    }

    /// Number of `[[rule]]`s.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The user's class override for a server's tool
    /// (`[servers.NAME.classes]`): a plain tool name first, then globs in
    /// file order.
    pub fn user_class(&self, server: &str, tool: &str) -> Option<Class> {
        let s = self.servers.iter().find(|s| s.name == server)?;
        s.classes.iter().find(|(g, _)| g.is_match(tool)).map(|(_, c)| *c)
    }

    /// The hold limit the user set for this server (`[servers.NAME]
    /// hold_seconds`), else the global one (`[approvals] hold_seconds`);
    /// `None` = the daemon's per-client default (or
    /// [`DEFAULT_HOLD_SECONDS`]).
    pub fn hold_seconds(&self, server: &str) -> Option<u64> {
        self.servers.iter().find(|s| s.name == server).and_then(|s| s.hold_seconds).or(self.hold_seconds)
    }

    /// How long an approval grant stays usable (`[approvals]
    /// grant_ttl_seconds`, default 600).
    pub fn grant_ttl_seconds(&self) -> u64 {
        self.grant_ttl_seconds
    }

    /// Whether the person named MCP client `client` (its `clientInfo.name`,
    /// exactly) in `[approvals] in_client`: approvals may then be asked
    /// inside that client too (elicitation). Default: no client.
    pub fn asks_in_client(&self, client: &str) -> bool {
        !client.is_empty() && self.in_client.iter().any(|c| c == client)
    }

    /// How long the audit log keeps its rows (`[audit]`).
    pub fn audit(&self) -> &AuditSettings {
        &self.audit
    }

    /// The `[telegram]` section, when the file has one.
    pub fn telegram(&self) -> Option<&TelegramConf> {
        self.telegram.as_ref()
    }

    /// The default decision for a class; SEND means external SEND.
    pub fn class_default(&self, class: Class) -> Decision {
        let d = &self.defaults;
        match class {
            Class::Read => d.read,
            Class::Write => d.write,
            Class::Send => d.send_external,
            Class::Execute => d.execute,
            Class::Submit => d.submit,
            Class::TransferValue => d.transfer_value,
        }
    }

    /// Evaluates the policy on a classified call: self-protection, then the
    /// first matching rule, then the class default. A rule with a condition
    /// that could change the outcome leaves a [`Question`] (and *ask*).
    pub fn evaluate(&self, call: &Call<'_>, _def: Option<&ToolDef>, cls: &Classification) -> Evaluation {
        self.run(call, cls, &[], None)
    }

    /// [`Policy::evaluate`] with the model's answers to earlier
    /// [`Question`]s. Questions without an answer stay open.
    pub fn evaluate_judged(&self, call: &Call<'_>, cls: &Classification, answers: &[Answer]) -> Evaluation {
        self.run(call, cls, answers, None)
    }

    /// [`Policy::evaluate_judged`] in the server's [`Place`]: relative paths
    /// resolve against its working directory, `$VAR`s from its
    /// environment, and the resolver (the daemon's file system view) finds
    /// symlinks and hard links to protected files.
    pub fn evaluate_in(
        &self,
        call: &Call<'_>,
        cls: &Classification,
        answers: &[Answer],
        place: Place<'_>,
    ) -> Evaluation {
        self.run_in(call, cls, answers, None, place, Facts::default())
    }

    /// [`Policy::evaluate_in`] with what the daemon knows of the call
    /// ([`Facts`]: a tool definition a person approved before).
    pub fn evaluate_with(
        &self,
        call: &Call<'_>,
        cls: &Classification,
        answers: &[Answer],
        place: Place<'_>,
        facts: Facts,
    ) -> Evaluation {
        self.run_in(call, cls, answers, None, place, facts)
    }

    /// [`Policy::explain`] in the server's [`Place`].
    pub fn explain_in(&self, call: &Call<'_>, def: Option<&ToolDef>, place: Place<'_>) -> Explanation {
        let cls = self.classify_in(call, def, place);
        self.explain_with(call, &cls, &[], Some(place))
    }

    /// Classifies a call in the server's [`Place`]: the classifier, then
    /// `outside_workspace` for writes outside the place's workspace.
    pub fn classify_in(&self, call: &Call<'_>, def: Option<&ToolDef>, place: Place<'_>) -> Classification {
        let ctx = classify::Context {
            internal_domains: self.internal_domains(),
            user_class: self.user_class(call.server, call.tool),
        };
        let mut cls = classify::classify(call, def, &ctx);
        let folders = crate::path::workspace::folders(place.env, place.client_roots, &self.workspace);
        crate::path::workspace::flag(&mut cls, call.args, place.env, place.resolver, &folders);
        cls
    }

    /// `[threats]`, `[[limits]]` and `[budget]` (defaults without them).
    pub fn threats(&self) -> &ThreatPolicy {
        &self.threats
    }

    /// `[workspace] paths`, as written.
    pub fn workspace_paths(&self) -> &[String] {
        &self.workspace
    }

    /// The environment paths are read in when the caller gives none.
    pub fn default_path_env(&self) -> &crate::path::PathEnv {
        self.guard.default_env()
    }

    /// Classifies the call and evaluates the policy, keeping every rule
    /// that matched.
    pub fn explain(&self, call: &Call<'_>, def: Option<&ToolDef>) -> Explanation {
        self.explain_judged(call, def, &[])
    }

    /// [`Policy::explain`] with the model's answers.
    pub fn explain_judged(&self, call: &Call<'_>, def: Option<&ToolDef>, answers: &[Answer]) -> Explanation {
        let ctx = classify::Context {
            internal_domains: self.internal_domains(),
            user_class: self.user_class(call.server, call.tool),
        };
        let cls = classify::classify(call, def, &ctx);
        self.explain_classified_judged(call, &cls, answers)
    }

    /// [`Policy::explain`] for a call already classified.
    pub fn explain_classified(&self, call: &Call<'_>, cls: &Classification) -> Explanation {
        self.explain_classified_judged(call, cls, &[])
    }

    /// [`Policy::explain_classified`] with the model's answers.
    pub fn explain_classified_judged(&self, call: &Call<'_>, cls: &Classification, answers: &[Answer]) -> Explanation {
        self.explain_with(call, cls, answers, None)
    }

    fn explain_with(
        &self,
        call: &Call<'_>,
        cls: &Classification,
        answers: &[Answer],
        place: Option<Place<'_>>,
    ) -> Explanation {
        let mut matched = Vec::new();
        let env = self.guard.default_env().clone();
        let place = place.unwrap_or(Place::new(&env, None));
        let ev = self.run_in(call, cls, answers, Some(&mut matched), place, Facts::default());
        let otherwise = (!ev.questions.is_empty()).then(|| {
            // As if every open condition were judged not to hold.
            let mut assumed = answers.to_vec();
            let mut e = ev.clone();
            while !e.questions.is_empty() {
                assumed.extend(
                    e.questions.iter().map(|q| Answer::to(q, Judgement::DoesNotHold { reason: String::new() })),
                );
                e = self.run_in(call, cls, &assumed, None, place, Facts::default());
            }
            Otherwise { decision: e.decision, rule: e.rule }
        });
        let mut flags = cls.flags.clone();
        flags.extend(ev.added_flags.iter().copied());
        let decided_by = match ev.rule.as_deref() {
            Some(SELF_PROTECT_RULE) => "builtin",
            _ if !ev.questions.is_empty() => "model",
            Some(_) => "rule",
            None => "default",
        };
        let mut reasons = cls.reasons.clone();
        reasons.extend(ev.reasons.iter().cloned());
        Explanation {
            server: call.server.to_owned(),
            tool: call.tool.to_owned(),
            class: cls.class,
            flags: flags.into_iter().collect(),
            domains: cls.domains.clone(),
            class_reasons: cls.reasons.clone(),
            decision: ev.decision,
            rule: ev.rule,
            decided_by,
            reasons,
            matched_rules: matched,
            questions: ev.questions,
            otherwise,
        }
    }

    /// The evaluation; with `all`, every matching rule is kept. A call
    /// whose arguments were not checked completely ([`Flag::Unchecked`])
    /// is never allowed without asking, whatever a rule or default says.
    fn run(
        &self,
        call: &Call<'_>,
        cls: &Classification,
        answers: &[Answer],
        all: Option<&mut Vec<RuleMatch>>,
    ) -> Evaluation {
        let env = self.guard.default_env().clone();
        self.run_in(call, cls, answers, all, Place::new(&env, None), Facts::default())
    }

    /// [`Policy::run`] with the server's place: its environment, working
    /// directory and the file system's answers. A finding that cannot be
    /// decided statically makes the call ask at least.
    fn run_in(
        &self,
        call: &Call<'_>,
        cls: &Classification,
        answers: &[Answer],
        all: Option<&mut Vec<RuleMatch>>,
        place: Place<'_>,
        facts: Facts,
    ) -> Evaluation {
        let finding = if cls.flags.contains(&Flag::SelfProtect) {
            Some(Finding { deny: true, why: "the classifier flagged it as touching Latch itself".to_owned() })
        } else {
            self.guard.check(call, cls, place)
        };
        let mut ev = match finding {
            Some(f) if !f.deny => {
                let mut ev = self.run_rules(call, cls, answers, all, None, facts);
                if ev.decision == Decision::Allow {
                    ev.decision = Decision::Ask;
                    ev.rule = Some(SELF_PROTECT_RULE.to_owned());
                    ev.rule_line = None;
                }
                ev.reasons.push(format!("self_protect: {}; a person decides (never a plain allow)", f.why));
                ev
            }
            other => self.run_rules(call, cls, answers, all, other.map(|f| f.why), facts),
        };
        if ev.decision == Decision::Allow && cls.flags.contains(&Flag::Unchecked) {
            ev.decision = Decision::Ask;
            ev.reasons.push("arguments not checked completely: asking instead of allowing".to_owned());
        }
        // Only a rule that requires `outside_workspace` allows such a call:
        // a class default, an "always" rule or a rule for every call asks
        // (also in a policy written before the flag existed).
        if ev.decision == Decision::Allow
            && cls.flags.contains(&Flag::OutsideWorkspace)
            && !self.requires_outside(ev.rule.as_deref())
        {
            ev.decision = Decision::Ask;
            ev.rule = Some(OUTSIDE_WORKSPACE_RULE.to_owned());
            ev.rule_line = None;
            ev.reasons.push(
                "outside_workspace: writes outside the workspace; a person decides (only a rule with flags = \
                 [\"outside_workspace\"] allows it)"
                    .to_owned(),
            );
        }
        ev
    }

    /// The rule with this id requires the flag `outside_workspace`.
    fn requires_outside(&self, id: Option<&str>) -> bool {
        let bit = rule::flag_bit(Flag::OutsideWorkspace);
        id.and_then(|id| self.rules.iter().find(|r| r.id == id)).is_some_and(|r| r.flags_required & bit != 0)
    }

    fn run_rules(
        &self,
        call: &Call<'_>,
        cls: &Classification,
        answers: &[Answer],
        all: Option<&mut Vec<RuleMatch>>,
        protect: Option<String>,
        facts: Facts,
    ) -> Evaluation {
        let subject = Subject {
            server: call.server,
            tool: call.tool,
            args: call.args,
            class: class_bit(cls.class),
            flags: flags_mask(&cls.flags),
            domains: &cls.domains,
        };

        // 1. Self-protection, before any rule and never subject to a model.
        if let Some(why) = protect {
            let ev = Evaluation {
                decision: Decision::Deny,
                rule: Some(SELF_PROTECT_RULE.to_owned()),
                reasons: vec![format!("self_protect: {why}; denied by a built-in rule that no policy can override")],
                rule_line: None,
                added_flags: Flags::from([Flag::SelfProtect]),
                questions: Vec::new(),
            };
            if let Some(all) = all {
                all.push(RuleMatch {
                    rule: SELF_PROTECT_RULE.to_owned(),
                    line: None,
                    effect: Decision::Deny,
                    matches: "calls that touch Latch's own files or run `latch` to change it".to_owned(),
                    decided: true,
                    condition: None,
                    holds: None,
                });
                for i in self.index.candidates(call.server, call.tool) {
                    let r = &self.rules[i];
                    if r.matches(&subject) {
                        all.push(rule_match(r, false, None));
                    }
                }
            }
            return ev;
        }

        // 2. Rules in file order: the matching conditional rules up to the
        // first matching rule without a condition, which would decide
        // otherwise. With `all`, later matches are kept for explain.
        let mut conditional: Vec<usize> = Vec::new();
        let mut decider = None;
        let mut later: Vec<usize> = Vec::new();
        for i in self.index.candidates(call.server, call.tool) {
            let r = &self.rules[i];
            if !r.matches(&subject) {
                continue;
            }
            if decider.is_some() {
                later.push(i);
            } else if r.condition.is_some() {
                conditional.push(i);
            } else {
                decider = Some(i);
                if all.is_none() {
                    break;
                }
            }
        }
        // 3. Or the class default.
        let fallback = match decider {
            Some(i) => rule_decides(&self.rules[i], None),
            None => self.class_default_evaluation(cls, facts),
        };
        if conditional.is_empty() && all.is_none() {
            return fallback;
        }

        // The conditions, in order: one that holds decides; one that does
        // not hold is skipped; one that cannot be judged decides *ask*; one
        // not judged yet is a question, unless its answer cannot matter.
        let mut holds: Vec<Option<bool>> = vec![None; conditional.len()];
        let mut notes = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        let mut outcome = (fallback, decider);
        for (k, &i) in conditional.iter().enumerate() {
            let r = &self.rules[i];
            let c = r.condition.as_ref().expect("a conditional rule");
            match answers.iter().find(|a| a.rule == r.id && a.condition == c.text).map(|a| &a.judgement) {
                Some(Judgement::Holds { reason }) => {
                    holds[k] = Some(true);
                    outcome = (rule_decides(r, Some(reason)), Some(i));
                    break;
                }
                Some(Judgement::DoesNotHold { reason }) => {
                    holds[k] = Some(false);
                    notes.push(format!(
                        "{}: the model judged that {:?} does not hold ({})",
                        r.label(),
                        c.text,
                        or_no_reason(reason)
                    ));
                }
                Some(Judgement::Unavailable { why }) => {
                    let ev = Evaluation {
                        decision: Decision::Ask,
                        rule: Some(r.id.clone()),
                        reasons: vec![format!(
                            "{} matched: {} → {} if {:?}, but the condition could not be judged: {why}; asking you \
                             instead",
                            r.label(),
                            r.summary,
                            r.effect,
                            c.text
                        )],
                        rule_line: Some(r.line),
                        added_flags: Flags::new(),
                        questions: Vec::new(),
                    };
                    outcome = (ev, Some(i));
                    break;
                }
                None => open.push(i),
            }
        }
        // A last open rule whose effect is what follows anyway cannot
        // change the outcome, whatever the model says.
        while open.last().is_some_and(|&i| self.rules[i].effect == outcome.0.decision) {
            open.pop();
        }
        let (mut ev, decided) = if open.is_empty() {
            outcome
        } else {
            let first = &self.rules[open[0]];
            let ev = Evaluation {
                decision: Decision::Ask,
                rule: Some(first.id.clone()),
                reasons: open
                    .iter()
                    .map(|&i| {
                        let r = &self.rules[i];
                        let c = &r.condition.as_ref().expect("a conditional rule").text;
                        format!(
                            "{}: its condition {c:?} has not been judged by the model; asking you instead",
                            r.label()
                        )
                    })
                    .collect(),
                rule_line: Some(first.line),
                added_flags: Flags::new(),
                questions: open
                    .iter()
                    .map(|&i| {
                        let r = &self.rules[i];
                        Question {
                            rule: r.id.clone(),
                            line: r.line,
                            condition: r.condition.as_ref().expect("a conditional rule").text.clone(),
                            effect: r.effect,
                        }
                    })
                    .collect(),
            };
            (ev, None)
        };
        if !notes.is_empty() {
            notes.append(&mut ev.reasons);
            ev.reasons = notes;
        }
        if let Some(all) = all {
            for (k, &i) in conditional.iter().enumerate() {
                all.push(rule_match(&self.rules[i], decided == Some(i), holds[k]));
            }
            for i in decider.into_iter().chain(later) {
                all.push(rule_match(&self.rules[i], decided == Some(i), None));
            }
        }
        ev
    }

    fn class_default_evaluation(&self, cls: &Classification, facts: Facts) -> Evaluation {
        let (decision, what) = if cls.class == Class::Send {
            let internal = !cls.domains.is_empty()
                && !cls.flags.contains(&Flag::External)
                && cls.domains.iter().all(|d| is_internal(d, &self.internal_domains));
            if internal {
                (self.defaults.send_internal, "internal SEND (every address is in internal_domains)")
            } else if cls.domains.is_empty() {
                (self.defaults.send_external, "SEND with no recognised address (treated as external)")
            } else {
                (self.defaults.send_external, "external SEND")
            }
        } else if let Some(d) =
            facts::no_evidence_default(cls, facts, self.defaults.no_evidence, self.class_default(cls.class))
        {
            d
        } else {
            (self.class_default(cls.class), cls.class.as_str())
        };
        Evaluation {
            decision,
            rule: None,
            reasons: vec![format!("no rule matched; default for {what}: {decision}")],
            rule_line: None,
            added_flags: Flags::new(),
            questions: Vec::new(),
        }
    }
}

fn or_no_reason(reason: &str) -> &str {
    if reason.trim().is_empty() { "no reason given" } else { reason }
}

/// A rule decides; `model` is the model's reason when its condition held.
fn rule_decides(r: &Rule, model: Option<&str>) -> Evaluation {
    let mut why = format!("{} matched: {}", r.label(), r.summary);
    if let (Some(c), Some(m)) = (&r.condition, model) {
        why.push_str(&format!(", and the model judged that {:?} holds ({})", c.text, or_no_reason(m)));
    }
    why.push_str(&format!(" → {}", r.effect));
    if let Some(reason) = &r.reason {
        why.push_str(": ");
        why.push_str(reason);
    }
    Evaluation {
        decision: r.effect,
        rule: Some(r.id.clone()),
        reasons: vec![why],
        rule_line: Some(r.line),
        added_flags: Flags::new(),
        questions: Vec::new(),
    }
}

fn rule_match(r: &Rule, decided: bool, holds: Option<bool>) -> RuleMatch {
    RuleMatch {
        rule: r.id.clone(),
        line: Some(r.line),
        effect: r.effect,
        matches: r.summary.clone(),
        decided,
        condition: r.condition.as_ref().map(|c| c.text.clone()),
        holds,
    }
}
