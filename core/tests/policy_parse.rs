//! Parsing policy files: the default file, and every validation error with
//! its line.

use latch_core::policy::{DEFAULT_POLICY, Policy, PolicyError, ProblemKind};

fn problems(text: &str) -> PolicyError {
    Policy::parse(text).expect_err("should be refused")
}

/// The one problem of `text`, as (kind, line).
fn only(text: &str) -> (ProblemKind, usize, String) {
    let e = problems(text);
    assert_eq!(e.problems.len(), 1, "expected one problem, got: {e}");
    let p = &e.problems[0];
    (p.kind, p.line, format!("{p}"))
}

#[test]
fn default_file_parses_to_builtin() {
    let p = Policy::parse(DEFAULT_POLICY).unwrap();
    assert_eq!(p, Policy::builtin());
    assert!(p.warnings().is_empty());
}

#[test]
fn every_commented_example_in_the_default_file_parses() {
    // Uncomment every `# key = …` / `# [[rule]]` line: the examples must be
    // valid too (users copy them).
    let mut text = String::new();
    for line in DEFAULT_POLICY.lines() {
        let t = line.trim_start();
        let body = t.strip_prefix("# ").unwrap_or("");
        let key = body.split(" = ").next().unwrap_or("");
        let is_key = body.contains(" = ")
            && !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || "_\"*".contains(c));
        let code = (body.starts_with('[') && body.ends_with(']')) || is_key;
        if code && !body.starts_with("internal_domains") {
            text.push_str(body);
        } else if t.starts_with('#') {
            continue;
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    let p = Policy::parse(&text).unwrap_or_else(|e| panic!("{}\n---\n{text}", e.render("x", &text)));
    // Five examples and the default file's own `persistence` and
    // `outside-workspace` rules.
    assert_eq!(p.rule_count(), 7, "{text}");
    assert_eq!(p.workspace_paths(), ["~/src", "/srv/data"]);
}

#[test]
fn syntax_error_names_its_line() {
    let (k, line, _) = only("internal_domains = []\n[defaults]\nread = \"allow\nwrite = \"ask\"\n");
    assert_eq!((k, line), (ProblemKind::Syntax, 3));
}

#[test]
fn unknown_keys_are_errors_with_a_suggestion() {
    let (k, line, msg) = only("[[rule]]\ntool = \"x\"\nefect = \"deny\"\neffect = \"deny\"\n");
    assert_eq!((k, line), (ProblemKind::UnknownKey, 3));
    assert!(msg.contains("did you mean `effect`"), "{msg}");
    let (k, line, _) = only("\n\ninternal_domain = []\n");
    assert_eq!((k, line), (ProblemKind::UnknownKey, 3));
    let (k, line, _) = only("[approvals]\nhold = 5\n");
    assert_eq!((k, line), (ProblemKind::UnknownKey, 2));
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "[defaults]\nread = \"alow\"\nsend = \"ask\"\n\n[[rule]]\ntool = \"a[\"\nflags = [\"shel\"]\neffect = \"deny\"\n";
    let e = problems(text);
    let got: Vec<_> = e.problems.iter().map(|p| (p.kind, p.line)).collect();
    assert_eq!(
        got,
        [
            (ProblemKind::UnknownName, 2),
            (ProblemKind::UnknownKey, 3),
            (ProblemKind::BadGlob, 6),
            (ProblemKind::UnknownName, 7),
        ]
    );
    let shown = e.render("policy.toml", text);
    assert!(shown.contains("policy.toml:2:8: error: unknown effect \"alow\""), "{shown}");
    assert!(shown.contains("did you mean \"allow\""), "{shown}");
    assert!(shown.contains("send_internal and send_external"), "{shown}");
}

#[test]
fn wrong_types_are_errors() {
    let (k, line, msg) = only("[approvals]\nhold_seconds = \"30\"\n");
    assert_eq!((k, line), (ProblemKind::WrongType, 2));
    assert!(msg.contains("whole number"), "{msg}");
    let (k, line, _) = only("internal_domains = \"example.com\"\n");
    assert_eq!((k, line), (ProblemKind::WrongType, 1));
}

#[test]
fn hold_seconds_must_stay_under_a_minute() {
    let (k, line, msg) = only("[approvals]\nhold_seconds = 60\n");
    assert_eq!((k, line), (ProblemKind::OutOfRange, 2));
    assert!(msg.contains("60 s"), "{msg}");
    let (k, line, _) = only("[servers.gh]\nhold_seconds = 0\n");
    assert_eq!((k, line), (ProblemKind::OutOfRange, 2));
}

#[test]
fn rule_without_effect_or_matcher() {
    let (k, line, _) = only("# c\n\n[[rule]]\ntool = \"x\"\n");
    assert_eq!((k, line), (ProblemKind::MissingKey, 3));
    let (k, line, msg) = only("[[rule]]\ntool = \"x\"\neffect = \"deny\"\n\n[[rule]]\neffect = \"ask\"\n");
    assert_eq!((k, line), (ProblemKind::NeverMatches, 5));
    assert!(msg.contains("tool = \\\"*\\\"") || msg.contains("tool = \"*\""), "{msg}");
}

#[test]
fn bad_glob_and_regex() {
    let (k, line, msg) = only("[[rule]]\ntool = [\"ok\", \"read_[file\"]\neffect = \"deny\"\n");
    assert_eq!((k, line), (ProblemKind::BadGlob, 2));
    assert!(msg.contains("never closed"), "{msg}");
    let (k, line, _) =
        only("[[rule]]\ntool = \"x\"\nargs = [\n  { path = \"p\", regex = '(unclosed' },\n]\neffect = \"deny\"\n");
    assert_eq!((k, line), (ProblemKind::BadRegex, 4));
}

#[test]
fn unknown_class_and_flag_names() {
    let (k, line, msg) = only("[[rule]]\nclass = \"RAED\"\neffect = \"deny\"\n");
    assert_eq!((k, line), (ProblemKind::UnknownName, 2));
    assert!(msg.contains("READ"), "{msg}");
    let (k, line, _) = only("[[rule]]\nflags = [\"external\", \"!shel\"]\neffect = \"deny\"\n");
    assert_eq!((k, line), (ProblemKind::UnknownName, 2));
    let (k, line, _) = only("[servers.gh.classes]\nx = \"SENDING\"\n");
    assert_eq!((k, line), (ProblemKind::UnknownName, 2));
}

#[test]
fn contradictions_can_never_match() {
    let (k, line, msg) = only("[[rule]]\nclass = \"READ\"\nflags = [\"shell\"]\neffect = \"deny\"\n");
    assert_eq!((k, line), (ProblemKind::NeverMatches, 1));
    assert!(msg.contains("shell"), "{msg}");
    let (k, _, _) = only("[[rule]]\nflags = [\"external\", \"!external\"]\neffect = \"deny\"\n");
    assert_eq!(k, ProblemKind::NeverMatches);
    let (k, _, _) = only("[[rule]]\ntool = []\neffect = \"deny\"\n");
    assert_eq!(k, ProblemKind::NeverMatches);
    let (k, _, _) = only("[[rule]]\nflags = [\"self_protect\"]\neffect = \"allow\"\n");
    assert_eq!(k, ProblemKind::NeverMatches);
    let (k, line, _) = only("[[rule]]\ntool = \"x\"\nargs = [{ path = \"a\", one_of = [] }]\neffect = \"deny\"\n");
    assert_eq!((k, line), (ProblemKind::NeverMatches, 1));
}

#[test]
fn allow_with_any_domain_is_refused() {
    let (k, line, msg) = only("[[rule]]\nclass = \"SEND\"\nany_domain = [\"partner.com\"]\neffect = \"allow\"\n");
    assert_eq!((k, line), (ProblemKind::NeverMatches, 3));
    assert!(msg.contains("only_domains"), "{msg}");
}

#[test]
fn bad_domains() {
    let (k, line, msg) = only("internal_domains = [\"ok.com\",\n \"*.example.com\"]\n");
    assert_eq!((k, line), (ProblemKind::BadDomain, 2));
    assert!(msg.contains("\"example.com\""), "{msg}");
    let (k, _, _) = only("internal_domains = [\"https://x.com\"]\n");
    assert_eq!(k, ProblemKind::BadDomain);
}

#[test]
fn arg_matcher_needs_path_and_one_test() {
    let (k, line, _) = only("[[rule]]\ntool = \"x\"\nargs = [{ glob = \"*\" }]\neffect = \"deny\"\n");
    assert_eq!((k, line), (ProblemKind::MissingKey, 3));
    let (k, _, msg) =
        only("[[rule]]\ntool = \"x\"\nargs = [{ path = \"a\", glob = \"*\", prefix = \"b\" }]\neffect = \"deny\"\n");
    assert_eq!(k, ProblemKind::WrongType);
    assert!(msg.contains("exactly one"), "{msg}");
    let (k, _, _) = only("[[rule]]\ntool = \"x\"\nargs = [{ path = \"a..b\", equals = 1 }]\neffect = \"deny\"\n");
    assert_eq!(k, ProblemKind::WrongType);
}

#[test]
fn under_names_a_folder_and_is_never_negated() {
    let rule = |m: &str| format!("[[rule]]\ntool = \"x\"\nargs = [{m}]\neffect = \"allow\"\n");
    let (k, line, msg) = only(&rule("{ path = \"p\", under = \"/srv/\", not = true }"));
    assert_eq!((k, line), (ProblemKind::WrongType, 3));
    assert!(msg.contains("`under` cannot be used with `not = true`"), "{msg}");
    for bad in ["\"\"", "\"  \"", "\"/srv/../etc/\"", "3"] {
        let (k, _, msg) = only(&rule(&format!("{{ path = \"p\", under = {bad} }}")));
        assert_eq!(k, ProblemKind::WrongType, "{bad}: {msg}");
    }
    let p = Policy::parse(&rule("{ path = \"p\", under = \"/srv/app\" }")).unwrap();
    let shown =
        p.explain(&latch_core::Call { server: "s", tool: "x", args: &serde_json::json!({"p": "/srv/app/x"}) }, None);
    assert!(format!("{shown:?}").contains("under \\\"/srv/app/\\\""), "{shown:?}");
}

#[test]
fn duplicate_rule_names() {
    let (k, line, _) = only(
        "[[rule]]\nname = \"a\"\ntool = \"x\"\neffect = \"deny\"\n[[rule]]\nname = \"a\"\ntool = \"y\"\neffect = \"deny\"\n",
    );
    assert_eq!((k, line), (ProblemKind::Duplicate, 6));
}

#[test]
fn rules_after_a_match_all_rule_are_a_warning() {
    let p = Policy::parse("[[rule]]\ntool = \"*\"\neffect = \"ask\"\n\n[[rule]]\ntool = \"x\"\neffect = \"allow\"\n")
        .unwrap();
    assert_eq!(p.warnings().len(), 1);
    assert_eq!(p.warnings()[0].line, 5);
    assert_eq!(p.warnings()[0].kind, ProblemKind::Unreachable);
}

#[test]
fn settings_are_read() {
    let p = Policy::parse(
        "internal_domains = [\"Example.COM\"]\n[approvals]\nhold_seconds = 40\ngrant_ttl_seconds = 60\n\
         [servers.gh]\nhold_seconds = 20\n[servers.gh.classes]\n\"list_*\" = \"READ\"\nlist_secrets = \"SUBMIT\"\n\"*\" = \"WRITE\"\n",
    )
    .unwrap();
    assert_eq!(p.internal_domains(), ["example.com"]);
    assert_eq!(p.hold_seconds("gh"), Some(20));
    assert_eq!(p.hold_seconds("other"), Some(40));
    assert_eq!(Policy::builtin().hold_seconds("x"), None);
    assert_eq!(p.grant_ttl_seconds(), 60);
    use latch_core::Class;
    assert_eq!(p.user_class("gh", "list_secrets"), Some(Class::Submit), "plain names win over globs");
    assert_eq!(p.user_class("gh", "list_repos"), Some(Class::Read), "globs in file order");
    assert_eq!(p.user_class("gh", "merge"), Some(Class::Write));
    assert_eq!(p.user_class("other", "list_repos"), None);
}

#[test]
fn in_client_names_the_clients_asked_inside_themselves() {
    let p = Policy::parse("[approvals]\nin_client = [\"claude-code\", \"my-client\"]\n").unwrap();
    assert!(p.asks_in_client("claude-code"));
    assert!(p.asks_in_client("my-client"));
    // Exact names only: no case folding, no prefixes, never the empty name.
    assert!(!p.asks_in_client("Claude-Code"));
    assert!(!p.asks_in_client("my-client-2"));
    assert!(!p.asks_in_client(""));
    // By default no client is asked.
    assert!(!Policy::builtin().asks_in_client("claude-code"));
    let (kind, line, _) = only("[approvals]\nin_client = true\n");
    assert_eq!((kind, line), (ProblemKind::WrongType, 2));
}

#[test]
fn naming_a_client_to_ask_in_loosens_the_policy() {
    let old = "[approvals]\nhold_seconds = 30\n";
    let new = "[approvals]\nhold_seconds = 30\nin_client = [\"my-client\"]\n";
    let diff = latch_core::policy::compare(old, new).unwrap();
    assert_eq!(diff.loosening(), 1, "{:?}", diff.lines());
    let back = latch_core::policy::compare(new, old).unwrap();
    assert!(!back.is_empty());
}
