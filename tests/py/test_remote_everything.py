"""`latch shim --url` against the real server-everything from npm in its
streamable HTTP and HTTP+SSE modes: through the official Python client over
stdio, the tool list, results, progress and server requests are identical to
the same client connected to the server directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession

from latchkit import AutoApprover, Daemon, Home, list_all_tools, mcp_session, result_json, wait_for_tools
from remotekit import direct_session, everything_http, via_url
from scenarios import EVERYTHING_CONDITIONAL_TOOLS, EVERYTHING_STABLE_CALLS, assert_progress_reported, texts

# mode of server-everything → its endpoint path and the Python client's transport.
MODES = {"streamableHttp": ("/mcp", "streamable"), "sse": ("/sse", "sse")}

ALLOW_LONG_RUNNING = """
[[rule]]
server = "everything"
tool = "trigger-long-running-operation"
effect = "allow"
"""

MAY_ASK = {"trigger-sampling-request", "trigger-elicitation-request", "trigger-long-running-operation"}


async def transcript(session: ClientSession) -> dict[str, Any]:
    out: dict[str, Any] = {"calls": []}
    out["tools"] = await wait_for_tools(session, EVERYTHING_CONDITIONAL_TOOLS)
    for name, args in EVERYTHING_STABLE_CALLS:
        out["calls"].append((name, result_json(await session.call_tool(name, args))))
    return out


async def client_features(session: ClientSession) -> dict[str, Any]:
    await wait_for_tools(session, EVERYTHING_CONDITIONAL_TOOLS)
    out: dict[str, Any] = {}
    with anyio.fail_after(30):
        out["sampling"] = result_json(
            await session.call_tool("trigger-sampling-request", {"prompt": "Say hi", "maxTokens": 20})
        )
        out["elicitation"] = result_json(await session.call_tool("trigger-elicitation-request", {}))
        out["roots"] = result_json(await session.call_tool("get-roots-list", {}))
    return out


async def progress_run(session: ClientSession) -> tuple[dict[str, Any], list[tuple[float, float | None]]]:
    progress: list[tuple[float, float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))

    result = await session.call_tool(
        "trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=on_progress
    )
    return result_json(result), progress


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", ["auto", "forced"])
async def test_everything_over_http_lists_the_same_tools_and_gives_the_same_results(
    home: Home, daemon: Daemon, mode: str, transport: str
) -> None:
    path, kind = MODES[mode]
    extra = [] if transport == "auto" else ["--transport", kind]
    with everything_http(home, mode) as server:
        async with direct_session(server.url(path), kind, sampling=True, elicitation=True, roots=True) as s:
            direct = await transcript(s)
        async with mcp_session(
            home, via_url("everything", server.url(path), *extra), sampling=True, elicitation=True, roots=True
        ) as s:
            shimmed = await transcript(s)
    assert shimmed["tools"] == direct["tools"]
    assert shimmed["calls"] == direct["calls"]
    assert home.pending() == []


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_progress_reaches_the_client_over_http(
    home: Home, start_daemon: Callable[..., Daemon], mode: str
) -> None:
    start_daemon(policy=ALLOW_LONG_RUNNING)
    path, kind = MODES[mode]
    with everything_http(home, mode) as server:
        async with direct_session(server.url(path), kind) as s:
            direct_result, direct_progress = await progress_run(s)
        async with mcp_session(home, via_url("everything", server.url(path))) as s:
            result, progress = await progress_run(s)
    assert result == direct_result
    assert_progress_reported([p for p in direct_progress if p[1] == 4], 4)
    assert_progress_reported([p for p in progress if p[1] == 4], 4)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_sampling_elicitation_and_roots_round_trip_over_http(home: Home, daemon: Daemon, mode: str) -> None:
    path, kind = MODES[mode]
    with everything_http(home, mode) as server:
        async with direct_session(server.url(path), kind, sampling=True, elicitation=True, roots=True) as s:
            direct = await client_features(s)
        with AutoApprover(home, "everything") as approver:
            async with mcp_session(
                home, via_url("everything", server.url(path)), sampling=True, elicitation=True, roots=True
            ) as s:
                shimmed = await client_features(s)
    assert {entry["tool"] for entry in approver.approved} <= MAY_ASK
    assert shimmed == direct
    assert "sampled by the test client" in texts(shimmed["sampling"])
    assert "Ada Lovelace" in texts(shimmed["elicitation"])
    assert "latch-test-root" in texts(shimmed["roots"])


@pytest.mark.anyio
async def test_the_tool_list_of_a_remote_server_is_recorded_under_its_name(home: Home, daemon: Daemon) -> None:
    with everything_http(home, "streamableHttp") as server:
        async with mcp_session(home, via_url("everything", server.url("/mcp"))) as s:
            tools = await list_all_tools(s)
            await s.call_tool("echo", {"message": "recorded"})
    assert any(t["name"] == "echo" for t in tools)
    rows = [r for r in home.audit() if r.get("tool") == "echo"]
    assert rows and rows[0].get("server") == "everything", rows
