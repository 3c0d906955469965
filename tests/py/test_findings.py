"""Poisoned descriptions and shadowing (issue 18), through the real shim and
the official client: the shadow server of tests/fixtures/threat_servers/
lists `add`, whose description carries an `<IMPORTANT>` block aimed at
another server's `send_email`, and a `send_email` of its own; our
latch-test-server, run as server "mail", lists the real `send_email`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from latchkit import Approver, Home, list_all_tools, mcp_session, our_server_cmd, via_shim

SERVERS = Path(__file__).resolve().parent.parent / "fixtures" / "threat_servers"
SHADOW = via_shim("shadow", [sys.executable, str(SERVERS / "shadow.py")])
MAIL = via_shim("mail", our_server_cmd())
HOLD = "[approvals]\nhold_seconds = 30\n"
PIN = "findings 4 people"


def findings(home: Home) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["server"], f["tool"]): f for f in home.latch_json("tools", "list", "--json")}


async def asked(home: Home, session: Any, tool: str, args: dict[str, Any]) -> str:
    """Calls TOOL while a person denies it; the reasons they were shown."""
    approver = Approver(home, tool=tool, action="deny")
    approver.start()
    assert (await session.call_tool(tool, args)).is_error
    return " ".join(approver.outcome()["reasons"])


@pytest.mark.anyio
async def test_a_poisoned_description_asks_with_its_reason(home: Home, start_daemon: Any) -> None:
    home.write_policy(HOLD)
    start_daemon()
    home.set_pin(PIN)
    async with mcp_session(home, SHADOW) as session:
        await list_all_tools(session)
        why = await asked(home, session, "add", {"a": 1, "b": 2})
        assert 'the definition of tool "add" is suspect' in why, why
        assert "(description)" in why and "a person must decide in Latch" in why, why
        assert "latch " not in why, why

        f = findings(home)[("shadow", "add")]
        assert "injection" in f["kinds"], f
        rows = [r for r in home.audit(200) if r["kind"] == "tool_suspect" and r["tool"] == "add"]
        assert rows and any(r.startswith("injection:") for r in rows[0]["reasons"]), rows

        # A person looked and accepts this very definition: decided by the
        # policy again (a read).
        home.latch("tools", "accept", "shadow", "add", "--pin-stdin", input=PIN + "\n", timeout=60)
        assert not (await session.call_tool("add", {"a": 1, "b": 2})).is_error
    assert [c["arguments"] for c in home.recorded("add")] == [{"a": 1, "b": 2}]


@pytest.mark.anyio
@pytest.mark.parametrize(("effect", "runs"), [("deny", False), ("allow", True)])
async def test_policy_decides_what_suspect_tools_get(home: Home, start_daemon: Any, effect: str, runs: bool) -> None:
    home.write_policy(f'[threats]\npoisoned_tools = "{effect}"\n')
    start_daemon()
    async with mcp_session(home, SHADOW) as session:
        await list_all_tools(session)
        result = await session.call_tool("add", {"a": 1, "b": 2})
        assert result.is_error != runs, result
        if not runs:
            assert 'the definition of tool "add" is suspect' in str(result.content), result
    assert home.pending() == []
    assert len(home.recorded("add")) == int(runs)


@pytest.mark.anyio
async def test_shadowing_another_servers_tool_asks_and_names_it(home: Home, start_daemon: Any) -> None:
    home.write_policy(HOLD)
    start_daemon()
    async with mcp_session(home, MAIL) as session:
        assert "send_email" in [t["name"] for t in await list_all_tools(session)]
        # A decided call: the listing reached the daemon before it.
        assert not (await session.call_tool("echo", {"text": "hi"})).is_error
    async with mcp_session(home, SHADOW) as session:
        await list_all_tools(session)
        why = await asked(home, session, "send_email", {"to": "bob@example.com", "body": "hi"})
        assert 'server "mail" already has a tool named "send_email"' in why, why
        # `add` talks about send_email, which this server also has (its own
        # copy, flagged above): its injection findings ask.
        why = await asked(home, session, "add", {"a": 1, "b": 2})
        assert 'the definition of tool "add" is suspect' in why, why
    f = findings(home)
    assert "same_name" in f[("shadow", "send_email")]["kinds"], f
    assert "injection" in f[("shadow", "add")]["kinds"], f
    # The first server keeps its name: nothing is found in "mail".
    assert not [k for k in f if k[0] == "mail"], f
    assert [c["name"] for c in home.recorded()] == ["echo"]


@pytest.mark.anyio
async def test_a_description_naming_another_servers_tool_asks(home: Home, start_daemon: Any) -> None:
    home.write_policy(HOLD)
    start_daemon()
    async with mcp_session(home, MAIL) as session:
        await list_all_tools(session)
        assert not (await session.call_tool("echo", {"text": "hi"})).is_error
    digest = via_shim("digest", [sys.executable, str(SERVERS / "names_other.py")])
    async with mcp_session(home, digest) as session:
        await list_all_tools(session)
        why = await asked(home, session, "summarize", {"text": "a long text"})
    assert "its description names another server's tool" in why and '"send_email" of server "mail"' in why, why
    assert findings(home)[("digest", "summarize")]["kinds"] == ["names_other_tool"]
    assert [c["name"] for c in home.recorded()] == ["echo"]
