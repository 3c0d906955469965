//! The machine's configuration: durations and bounds, and the channels
//! whose answers count.

/// Channels whose answers count. Anything else (`shim` above all) is refused.
pub const ANSWERING_CHANNELS: [&str; 6] = ["tui", "cli", "telegram", "notification", "desktop", IN_CLIENT];

/// The channel of an answer a person gave inside the MCP client itself
/// (elicitation, for clients the policy names). It reaches no further than
/// the one call: any other scope is refused.
pub const IN_CLIENT: &str = "in-client";

/// Version of the snapshot format.
pub const SNAPSHOT_VERSION: u32 = 1;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Durations (milliseconds) and bounds. Not persisted: it comes from the
/// daemon's configuration each start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How long a call is held when the `Ask` names no `hold_ms`. The
    /// default stays under the 60 s request timeout of the TypeScript SDK.
    pub hold_ms: i64,
    /// Life of a single-use grant left by an answer with scope `Once`.
    pub once_ttl_ms: i64,
    /// Life of a session grant.
    pub session_ttl_ms: i64,
    /// Life of the in-memory grant that stands in for an `Always` rule until
    /// the policy reloads.
    pub always_ttl_ms: i64,
    /// How long an allowed call counts as "recent" for `retry: true`.
    pub retry_ttl_ms: i64,
    /// Pending approvals older than this are withdrawn on `Tick`.
    pub pending_ttl_ms: i64,
    pub max_pending: usize,
    pub max_grants: usize,
    pub max_waiters: usize,
    pub max_recent: usize,
    pub max_recent_per_session: usize,
    pub max_closed: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hold_ms: 50_000,
            once_ttl_ms: 15 * MINUTE_MS,
            session_ttl_ms: 12 * HOUR_MS,
            always_ttl_ms: 15 * MINUTE_MS,
            retry_ttl_ms: 10 * MINUTE_MS,
            pending_ttl_ms: 24 * HOUR_MS,
            max_pending: 1_000,
            max_grants: 10_000,
            max_waiters: 64,
            max_recent: 4_096,
            max_recent_per_session: 32,
            max_closed: 1_000,
        }
    }
}
