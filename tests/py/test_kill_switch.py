"""The kill switch through the real binaries: `latch stop` denies every call
of every shim and hook at once (a session that was allowed a moment ago
included), and what waits for a person; `latch resume` needs the PIN; a
restarted daemon is still stopped; the agent cannot resume by running
`latch resume` itself.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from latchkit import LATCH_BIN, Daemon, Home, WireClient, mcp_session, our_server_cmd, text_of, via_shim

SHIM = via_shim("test", our_server_cmd())
PIN = "correct horse 42"
STOPPED = "a person stopped all tool calls in Latch"


def hook_read(home: Home) -> subprocess.CompletedProcess[str]:
    """Claude Code's pre-tool hook for a Read of a file in the work folder."""
    (home.work / "notes.txt").write_text("hi")
    body = {
        "session_id": "sess-1",
        "cwd": str(home.work),
        "tool_name": "Read",
        "tool_input": {"file_path": "notes.txt"},
        "hook_event_name": "PreToolUse",
        "tool_use_id": "toolu_01",
        "permission_mode": "default",
    }
    return hook(home, body)


def hook(home: Home, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LATCH_BIN, "hook", "claude-code"],
        env=home.cli_env(),
        input=json.dumps(body),
        capture_output=True,
        text=True,
        timeout=30,
    )


def hook_deny_text(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    out = json.loads(p.stdout)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny", out
    return str(out["permissionDecisionReason"])


def kinds(home: Home, kind: str) -> list[dict[str, Any]]:
    return [r for r in home.audit(500) if r.get("kind") == kind]


def resume(home: Home, pin: str | None) -> subprocess.CompletedProcess[str]:
    if pin is None:
        # No terminal and no --pin-stdin: the PIN cannot be read.
        return home.latch("resume", check=False, timeout=60)
    return home.latch("resume", "--pin-stdin", input=pin + "\n", check=False, timeout=60)


@pytest.mark.anyio
async def test_stop_denies_a_running_shim_and_a_hook_until_resumed_with_the_pin(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon()
    home.set_pin(PIN)
    async with mcp_session(home, SHIM) as session:
        assert not (await session.call_tool("echo", {"n": 1})).is_error
        assert hook_read(home).stdout == ""

        home.latch("stop")
        blocked = await session.call_tool("echo", {"n": 2})
        assert blocked.is_error
        text = text_of(blocked)
        assert STOPPED in text, text
        hook_text = hook_deny_text(hook_read(home))
        assert STOPPED in hook_text, hook_text
        for said in (text, hook_text):
            # Only a person resumes: the agent is never told a command.
            assert "latch resume" not in said and "`latch" not in said, said
        assert [c["arguments"] for c in home.recorded("echo")] == [{"n": 1}]

        status = home.latch_json("status", "--json")
        assert isinstance(status.get("stopped_since"), int), status
        assert "STOPPED" in home.latch("status").stdout
        assert "STOPPED" in home.latch("doctor", check=False, timeout=60).stdout
        [stop_row] = kinds(home, "stop")
        assert stop_row["answered_by"].startswith("cli:"), stop_row

        # Without the PIN, or with a wrong one: still stopped.
        assert resume(home, None).returncode != 0
        wrong = resume(home, "0000")
        assert wrong.returncode == 1 and "not resumed" in wrong.stderr, wrong
        assert kinds(home, "resume_refused"), home.audit()
        assert (await session.call_tool("echo", {"n": 3})).is_error

        # The person, with the PIN: the same session runs again.
        ok = resume(home, PIN)
        assert ok.returncode == 0 and "resumed" in ok.stdout, ok
        assert not (await session.call_tool("echo", {"n": 4})).is_error
        assert hook_read(home).stdout == ""
    assert [c["arguments"] for c in home.recorded("echo")] == [{"n": 1}, {"n": 4}]
    assert "stopped_since" not in home.latch_json("status", "--json")
    assert len(kinds(home, "resume")) == 1
    denied = [r for r in kinds(home, "call") if r["decision"] == "deny"]
    assert len(denied) == 3 and all(STOPPED in " ".join(r["reasons"]) for r in denied), denied


@pytest.mark.anyio
async def test_a_restarted_daemon_is_still_stopped(home: Home, start_daemon: Callable[..., Daemon]) -> None:
    first = start_daemon()
    home.latch("stop")
    first.stop()
    start_daemon()
    assert "stopped_since" in home.latch_json("status", "--json")
    async with mcp_session(home, SHIM) as session:
        blocked = await session.call_tool("echo", {"n": 1})
    assert blocked.is_error and STOPPED in text_of(blocked), text_of(blocked)
    assert home.recorded("echo") == []
    # No PIN set: anyone at the CLI may resume.
    assert resume(home, None).returncode == 0


def test_stop_denies_what_waits_for_a_person(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy="[approvals]\nhold_seconds = 1\n")
    client = wire(SHIM)
    client.initialize()
    assert "result" in client.call("tools/list", {}, timeout=20)
    client.call("tools/call", {"name": "run_command", "arguments": {"command": "make deploy"}}, timeout=30)
    approval_id = home.wait_pending(tool="run_command")["id"]
    home.latch("stop")
    assert home.pending() == []
    # An approval given afterwards finds nothing to run.
    assert home.latch("approve", str(approval_id), check=False).returncode != 0
    reply = client.call("tools/call", {"name": "run_command", "arguments": {"command": "make deploy"}}, timeout=30)
    assert STOPPED in json.dumps(reply), reply
    assert home.recorded("run_command") == []


def test_the_agent_cannot_resume_by_running_latch_resume(home: Home, start_daemon: Callable[..., Daemon]) -> None:
    start_daemon()
    home.latch("stop")
    for command in ("latch resume", "echo 1234 | latch resume --pin-stdin"):
        body = {
            "session_id": "sess-1",
            "cwd": str(home.work),
            "tool_name": "Bash",
            "tool_input": {"command": command},
            "hook_event_name": "PreToolUse",
            "tool_use_id": "toolu_01",
            "permission_mode": "default",
        }
        hook_deny_text(hook(home, body))
    home.latch("resume")
    # Not stopped any more, and still denied by self-protection.
    text = hook_deny_text(
        hook(
            home,
            {
                "session_id": "sess-1",
                "cwd": str(home.work),
                "tool_name": "Bash",
                "tool_input": {"command": "latch resume"},
                "hook_event_name": "PreToolUse",
                "tool_use_id": "toolu_01",
                "permission_mode": "default",
            },
        )
    )
    assert "resume" in text, text
