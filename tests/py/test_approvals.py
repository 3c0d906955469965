"""The approval lifecycle end to end: a real client calls a tool through
`latch shim`, the daemon holds it, a person answers with the `latch` CLI.

What reaches latch-test-server (`home.recorded()`) proves what ran. Scopes,
holds, cancellation, first-answer-wins, restarts and retries are checked the
way an agent and a person meet them; the state machine itself is tested in
core/src/approval/tests.rs.

The official Python SDK (`mcp_session`) is used where a real client matters;
the raw `WireClient` where a test needs exact ids, cancellation, concurrent
identical requests or 2026-07-28 retry fields.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from latchkit import (
    Approver,
    Daemon,
    Home,
    WireClient,
    mcp_session,
    our_server_cmd,
    result_json,
    via_shim,
    wait_until,
)

SHIM = via_shim("test", our_server_cmd())
TOOL = "run_command"  # EXECUTE: asks by default
ARGS = {"command": "make deploy"}
OTHER_ARGS = {"command": "make deploy --force"}

# Short hold: the agent gets the pending answer quickly.
SHORT_HOLD = "[approvals]\nhold_seconds = 1\n"
# A hold long enough that a person answers within it.
LONG_HOLD = "[approvals]\nhold_seconds = 30\n"

DECISION_META = "dev.latch/decision"

# Every daemon of these tests has an approval PIN, as a protected install
# does: `home.approve` passes it (`--pin-stdin`); a deny needs none.
PIN = "approve 4 me"


@pytest.fixture
def start_daemon(start_daemon: Callable[..., Daemon], home: Home) -> Callable[..., Daemon]:
    def start(policy: str | None = None) -> Daemon:
        daemon = start_daemon(policy)
        if home.pin is None:
            home.set_pin(PIN)
        return daemon

    return start


def simulated(args: dict[str, Any]) -> str:
    """The text latch-test-server answers `run_command` with."""
    return f"$ {args['command']}\n(simulated: exit status 0, no output)"


def decision(result: dict[str, Any]) -> dict[str, Any]:
    """Latch's verdict in a CallToolResult (as JSON), or {} when it has none."""
    return (result.get("_meta") or {}).get(DECISION_META) or {}


def assert_ran(result: dict[str, Any], args: dict[str, Any]) -> None:
    assert not result.get("isError"), result
    assert result["content"][0]["text"] == simulated(args), result


def assert_pending(result: dict[str, Any]) -> str:
    """A held-past-the-limit answer; returns the approval id it names."""
    assert result.get("isError"), result
    verdict = decision(result)
    assert verdict.get("status") == "pending", result
    approval_id = verdict.get("approval_id")
    assert approval_id, result
    assert str(approval_id) in result["content"][0]["text"], result
    return str(approval_id)


def assert_denied(result: dict[str, Any]) -> None:
    assert result.get("isError"), result
    assert result["content"][0]["text"].startswith("Latch blocked"), result
    assert decision(result).get("decision") == "deny", result


def pending_ids(home: Home, tool: str = TOOL) -> list[str]:
    return [str(e["id"]) for e in home.pending() if e.get("tool") == tool]


async def call(session: Any, args: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        return result_json(await session.call_tool(TOOL, args))


async def pending_via(session: Any, args: dict[str, Any]) -> str:
    """Calls TOOL, expects the hold to pass; returns the approval id named."""
    return assert_pending(await call(session, args))


@asynccontextmanager
async def agent(home: Home, shim: list[str] = SHIM) -> AsyncIterator[Any]:
    """A client session the way agents open one: initialize, then tools/list,
    so Latch knows the tool's definition before the first call."""
    async with mcp_session(home, shim) as session:
        with anyio.fail_after(20):
            await session.list_tools()
        yield session


def wire_shim(wire: Callable[..., WireClient]) -> WireClient:
    client = wire(SHIM)
    client.initialize()
    assert "result" in client.call("tools/list", {}, timeout=20)
    return client


def wire_call(client: WireClient, args: dict[str, Any], **extra: Any) -> int:
    return client.request("tools/call", {"name": TOOL, "arguments": args, **extra})


def wire_result(client: WireClient, request_id: int, timeout: float = 20.0) -> dict[str, Any]:
    answer = client.response(request_id, timeout)
    assert "result" in answer, answer
    return answer["result"]


# ---------------------------------------------------------------- holding


@pytest.mark.anyio
async def test_a_held_call_hears_progress_naming_its_approval_before_the_answer(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=LONG_HOLD)
    messages: list[str | None] = []
    heard = threading.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message)
        heard.set()

    answered: dict[str, Any] = {}

    def person() -> None:
        entry = home.wait_pending(tool=TOOL)
        answered["id"] = str(entry["id"])
        answered["heard_before"] = heard.wait(15)
        answered["messages_before"] = list(messages)
        home.approve(entry["id"])

    approver = threading.Thread(target=person, daemon=True)
    approver.start()
    async with agent(home) as session:
        with anyio.fail_after(40):
            result = result_json(await session.call_tool(TOOL, ARGS, progress_callback=on_progress))
    approver.join(20)
    assert not approver.is_alive()
    assert answered.get("heard_before"), f"no progress while held; messages {messages}"
    before = answered["messages_before"]
    assert any(m and "waiting for approval" in m and answered["id"] in m for m in before), before
    assert_ran(result, ARGS)
    assert len(home.recorded(TOOL)) == 1


@pytest.mark.anyio
async def test_approved_within_the_hold_the_call_runs_once_and_the_client_gets_its_result(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=LONG_HOLD)
    approver = Approver(home, tool=TOOL)
    approver.start()
    async with agent(home) as session:
        result = await call(session, ARGS, timeout=40)
    entry = approver.outcome()
    assert entry["args"] == ARGS
    assert_ran(result, ARGS)
    assert [c["arguments"] for c in home.recorded(TOOL)] == [ARGS]
    assert home.pending() == []


@pytest.mark.anyio
async def test_past_the_hold_an_approved_once_call_runs_on_identical_retry_only_once(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=SHORT_HOLD)
    async with agent(home) as session:
        first = await pending_via(session, ARGS)
        assert pending_ids(home) == [first]
        assert home.recorded() == []

        home.approve(first, "once")
        assert_ran(await call(session, ARGS), ARGS)
        assert len(home.recorded(TOOL)) == 1

        # Any argument changed: a different call, asked afresh.
        changed = await pending_via(session, OTHER_ARGS)
        assert changed != first
        # The once-grant is used up: the identical call asks again.
        again = await pending_via(session, ARGS)
        assert again not in (first, changed)
        assert set(pending_ids(home)) == {changed, again}
    assert [c["arguments"] for c in home.recorded(TOOL)] == [ARGS]


# ---------------------------------------------------------------- scopes


@pytest.mark.anyio
async def test_session_args_approval_covers_identical_calls_in_that_session_only(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=SHORT_HOLD)
    async with agent(home) as session:
        approval = await pending_via(session, ARGS)
        home.approve(approval, "session-args")
        for _ in range(3):
            assert_ran(await call(session, ARGS), ARGS)
        assert home.pending() == []
        await pending_via(session, OTHER_ARGS)
    assert len(home.recorded(TOOL)) == 3

    # A new client process is a new session: it asks again.
    async with agent(home) as session:
        fresh = await pending_via(session, ARGS)
    assert fresh != approval
    assert len(home.recorded(TOOL)) == 3


@pytest.mark.anyio
async def test_a_session_approval_given_before_the_client_listed_tools_still_covers_the_next_calls(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    # The official Python SDK lists tools lazily, after its first successful
    # call_tool (to validate output schemas): the call that asked was decided
    # before Latch knew the tool's definition, the next ones after.
    start_daemon(policy=SHORT_HOLD)
    async with mcp_session(home, SHIM) as session:
        approval = await pending_via(session, ARGS)
        home.approve(approval, "session-args")
        for attempt in range(3):
            result = await call(session, ARGS)
            assert not result.get("isError"), f"identical call #{attempt + 1} after a session-args approve: {result}"
        assert home.pending() == []
    assert len(home.recorded(TOOL)) == 3


@pytest.mark.anyio
async def test_session_tool_approval_covers_any_arguments_of_that_tool_in_that_session_only(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=SHORT_HOLD)
    async with agent(home) as session:
        approval = await pending_via(session, ARGS)
        home.approve(approval, "session-tool")
        assert_ran(await call(session, ARGS), ARGS)
        assert_ran(await call(session, OTHER_ARGS), OTHER_ARGS)
        third = {"command": "ls -la /"}
        assert_ran(await call(session, third), third)
        assert home.pending() == []
    assert [c["arguments"] for c in home.recorded(TOOL)] == [ARGS, OTHER_ARGS, third]

    async with agent(home) as session:
        await pending_via(session, OTHER_ARGS)
    assert len(home.recorded(TOOL)) == 3


@pytest.mark.anyio
async def test_always_approval_writes_an_allow_rule_that_new_sessions_follow(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=SHORT_HOLD)
    policy_file = home.latch_home / "policy.toml"
    async with agent(home) as session:
        approval = await pending_via(session, ARGS)
        home.approve(approval, "always")
        assert_ran(await call(session, ARGS), ARGS)

    text = policy_file.read_text()
    assert "[[rule]]" in text, text
    rule = text[text.index("[[rule]]") :]
    assert f'tool = "{TOOL}"' in rule, text
    assert 'effect = "allow"' in rule, text
    assert "hold_seconds = 1" in text, "the user's own settings were lost:\n" + text
    home.latch("policy", "check")

    async with agent(home) as session:
        assert_ran(await call(session, OTHER_ARGS, timeout=10), OTHER_ARGS)
    assert home.pending() == []
    assert [c["arguments"] for c in home.recorded(TOOL)] == [ARGS, OTHER_ARGS]


@pytest.mark.anyio
async def test_session_tool_deny_refuses_later_calls_of_that_tool_without_asking(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=SHORT_HOLD)
    async with agent(home) as session:
        approval = await pending_via(session, ARGS)
        home.latch("deny", approval, "--scope", "session-tool", "--reason", "no deploys today")
        for args in (ARGS, OTHER_ARGS):
            result = await call(session, args, timeout=10)
            assert_denied(result)
        assert home.pending() == []
        # Other tools are not affected.
        assert not (await session.call_tool("echo", {"still": "fine"})).is_error
    assert home.recorded(TOOL) == []


# ---------------------------------------------------------------- answers


def test_a_cancelled_held_call_is_withdrawn_and_a_later_approve_fails(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=LONG_HOLD)
    client = wire_shim(wire)
    held = wire_call(client, ARGS)
    entry = home.wait_pending(tool=TOOL)
    client.notify("notifications/cancelled", {"requestId": held, "reason": "the user pressed Esc"})
    assert wait_until(lambda: not pending_ids(home), timeout=5), home.pending()

    answer = home.latch("approve", str(entry["id"]), "--pin-stdin", input=PIN + "\n", check=False, timeout=60)
    assert answer.returncode != 0, answer
    assert "withdrawn" in (answer.stdout + answer.stderr).lower(), answer

    # The connection still works, the cancelled request got no answer, and
    # the server never saw the call.
    echo = client.call("tools/call", {"name": "echo", "arguments": {"after": "cancel"}})
    assert "result" in echo, echo
    assert not [m for m in client.received if m.get("id") == held], client.received
    assert home.recorded(TOOL) == []


@pytest.mark.anyio
async def test_the_first_answer_wins_and_every_answer_is_audited(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=LONG_HOLD)
    approver = Approver(home, tool=TOOL)
    approver.start()
    async with agent(home) as session:
        result = await call(session, ARGS, timeout=40)
    approval = str(approver.outcome()["id"])
    assert_ran(result, ARGS)

    late = home.latch("deny", approval, "--reason", "too late", check=False)
    assert late.returncode != 0, late
    assert "already" in (late.stdout + late.stderr).lower(), late

    answers = [r for r in home.audit() if r["kind"] == "answer" and str(r.get("approval_id")) == approval]
    assert len(answers) == 2, answers
    assert all(str(r.get("answered_by", "")).startswith("cli:") for r in answers), answers
    assert sorted(r["decision"].lower() for r in answers) == ["allow", "deny"], answers
    assert len(home.recorded(TOOL)) == 1


@pytest.mark.anyio
async def test_a_pending_approval_survives_a_daemon_restart(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    first_daemon = start_daemon(policy=SHORT_HOLD)
    # Without autostart: the shim that loses its daemon would start one of
    # its own, racing the test's.
    async with agent(home, via_shim("test", our_server_cmd(), autostart=False)) as session:
        approval = await pending_via(session, ARGS)
        assert first_daemon.stop() == 0, first_daemon.log()
        start_daemon()
        assert pending_ids(home) == [approval]

        home.approve(approval)

        # The shim reconnects to the new daemon in the background: retry
        # until it is back rather than guess how long that takes.
        result: dict[str, Any] = {}
        with anyio.fail_after(30):
            while True:
                result = await call(session, ARGS)
                if not result.get("isError") or decision(result).get("status") == "pending":
                    break
                await anyio.sleep(0.2)  # "daemon unreachable": the shim is reconnecting
        assert_ran(result, ARGS)
    assert len(home.recorded(TOOL)) == 1
    assert home.pending() == []


# ---------------------------------------------------------------- retries


def test_of_two_concurrent_identical_retries_after_a_once_approval_exactly_one_runs(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=SHORT_HOLD)
    client = wire_shim(wire)
    approval = assert_pending(wire_result(client, wire_call(client, ARGS)))
    home.approve(approval, "once")

    a = wire_call(client, ARGS)
    b = wire_call(client, ARGS)
    results = [wire_result(client, a), wire_result(client, b)]
    ran = [r for r in results if not r.get("isError")]
    held = [r for r in results if r.get("isError")]
    assert len(ran) == 1 and len(held) == 1, results
    assert_ran(ran[0], ARGS)
    assert assert_pending(held[0]) != approval
    assert len(home.recorded(TOOL)) == 1


def test_retry_fields_the_client_adds_do_not_make_an_approved_call_run_again(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    # A 2026-07-28 retry is recognised only by a state Latch itself issued in
    # an input_required result (test_guard_wire.py has the genuine one); the
    # same fields made up by the client are part of a new call, which asks.
    start_daemon(policy=LONG_HOLD)
    client = wire_shim(wire)
    approver = Approver(home, tool=TOOL)
    approver.start()
    first = wire_result(client, wire_call(client, ARGS), timeout=30)
    approver.outcome()
    assert_ran(first, ARGS)

    retry = wire_call(
        client,
        ARGS,
        inputResponses={"confirm": {"action": "accept", "content": {"ok": True}}},
        requestState="opaque-state-from-the-server",
    )
    home.wait_pending(tool=TOOL)
    client.notify("notifications/cancelled", {"requestId": retry})
    assert wait_until(lambda: not pending_ids(home), timeout=5), home.pending()
    assert len(home.recorded(TOOL)) == 1


def test_an_approval_asked_before_the_client_listed_tools_lets_the_identical_retry_run_after_it(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    # The call asks while Latch does not know the tool's definition yet; the
    # client lists tools while the approval is pending (its first tools/list,
    # nothing changed); the person approves; the identical retry must run.
    start_daemon(policy=SHORT_HOLD)
    client = wire(SHIM)
    client.initialize()
    approval = assert_pending(wire_result(client, wire_call(client, ARGS)))
    assert "result" in client.call("tools/list", {}, timeout=20)
    assert pending_ids(home) == [approval]
    home.approve(approval, "once")
    retried = wire_result(client, wire_call(client, ARGS))
    assert not retried.get("isError"), f"the identical retry after approving {approval} did not run: {retried}"
    assert_ran(retried, ARGS)
    assert len(home.recorded(TOOL)) == 1
