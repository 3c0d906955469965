//! The parsed policy: class defaults, servers, rules and the daemon's
//! settings, with what the rest of Latch reads of them. Built by
//! [`parse`](super::parse), evaluated by [`evaluate`](super::evaluate).

use super::audit::AuditSettings;
use super::error::Problem;
use super::judge::JudgeConf;
use super::notify::NotifySettings;
use super::protect::{Guard, Protected};
use super::rule::{Rule, RuleIndex};
use super::telegram::TelegramConf;
use crate::class::{Class, Decision};
use crate::glob::Glob;

/// The commented policy file the daemon writes on first run. It parses to
/// [`Policy::builtin`].
pub const DEFAULT_POLICY: &str = include_str!("default.toml");

/// Hold limit when neither the policy nor the client table says otherwise:
/// under the 60 s after which common clients give up on a call.
pub const DEFAULT_HOLD_SECONDS: u64 = 50;
/// How long an approval grant stays usable, by default.
pub const DEFAULT_GRANT_TTL_SECONDS: u64 = 600;
/// Decision per class; SEND split by where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Defaults {
    pub read: Decision,
    pub write: Decision,
    pub send_internal: Decision,
    pub send_external: Decision,
    pub execute: Decision,
    pub submit: Decision,
    pub transfer_value: Decision,
    /// For a call flagged `no_evidence`, when stricter than its class's.
    pub no_evidence: Decision,
}

impl Defaults {
    pub(super) const BUILTIN: Defaults = Defaults {
        read: Decision::Allow,
        write: Decision::Allow,
        send_internal: Decision::Allow,
        send_external: Decision::Ask,
        execute: Decision::Ask,
        submit: Decision::Ask,
        transfer_value: Decision::Deny,
        no_evidence: Decision::Ask,
    };
}

/// `[servers.NAME]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ServerConf {
    pub name: String,
    pub hold_seconds: Option<u64>,
    /// Tool (glob) → class, plain names first, then globs in file order.
    pub classes: Vec<(Glob, Class)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub(super) defaults: Defaults,
    pub(super) internal_domains: Vec<String>,
    pub(super) servers: Vec<ServerConf>,
    pub(super) rules: Vec<Rule>,
    pub(super) index: RuleIndex,
    pub(super) hold_seconds: Option<u64>,
    pub(super) grant_ttl_seconds: u64,
    /// `[approvals] in_client`: MCP clients (by `clientInfo.name`) a
    /// person answers in, so the shim may ask there too.
    pub(super) in_client: Vec<String>,
    pub(super) guard: Guard,
    pub(super) warnings: Vec<Problem>,
    pub(super) notify: NotifySettings,
    /// `[judge]`: the model that judges conditions.
    pub(super) judge: Option<JudgeConf>,
    /// Some rule has a `condition`.
    pub(super) conditional: bool,
    pub(super) audit: AuditSettings,
    pub(super) telegram: Option<TelegramConf>,
    /// `[workspace] paths`: folders that count as every server's workspace.
    pub(super) workspace: Vec<String>,
    /// `[threats]`, `[[limits]]`, `[budget]`.
    pub(super) threats: super::threats::ThreatPolicy,
    /// The managed policy layered above this one ([`Policy::layered`]).
    pub(super) managed: Option<std::sync::Arc<Policy>>,
    /// `[export]`: where the audit rows go on to (OTLP).
    pub(super) export: Option<super::export::ExportConf>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::builtin()
    }
}

impl Policy {
    /// The class defaults alone, no rules: what parsing starts from.
    pub(crate) fn bare() -> Policy {
        Policy {
            defaults: Defaults::BUILTIN,
            internal_domains: Vec::new(),
            servers: Vec::new(),
            rules: Vec::new(),
            index: RuleIndex::default(),
            hold_seconds: None,
            grant_ttl_seconds: DEFAULT_GRANT_TTL_SECONDS,
            in_client: Vec::new(),
            guard: Guard::default(),
            warnings: Vec::new(),
            notify: NotifySettings::default(),
            judge: None,
            conditional: false,
            audit: AuditSettings::default(),
            telegram: None,
            workspace: Vec::new(),
            threats: super::threats::ThreatPolicy::default(),
            managed: None,
            export: None,
        }
    }

    /// Sets Latch's own paths for self-protection (the daemon calls this
    /// after every parse, from `Paths` and `$HOME`). The Telegram token
    /// file, when the policy names one, is protected too.
    pub fn set_protected(&mut self, mut p: Protected) {
        if let Some(file) = self.telegram.as_ref().and_then(|t| t.token_path(p.home.as_deref())) {
            p.paths.push(file);
        }
        if let Some(m) = self.managed.as_mut() {
            std::sync::Arc::make_mut(m).set_protected(p.clone());
        }
        self.guard = Guard::new(&p);
    }

    pub fn internal_domains(&self) -> &[String] {
        &self.internal_domains
    }

    /// Problems that do not stop the policy from loading (a rule that an
    /// earlier rule always decides first).
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// `[notify]`: desktop notification settings.
    pub fn notify(&self) -> &NotifySettings {
        &self.notify
    }

    /// `[judge]`: the model that judges conditions, if configured.
    pub fn judge(&self) -> Option<&JudgeConf> {
        self.judge.as_ref()
    }

    /// Some rule has a `condition` (when not, no evaluation ever returns
    /// [`Question`]s).
    pub fn has_conditions(&self) -> bool {
        self.conditional
    }

    /// Number of `[[rule]]`s.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The user's class override for a server's tool
    /// (`[servers.NAME.classes]`): a plain tool name first, then globs in
    /// file order.
    pub fn user_class(&self, server: &str, tool: &str) -> Option<Class> {
        let s = self.servers.iter().find(|s| s.name == server)?;
        s.classes.iter().find(|(g, _)| g.is_match(tool)).map(|(_, c)| *c)
    }

    /// The hold limit the user set for this server (`[servers.NAME]
    /// hold_seconds`), else the global one (`[approvals] hold_seconds`);
    /// `None` = the daemon's per-client default (or
    /// [`DEFAULT_HOLD_SECONDS`]).
    pub fn hold_seconds(&self, server: &str) -> Option<u64> {
        if let Some(h) = self.managed.as_deref().and_then(|m| m.hold_seconds(server)) {
            return Some(h);
        }
        self.servers.iter().find(|s| s.name == server).and_then(|s| s.hold_seconds).or(self.hold_seconds)
    }

    /// How long an approval grant stays usable (`[approvals]
    /// grant_ttl_seconds`, default 600).
    pub fn grant_ttl_seconds(&self) -> u64 {
        self.grant_ttl_seconds
    }

    /// Whether the person named MCP client `client` (its `clientInfo.name`,
    /// exactly) in `[approvals] in_client`: approvals may then be asked
    /// inside that client too (elicitation). Default: no client.
    pub fn asks_in_client(&self, client: &str) -> bool {
        !client.is_empty()
            && self.in_client.iter().any(|c| c == client)
            && self.managed.as_deref().is_none_or(|m| m.asks_in_client(client))
    }

    /// How long the audit log keeps its rows (`[audit]`).
    pub fn audit(&self) -> &AuditSettings {
        &self.audit
    }

    /// The `[export]` section, when the file has one.
    pub fn export(&self) -> Option<&super::export::ExportConf> {
        self.export.as_ref()
    }

    /// The `[telegram]` section, when the file has one.
    pub fn telegram(&self) -> Option<&TelegramConf> {
        self.telegram.as_ref()
    }

    /// The default decision for a class; SEND means external SEND.
    pub fn class_default(&self, class: Class) -> Decision {
        let d = &self.defaults;
        match class {
            Class::Read => d.read,
            Class::Write => d.write,
            Class::Send => d.send_external,
            Class::Execute => d.execute,
            Class::Submit => d.submit,
            Class::TransferValue => d.transfer_value,
        }
    }

    /// `[threats]`, `[[limits]]` and `[budget]` (defaults without them).
    pub fn threats(&self) -> &super::threats::ThreatPolicy {
        &self.threats
    }

    /// `[workspace] paths`, as written.
    pub fn workspace_paths(&self) -> &[String] {
        &self.workspace
    }

    /// The environment paths are read in when the caller gives none.
    pub fn default_path_env(&self) -> &crate::path::PathEnv {
        self.guard.default_env()
    }
}
