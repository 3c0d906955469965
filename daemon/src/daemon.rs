//! The daemon as a handle: [`Daemon::start`] opens what it owns (the lock,
//! the audit log, the policy, the socket) and starts the components;
//! [`Daemon::stop`] answers what is held and stops them in order.
//!
//! Components, each owning one domain:
//! - connections ([`crate::connection`], [`crate::dispatch`]): accept,
//!   handshake, read frames, route them;
//! - the decision path ([`crate::decide`]);
//! - the approval driver ([`crate::driver`]): effects, hold timers, saving
//!   the approvals;
//! - the policy ([`crate::reload`], [`crate::enforce`]): watch, reload,
//!   write "always" rules;
//! - the shim and tool registry ([`crate::registry`]);
//! - the approval channels ([`crate::channel`]) and audit retention.

use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use latch_proto::paths::Paths;
use latch_proto::{DaemonMsg, Decision, frame};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::audit::{Audit, NewEvent};
use crate::connection::Connections;
use crate::engine::Engine;
use crate::lock::Lock;
use crate::policy_file;
use crate::shared::{Parts, Shared, event_now, restore_approvals};
use crate::{DaemonError, now_ms, private_dir};

/// How the daemon runs, beyond where its files are.
#[derive(Clone, Debug)]
pub struct Options {
    /// One hold limit for every client, in ms (`LATCH_HOLD_MS`).
    pub hold_ms: Option<u64>,
    /// Start the desktop and Telegram channels.
    pub channels: bool,
    /// System mode (issue 20): the socket's folder is the group's to
    /// enter (0750) and the socket the group's to connect to (0660); peers
    /// of any user id that can connect are served (approvals still need
    /// the PIN).
    pub system: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { hold_ms: None, channels: true, system: false }
    }
}

impl Options {
    /// The options the environment sets (`LATCH_HOLD_MS`).
    pub fn from_env() -> Options {
        Options { hold_ms: std::env::var("LATCH_HOLD_MS").ok().and_then(|v| v.parse().ok()), ..Options::default() }
    }
}

/// A running daemon.
pub struct Daemon {
    shared: Arc<Shared>,
    connections: Connections,
    tasks: JoinSet<()>,
    _lock: Lock,
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(paths: Paths) -> Result<(), DaemonError> {
    run_with(paths, Options::from_env()).await
}

/// [`run`] with these options.
pub async fn run_with(paths: Paths, options: Options) -> Result<(), DaemonError> {
    let mut term = signal(SignalKind::terminate()).map_err(crate::io_err(&paths.socket))?;
    let mut int = signal(SignalKind::interrupt()).map_err(crate::io_err(&paths.socket))?;
    let daemon = Daemon::start(paths, options).await?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    daemon.stop().await;
    Ok(())
}

impl Daemon {
    /// Opens everything and starts listening on the socket.
    pub async fn start(paths: Paths, options: Options) -> Result<Daemon, DaemonError> {
        // A file that is not a usable log still lets the daemon start
        // (refusing every call), so that it can say what is wrong; an
        // unsafe place not.
        match crate::audit::check_place(&paths.database) {
            Err(crate::audit::AuditError::Unusable { .. }) | Ok(()) => {}
            Err(e) => return Err(e.into()),
        }
        keep_freed_memory();
        private_dir(&paths.data_dir)?;
        if options.system {
            crate::system_mode::socket_dir(paths.socket_dir())?;
        } else {
            private_dir(paths.socket_dir())?;
        }
        let lock = Lock::acquire(&paths.data_dir)?;
        let audit = Audit::open_or_refusing(&paths.database)?;

        if let Ok(true) = policy_file::ensure_default(&paths.policy) {
            tracing::info!("wrote the default policy to {}", paths.policy.display());
        }
        let stamp = policy_file::stamp(&paths.policy);
        let (file_text, policy_error) = match policy_file::load_text(&paths) {
            Ok((text, _)) => (Some(text), None),
            Err(report) => {
                tracing::error!(
                    "the policy file is not valid; the built-in defaults are in force until it is:\n{report}"
                );
                (None, Some(report))
            }
        };
        let (pin, pin_problem) =
            crate::pin::Gate::load(&paths.data_dir, crate::accepted::Guard::exists(&paths.data_dir));
        if let Some(p) = &pin_problem {
            tracing::warn!("{p}");
        }
        let mut guard = crate::accepted::Guard::load(&paths.data_dir);
        let (settled, guard_notes) = guard.settle(file_text.as_deref(), pin.is_set(), None);
        let mut policy = latch_core::Policy::parse(&settled.text).unwrap_or_else(|_| latch_core::Policy::builtin());
        policy.set_protected(policy_file::protected(&paths));
        let managed_path = crate::managed::path();
        let managed_stamp = crate::managed::stamp(&managed_path);
        let managed = crate::managed::load(&managed_path);
        if let Some(m) = managed.describe() {
            tracing::warn!("managed policy {m}");
        }
        let policy = crate::managed::apply(policy, &managed, policy_file::protected(&paths));
        let floor = settled.floor.then(|| policy_file::builtin(&paths));
        let salt = (now_ms() as u64) ^ ((std::process::id() as u64) << 32);
        let approvals = restore_approvals(&audit, salt, policy.grant_ttl_seconds());
        crate::memstats::start_if_asked();
        let known = crate::known::load(&audit);
        let (expired, expired_rx) = mpsc::unbounded_channel();
        let (rules, rules_rx) = mpsc::unbounded_channel();
        let mut engine = Engine::new(policy, approvals, salt);
        engine.policy_error = policy_error.clone();
        engine.policy_stamp = stamp;
        engine.managed_note = managed.describe();
        engine.managed = managed;
        engine.managed_stamp = managed_stamp;
        engine.floor = floor;
        engine.policy_pending = guard.pending();
        engine.known = known;
        engine.stopped = crate::stop::restore(&audit);
        engine.pins = crate::pins::Pins::load(&audit);
        engine.lease = crate::lease::state::State::open(&paths.data_dir, settled.text.clone());
        if engine.stopped.is_some() {
            tracing::warn!("Latch is stopped: every tool call is denied until a person resumes");
        }
        let shared = Arc::new(Shared::new(Parts {
            paths: paths.clone(),
            audit,
            engine,
            pin,
            guard,
            hold_override: options.hold_ms,
            expired,
            rules,
            system: options.system,
        }));
        crate::reload::record_reload(&shared, policy_error).await;
        // What the last daemon's shims decided and it never recorded.
        crate::lease::ingest::at_start(&shared).await;
        // Shadowing among the pinned servers, recorded when first found.
        crate::findings::reshadow(&shared, false).await;
        for note in pin_problem.into_iter().chain(guard_notes) {
            shared.record(NewEvent { kind: "policy_guard", detail: Some(note), ..event_now() }).await;
        }
        let pending = shared.engine().policy_pending.clone();
        if let Some(mut p) = pending {
            let text = shared.guard().pending_text();
            if let Some(text) = text {
                crate::pending_replay::attach(&shared, text, &mut p).await;
                shared.engine().policy_pending = Some(p.clone());
            }
            tracing::warn!("policy change pending: {} rules loosen; a person must accept it", p.loosen);
            let detail = Some(p.diff.join("\n"));
            shared.record(NewEvent { kind: "policy_pending", decision: "ask".into(), detail, ..event_now() }).await;
        }

        let mut tasks = JoinSet::new();
        crate::driver::start(&mut tasks, &shared, expired_rx);
        crate::reload::start(&mut tasks, &shared, rules_rx);
        let policy = shared.clone();
        tasks.spawn(crate::audit::retention::every_hour(shared.audit.clone(), move || *policy.engine().policy.audit()));
        if options.channels {
            // Approval channels beyond the socket: each gets a handle and
            // runs on its own task.
            let hub = crate::channel::Hub::new(shared.clone());
            crate::desktop::spawn(&mut tasks, hub.clone());
            crate::telegram::spawn(&mut tasks, hub);
        }
        // Beside the decision path: reads the committed log on its own.
        crate::export::spawn(&mut tasks, shared.clone());

        // Only this daemon holds the lock, so a socket file left here is stale.
        let _ = std::fs::remove_file(&paths.socket);
        let listen_err = |source| DaemonError::Listen { path: paths.socket.clone(), source };
        let name = paths.socket.as_path().to_fs_name::<GenericFilePath>().map_err(listen_err)?;
        let listener = ListenerOptions::new().name(name).create_tokio().map_err(listen_err)?;
        if options.system {
            crate::system_mode::share_socket(&paths.socket)?;
        }
        tracing::info!("latch daemon {} listening ({})", std::process::id(), crate::describe(&paths));
        let connections = Connections::start(shared.clone(), listener);
        Ok(Daemon { shared, connections, tasks, _lock: lock })
    }

    /// Answers every held call (it did not run; its approval stays pending
    /// for the next daemon), saves the approvals, closes the connections
    /// and stops the components.
    pub async fn stop(mut self) {
        tracing::info!("shutting down");
        let shared = &self.shared;
        {
            let mut eng = shared.engine();
            let held: Vec<(String, u64)> = eng.held.drain().map(|(c, h)| (c, h.conn)).collect();
            for (call_id, conn) in held {
                let approval_id = eng.approvals.held_on(&call_id).unwrap_or_default().to_owned();
                if let Some(shim) = eng.shims.get(&conn) {
                    shim.tx.push(frame::encode(&DaemonMsg::Resolved {
                        call_id,
                        approval_id,
                        decision: Decision::Deny,
                        reason: "the Latch daemon is shutting down; the call did not run. Its approval stays pending: \
                                 retry the call once the daemon is back"
                            .into(),
                    }));
                }
            }
        }
        shared.persist().await;
        self.connections.stop(Duration::from_secs(3)).await;
        self.tasks.shutdown().await;
        shared.audit.flush().await;
        let _ = std::fs::remove_file(&shared.paths.socket);
    }

    /// Where this daemon listens and keeps its files.
    pub fn paths(&self) -> &Paths {
        &self.shared.paths
    }
}

/// A large call (a 1 MiB argument) is read, parsed and hashed in buffers
/// of its size. glibc gives such buffers their own mappings and returns
/// them at once, so every large call paid for fresh zeroed pages several
/// times over. Keeping freed memory in the heap (up to 64 MiB) makes the
/// next large call reuse it.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any thread
    // of ours allocates concurrently.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
