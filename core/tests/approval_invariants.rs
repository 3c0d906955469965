//! The approval machine under long pseudo-random event streams, through its
//! public API only, checking what must hold whatever the order of events:
//!
//! * every call is answered at most once, and an `Ask` is either answered
//!   or held at once;
//! * the machine's held calls are exactly the ones held and not yet answered;
//! * no call is allowed unless a person approved its key (on an answering
//!   channel), or it is a retry in the session where that key was allowed;
//! * an approval answered `Once` lets at most one call through;
//! * answers from the shim channel change nothing;
//! * answers to closed or unknown approvals release nothing;
//! * the bounds hold, and a snapshot restores to the same snapshot.
//!
//! The generator is a fixed xorshift, so a failure names a seed that
//! reproduces it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use latch_core::Class;
use latch_core::Decision;
use latch_core::approval::{Answer, Approvals, Ask, Config, Effect, Event, Outcome, Reply, Scope};
use serde_json::json;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SESSIONS: [&str; 3] = ["s1", "s2", "s3"];
const TOOLS: [&str; 2] = ["run", "send"];
const ARGS: [&str; 3] = ["a", "b", "c"];
const SCOPES: [Scope; 4] = [Scope::Once, Scope::SessionArgs, Scope::SessionTool, Scope::Always];
const CHANNELS: [&str; 5] = ["tui", "cli", "telegram", "notification", "shim"];

/// (tool, args, def)
type Key = (String, String, String);

#[derive(Default)]
struct Model {
    /// Calls asked and not yet answered, by call id: session, key.
    held: BTreeMap<String, (String, Key)>,
    answered: HashSet<String>,
    /// Keys a person approved at some point, with the scope.
    approved: Vec<(Key, Scope)>,
    /// (session, key) allowed so far.
    allowed_in: HashSet<(String, Key)>,
    /// Allows attributed to each approval id.
    allows_by_approval: HashMap<String, usize>,
    /// Approval ids decided with scope Once and approve.
    once_approvals: HashSet<String>,
    /// Every approval id ever seen, with its key.
    approvals: BTreeMap<String, Key>,
    /// Calls asked, with session and key.
    calls: HashMap<String, (String, Key)>,
}

/// How often the interesting things happened, to see the streams reach them.
#[derive(Debug, Default)]
struct Seen {
    allow_by_approval: usize,
    allow_by_retry: usize,
    deny: usize,
    awaiting: usize,
    dropped: usize,
    decided: usize,
    moved: usize,
}

fn check(seed: u64, steps: usize, config: Config, seen: &mut Seen) {
    let mut rng = Rng(seed);
    let mut m = Approvals::new(config.clone(), seed);
    let mut model = Model::default();
    let mut now = 1_800_000_000_000_i64;
    let mut defs: BTreeMap<String, String> = TOOLS.iter().map(|t| (t.to_string(), "d0".to_string())).collect();
    let mut next_call = 0;

    for step in 0..steps {
        now += rng.below(120_000) as i64;
        let ctx = format!("seed {seed} step {step}");
        let event = match rng.below(100) {
            0..=39 => {
                next_call += 1;
                let call_id = format!("c{next_call}");
                let tool = rng.pick(&TOOLS).to_string();
                let args = rng.pick(&ARGS).to_string();
                let session = rng.pick(&SESSIONS).to_string();
                let def = defs[&tool].clone();
                model.calls.insert(call_id.clone(), (session.clone(), (tool.clone(), args.clone(), def.clone())));
                Event::Ask(Ask {
                    call_id,
                    session,
                    server: "srv".into(),
                    tool,
                    args_hash: args,
                    def_hash: Some(def),
                    class: Class::Execute,
                    retry: rng.below(3) == 0,
                    summary: json!({}),
                    now_ms: now,
                    hold_ms: Some(rng.below(100_000) as i64),
                })
            }
            40..=54 if !model.held.is_empty() => {
                let ids: Vec<_> = model.held.keys().cloned().collect();
                Event::HoldExpired { call_id: rng.pick(&ids).clone() }
            }
            55..=79 if !model.approvals.is_empty() => {
                let ids: Vec<_> = model.approvals.keys().cloned().collect();
                let mut approval_id = rng.pick(&ids).clone();
                if rng.below(20) == 0 {
                    approval_id = "nosuch".into();
                }
                Event::Answer(Answer {
                    approval_id,
                    approve: rng.below(3) != 0,
                    scope: *rng.pick(&SCOPES),
                    channel: rng.pick(&CHANNELS).to_string(),
                    who: "u".into(),
                    reason: None,
                    now_ms: now,
                })
            }
            80..=85 if !model.held.is_empty() => {
                let ids: Vec<_> = model.held.keys().cloned().collect();
                Event::Cancelled { call_id: rng.pick(&ids).clone(), now_ms: now }
            }
            86..=88 => {
                let tool = rng.pick(&TOOLS).to_string();
                let def = format!("d{}", rng.below(3));
                defs.insert(tool.clone(), def.clone());
                Event::ToolDefChanged { server: "srv".into(), tool, new_def_hash: def, now_ms: now }
            }
            89..=91 => Event::SessionEnded { session: rng.pick(&SESSIONS).to_string() },
            92..=93 => Event::PolicyReloaded,
            94..=96 => Event::Tick { now_ms: now },
            _ => {
                let snap = m.snapshot();
                let restored = Approvals::restore(config.clone(), snap.clone()).expect(&ctx);
                assert_eq!(restored.snapshot(), snap, "{ctx}: snapshot round trip");
                continue;
            }
        };

        let answer = match &event {
            Event::Answer(a) => Some(a.clone()),
            _ => None,
        };
        let before = answer.as_ref().filter(|a| a.channel == "shim").map(|_| m.snapshot());
        let asked = match &event {
            Event::Ask(a) => Some(a.call_id.clone()),
            _ => None,
        };
        let fx = m.handle(event);

        if let Some(a) = &answer {
            if a.channel == "shim" {
                assert_eq!(Some(m.snapshot()), before, "{ctx}: a shim's answer changed the state");
                assert!(matches!(fx.as_slice(), [Effect::Record(_), Effect::Reply(Reply::Refused { .. })]), "{ctx}");
            }
            let reply = fx.iter().find_map(|e| match e {
                Effect::Reply(r) => Some(r),
                _ => None,
            });
            match reply.expect(&ctx) {
                Reply::Decided { approval_id, .. } => {
                    seen.decided += 1;
                    let key = model.approvals[approval_id].clone();
                    if a.approve {
                        model.approved.push((key, a.scope));
                        if a.scope == Scope::Once {
                            model.once_approvals.insert(approval_id.clone());
                        }
                    }
                }
                _ => assert!(!fx.iter().any(|e| matches!(e, Effect::Resolve { .. })), "{ctx}: {fx:#?}"),
            }
        }

        let mut held_now = None;
        for e in &fx {
            match e {
                Effect::Hold { call_id, approval_id, .. } => {
                    let (session, key) = model.calls[call_id].clone();
                    assert!(!model.answered.contains(call_id), "{ctx}: {call_id} held after its answer");
                    if let Some(old) = model.approvals.insert(approval_id.clone(), key.clone()) {
                        assert_eq!(old, key, "{ctx}: one approval, two keys");
                    }
                    model.held.insert(call_id.clone(), (session, key));
                    if asked.as_deref() == Some(call_id) {
                        held_now = Some(call_id.clone());
                    } else {
                        seen.moved += 1;
                    }
                }
                Effect::Resolve { call_id, outcome } => {
                    assert!(model.answered.insert(call_id.clone()), "{ctx}: {call_id} answered twice");
                    let held = model.held.remove(call_id);
                    assert!(
                        held.is_some() || asked.as_deref() == Some(call_id),
                        "{ctx}: {call_id} answered without being asked or held"
                    );
                    if let Outcome::Allow { approval_id, .. } = outcome {
                        let (session, key) = model.calls[call_id].clone();
                        let approved = model.approved.iter().any(|(k, scope)| {
                            // Tool-wide scopes cover any arguments.
                            let any_args = matches!(scope, Scope::SessionTool | Scope::Always);
                            k.0 == key.0 && k.2 == key.2 && (any_args || k.1 == key.1)
                        });
                        assert!(approved, "{ctx}: {call_id} allowed but nobody approved {key:?}");
                        if approval_id.is_some() {
                            seen.allow_by_approval += 1;
                        } else {
                            seen.allow_by_retry += 1;
                        }
                        if let Some(id) = approval_id {
                            *model.allows_by_approval.entry(id.clone()).or_default() += 1;
                            if model.once_approvals.contains(id) {
                                assert!(
                                    model.allows_by_approval[id] <= 1,
                                    "{ctx}: once-approval {id} let two calls run"
                                );
                            }
                        } else {
                            assert!(
                                model.allowed_in.contains(&(session.clone(), key.clone())),
                                "{ctx}: {call_id} allowed as a retry without an earlier allow"
                            );
                        }
                        model.allowed_in.insert((session, key));
                    }
                    match outcome {
                        Outcome::Deny { .. } => seen.deny += 1,
                        Outcome::AwaitingApproval { .. } => seen.awaiting += 1,
                        Outcome::Dropped { .. } => seen.dropped += 1,
                        Outcome::Allow { .. } => {}
                    }
                    if let Outcome::AwaitingApproval { approval_id } = outcome {
                        assert!(model.approvals.contains_key(approval_id), "{ctx}");
                    }
                }
                Effect::WriteRule { decision, .. } => {
                    assert_ne!(*decision, Decision::Ask);
                }
                _ => {}
            }
        }
        if let Some(call) = &asked {
            let resolved = model.answered.contains(call);
            assert!(resolved ^ held_now.is_some(), "{ctx}: an Ask must be answered or held: {fx:#?}");
        }

        // The machine's view of held calls matches the model's.
        let waiting: usize = m.pending().map(|p| p.waiting()).sum();
        assert_eq!(waiting, model.held.len(), "{ctx}: waiters");
        for call in model.held.keys() {
            let on = m.held_on(call).unwrap_or_else(|| panic!("{ctx}: {call} not held"));
            assert!(m.get(on).unwrap().waiters().iter().any(|w| &w.call_id == call), "{ctx}");
        }
        assert!(m.pending().count() <= config.max_pending, "{ctx}");
        assert!(m.grants().count() <= config.max_grants, "{ctx}");
        let ids: BTreeSet<_> = m.pending().map(|p| p.id.clone()).collect();
        assert_eq!(ids.len(), m.pending().count(), "{ctx}: duplicate pending ids");
    }
}

#[test]
fn invariants_hold_under_random_events_with_default_bounds() {
    let mut seen = Seen::default();
    for seed in 1..=20 {
        check(seed * 0x9e37_79b9, 600, Config::default(), &mut seen);
    }
    assert_reached(&seen);
}

fn assert_reached(seen: &Seen) {
    eprintln!("{seen:?}");
    let Seen { allow_by_approval, allow_by_retry, deny, awaiting, dropped, decided, moved } = *seen;
    for (what, n) in [
        ("allow by approval", allow_by_approval),
        ("allow by retry", allow_by_retry),
        ("deny", deny),
        ("awaiting", awaiting),
        ("dropped", dropped),
        ("decided", decided),
        ("moved to a fresh approval", moved),
    ] {
        assert!(n > 0, "the random streams never reached: {what}");
    }
}

#[test]
fn invariants_hold_under_random_events_with_tight_bounds() {
    let config = Config {
        max_pending: 3,
        max_grants: 4,
        max_waiters: 2,
        max_recent: 5,
        max_recent_per_session: 2,
        max_closed: 4,
        once_ttl_ms: 200_000,
        session_ttl_ms: 600_000,
        retry_ttl_ms: 200_000,
        pending_ttl_ms: 2_000_000,
        ..Config::default()
    };
    let mut seen = Seen::default();
    for seed in 1..=20 {
        check(seed * 0x85eb_ca6b, 600, config.clone(), &mut seen);
    }
    assert_reached(&seen);
}
