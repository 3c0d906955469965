//! What `status` reports: the daemon's health, its shims, channels and
//! export (re-exported from [`crate::msg`]).

use serde::{Deserialize, Serialize};

use crate::msg::{ClientInfo, PolicyPending};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShimInfo {
    pub server: String,
    pub pid: u32,
    pub session: String,
    /// Unix ms.
    pub since: i64,
    #[serde(default)]
    pub client: Option<ClientInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub daemon_pid: u32,
    pub version: String,
    pub socket: String,
    pub database: String,
    pub policy: String,
    /// The last policy reload error, if the file in force is not the one on
    /// disk.
    pub policy_error: Option<String>,
    pub shims: Vec<ShimInfo>,
    pub consoles: u32,
    pub pending: u32,
    /// Approval channels beyond the socket (desktop, Telegram).
    #[serde(default)]
    pub channels: Vec<ChannelState>,
    /// Security findings a person should look at (a tool described two
    /// ways under one server name, an audit log that cannot be written),
    /// each in words that say what to do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// An approval PIN is set: answers need the person.
    #[serde(default)]
    pub pin_set: bool,
    /// A policy change waiting for the person (it loosens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_pending: Option<PolicyPending>,
    /// What limits the policy in force beyond the file, in words (the
    /// accepted policy could not be verified yet …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_note: Option<String>,
    /// The kill switch is on since this time (Unix ms): every call is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_since: Option<i64>,
    /// The managed policy (issue 20), in words: in force, or refused (every
    /// call denied). `None` without a managed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<String>,
    /// The OpenTelemetry export (`[export]`), when the policy has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportStatus>,
}

/// Where the OpenTelemetry export of the audit log stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportStatus {
    /// The URL records are posted to.
    pub endpoint: String,
    /// Records the collector accepted.
    pub delivered: u64,
    /// Rows never sent: the queue bound was reached, or retention removed
    /// them first.
    pub dropped: u64,
    /// Records the collector refused (not sent again).
    pub rejected: u64,
    /// Rows recorded and not sent yet.
    pub waiting: u64,
    /// What is wrong, in words that say what to do; None when working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The health of one approval channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    pub name: String,
    pub enabled: bool,
    /// What is wrong, in words that say what to do; None when working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}
