"""Processes around `latch shim`: a server that crashes, a client that goes
away, a daemon that is missing or told to stop. Nothing hangs and nothing is
left running (the `home` fixture checks the latter after every test)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from latchkit import (
    Daemon,
    Home,
    WireClient,
    everything_cmd,
    mcp_session,
    our_server_cmd,
    text_of,
    via_shim,
    wait_until,
)

SHIM = via_shim("test", our_server_cmd())


def others(home: Home, daemon: Daemon) -> list[str]:
    """Processes of this test other than the daemon."""
    return [str(p) for p in home.processes() if p.pid != daemon.pid]


def test_server_crash_mid_call_answers_every_pending_call_with_an_error(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    client.initialize()
    # Latch decides a tool it has seen described; a never-listed tool whose
    # name says nothing would ask (no_evidence).
    client.call("tools/list")
    slow_id = client.request("tools/call", {"name": "slow", "arguments": {"ms": 30000}})
    crash_id = client.request("tools/call", {"name": "crash", "arguments": {}})
    for request_id in (crash_id, slow_id):
        answer = client.response(request_id, timeout=10)
        assert "error" in answer, answer
        assert isinstance(answer["error"].get("code"), int) and answer["error"].get("message"), answer
    assert [c["name"] for c in home.recorded()] == ["slow", "crash"]


@pytest.mark.anyio
async def test_server_crash_reaches_an_sdk_client_as_an_error_not_a_hang(home: Home, daemon: Daemon) -> None:
    async with mcp_session(home, SHIM) as session:
        await session.list_tools()
        with anyio.fail_after(15):
            with pytest.raises(MCPError):
                await session.call_tool("crash", {})


def test_client_disconnect_mid_call_leaves_no_process_behind(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    client.request("tools/call", {"name": "slow", "arguments": {"ms": 60000}})
    assert wait_until(lambda: home.recorded("slow"), 10)
    # The agent dies: both pipes close under the shim.
    client.close_stdin()
    assert client.proc.stdout is not None
    client.proc.stdout.close()
    assert client.proc.wait(10) is not None
    assert wait_until(lambda: not others(home, daemon), 10), others(home, daemon)


def test_client_closing_stdin_stops_a_server_that_ignores_eof(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    # server-everything keeps running after stdin EOF while its roots/list is
    # unanswered: the shim must escalate to signals.
    client = wire(via_shim("everything", everything_cmd()))
    client.initialize(capabilities={"roots": {"listChanged": True}})
    client.wait_for(lambda m: m.get("method") == "roots/list", timeout=10)
    client.close_stdin()
    assert client.eof(timeout=15), "the shim kept its stdout open after the client left"
    assert client.proc.wait(10) is not None
    assert wait_until(lambda: not others(home, daemon), 10), others(home, daemon)


@pytest.mark.anyio
async def test_client_leaving_while_a_call_is_held_leaves_no_process_behind(home: Home, daemon: Daemon) -> None:
    async with mcp_session(home, SHIM) as session:
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.call_tool, "run_command", {"command": "make deploy"})
            await anyio.to_thread.run_sync(lambda: home.wait_pending(tool="run_command"))
            tg.cancel_scope.cancel()
    # stdio_client has closed the shim's stdin (then signalled its group).
    assert await anyio.to_thread.run_sync(lambda: wait_until(lambda: not others(home, daemon), 10)), others(
        home, daemon
    )
    assert home.recorded() == []


@pytest.mark.anyio
async def test_shim_starts_a_daemon_when_none_answers(home: Home) -> None:
    assert home.latch("status", "--json", check=False).returncode != 0
    async with mcp_session(home, SHIM) as session:
        assert text_of(await session.call_tool("echo", {"a": 1})) == '{"a":1}'
        paid = await session.call_tool("create_payment", {"amount": 1, "currency": "EUR", "recipient": "x"})
        assert paid.is_error
    assert home.latch("status", "--json", check=False).returncode == 0
    daemons = [p for p in home.processes() if " daemon" in p.cmdline]
    assert len(daemons) == 1, home.processes()
    os.kill(daemons[0].pid, signal.SIGTERM)
    assert wait_until(lambda: not home.processes(), 10), home.processes()
    assert [c["name"] for c in home.recorded()] == ["echo"]


def test_daemon_exits_0_on_sigterm_and_removes_its_socket(home: Home) -> None:
    daemon = Daemon(home)
    try:
        daemon.wait_ready()
        assert home.socket.exists()
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(5) == 0, daemon.log()
    finally:
        daemon.stop()
    assert not home.socket.exists()
    assert home.latch("status", "--json", check=False).returncode != 0


def test_malformed_client_input_gets_a_parse_error_and_the_session_goes_on(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    client.initialize()
    client.send_line("{not json")
    error = client.wait_for(lambda m: "error" in m)
    assert error["id"] is None and error["error"]["code"] == -32700, error
    answer = client.call("tools/call", {"name": "echo", "arguments": {"still": "here"}})
    assert answer["result"]["content"][0]["text"] == '{"still":"here"}'


def test_many_shims_connecting_at_once_leave_the_daemon_few_threads(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    # Each new shim's server environment is read off the daemon's async
    # thread; 40 at once once grew the daemon to a thread (and an allocator
    # arena) per shim, kept for as long as any work kept waking them.
    import threading

    tasks = f"/proc/{daemon.pid}/task"
    peak = [len(os.listdir(tasks))]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], len(os.listdir(tasks)))
            done.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        clients = [wire(via_shim(f"s{i}", our_server_cmd())) for i in range(40)]
        for c in clients:
            c.initialize()
        # All at once, as an agent starting with its servers does: each
        # listing is compared and each shim given its lease.
        listings = [(c, c.request("tools/list")) for c in clients]
        for c, request in listings:
            c.response(request, timeout=30)
        calls = [(c, c.request("tools/call", {"name": "echo", "arguments": {"n": 1}})) for c in clients]
        for c, request in calls:
            answer = c.response(request, timeout=30)
            assert not answer["result"].get("isError"), answer
    finally:
        done.set()
        sampler.join()
    # The async thread, the audit writer and checkpointer, the bounded
    # blocking pool (16): never one per shim.
    assert peak[0] <= 16 + 4, f"the daemon grew to {peak[0]} threads for 40 shims"
