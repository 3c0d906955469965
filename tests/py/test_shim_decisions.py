"""Each action class gets its default decision through `latch shim`, and what
reaches latch-test-server (its LATCH_TEST_RECORD) proves it: allowed calls
run once, denied and unanswered calls never arrive, asked calls wait for a
person's `latch approve` / `latch deny`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from latchkit import Approver, Daemon, Home, mcp_session, our_server_cmd, result_json, text_of, via_shim, wait_until

SHIM = via_shim("test", our_server_cmd())

RUN_COMMAND = ("run_command", {"command": "git push --force origin main"})
PAYMENT = ("create_payment", {"amount": 250, "currency": "EUR", "recipient": "DE89370400440532013000"})
EXTERNAL_EMAIL = ("send_email", {"to": "someone@example.org", "subject": "Invoice", "body": "Attached."})
PULL_REQUEST = ("create_pull_request", {"repo": "acme/app", "title": "Bump", "head": "bump", "base": "main"})

HOLD_POLICY = "[approvals]\nhold_seconds = 2\n"


def assert_blocked(result: Any) -> str:
    """A Latch refusal as the contract words it; returns its text."""
    assert result.is_error, result_json(result)
    text = text_of(result)
    assert text.startswith("Latch blocked"), text
    assert result.meta and "dev.latch/decision" in result.meta, result_json(result)
    return text


async def direct_result(home: Home, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """What the server answers without Latch (the record is reset afterwards)."""
    async with mcp_session(home, our_server_cmd()) as session:
        result = result_json(await session.call_tool(name, args))
    home.record_path.unlink(missing_ok=True)
    return result


@pytest.mark.anyio
async def test_read_and_write_run_at_once(home: Home, daemon: Daemon) -> None:
    target = home.work / "notes.txt"
    async with mcp_session(home, SHIM) as session:
        wrote = await session.call_tool("write_file", {"path": str(target), "content": "kept"})
        read = await session.call_tool("read_file", {"path": str(target)})
    assert not wrote.is_error and target.read_text() == "kept"
    assert text_of(read) == "kept"
    assert [c["name"] for c in home.recorded()] == ["write_file", "read_file"]
    assert home.pending() == []


@pytest.mark.anyio
async def test_each_call_row_is_completed_with_its_outcome(home: Home, daemon: Daemon) -> None:
    # Outcomes ride along with the next call's report, or go on their own a
    # few milliseconds later when no call follows: either way they arrive.
    async with mcp_session(home, SHIM) as session:
        assert not (await session.call_tool("echo", {"n": 1})).is_error
        assert not (await session.call_tool("echo", {"n": 2})).is_error
        assert (await session.call_tool("read_file", {"path": str(home.work / "missing.txt")})).is_error

        def completed() -> list[dict[str, Any]] | None:
            rows = [r for r in home.audit() if r.get("kind") == "call"]
            return rows if len(rows) == 3 and all(r.get("outcome") for r in rows) else None

        rows = wait_until(completed, 5.0)
        assert rows, home.audit()
    by_args = {json_args(r): r for r in rows}
    assert by_args['{"n":1}']["outcome"] == "ok" and by_args['{"n":2}']["outcome"] == "ok"
    missing = next(r for r in rows if r["tool"] == "read_file")
    assert missing["outcome"] == "is_error"
    assert all(isinstance(r.get("latency_us"), int) for r in rows), rows


def json_args(row: dict[str, Any]) -> str:
    return json.dumps(row["args"], separators=(",", ":"), sort_keys=True)


@pytest.mark.anyio
async def test_payment_is_denied_and_never_reaches_the_server(home: Home, daemon: Daemon) -> None:
    name, args = PAYMENT
    async with mcp_session(home, SHIM) as session:
        result = await session.call_tool(name, args)
        assert_blocked(result)
        # The connection stays usable after a refusal.
        assert not (await session.call_tool("echo", {"still": "alive"})).is_error
    assert [c["name"] for c in home.recorded()] == ["echo"]
    assert home.pending() == []


@pytest.mark.anyio
async def test_audit_has_a_row_per_call_with_its_decision(home: Home, daemon: Daemon) -> None:
    async with mcp_session(home, SHIM) as session:
        await session.call_tool("read_file", {"path": str(home.work / "absent")})
        await session.call_tool(*PAYMENT)
    # Calls only: the log also records connects, disconnects and policy reloads.
    rows = [row for row in home.audit() if row.get("kind", "call") == "call"]
    by_tool = {row["tool"]: row for row in rows}
    assert {"read_file", "create_payment"} <= set(by_tool), rows
    assert by_tool["read_file"]["decision"].lower() == "allow"
    assert by_tool["create_payment"]["decision"].lower() == "deny"
    assert all(row["server"] == "test" for row in rows)
    assert by_tool["create_payment"]["class"].upper() == "TRANSFER_VALUE"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "expected_class"),
    [(RUN_COMMAND, "EXECUTE"), (EXTERNAL_EMAIL, "SEND"), (PULL_REQUEST, "SUBMIT")],
    ids=["execute", "send-external", "submit"],
)
async def test_risky_classes_wait_for_a_person_and_run_once_when_approved(
    home: Home, daemon: Daemon, call: tuple[str, dict[str, Any]], expected_class: str
) -> None:
    name, args = call
    want = await direct_result(home, name, args)
    approver = Approver(home, tool=name, action="approve")
    approver.start()
    async with mcp_session(home, SHIM) as session:
        with anyio.fail_after(40):
            result = await session.call_tool(name, args)
    entry = approver.outcome()
    assert entry["server"] == "test"
    assert entry["args"] == args
    assert entry["class"].upper() == expected_class
    assert entry["reasons"], entry
    assert result_json(result) == want
    assert [(c["name"], c["arguments"]) for c in home.recorded()] == [(name, args)]
    assert home.pending() == []


@pytest.mark.anyio
async def test_a_call_denied_by_a_person_never_runs(home: Home, daemon: Daemon) -> None:
    name, args = RUN_COMMAND
    approver = Approver(home, tool=name, action="deny", reason="not on a Friday")
    approver.start()
    async with mcp_session(home, SHIM) as session:
        with anyio.fail_after(40):
            result = await session.call_tool(name, args)
        approver.outcome()
        text = assert_blocked(result)
        assert "not on a Friday" in text
    assert home.recorded() == []
    assert home.pending() == []


@pytest.mark.anyio
async def test_a_call_held_past_the_hold_limit_gets_an_error_naming_its_approval(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=HOLD_POLICY)
    name, args = RUN_COMMAND
    async with mcp_session(home, SHIM) as session:
        started = time.monotonic()
        with anyio.fail_after(20):
            result = await session.call_tool(name, args)
        waited = time.monotonic() - started
        assert result.is_error, result_json(result)
        assert 1.5 <= waited < 15, waited
        [entry] = home.pending()
        assert entry["tool"] == name
        assert str(entry["id"]) in text_of(result), text_of(result)
        assert home.recorded() == []

        # Once a person approves, the identical call goes through, once.
        home.approve(entry["id"])
        with anyio.fail_after(20):
            retried = await session.call_tool(name, args)
        assert not retried.is_error, result_json(retried)
    assert [c["name"] for c in home.recorded()] == [name]


@pytest.mark.anyio
async def test_concurrent_calls_are_decided_independently(home: Home, daemon: Daemon) -> None:
    # A held call must not hold up allowed calls on the same connection.
    approver = Approver(home, tool="run_command", action="deny")
    async with mcp_session(home, SHIM) as session:
        results: dict[str, Any] = {}

        async def call(name: str, args: dict[str, Any]) -> None:
            results[name] = await session.call_tool(name, args)

        with anyio.fail_after(40):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call, *RUN_COMMAND)
                home_pending = await anyio.to_thread.run_sync(lambda: home.wait_pending(tool="run_command"))
                assert home_pending
                await call("echo", {"while": "held"})
                assert "run_command" not in results
                approver.start()
    approver.outcome()
    assert not results["echo"].is_error
    assert_blocked(results["run_command"])
    assert [c["name"] for c in home.recorded()] == ["echo"]


def test_a_cancelled_held_call_withdraws_its_approval_and_never_runs(
    home: Home, daemon: Daemon, wire: Callable[..., Any]
) -> None:
    client = wire(SHIM)
    client.initialize()
    name, args = RUN_COMMAND
    call_id = client.request("tools/call", {"name": name, "arguments": args})
    home.wait_pending(tool=name)
    client.notify("notifications/cancelled", {"requestId": call_id, "reason": "the user pressed stop"})
    assert wait_until(lambda: home.pending() == [], 10), home.pending()
    # The connection goes on; the cancelled call never reached the server.
    assert client.call("tools/call", {"name": "echo", "arguments": {"after": "cancel"}})["result"]
    assert [c["name"] for c in home.recorded()] == ["echo"]


@pytest.mark.anyio
async def test_audit_filters_narrow_the_log(home: Home, daemon: Daemon) -> None:
    async with mcp_session(home, SHIM) as session:
        await session.call_tool("read_file", {"path": str(home.path / "absent")})
        await session.call_tool(*PAYMENT)
    denied = home.latch_json("audit", "--json", "--decision", "deny", "--since", "1h")
    assert [r["tool"] for r in denied if r["kind"] == "call"] == ["create_payment"]
    assert all(r["decision"] == "deny" for r in denied)
    reads = home.latch_json("audit", "--json", "--class", "read", "--server", "test")
    assert {r["tool"] for r in reads} == {"read_file"}
    assert home.latch_json("audit", "--json", "--text", "no-such-text-anywhere") == []
    bad = home.latch("audit", "--since", "yesterday", check=False)
    assert bad.returncode == 2 and "30m, 2h, 7d" in bad.stderr
