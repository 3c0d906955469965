//! Where an "always" rule goes and how far it reaches, from the answer
//! until the driver writes it. A leaf: it imports no component.

use latch_core::policy::narrow;

/// Where an "always" rule goes and how far it reaches, from the answer
/// until the driver writes it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Placed {
    pub narrow: Option<narrow::Narrowing>,
    /// The line of the user's rule that decided the call: the new rule
    /// goes right before it, or that rule would still decide (an "always"
    /// appended after a rule that asks would never be reached).
    pub before: Option<usize>,
}
