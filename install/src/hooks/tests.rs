use super::*;
use crate::plan::{Action, Outcome};

const LATCH: &str = "/opt/latch/bin/latch";
const CONFIG: &str = "/home/u/.codex/config.toml";

fn round_trip(agent: HookAgent, before: &str) -> String {
    let p = plan(before, agent, Action::Install, LATCH, CONFIG).unwrap_or_else(|e| panic!("{agent:?} {before:?}: {e}"));
    assert_eq!(p.reports[0].outcome, Outcome::Wrapped, "{before}");
    assert!(installed(&p.text, agent), "{}", p.text);
    assert!(!installed(before, agent));
    let again = plan(&p.text, agent, Action::Install, LATCH, CONFIG).unwrap();
    assert!(again.edits.is_empty());
    assert_eq!(again.reports[0].outcome, Outcome::AlreadyWrapped);
    let back = plan(&p.text, agent, Action::Uninstall, LATCH, CONFIG).unwrap();
    assert_eq!(back.text, before, "uninstall did not restore the bytes");
    assert_eq!(crate::plan::apply(before, &mut p.edits.clone()).unwrap(), p.text);
    p.text
}

#[test]
fn json_agents_round_trip_byte_for_byte() {
    let files = [
        "",
        "\n",
        "{}",
        "{ }\n",
        "{\n  \"model\": \"opus\"\n}\n",
        "{\n    \"hooks\": {\n        \"PostToolUse\": []\n    }\n}",
        "{\"hooks\": {\"PreToolUse\": [{\"matcher\": \"Bash\", \"hooks\": [{\"type\": \"command\", \"command\": \"x\"}]}]}}",
        "{\"hooks\": {\"BeforeTool\": [], \"preToolUse\": [\n  {\"type\": \"command\", \"bash\": \"y\"}\n]}}",
    ];
    for agent in [HookAgent::ClaudeCode, HookAgent::Gemini, HookAgent::Copilot] {
        for f in files {
            let after = round_trip(agent, f);
            assert!(crate::jsonc::parse(&after, agent != HookAgent::ClaudeCode).is_ok(), "{after}");
        }
    }
}

#[test]
fn jsonc_comments_and_trailing_commas_are_kept() {
    let f = "// my settings\n{\n  \"theme\": \"dark\", // dark\n  \"hooks\": {\n    \"BeforeTool\": [\n      {\"matcher\": \"x\", \"hooks\": []},\n    ],\n  },\n}\n";
    let after = round_trip(HookAgent::Gemini, f);
    assert!(after.contains("// dark") && after.contains("--timeout 60"));
    assert!(after.contains("\"timeout\": 60000"), "{after}");
}

#[test]
fn claude_entry_has_an_explicit_timeout_and_the_hook_command() {
    let after = round_trip(HookAgent::ClaudeCode, "{}");
    assert_eq!(
        after,
        "{\"hooks\": { \"PreToolUse\": [ {\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \
         \"/opt/latch/bin/latch hook claude-code --timeout 60\", \"timeout\": 60}]} ], \"PermissionRequest\": [ \
         {\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \
         \"/opt/latch/bin/latch hook claude-code --timeout 300\", \"timeout\": 300}]} ], \"PostToolUse\": [ \
         {\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \
         \"/opt/latch/bin/latch hook claude-code --timeout 60\", \"timeout\": 60}]} ] }}"
    );
    assert!(prompt_installed(&after));
}

#[test]
fn an_earlier_install_gains_the_permission_prompt_hook() {
    // What the first round of `latch install --hooks` wrote: PreToolUse only.
    let old = "{\"hooks\": { \"PreToolUse\": [ {\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \
               \"/opt/latch/bin/latch hook claude-code --timeout 60\", \"timeout\": 60}]} ] }}";
    assert!(installed(old, HookAgent::ClaudeCode) && !prompt_installed(old));
    let p = plan(old, HookAgent::ClaudeCode, Action::Install, LATCH, CONFIG).unwrap();
    assert_eq!(p.reports[0].outcome, Outcome::Wrapped);
    assert!(prompt_installed(&p.text) && p.text.starts_with(&old[..old.len() - 3]), "{}", p.text);
    // Uninstall takes both out.
    let back = plan(&p.text, HookAgent::ClaudeCode, Action::Uninstall, LATCH, CONFIG).unwrap().text;
    assert!(!installed(&back, HookAgent::ClaudeCode) && !prompt_installed(&back), "{back}");
    // Other agents have no prompt hook.
    let gemini = plan("{}", HookAgent::Gemini, Action::Install, LATCH, CONFIG).unwrap().text;
    assert!(!gemini.contains("PermissionRequest"), "{gemini}");
}

#[test]
fn strict_json_is_refused_with_its_line() {
    let err = plan("{\n  // no\n}", HookAgent::ClaudeCode, Action::Install, LATCH, CONFIG).unwrap_err();
    assert!(matches!(err, crate::plan::PlanError::Malformed(m) if m.line == 2));
    let p = plan("{\"hooks\": 3}", HookAgent::ClaudeCode, Action::Install, LATCH, CONFIG).unwrap();
    assert!(matches!(p.reports[0].outcome, Outcome::Skipped(_)) && p.edits.is_empty());
}

#[test]
fn codex_block_round_trips() {
    for f in ["", "model = \"o3\"", "model = \"o3\"\n", "[features]\nplugins = false\n\n# end\n"] {
        let after = round_trip(HookAgent::Codex, f);
        let t: toml::Table = after.parse().unwrap();
        let h = &t["hooks"]["PreToolUse"][0]["hooks"][0];
        assert_eq!(h["command"].as_str(), Some("/opt/latch/bin/latch hook codex --timeout 120"));
        assert_eq!(h["timeout"].as_integer(), Some(120));
    }
    // An inline `hooks` table cannot take a block: skipped, not broken.
    let p = plan("hooks = { PreToolUse = [] }\n", HookAgent::Codex, Action::Install, LATCH, CONFIG).unwrap();
    assert!(matches!(p.reports[0].outcome, Outcome::Skipped(_)) && p.edits.is_empty());
}

#[test]
fn uninstall_leaves_other_hooks() {
    let f = "{\"hooks\": {\"PreToolUse\": [{\"matcher\": \"Bash\", \"hooks\": [{\"type\": \"command\", \"command\": \"mine\"}]}]}}";
    let after = plan(f, HookAgent::ClaudeCode, Action::Install, LATCH, CONFIG).unwrap().text;
    // The user adds a hook after ours; uninstall takes only ours.
    let edited = after.replace("]}}", ", {\"matcher\": \"Edit\", \"hooks\": []}]}}");
    let back = plan(&edited, HookAgent::ClaudeCode, Action::Uninstall, LATCH, CONFIG).unwrap().text;
    assert!(!installed(&back, HookAgent::ClaudeCode));
    assert!(back.contains("\"mine\"") && back.contains("\"Edit\""), "{back}");
}

#[test]
fn commands_quote_odd_paths() {
    assert_eq!(command(HookAgent::Copilot, "/a b/latch"), "'/a b/latch' hook copilot --timeout 30");
    assert!(is_ours("'/a b/latch' hook copilot --timeout 30", HookAgent::Copilot));
    assert!(!is_ours("/usr/bin/latch hook codex", HookAgent::Copilot));
    assert!(!is_ours("/usr/bin/notlatch-hook hook copilot", HookAgent::Copilot));
}

#[test]
fn codex_trust_hash_is_what_codex_reports() {
    // `currentHash` of `codex app-server` 0.171 `hooks/list` for these handlers.
    let cmd = "/usr/bin/latch hook codex --timeout 120";
    assert_eq!(
        codex_trust::hash(Some(".*"), cmd, Some(120)),
        "sha256:9bf6ea95302adde115491676aa64ec4325084219f4bf10a5e85d5735f4f53dd9"
    );
    assert_eq!(
        codex_trust::hash(Some(".*"), cmd, Some(60)),
        "sha256:3e82490071df9b94bf25821ca5fc9d533adf635bde86ed517f3f54960a02b081"
    );
    assert_eq!(
        codex_trust::hash(Some("Bash"), cmd, Some(120)),
        "sha256:bf0610d3d9cb6bf95040f35d3a8c25e5f1ff8ad4a5428d811f34881dbe86b714"
    );
}

#[test]
fn codex_block_records_trust_for_its_own_position() {
    let mine = "[[hooks.PreToolUse]]\nmatcher = \"Bash\"\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\ncommand = \"mine\"\n";
    for (before, group) in [("", 0), ("model = \"o3\"\n", 0), (mine, 1)] {
        assert_eq!(codex_trust::trusted(before, CONFIG, HookAgent::Codex), None);
        let after = round_trip(HookAgent::Codex, before);
        let t: toml::Table = after.parse().unwrap();
        let key = format!("{CONFIG}:pre_tool_use:{group}:0");
        let want = codex_trust::hash(Some(".*"), &command(HookAgent::Codex, LATCH), Some(120));
        assert_eq!(t["hooks"]["state"][&key]["trusted_hash"].as_str(), Some(want.as_str()), "{after}");
        assert_eq!(codex_trust::trusted(&after, CONFIG, HookAgent::Codex), Some(true));
        // Another path, or a command edited after the trust, is not trusted.
        assert_eq!(codex_trust::trusted(&after, "/elsewhere/config.toml", HookAgent::Codex), Some(false));
        let edited = after.replace("--timeout 120\"", "--timeout 120 \"");
        assert_eq!(codex_trust::trusted(&edited, CONFIG, HookAgent::Codex), Some(false));
    }
    // A trust Codex already recorded for that key is left as it is (a
    // second table of the same name would break the file).
    let kept = format!("[hooks.state.\"{CONFIG}:pre_tool_use:0:0\"]\ntrusted_hash = \"sha256:00\"\n");
    let after = round_trip(HookAgent::Codex, &kept);
    assert_eq!(after.matches("trusted_hash").count(), 1, "{after}");
    assert_eq!(codex_trust::trusted(&after, CONFIG, HookAgent::Codex), Some(false));
}
