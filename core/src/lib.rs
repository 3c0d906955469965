//! Latch's decision core: pure functions and state machines, no IO, no
//! clock, no async. The daemon drives them.
//!
//! classify → policy → decision, with redaction for everything that is
//! stored or shown.

pub mod approval;
pub mod canonical;
pub mod class;
pub mod classify;
pub mod glob;
pub mod hook;
pub mod path;
pub mod policy;
pub mod redact;
pub mod shell;
pub mod threat;
pub mod tooldef;

pub use class::{Class, Decision, Flag, Flags};
pub use classify::{Call, Classification};
pub use policy::{Evaluation, Policy};
pub use tooldef::ToolDef;

/// Classification and policy evaluation of one call.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub classification: Classification,
    pub evaluation: Evaluation,
    /// What the managed layer alone decided (`None` without one): where it
    /// asks, no rule of the user's can allow the call, so an "always"
    /// answer would change nothing.
    pub managed: Option<class::Decision>,
}

/// Classifies a call and evaluates the policy on it.
pub fn decide(policy: &Policy, call: &Call<'_>, def: Option<&ToolDef>) -> Verdict {
    decide_judged(policy, call, def, &[])
}

/// [`decide`] with a model's answers to the conditions an earlier
/// evaluation asked about ([`Evaluation::questions`]).
pub fn decide_judged(policy: &Policy, call: &Call<'_>, def: Option<&ToolDef>, answers: &[policy::Answer]) -> Verdict {
    let env = policy.default_path_env().clone();
    decide_in(policy, call, def, answers, policy::Place::new(&env, None))
}

/// [`decide_judged`] in the server's [`policy::Place`]: its working
/// directory and environment, and the daemon's file system view (symlinks,
/// hard links) for self-protection.
pub fn decide_in(
    policy: &Policy,
    call: &Call<'_>,
    def: Option<&ToolDef>,
    answers: &[policy::Answer],
    place: policy::Place<'_>,
) -> Verdict {
    decide_with(policy, call, def, answers, place, policy::Facts::default())
}

/// [`decide_in`] with what the daemon knows of the call beyond it
/// ([`policy::Facts`]).
pub fn decide_with(
    policy: &Policy,
    call: &Call<'_>,
    def: Option<&ToolDef>,
    answers: &[policy::Answer],
    place: policy::Place<'_>,
    facts: policy::Facts,
) -> Verdict {
    let Some(managed) = policy.managed_layer() else {
        let classification = policy.classify_in(call, def, place);
        let evaluation = policy.evaluate_with(call, &classification, answers, place, facts);
        return Verdict { classification, evaluation, managed: None };
    };
    // Each layer classifies with its own overrides and domains.
    let m = managed.classify_in(call, def, place);
    let u = policy.classify_in(call, def, place);
    let (layer, evaluation, managed) = policy.evaluate_layered(call, &m, &u, answers, place, facts);
    let classification = if layer == policy::Layer::Managed { m } else { u };
    Verdict { classification, evaluation, managed }
}
