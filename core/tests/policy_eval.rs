//! Evaluating rules on calls: order, matchers, domains, self-protection,
//! "always" rules and test tables.

use latch_core::policy::{CaseTable, DEFAULT_POLICY, NewRule, Policy, Protected, SELF_PROTECT_RULE, append_rule};
use latch_core::{Call, Class, Classification, Decision, Flag, Flags};
use serde_json::{Value, json};

/// A classification made by hand, so these tests do not depend on the
/// classifier's word lists.
fn cls(class: Class, flags: &[Flag], domains: &[&str]) -> Classification {
    Classification {
        class,
        flags: flags.iter().copied().collect::<Flags>(),
        reasons: vec!["test".into()],
        domains: domains.iter().map(|d| d.to_string()).collect(),
    }
}

fn decide(p: &Policy, server: &str, tool: &str, args: Value, c: &Classification) -> (Decision, Option<String>) {
    let ev = p.evaluate(&Call { server, tool, args: &args }, None, c);
    (ev.decision, ev.rule)
}

fn policy(text: &str) -> Policy {
    Policy::parse(text).unwrap_or_else(|e| panic!("{}", e.render("test", text)))
}

#[test]
fn class_defaults_apply_when_no_rule_matches() {
    let p = Policy::builtin();
    let w = cls(Class::Write, &[], &[]);
    assert_eq!(decide(&p, "fs", "write_file", json!({}), &w), (Decision::Allow, None));
    assert_eq!(decide(&p, "sh", "run", json!({}), &cls(Class::Execute, &[Flag::Shell], &[])).0, Decision::Ask);
    assert_eq!(decide(&p, "pay", "pay", json!({}), &cls(Class::TransferValue, &[], &[])).0, Decision::Deny);
}

#[test]
fn send_is_allowed_only_when_every_address_is_internal() {
    let p = policy("internal_domains = [\"example.com\"]\n");
    let send = |d: &[&str]| decide(&p, "mail", "send_email", json!({}), &cls(Class::Send, &[], d)).0;
    assert_eq!(send(&["example.com"]), Decision::Allow);
    assert_eq!(send(&["mail.example.com", "example.com"]), Decision::Allow);
    assert_eq!(send(&["example.com", "gmail.com"]), Decision::Ask);
    assert_eq!(send(&["badexample.com"]), Decision::Ask);
    assert_eq!(send(&[]), Decision::Ask, "no visible recipient counts as external");
    let ext = cls(Class::Send, &[Flag::External], &["example.com"]);
    assert_eq!(decide(&p, "mail", "send", json!({}), &ext).0, Decision::Ask, "an External flag wins");
}

#[test]
fn changed_defaults_are_used() {
    let p = policy("[defaults]\nexecute = \"deny\"\nsend_internal = \"ask\"\n");
    assert_eq!(decide(&p, "s", "t", json!({}), &cls(Class::Execute, &[], &[])).0, Decision::Deny);
    assert_eq!(decide(&p, "s", "t", json!({}), &cls(Class::Read, &[], &[])).0, Decision::Allow);
}

const ORDERED: &str = r#"
[[rule]]
name = "etc-deny"
tool = "write_*"
args = [{ path = "path", prefix = "/etc/" }]
effect = "deny"

[[rule]]
name = "fs-ask"
server = "fs"
effect = "ask"

[[rule]]
name = "writes-allow"
class = "WRITE"
effect = "allow"
"#;

#[test]
fn first_matching_rule_decides_in_file_order() {
    let p = policy(ORDERED);
    let w = cls(Class::Write, &[], &[]);
    assert_eq!(
        decide(&p, "fs", "write_file", json!({"path": "/etc/x"}), &w),
        (Decision::Deny, Some("etc-deny".into()))
    );
    assert_eq!(decide(&p, "fs", "write_file", json!({"path": "/home/x"}), &w), (Decision::Ask, Some("fs-ask".into())));
    assert_eq!(
        decide(&p, "git", "write_file", json!({"path": "/home/x"}), &w),
        (Decision::Allow, Some("writes-allow".into()))
    );
    assert_eq!(decide(&p, "git", "status", json!({}), &cls(Class::Read, &[], &[])), (Decision::Allow, None));
}

#[test]
fn explain_shows_every_matching_rule_and_the_decider() {
    let p = policy(ORDERED);
    let args = json!({"path": "/etc/x"});
    let x = p.explain_classified(&Call { server: "fs", tool: "write_file", args: &args }, &cls(Class::Write, &[], &[]));
    let got: Vec<_> = x.matched_rules.iter().map(|m| (m.rule.as_str(), m.decided, m.line)).collect();
    assert_eq!(got, [("etc-deny", true, Some(2)), ("fs-ask", false, Some(8)), ("writes-allow", false, Some(13))]);
    assert_eq!(x.decision, Decision::Deny);
    assert_eq!(x.decided_by, "rule");
    let j = serde_json::to_value(&x).unwrap();
    for k in ["class", "flags", "decision", "reasons", "rule", "matched_rules"] {
        assert!(j.get(k).is_some(), "missing {k} in {j}");
    }
    assert_eq!(j["class"], "WRITE");
    assert_eq!(j["decision"], "deny");
}

#[test]
fn explain_classifies_with_user_overrides() {
    let p = policy("[servers.gh.classes]\nfrobnicate = \"SUBMIT\"\n");
    let args = json!({});
    let x = p.explain(&Call { server: "gh", tool: "frobnicate", args: &args }, None);
    assert_eq!(x.class, Class::Submit);
    assert_eq!(x.decision, Decision::Ask);
    assert_eq!(x.decided_by, "default");
}

#[test]
fn matchers_on_server_tool_class_and_flags() {
    let p = policy(
        r#"
[[rule]]
server = ["git*", "gh"]
tool = ["push", "merge_?r"]
effect = "deny"

[[rule]]
class = ["SEND", "SUBMIT"]
flags = ["external", "!destructive"]
effect = "deny"
"#,
    );
    let r = cls(Class::Read, &[], &[]);
    assert_eq!(decide(&p, "github", "push", json!({}), &r).0, Decision::Deny);
    assert_eq!(decide(&p, "gh", "merge_pr", json!({}), &r).0, Decision::Deny);
    assert_eq!(decide(&p, "gl", "push", json!({}), &r).0, Decision::Allow);
    let ext = |f: &[Flag]| cls(Class::Submit, f, &[]);
    assert_eq!(decide(&p, "x", "y", json!({}), &ext(&[Flag::External])).0, Decision::Deny);
    assert_eq!(decide(&p, "x", "y", json!({}), &ext(&[Flag::External, Flag::Destructive])).0, Decision::Ask);
    assert_eq!(decide(&p, "x", "y", json!({}), &ext(&[])).0, Decision::Ask);
}

#[test]
fn domain_rules_any_and_only() {
    let p = policy(
        r#"
[[rule]]
name = "competitor"
any_domain = ["rival.com"]
effect = "deny"

[[rule]]
name = "partners"
class = "SEND"
only_domains = ["partner.org", "example.com"]
effect = "allow"
"#,
    );
    let send = |d: &[&str]| decide(&p, "mail", "send", json!({}), &cls(Class::Send, &[Flag::External], d));
    assert_eq!(send(&["a.rival.com"]).1.as_deref(), Some("competitor"));
    assert_eq!(send(&["partner.org", "rival.com"]).1.as_deref(), Some("competitor"));
    assert_eq!(send(&["partner.org", "mail.example.com"]), (Decision::Allow, Some("partners".into())));
    assert_eq!(send(&["partner.org", "gmail.com"]), (Decision::Ask, None), "one outsider is enough to ask");
    assert_eq!(send(&[]), (Decision::Ask, None), "only_domains needs at least one domain");
    assert_eq!(send(&["notrival.com"]).1, None);
}

#[test]
fn arg_matchers() {
    let p = policy(
        r#"
[[rule]]
name = "eq"
tool = "t"
args = [{ path = "n", equals = 5 }]
effect = "deny"

[[rule]]
name = "glob"
tool = "t"
args = [{ path = "args.file", glob = "*.pem" }]
effect = "deny"

[[rule]]
name = "regex"
tool = "t"
args = [{ path = "sql", regex = '(?i)\bdrop\s+table\b' }]
effect = "deny"

[[rule]]
name = "oneof"
tool = "t"
args = [{ path = "branch", one_of = ["main", "master"] }]
effect = "deny"

[[rule]]
name = "index"
tool = "t"
args = [{ path = "to.0", prefix = "ceo@" }]
effect = "deny"

[[rule]]
name = "star"
tool = "t"
args = [{ path = "edits.*.path", glob = "/etc/*" }]
effect = "deny"

[[rule]]
name = "outside"
tool = "t"
args = [{ path = "dir", prefix = "/home/me/", not = true }, { path = "dir", equals = true, not = true }]
effect = "ask"
"#,
    );
    let c = cls(Class::Write, &[], &[]);
    let rule = |a: Value| decide(&p, "s", "t", a, &c).1;
    let ok = json!({"dir": "/home/me/x"});
    let with = |k: &str, v: Value| {
        let mut a = ok.clone();
        a[k] = v;
        a
    };
    assert_eq!(rule(ok.clone()), None);
    assert_eq!(rule(with("n", json!(5))).as_deref(), Some("eq"));
    assert_eq!(rule(with("n", json!(5.0))).as_deref(), Some("eq"));
    assert_eq!(rule(with("n", json!("5"))), None, "types matter for equals");
    assert_eq!(rule(with("file", json!("keys/server.pem"))).as_deref(), Some("glob"));
    assert_eq!(rule(with("sql", json!("select 1; DROP  TABLE users"))).as_deref(), Some("regex"));
    assert_eq!(rule(with("branch", json!("master"))).as_deref(), Some("oneof"));
    assert_eq!(rule(with("branch", json!("dev"))), None);
    assert_eq!(rule(with("to", json!(["ceo@x.com", "a@x.com"]))).as_deref(), Some("index"));
    assert_eq!(rule(with("to", json!(["a@x.com", "ceo@x.com"]))), None, "index 0 only");
    assert_eq!(rule(with("edits", json!([{"path": "/tmp/a"}, {"path": "/etc/hosts"}]))).as_deref(), Some("star"));
    assert_eq!(rule(with("edits", json!([{"path": "/tmp/a"}]))), None);
    assert_eq!(rule(json!({"dir": "/srv/x"})).as_deref(), Some("outside"));
    assert_eq!(rule(json!({})).as_deref(), Some("outside"), "not = true holds when the path is missing");
    assert_eq!(rule(json!({"dir": 7})).as_deref(), Some("outside"));
}

fn protected_policy(text: &str) -> Policy {
    let mut p = policy(text);
    p.set_protected(Protected {
        paths: vec![
            "/home/u/.config/latch/policy.toml".into(),
            "/home/u/.local/share/latch/audit.db".into(),
            "/home/u/.local/share/latch/run/latch.sock".into(),
            "/home/u/.local/share/latch".into(),
        ],
        home: Some("/home/u".into()),
        ..Default::default()
    });
    p
}

#[test]
fn self_protection_denies_latch_approve_in_a_shell_command() {
    let p = protected_policy("[[rule]]\ntool = \"*\"\neffect = \"allow\"\n");
    let sh = cls(Class::Execute, &[Flag::Shell], &[]);
    let args = json!({"command": "latch approve 123"});
    let ev = p.evaluate(&Call { server: "sh", tool: "run_command", args: &args }, None, &sh);
    assert_eq!(ev.decision, Decision::Deny);
    assert_eq!(ev.rule.as_deref(), Some(SELF_PROTECT_RULE));
    assert!(ev.added_flags.contains(&Flag::SelfProtect));
    assert!(ev.reasons[0].contains("self_protect") && ev.reasons[0].contains("\"approve\""), "{:?}", ev.reasons);
    // The reason reaches the agent: it never spells a command to run.
    assert!(!ev.reasons[0].contains("latch approve"), "{:?}", ev.reasons);
    // Even a rule that allows everything first cannot override it.
    let x = p.explain_classified(&Call { server: "sh", tool: "run_command", args: &args }, &sh);
    assert_eq!(x.matched_rules[0].rule, SELF_PROTECT_RULE);
    assert!(x.matched_rules[0].decided && !x.matched_rules[1].decided);
    assert!(x.flags.contains(&Flag::SelfProtect));
}

#[test]
fn self_protection_denies_a_write_to_the_policy_file() {
    let p = protected_policy("");
    let w = cls(Class::Write, &[], &[]);
    for path in
        ["/home/u/.config/latch/policy.toml", "~/.config/latch/policy.toml", "$HOME/.local/share/latch/audit.db"]
    {
        let (d, r) = decide(&p, "fs", "write_file", json!({"path": path, "content": "x"}), &w);
        assert_eq!((d, r.as_deref()), (Decision::Deny, Some(SELF_PROTECT_RULE)), "{path}");
    }
}

#[test]
fn self_protection_leaves_normal_files_alone() {
    let p = protected_policy("");
    let w = cls(Class::Write, &[], &[]);
    for path in ["/home/u/project/policy.toml", "/home/u/.config/latchkey/x", "/home/u/.local/share/other/audit.db"] {
        assert_eq!(decide(&p, "fs", "write_file", json!({"path": path}), &w), (Decision::Allow, None), "{path}");
    }
    let sh = cls(Class::Execute, &[Flag::Shell], &[]);
    assert_eq!(decide(&p, "sh", "run", json!({"command": "cargo test -p latch-core"}), &sh).0, Decision::Ask);
}

#[test]
fn self_protection_works_without_paths_for_the_latch_command() {
    let p = Policy::builtin();
    let sh = cls(Class::Execute, &[Flag::Shell], &[]);
    let (d, r) = decide(&p, "sh", "run", json!({"command": "sleep 1; ~/.cargo/bin/latch daemon --stop"}), &sh);
    assert_eq!((d, r.as_deref()), (Decision::Deny, Some(SELF_PROTECT_RULE)));
    let flagged = cls(Class::Read, &[Flag::SelfProtect], &[]);
    assert_eq!(decide(&p, "x", "y", json!({}), &flagged).0, Decision::Deny);
}

#[test]
fn always_rule_round_trips_through_the_parser() {
    let rule = NewRule {
        server: "fs".into(),
        tool: "write_*[odd]\"name".into(),
        effect: Decision::Allow,
        comment: "added by `always` from tui at 2026-11-24 15:30 UTC\nsecond line".into(),
        insert_before: None,
        narrow: None,
    };
    let text = append_rule(DEFAULT_POLICY, &rule);
    let p = Policy::parse(&text).unwrap_or_else(|e| panic!("{}", e.render("x", &text)));
    // The default file's own rules, then the new one.
    let base = Policy::builtin().rule_count();
    assert_eq!(p.rule_count(), base + 1);
    let c = cls(Class::Write, &[], &[]);
    assert_eq!(decide(&p, "fs", "write_*[odd]\"name", json!({}), &c).0, Decision::Allow);
    assert_eq!(decide(&p, "fs", "write_x", json!({}), &c).0, Decision::Allow, "default, not the rule");
    assert_eq!(decide(&p, "fs", "write_x", json!({}), &c).1, None);
    assert!(text.contains("# added by `always` from tui at 2026-11-24 15:30 UTC second line\n[[rule]]"));
    // Twice is fine too.
    let again = append_rule(&text, &NewRule { tool: "other".into(), effect: Decision::Deny, ..rule });
    assert_eq!(Policy::parse(&again).unwrap().rule_count(), base + 2);
}

#[test]
fn always_rule_goes_before_the_rule_that_asked() {
    let text = "[[rule]]\nname = \"etc\"\ntool = \"write_file\"\nargs = [{ path = \"path\", prefix = \"/etc/\" }]\neffect = \"deny\"\n\n# ask for every fs write\n[[rule]]\nname = \"fs-ask\"\nserver = \"fs\"\neffect = \"ask\"\n";
    let p = policy(text);
    let c = cls(Class::Write, &[], &[]);
    let args = json!({"path": "/home/x"});
    let ev = p.evaluate(&Call { server: "fs", tool: "write_file", args: &args }, None, &c);
    assert_eq!(ev.rule.as_deref(), Some("fs-ask"));
    let new = NewRule {
        server: "fs".into(),
        tool: "write_file".into(),
        effect: Decision::Allow,
        comment: "always".into(),
        insert_before: ev.rule_line,
        narrow: None,
    };
    let text2 = append_rule(text, &new);
    let p2 = policy(&text2);
    assert!(text2.contains("# always\n[[rule]]\nserver = \"fs\"\ntool = \"write_file\"\neffect = \"allow\"\n\n# ask for every fs write\n[[rule]]"), "{text2}");
    assert_eq!(decide(&p2, "fs", "write_file", json!({"path": "/home/x"}), &c).0, Decision::Allow);
    assert_eq!(
        decide(&p2, "fs", "write_file", json!({"path": "/etc/x"}), &c).0,
        Decision::Deny,
        "earlier rules still win"
    );
    assert_eq!(decide(&p2, "fs", "read_file", json!({}), &c).0, Decision::Ask);
}

#[test]
fn test_table_runner_reports_pass_and_fail() {
    let p = policy(
        "[[rule]]\nname = \"no-etc\"\ntool = \"write_file\"\nargs = [{ path = \"path\", prefix = \"/etc/\" }]\neffect = \"deny\"\n",
    );
    let table = CaseTable::parse(
        r#"
policy = "policy.toml"

[[case]]
name = "etc is denied"
server = "fs"
tool = "write_file"
args = { path = "/etc/hosts" }
expect = "deny"
expect_rule = "no-etc"

[[case]]
server = "fs"
tool = "read_file"
args = '{"path": "/etc/hosts"}'
tool_def = { name = "read_file", annotations = { readOnlyHint = true } }
expect = "allow"
expect_rule = "default"
expect_class = "READ"

[[case]]
name = "wrong on purpose"
server = "fs"
tool = "write_file"
args = { path = "/home/x" }
expect = "deny"
"#,
    )
    .unwrap();
    assert_eq!(table.policy.as_deref(), Some("policy.toml"));
    let results = table.run(&p);
    let got: Vec<_> = results.iter().map(|r| (r.name.as_str(), r.passed())).collect();
    assert_eq!(got, [("etc is denied", true), ("case #2", true), ("wrong on purpose", false)]);
    assert_eq!(results[2].failures, ["expected deny, got allow"]);
    assert_eq!(results[2].line, 21);
}

#[test]
fn test_table_errors_name_their_line() {
    let e =
        CaseTable::parse("[[case]]\nserver = \"fs\"\ntool = \"x\"\nexpect = \"maybe\"\nargs = '{bad'\n").unwrap_err();
    let lines: Vec<_> = e.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [4, 5]);
    let e = CaseTable::parse("[[case]]\nserver = \"fs\"\nexpected = \"allow\"\n").unwrap_err();
    assert_eq!(e.problems.len(), 3, "{e}");
}

#[test]
fn file_order_holds_across_plain_names_and_globs() {
    // Plain names and globs are filed separately for speed; the order of
    // the file must still decide.
    let p = policy(
        r#"
[[rule]]
name = "any-glob"
tool = "zz_*"
effect = "deny"

[[rule]]
name = "tool-only"
tool = ["write_file", "other"]
args = [{ path = "mode", equals = "a" }]
effect = "ask"

[[rule]]
name = "server-only"
server = "fs"
args = [{ path = "mode", one_of = ["a", "b"] }]
effect = "deny"

[[rule]]
name = "both"
server = ["fs", "fs2"]
tool = "write_file"
effect = "allow"

[[rule]]
name = "wild"
class = "WRITE"
effect = "deny"
"#,
    );
    let w = cls(Class::Write, &[], &[]);
    let rule = |server: &str, tool: &str, args: Value| decide(&p, server, tool, args, &w).1;
    assert_eq!(rule("fs", "write_file", json!({"mode": "a"})).as_deref(), Some("tool-only"));
    assert_eq!(rule("fs", "write_file", json!({"mode": "b"})).as_deref(), Some("server-only"));
    assert_eq!(rule("fs", "write_file", json!({})).as_deref(), Some("both"));
    assert_eq!(rule("fs2", "write_file", json!({"mode": "b"})).as_deref(), Some("both"));
    assert_eq!(rule("fs3", "write_file", json!({})).as_deref(), Some("wild"));
    assert_eq!(rule("fs", "zz_top", json!({"mode": "b"})).as_deref(), Some("any-glob"));
    let args = json!({"mode": "a"});
    let x = p.explain_classified(&Call { server: "fs", tool: "write_file", args: &args }, &w);
    let order: Vec<_> = x.matched_rules.iter().map(|m| m.rule.as_str()).collect();
    assert_eq!(order, ["tool-only", "server-only", "both", "wild"]);
}
