//! A managed policy layered above the user's (issue 20).
//!
//! A company's security team writes a managed policy; the person writes
//! their own. [`Policy::layered`] joins the two parsed policies, a pure
//! function: both layers are evaluated on every call, each with its own
//! classification (its `[servers]` class overrides, `internal_domains` and
//! `[workspace]`), and **the stricter of the two decisions wins** (deny >
//! ask > allow). So the managed rules and defaults are a floor the user's
//! file can only tighten: a user rule that allows what the managed policy
//! asks for has no effect ([`Policy::overridden`] names each such rule and
//! what wins over it). At equal strictness a managed rule is named as the
//! decider before the user's layer.
//!
//! Settings beyond rules and defaults join the same way, always towards
//! the stricter: the shorter `grant_ttl_seconds`; the managed
//! `hold_seconds` where it sets one; `in_client` only for clients both
//! layers name; the managed `[judge]` when it has one (a managed file with
//! a condition must have one, so the user's model never judges a managed
//! condition); `[threats]` effects and
//! result handling the stricter of the two, the taint selectors of both,
//! the `[[limits]]` of both (managed first), the managed `[budget]` when
//! it has one; `[audit]` retention the longer. Notifications and Telegram
//! stay the user's.
//!
//! [`Policy::lockdown`] is what stands in for a managed policy that exists
//! but cannot be used (not root's, writable by others, not valid): every
//! call is denied, saying why.

use std::sync::Arc;

use super::audit::AuditSettings;
use super::error::{Problem, ProblemKind};
use super::evaluate::{Evaluation, Explanation};
use super::facts::Facts;
use super::judge::Answer;
use super::layer::Layer;
use super::model::Policy;
use super::protect::Place;
use super::rule::{Rule, class_bit};
use super::threats::ThreatPolicy;
use crate::class::{Class, Decision};
use crate::classify::{self, Call, Classification};
use crate::glob::Glob;
use crate::tooldef::ToolDef;

/// How a managed rule's id starts, so that it is told from the user's in
/// every decision, audit row and question to the model.
pub const MANAGED_RULE_PREFIX: &str = "managed rule ";

/// The name of the rule that denies every call while the managed policy
/// cannot be used ([`Policy::lockdown`]).
pub const LOCKDOWN_RULE: &str = "managed-policy-unusable";

fn managed_id(r: &Rule) -> String {
    if r.id.starts_with("rule #") {
        format!("managed {}", r.id)
    } else {
        format!("{MANAGED_RULE_PREFIX}{:?} (line {})", r.id, r.line)
    }
}

impl Policy {
    /// `user` with `managed` layered above it (see the module
    /// documentation). Both are parsed already; the result is what the
    /// daemon enforces and `latch policy explain` shows.
    pub fn layered(managed: Policy, user: Policy) -> Policy {
        let mut m = managed;
        m.managed = None;
        for r in &mut m.rules {
            r.id = managed_id(r);
        }
        let mut p = user;
        p.grant_ttl_seconds = p.grant_ttl_seconds.min(m.grant_ttl_seconds);
        if m.judge.is_some() {
            p.judge = m.judge.clone();
        }
        p.conditional |= m.conditional;
        p.audit = longer(m.audit, p.audit);
        p.threats = stricter_threats(&m.threats, &p.threats);
        p.managed = Some(Arc::new(m));
        p
    }

    /// The managed layer, when this policy has one.
    pub fn managed_layer(&self) -> Option<&Policy> {
        self.managed.as_deref()
    }

    /// What stands in for a managed policy that exists but cannot be used:
    /// every call is denied, with `why` (and what to do) as the reason.
    pub fn lockdown(why: &str) -> Policy {
        let why: String = why.chars().take(600).collect();
        let reason = toml::Value::String(format!(
            "the managed policy cannot be used ({why}); every call is denied until whoever manages Latch on this \
             machine fixes it"
        ));
        let text = format!(
            "[defaults]\nread = \"deny\"\nwrite = \"deny\"\nsend_internal = \"deny\"\nsend_external = \"deny\"\n\
             execute = \"deny\"\nsubmit = \"deny\"\ntransfer_value = \"deny\"\n\n[[rule]]\nname = \"{LOCKDOWN_RULE}\"\n\
             tool = \"*\"\neffect = \"deny\"\nreason = {reason}\n"
        );
        super::parse::parse(&text).expect("the lockdown policy parses")
    }

    /// The user's rules that loosen what the managed layer sets, so have no
    /// effect where it is stricter: for `latch policy check`, one warning
    /// per rule at its line, naming what wins. Empty without a managed
    /// layer. Conservative: a rule is named when some call it matches may
    /// meet a stricter managed rule or default.
    pub fn overridden(&self) -> Vec<Problem> {
        let Some(m) = self.managed.as_deref() else { return Vec::new() };
        let hint = "the managed policy is a floor your file can only tighten: remove the rule, or ask whoever \
                    manages Latch here to change the managed policy";
        let mut out = Vec::new();
        for r in self.rules.iter().filter(|r| r.effect != Decision::Deny) {
            let by_rule = m.rules.iter().find(|x| x.condition.is_none() && x.effect > r.effect && may_overlap(x, r));
            let message = if let Some(x) = by_rule {
                format!(
                    "{} ({}) has no effect on calls that {} of the managed policy ({} → {}) also matches: the \
                     stricter layer decides",
                    r.label(),
                    r.effect,
                    x.id,
                    x.summary,
                    x.effect
                )
            } else {
                let stricter: Vec<String> = Class::ALL
                    .iter()
                    .filter(|c| r.classes & class_bit(**c) != 0)
                    .filter_map(|&c| {
                        let d = if c == Class::Send {
                            m.defaults.send_internal.max(m.defaults.send_external)
                        } else {
                            m.class_default(c)
                        };
                        (d > r.effect).then(|| format!("{c} = {d}"))
                    })
                    .collect();
                if stricter.is_empty() {
                    continue;
                }
                format!(
                    "{} ({}) has no effect where the managed policy's defaults are stricter ({}), unless a managed \
                     rule allows the call: the stricter layer decides",
                    r.label(),
                    r.effect,
                    stricter.join(", ")
                )
            };
            out.push(Problem { kind: ProblemKind::NoEffect, line: r.line, column: 1, message, hint: hint.to_owned() });
        }
        out
    }

    /// [`Policy::evaluate_with`] for a policy with a managed layer, each
    /// layer on its own classification (`managed`, `user`): which layer
    /// decided, how, and what the managed layer alone decided. Without a
    /// managed layer, the user's evaluation (and `None`).
    pub fn evaluate_layered(
        &self,
        call: &Call<'_>,
        managed: &Classification,
        user: &Classification,
        answers: &[Answer],
        place: Place<'_>,
        facts: Facts,
    ) -> (Layer, Evaluation, Option<Decision>) {
        match self.managed.as_deref() {
            Some(m) => self.evaluate_layers(
                m,
                |p, a| p.run_one(call, managed, a, None, place, facts),
                |p, a| p.run_one(call, user, a, None, place, facts),
                answers,
            ),
            None => {
                let ev = self.run_one(call, user, answers, None, place, facts);
                (Layer::of(Layer::User, ev.rule.as_deref()), ev, None)
            }
        }
    }

    /// The classifier with this layer's class overrides and internal
    /// domains (no place: no workspace check).
    pub(super) fn classify_plain(&self, call: &Call<'_>, def: Option<&ToolDef>) -> Classification {
        let ctx = classify::Context {
            internal_domains: self.internal_domains(),
            user_class: self.user_class(call.server, call.tool),
        };
        classify::classify(call, def, &ctx)
    }

    /// Evaluates both layers, each on its own classification, and keeps
    /// the stricter outcome.
    pub(super) fn evaluate_layers(
        &self,
        m: &Policy,
        mut managed: impl FnMut(&Policy, &[Answer]) -> Evaluation,
        mut user: impl FnMut(&Policy, &[Answer]) -> Evaluation,
        answers: &[Answer],
    ) -> (Layer, Evaluation, Option<Decision>) {
        let me = managed(m, answers);
        let managed_alone = me.decision;
        let ue = user(self, answers);
        let user_line = ue.rule_line;
        let (from, mut ev, other) = match pick(side(&me), side(&ue)) {
            Layer::Managed => (Layer::Managed, me, ue),
            _ => (Layer::User, ue, me),
        };
        if !ev.questions.is_empty() && !other.questions.is_empty() {
            ev.questions.extend(other.questions);
            ev.reasons.extend(other.reasons);
        } else if from == Layer::Managed && other.decision < ev.decision {
            ev.reasons.push(format!(
                "the managed policy decides: it is stricter here than your policy, which alone would {}",
                other.decision
            ));
        }
        // Where an "always" rule goes in the user's file: before the user
        // rule that decides there, whichever layer won.
        ev.rule_line = user_line;
        (Layer::of(from, ev.rule.as_deref()), ev, Some(managed_alone))
    }

    /// [`Policy::evaluate_layers`] for `explain`: every rule that matched
    /// in either layer (the managed layer's first), and which decided.
    pub(super) fn explain_layers(
        &self,
        m: &Policy,
        mut managed: impl FnMut(&Policy, &[Answer]) -> Explanation,
        mut user: impl FnMut(&Policy, &[Answer]) -> Explanation,
        answers: &[Answer],
    ) -> Explanation {
        let mx = managed(m, answers);
        let ux = user(self, answers);
        let ms = Side { decision: mx.decision, open: !mx.questions.is_empty(), by_rule: mx.rule.is_some() };
        let us = Side { decision: ux.decision, open: !ux.questions.is_empty(), by_rule: ux.rule.is_some() };
        let from = pick(ms, us);
        let (mut x, mut other) =
            if from == Layer::Managed { (mx.clone(), ux.clone()) } else { (ux.clone(), mx.clone()) };
        for r in &mut other.matched_rules {
            r.decided = false;
        }
        let other_matched: Vec<_> =
            other.matched_rules.into_iter().filter(|r| !x.matched_rules.iter().any(|y| y.rule == r.rule)).collect();
        x.matched_rules = if from == Layer::Managed {
            x.matched_rules.into_iter().chain(other_matched).collect()
        } else {
            other_matched.into_iter().chain(x.matched_rules).collect()
        };
        if !x.questions.is_empty() && !other.questions.is_empty() {
            x.questions.extend(other.questions);
        } else if from == Layer::Managed && ux.decision < mx.decision {
            x.reasons.push(format!(
                "the managed policy decides: it is stricter here than your policy, which alone would {}",
                ux.decision
            ));
        }
        x.layer = Layer::of(from, x.rule.as_deref());
        x
    }
}

#[derive(Clone, Copy)]
struct Side {
    decision: Decision,
    /// Conditions wait for the model (the decision is *ask* meanwhile).
    open: bool,
    by_rule: bool,
}

fn side(e: &Evaluation) -> Side {
    Side { decision: e.decision, open: !e.questions.is_empty(), by_rule: e.rule.is_some() }
}

/// Which layer's outcome stands: a settled deny first (nothing the model
/// says can change it), then a layer waiting for the model, then the
/// stricter decision; at equal strictness a managed rule, else the user's
/// layer.
fn pick(m: Side, u: Side) -> Layer {
    if !m.open && m.decision == Decision::Deny {
        return Layer::Managed;
    }
    if !u.open && u.decision == Decision::Deny {
        return Layer::User;
    }
    if m.open {
        return Layer::Managed;
    }
    if u.open {
        return Layer::User;
    }
    match m.decision.cmp(&u.decision) {
        std::cmp::Ordering::Greater => Layer::Managed,
        std::cmp::Ordering::Less => Layer::User,
        std::cmp::Ordering::Equal if m.by_rule => Layer::Managed,
        std::cmp::Ordering::Equal => Layer::User,
    }
}

/// Retention: the layer that keeps more wins (no limit beats any limit).
fn longer(m: AuditSettings, u: AuditSettings) -> AuditSettings {
    let max = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| a.max(b));
    AuditSettings { keep_days: max(m.keep_days, u.keep_days), max_rows: max(m.max_rows, u.max_rows) }
}

fn stricter_threats(m: &ThreatPolicy, u: &ThreatPolicy) -> ThreatPolicy {
    let mut t = u.clone();
    t.changed_tools = m.changed_tools.max(u.changed_tools);
    t.poisoned_tools = m.poisoned_tools.max(u.poisoned_tools);
    t.also = Some(Box::new(m.clone()));
    t.taint.effect = m.taint.effect.max(u.taint.effect);
    for (mine, theirs) in [
        (&mut t.taint.untrusted, &m.taint.untrusted),
        (&mut t.taint.private, &m.taint.private),
        (&mut t.taint.sinks, &m.taint.sinks),
    ] {
        for s in theirs {
            if !mine.contains(s) {
                mine.push(s.clone());
            }
        }
    }
    let mut limits: Vec<_> = m
        .limits
        .iter()
        .cloned()
        .map(|mut l| {
            l.label = format!("managed {}", l.label);
            l
        })
        .collect();
    limits.extend(u.limits.iter().cloned());
    t.limits = limits;
    if m.budget.is_some() {
        t.budget = m.budget.clone();
    }
    t
}

/// Some call may match both rules (conservative: globs with wildcards on
/// both sides are taken to overlap).
fn may_overlap(a: &Rule, b: &Rule) -> bool {
    a.classes & b.classes != 0
        && a.flags_required & b.flags_forbidden == 0
        && b.flags_required & a.flags_forbidden == 0
        && globs_overlap(&a.servers, &b.servers)
        && globs_overlap(&a.tools, &b.tools)
}

fn globs_overlap(x: &[Glob], y: &[Glob]) -> bool {
    x.is_empty()
        || y.is_empty()
        || x.iter().any(|g| {
            y.iter().any(|h| match (g.as_literal(), h.as_literal()) {
                (Some(a), Some(b)) => a == b,
                (Some(a), None) => h.is_match(a),
                (None, Some(b)) => g.is_match(b),
                (None, None) => true,
            })
        })
}
