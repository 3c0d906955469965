"""`latch shim` is transparent for what it allows: the same tools, the same
results, and the same protocol round trips (progress, sampling, elicitation,
roots) as a direct connection to the real servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from latchkit import (
    TEST_ROOTS,
    AutoApprover,
    Daemon,
    Home,
    filesystem_cmd,
    fixed_roots,
    list_all_tools,
    mcp_session,
    our_server_cmd,
    result_json,
    text_of,
    via_shim,
)
from scenarios import (
    EVERYTHING_CONDITIONAL_TOOLS,
    assert_progress_reported,
    everything_client_features,
    everything_progress,
    everything_transcript,
    filesystem_transcript,
    texts,
)

# Tools whose calls may legitimately wait for a person under the built-in
# policy; every other call in these tests must be allowed outright.
MAY_ASK = {"trigger-sampling-request", "trigger-elicitation-request", "trigger-long-running-operation"}


@pytest.mark.anyio
async def test_filesystem_through_shim_lists_the_same_tools_and_gives_the_same_results(
    home: Home, daemon: Daemon
) -> None:
    direct = await filesystem_transcript(home)
    shimmed = await filesystem_transcript(home, wrap=partial(via_shim, "fs"))
    assert shimmed["tools"] == direct["tools"]
    for (name, want), (_, got) in zip(direct["calls"], shimmed["calls"], strict=True):
        assert got == want, f"{name} answered differently through the shim"
    assert shimmed["files"] == direct["files"]
    assert shimmed["moved"] == direct["moved"]
    assert home.pending() == []


@pytest.mark.anyio
async def test_everything_through_shim_lists_the_same_tools_and_gives_the_same_results(
    home: Home, daemon: Daemon
) -> None:
    direct = await everything_transcript(home)
    shimmed = await everything_transcript(home, wrap=partial(via_shim, "everything"))
    assert set(EVERYTHING_CONDITIONAL_TOOLS) <= {t["name"] for t in shimmed["tools"]}
    assert shimmed["tools"] == direct["tools"]
    assert shimmed["calls"] == direct["calls"]


# `trigger-long-running-operation` is EXECUTE by its name ("trigger"), and its
# `readOnlyHint` may not lower that; a user who trusts it says so in a rule.
ALLOW_LONG_RUNNING = """
[[rule]]
server = "everything"
tool = "trigger-long-running-operation"
effect = "allow"
"""


@pytest.mark.anyio
async def test_progress_notifications_reach_the_client_through_shim(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=ALLOW_LONG_RUNNING)
    direct_result, _ = await everything_progress(home)
    with AutoApprover(home, "everything") as approver:
        result, progress = await everything_progress(home, wrap=partial(via_shim, "everything"))
    assert {entry["tool"] for entry in approver.approved} <= MAY_ASK
    assert result == direct_result
    # The server's own notifications arrive intact (the shim may add its own
    # keep-alive progress while the call is held).
    assert_progress_reported([p for p in progress if p[1] == 4], 4)


@pytest.mark.anyio
async def test_sampling_elicitation_and_roots_round_trip_through_shim(home: Home, daemon: Daemon) -> None:
    direct = await everything_client_features(home)
    with AutoApprover(home, "everything") as approver:
        shimmed = await everything_client_features(home, wrap=partial(via_shim, "everything"))
    assert {entry["tool"] for entry in approver.approved} <= MAY_ASK
    assert shimmed == direct
    assert "sampled by the test client" in texts(shimmed["sampling"])
    assert "Ada Lovelace" in texts(shimmed["elicitation"])
    assert str(TEST_ROOTS[0].uri) in texts(shimmed["roots"])


@pytest.mark.anyio
@pytest.mark.parametrize("page_size", [None, "4"])
async def test_our_server_tool_list_is_identical_through_shim(
    home: Home, daemon: Daemon, page_size: str | None
) -> None:
    env = {"LATCH_TEST_PAGE_SIZE": page_size} if page_size else None
    async with mcp_session(home, our_server_cmd(), extra_env=env) as session:
        direct = await list_all_tools(session)
    async with mcp_session(home, via_shim("test", our_server_cmd()), extra_env=env) as session:
        if page_size:
            first = await session.list_tools()
            assert len(first.tools) == int(page_size) and first.next_cursor
        shimmed = await list_all_tools(session)
    assert shimmed == direct


@pytest.mark.anyio
async def test_allowed_calls_give_identical_results_through_shim(home: Home, daemon: Daemon) -> None:
    target = home.work / "file.txt"
    calls = [
        ("write_file", {"path": str(target), "content": "säfe\ncontent"}),
        ("read_file", {"path": str(target)}),
        ("echo", {"nested": {"list": [1, 2.5, None, "x"]}, "unicode": "🙂"}),
        ("big", {"bytes": 2 * 1024 * 1024}),
        ("fail", {}),
    ]
    results = {}
    for label, cmd in (("direct", our_server_cmd()), ("shim", via_shim("test", our_server_cmd()))):
        async with mcp_session(home, cmd) as session:
            results[label] = [result_json(await session.call_tool(name, args)) for name, args in calls]
    assert results["shim"] == results["direct"]
    assert [c["name"] for c in home.recorded()] == [name for name, _ in calls] * 2


@pytest.mark.anyio
async def test_server_to_client_roots_request_is_relayed_with_overlapping_ids(home: Home, daemon: Daemon) -> None:
    # latch-test-server numbers its own requests from 0, like the client does.
    async with mcp_session(home, via_shim("test", our_server_cmd()), roots=True) as session:
        await session.list_tools()
        first = await session.call_tool("ask_roots", {})
        second = await session.call_tool("ask_roots", {})
    expected = [r.model_dump(mode="json", exclude_none=True) for r in TEST_ROOTS]
    assert json.loads(text_of(first))["roots"] == expected
    assert json.loads(text_of(second))["roots"] == expected


@pytest.mark.anyio
async def test_sdk_default_client_negotiates_2026_through_shim(home: Home, daemon: Daemon) -> None:
    # mcp's Client sends server/discover first and uses 2026-07-28 when offered.
    cmd = via_shim("test", our_server_cmd())
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=home.server_env())
    async with Client(params, list_roots_callback=fixed_roots, read_timeout_seconds=30) as client:
        assert client.protocol_version == "2026-07-28"
        echoed = await client.call_tool("echo", {"x": "y"})
        assert json.loads(text_of(echoed)) == {"x": "y"}
        roots = await client.call_tool("ask_roots", {})
        assert json.loads(text_of(roots))["roots"][0]["uri"] == str(TEST_ROOTS[0].uri)
        paid = await client.call_tool("create_payment", {"amount": 1, "currency": "EUR", "recipient": "x"})
        assert paid.is_error
    assert [c["name"] for c in home.recorded()] == ["echo", "ask_roots", "ask_roots"]


@pytest.mark.anyio
async def test_sdk_default_client_falls_back_to_initialize_through_shim(home: Home, daemon: Daemon) -> None:
    # server-filesystem answers server/discover with -32601; the client falls back.
    root = home.work / "root"
    root.mkdir()
    (root / "a.txt").write_text("A")
    cmd = via_shim("fs", filesystem_cmd(root))
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=home.server_env())
    async with Client(params, read_timeout_seconds=30) as client:
        assert client.protocol_version in ("2025-06-18", "2025-11-25")
        result = await client.call_tool("read_text_file", {"path": str(root / "a.txt")})
        assert text_of(result) == "A"
