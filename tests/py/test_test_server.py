"""latch-test-server, spoken to directly: the peer the shim tests rely on
behaves as they assume (tools, record file, errors, versions)."""

from __future__ import annotations

import json

import anyio
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from latchkit import (
    TEST_ROOTS,
    Home,
    fixed_roots,
    list_all_tools,
    mcp_session,
    our_server_cmd,
    text_of,
)

EXPECTED_TOOLS = [
    "read_file",
    "write_file",
    "send_email",
    "run_command",
    "create_pull_request",
    "create_payment",
    "echo",
    "big",
    "slow",
    "fail",
    "crash",
    "ask_roots",
]


@pytest.mark.anyio
async def test_tools_list_has_a_tool_for_every_class_with_annotations_and_schemas(home: Home) -> None:
    async with mcp_session(home, our_server_cmd()) as session:
        tools = {t["name"]: t for t in await list_all_tools(session)}
    assert list(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool["description"], tool
        assert tool["inputSchema"]["type"] == "object", tool
        assert set(tool["annotations"]) == {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
    assert tools["read_file"]["annotations"]["readOnlyHint"] is True
    assert tools["write_file"]["annotations"]["readOnlyHint"] is False
    assert tools["send_email"]["annotations"]["openWorldHint"] is True
    assert tools["send_email"]["inputSchema"]["required"] == ["to", "subject", "body"]
    assert tools["create_payment"]["inputSchema"]["required"] == ["amount", "currency", "recipient"]
    assert tools["create_pull_request"]["inputSchema"]["required"] == ["repo", "title", "head", "base"]


@pytest.mark.anyio
async def test_pagination_hands_out_the_same_tools_page_by_page(home: Home) -> None:
    async with mcp_session(home, our_server_cmd()) as session:
        whole = await list_all_tools(session)
    async with mcp_session(home, our_server_cmd(), extra_env={"LATCH_TEST_PAGE_SIZE": "5"}) as session:
        first = await session.list_tools()
        assert len(first.tools) == 5 and first.next_cursor
        paged = await list_all_tools(session)
        with pytest.raises(MCPError) as bad:
            await session.list_tools(params=types.PaginatedRequestParams(cursor="not-a-cursor"))
        assert bad.value.code == types.INVALID_PARAMS
    assert paged == whole


@pytest.mark.anyio
async def test_file_tools_read_and_write_real_files(home: Home) -> None:
    target = home.work / "note.txt"
    async with mcp_session(home, our_server_cmd()) as session:
        wrote = await session.call_tool("write_file", {"path": str(target), "content": "hello\nworld"})
        assert not wrote.is_error
        assert target.read_text() == "hello\nworld"
        read = await session.call_tool("read_file", {"path": str(target)})
        assert text_of(read) == "hello\nworld"
        missing = await session.call_tool("read_file", {"path": str(home.work / "absent")})
        assert missing.is_error


@pytest.mark.anyio
async def test_simulated_side_effect_tools_answer_and_do_nothing_else(home: Home) -> None:
    async with mcp_session(home, our_server_cmd()) as session:
        email = await session.call_tool("send_email", {"to": "bob@example.com", "subject": "Hi", "body": "Hello Bob"})
        assert "bob@example.com" in text_of(email) and not email.is_error
        command = await session.call_tool("run_command", {"command": "rm -rf /"})
        assert "simulated" in text_of(command)
        pr = await session.call_tool(
            "create_pull_request", {"repo": "acme/app", "title": "Fix", "head": "fix", "base": "main"}
        )
        assert "acme/app" in text_of(pr)
        pay = await session.call_tool("create_payment", {"amount": 12.5, "currency": "EUR", "recipient": "bob"})
        assert "12.5 EUR" in text_of(pay)
        with pytest.raises(MCPError) as bad:
            await session.call_tool("send_email", {"to": "bob@example.com"})
        assert bad.value.code == types.INVALID_PARAMS


@pytest.mark.anyio
async def test_echo_returns_its_arguments_as_json_text(home: Home) -> None:
    args = {"text": "héllo", "n": 3, "nested": {"list": [1, None, True]}}
    async with mcp_session(home, our_server_cmd()) as session:
        result = await session.call_tool("echo", args)
    assert json.loads(text_of(result)) == args


@pytest.mark.anyio
async def test_big_returns_exactly_the_requested_number_of_bytes(home: Home) -> None:
    async with mcp_session(home, our_server_cmd()) as session:
        for size in (0, 1, 1000, 3 * 1024 * 1024):
            result = await session.call_tool("big", {"bytes": size})
            assert len(text_of(result).encode()) == size


@pytest.mark.anyio
async def test_slow_reports_increasing_progress_then_answers(home: Home) -> None:
    progress: list[tuple[float, float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))

    async with mcp_session(home, our_server_cmd()) as session:
        result = await session.call_tool("slow", {"ms": 450}, progress_callback=on_progress)
    assert text_of(result) == "Slept 450 ms"
    assert len(progress) >= 4
    values = [v for v, _ in progress]
    assert values == sorted(values) and values[-1] == 450
    assert all(total == 450 for _, total in progress)


@pytest.mark.anyio
async def test_slow_calls_run_concurrently_and_answer_out_of_order(home: Home) -> None:
    answers: list[str] = []
    async with mcp_session(home, our_server_cmd()) as session:

        async def call(ms: int) -> None:
            answers.append(text_of(await session.call_tool("slow", {"ms": ms})))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call, 800)
                await anyio.sleep(0.05)
                tg.start_soon(call, 100)
    assert answers == ["Slept 100 ms", "Slept 800 ms"]


@pytest.mark.anyio
async def test_fail_returns_an_error_result_not_a_protocol_error(home: Home) -> None:
    async with mcp_session(home, our_server_cmd()) as session:
        result = await session.call_tool("fail", {})
    assert result.is_error


@pytest.mark.anyio
async def test_unknown_tool_is_a_protocol_error(home: Home) -> None:
    async with mcp_session(home, our_server_cmd()) as session:
        with pytest.raises(MCPError) as err:
            await session.call_tool("no_such_tool", {})
    assert err.value.code == types.INVALID_PARAMS


@pytest.mark.anyio
async def test_crash_exits_with_status_3_and_the_client_gets_an_error(home: Home) -> None:
    async with mcp_session(home, our_server_cmd()) as session:
        with anyio.fail_after(10):
            with pytest.raises(MCPError):
                await session.call_tool("crash", {})
    assert [c["name"] for c in home.recorded()] == ["crash"]


def test_crash_exit_status_is_3(home: Home, wire) -> None:  # type: ignore[no-untyped-def]
    client = wire(our_server_cmd())
    client.initialize()
    client.request("tools/call", {"name": "crash", "arguments": {}})
    assert client.eof()
    assert client.proc.wait(5) == 3


@pytest.mark.anyio
async def test_ask_roots_returns_what_the_client_listed(home: Home) -> None:
    async with mcp_session(home, our_server_cmd(), roots=True) as session:
        result = await session.call_tool("ask_roots", {})
    roots = json.loads(text_of(result))["roots"]
    assert roots == [r.model_dump(mode="json", exclude_none=True) for r in TEST_ROOTS]


@pytest.mark.anyio
async def test_record_has_every_call_that_reached_the_server_and_nothing_else(home: Home) -> None:
    async with mcp_session(home, our_server_cmd()) as session:
        await session.send_ping()
        await session.list_tools()
        await session.call_tool("echo", {"a": 1})
        await session.call_tool("create_payment", {"amount": 1, "currency": "EUR", "recipient": "x"})
    calls = home.recorded()
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("echo", {"a": 1}),
        ("create_payment", {"amount": 1, "currency": "EUR", "recipient": "x"}),
    ]
    assert all(c["time"].endswith("Z") and "id" in c for c in calls)


@pytest.mark.anyio
async def test_sdk_default_client_negotiates_2026_through_server_discover(home: Home) -> None:
    params = StdioServerParameters(command=our_server_cmd()[0], env=home.server_env())
    async with Client(params, list_roots_callback=fixed_roots, read_timeout_seconds=30) as client:
        assert client.protocol_version == "2026-07-28"
        assert client.server_info is not None and client.server_info.name == "latch-test-server"
        echoed = await client.call_tool("echo", {"x": "y"})
        assert json.loads(text_of(echoed)) == {"x": "y"}
        # 2026-07-28 has no server-to-client requests: input_required, then a retry.
        roots = await client.call_tool("ask_roots", {})
        assert json.loads(text_of(roots))["roots"][0]["uri"] == str(TEST_ROOTS[0].uri)
    assert [c["name"] for c in home.recorded()] == ["echo", "ask_roots", "ask_roots"]


@pytest.mark.parametrize(
    ("asked", "answered"), [("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"), ("2024-11-05", "2025-11-25")]
)
def test_initialize_echoes_a_supported_version_and_offers_its_latest_otherwise(
    home: Home, wire, asked: str, answered: str
) -> None:  # type: ignore[no-untyped-def]
    client = wire(our_server_cmd())
    assert client.initialize(asked)["result"]["protocolVersion"] == answered


def test_protocol_errors_on_the_wire(home: Home, wire) -> None:  # type: ignore[no-untyped-def]
    client = wire(our_server_cmd())
    client.initialize()
    client.send_line("{this is not json")
    parse = client.wait_for(lambda m: "error" in m)
    assert parse["id"] is None and parse["error"]["code"] == -32700
    client.send_line('[{"jsonrpc":"2.0","id":7,"method":"ping"}]')
    batch = client.wait_for(lambda m: "error" in m)
    assert batch["id"] is None and batch["error"]["code"] == -32600
    assert client.call("no/such/method")["error"]["code"] == -32601
    ping_id = client.request("ping")
    assert client.response(ping_id) == {"jsonrpc": "2.0", "id": ping_id, "result": {}}


def test_a_cancelled_slow_call_gets_no_response(home: Home, wire) -> None:  # type: ignore[no-untyped-def]
    client = wire(our_server_cmd())
    client.initialize()
    slow_id = client.request("tools/call", {"name": "slow", "arguments": {"ms": 400}})
    client.notify("notifications/cancelled", {"requestId": slow_id, "reason": "user pressed stop"})
    fast_id = client.request("tools/call", {"name": "slow", "arguments": {"ms": 700}})
    client.response(fast_id, timeout=5)
    assert not [m for m in client.received if m.get("id") == slow_id]
