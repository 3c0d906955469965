use super::*;
use crate::plan::Outcome;

const LATCH: &str = "/opt/latch/bin/latch";
const GEMINI: &str = include_str!("../../../tests/fixtures/install/gemini_settings.json");
const CODEX: &str = include_str!("../../../tests/fixtures/install/codex_config.toml");

fn cases() -> [(&'static str, Format, Layout, HookAgent, &'static str); 2] {
    [
        (GEMINI, Format::Jsonc, Layout::McpServers, HookAgent::Gemini, "/h/.gemini/settings.json"),
        (CODEX, Format::Toml, Layout::CodexToml, HookAgent::Codex, "/h/.codex/config.toml"),
    ]
}

#[test]
fn servers_and_hook_in_one_file_round_trip_byte_for_byte() {
    for (text, format, layout, agent, path) in cases() {
        let p = plan(text, format, layout, agent, Action::Install, LATCH, path).unwrap();
        assert!(hooks::installed(&p.text, agent), "{}", p.text);
        assert!(p.reports.iter().any(|r| r.outcome == Outcome::Wrapped && r.name != "pre-tool hook"));
        assert_eq!(p.reports.last().map(|r| r.name.as_str()), Some("pre-tool hook"));
        // The edits, applied to the original, give the text (the diff and the write agree).
        assert_eq!(plan::apply(text, &mut p.edits.clone()).unwrap(), p.text);
        assert!(p.edits.len() > 1, "the hook's edit was not moved back onto the original");
        let again = plan(&p.text, format, layout, agent, Action::Install, LATCH, path).unwrap();
        assert!(again.edits.is_empty());
        let back = plan(&p.text, format, layout, agent, Action::Uninstall, LATCH, path).unwrap();
        assert_eq!(back.text, text, "uninstall did not restore the bytes");
        assert_eq!(plan::apply(&p.text, &mut back.edits.clone()).unwrap(), text);
    }
}

#[test]
fn half_installed_files_complete_and_restore() {
    for (text, format, layout, agent, path) in cases() {
        // Servers wrapped by an older `latch install` without hooks.
        let servers = plan::plan(text, format, layout, Action::Install, LATCH).unwrap().text;
        let p = plan(&servers, format, layout, agent, Action::Install, LATCH, path).unwrap();
        assert!(p.reports.iter().any(|r| r.outcome == Outcome::AlreadyWrapped));
        assert_eq!(p.reports.last().unwrap().outcome, Outcome::Wrapped);
        let back = plan(&p.text, format, layout, agent, Action::Uninstall, LATCH, path).unwrap();
        assert_eq!(back.text, text);
        // The hook alone first (`latch install --hooks`), then the servers.
        let hook = hooks::plan(text, agent, Action::Install, LATCH, path).unwrap().text;
        let p = plan(&hook, format, layout, agent, Action::Install, LATCH, path).unwrap();
        assert_eq!(p.reports.last().unwrap().outcome, Outcome::AlreadyWrapped);
        assert!(p.reports.iter().any(|r| r.outcome == Outcome::Wrapped));
        let back = plan(&p.text, format, layout, agent, Action::Uninstall, LATCH, path).unwrap();
        assert_eq!(back.text, text);
    }
}

#[test]
fn moved_edits_never_overlap_what_the_first_rewrite_wrote() {
    let first = Plan { text: "aXXd".into(), edits: vec![Edit { range: 1..3, text: "XX".into() }], reports: vec![] };
    let original = "abcd";
    // Inside the first edit's output: one edit for the whole difference.
    let next = Plan { text: "aXYd".into(), edits: vec![Edit { range: 2..3, text: "Y".into() }], reports: vec![] };
    let both = then(original, first.clone(), next);
    assert_eq!(plan::apply(original, &mut both.edits.clone()).unwrap(), "aXYd");
    // After it: moved back onto the original.
    let next = Plan { text: "aXXdE".into(), edits: vec![Edit { range: 4..4, text: "E".into() }], reports: vec![] };
    let both = then(original, first, next);
    assert_eq!(both.edits.len(), 2);
    assert_eq!(plan::apply(original, &mut both.edits.clone()).unwrap(), "aXXdE");
}
