//! The managed policy layered above the user's (issue 20): the stricter of
//! the two layers decides, for every pair of decisions, by rules and by
//! defaults, with conditions, class overrides, internal domains and the
//! settings beyond rules; `overridden` names the user rules that would
//! loosen it.

use latch_core::policy::{Answer, Judgement, LOCKDOWN_RULE, Layer, Policy, ProblemKind, SELF_PROTECT_RULE};
use latch_core::threat::result::Handling;
use latch_core::{Call, Decision, Verdict, decide, decide_judged};
use serde_json::{Value, json};

const EFFECTS: [&str; 3] = ["allow", "ask", "deny"];

fn parse(text: &str) -> Policy {
    Policy::parse(text).unwrap_or_else(|e| panic!("{}", e.render("test", text)))
}

fn layered(managed: &str, user: &str) -> Policy {
    Policy::layered(parse(managed), parse(user))
}

fn run(p: &Policy, server: &str, tool: &str, args: Value) -> Verdict {
    decide(p, &Call { server, tool, args: &args }, None)
}

fn shell(p: &Policy) -> Verdict {
    run(p, "sh", "run_command", json!({"command": "ls"}))
}

fn rank(e: &str) -> Decision {
    match e {
        "allow" => Decision::Allow,
        "ask" => Decision::Ask,
        _ => Decision::Deny,
    }
}

#[test]
fn the_class_used_here_is_execute() {
    let v = shell(&Policy::builtin());
    assert_eq!(v.classification.class, latch_core::Class::Execute, "{:?}", v.classification.reasons);
}

#[test]
fn every_pair_of_defaults_gives_the_stricter() {
    for m in EFFECTS {
        for u in EFFECTS {
            let p = layered(&format!("[defaults]\nexecute = \"{m}\"\n"), &format!("[defaults]\nexecute = \"{u}\"\n"));
            let v = shell(&p);
            assert_eq!(v.evaluation.decision, rank(m).max(rank(u)), "managed {m}, user {u}");
        }
    }
}

#[test]
fn every_pair_of_rules_gives_the_stricter_and_names_the_layer() {
    for m in EFFECTS {
        for u in EFFECTS {
            let managed =
                format!("[defaults]\nexecute = \"allow\"\n[[rule]]\nname = \"m\"\nserver = \"sh\"\neffect = \"{m}\"\n");
            let user =
                format!("[defaults]\nexecute = \"allow\"\n[[rule]]\nname = \"u\"\nserver = \"sh\"\neffect = \"{u}\"\n");
            let p = layered(&managed, &user);
            let v = shell(&p);
            let want = rank(m).max(rank(u));
            assert_eq!(v.evaluation.decision, want, "managed {m}, user {u}");
            let rule = v.evaluation.rule.clone().unwrap();
            if rank(u) > rank(m) {
                assert_eq!(rule, "u", "the user's stricter rule decides");
            } else {
                assert_eq!(rule, "managed rule \"m\" (line 3)", "managed {m}, user {u}");
            }
            // An "always" rule goes before the user's own deciding rule,
            // whichever layer won (else the user's rule would still decide
            // first in the user's layer).
            assert_eq!(v.evaluation.rule_line, Some(3), "managed {m}, user {u}");
            let x = p.explain(&Call { server: "sh", tool: "run_command", args: &json!({"command": "ls"}) }, None);
            assert_eq!(x.decision, want);
            assert_eq!(x.layer, if rank(u) > rank(m) { Layer::User } else { Layer::Managed });
            assert_eq!(x.matched_rules.len(), 2, "both layers' rules are shown: {:?}", x.matched_rules);
            assert_eq!(x.matched_rules.iter().filter(|r| r.decided).count(), 1);
        }
    }
}

#[test]
fn a_user_allow_rule_does_not_loosen_a_managed_default() {
    let p =
        layered("[defaults]\nexecute = \"ask\"\n", "[[rule]]\nname = \"yolo\"\nserver = \"sh\"\neffect = \"allow\"\n");
    let v = shell(&p);
    assert_eq!(v.evaluation.decision, Decision::Ask);
    assert_eq!(v.evaluation.rule, None, "the managed default decides");
    assert!(v.evaluation.reasons.iter().any(|r| r.contains("managed policy decides")), "{:?}", v.evaluation.reasons);
    let x = p.explain(&Call { server: "sh", tool: "run_command", args: &json!({"command": "ls"}) }, None);
    assert_eq!((x.layer, x.decision), (Layer::Managed, Decision::Ask));
}

#[test]
fn the_user_can_tighten() {
    let p = layered(
        "[defaults]\nread = \"allow\"\n",
        "[[rule]]\nname = \"no-reads\"\nserver = \"fs\"\neffect = \"deny\"\n",
    );
    let v = run(&p, "fs", "read_file", json!({"path": "/tmp/x"}));
    assert_eq!((v.evaluation.decision, v.evaluation.rule.as_deref()), (Decision::Deny, Some("no-reads")));
    let v = run(&p, "other", "read_file", json!({"path": "/tmp/x"}));
    assert_eq!(v.evaluation.decision, Decision::Allow);
}

#[test]
fn a_user_class_override_does_not_loosen() {
    // The user calls the shell a READ; the managed layer still sees EXECUTE.
    let p = layered("[defaults]\nexecute = \"deny\"\n", "[servers.sh.classes]\nrun_command = \"READ\"\n");
    let v = shell(&p);
    assert_eq!(v.evaluation.decision, Decision::Deny);
    assert_eq!(v.classification.class, latch_core::Class::Execute, "the deciding layer's class");
}

#[test]
fn user_internal_domains_do_not_loosen_sends() {
    let send = |p: &Policy| {
        run(p, "mail", "send_email", json!({"to": "boss@evil.example", "subject": "x", "body": "y"}))
            .evaluation
            .decision
    };
    let user = "internal_domains = [\"evil.example\"]\n[defaults]\nsend_internal = \"allow\"\n";
    assert_eq!(send(&parse(user)), Decision::Allow, "alone, the user's file allows it");
    let p = layered("[defaults]\nsend_external = \"ask\"\n", user);
    assert_eq!(send(&p), Decision::Ask);
}

#[test]
fn a_managed_condition_is_judged_by_the_managed_model_only() {
    // A managed condition needs a managed [judge] (the file does not parse
    // without one), and that judge then judges every condition: the
    // user's model never answers for the managed layer.
    let managed = "[judge]\nprovider = \"openai\"\nurl = \"http://127.0.0.1:9/v1\"\nmodel = \"corp\"\n\
                   [[rule]]\nname = \"prod\"\nserver = \"sh\"\neffect = \"allow\"\ncondition = \"it only lists files\"\n";
    let user = "[judge]\nprovider = \"openai\"\nurl = \"http://127.0.0.1:8/v1\"\nmodel = \"mine\"\n";
    assert!(Policy::parse(&managed.replace("[judge]", "[notjudge]")).is_err());
    let p = layered(managed, user);
    assert_eq!(p.judge().unwrap().model, "corp");
    let p = layered("", user);
    assert_eq!(p.judge().unwrap().model, "mine", "without a managed judge the user's judges the user's conditions");
}

#[test]
fn a_managed_judge_judges_and_its_questions_name_the_managed_rule() {
    let managed = "[judge]\nprovider = \"openai\"\nurl = \"http://127.0.0.1:9/v1\"\nmodel = \"corp\"\n\
                   [[rule]]\nname = \"prod\"\nserver = \"sh\"\neffect = \"deny\"\ncondition = \"it touches production\"\n";
    let p = layered(managed, "[defaults]\nexecute = \"allow\"\n");
    assert_eq!(p.judge().unwrap().model, "corp");
    let v = shell(&p);
    assert_eq!(v.evaluation.decision, Decision::Ask);
    assert_eq!(v.evaluation.questions.len(), 1);
    let q = &v.evaluation.questions[0];
    assert_eq!(q.rule, "managed rule \"prod\" (line 5)");
    let holds = Answer::to(q, Judgement::Holds { reason: "prod".into() });
    let args = json!({"command": "ls"});
    let v = decide_judged(&p, &Call { server: "sh", tool: "run_command", args: &args }, None, &[holds]);
    assert_eq!(v.evaluation.decision, Decision::Deny);
    let not = Answer::to(q, Judgement::DoesNotHold { reason: "no".into() });
    let v = decide_judged(&p, &Call { server: "sh", tool: "run_command", args: &args }, None, &[not]);
    assert_eq!(v.evaluation.decision, Decision::Ask, "the managed default for EXECUTE (built-in ask) is the floor");
}

#[test]
fn settings_join_towards_the_stricter() {
    let managed = "[approvals]\ngrant_ttl_seconds = 60\nhold_seconds = 20\nin_client = [\"claude-code\"]\n\
                   [threats]\nchanged_tools = \"deny\"\nresults = \"mask\"\n\
                   [[limits]]\nname = \"corp\"\nserver = \"sh\"\nper_minute = 5\n\
                   [audit]\nkeep_days = 365\n";
    let user = "[approvals]\ngrant_ttl_seconds = 3600\nhold_seconds = 40\nin_client = [\"claude-code\", \"cursor\"]\n\
                [threats]\nresults = \"record\"\n[threats.servers.gh]\nresults = \"hold\"\n\
                [[limits]]\nname = \"mine\"\nserver = \"gh\"\nper_minute = 50\n\
                [audit]\nkeep_days = 30\n";
    let p = layered(managed, user);
    assert_eq!(p.grant_ttl_seconds(), 60);
    assert_eq!(p.hold_seconds("sh"), Some(20));
    assert!(p.asks_in_client("claude-code"));
    assert!(!p.asks_in_client("cursor"), "a client only the user names");
    let t = p.threats();
    assert_eq!(t.changed_tools, Decision::Deny);
    assert_eq!(t.results_for("sh"), Handling::Mask, "the managed handling bounds the user's record");
    assert_eq!(t.results_for("gh"), Handling::Hold, "the user's stricter per-server handling stays");
    assert_eq!(t.limits.len(), 2);
    assert_eq!(t.limits[0].label, "managed limit \"corp\"");
    assert_eq!(p.audit().keep_days, Some(365));
    // No managed [approvals]: no client may be asked in.
    let p = layered("", user);
    assert!(!p.asks_in_client("claude-code"));
    assert_eq!(p.grant_ttl_seconds(), 600, "the managed default bounds it");
}

#[test]
fn overridden_names_each_loosening_user_rule_and_what_wins() {
    let managed = "[defaults]\nexecute = \"ask\"\n[[rule]]\nname = \"no-push\"\nserver = \"git\"\ntool = \"push\"\neffect = \"deny\"\n";
    let user = "[[rule]]\nname = \"push\"\nserver = \"git\"\ntool = \"push*\"\neffect = \"allow\"\n\
                [[rule]]\nname = \"run\"\nserver = \"sh\"\nclass = \"EXECUTE\"\neffect = \"allow\"\n\
                [[rule]]\nname = \"fine\"\nserver = \"fs\"\nclass = \"READ\"\neffect = \"allow\"\n\
                [[rule]]\nname = \"tight\"\nserver = \"sh\"\neffect = \"deny\"\n";
    let p = layered(managed, user);
    let o = p.overridden();
    assert_eq!(o.len(), 2, "{o:#?}");
    assert_eq!((o[0].kind, o[0].line), (ProblemKind::NoEffect, 1));
    assert!(o[0].message.contains("managed rule \"no-push\""), "{}", o[0].message);
    assert_eq!(o[1].line, 6);
    assert!(o[1].message.contains("EXECUTE = ask"), "{}", o[1].message);
    assert!(parse(user).overridden().is_empty(), "no managed layer, nothing to report");
}

#[test]
fn self_protection_is_the_built_in_layer() {
    let p = layered("", "");
    let home = std::env::temp_dir();
    let mut prot = latch_core::policy::Protected::default();
    prot.paths.push(home.join("latch-policy.toml").display().to_string());
    let mut p = p;
    p.set_protected(prot);
    let args = json!({"path": home.join("latch-policy.toml"), "content": "x"});
    let x = p.explain(&Call { server: "fs", tool: "write_file", args: &args }, None);
    assert_eq!((x.decision, x.rule.as_deref(), x.layer), (Decision::Deny, Some(SELF_PROTECT_RULE), Layer::Builtin));
}

#[test]
fn lockdown_denies_everything_and_says_why() {
    let p = Policy::layered(Policy::lockdown("/etc/latch/managed.toml is writable by others"), Policy::builtin());
    for (s, t, a) in [("fs", "read_file", json!({"path": "/tmp/x"})), ("sh", "run_command", json!({"command": "ls"}))] {
        let v = run(&p, s, t, a);
        assert_eq!(v.evaluation.decision, Decision::Deny);
        assert!(v.evaluation.rule.as_deref().unwrap().contains(LOCKDOWN_RULE));
        assert!(v.evaluation.reasons.iter().any(|r| r.contains("writable by others")), "{:?}", v.evaluation.reasons);
    }
}

#[test]
fn an_unlayered_policy_names_the_user_layer() {
    let x =
        Policy::builtin().explain(&Call { server: "fs", tool: "read_file", args: &json!({"path": "/tmp/x"}) }, None);
    assert_eq!(x.layer, Layer::User);
    assert!(Policy::builtin().managed_layer().is_none());
}

#[test]
fn a_settled_managed_deny_wins_over_the_users_open_questions() {
    let user = "[judge]\nprovider = \"openai\"\nurl = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
                [[rule]]\nname = \"maybe\"\nserver = \"sh\"\neffect = \"allow\"\ncondition = \"it is harmless\"\n";
    let p = layered("[defaults]\nexecute = \"deny\"\n", user);
    let v = shell(&p);
    assert_eq!(v.evaluation.decision, Decision::Deny);
    assert!(v.evaluation.questions.is_empty(), "no model is asked about a call that is denied anyway");
    // With a managed ask instead, the user's question stays open.
    let p = layered("", user);
    let v = shell(&p);
    assert_eq!((v.evaluation.decision, v.evaluation.questions.len()), (Decision::Ask, 1));
}

#[test]
fn the_verdict_says_what_the_managed_layer_alone_decided() {
    // Without a managed layer: nothing to say.
    assert_eq!(shell(&parse("")).managed, None);
    // The user's layer decides (it is stricter), the managed one still asks.
    let p = layered("", "[defaults]\nexecute = \"deny\"\n");
    let v = shell(&p);
    assert_eq!((v.evaluation.decision, v.managed), (Decision::Deny, Some(Decision::Ask)));
    // Both allow: the managed layer's own allow is reported.
    let p = layered("[defaults]\nexecute = \"allow\"\n", "[defaults]\nexecute = \"allow\"\n");
    assert_eq!(shell(&p).managed, Some(Decision::Allow));
    // A user rule allowing what the managed layer asks about: ask, and the
    // managed layer's ask is what an "always" answer could not change.
    let p = layered("", "[[rule]]\nname = \"ls\"\ntool = \"run_command\"\neffect = \"allow\"\n");
    let v = shell(&p);
    assert_eq!((v.evaluation.decision, v.managed), (Decision::Ask, Some(Decision::Ask)));
}
