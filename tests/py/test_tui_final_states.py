"""The console shows where every call ended: a call a person answered in
Live and History carries the answer, not `? ask …` with the server's run
time. Real console in tmux, real daemon, real held call (helpers shared
with test_tui_e2e.py).
"""

from __future__ import annotations

import re

import pytest
from latchkit import Daemon, Home, result_json, text_of
from test_tui_e2e import Tmux, held_call, tmux  # noqa: F401 (fixture)


def call_line(screen: str) -> str:
    return next((ln for ln in screen.split("\n") if "run_command" in ln and "EXECUTE" in ln), "")


@pytest.mark.anyio
async def test_live_shows_a_denied_call_as_denied_and_blocked_with_its_wait(
    home: Home, daemon: Daemon, tmux: Tmux  # noqa: F811
) -> None:
    console = tmux.console("c1", width=120, height=30)
    console.wait_ready()
    result, _ = await held_call(home, console, ("d", "Enter"))
    assert result.is_error, result_json(result)
    console.wait_text("No approvals waiting.")
    console.keys("2")
    screen = console.wait_for(lambda s: "✗ denied" in call_line(s), "the call row ends denied")
    line = call_line(screen)
    assert "? ask" not in line and "blocked" in line, screen
    # The wait for the person (seconds), not the server's run time.
    assert re.search(r"\d+(\.\d)?m?s blocked", line), line


@pytest.mark.anyio
async def test_live_shows_an_approved_call_as_approved_and_its_outcome(
    home: Home, daemon: Daemon, tmux: Tmux  # noqa: F811
) -> None:
    console = tmux.console("c1", width=120, height=30)
    console.wait_ready()
    result, _ = await held_call(home, console, "a")
    assert not result.is_error, result_json(result)
    console.keys("2")
    screen = console.wait_for(lambda s: "✓ approved" in call_line(s) and " ok" in call_line(s), "approved, ok")
    assert "? ask" not in call_line(screen), screen


@pytest.mark.anyio
async def test_a_deny_typed_in_the_console_tells_the_agent_why(
    home: Home, daemon: Daemon, tmux: Tmux  # noqa: F811
) -> None:
    console = tmux.console("c1", width=120, height=30)
    console.wait_ready()
    reason = "merging is for the release manager"

    def type_reason() -> None:
        console.keys("d")
        console.wait_text("why, for the agent")
        console.keys(reason, literal=True)
        console.wait_text(reason)

    result, _ = await held_call(home, console, "Enter", before_answer=type_reason)
    assert result.is_error, result_json(result)
    text = text_of(result)
    assert reason in text, text
    # No internal names in what the agent reads.
    assert "tui" not in text and "via" not in text, text
    [answer] = [r for r in home.audit() if r["kind"] == "answer"]
    assert answer["reasons"] == [reason], answer
