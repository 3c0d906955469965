"""The real Claude Code (pinned, tests/package.json) in an interactive
session, driven in a private tmux, offline against our scripted model inside
`unshare -n`, after `latch install --hooks`: its own permission prompt
(`PermissionRequest`) is answered from Latch. The policy lets Latch pass
`Bash` (so the pre-tool hook stays out of the way and Claude Code asks its
user); each prompt then waits in Latch, and a person's answer there is
Claude Code's answer.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from latchkit import Home, TmuxServer, wait_until
from test_agents import CLAUDE, PYTHON, Agent, calls, needs_claude, pytestmark  # noqa: F401 - pytestmark applies here too

HERE = Path(__file__).resolve().parent


@pytest.fixture
def tmux(home: Home) -> Iterator[TmuxServer]:
    server = TmuxServer(home)
    try:
        yield server
    finally:
        server.kill()


def interactive(agent: Agent, tmux: TmuxServer, script: list[dict[str, Any]]) -> Path:
    """Claude Code, interactive, in tmux session `cc`; returns the model log."""
    home = agent.home
    # First-run screens (theme, folder trust, the API key) answered ahead.
    (agent.agent_home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "theme": "dark",
                "customApiKeyResponses": {"approved": ["dummy"], "rejected": []},
                "projects": {str(home.work): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}},
            }
        )
    )
    script_path = home.path / "script-tui.json"
    script_path.write_text(json.dumps(script))
    log = home.path / "model-tui.jsonl"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in agent.env.items())
    cmd = [
        "unshare", "-n", PYTHON, str(HERE / "scripted_model.py"), str(script_path), str(log), "--",
        str(CLAUDE), "Do what the tools say.",
    ]  # fmt: skip
    line = f"cd {shlex.quote(str(home.work))} && env -i {env} {shlex.join(cmd)}"
    tmux.run("new-session", "-d", "-s", "cc", "-x", "160", "-y", "50", line)
    return log


def screen(tmux: TmuxServer) -> str:
    return tmux.run("capture-pane", "-p", "-t", "cc", check=False).stdout


@needs_claude
def test_claude_code_permission_prompt_is_answered_from_latch(home: Home, start_daemon: Any, tmux: TmuxServer) -> None:
    start_daemon(policy='[[rule]]\nserver = "claude-code"\ntool = "Bash"\neffect = "allow"\n')
    home.set_pin("2468")
    agent = Agent(home)
    settings = json.loads((agent.agent_home / ".claude" / "settings.json").read_text())
    assert "PermissionRequest" in settings["hooks"], settings
    approved, denied, in_dialog = (home.work / n for n in ("approved.txt", "denied.txt", "in-dialog.txt"))
    script = [
        {"name": "Bash", "input": {"command": f"touch {approved}", "description": "make a file"}},
        {"name": "Bash", "input": {"command": f"touch {denied}", "description": "make another"}},
        {"name": "Bash", "input": {"command": f"touch {in_dialog}", "description": "and a third"}},
    ]
    interactive(agent, tmux, script)
    try:
        first = home.wait_pending(server="claude-code", tool="Bash", timeout=60)
        assert str(approved) in json.dumps(first), first
        # Claude Code's own dialog is on screen meanwhile.
        assert wait_until(lambda: "Do you want to proceed" in screen(tmux), timeout=20), screen(tmux)
        home.approve(first["id"])
        assert wait_until(approved.exists, timeout=30), screen(tmux)

        second = home.wait_pending(server="claude-code", tool="Bash", timeout=60)
        assert second["id"] != first["id"] and str(denied) in json.dumps(second), second
        home.deny(second["id"], reason="not this one")
        assert wait_until(lambda: home.pending() == [], timeout=10)
        assert wait_until(lambda: "not this one" in screen(tmux), timeout=30), screen(tmux)
        assert not denied.exists(), "the command denied in Latch ran"

        # Answered in Claude Code's own dialog first: Latch's approval goes.
        third = home.wait_pending(server="claude-code", tool="Bash", timeout=60)
        assert str(in_dialog) in json.dumps(third), third
        assert wait_until(lambda: "Do you want to proceed" in screen(tmux), timeout=20), screen(tmux)
        tmux.run("send-keys", "-t", "cc", "Enter")
        assert wait_until(in_dialog.exists, timeout=30), screen(tmux)
        assert wait_until(lambda: home.pending() == [], timeout=15), home.pending()
        late = home.latch("approve", third["id"], "--pin-stdin", input="2468\n", check=False, timeout=60)
        assert late.returncode != 0, late
    finally:
        tmux.kill()
    rows = [r for r in calls(home) if "permission prompt" in (r["detail"] or "")]
    assert [(r["tool"], r["decision"], r["approval_id"]) for r in rows] == [
        ("Bash", "ask", first["id"]),
        ("Bash", "ask", second["id"]),
        ("Bash", "ask", third["id"]),
    ]


@needs_claude
def test_claude_code_dialog_answered_no_withdraws_latchs_approval(
    home: Home, start_daemon: Any, tmux: TmuxServer
) -> None:
    start_daemon(policy='[[rule]]\nserver = "claude-code"\ntool = "Bash"\neffect = "allow"\n')
    agent = Agent(home)
    target = home.work / "refused.txt"
    interactive(agent, tmux, [{"name": "Bash", "input": {"command": f"touch {target}", "description": "x"}}])
    try:
        home.wait_pending(server="claude-code", tool="Bash", timeout=60)
        assert wait_until(lambda: "Do you want to proceed" in screen(tmux), timeout=20), screen(tmux)
        # "No": Claude Code ends the turn and its hook; Latch's approval goes.
        tmux.run("send-keys", "-t", "cc", "3")
        assert wait_until(lambda: home.pending() == [], timeout=15), home.pending()
        assert wait_until(lambda: "Interrupted" in screen(tmux), timeout=15), screen(tmux)
    finally:
        tmux.kill()
    assert not target.exists()
