//! What the daemon knows about a call beyond its arguments and definition,
//! given to the evaluation as data (the core reads no state of its own).
//!
//! Today one fact: whether a person has already approved a call of this
//! exact tool definition (server, tool, definition hash) that nothing spoke
//! for. `[defaults] no_evidence` asks the first time for a tool, and the
//! answer is remembered per definition: once known, the class default
//! decides as for any other call. A changed definition is a new one.

use crate::class::{Decision, Flag};
use crate::classify::Classification;

/// Facts about a call that the daemon keeps across calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// A person approved a `no_evidence` call of this tool definition
    /// before (the daemon's memory of known definitions).
    pub known_definition: bool,
}

/// Why the class default applies, and what it is, for a call that no rule
/// decided: `no_evidence` is stricter than the class's own default only
/// while the definition is not known.
pub(crate) fn no_evidence_default(
    cls: &Classification,
    facts: Facts,
    no_evidence: Decision,
    class_default: Decision,
) -> Option<(Decision, &'static str)> {
    if !cls.flags.contains(&Flag::NoEvidence) || no_evidence <= class_default {
        return None;
    }
    Some(if facts.known_definition {
        (class_default, "a call nothing speaks for, of a tool definition a person approved before")
    } else {
        (no_evidence, "a call nothing speaks for (no_evidence; approving one remembers this tool definition)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, Flags};

    fn cls(flags: &[Flag]) -> Classification {
        Classification {
            class: Class::Write,
            flags: flags.iter().copied().collect::<Flags>(),
            reasons: vec![],
            domains: vec![],
        }
    }

    #[test]
    fn an_unknown_definition_gets_the_no_evidence_default() {
        let known = Facts { known_definition: false };
        let got = no_evidence_default(&cls(&[Flag::NoEvidence]), known, Decision::Ask, Decision::Allow);
        assert_eq!(got.map(|g| g.0), Some(Decision::Ask));
    }

    #[test]
    fn a_known_definition_gets_the_class_default() {
        let known = Facts { known_definition: true };
        let got = no_evidence_default(&cls(&[Flag::NoEvidence]), known, Decision::Ask, Decision::Allow);
        assert_eq!(got.map(|g| g.0), Some(Decision::Allow));
        // Never looser than the class default: a strict class stays strict.
        assert_eq!(no_evidence_default(&cls(&[Flag::NoEvidence]), known, Decision::Ask, Decision::Deny), None);
    }

    #[test]
    fn calls_with_evidence_are_not_touched() {
        for known_definition in [false, true] {
            let facts = Facts { known_definition };
            assert_eq!(no_evidence_default(&cls(&[]), facts, Decision::Ask, Decision::Allow), None);
        }
    }
}
