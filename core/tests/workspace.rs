//! Writes outside the workspace: the flag `outside_workspace` from the
//! call's place (client roots, server folders, `[workspace] paths`) and
//! the policy's answer to it.

use latch_core::path::PathEnv;
use latch_core::policy::{OUTSIDE_WORKSPACE_RULE, Place, Policy};
use latch_core::{Call, Decision, Flag, decide_in};
use serde_json::{Value, json};

fn env(cwd: &str) -> PathEnv {
    PathEnv { home: Some("/home/u".into()), cwd: Some(cwd.into()), ..PathEnv::default() }
}

fn decide(p: &Policy, tool: &str, args: Value, place: Place<'_>) -> (Decision, Option<String>, bool) {
    let v = decide_in(p, &Call { server: "fs", tool, args: &args }, None, &[], place);
    (v.evaluation.decision, v.evaluation.rule, v.classification.flags.contains(&Flag::OutsideWorkspace))
}

#[test]
fn the_default_policy_asks_outside_and_allows_inside() {
    let p = Policy::builtin();
    let e = env("/proj");
    let place = Place::new(&e, None);
    assert_eq!(
        decide(&p, "write_file", json!({"path": "/proj/a.txt", "content": "x"}), place),
        (Decision::Allow, None, false)
    );
    let (d, rule, flagged) = decide(&p, "write_file", json!({"path": "/tmp/elsewhere/a.txt", "content": "x"}), place);
    assert_eq!((d, rule.as_deref(), flagged), (Decision::Ask, Some("outside-workspace"), true));
    // `..` out of the workspace.
    assert_eq!(decide(&p, "write_file", json!({"path": "../a.txt", "content": "x"}), place).0, Decision::Ask);
    // Reads anywhere stay allowed.
    assert_eq!(decide(&p, "read_file", json!({"path": "/tmp/elsewhere/a.txt"}), place).0, Decision::Allow);
}

#[test]
fn the_clients_roots_decide_when_it_sent_them() {
    let p = Policy::builtin();
    let e = env("/proj");
    let roots = ["file:///srv/work".to_owned()];
    let place = Place { client_roots: Some(&roots), ..Place::new(&e, None) };
    assert_eq!(decide(&p, "write_file", json!({"path": "/srv/work/a", "content": "x"}), place).0, Decision::Allow);
    assert_eq!(decide(&p, "write_file", json!({"path": "/proj/a", "content": "x"}), place).0, Decision::Ask);
}

#[test]
fn configured_paths_widen_the_workspace() {
    let p = Policy::parse("[workspace]\npaths = [\"/srv/data\"]\n").unwrap();
    let e = env("/proj");
    let place = Place::new(&e, None);
    assert_eq!(decide(&p, "write_file", json!({"path": "/srv/data/a", "content": "x"}), place).0, Decision::Allow);
    assert_eq!(decide(&p, "write_file", json!({"path": "/proj/a", "content": "x"}), place).0, Decision::Allow);
    assert_eq!(decide(&p, "write_file", json!({"path": "/srv/other", "content": "x"}), place).0, Decision::Ask);
}

#[test]
fn only_a_rule_requiring_the_flag_allows_a_write_outside() {
    let old = Policy::parse("[defaults]\nwrite = \"allow\"\n").unwrap();
    let e = env("/proj");
    let place = Place::new(&e, None);
    let args = json!({"path": "/tmp/x", "content": "x"});
    let (d, rule, _) = decide(&old, "write_file", args.clone(), place);
    assert_eq!((d, rule.as_deref()), (Decision::Ask, Some(OUTSIDE_WORKSPACE_RULE)));
    let own = Policy::parse(
        "[[rule]]\ntool = \"write_file\"\nflags = [\"outside_workspace\"]\nargs = [{ path = \"path\", prefix = \"/tmp/\" }]\neffect = \"allow\"\n",
    )
    .unwrap();
    assert_eq!(decide(&own, "write_file", args.clone(), place).0, Decision::Allow);
    assert_eq!(decide(&own, "write_file", json!({"path": "/srv/x", "content": "x"}), place).0, Decision::Ask);
    // A rule for every call, or an "always" rule, does not allow it.
    for text in [
        "[[rule]]\ntool = \"*\"\neffect = \"allow\"\n",
        "[[rule]]\nserver = \"fs\"\ntool = \"write_file\"\neffect = \"allow\"\n",
    ] {
        let p = Policy::parse(text).unwrap();
        let (d, rule, _) = decide(&p, "write_file", args.clone(), place);
        assert_eq!((d, rule.as_deref()), (Decision::Ask, Some(OUTSIDE_WORKSPACE_RULE)), "{text}");
    }
}

#[test]
fn an_unknown_workspace_flags_nothing() {
    let p = Policy::builtin();
    let e = env("/");
    assert_eq!(
        decide(&p, "write_file", json!({"path": "/tmp/x", "content": "x"}), Place::new(&e, None)),
        (Decision::Allow, None, false)
    );
}
