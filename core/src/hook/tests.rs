use serde_json::{Value, json};

use super::patch::{Change, paths};
use super::*;
use crate::class::{Class, Decision, Flag};
use crate::policy::{Policy, Protected};
use crate::{Call, ToolDef, decide};

const HOME: &str = "/home/u";

fn input(agent: Agent, v: Value) -> HookInput {
    read(agent, v.to_string().as_bytes()).unwrap()
}

fn claude(tool: &str, tool_input: Value) -> HookInput {
    input(
        Agent::ClaudeCode,
        json!({"session_id": "s1", "cwd": "/work/p", "hook_event_name": "PreToolUse",
               "tool_name": tool, "tool_input": tool_input, "tool_use_id": "toolu_1"}),
    )
}

fn builtin(agent: Agent, i: &HookInput) -> Mapped {
    match map(agent, i, Some(HOME)) {
        Target::Builtin(m) => m,
        other => panic!("{other:?}"),
    }
}

fn policy() -> Policy {
    let mut p = Policy::builtin();
    p.set_protected(Protected {
        paths: vec![
            format!("{HOME}/.config/latch/policy.toml"),
            format!("{HOME}/.config/latch"),
            format!("{HOME}/.local/share/latch"),
        ],
        home: Some(HOME.to_owned()),
        ..Default::default()
    });
    p
}

fn verdict(agent: Agent, m: &Mapped) -> crate::Verdict {
    let def = m.def.as_ref().and_then(ToolDef::from_value);
    decide(&policy(), &Call { server: agent.name(), tool: &m.tool, args: &m.args }, def.as_ref())
}

#[test]
fn payloads_per_agent() {
    let c = claude("Bash", json!({"command": "ls"}));
    assert_eq!((c.session.as_str(), c.cwd.as_str(), c.tool_use_id.as_str()), ("s1", "/work/p", "toolu_1"));
    let g = input(
        Agent::Gemini,
        json!({"session_id": "g", "cwd": "/w", "tool_name": "mcp_fs_read", "tool_input": {"p": 1},
               "mcp_context": {"server_name": "fs", "tool_name": "read"}}),
    );
    assert_eq!(
        map(Agent::Gemini, &g, None),
        Target::Mcp { server: "fs".into(), tool: "read".into(), args: json!({"p": 1}) }
    );
    // Copilot: camelCase, arguments as JSON text.
    let p = input(
        Agent::Copilot,
        json!({"sessionId": "c", "timestamp": 1, "cwd": "/w", "toolName": "bash", "toolArgs": "{\"command\":\"ls\"}"}),
    );
    assert_eq!((p.session.as_str(), p.tool.as_str()), ("c", "bash"));
    assert_eq!(p.input, json!({"command": "ls"}));
    assert_eq!(read(Agent::ClaudeCode, b"{}"), Err(PayloadError::NoTool("tool_name")));
    assert!(matches!(read(Agent::ClaudeCode, b"nope"), Err(PayloadError::NotJson(_))));
    assert_eq!(read(Agent::ClaudeCode, b"[1]"), Err(PayloadError::NotObject));
}

#[test]
fn mcp_names() {
    let c = claude("mcp__my_srv__do__it", json!({}));
    assert_eq!(
        map(Agent::ClaudeCode, &c, None),
        Target::Mcp { server: "my_srv".into(), tool: "do__it".into(), args: json!({}) }
    );
    let p = input(Agent::Copilot, json!({"toolName": "github-create_issue", "toolArgs": {}}));
    assert!(matches!(map(Agent::Copilot, &p, None), Target::MaybeMcp(_)));
}

#[test]
fn shell_tools_are_execute_for_every_agent() {
    for (agent, tool, input) in [
        (Agent::ClaudeCode, "Bash", json!({"command": "ls -la"})),
        (Agent::Codex, "Bash", json!({"command": "echo hi"})),
        (Agent::Codex, "shell", json!({"command": ["bash", "-lc", "echo hi"]})),
        (Agent::Gemini, "run_shell_command", json!({"command": "pwd", "directory": "sub"})),
        (Agent::Copilot, "bash", json!({"command": "true"})),
    ] {
        let i = HookInput { tool: tool.into(), input, cwd: "/w".into(), ..Default::default() };
        let m = builtin(agent, &i);
        assert_eq!(m.kind, Kind::Execute, "{tool}");
        let v = verdict(agent, &m);
        assert_eq!(v.classification.class, Class::Execute, "{tool}: {:?}", v.classification.reasons);
        assert!(v.classification.flags.contains(&Flag::Shell));
        assert_eq!(v.evaluation.decision, Decision::Ask, "{tool}");
    }
}

#[test]
fn writers_are_write_with_absolute_paths() {
    for (agent, tool, input, path) in [
        (Agent::ClaudeCode, "Write", json!({"file_path": "/w/a.txt", "content": "x"}), "/w/a.txt"),
        (
            Agent::ClaudeCode,
            "Edit",
            json!({"file_path": "b/../a.txt", "old_string": "x", "new_string": "y"}),
            "/w/a.txt",
        ),
        (Agent::ClaudeCode, "MultiEdit", json!({"file_path": "a.txt", "edits": []}), "/w/a.txt"),
        (Agent::Gemini, "write_file", json!({"file_path": "./a.txt", "content": "x"}), "/w/a.txt"),
        (Agent::Gemini, "replace", json!({"file_path": "a.txt", "old_string": "x", "new_string": "y"}), "/w/a.txt"),
        (Agent::Copilot, "edit", json!({"path": "~/a.txt", "old_str": "x", "new_str": "y"}), "/home/u/a.txt"),
        (Agent::Copilot, "str_replace_editor", json!({"command": "create", "path": "a.txt"}), "/w/a.txt"),
    ] {
        let i = HookInput { tool: tool.into(), input, cwd: "/w".into(), ..Default::default() };
        let m = builtin(agent, &i);
        assert_eq!(m.kind, Kind::Write, "{tool}");
        assert_eq!(m.args["paths"], json!([path]), "{tool}");
        let v = verdict(agent, &m);
        assert_eq!(v.classification.class, Class::Write, "{tool}: {:?}", v.classification.reasons);
        assert_eq!(v.evaluation.decision, Decision::Allow, "{tool}");
    }
}

#[test]
fn readers_and_web_are_read() {
    for (agent, tool, input, kind) in [
        (Agent::ClaudeCode, "Read", json!({"file_path": "/w/a"}), Kind::Read),
        (Agent::ClaudeCode, "Grep", json!({"pattern": "x"}), Kind::Read),
        (Agent::ClaudeCode, "Glob", json!({"pattern": "*.rs"}), Kind::Read),
        (Agent::Gemini, "read_file", json!({"absolute_path": "/w/a"}), Kind::Read),
        (Agent::Gemini, "search_file_content", json!({"pattern": "x", "dir_path": "src"}), Kind::Read),
        (Agent::Copilot, "view", json!({"path": "/w/a"}), Kind::Read),
        (Agent::ClaudeCode, "WebFetch", json!({"url": "https://example.com/x", "prompt": "sum"}), Kind::Web),
        (Agent::ClaudeCode, "WebSearch", json!({"query": "rust"}), Kind::Web),
        (Agent::Gemini, "google_web_search", json!({"query": "rust"}), Kind::Web),
    ] {
        let i = HookInput { tool: tool.into(), input, cwd: "/w".into(), ..Default::default() };
        let m = builtin(agent, &i);
        assert_eq!(m.kind, kind, "{tool}");
        let v = verdict(agent, &m);
        assert_eq!(v.classification.class, Class::Read, "{tool}: {:?}", v.classification.reasons);
        assert_eq!(kind == Kind::Web, v.classification.flags.contains(&Flag::OpenWorld), "{tool}");
    }
    // A search with no path searches the working folder.
    let m = builtin(Agent::ClaudeCode, &claude("Grep", json!({"pattern": "x"})));
    assert_eq!(m.args["paths"], json!(["/work/p"]));
}

#[test]
fn patch_paths_every_header() {
    let p = "*** Begin Patch\n*** Add File: a\n+x\n*** Update File: b\n*** Move to: c\n@@\n-y\n+z\n\
             *** Delete File: d\n  ***   delete   file:  e \n*** End Patch\n";
    assert_eq!(
        paths(p),
        vec![
            (Change::Add, "a".into()),
            (Change::Update, "b".into()),
            (Change::MoveTo, "c".into()),
            (Change::Delete, "d".into()),
            (Change::Delete, "e".into()),
        ]
    );
}

#[test]
fn apply_patch_is_write_and_names_every_path() {
    let patch = "*** Begin Patch\n*** Update File: src/x.rs\n*** Move to: ../y.rs\n*** Delete File: z\n*** End Patch";
    let i = HookInput {
        tool: "apply_patch".into(),
        input: json!({"command": patch}),
        cwd: "/w/p".into(),
        ..Default::default()
    };
    let m = builtin(Agent::Codex, &i);
    assert_eq!(m.args["paths"], json!(["/w/p/src/x.rs", "/w/y.rs", "/w/p/z"]));
    let v = verdict(Agent::Codex, &m);
    assert_eq!(v.classification.class, Class::Write, "{:?}", v.classification.reasons);
    assert!(v.classification.flags.contains(&Flag::Destructive));
    assert!(!v.classification.flags.contains(&Flag::Shell));
}

/// Self-protection reaches the agents' own tools, whatever the spelling.
#[test]
fn editing_latch_policy_is_denied_through_every_writer() {
    let cases = [
        (
            Agent::ClaudeCode,
            "Edit",
            json!({"file_path": "/home/u/.config/latch/policy.toml", "old_string": "a", "new_string": "b"}),
            "/w",
        ),
        (Agent::ClaudeCode, "Write", json!({"file_path": "policy.toml", "content": "x"}), "/home/u/.config/latch"),
        (Agent::ClaudeCode, "Write", json!({"file_path": "../.config/latch/policy.toml", "content": "x"}), "/home/u/x"),
        (Agent::Gemini, "write_file", json!({"file_path": "~/.config/latch/policy.toml", "content": "x"}), "/w"),
        (
            Agent::Codex,
            "apply_patch",
            json!({"command": "*** Begin Patch\n*** Update File: /w/a\n*** Move to: ../home/u/.config/latch/policy.toml\n*** End Patch"}),
            "/w",
        ),
        (
            Agent::Codex,
            "apply_patch",
            json!({"command": "*** Begin Patch\n*** Delete File: latch/policy.toml\n*** End Patch"}),
            "/home/u/.config",
        ),
        (Agent::ClaudeCode, "Bash", json!({"command": "sed -i s/ask/allow/ latch/policy.toml"}), "/home/u/.config"),
        (
            Agent::Gemini,
            "run_shell_command",
            json!({"command": "rm policy.toml", "directory": ".config/latch"}),
            "/home/u",
        ),
        (Agent::ClaudeCode, "Read", json!({"file_path": "/home/u/.local/share/latch/audit.db"}), "/w"),
        // A `workdir` elsewhere does not hide a path relative to the real cwd.
        (Agent::Codex, "exec_command", json!({"cmd": "rm latch/policy.toml", "workdir": "/tmp"}), "/home/u/.config"),
    ];
    for (agent, tool, input, cwd) in cases {
        let i = HookInput { tool: tool.into(), input: input.clone(), cwd: cwd.into(), ..Default::default() };
        let m = builtin(agent, &i);
        let v = verdict(agent, &m);
        assert_eq!(v.evaluation.decision, Decision::Deny, "{tool} {input} in {cwd}: {:?}", m.args);
        assert_eq!(v.evaluation.rule.as_deref(), Some(crate::policy::SELF_PROTECT_RULE));
    }
}

#[test]
fn answers_per_agent() {
    for a in Agent::ALL {
        assert_eq!(reply(a, &Verdict::Allow), Reply { stdout: String::new(), stderr: String::new(), exit: 0 });
        assert_eq!(reply(a, &Verdict::Pass).exit, 0);
    }
    let d = Verdict::Deny("no".into());
    let c: Value = serde_json::from_str(&reply(Agent::ClaudeCode, &d).stdout).unwrap();
    assert_eq!(c["hookSpecificOutput"]["permissionDecision"], "deny");
    assert_eq!(c["hookSpecificOutput"]["permissionDecisionReason"], "no");
    assert_eq!(reply(Agent::Codex, &d), Reply { stdout: String::new(), stderr: "no\n".into(), exit: 2 });
    let g: Value = serde_json::from_str(&reply(Agent::Gemini, &d).stdout).unwrap();
    assert_eq!(g, json!({"decision": "deny", "reason": "no"}));
    let p: Value = serde_json::from_str(&reply(Agent::Copilot, &d).stdout).unwrap();
    assert_eq!(p["permissionDecision"], "deny");
    // Only Claude Code may be handed an ask; every other agent gets a deny.
    let ask = Verdict::AgentAsk("a person decides".into());
    assert!(reply(Agent::ClaudeCode, &ask).stdout.contains("\"ask\""));
    assert_eq!(reply(Agent::Codex, &ask).exit, 2);
    assert!(reply(Agent::Gemini, &ask).stdout.contains("deny"));
}

#[test]
fn resolve_paths() {
    use super::tools::resolve;
    assert_eq!(resolve("/a/b", "../c/./d", None), "/a/c/d");
    assert_eq!(resolve("/a", "/x/../../y", None), "/y");
    assert_eq!(resolve("/a", "~/k", Some("/h")), "/h/k");
    assert_eq!(resolve("/a", "~/k", None), "~/k");
    assert_eq!(resolve("", "rel", None), "rel");
}

#[test]
fn agents_hook_settings_are_protected_too() {
    let mut p = policy();
    let mut prot = Protected {
        paths: vec![format!("{HOME}/.config/latch/policy.toml")],
        home: Some(HOME.into()),
        ..Default::default()
    };
    prot.paths.extend(settings_files(HOME));
    p.set_protected(prot);
    for (tool, input, cwd) in [
        ("Edit", json!({"file_path": "/home/u/.claude/settings.json", "old_string": "a", "new_string": "b"}), "/w"),
        ("Write", json!({"file_path": "settings.json", "content": "{}"}), "/home/u/.gemini"),
        ("Bash", json!({"command": "sed -i /latch/d ~/.codex/config.toml"}), "/w"),
    ] {
        let i = HookInput { tool: tool.into(), input, cwd: cwd.into(), ..Default::default() };
        let m = builtin(Agent::ClaudeCode, &i);
        let def = m.def.as_ref().and_then(ToolDef::from_value);
        let v = decide(&p, &Call { server: "claude-code", tool: &m.tool, args: &m.args }, def.as_ref());
        assert_eq!(v.evaluation.decision, Decision::Deny, "{tool}: {:?}", m.args);
    }
}

#[test]
fn permission_request_is_read_and_answered_in_claude_codes_prompt_format() {
    let input = read(
        Agent::ClaudeCode,
        br#"{"session_id":"s","cwd":"/w","hook_event_name":"PermissionRequest","tool_name":"Bash",
            "tool_input":{"command":"rm -rf x"},"permission_suggestions":[]}"#,
    )
    .unwrap();
    assert!(input.is_permission_request());
    assert_eq!(input.tool, "Bash");
    let allow = reply(Agent::ClaudeCode, &Verdict::PromptAllow);
    let v: serde_json::Value = serde_json::from_str(&allow.stdout).unwrap();
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PermissionRequest");
    assert_eq!(v["hookSpecificOutput"]["decision"]["behavior"], "allow");
    assert_eq!(allow.exit, 0);
    let deny = reply(Agent::ClaudeCode, &Verdict::PromptDeny("no".into()));
    let v: serde_json::Value = serde_json::from_str(&deny.stdout).unwrap();
    assert_eq!(v["hookSpecificOutput"]["decision"], serde_json::json!({"behavior": "deny", "message": "no"}));
    // Nothing that allows for an agent without the event; a deny stays a deny.
    assert_eq!(reply(Agent::Codex, &Verdict::PromptAllow).stdout, "");
    assert_eq!(reply(Agent::Codex, &Verdict::PromptDeny("no".into())).exit, 2);
    // A pre-tool call is not a prompt.
    let pre = read(Agent::ClaudeCode, br#"{"hook_event_name":"PreToolUse","tool_name":"Bash"}"#).unwrap();
    assert!(!pre.is_permission_request());
}
