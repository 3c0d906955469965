//! `[threats]`, `[[limits]]` and `[budget]`: parsing and every validation
//! error with its line and fix.

use latch_core::class::{Class, Decision, Flag};
use latch_core::policy::{Policy, ProblemKind};
use latch_core::threat::money::SCALE;
use latch_core::threat::result::Handling;

const FULL: &str = r#"
[threats]
changed_tools = "deny"
poisoned_tools = "allow"
results = "mask"

[threats.servers."fetch*"]
results = "hold"

[threats.taint]
effect = "deny"
untrusted = [{ class = "READ", flags = ["open_world"] }, { server = "gmail" }]
private = [{ flags = ["secret_read"] }, { server = "github", tool = "get_file_contents" }]
sinks = [{ class = "SEND", flags = ["external"] }, { class = "TRANSFER_VALUE" }]

[[limits]]
server = "github"
per_minute = 30
per_hour = 300

[[limits]]
name = "payments"
class = "TRANSFER_VALUE"
per_hour = 5
effect = "ask"

[budget]
daily = { USD = 100, EUR = "80.50" }
currency = "USD"
over = "deny"
unknown = "deny"
minor_units = ["stripe", "adyen*"]

[budget.servers.shop]
daily = { USD = 20 }
"#;

#[test]
fn the_full_example_parses() {
    let p = Policy::parse(FULL).unwrap_or_else(|e| panic!("{}", e.render("policy.toml", FULL)));
    let t = p.threats();
    assert_eq!(t.changed_tools, Decision::Deny);
    assert_eq!(t.poisoned_tools, Decision::Allow);
    assert_eq!(t.results_for("github"), Handling::Mask);
    assert_eq!(t.results_for("fetch-web"), Handling::Hold);
    assert_eq!(t.taint.effect, Decision::Deny);
    assert_eq!(t.taint.untrusted.len(), 2);
    assert_eq!(t.taint.untrusted[0].class, Some(Class::Read));
    assert_eq!(t.taint.untrusted[0].flags, vec![Flag::OpenWorld]);
    assert_eq!(t.taint.private[1].tool.as_ref().map(|g| g.as_str()), Some("get_file_contents"));
    assert_eq!(t.taint.sinks[1].class, Some(Class::TransferValue));
    assert_eq!(t.limits.len(), 2);
    assert_eq!(
        (t.limits[0].per_minute, t.limits[0].per_hour, t.limits[0].effect),
        (Some(30), Some(300), Decision::Deny)
    );
    assert_eq!(t.limits[0].label, "limits #1 (line 16)");
    assert_eq!(t.limits[1].label, "limit \"payments\"");
    assert_eq!(t.limits[1].effect, Decision::Ask);
    let b = t.budget.as_ref().unwrap();
    let shown: Vec<String> = b.daily.iter().map(|m| m.show()).collect();
    assert_eq!(shown, ["100.00 USD", "80.50 EUR"]);
    assert_eq!(b.currency.as_deref(), Some("USD"));
    assert_eq!((b.over, b.unknown), (Decision::Deny, Decision::Deny));
    assert_eq!(b.minor_units.len(), 2);
    assert_eq!(b.servers[0].1[0].micros, 20 * SCALE);
}

#[test]
fn without_the_sections_the_defaults_apply() {
    let p = Policy::parse("").unwrap();
    let t = p.threats();
    assert_eq!((t.changed_tools, t.poisoned_tools, t.results), (Decision::Ask, Decision::Ask, Handling::Record));
    assert!(t.limits.is_empty() && t.budget.is_none());
    assert_eq!(t.taint.effect, Decision::Ask);
    assert!(!t.taint.sinks.is_empty());
    assert_eq!(Policy::builtin().threats(), t);
}

/// The one problem of `text`: (kind, line, rendered).
fn only(text: &str) -> (ProblemKind, usize, String) {
    let e = Policy::parse(text).expect_err("should be refused");
    assert_eq!(e.problems.len(), 1, "expected one problem, got: {e}");
    let p = &e.problems[0];
    (p.kind, p.line, format!("{p}"))
}

#[test]
fn every_mistake_is_reported_with_its_line_and_fix() {
    let cases: &[(&str, ProblemKind, usize, &str)] = &[
        ("[threats]\nchanged_tool = \"ask\"\n", ProblemKind::UnknownKey, 2, "did you mean `changed_tools`?"),
        (
            "[threats]\nchanged_tools = \"allow\"\n",
            ProblemKind::UnknownName,
            2,
            "`changed_tools` can be \"ask\", \"deny\"",
        ),
        ("[threats]\npoisoned_tools = \"dney\"\n", ProblemKind::UnknownName, 2, "did you mean \"deny\"?"),
        ("[threats]\nresults = \"masks\"\n", ProblemKind::UnknownName, 2, "did you mean \"mask\"?"),
        ("[threats]\nresults = 3\n", ProblemKind::WrongType, 2, "`results = \"mask\"`"),
        ("[threats.servers.github]\nresult = \"mask\"\n", ProblemKind::UnknownKey, 2, "in [threats.servers.github]"),
        ("[threats.servers.\"git[hub\"]\nresults = \"mask\"\n", ProblemKind::BadGlob, 1, "does not compile"),
        ("[threats.taint]\nsinks = [{ class = \"SNED\" }]\n", ProblemKind::UnknownName, 2, "did you mean \"SEND\"?"),
        (
            "[threats.taint]\nprivate = [{ flags = [\"secret_reads\"] }]\n",
            ProblemKind::UnknownName,
            2,
            "did you mean \"secret_read\"?",
        ),
        ("[threats.taint]\nuntrusted = [{}]\n", ProblemKind::NeverMatches, 2, "would select every call"),
        ("[threats.taint]\nuntrusted = [{ clas = \"READ\" }]\n", ProblemKind::UnknownKey, 2, "did you mean `class`?"),
        ("[threats.taint]\nsinks = \"SEND\"\n", ProblemKind::WrongType, 2, "a list of tables"),
        ("[[limits]]\nserver = \"github\"\n", ProblemKind::MissingKey, 1, "per_minute = 30"),
        ("[[limits]]\nper_minute = 0\n", ProblemKind::OutOfRange, 2, "from 1 to"),
        ("[[limits]]\nper_minute = 5\neffect = \"allow\"\n", ProblemKind::UnknownName, 3, "\"ask\", \"deny\""),
        ("[[limits]]\nper_minute = 5\nper_day = 9\n", ProblemKind::UnknownKey, 3, "in [[limits]]"),
        ("limits = 5\n", ProblemKind::WrongType, 1, "[[limits]]"),
        ("[budget]\ndaily = { usd = 100 }\n", ProblemKind::UnknownName, 2, "three-letter ISO code"),
        ("[budget]\ndaily = { USD = -5 }\n", ProblemKind::WrongType, 2, "zero or more"),
        ("[budget]\ndaily = { USD = \"lots\" }\n", ProblemKind::WrongType, 2, "`USD = 100`"),
        ("[budget]\nover = \"allow\"\n", ProblemKind::UnknownName, 2, "`over` can be \"ask\", \"deny\""),
        ("[budget]\ncurrency = \"dollars\"\n", ProblemKind::UnknownName, 2, "not a currency code"),
        ("[budget.servers.shop]\nmonthly = { USD = 5 }\n", ProblemKind::UnknownKey, 2, "in [budget.servers.shop]"),
        ("[budget]\ndayly = { USD = 5 }\n", ProblemKind::UnknownKey, 2, "did you mean `daily`?"),
    ];
    for (text, kind, line, hint) in cases {
        let (k, l, shown) = only(text);
        assert_eq!((k, l), (*kind, *line), "{text:?}: {shown}");
        assert!(shown.contains(hint), "{text:?}: {shown}");
    }
}

#[test]
fn problems_in_these_sections_come_with_the_others() {
    let text = "[threats]\nresults = \"drop\"\n[[limits]]\nper_hour = 0\n[defaults]\nread = \"alow\"\n";
    let e = Policy::parse(text).unwrap_err();
    let lines: Vec<usize> = e.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 4, 6], "{e}");
}

#[test]
fn the_example_in_docs_policy_md_parses_and_its_taint_lists_are_the_defaults() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.md")).unwrap();
    let section = doc.split("## Threats from servers").nth(1).expect("the section");
    let block = section.split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
    let p = Policy::parse(block).unwrap_or_else(|e| panic!("{}", e.render("docs/policy.md", block)));
    let builtin = Policy::builtin();
    let (t, d) = (&p.threats().taint, &builtin.threats().taint);
    assert_eq!((&t.untrusted, &t.sinks, t.effect), (&d.untrusted, &d.sinks, d.effect));
    assert_eq!(t.private[0], d.private[0]);
    assert_eq!(
        p.threats().budget.as_ref().unwrap().minor_units,
        latch_core::threat::budget::BudgetPolicy::default().minor_units
    );
}
