//! Plain-English conditions: the `[judge]` section, and when evaluation
//! asks the model (only when a conditional rule could change the outcome),
//! what its answers do, and that no answer never allows.

use latch_core::policy::{Answer, Judgement, Policy, PolicyError, ProblemKind, Protected, Provider, SELF_PROTECT_RULE};
use latch_core::{Call, Class, Classification, Decision, Evaluation, Flags};
use serde_json::{Value, json};

const JUDGE: &str = r#"
[judge]
provider = "openai"
url = "http://127.0.0.1:8080/v1"
model = "tiny"
"#;

fn cls(class: Class, domains: &[&str]) -> Classification {
    Classification {
        class,
        flags: Flags::new(),
        reasons: vec!["test".into()],
        domains: domains.iter().map(|d| d.to_string()).collect(),
    }
}

fn policy(rules: &str) -> Policy {
    let text = format!("{JUDGE}\n{rules}");
    Policy::parse(&text).unwrap_or_else(|e| panic!("{}", e.render("test", &text)))
}

fn problems(text: &str) -> PolicyError {
    match Policy::parse(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => e,
    }
}

fn eval(p: &Policy, tool: &str, args: &Value, c: &Classification, answers: &[Answer]) -> Evaluation {
    p.evaluate_judged(&Call { server: "mail", tool, args }, c, answers)
}

fn holds(rule: &str, condition: &str, yes: bool, reason: &str) -> Answer {
    let judgement =
        if yes { Judgement::Holds { reason: reason.into() } } else { Judgement::DoesNotHold { reason: reason.into() } };
    Answer { rule: rule.into(), condition: condition.into(), judgement }
}

fn unavailable(rule: &str, condition: &str, why: &str) -> Answer {
    Answer { rule: rule.into(), condition: condition.into(), judgement: Judgement::Unavailable { why: why.into() } }
}

const OUTSIDE: &str = "the e-mail goes to someone outside the team";

/// A deny rule with a condition on SEND, whose default here is allow.
const DENY_OUTSIDE: &str = r#"
[defaults]
send_external = "allow"

[[rule]]
name = "outside"
class = "SEND"
condition = "the e-mail goes to someone outside the team"
effect = "deny"
reason = "team mail only"
"#;

#[test]
fn judge_section_is_parsed_with_defaults() {
    let p = policy("");
    let j = p.judge().expect("a judge");
    assert_eq!(j.provider, Provider::OpenAi);
    assert_eq!(j.endpoint, "http://127.0.0.1:8080/v1/chat/completions");
    assert_eq!(j.model, "tiny");
    assert_eq!(j.api_key_env, None);
    assert_eq!((j.timeout_ms, j.cache_size, j.cache_ttl_seconds), (5000, 1000, 3600));
    assert!(!p.has_conditions());

    let p = Policy::parse(
        "[judge]\nprovider = \"anthropic\"\nmodel = \"claude-haiku-4-5\"\napi_key_env = \"ANTHROPIC_API_KEY\"\n\
         timeout_ms = 250\ncache_size = 0\ncache_ttl_seconds = 60\n",
    )
    .unwrap();
    let j = p.judge().unwrap();
    assert_eq!(j.endpoint, "https://api.anthropic.com/v1/messages");
    assert_eq!((j.timeout_ms, j.cache_size, j.cache_ttl_seconds), (250, 0, 60));
}

#[test]
fn a_condition_without_a_judge_section_says_what_to_add() {
    let e = problems("[[rule]]\ntool = \"send_*\"\ncondition = \"it is late\"\neffect = \"deny\"\n");
    let [p] = &e.problems[..] else { panic!("{e}") };
    assert_eq!(p.line, 3, "{e}");
    assert_eq!(p.kind, ProblemKind::MissingKey);
    assert!(p.message.contains("no [judge] section"), "{e}");
    assert!(p.hint.contains("provider = \"openai\""), "{e}");
}

#[test]
fn typos_and_keys_in_the_judge_section_name_their_line() {
    let e = problems(
        "[[rule]]\ntool = \"x\"\ncondition = \"c\"\neffect = \"deny\"\n[judge]\nprovider = \"openai\"\nmodle = \"x\"\n",
    );
    assert!(e.problems.iter().any(|p| p.line == 7 && p.hint.contains("did you mean `model`")), "{e}");
    assert!(!e.problems.iter().any(|p| p.message.contains("no [judge] section")), "a [judge] with a typo exists: {e}");

    let e = problems("[judge]\nprovider = \"openia\"\nmodel = \"x\"\n");
    assert!(e.problems.iter().any(|p| p.line == 2 && p.message.contains("unknown provider")), "{e}");

    let e = problems("[judge]\nprovider = \"openai\"\nmodel = \"x\"\napi_key = \"sk-abc\"\n");
    assert!(e.problems.iter().any(|p| p.line == 4 && p.message.contains("never goes in the policy file")), "{e}");

    let e = problems("[judge]\nprovider = \"openai\"\nmodel = \"x\"\napi_key_env = \"sk-proj-abc123\"\n");
    assert!(e.problems.iter().any(|p| p.line == 4 && p.message.contains("NAME of an environment variable")), "{e}");

    let e = problems("[judge]\nprovider = \"openai\"\nmodel = \"x\"\ntimeout_ms = 0\n");
    assert!(e.problems.iter().any(|p| p.line == 4 && p.kind == ProblemKind::OutOfRange), "{e}");

    let e = problems("[judge]\nprovider = \"anthropic\"\nmodel = \"x\"\n");
    assert!(e.problems.iter().any(|p| p.message.contains("no `api_key_env`")), "{e}");

    let e = problems("[judge]\nmodel = \"x\"\n");
    assert!(e.problems.iter().any(|p| p.message.contains("no `provider`")), "{e}");

    let e = problems(&format!("{JUDGE}\n[[rule]]\ntool = \"x\"\ncondition = \"  \"\neffect = \"deny\"\n"));
    assert!(e.problems.iter().any(|p| p.message.contains("`condition` is empty")), "{e}");
}

#[test]
fn a_conditional_rule_that_could_change_the_outcome_asks_the_model_and_meanwhile_asks() {
    let p = policy(DENY_OUTSIDE);
    assert!(p.has_conditions());
    let c = cls(Class::Send, &["gmail.com"]);
    let args = json!({"to": "x@gmail.com"});
    let ev = eval(&p, "send_email", &args, &c, &[]);
    assert_eq!(ev.decision, Decision::Ask, "fail closed while the question is open");
    let [q] = &ev.questions[..] else { panic!("{ev:?}") };
    assert_eq!((q.rule.as_str(), q.condition.as_str(), q.effect), ("outside", OUTSIDE, Decision::Deny));
    assert_eq!(q.line, 11);
}

#[test]
fn a_yes_applies_the_rule_and_a_no_falls_through_each_with_the_models_reason() {
    let p = policy(DENY_OUTSIDE);
    let c = cls(Class::Send, &["gmail.com"]);
    let args = json!({"to": "x@gmail.com"});

    let yes = eval(&p, "send_email", &args, &c, &[holds("outside", OUTSIDE, true, "gmail.com is not the team")]);
    assert_eq!(yes.decision, Decision::Deny);
    assert_eq!(yes.rule.as_deref(), Some("outside"));
    assert!(yes.questions.is_empty());
    let why = yes.reasons.join("\n");
    assert!(why.contains("the model judged that") && why.contains("gmail.com is not the team"), "{why}");
    assert!(why.contains("team mail only"), "the user's reason too: {why}");

    let no = eval(&p, "send_email", &args, &c, &[holds("outside", OUTSIDE, false, "a colleague")]);
    assert_eq!(no.decision, Decision::Allow);
    assert_eq!(no.rule, None, "the class default decided");
    let why = no.reasons.join("\n");
    assert!(why.contains("does not hold (a colleague)"), "{why}");
}

#[test]
fn a_condition_that_cannot_be_judged_makes_its_rule_ask_never_allow() {
    // A deny rule: ask, not a silent allow.
    let p = policy(DENY_OUTSIDE);
    let c = cls(Class::Send, &["gmail.com"]);
    let args = json!({});
    let ev = eval(&p, "send_email", &args, &c, &[unavailable("outside", OUTSIDE, "the model did not answer in 5 s")]);
    assert_eq!(ev.decision, Decision::Ask);
    assert_eq!(ev.rule.as_deref(), Some("outside"));
    let why = ev.reasons.join("\n");
    assert!(why.contains("the model did not answer in 5 s; asking you instead"), "{why}");

    // An allow rule over a deny default: ask too, never allow.
    let p = policy(
        "[[rule]]\nname = \"small\"\nclass = \"TRANSFER_VALUE\"\ncondition = \"the amount is under 10 euros\"\neffect = \
         \"allow\"\n",
    );
    let c = cls(Class::TransferValue, &[]);
    let ev = eval(&p, "pay", &args, &c, &[]);
    assert_eq!((ev.decision, ev.questions.len()), (Decision::Ask, 1));
    let ev = eval(&p, "pay", &args, &c, &[unavailable("small", "the amount is under 10 euros", "HTTP 500")]);
    assert_eq!(ev.decision, Decision::Ask);
    let ev = eval(&p, "pay", &args, &c, &[holds("small", "the amount is under 10 euros", false, "250 EUR")]);
    assert_eq!(ev.decision, Decision::Deny);
}

#[test]
fn no_question_when_the_condition_cannot_change_the_outcome() {
    let args = json!({});
    // Same effect as the default that follows.
    let p = policy("[[rule]]\nclass = \"EXECUTE\"\ncondition = \"it deletes files\"\neffect = \"ask\"\n");
    let ev = eval(&p, "run", &args, &cls(Class::Execute, &[]), &[]);
    assert_eq!((ev.decision, ev.questions.len()), (Decision::Ask, 0));
    assert_eq!(ev.rule, None, "the default decided");

    // An unconditional rule before it decides first.
    let p = policy(
        "[[rule]]\nname = \"first\"\ntool = \"send_*\"\neffect = \"deny\"\n\n[[rule]]\ntool = \"send_*\"\ncondition \
         = \"x\"\neffect = \"allow\"\n",
    );
    let ev = eval(&p, "send_email", &args, &cls(Class::Send, &[]), &[]);
    assert_eq!((ev.decision, ev.rule.as_deref(), ev.questions.len()), (Decision::Deny, Some("first"), 0));

    // It does not match the call.
    let p = policy(DENY_OUTSIDE);
    let ev = eval(&p, "read_file", &args, &cls(Class::Read, &[]), &[]);
    assert_eq!((ev.decision, ev.questions.len()), (Decision::Allow, 0));
}

#[test]
fn only_the_conditions_whose_answers_matter_are_asked() {
    // ask-if A, allow-if B, then the EXECUTE default ask: A matters (it
    // shadows B), B matters (allow differs from ask).
    let p = policy(
        "[[rule]]\nname = \"a\"\nclass = \"EXECUTE\"\ncondition = \"A\"\neffect = \"ask\"\n\n[[rule]]\nname = \
         \"b\"\nclass = \"EXECUTE\"\ncondition = \"B\"\neffect = \"allow\"\n",
    );
    let c = cls(Class::Execute, &[]);
    let args = json!({});
    let ev = eval(&p, "run", &args, &c, &[]);
    let asked: Vec<_> = ev.questions.iter().map(|q| q.rule.as_str()).collect();
    assert_eq!(asked, ["a", "b"]);
    // Once B is known not to hold, A cannot change anything.
    let ev = eval(&p, "run", &args, &c, &[holds("b", "B", false, "")]);
    assert_eq!((ev.decision, ev.questions.len(), ev.rule), (Decision::Ask, 0, None));
    // B holds but A is open: A still matters.
    let ev = eval(&p, "run", &args, &c, &[holds("b", "B", true, "")]);
    assert_eq!(ev.questions.iter().map(|q| q.rule.as_str()).collect::<Vec<_>>(), ["a"]);
    // A holds: decided by A, whatever B.
    let ev = eval(&p, "run", &args, &c, &[holds("a", "A", true, "")]);
    assert_eq!((ev.decision, ev.rule.as_deref()), (Decision::Ask, Some("a")));
    assert!(ev.questions.is_empty());
}

#[test]
fn an_answer_about_another_condition_does_not_count() {
    let p = policy(DENY_OUTSIDE);
    let c = cls(Class::Send, &[]);
    let ev = eval(&p, "send_email", &json!({}), &c, &[holds("outside", "an older wording", true, "")]);
    assert_eq!((ev.decision, ev.questions.len()), (Decision::Ask, 1));
}

#[test]
fn self_protection_comes_first_and_never_asks_the_model() {
    let mut p = policy(
        "[[rule]]\nname = \"ok\"\ntool = \"*\"\ncondition = \"the call is harmless\"\neffect = \"allow\"\n\
         [defaults]\nwrite = \"deny\"\n",
    );
    p.set_protected(Protected {
        paths: vec!["/home/u/.config/latch/policy.toml".into()],
        home: Some("/home/u".into()),
        ..Default::default()
    });
    let args = json!({"path": "/home/u/.config/latch/policy.toml", "content": "x"});
    let c = cls(Class::Write, &[]);
    let ev = eval(&p, "write_file", &args, &c, &[holds("ok", "the call is harmless", true, "trust me")]);
    assert_eq!((ev.decision, ev.rule.as_deref()), (Decision::Deny, Some(SELF_PROTECT_RULE)));
    assert!(ev.questions.is_empty());
    let x = p.explain_classified(&Call { server: "fs", tool: "write_file", args: &args }, &c);
    assert!(x.questions.is_empty());
    assert_eq!(x.decided_by, "builtin");
}

#[test]
fn explain_lists_the_questions_and_what_decides_otherwise() {
    let p = policy(DENY_OUTSIDE);
    let c = cls(Class::Send, &["gmail.com"]);
    let args = json!({});
    let call = Call { server: "mail", tool: "send_email", args: &args };
    let x = p.explain_classified(&call, &c);
    assert_eq!(x.decided_by, "model");
    assert_eq!(x.decision, Decision::Ask);
    assert_eq!(x.questions.len(), 1);
    let otherwise = x.otherwise.as_ref().expect("otherwise");
    assert_eq!((otherwise.decision, otherwise.rule.as_deref()), (Decision::Allow, None));
    let [m] = &x.matched_rules[..] else { panic!("{x:?}") };
    assert_eq!((m.condition.as_deref(), m.holds, m.decided), (Some(OUTSIDE), None, false));

    let x = p.explain_classified_judged(&call, &c, &[holds("outside", OUTSIDE, true, "external")]);
    assert_eq!((x.decided_by, x.decision, x.otherwise.is_none()), ("rule", Decision::Deny, true));
    assert_eq!((x.matched_rules[0].holds, x.matched_rules[0].decided), (Some(true), true));
}

#[test]
fn a_catch_all_conditional_rule_does_not_hide_later_rules() {
    let p = policy(
        "[[rule]]\ntool = \"*\"\ncondition = \"x\"\neffect = \"deny\"\n\n[[rule]]\ntool = \"y\"\neffect = \"allow\"\n",
    );
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
}
