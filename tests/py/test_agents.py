"""Real coding agents under Latch's hook: the pinned Claude Code, Gemini CLI,
Codex and Copilot CLI from tests/package.json run headless (`claude -p`,
`gemini -p`, `codex exec`, `copilot -p`) against our scripted model (scripted_model.py) in a
throw-away HOME after `latch install --hooks`,
inside a network namespace with loopback only (`unshare -n`): nothing can
leave the machine, and the daemon's Unix socket is still reached.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from latchkit import LATCH_BIN, NODE_BIN, Home, our_server_cmd, via_shim, wait_until
from scripted_model import read_log

HERE = Path(__file__).resolve().parent
CLAUDE = NODE_BIN / "claude"
GEMINI = NODE_BIN / "gemini"
CODEX = NODE_BIN / "codex"
COPILOT = NODE_BIN / "copilot"
PYTHON = os.environ.get("LATCH_TEST_PYTHON") or str(Path(os.sys.executable))


def can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_claude = pytest.mark.skipif(not CLAUDE.exists(), reason="Claude Code is not installed (npm ci in tests/)")
needs_copilot = pytest.mark.skipif(not COPILOT.exists(), reason="Copilot CLI is not installed (npm ci in tests/)")
needs_codex = pytest.mark.skipif(not CODEX.exists(), reason="Codex is not installed (npm ci in tests/)")
needs_gemini = pytest.mark.skipif(not GEMINI.exists(), reason="Gemini CLI is not installed (npm ci in tests/)")
pytestmark = [
    pytest.mark.skipif(not can_unshare(), reason="`unshare -n` is not permitted here (needs root or user namespaces)"),
]


class Agent:
    """One throw-away HOME with Claude Code's hook installed."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.agent_home = home.path / "agent-home"
        (self.agent_home / ".claude").mkdir(parents=True)
        self.env = {
            **home.cli_env(),
            "HOME": str(self.agent_home),
            "ANTHROPIC_API_KEY": "dummy",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
        }
        done = subprocess.run(
            [LATCH_BIN, "install", "--hooks", "claude-code"], env=self.env, capture_output=True, text=True, timeout=20
        )
        assert done.returncode == 0, done.stdout + done.stderr
        self.runs = 0

    def start(self, script: list[dict[str, Any]], *extra: str) -> tuple[subprocess.Popen[str], Path]:
        self.runs += 1
        script_path = self.home.path / f"script-{self.runs}.json"
        script_path.write_text(json.dumps(script))
        log = self.home.path / f"model-{self.runs}.jsonl"
        out = open(self.home.new_log("claude"), "w")
        cmd = [
            "unshare", "-n", PYTHON, str(HERE / "scripted_model.py"), str(script_path), str(log), "--",
            str(CLAUDE), "-p", "Do what the tools say.", "--output-format", "json",
            "--allowedTools", "Bash,Edit,Write,Read,mcp__srv__echo,mcp__bare__echo", *extra,
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, env=self.env, cwd=self.home.work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        return proc, log

    def run(self, script: list[dict[str, Any]], *extra: str) -> Path:
        proc, log = self.start(script, *extra)
        assert proc.wait(timeout=120) == 0
        return log


def tool_results(log: Path) -> list[str]:
    """The tool results the model saw in its last request, as text."""
    requests = [r["body"] for r in read_log(str(log)) if r["body"].get("tools")]
    out = []
    for message in requests[-1]["messages"] if requests else []:
        for block in message["content"] if isinstance(message["content"], list) else []:
            if block.get("type") == "tool_result":
                c = block.get("content")
                out.append(c if isinstance(c, str) else json.dumps(c))
    return out


def calls(home: Home) -> list[dict[str, Any]]:
    home.latch("audit", "--json", "--limit", "1")
    db = sqlite3.connect(home.latch_home / "audit.db")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM events WHERE kind = 'call' ORDER BY id")]
    finally:
        db.close()


@needs_claude
def test_claude_code_risky_bash_is_held_denied_in_latch_and_never_runs(home: Home, daemon: Any) -> None:
    agent = Agent(home)
    victim = home.work / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    proc, log = agent.start([{"name": "Bash", "input": {"command": f"rm -rf {victim}", "description": "clean"}}])
    try:
        pending = home.wait_pending(server="claude-code", tool="Bash", timeout=60)
        assert victim.exists()
        home.deny(pending["id"], reason="not on my machine")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (victim / "keep.txt").read_text() == "precious", "the denied command ran"
    [result] = tool_results(log)
    assert "not on my machine" in result and "decided in Latch" in result, result
    [row] = calls(home)
    assert (row["server"], row["tool"], row["class"], row["decision"]) == ("claude-code", "Bash", "EXECUTE", "ask")
    assert row["session"].startswith("claude-code:") and len(row["session"]) > len("claude-code:")
    assert f"cwd {home.work}" in row["detail"] and "tool_use_id toolu_latch_00" in row["detail"]


@needs_claude
def test_claude_code_allowed_write_runs_and_policy_edit_is_denied(home: Home, daemon: Any) -> None:
    agent = Agent(home)
    policy = home.latch_home / "policy.toml"
    before = policy.read_bytes()
    notes = home.work / "notes.txt"
    edit = {"file_path": str(policy), "old_string": 'execute = "ask"', "new_string": 'execute = "allow"'}
    log = agent.run(
        [
            {"name": "Write", "input": {"file_path": str(notes), "content": "hello\n"}},
            # Claude Code edits only a file it has read: the Read is Latch's to deny.
            {"name": "Read", "input": {"file_path": str(policy)}},
            {"name": "Edit", "input": edit},
            {"name": "Write", "input": {"file_path": str(home.latch_home / "extra.toml"), "content": "x = 1\n"}},
        ]
    )
    assert notes.read_text() == "hello\n", "the allowed Write did not run"
    assert policy.read_bytes() == before, "the policy was edited"
    assert not (home.latch_home / "extra.toml").exists()
    results = tool_results(log)
    assert len(results) == 4, results
    assert "Latch denied Read" in results[1] and "Latch denied Write" in results[3], results
    # The Edit never ran: Claude Code refused it itself (not read first), or
    # it asked its hook and Latch denied it.
    assert "has not been read" in results[2] or "Latch denied Edit" in results[2], results[2]
    rows = [(r["tool"], r["class"], r["decision"], r["rule"]) for r in calls(home)]
    assert rows[0] == ("Write", "WRITE", "allow", None)
    assert ("Read", "READ", "deny", "builtin:self-protect") in rows
    assert ("Write", "WRITE", "deny", "builtin:self-protect") in rows
    assert all(d == "deny" for t, _, d, _ in rows if t == "Edit")


@needs_claude
def test_claude_code_with_no_daemon_runs_nothing_risky(home: Home) -> None:
    agent = Agent(home)
    marker = home.work / "ran.txt"
    log = agent.run([{"name": "Bash", "input": {"command": f"echo ran > {marker}", "description": "x"}}])
    assert not marker.exists(), "a command ran while no daemon could check it"
    [result] = tool_results(log)
    assert "did not run" in result, result


@needs_claude
def test_claude_code_mcp_call_through_a_shim_is_decided_once(home: Home, daemon: Any) -> None:
    agent = Agent(home)
    shimmed = via_shim("srv", our_server_cmd())
    config = {
        "mcpServers": {
            "srv": {"command": shimmed[0], "args": shimmed[1:], "env": home.server_env()},
            # Not wrapped: the hook decides its calls.
            "bare": {"command": our_server_cmd()[0], "args": [], "env": home.server_env()},
        }
    }
    config_path = home.path / "mcp.json"
    config_path.write_text(json.dumps(config))
    log = agent.run(
        [
            {"name": "mcp__srv__echo", "input": {"text": "through the shim"}},
            {"name": "mcp__bare__echo", "input": {"text": "no shim"}},
        ],
        "--mcp-config",
        str(config_path),
    )
    results = tool_results(log)
    assert len(results) == 2 and all("Latch" not in r for r in results), results
    rows = [(r["server"], r["tool"], r["decision"]) for r in calls(home)]
    # One row each: the shim's for srv, the hook's for bare; none for the agent.
    assert sorted(rows) == [("bare", "echo", "allow"), ("srv", "echo", "allow")], rows
    assert [c["arguments"]["text"] for c in home.recorded("echo")] == ["through the shim", "no shim"]


@needs_gemini
def test_gemini_cli_risky_shell_is_held_denied_in_latch_and_allowed_write_runs(home: Home, daemon: Any) -> None:
    agent_home = home.path / "gemini-home"
    (agent_home / ".gemini").mkdir(parents=True)
    (agent_home / ".gemini" / "settings.json").write_text('{"security": {"auth": {"selectedType": "gemini-api-key"}}}\n')
    env = {**home.cli_env(), "HOME": str(agent_home), "GEMINI_API_KEY": "dummy", "GEMINI_CLI_TRUST_WORKSPACE": "true"}
    done = subprocess.run([LATCH_BIN, "install", "--hooks", "gemini"], env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    victim = home.work / "victim"
    victim.mkdir()
    notes = home.work / "notes.txt"
    script = [
        {"name": "run_shell_command", "input": {"command": f"rm -rf {victim}"}},
        {"name": "write_file", "input": {"file_path": str(notes), "content": "hello"}},
    ]
    script_path = home.path / "gemini-script.json"
    script_path.write_text(json.dumps(script))
    log = home.path / "gemini-model.jsonl"
    out = open(home.new_log("gemini"), "w")
    cmd = [
        "unshare", "-n", PYTHON, str(HERE / "scripted_model.py"), str(script_path), str(log), "--",
        str(GEMINI), "-p", "Do what the tools say.", "-o", "json", "--yolo",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=home.work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        pending = home.wait_pending(server="gemini", tool="run_shell_command", timeout=60)
        home.deny(pending["id"], reason="not on my machine")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert victim.exists(), "the denied command ran"
    assert notes.read_text() == "hello", "the allowed write_file did not run"
    told = [
        p["functionResponse"]
        for r in read_log(str(log))
        for c in r["body"].get("contents", [])
        for p in c.get("parts", [])
        if "functionResponse" in p
    ]
    assert any("not on my machine" in json.dumps(t) for t in told), told
    rows = [(r["server"], r["tool"], r["class"], r["decision"]) for r in calls(home)]
    assert rows == [("gemini", "run_shell_command", "EXECUTE", "ask"), ("gemini", "write_file", "WRITE", "allow")]
    assert all(r["session"].startswith("gemini:") and len(r["session"]) > 7 for r in calls(home))


CODEX_CONFIG = """model = "gpt-test"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.fake]
name = "fake"
base_url = "{MODEL_URL}/v1"
wire_api = "responses"
env_key = "FAKE_API_KEY"

[analytics]
enabled = false

[features]
plugins = false
apps = false
remote_plugin = false
plugin_sharing = false
"""


@needs_codex
def test_codex_obeys_latch_deny_and_runs_what_a_person_approved(home: Home, daemon: Any) -> None:
    agent_home = home.path / "codex-home"
    (agent_home / ".codex").mkdir(parents=True)
    (agent_home / ".codex" / "config.toml").write_text(CODEX_CONFIG)
    env = {**home.cli_env(), "HOME": str(agent_home), "FAKE_API_KEY": "dummy"}
    # Plain `latch install`, as a user runs it: the hook, with Codex's trust recorded.
    done = subprocess.run([LATCH_BIN, "install", "codex"], env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    victim = home.work / "victim"
    victim.mkdir()
    approved = home.work / "approved.txt"
    script = [
        {"name": "exec_command", "input": {"cmd": f"rm -rf {victim}"}},
        {"name": "exec_command", "input": {"cmd": f"echo ok > {approved}"}},
    ]
    script_path = home.path / "codex-script.json"
    script_path.write_text(json.dumps(script))
    log = home.path / "codex-model.jsonl"
    out = open(home.new_log("codex"), "w")
    # No `--dangerously-bypass-hook-trust`: Codex skips a hook nobody trusted,
    # so this run shows that the trust `latch install` recorded is Codex's own.
    cmd = [
        "unshare", "-n", PYTHON, str(HERE / "scripted_model.py"), str(script_path), str(log), "--",
        str(CODEX), "exec", "--skip-git-repo-check", "Do what the tools say.",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=home.work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        first = home.wait_pending(server="codex", tool="Bash", timeout=60)
        home.deny(first["id"], reason="not on my machine")
        second = wait_for_other_pending(home, first["id"])
        home.approve(second["id"])
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert victim.exists(), "the denied command ran"
    assert approved.read_text() == "ok\n", "the approved command did not run"
    outputs = [
        i.get("output", "")
        for r in read_log(str(log))
        for i in r["body"].get("input", [])
        if isinstance(i, dict) and i.get("type") == "function_call_output"
    ]
    assert any("not on my machine" in json.dumps(o) for o in outputs), outputs
    rows = [(r["server"], r["tool"], r["class"], r["decision"]) for r in calls(home)]
    assert rows == [("codex", "Bash", "EXECUTE", "ask")] * 2, rows


@needs_codex
def test_codex_app_server_lists_latchs_hook_as_trusted_and_no_other(home: Home) -> None:
    agent_home = home.path / "codex-trust-home"
    (agent_home / ".codex").mkdir(parents=True)
    # A hook of the user's own before ours: ours is group 1, and stays the only one trusted.
    mine = '[[hooks.PreToolUse]]\nmatcher = "Bash"\n\n[[hooks.PreToolUse.hooks]]\ntype = "command"\ncommand = "true"\n'
    config = agent_home / ".codex" / "config.toml"
    config.write_text(CODEX_CONFIG.replace("{MODEL_URL}", "http://127.0.0.1:9") + mine)
    env = {**home.cli_env(), "HOME": str(agent_home)}
    done = subprocess.run([LATCH_BIN, "install", "codex"], env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = {h["command"]: h for h in codex_hooks(env, home.work)}
    ours = next(h for c, h in listed.items() if c.split()[1:3] == ["hook", "codex"])
    assert ours["key"] == f"{config}:pre_tool_use:1:0", ours
    assert ours["trustStatus"] == "trusted", ours
    assert listed["true"]["trustStatus"] == "untrusted", listed


def codex_hooks(env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    """`codex app-server`'s `hooks/list`, offline (JSON-RPC over stdio)."""
    proc = subprocess.Popen(
        ["unshare", "-n", str(CODEX), "app-server"],
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    guard = threading.Timer(60, proc.kill)  # never wait forever on a silent app-server
    guard.start()
    try:
        for msg in (
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "t", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "hooks/list", "params": {}},
        ):
            proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        for line in proc.stdout:
            answer = json.loads(line)
            if answer.get("id") == 2:
                return [h for entry in answer["result"]["data"] for h in entry["hooks"]]
        raise AssertionError("codex app-server ended without answering hooks/list")
    finally:
        guard.cancel()
        proc.kill()
        proc.wait()


def wait_for_other_pending(home: Home, not_id: str, timeout: float = 60.0) -> dict[str, Any]:
    found = wait_until(lambda: next((p for p in home.pending() if p["id"] != not_id), None), timeout, interval=0.1)
    assert found is not None, f"no second approval within {timeout}s: {home.pending()}"
    return found


@needs_copilot
def test_copilot_cli_risky_shell_is_denied_in_latch_and_never_runs(home: Home, daemon: Any) -> None:
    agent_home = home.path / "copilot-home"
    (agent_home / ".copilot").mkdir(parents=True)
    env = {
        **home.cli_env(),
        "HOME": str(agent_home),
        "COPILOT_OFFLINE": "true",
        "COPILOT_PROVIDER_TYPE": "anthropic",
        "COPILOT_PROVIDER_API_KEY": "dummy",
        "COPILOT_MODEL": "claude-sonnet-4.5",
    }
    done = subprocess.run([LATCH_BIN, "install", "--hooks", "copilot"], env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    victim = home.work / "victim"
    victim.mkdir()
    script_path = home.path / "copilot-script.json"
    script_path.write_text(json.dumps([{"name": "bash", "input": {"command": f"rm -rf {victim}", "description": "x"}}]))
    log = home.path / "copilot-model.jsonl"
    out = open(home.new_log("copilot"), "w")
    cmd = [
        "unshare", "-n", PYTHON, str(HERE / "scripted_model.py"), str(script_path), str(log), "--",
        str(COPILOT), "-p", "Do what the tools say.", "--allow-all-tools",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=home.work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        pending = home.wait_pending(server="copilot", tool="bash", timeout=60)
        home.deny(pending["id"], reason="not on my machine")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert victim.exists(), "the denied command ran"
    assert any("not on my machine" in r for r in tool_results(log)), tool_results(log)
    [row] = calls(home)
    assert (row["server"], row["tool"], row["class"], row["decision"]) == ("copilot", "bash", "EXECUTE", "ask")
    assert row["session"].startswith("copilot:") and len(row["session"]) > len("copilot:")
