"""Faults between `latch shim --url` and a remote server, each answered to
the client as a JSON-RPC error for the request that failed (nothing hangs),
and the guard in front of the HTTP side: a denied call never reaches the
server, headers are mirrored from the decided body, configured secrets are
expanded inside the bridge only."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from latchkit import Daemon, Home, WireClient, processes_with_env
from remotekit import FaultServer, free_port, via_url

ALLOW_ALL = '[[rule]]\nserver = "*"\ntool = "*"\neffect = "allow"\n'
DENY_ECHO = '[[rule]]\nserver = "fault"\ntool = "echo"\neffect = "deny"\n' + ALLOW_ALL


@pytest.fixture
def fault(home: Home) -> Iterator[FaultServer]:
    with FaultServer(home) as server:
        yield server


@pytest.fixture
def allow_all(start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon(policy=ALLOW_ALL)


def call(client: WireClient, tool: str, args: dict | None = None, timeout: float = 10.0) -> dict:
    return client.call("tools/call", {"name": tool, "arguments": args or {}}, timeout=timeout)


def error_text(answer: dict) -> str:
    assert "error" in answer, answer
    return answer["error"]["message"]


def connected(wire: Callable[..., WireClient], fault: FaultServer, *extra: str, env: dict | None = None) -> WireClient:
    client = wire(via_url("fault", fault.url("/mcp"), *extra), env)
    client.initialize()
    return client


def test_calls_answer_and_the_session_headers_are_sent(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    assert call(client, "echo", {"message": "hi"})["result"]["content"][0]["text"] == "hi"
    assert client.close() == 0
    reqs = fault.requests()
    posts = [r for r in reqs if r["http"] == "POST"]
    init, rest = posts[0], posts[1:]
    assert init["body"]["method"] == "initialize" and "mcp-session-id" not in init["headers"]
    assert "application/json" in init["headers"]["accept"] and "text/event-stream" in init["headers"]["accept"]
    for r in rest:
        assert r["headers"]["mcp-session-id"] == "sess-7f3a"
        assert r["headers"]["mcp-protocol-version"] == "2025-11-25"
    # The GET stream was asked for (405: none), and the session ended on close.
    assert any(r["http"] == "GET" for r in reqs)
    assert reqs[-1]["http"] == "DELETE" and reqs[-1]["headers"]["mcp-session-id"] == "sess-7f3a"


def test_mcp_method_name_and_param_headers_mirror_the_body(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    client.call("tools/list")
    call(client, "region", {"region": "eu-wëst", "body": "x"})
    call(client, "echo", {"message": "plain"})
    client.close()
    region, echo = fault.calls()
    assert region["headers"]["mcp-method"] == "tools/call"
    assert region["headers"]["mcp-name"] == "region"
    assert region["headers"]["mcp-param-region"] == "=?base64?ZXUtd8Orc3Q=?="
    assert not any(k.startswith("mcp-param-") for k in echo["headers"])
    listing = next(r for r in fault.requests() if isinstance(r["body"], dict) and r["body"].get("method") == "tools/list")
    assert listing["headers"]["mcp-method"] == "tools/list" and "mcp-name" not in listing["headers"]


def test_a_denied_call_never_reaches_the_server(
    start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    start_daemon(policy=DENY_ECHO)
    client = connected(wire, fault)
    answer = call(client, "echo", {"message": "must not arrive"})
    assert "error" in answer or answer["result"].get("isError"), answer
    assert call(client, "region", {"region": "x"})["result"]["content"][0]["text"] == "region x"
    client.close()
    assert [c["body"]["params"]["name"] for c in fault.calls()] == ["region"]
    assert "must not arrive" not in fault.record_path.read_text()


def test_configured_headers_are_expanded_inside_the_bridge_only(
    home: Home, allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    secret = "tok-" + str(time.time_ns())
    client = connected(
        wire, fault, "--header", "Authorization: Bearer ${FAULT_TOKEN}", "--header", "X-Team: blue",
        env={"FAULT_TOKEN": secret},
    )
    call(client, "echo", {"message": "with headers"})
    # While it runs, no process of this test shows the secret on its command line.
    procs = processes_with_env("LATCH_HOME", str(home.latch_home))
    assert procs and not any(secret in p.cmdline for p in procs), procs
    assert any("${FAULT_TOKEN}" in p.cmdline for p in procs)
    client.close()
    for r in fault.requests():
        assert r["headers"]["authorization"] == f"Bearer {secret}"
        assert r["headers"]["x-team"] == "blue"
    assert secret not in home.dump_logs()


def test_an_unset_header_variable_is_an_error_that_names_it(
    home: Home, allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = wire(via_url("fault", fault.url("/mcp"), "--header", "Authorization: Bearer ${NOT_SET_ANYWHERE}"))
    assert client.eof(timeout=15)
    assert "NOT_SET_ANYWHERE" in client.log()
    client.close()
    assert fault.requests() == []


def test_an_unreachable_server_answers_each_request_with_an_error(
    allow_all: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(via_url("fault", f"http://127.0.0.1:{free_port()}/mcp"))
    started = time.monotonic()
    answer = client.call(
        "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    )
    assert time.monotonic() - started < 10
    msg = error_text(answer)
    assert "could not be reached" in msg and '"fault"' in msg, msg
    assert "latch approve" not in msg
    client.close()


def test_http_errors_answer_the_request_that_failed(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    assert "HTTP 500" in error_text(call(client, "fail500"))
    assert "database on fire" in error_text(call(client, "fail500"))
    # The session goes on.
    assert call(client, "echo", {"message": "still here"})["result"]["content"][0]["text"] == "still here"
    client.close()


def test_a_401_mid_session_is_answered_not_hung(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    msg = error_text(call(client, "auth401"))
    assert "401" in msg and "authoriz" in msg, msg
    assert "latch auth" not in msg
    # Retried at most once (the OAuth session could not help): one POST.
    assert len([c for c in fault.calls() if c["body"]["params"]["name"] == "auth401"]) == 1
    assert call(client, "echo", {"message": "after"})["result"]["content"][0]["text"] == "after"
    client.close()


def test_a_session_the_server_ended_is_renewed_transparently(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    """404 to a request in a session: the bridge starts a new session with the
    client's own initialize and initialized, and sends the request once more;
    the client sees only its answer (no second initialize result)."""
    client = connected(wire, fault)
    call(client, "end_session")
    answer = call(client, "echo", {"message": "after"})
    assert answer["result"]["content"][0]["text"] == "after", answer
    client.close()
    assert not any("protocolVersion" in json.dumps(m) for m in client.received), client.received
    posts = [r for r in fault.requests() if r["http"] == "POST"]
    inits = [r for r in posts if r["body"].get("method") == "initialize"]
    assert len(inits) == 2
    # The same initialize params, under the bridge's own id.
    assert inits[1]["body"]["params"] == inits[0]["body"]["params"]
    assert inits[1]["body"]["id"] != inits[0]["body"]["id"]
    assert "mcp-session-id" not in inits[1]["headers"]
    echoes = [r for r in fault.calls() if r["body"]["params"]["name"] == "echo"]
    assert [e["headers"]["mcp-session-id"] for e in echoes] == ["sess-7f3a", "sess-2"]
    after = posts[posts.index(inits[1]) + 1]
    assert after["body"].get("method") == "notifications/initialized"
    assert after["headers"]["mcp-session-id"] == "sess-2"


def test_a_session_that_cannot_be_renewed_is_a_clear_error(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    call(client, "end_for_good")
    msg = error_text(call(client, "echo", {"message": "x"}))
    assert "ended the session (HTTP 404)" in msg and "new one could not be started" in msg, msg
    # Once per message, not a loop: the next message tries once again.
    msg = error_text(call(client, "echo", {"message": "y"}))
    assert "new one could not be started" in msg, msg
    client.close()
    inits = [r for r in fault.requests() if r["http"] == "POST" and r["body"].get("method") == "initialize"]
    assert len(inits) == 3
    assert len([c for c in fault.calls() if c["body"]["params"]["name"] == "echo"]) == 2


def test_a_stream_dropped_mid_answer_is_resumed_with_last_event_id(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    answer = call(client, "drop")
    assert answer.get("result", {}).get("content", [{}])[0].get("text") == "resumed answer", (answer, client.received)
    # The event before the cut reached the client too, once.
    logs = [m for m in client.received if m.get("method") == "notifications/message"]
    assert len(logs) == 1, client.received
    resumed = [r for r in fault.requests() if r["http"] == "GET" and "last-event-id" in r["headers"]]
    assert [r["headers"]["last-event-id"] for r in resumed] == [f"ev-{answer['id']}"]
    client.close()


def test_a_dropped_stream_that_cannot_be_resumed_is_an_error(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    assert "cannot be resumed" in error_text(call(client, "drop_noid"))
    client.close()


def test_a_slow_server_is_waited_for(allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer) -> None:
    client = connected(wire, fault)
    answer = call(client, "slow", {"seconds": 4}, timeout=30)
    assert answer["result"]["content"][0]["text"] == "slow done"
    client.close()


def test_a_server_that_is_neither_transport_is_an_error_naming_both(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    # /nowhere answers POST with 400 and GET with 405: not streamable, not SSE.
    client = wire(via_url("fault", fault.url("/nowhere")))
    answer = client.call(
        "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    )
    msg = error_text(answer)
    assert "streamable HTTP" in msg and "HTTP+SSE" in msg, msg
    assert "error" in client.call("tools/list")
    client.close()


def test_an_sse_endpoint_on_another_origin_is_refused(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    # The server names http://localhost:PORT/… while it was reached as
    # 127.0.0.1: another origin, so nothing (and no header) is sent there.
    client = wire(via_url("fault", fault.url("/foreign-sse"), "--transport", "sse", "--header", "X-Key: k"))
    answer = client.call(
        "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    )
    assert "another origin" in error_text(answer)
    client.close()
    assert [r["http"] for r in fault.requests()] == ["GET"]


def test_a_slow_call_does_not_hold_up_the_next_one(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    slow = client.request("tools/call", {"name": "slow", "arguments": {"seconds": 3}})
    fast = client.request("tools/call", {"name": "echo", "arguments": {"message": "fast"}})
    first = client.wait_for(lambda m: m.get("id") in (slow, fast), timeout=10)
    assert first["id"] == fast, first
    assert client.response(slow, timeout=15)["result"]["content"][0]["text"] == "slow done"
    client.close()


def test_url_and_a_command_together_are_a_usage_error(home: Home) -> None:
    import subprocess

    from latchkit import LATCH_BIN

    for args in (["--url", "http://127.0.0.1:1/mcp", "--", "cat"], ["--header", "A: b", "--", "cat"]):
        run = subprocess.run(
            [LATCH_BIN, "shim", "--name", "x", *args], env=home.cli_env(), capture_output=True, text=True, timeout=10
        )
        assert run.returncode == 2, (args, run.stderr)


def test_server_messages_reach_the_client_byte_for_byte(
    home: Home, allow_all: Daemon, fault: FaultServer
) -> None:
    import subprocess

    from remote_fault_server import RAW_RESULT

    proc = subprocess.Popen(
        via_url("fault", fault.url("/mcp")),
        env=home.agent_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdin and proc.stdout
        init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
        lines = [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "raw/json"},
            {"jsonrpc": "2.0", "id": 3, "method": "raw/sse"},
        ]
        got = []
        for m in lines:
            proc.stdin.write((json.dumps(m) + "\n").encode())
            proc.stdin.flush()
            if "id" in m:
                got.append(proc.stdout.readline())
        assert got[1] == RAW_RESULT.replace(b"ID", b"2") + b"\n"
        assert got[2] == RAW_RESULT.replace(b"ID", b"3") + b"\n"
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("mode", "path"), [("streamableHttp", "/mcp"), ("sse", "/sse")])
def test_a_server_that_dies_mid_call_is_answered_with_an_error(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], mode: str, path: str
) -> None:
    from remotekit import everything_http

    start_daemon(policy=ALLOW_ALL)
    server = everything_http(home, mode)
    try:
        client = wire(via_url("everything", server.url(path)))
        client.initialize()
        args = {"duration": 30, "steps": 30}
        params = {"name": "trigger-long-running-operation", "arguments": args, "_meta": {"progressToken": "p1"}}
        call_id = client.request("tools/call", params)
        # The call is running on the server: its first progress came.
        client.wait_for(lambda m: m.get("method") == "notifications/progress", timeout=15)
    finally:
        server.stop()
    started = time.monotonic()
    answer = client.response(call_id, timeout=20)
    assert time.monotonic() - started < 15
    assert "error" in answer, answer
    client.close()


def test_a_stateless_request_names_its_own_protocol_version(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    client.call("tools/call", {"name": "echo", "arguments": {"message": "v"}, "_meta": meta})
    client.close()
    (echo,) = fault.calls()
    assert echo["headers"]["mcp-protocol-version"] == "2026-07-28"


def test_an_endless_error_body_is_not_read_to_its_end(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = connected(wire, fault)
    msg = error_text(call(client, "fail500_endless", timeout=15))
    assert "HTTP 500" in msg and "endless failure" in msg, msg
    assert call(client, "echo", {"message": "alive"})["result"]["content"][0]["text"] == "alive"
    client.close()


def test_an_sse_stream_that_never_names_its_endpoint_is_an_error(
    allow_all: Daemon, wire: Callable[..., WireClient], fault: FaultServer
) -> None:
    client = wire(via_url("fault", fault.url("/noisy-sse"), "--transport", "sse"))
    answer = client.call(
        "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    )
    assert "did not name its endpoint" in error_text(answer)
    client.close()
