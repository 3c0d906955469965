//! The relay machine on its own: events in, actions out, no process, pipe
//! or daemon.

use std::path::PathBuf;

use latch_proto::paths::Paths;

use super::*;

fn relay() -> Relay {
    let paths = Paths::resolve(Some(PathBuf::from("/nonexistent/latch")), None).expect("paths");
    Relay::new(Options::new("srv".into(), vec!["server".into()], paths))
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#;

fn call(id: u64, tool: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"x":[1,2]}}}}}}"#
    )
    .into_bytes()
}

fn line(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(b'\n');
    v
}

fn client_frames(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Client(f) => Some(String::from_utf8_lossy(f).into_owned()),
            _ => None,
        })
        .collect()
}

fn server_frames(actions: &[Action]) -> Vec<&[u8]> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Server(f) => Some(f.as_slice()),
            _ => None,
        })
        .collect()
}

/// The `decide` requests among the daemon frames: (req, tool).
fn decides(actions: &[Action]) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for a in actions {
        if let Action::Daemon(frames) = a {
            for f in frames.split_inclusive(|b| *b == b'\n') {
                if let Ok(ClientMsg::Decide { req, tool, .. }) = frame::decode::<ClientMsg>(f) {
                    out.push((req, tool));
                }
            }
        }
    }
    out
}

fn daemon_msgs(actions: &[Action]) -> Vec<ClientMsg> {
    let mut out = Vec::new();
    for a in actions {
        if let Action::Daemon(frames) = a {
            for f in frames.split_inclusive(|b| *b == b'\n') {
                out.push(frame::decode::<ClientMsg>(f).expect("a protocol frame"));
            }
        }
    }
    out
}

fn decision(req: u64, call_id: &str, decision: Decision) -> Event {
    Event::Daemon(Box::new(DaemonMsg::Decision {
        req,
        call_id: call_id.into(),
        decision,
        class: "READ".into(),
        reason: "because".into(),
        approval_id: (decision == Decision::Ask).then(|| "a1".to_owned()),
        hold_ms: Some(50_000),
        ask_in_client: None,
    }))
}

/// A relay with an initialised client and a connected daemon.
fn connected() -> Relay {
    let mut r = relay();
    let out = r.handle(Event::ClientLine(line(INIT)));
    assert_eq!(server_frames(&out), [line(INIT).as_slice()]);
    r.handle(Event::DaemonUp);
    r
}

#[test]
fn an_allowed_call_reaches_the_server_only_after_its_decision_byte_for_byte() {
    let mut r = connected();
    let out = r.handle(Event::ClientLine(call(1, "read_file")));
    assert!(server_frames(&out).is_empty(), "forwarded before the decision: {out:?}");
    assert_eq!(decides(&out), [(1, "read_file".to_owned())]);

    let out = r.handle(decision(1, "c1", Decision::Allow));
    assert_eq!(server_frames(&out), [line(std::str::from_utf8(&call(1, "read_file")).unwrap()).as_slice()]);

    // The result goes back untouched; its outcome rides along later.
    let result = line(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#);
    let out = r.handle(Event::ServerLine(result.clone()));
    assert_eq!(out, [Action::Client(result)]);
    assert!(r.next_wake().is_some(), "the outcome report waits for a ride");
    std::thread::sleep(FINISHED_DELAY);
    let out = r.handle(Event::Timer);
    assert!(
        matches!(&daemon_msgs(&out)[..], [ClientMsg::Finished { call_id, outcome: Outcome::Ok, .. }] if call_id == "c1"),
        "{out:?}"
    );
}

/// Outcome reports wait together for at most [`FINISHED_MAX`] of them: a
/// longer burst would keep the daemon's one thread from a call for its
/// whole length. None is lost or sent twice.
#[test]
fn outcome_reports_go_in_bursts_of_at_most_sixteen() {
    let mut r = connected();
    // Forty calls in flight (each decide frame carries the reports waiting
    // before it, so the results come after every decision).
    for n in 1..=40u64 {
        r.handle(Event::ClientLine(call(n, "read_file")));
        r.handle(decision(n, &format!("c{n}"), Decision::Allow));
    }
    let mut bursts = Vec::new();
    for n in 1..=40u64 {
        let result = format!(r#"{{"jsonrpc":"2.0","id":{n},"result":{{"content":[{{"type":"text","text":"ok"}}]}}}}"#);
        let msgs = daemon_msgs(&r.handle(Event::ServerLine(line(&result))));
        if !msgs.is_empty() {
            bursts.push(msgs);
        }
    }
    std::thread::sleep(FINISHED_DELAY);
    bursts.push(daemon_msgs(&r.handle(Event::Timer)));
    let sizes: Vec<usize> = bursts.iter().map(Vec::len).collect();
    assert_eq!(sizes, [FINISHED_MAX, FINISHED_MAX, 40 - 2 * FINISHED_MAX], "{bursts:?}");
    let ids: Vec<String> = bursts
        .into_iter()
        .flatten()
        .map(|m| match m {
            ClientMsg::Finished { call_id, .. } => call_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, (1..=40).map(|n| format!("c{n}")).collect::<Vec<_>>());
}

#[test]
fn a_denied_call_never_reaches_the_server() {
    let mut r = connected();
    r.handle(Event::ClientLine(call(2, "create_payment")));
    let out = r.handle(decision(1, "c2", Decision::Deny));
    assert!(server_frames(&out).is_empty());
    let [answer] = &client_frames(&out)[..] else { panic!("{out:?}") };
    assert!(answer.contains(r#""id":2"#) && answer.contains(r#""isError":true"#), "{answer}");
    assert!(answer.contains("Latch blocked create_payment: because"), "{answer}");
}

#[test]
fn an_asked_call_is_held_until_resolved() {
    let mut r = connected();
    r.handle(Event::ClientLine(call(3, "send_email")));
    let out = r.handle(decision(1, "c3", Decision::Ask));
    assert!(server_frames(&out).is_empty() && client_frames(&out).is_empty(), "{out:?}");
    let resolved = DaemonMsg::Resolved {
        call_id: "c3".into(),
        approval_id: "a1".into(),
        decision: Decision::Allow,
        reason: "a person approved it".into(),
    };
    let out = r.handle(Event::Daemon(Box::new(resolved)));
    assert_eq!(server_frames(&out).len(), 1, "{out:?}");
}

#[test]
fn calls_waiting_for_a_lost_daemon_are_answered_as_not_run() {
    let mut r = connected();
    r.handle(Event::ClientLine(call(4, "write_file")));
    let out = r.handle(Event::DaemonDown("gone".into()));
    assert!(server_frames(&out).is_empty());
    let [answer] = &client_frames(&out)[..] else { panic!("{out:?}") };
    assert!(answer.contains("went away") && answer.contains(r#""id":4"#), "{answer}");
    // The decision of the old daemon, should it still come, runs nothing.
    let out = r.handle(decision(1, "c4", Decision::Allow));
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn without_a_daemon_calls_fail_closed_and_name_no_command() {
    let mut r = relay();
    r.handle(Event::ClientLine(line(INIT)));
    // While the first connection is made, the call waits.
    let out = r.handle(Event::ClientLine(call(5, "read_file")));
    assert!(out.is_empty(), "{out:?}");
    let out = r.handle(Event::DaemonDown("no daemon".into()));
    assert!(server_frames(&out).is_empty());
    let [answer] = &client_frames(&out)[..] else { panic!("{out:?}") };
    assert!(answer.contains("no Latch daemon is reachable") && answer.contains(r#""id":5"#), "{answer}");
    assert!(!answer.contains("latch "), "names a command: {answer}");
}

#[test]
fn a_client_line_that_is_not_utf8_json_is_refused_and_never_forwarded() {
    let mut r = connected();
    let bad = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\",\"params\":{\"a\":\"\xff\xfe\"}}\n".to_vec();
    let out = r.handle(Event::ClientLine(bad));
    assert!(server_frames(&out).is_empty(), "{out:?}");
    let [answer] = &client_frames(&out)[..] else { panic!("{out:?}") };
    assert!(answer.contains("-32700"), "{answer}");
}

#[test]
fn a_result_whose_envelope_reads_two_ways_is_refused() {
    let mut r = connected();
    r.handle(Event::ClientLine(call(6, "read_file")));
    r.handle(decision(1, "c6", Decision::Allow));
    let two = line(r#"{"jsonrpc":"2.0","id":6,"result":{"content":[]},"id":7}"#);
    let out = r.handle(Event::ServerLine(two));
    let [answer] = &client_frames(&out)[..] else { panic!("{out:?}") };
    assert!(answer.contains(r#""id":6"#) && answer.contains("-32603"), "{answer}");
    assert!(!answer.contains(r#""id":7"#), "{answer}");
}

#[test]
fn the_clients_hang_up_closes_the_server_and_its_end_answers_what_is_open() {
    let mut r = connected();
    r.handle(Event::ClientLine(call(8, "read_file")));
    r.handle(decision(1, "c8", Decision::Allow));
    let out = r.handle(Event::ServerGone(3));
    // Initialize (id 0) and the call were open: both are answered.
    let answers = client_frames(&out);
    assert!(answers.iter().any(|a| a.contains(r#""id":8"#) && a.contains("exited (code 3)")), "{answers:?}");
    assert!(answers.iter().any(|a| a.contains(r#""id":0"#)), "{answers:?}");
    assert!(
        daemon_msgs(&out).iter().any(|m| matches!(m, ClientMsg::Finished { outcome: Outcome::ServerDied, .. })),
        "{out:?}"
    );
    let out = r.handle(Event::ClientEof);
    assert_eq!(out.last(), Some(&Action::CloseServer));
    // Nothing goes to the server after that.
    let out = r.handle(Event::ClientLine(line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)));
    assert!(server_frames(&out).is_empty(), "{out:?}");
}

#[test]
fn tools_list_pages_are_learnt_from_the_envelope_and_replayed_to_a_new_daemon() {
    let mut r = connected();
    let out = r.handle(Event::ClientLine(line(r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#)));
    assert_eq!(server_frames(&out).len(), 1);
    let page = line(r#"{"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"read_file","inputSchema":{}}]}}"#);
    let out = r.handle(Event::ServerLine(page.clone()));
    assert_eq!(client_frames(&out), [String::from_utf8(page).unwrap()]);
    assert!(daemon_msgs(&out).iter().any(|m| matches!(m, ClientMsg::ToolsListed { first_page: true, .. })), "{out:?}");
    r.handle(Event::DaemonDown("restart".into()));
    let out = r.handle(Event::DaemonUp);
    assert!(daemon_msgs(&out).iter().any(|m| matches!(m, ClientMsg::ToolsListed { first_page: true, .. })), "{out:?}");
}

/// The `decide` requests' arguments, as written in the frames.
fn decided_args(actions: &[Action]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        if let Action::Daemon(frames) = a {
            for f in frames.split_inclusive(|b| *b == b'\n') {
                out.extend(frame::decide_args(f).map(|a| a.get().to_owned()));
            }
        }
    }
    out
}

#[test]
fn the_daemon_decides_on_the_arguments_exactly_as_written() {
    let args = r#"{"n": 18446744073709551617, "s":"a\"b\\", "k":{"x":[1,{"y":"}"}]}}"#;
    let one = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","arguments":{args}}}}}"#);
    let mut r = connected();
    assert_eq!(decided_args(&r.handle(Event::ClientLine(line(&one)))), [args]);

    // Each call of a batch, and a call queued until the daemon is up.
    let two = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{"b":2},"name":"t"}}"#;
    let batch = format!(r#"[{},{two}]"#, one.replace(r#""id":1"#, r#""id":2"#));
    assert_eq!(decided_args(&r.handle(Event::ClientLine(line(&batch)))), [args, r#"{"b":2}"#]);
    let mut q = relay();
    q.handle(Event::ClientLine(line(INIT)));
    assert!(decided_args(&q.handle(Event::ClientLine(line(two)))).is_empty());
    assert_eq!(decided_args(&q.handle(Event::DaemonUp)), [r#"{"b":2}"#]);
}
