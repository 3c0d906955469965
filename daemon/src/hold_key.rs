//! The key of a held result's approval ([`crate::results`]): its
//! definition hash is `result:` and the hold's own id, so nothing else ever
//! matches it. Apart from `results` so the approval driver can ask about
//! it without importing the component that drives it.

/// The definition-hash prefix of a held result's approval.
pub(crate) const HOLD_KEY: &str = "result:";

/// True for the approval of a held result: answering it "always" writes no
/// rule (a rule would allow the tool's calls, which nobody asked about).
pub(crate) fn writes_no_rule(def_hash: Option<&str>) -> bool {
    def_hash.is_some_and(|h| h.starts_with(HOLD_KEY))
}
