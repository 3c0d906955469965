//! The user's policy: class defaults and rules.

use crate::class::{Class, Decision, Flag};
use crate::classify::{Call, Classification};
use crate::tooldef::ToolDef;

/// The outcome of evaluating the policy on one classified call.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub decision: Decision,
    /// The rule that decided, or `None` when a class default did.
    pub rule: Option<String>,
    /// Why, for a person: the rule or default that decided, and what matched.
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    defaults: [(Class, Decision); 6],
    /// SEND to internal addresses only.
    send_internal: Decision,
    internal_domains: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::builtin()
    }
}

impl Policy {
    /// The product's defaults: READ allow, WRITE allow, SEND allow internal
    /// / ask external, EXECUTE ask, SUBMIT ask, TRANSFER_VALUE deny.
    pub fn builtin() -> Policy {
        Policy {
            defaults: [
                (Class::Read, Decision::Allow),
                (Class::Write, Decision::Allow),
                (Class::Send, Decision::Ask),
                (Class::Execute, Decision::Ask),
                (Class::Submit, Decision::Ask),
                (Class::TransferValue, Decision::Deny),
            ],
            send_internal: Decision::Allow,
            internal_domains: Vec::new(),
        }
    }

    pub fn internal_domains(&self) -> &[String] {
        &self.internal_domains
    }

    /// The user's class override for a server's tool.
    pub fn user_class(&self, _server: &str, _tool: &str) -> Option<Class> {
        None
    }

    pub fn class_default(&self, class: Class) -> Decision {
        self.defaults.iter().find(|(c, _)| *c == class).map(|(_, d)| *d).unwrap_or(Decision::Ask)
    }

    pub fn evaluate(&self, _call: &Call<'_>, _def: Option<&ToolDef>, cls: &Classification) -> Evaluation {
        if cls.class == Class::Send && !cls.flags.contains(&Flag::External) && !cls.domains.is_empty() {
            return Evaluation {
                decision: self.send_internal,
                rule: None,
                reasons: vec![format!("default for internal SEND: {}", self.send_internal)],
            };
        }
        let decision = self.class_default(cls.class);
        Evaluation { decision, rule: None, reasons: vec![format!("default for {}: {decision}", cls.class)] }
    }
}
