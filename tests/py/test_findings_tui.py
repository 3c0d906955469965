"""The console's tool findings (`F`) end to end: the real daemon, the rug-pull
server of tests/fixtures/threat_servers/ through `latch shim` and the official
client, and `latch tui` in a private tmux server. The console shows the changed
tool with its description diff (added lines green), and accepting it there
with the PIN makes its calls run unasked again.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from latchkit import Daemon, Home, list_all_tools, mcp_session, via_shim
from test_tui_e2e import Tmux, tmux  # noqa: F401  (the fixture)

SERVERS = Path(__file__).resolve().parent.parent / "fixtures" / "threat_servers"
SHIM = via_shim("facts", [sys.executable, str(SERVERS / "rug_pull.py")])
TOOL = "get_fact_of_the_day"
PIN = "2468"
# Green foreground as tmux renders it: SGR 32 or 38;5;2.
GREEN = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:32|38;5;2)(?:;[0-9;]*)?m")


@pytest.mark.anyio
async def test_the_console_shows_the_diff_and_accepts_with_the_pin(
    home: Home, daemon: Daemon, tmux: Tmux  # noqa: F811
) -> None:
    home.set_pin(PIN)
    console = tmux.console("findings", width=120, height=40)
    console.wait_ready()
    async with mcp_session(home, SHIM, extra_env={"RUG_PULL_AFTER": "1"}) as session:
        await list_all_tools(session)
        assert not (await session.call_tool(TOOL, {})).is_error
        # The client lists again (as after tools/list_changed): now changed.
        assert "<IMPORTANT>" in {t["name"]: t for t in await list_all_tools(session)}[TOOL]["description"]

        await anyio.to_thread.run_sync(lambda: console.wait_text("1 tools changed or suspect"))
        await anyio.to_thread.run_sync(console.keys, "F")
        screen = await anyio.to_thread.run_sync(
            lambda: console.wait_text(f"facts / {TOOL}", "[changed, injection]", "--- pinned", "+<IMPORTANT>")
        )
        assert " Returns a fun fact of the day." in screen, screen
        painted = tmux.run("capture-pane", "-p", "-e", "-t", "findings").stdout
        added = [line for line in painted.split("\n") if "+<IMPORTANT>" in line]
        assert added and GREEN.search(added[0]), added

        # `a` asks for the PIN, then accepts the definition shown.
        await anyio.to_thread.run_sync(console.keys, "a")
        await anyio.to_thread.run_sync(lambda: console.wait_text("PIN:"))
        await anyio.to_thread.run_sync(lambda: console.keys(PIN, "Enter"))
        screen = await anyio.to_thread.run_sync(lambda: console.wait_text("No tool has findings"))
        assert PIN not in screen, screen
        result: Any = await session.call_tool(TOOL, {})
        assert not result.is_error
    console.keys("Escape")
    console.wait_gone("tools changed or suspect")
    console.keys("q")
    rows = [r for r in home.audit(200) if r["kind"] == "tool_accepted"]
    assert rows and rows[0]["answered_by"].startswith("tui:"), rows
    calls = [r for r in home.audit(200) if r["kind"] == "call" and r["tool"] == TOOL]
    assert calls[0]["decision"] == "allow" and calls[0]["approval_id"] is None, calls[0]
    assert len(home.recorded(TOOL)) == 2
