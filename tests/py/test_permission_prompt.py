"""Claude Code's own permission prompt (`PermissionRequest`), answered from
Latch: `latch hook claude-code` with that event makes the prompt a pending
approval, a person's answer in Latch is Claude Code's answer, and anything
else (no answer in time, no daemon, the hook ended because Claude Code's
own dialog was answered first) writes nothing that allows and leaves no
approval pending. The real Claude Code in tmux is in test_agents_prompt.py.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from latchkit import LATCH_BIN, Home, stop_process, wait_until
from test_hooks import hook, rows, start_hook


def prompt_payload(command: str, cwd: str, session: str = "sess-p") -> str:
    return json.dumps(
        {
            "session_id": session,
            "transcript_path": "/dev/null",
            "cwd": cwd,
            "permission_mode": "default",
            "hook_event_name": "PermissionRequest",
            "tool_name": "Bash",
            "tool_input": {"command": command, "description": "x"},
            "permission_suggestions": [],
        }
    )


def decision(out: str) -> dict[str, Any]:
    answer = json.loads(out)["hookSpecificOutput"]
    assert answer["hookEventName"] == "PermissionRequest", answer
    return answer["decision"]


def test_a_prompt_latch_allows_still_waits_for_a_person_and_their_approve_allows(home: Home, daemon: Any) -> None:
    home.set_pin("4321")
    proc = start_hook(home, "claude-code", prompt_payload("ls -la", str(home.work)))
    try:
        pending = home.wait_pending(tool="Bash", server="claude-code")
        assert proc.poll() is None, "the prompt hook answered before a person did"
        home.approve(pending["id"])
        out, err = proc.communicate(timeout=15)
    finally:
        stop_process(proc)
    assert proc.returncode == 0, (out, err)
    assert decision(out) == {"behavior": "allow"}
    [row] = rows(home)
    assert (row["decision"], row["approval_id"]) == ("ask", pending["id"])
    assert "permission prompt" in row["detail"]


def test_a_prompt_denied_in_latch_is_denied_with_the_reason(home: Home, daemon: Any) -> None:
    proc = start_hook(home, "claude-code", prompt_payload(f"rm -rf {home.work}/x", str(home.work)))
    try:
        pending = home.wait_pending(tool="Bash", server="claude-code")
        home.deny(pending["id"], reason="not today")
        out, err = proc.communicate(timeout=15)
    finally:
        stop_process(proc)
    answer = decision(out)
    assert answer["behavior"] == "deny" and "not today" in answer["message"], answer
    assert "latch approve" not in answer["message"] and "latch deny" not in answer["message"]


def test_a_policy_deny_answers_the_prompt_with_deny(home: Home, daemon: Any) -> None:
    # Latch's own files are never reachable, whoever asks.
    p = hook(home, "claude-code", prompt_payload(f"rm {home.latch_home}/policy.toml", str(home.work)))
    assert p.returncode == 0, p
    assert decision(p.stdout)["behavior"] == "deny"
    assert home.pending() == []


def test_when_claude_codes_dialog_wins_the_hook_ends_and_the_approval_is_withdrawn(home: Home, daemon: Any) -> None:
    proc = start_hook(home, "claude-code", prompt_payload("make deploy", str(home.work)))
    try:
        pending = home.wait_pending(tool="Bash", server="claude-code")
        # Claude Code ends its hook once its own dialog is answered.
        proc.terminate()
        proc.wait(timeout=10)
    finally:
        stop_process(proc)
    assert wait_until(lambda: home.pending() == [], timeout=10), home.pending()
    # A late answer in Latch finds it withdrawn, and nothing runs on it.
    late = home.latch("approve", str(pending["id"]), check=False)
    assert late.returncode != 0, late


def ran_payload(command: str, cwd: str, session: str = "sess-p") -> str:
    return json.dumps(
        {
            "session_id": session,
            "cwd": cwd,
            "hook_event_name": "PostToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": command},
            "tool_response": {"stdout": ""},
            "tool_use_id": "toolu_9",
        }
    )


def test_a_prompt_answered_yes_in_claude_codes_dialog_is_withdrawn_when_the_tool_ran(
    home: Home, daemon: Any
) -> None:
    # Claude Code does not end the hook when its dialog is answered "yes":
    # the tool runs, and its PostToolUse hook tells Latch.
    proc = start_hook(home, "claude-code", prompt_payload("make deploy", str(home.work)))
    try:
        pending = home.wait_pending(tool="Bash", server="claude-code")
        # Another session's tool run, or another tool, withdraws nothing.
        other = hook(home, "claude-code", ran_payload("make deploy", str(home.work), session="other"))
        assert (other.returncode, other.stdout) == (0, ""), other
        other_tool = json.loads(ran_payload("x", str(home.work)))
        other_tool["tool_name"] = "Read"
        assert hook(home, "claude-code", json.dumps(other_tool)).stdout == ""
        assert [p["id"] for p in home.pending()] == [pending["id"]]
        ran = hook(home, "claude-code", ran_payload("make deploy", str(home.work)))
        # Nothing written after a tool ran.
        assert (ran.returncode, ran.stdout) == (0, ""), ran
        assert wait_until(lambda: home.pending() == [], timeout=10), home.pending()
        # The prompt's hook writes nothing: the dialog already decided.
        out, err = proc.communicate(timeout=15)
        assert (proc.returncode, out) == (0, ""), (out, err)
    finally:
        stop_process(proc)
    # No call rows for PostToolUse: only the prompt's.
    assert [r["decision"] for r in rows(home)] == ["ask"]


def test_no_answer_in_time_writes_nothing_and_withdraws(home: Home, daemon: Any) -> None:
    started = time.monotonic()
    p = hook(home, "claude-code", prompt_payload("make deploy", str(home.work)), "--timeout", "3")
    assert time.monotonic() - started < 3.0
    # Nothing written: Claude Code's own dialog stands.
    assert (p.returncode, p.stdout) == (0, ""), p
    assert wait_until(lambda: home.pending() == [], timeout=10), home.pending()


def test_no_daemon_writes_nothing_rather_than_a_deny_or_an_allow(home: Home) -> None:
    p = subprocess.run(
        [LATCH_BIN, "hook", "claude-code", "--timeout", "5"],
        env=home.cli_env(),
        input=prompt_payload("ls", str(home.work)),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert (p.returncode, p.stdout) == (0, ""), p
