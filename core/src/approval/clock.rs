//! Keeping the machine's times on elapsed time when the wall clock moves.
//!
//! The machine's times are Unix milliseconds from the daemon's events, and a
//! grant is usable until `expires_at`. A wall clock set backwards would
//! lengthen every grant by the jump (and forwards shorten it). The daemon
//! watches the wall clock against a clock that only counts elapsed time
//! and, when the two part, sends [`Event::ClockJumped`](super::Event): every
//! time the machine holds moves with the wall clock, so a grant keeps
//! lasting its TTL of elapsed time and the stored values stay wall-clock
//! times a person can read. A restarted daemon cannot know what elapsed
//! while it was down; [`Event::Restarted`](super::Event) bounds each grant
//! by its TTL from the restart.

use super::state::State;

/// Moves every time the machine holds by `by_ms`.
pub(super) fn shift(state: &mut State, by_ms: i64) {
    for g in &mut state.grants {
        g.created_at = g.created_at.saturating_add(by_ms);
        g.expires_at = g.expires_at.saturating_add(by_ms);
    }
    for p in &mut state.pending {
        p.created_at = p.created_at.saturating_add(by_ms);
        for w in &mut p.waiters {
            w.hold_until = w.hold_until.saturating_add(by_ms);
        }
    }
    for r in &mut state.recent {
        r.at = r.at.saturating_add(by_ms);
    }
}

/// After a restart at `now_ms`: nothing restored starts in the future, and
/// no grant lasts longer than its TTL from now (the clock may have been
/// set back while no daemon watched it).
pub(super) fn restarted(state: &mut State, now_ms: i64) {
    for g in &mut state.grants {
        let ttl = g.expires_at.saturating_sub(g.created_at).max(0);
        g.created_at = g.created_at.min(now_ms);
        g.expires_at = g.expires_at.min(now_ms.saturating_add(ttl));
    }
    for p in &mut state.pending {
        p.created_at = p.created_at.min(now_ms);
    }
    for r in &mut state.recent {
        r.at = r.at.min(now_ms);
    }
}
