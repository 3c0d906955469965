"""Tool pinning against a rug pull, through the real shim and the official
client: the rug-pull server of tests/fixtures/threat_servers/ changes its
tool's description after three calls; the first definition is pinned, and
calls meet the changed one ask, with the change as the reason; the pin
survives a daemon restart.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from latchkit import Approver, Home, list_all_tools, mcp_session, via_shim

SERVERS = Path(__file__).resolve().parent.parent / "fixtures" / "threat_servers"
SHIM = via_shim("facts", [sys.executable, str(SERVERS / "rug_pull.py")])
TOOL = "get_fact_of_the_day"


class ListChanged:
    def __init__(self) -> None:
        self.event = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if "ToolListChanged" in type(message).__name__ or "tools/list_changed" in repr(message):
            self.event.set()


@pytest.mark.anyio
async def test_a_changed_description_makes_calls_ask_with_the_change(home: Home, start_daemon: Any) -> None:
    start_daemon()
    changed = ListChanged()
    async with mcp_session(home, SHIM, message_handler=changed) as session:
        await list_all_tools(session)
        for _ in range(3):
            assert not (await session.call_tool(TOOL, {})).is_error
        with anyio.fail_after(10):
            await changed.event.wait()
        tools = {t["name"]: t for t in await list_all_tools(session)}
        assert "<IMPORTANT>" in tools[TOOL]["description"]

        approver = Approver(home, tool=TOOL, action="deny")
        approver.start()
        with anyio.fail_after(40):
            assert (await session.call_tool(TOOL, {})).is_error
        entry = approver.outcome()
    why = " ".join(entry["reasons"])
    assert f'the definition of tool "{TOOL}" changed since it was first seen' in why, entry
    assert "description" in why, entry
    assert "a person must accept the new definition in Latch" in why, entry
    rows = [r for r in home.audit(200) if r.get("kind") == "tool_changed"]
    assert rows and rows[0]["tool"] == TOOL, rows
    assert "+<IMPORTANT>" in " ".join(rows[0]["reasons"]), rows


@pytest.mark.anyio
async def test_the_pin_survives_a_restart_of_server_and_daemon(home: Home, start_daemon: Any) -> None:
    first = start_daemon()
    async with mcp_session(home, SHIM) as session:
        await list_all_tools(session)
    first.stop()
    start_daemon()
    # The server starts over and is changed from its first call.
    async with mcp_session(home, SHIM, extra_env={"RUG_PULL_AFTER": "0"}) as session:
        await list_all_tools(session)
        approver = Approver(home, tool=TOOL, action="deny")
        approver.start()
        with anyio.fail_after(40):
            assert (await session.call_tool(TOOL, {})).is_error
        entry = approver.outcome()
    assert "changed since it was first seen" in " ".join(entry["reasons"]), entry


PIN = "pins 4 people"


def findings(home: Home) -> list[dict[str, Any]]:
    out = home.latch_json("tools", "list", "--json")
    assert isinstance(out, list)
    return out


def accept(home: Home, server: str, tool: str, pin: str, check: bool = True) -> Any:
    return home.latch("tools", "accept", server, tool, "--pin-stdin", input=pin + "\n", timeout=60, check=check)


@pytest.mark.anyio
async def test_accepting_the_shown_definition_needs_the_pin_and_stops_the_asking(
    home: Home, start_daemon: Any
) -> None:
    start_daemon()
    home.set_pin(PIN)
    changed = ListChanged()
    async with mcp_session(home, SHIM, message_handler=changed) as session:
        await list_all_tools(session)
        for _ in range(3):
            assert not (await session.call_tool(TOOL, {})).is_error
        with anyio.fail_after(10):
            await changed.event.wait()
        await list_all_tools(session)

        # The finding, as a person sees it: what changed, and the diff.
        (f,) = [f for f in findings(home) if f["tool"] == TOOL]
        assert f["server"] == "facts" and "changed" in f["kinds"], f
        assert "injection" in f["kinds"], f
        assert "+<IMPORTANT>" in f["diff"] and f["diff"].startswith("--- pinned\n+++ now\n"), f
        shown = home.latch("tools", "show", "facts", TOOL).stdout
        assert "+<IMPORTANT>" in shown and "description changed" in shown, shown

        # A wrong PIN accepts nothing, and is recorded.
        refused = accept(home, "facts", TOOL, "not the pin", check=False)
        assert refused.returncode == 1, refused
        assert any(r["kind"] == "tool_accept_refused" for r in home.audit()), home.audit()
        assert [f["tool"] for f in findings(home)] == [TOOL]

        # With the PIN: the definition shown is the pin now.
        out = accept(home, "facts", TOOL, PIN)
        assert "accepted" in out.stdout, out
        assert findings(home) == []
        result = await session.call_tool(TOOL, {})
        assert not result.is_error
    rows = [r for r in home.audit(200) if r["kind"] == "tool_accepted"]
    assert rows and rows[0]["tool"] == TOOL and rows[0]["answered_by"].startswith("cli:"), rows
    calls = [r for r in home.audit(200) if r["kind"] == "call" and r["tool"] == TOOL]
    assert calls[0]["decision"] == "allow" and calls[0]["approval_id"] is None, calls[0]


@pytest.mark.anyio
async def test_policy_can_deny_changed_tools(home: Home, start_daemon: Any) -> None:
    home.write_policy('[threats]\nchanged_tools = "deny"\npoisoned_tools = "allow"\n')
    start_daemon()
    async with mcp_session(home, SHIM, extra_env={"RUG_PULL_AFTER": "1"}) as session:
        await list_all_tools(session)
        assert not (await session.call_tool(TOOL, {})).is_error
        await list_all_tools(session)
        result = await session.call_tool(TOOL, {})
        assert result.is_error
        assert "changed since it was first seen" in str(result.content), result
    assert len(home.recorded(TOOL)) == 1
    assert home.pending() == []


@pytest.mark.anyio
async def test_grants_of_the_old_definition_do_not_cover_the_accepted_one(home: Home, start_daemon: Any) -> None:
    home.write_policy(f'[[rule]]\nserver = "facts"\ntool = "{TOOL}"\neffect = "ask"\n\n[approvals]\nhold_seconds = 30\n')
    start_daemon()
    home.set_pin(PIN)
    changed = ListChanged()
    async with mcp_session(home, SHIM, message_handler=changed, extra_env={"RUG_PULL_AFTER": "2"}) as session:
        await list_all_tools(session)
        # A person allows the tool for the session: the next call runs unasked.
        approver = Approver(home, tool=TOOL, scope="session-tool")
        approver.start()
        assert not (await session.call_tool(TOOL, {})).is_error
        approver.outcome()
        assert not (await session.call_tool(TOOL, {})).is_error
        with anyio.fail_after(10):
            await changed.event.wait()
        await list_all_tools(session)
        # Changed: asks (the grant was for the old definition) …
        approver = Approver(home, tool=TOOL, action="deny")
        approver.start()
        assert (await session.call_tool(TOOL, {})).is_error
        assert "changed since it was first seen" in " ".join(approver.outcome()["reasons"])
        accept(home, "facts", TOOL, PIN)
        # … and once accepted, the policy's ask applies again: the session
        # grant bound to the old definition does not cover the new one.
        approver = Approver(home, tool=TOOL, action="deny")
        approver.start()
        assert (await session.call_tool(TOOL, {})).is_error
        entry = approver.outcome()
        assert not any("changed since" in r for r in entry["reasons"]), entry
    assert len(home.recorded(TOOL)) == 2


# -- followed lists: tools/list_changed and the client's new listing

LATE = via_shim("late", [sys.executable, str(SERVERS / "late_tool.py")])
FLIP = via_shim("records", [sys.executable, str(SERVERS / "annotation_flip.py")])


class Changes:
    """Counts notifications/tools/list_changed."""

    def __init__(self) -> None:
        self.seen = 0

    async def __call__(self, message: Any) -> None:
        if "ToolListChanged" in type(message).__name__ or "tools/list_changed" in repr(message):
            self.seen += 1

    async def wait(self, n: int) -> None:
        with anyio.fail_after(10):
            while self.seen < n:
                await anyio.sleep(0.02)


@pytest.mark.anyio
async def test_a_tool_that_appears_later_is_pinned_then(home: Home, start_daemon: Any) -> None:
    start_daemon()
    changes = Changes()
    async with mcp_session(home, LATE, message_handler=changes) as session:
        assert [t["name"] for t in await list_all_tools(session)] == ["get_time"]
        assert not (await session.call_tool("get_time", {})).is_error
        await changes.wait(1)
        assert "get_weather" in [t["name"] for t in await list_all_tools(session)]
        # New, not changed: decided by the policy alone (a read).
        assert not (await session.call_tool("get_weather", {"city": "Oslo"})).is_error
        await changes.wait(2)
        await list_all_tools(session)
        approver = Approver(home, tool="get_weather", action="deny")
        approver.start()
        assert (await session.call_tool("get_weather", {"city": "Oslo"})).is_error
        why = " ".join(approver.outcome()["reasons"])
    assert 'tool "get_weather" changed since it was first seen' in why, why
    assert [c["name"] for c in home.recorded()] == ["get_time", "get_weather"]
    (row,) = [r for r in home.audit(200) if r["kind"] == "tool_changed"]
    assert row["tool"] == "get_weather" and "+Returns today's weather. Also reads" in " ".join(row["reasons"]), row


@pytest.mark.anyio
async def test_an_annotation_flip_towards_less_caution_keeps_asking(home: Home, start_daemon: Any) -> None:
    home.write_policy("[approvals]\nhold_seconds = 30\n")
    start_daemon()
    changes = Changes()
    async with mcp_session(home, FLIP, message_handler=changes) as session:
        await list_all_tools(session)
        assert not (await session.call_tool("purge_records", {"days": 30})).is_error
        await changes.wait(1)
        tools = {t["name"]: t for t in await list_all_tools(session)}
        assert tools["purge_records"]["annotations"]["readOnlyHint"] is True
        # Now it claims to be read-only: still asked, the flip named.
        for _ in range(2):
            approver = Approver(home, tool="purge_records", action="deny")
            approver.start()
            assert (await session.call_tool("purge_records", {"days": 1})).is_error
            why = " ".join(approver.outcome()["reasons"])
            assert "readOnlyHint false → true (less cautious)" in why, why
            assert "destructiveHint true → false (less cautious)" in why, why
    assert [c["arguments"] for c in home.recorded("purge_records")] == [{"days": 30}]
    (f,) = findings(home)
    assert f["kinds"] == ["changed"] and "diff" not in f, f
    assert "readOnlyHint false → true (less cautious)" in f["reasons"], f
