//! Evaluating the policy on one classified call: self-protection, the
//! user's rules in file order, the class default (see the module
//! documentation of [`policy`](super)), and the explanation of it all.

use serde::Serialize;

use super::facts::{self, Facts};
use super::judge::{Answer, Judgement, Question};
use super::layer::Layer;
use super::model::Policy;
use super::protect::{Finding, Place};
use super::rule::{self, Rule, Subject, is_internal};
use super::under::Resolving;
use crate::class::{Class, Decision, Flag, Flags};
use crate::classify::{self, Call, Classification};
use crate::tooldef::ToolDef;

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
    /// The layer that decided: the managed policy, the user's, or a
    /// built-in rule ([`Policy::layered`]).
    pub layer: Layer,
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
        if let Some(m) = self.managed.as_deref() {
            let one = |p: &Policy, a: &[Answer]| {
                let cls = p.classify_in(call, def, place);
                p.explain_one(call, &cls, a, Some(place))
            };
            return self.explain_layers(m, one, one, &[]);
        }
        let cls = self.classify_in(call, def, place);
        self.explain_with(call, &cls, &[], Some(place))
    }

    /// Classifies a call in the server's [`Place`]: the classifier, then
    /// `outside_workspace` and the sensitive places its paths lead to.
    pub fn classify_in(&self, call: &Call<'_>, def: Option<&ToolDef>, place: Place<'_>) -> Classification {
        let ctx = classify::Context {
            internal_domains: self.internal_domains(),
            user_class: self.user_class(call.server, call.tool),
        };
        let mut cls = classify::classify(call, def, &ctx);
        let folders = crate::path::workspace::folders(place.env, place.client_roots, &self.workspace);
        crate::path::workspace::flag_in_place(&mut cls, call.args, place.env, place.resolver, &folders);
        cls
    }

    /// Classifies the call and evaluates the policy, keeping every rule
    /// that matched.
    pub fn explain(&self, call: &Call<'_>, def: Option<&ToolDef>) -> Explanation {
        self.explain_judged(call, def, &[])
    }

    /// [`Policy::explain`] with the model's answers.
    pub fn explain_judged(&self, call: &Call<'_>, def: Option<&ToolDef>, answers: &[Answer]) -> Explanation {
        if let Some(m) = self.managed.as_deref() {
            let one = |p: &Policy, a: &[Answer]| p.explain_one(call, &p.classify_plain(call, def), a, None);
            return self.explain_layers(m, one, one, answers);
        }
        let cls = self.classify_plain(call, def);
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

    /// Both layers on the same classification when there is a managed one.
    fn explain_with(
        &self,
        call: &Call<'_>,
        cls: &Classification,
        answers: &[Answer],
        place: Option<Place<'_>>,
    ) -> Explanation {
        match self.managed.as_deref() {
            Some(m) => {
                let one = |p: &Policy, a: &[Answer]| p.explain_one(call, cls, a, place);
                self.explain_layers(m, one, one, answers)
            }
            None => self.explain_one(call, cls, answers, place),
        }
    }

    /// One layer's explanation.
    pub(super) fn explain_one(
        &self,
        call: &Call<'_>,
        cls: &Classification,
        answers: &[Answer],
        place: Option<Place<'_>>,
    ) -> Explanation {
        let mut matched = Vec::new();
        let env = self.guard.default_env().clone();
        let place = place.unwrap_or(Place::new(&env, None));
        let ev = self.run_one(call, cls, answers, Some(&mut matched), place, Facts::default());
        let otherwise = (!ev.questions.is_empty()).then(|| {
            // As if every open condition were judged not to hold.
            let mut assumed = answers.to_vec();
            let mut e = ev.clone();
            while !e.questions.is_empty() {
                assumed.extend(
                    e.questions.iter().map(|q| Answer::to(q, Judgement::DoesNotHold { reason: String::new() })),
                );
                e = self.run_one(call, cls, &assumed, None, place, Facts::default());
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
        let layer = Layer::of(Layer::User, ev.rule.as_deref());
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
            layer,
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

    /// [`Policy::run_one`], both layers on the same classification when
    /// there is a managed one.
    fn run_in(
        &self,
        call: &Call<'_>,
        cls: &Classification,
        answers: &[Answer],
        all: Option<&mut Vec<RuleMatch>>,
        place: Place<'_>,
        facts: Facts,
    ) -> Evaluation {
        match (self.managed.as_deref(), all) {
            (Some(_), None) => self.evaluate_layered(call, cls, cls, answers, place, facts).1,
            (_, all) => self.run_one(call, cls, answers, all, place, facts),
        }
    }

    /// One layer's evaluation in the server's place: its environment,
    /// working directory and the file system's answers. A finding that
    /// cannot be decided statically makes the call ask at least.
    pub(super) fn run_one(
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
        let at = Resolving::new(place);
        let subject = Subject::of(call, cls, Some(&at));
        let mut ev = match finding {
            Some(f) if !f.deny => {
                let mut ev = self.run_rules(&subject, cls, answers, all, None, facts);
                if ev.decision == Decision::Allow {
                    ev.decision = Decision::Ask;
                    ev.rule = Some(SELF_PROTECT_RULE.to_owned());
                    ev.rule_line = None;
                }
                ev.reasons.push(format!("self_protect: {}; a person decides (never a plain allow)", f.why));
                ev
            }
            other => self.run_rules(&subject, cls, answers, all, other.map(|f| f.why), facts),
        };
        if ev.decision == Decision::Allow && cls.flags.contains(&Flag::Unchecked) {
            ev.decision = Decision::Ask;
            ev.reasons.push("arguments not checked completely: asking instead of allowing".to_owned());
        }
        if ev.decision == Decision::Allow && at.unsure() {
            ev.decision = Decision::Ask;
            ev.reasons.push("a rule on paths could not tell where every path of this call leads: asking".to_owned());
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
        subject: &Subject<'_>,
        cls: &Classification,
        answers: &[Answer],
        all: Option<&mut Vec<RuleMatch>>,
        protect: Option<String>,
        facts: Facts,
    ) -> Evaluation {
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
                for i in self.index.candidates(subject.server, subject.tool) {
                    let r = &self.rules[i];
                    if r.matches(subject) {
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
        for i in self.index.candidates(subject.server, subject.tool) {
            let r = &self.rules[i];
            if !r.matches(subject) {
                continue;
            }
            if decider.is_some() {
                later.push(i);
            } else if r.condition.is_some() {
                conditional.push(i);
            } else {
                decider = Some(i);
                subject.at.inspect(|a| a.freeze());
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
