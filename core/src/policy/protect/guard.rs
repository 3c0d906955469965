//! The compiled form of the protected set, as the policy holds it; what it
//! checks is in the parent module and [`commands`](super::commands).

use super::mentions::Mentions;
use super::places::Places;
use crate::path::PathEnv;

/// The compiled form of [`Protected`].
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Guard {
    pub(super) places: Places,
    pub(super) pids: Vec<u32>,
    /// The environment when the caller gives none: the home only.
    pub(super) env: PathEnv,
    /// Lower-case words without which text that is not a shell command
    /// cannot touch Latch (`latch`, `kill`, protected names that do not
    /// contain `latch`): other text is not parsed.
    pub(super) needles: Vec<String>,
    /// Protected paths spelled out inside longer text.
    pub(super) mentions: Mentions,
}
