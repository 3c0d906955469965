"""Approvals asked inside the MCP client (elicitation), for clients the
policy names in `[approvals] in_client`.

The official Python SDK's ClientSession, with an elicitation callback that
plays the person, talks to latch-test-server through the real shim; the
daemon is real. What reached the server (`home.recorded()`) proves what ran,
the audit log who answered.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from latchkit import (
    CALL_TIMEOUT,
    Approver,
    Daemon,
    Home,
    WireClient,
    our_server_cmd,
    result_json,
    via_shim,
    wait_until,
)
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

SHIM = via_shim("test", our_server_cmd())
TOOL = "send_email"  # SEND to an outside address: asks by default
ARGS = {"to": "bob@example.com", "subject": "Quarterly numbers", "body": "attached"}
NAMED = "my-client"
POLICY = f'[approvals]\nhold_seconds = 30\nin_client = ["{NAMED}"]\n'
PIN = "approve 4 me"

Elicit = Callable[[Any, types.ElicitRequestParams], Awaitable[types.ElicitResult]]


@pytest.fixture
def start_daemon(start_daemon: Callable[..., Daemon], home: Home) -> Callable[..., Daemon]:
    """Every daemon here has an approval PIN: the in-client answer works without it."""

    def start(policy: str = POLICY) -> Daemon:
        daemon = start_daemon(policy)
        home.set_pin(PIN)
        return daemon

    return start


class Person:
    """The elicitation callback: records each question and answers with ANSWER
    (`None`: never answers, waits until the question is withdrawn)."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.questions: list[types.ElicitRequestParams] = []
        self.withdrawn = anyio.Event()

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.questions.append(params)
        if self.answer is None:
            try:
                await anyio.sleep_forever()
            finally:
                self.withdrawn.set()
        return types.ElicitResult(action="accept", content={"answer": self.answer})


@asynccontextmanager
async def client(home: Home, name: str, person: Elicit) -> AsyncIterator[ClientSession]:
    """A client named NAME that shows elicitation to PERSON; tools listed."""
    with open(home.new_log("client-" + name), "w") as errlog:
        params = StdioServerParameters(command=SHIM[0], args=SHIM[1:], env=home.server_env())
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(
                read,
                write,
                read_timeout_seconds=CALL_TIMEOUT,
                elicitation_callback=person,
                client_info=types.Implementation(name=name, version="1.0"),
            ) as session:
                with anyio.fail_after(20):
                    await session.initialize()
                    await session.list_tools()
                yield session


async def call(session: ClientSession, timeout: float = 40.0) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        return result_json(await session.call_tool(TOOL, ARGS))


def answers(home: Home) -> list[dict[str, Any]]:
    return [r for r in home.audit() if r["kind"] == "answer"]


@pytest.mark.anyio
async def test_a_named_client_approves_in_the_client_and_the_call_runs_once(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon()
    person = Person("once")
    async with client(home, NAMED, person) as session:
        result = await call(session)
    assert not result.get("isError"), result
    assert [c["arguments"] for c in home.recorded(TOOL)] == [ARGS]
    assert len(person.questions) == 1
    question = person.questions[0]
    assert "send_email" in question.message and "bob@example.com" in question.message, question.message
    assert "latch approve" not in question.message.lower(), question.message
    # Once or deny, nothing wider.
    field = question.requested_schema["properties"]["answer"]
    assert field["enum"] == ["once", "deny"], field
    rows = answers(home)
    assert [r["answered_by"] for r in rows] == [f"in-client:{NAMED}"], rows
    assert rows[0]["decision"].lower() == "allow"
    call_rows = [r for r in home.audit() if r["kind"] == "call" and r["tool"] == TOOL]
    assert call_rows and call_rows[0]["answered_by"] == f"in-client:{NAMED}", call_rows
    assert home.pending() == []


@pytest.mark.anyio
async def test_a_deny_in_the_client_blocks_the_call(home: Home, start_daemon: Callable[..., Daemon]) -> None:
    start_daemon()
    person = Person("deny")
    async with client(home, NAMED, person) as session:
        result = await call(session)
    assert result.get("isError"), result
    assert result["content"][0]["text"].startswith("Latch blocked"), result
    assert home.recorded(TOOL) == []
    rows = answers(home)
    assert [(r["answered_by"], r["decision"].lower()) for r in rows] == [(f"in-client:{NAMED}", "deny")], rows


@pytest.mark.anyio
async def test_a_client_not_named_in_the_policy_is_never_asked(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon()
    person = Person("once")
    approver = Approver(home, tool=TOOL, timeout=30)
    approver.start()
    async with client(home, "some-headless-framework", person) as session:
        result = await call(session)
    approver.outcome()
    assert person.questions == []
    assert not result.get("isError"), result
    assert [r["answered_by"].split(":")[0] for r in answers(home)] == ["cli"]


@pytest.mark.anyio
async def test_without_in_client_in_the_policy_no_client_is_asked(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon("[approvals]\nhold_seconds = 30\n")
    person = Person("once")
    approver = Approver(home, tool=TOOL, timeout=30)
    approver.start()
    async with client(home, NAMED, person) as session:
        result = await call(session)
    approver.outcome()
    assert person.questions == []
    assert not result.get("isError"), result


@pytest.mark.anyio
async def test_a_console_answer_first_withdraws_the_question_in_the_client(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon()
    person = Person(None)
    approver = Approver(home, tool=TOOL, timeout=30)
    approver.start()
    async with client(home, NAMED, person) as session:
        result = await call(session)
        # The shim cancelled its question (notifications/cancelled): the SDK
        # stopped the callback.
        with anyio.fail_after(10):
            await person.withdrawn.wait()
    approver.outcome()
    assert len(person.questions) == 1
    assert not result.get("isError"), result
    assert len(home.recorded(TOOL)) == 1
    assert [r["answered_by"].split(":")[0] for r in answers(home)] == ["cli"]


def test_an_answer_for_a_wider_scope_or_an_unknown_choice_is_not_taken(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    """A client answering with anything but once/deny answers nothing: the
    call stays pending for a person in Latch."""
    # The wire client names itself "latch-wire-test".
    start_daemon(POLICY.replace(f'"{NAMED}"', '"latch-wire-test"'))
    agent = wire(SHIM)
    agent.initialize(capabilities={"elicitation": {"form": {}}})
    assert "result" in agent.call("tools/list", {}, timeout=20)
    call_id = agent.request("tools/call", {"name": TOOL, "arguments": ARGS})
    ask = agent.wait_for(lambda m: m.get("method") == "elicitation/create", timeout=20)
    assert isinstance(ask["id"], str) and ask["id"].startswith("latch-"), ask
    agent.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"answer": "always"}}})
    pending = home.wait_pending(tool=TOOL)
    home.approve(pending["id"])
    answer = agent.response(call_id, timeout=20)
    assert not answer["result"].get("isError"), answer
    assert [r["answered_by"].split(":")[0] for r in answers(home)] == ["cli"]


def test_a_process_posing_as_a_shim_cannot_answer_another_shims_call(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    """A same-user process says hello as a shim, names itself the named client
    and answers in-client for every call id it can guess: refused and recorded,
    the real call still waits for a person."""
    start_daemon()
    agent = wire(SHIM)
    agent.initialize()
    assert "result" in agent.call("tools/list", {}, timeout=20)
    agent.request("tools/call", {"name": TOOL, "arguments": ARGS})
    pending = home.wait_pending(tool=TOOL)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(home.socket))
    stream = sock.makefile("rwb")

    def send(msg: dict[str, Any]) -> None:
        stream.write(json.dumps(msg).encode() + b"\n")
        stream.flush()

    try:
        send({"hello": {"protocol": 1, "role": "shim", "name": "test", "pid": os.getpid(), "session": "fake"}})
        assert "welcome" in json.loads(stream.readline())
        send({"client": {"info": {"name": NAMED, "version": "1"}}})
        # Its own call shows how call ids look.
        send({"decide": {"req": 1, "tool": "run_command", "args": {"command": "true"}}})
        own = json.loads(stream.readline())["decision"]["call_id"]
        prefix, number = own.rsplit("-", 1)
        for n in range(1, int(number)):
            send({"in_client_answer": {"call_id": f"{prefix}-{n}", "approve": True}})
        send({"status": {"req": 2}})
        while "status" not in json.loads(stream.readline()):
            pass
    finally:
        sock.close()
    assert str(pending["id"]) in [str(p["id"]) for p in home.pending()]
    assert home.recorded(TOOL) == []
    refused = [r for r in home.audit() if r["kind"] == "answer_refused"]
    assert refused and all(r["answered_by"].startswith("in-client:") for r in refused), refused
    assert [r for r in answers(home) if str(r.get("approval_id")) == str(pending["id"])] == []


def test_a_named_client_that_did_not_declare_elicitation_is_not_asked(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(POLICY.replace(f'"{NAMED}"', '"latch-wire-test"'))
    agent = wire(SHIM)
    agent.initialize(capabilities={"elicitation": {"url": {}}})  # URL mode only
    assert "result" in agent.call("tools/list", {}, timeout=20)
    call_id = agent.request("tools/call", {"name": TOOL, "arguments": ARGS})
    home.approve(home.wait_pending(tool=TOOL)["id"])
    answer = agent.response(call_id, timeout=20)
    assert not answer["result"].get("isError"), answer
    assert [m for m in agent.received if m.get("method") == "elicitation/create"] == []


# ------------------------------------------------- 2026-07-28: input_required

WIRE_NAMED = POLICY.replace(f'"{NAMED}"', '"latch-wire-test"')
MODERN = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "latch-wire-test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
}


@asynccontextmanager
async def modern_client(home: Home, name: str, person: Elicit) -> AsyncIterator[Client]:
    """The SDK's `Client`: it speaks 2026-07-28 through the shim and answers
    `input_required` results with its elicitation callback."""
    params = StdioServerParameters(command=SHIM[0], args=SHIM[1:], env=home.server_env())
    async with Client(
        params,
        elicitation_callback=person,
        client_info=types.Implementation(name=name, version="1.0"),
        read_timeout_seconds=CALL_TIMEOUT,
    ) as c:
        assert c.protocol_version == "2026-07-28"
        yield c


@pytest.mark.anyio
async def test_a_2026_client_approves_in_the_client_through_input_required(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon()
    person = Person("once")
    async with modern_client(home, NAMED, person) as c:
        with anyio.fail_after(40):
            result = result_json(await c.call_tool(TOOL, ARGS))
    assert not result.get("isError"), result
    assert [c["arguments"] for c in home.recorded(TOOL)] == [ARGS]
    assert len(person.questions) == 1
    question = person.questions[0]
    assert "send_email" in question.message and "bob@example.com" in question.message, question.message
    assert question.requested_schema["properties"]["answer"]["enum"] == ["once", "deny"]
    rows = answers(home)
    assert [(r["answered_by"], r["decision"].lower()) for r in rows] == [(f"in-client:{NAMED}", "allow")], rows
    assert home.pending() == []


@pytest.mark.anyio
async def test_a_2026_client_denies_in_the_client_through_input_required(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon()
    person = Person("deny")
    async with modern_client(home, NAMED, person) as c:
        with anyio.fail_after(40):
            result = result_json(await c.call_tool(TOOL, ARGS))
    assert result.get("isError") and result["content"][0]["text"].startswith("Latch blocked"), result
    assert home.recorded(TOOL) == []
    assert [(r["answered_by"], r["decision"].lower()) for r in answers(home)] == [(f"in-client:{NAMED}", "deny")]


def test_a_forged_reused_or_changed_approval_state_is_a_new_call(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    """Only the state Latch issued, once, for the same call, carries the
    answer: anything else is asked anew and does not run."""
    start_daemon(WIRE_NAMED)
    agent = wire(SHIM)
    once = {"latch-approval": {"action": "accept", "content": {"answer": "once"}}}

    def call(**extra: Any) -> dict[str, Any]:
        params = {"name": TOOL, "arguments": ARGS, "_meta": MODERN, **extra}
        return agent.response(agent.request("tools/call", params), timeout=20)["result"]

    def asked(result: dict[str, Any]) -> str:
        assert result["resultType"] == "input_required", result
        question = result["inputRequests"]["latch-approval"]
        assert question["method"] == "elicitation/create", question
        assert "latch approve" not in question["params"]["message"].lower(), question
        state = result["requestState"]
        assert state.startswith("latch-approval:"), state
        return state

    # The state issued, answered once, runs the call once.
    state = asked(call())
    done = call(requestState=state, inputResponses=once)
    assert not done.get("isError") and done.get("resultType") == "complete", done
    assert [c["arguments"] for c in home.recorded(TOOL)] == [ARGS]

    # Replayed, it is a new call: asked again, not run.
    state = asked(call(requestState=state, inputResponses=once))
    # A state the client made up: asked, not run.
    for forged in ["latch-approval:" + "0" * 32, "latch-continuation:" + "0" * 32, "anything"]:
        asked(call(requestState=forged, inputResponses=once))
    # The real state on another call: asked, and the state is used up…
    changed = dict(ARGS, to="mallory@example.com")
    asked(call(arguments=changed, requestState=state, inputResponses=once))
    # …so the genuine retry after it is asked too.
    asked(call(requestState=state, inputResponses=once))
    assert len(home.recorded(TOOL)) == 1, home.recorded(TOOL)
    rows = [r for r in answers(home) if r["answered_by"].startswith("in-client")]
    assert [r["decision"].lower() for r in rows] == ["allow"], rows


@pytest.mark.parametrize("in_latch", ["approve", "deny"])
def test_a_verdict_given_in_latch_while_the_question_is_open_decides_the_retry(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], in_latch: str
) -> None:
    """The first answer wins: given in Latch while the client shows the
    question, it decides the retry, whatever the client then answers."""
    start_daemon(WIRE_NAMED)
    agent = wire(SHIM)
    params = {"name": TOOL, "arguments": ARGS, "_meta": MODERN}
    first = agent.response(agent.request("tools/call", params), timeout=20)["result"]
    assert first["resultType"] == "input_required", first
    pending = home.wait_pending(tool=TOOL)
    if in_latch == "approve":
        home.approve(pending["id"])
    else:
        home.deny(pending["id"])
    assert wait_until(lambda: home.pending() == [], timeout=5), home.pending()
    # The client answers the opposite.
    opposite = "deny" if in_latch == "approve" else "once"
    retry = dict(
        params,
        requestState=first["requestState"],
        inputResponses={"latch-approval": {"action": "accept", "content": {"answer": opposite}}},
    )
    done = agent.response(agent.request("tools/call", retry), timeout=20)["result"]
    if in_latch == "approve":
        assert not done.get("isError"), done
        assert [c["arguments"] for c in home.recorded(TOOL)] == [ARGS]
    else:
        assert done.get("isError") and done["content"][0]["text"].startswith("Latch blocked"), done
        assert home.recorded(TOOL) == []
    assert [r for r in answers(home) if r["answered_by"].startswith("in-client")] == []
