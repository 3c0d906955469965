"""Bad input and broken peers: nothing unchecked runs, nothing hangs, nothing is lost.

Raw wire clients through `latch shim` in front of our test server, which
records every tools/call that reaches it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from typing import Any

from latchkit import Daemon, Home, WireClient, everything_cmd, our_server_cmd, via_shim, wait_until

SHIM = via_shim("ours", our_server_cmd())
# For tests that kill the daemon and start their own again.
SHIM_ALONE = via_shim("ours", our_server_cmd(), autostart=False)
META = "dev.latch/decision"


def call_tool(client: WireClient, name: str, args: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
    return client.call("tools/call", {"name": name, "arguments": args}, timeout=timeout)


def blocked_text(response: dict[str, Any]) -> str:
    result = response["result"]
    assert result["isError"] is True, response
    return result["content"][0]["text"]


def audit_kinds(home: Home) -> list[str]:
    return [row["kind"] for row in home.audit()]


def test_duplicate_method_is_refused_recorded_and_never_forwarded(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    client.send_line(
        '{"jsonrpc":"2.0","id":7,"method":"tools/list","method":"tools/call",'
        '"params":{"name":"create_payment","arguments":{"amount":1,"currency":"EUR","recipient":"x"}}}'
    )
    error = client.wait_for(lambda m: "error" in m and m.get("id") is None)
    assert error["error"]["code"] == -32600  # JSON, but not one request: Invalid Request
    assert "duplicate `method`" in error["error"]["message"]
    # The session goes on, and nothing reached the server.
    assert client.call("ping")["result"] == {}
    assert home.recorded() == []
    assert wait_until(lambda: "malformed" in audit_kinds(home), 5.0)


def test_garbage_lines_get_parse_errors_and_the_session_goes_on(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    client.initialize()
    for junk, code in [("not json", -32700), ('{"jsonrpc":"2.0",', -32700), ("42", -32600), ('{"a":1} {"b":2}', -32700)]:
        client.send_line(junk)
        error = client.wait_for(lambda m: "error" in m and m.get("id") is None)
        assert error["error"]["code"] == code, (junk, error)
    assert client.call("ping")["result"] == {}


def test_a_64_mib_message_passes_both_ways(home: Home, daemon: Daemon, wire: Callable[..., WireClient]) -> None:
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    payload = "x" * (64 * 1024 * 1024)
    response = call_tool(client, "echo", {"text": payload}, timeout=120.0)
    text = response["result"]["content"][0]["text"]
    assert json.loads(text) == {"text": payload}


def test_an_oversized_message_is_refused_without_killing_the_session(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    cmd = [SHIM[0], "shim", "--name", "ours", "--max-message-mib", "1", "--", *our_server_cmd()]
    client = wire(cmd)
    client.initialize()
    client.request("tools/call", {"name": "echo", "arguments": {"text": "y" * (2 * 1024 * 1024)}})
    error = client.wait_for(lambda m: "error" in m and m.get("id") is None)
    assert error["error"]["code"] == -32600
    assert "exceeds" in error["error"]["message"]
    assert client.call("ping")["result"] == {}
    assert home.recorded() == []


def test_each_tools_call_in_an_old_batch_is_decided(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    batch = [
        {"jsonrpc": "2.0", "id": 101, "method": "tools/call",
         "params": {"name": "read_file", "arguments": {"path": "/etc/hostname"}}},
        {"jsonrpc": "2.0", "id": 102, "method": "tools/call",
         "params": {"name": "create_payment", "arguments": {"amount": 5, "currency": "EUR", "recipient": "r"}}},
    ]
    client.send_line(json.dumps(batch))
    read = client.response(101)
    paid = client.response(102)
    assert "result" in read
    assert "Latch blocked" in blocked_text(paid)
    assert [c["name"] for c in home.recorded()] == ["read_file"]


def test_no_daemon_means_nothing_runs(home: Home, wire: Callable[..., WireClient]) -> None:
    cmd = [SHIM[0], "shim", "--name", "ours", "--no-autostart", "--", *our_server_cmd()]
    client = wire(cmd)
    client.initialize()
    client.call("tools/list")
    for name, args in [("read_file", {"path": "/etc/hostname"}), ("write_file", {"path": "/tmp/x", "content": "y"})]:
        text = blocked_text(call_tool(client, name, args))
        assert "no Latch daemon" in text, text
    assert home.recorded() == []


def test_reads_may_pass_offline_when_the_user_allows_it(home: Home, wire: Callable[..., WireClient]) -> None:
    cmd = [SHIM[0], "shim", "--name", "ours", "--no-autostart", "--allow-reads-offline", "--", *our_server_cmd()]
    client = wire(cmd)
    client.initialize()
    client.call("tools/list")
    assert "result" in call_tool(client, "read_file", {"path": "/etc/hostname"})
    assert "no Latch daemon" in blocked_text(call_tool(client, "write_file", {"path": "/tmp/x", "content": "y"}))
    assert [c["name"] for c in home.recorded()] == ["read_file"]


def test_daemon_killed_while_a_call_is_held(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    # Started by hand: the fixture's daemons must exit cleanly, this one is killed.
    daemon = Daemon(home)
    daemon.wait_ready()
    client = wire(SHIM_ALONE)
    client.initialize()
    client.call("tools/list")
    request = client.request("tools/call", {"name": "run_command", "arguments": {"command": "echo hi"}})
    pending = home.wait_pending(tool="run_command")
    os.kill(daemon.pid, signal.SIGKILL)
    assert daemon.stop() == -signal.SIGKILL
    # The client gets an answer at once: the call did not run.
    text = blocked_text(client.response(request, timeout=10.0))
    assert "did not run" in text, text
    assert home.recorded() == []
    # A new daemon still knows the approval, and the shim reconnects to it.
    start_daemon()
    assert [p["id"] for p in home.pending()] == [pending["id"]]
    home.approve(pending["id"])

    def retried() -> dict[str, Any] | None:
        # Until the shim has reconnected, it refuses calls (fail closed).
        answer = call_tool(client, "run_command", {"command": "echo hi"})
        return None if "no Latch daemon" in json.dumps(answer) else answer

    retry = wait_until(retried, 10.0, interval=0.2)
    assert "result" in retry and not retry["result"].get("isError"), retry
    assert [c["name"] for c in home.recorded()] == ["run_command"]


def test_daemon_stopped_while_a_call_is_held_answers_it(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    daemon = start_daemon()
    client = wire(SHIM_ALONE)
    client.initialize()
    client.call("tools/list")
    request = client.request("tools/call", {"name": "run_command", "arguments": {"command": "echo hi"}})
    home.wait_pending(tool="run_command")
    assert daemon.stop() == 0
    text = blocked_text(client.response(request, timeout=10.0))
    assert "shutting down" in text or "went away" in text, text
    assert home.recorded() == []


def test_the_deny_result_carries_a_machine_readable_verdict(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    response = call_tool(client, "create_payment", {"amount": 5, "currency": "EUR", "recipient": "r"})
    verdict = response["result"]["_meta"][META]
    assert verdict["decision"] == "deny"
    assert verdict["class"] == "TRANSFER_VALUE"
    assert verdict["reason"]
    assert blocked_text(response).startswith("Latch blocked create_payment: ")



def test_progress_only_increases_across_a_hold_and_the_call(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    # Keep-alive progress while the call is held shares the client's token
    # with the server's own progress once it runs (server-everything counts
    # its steps from 1, like the keep-alive): the client must still see
    # progress only ever increase. The tool is EXECUTE by its name: it asks.
    client = wire(via_shim("everything", everything_cmd()))
    client.initialize()
    client.call("tools/list")
    token = "tok-1"
    request = client.request(
        "tools/call",
        {
            "name": "trigger-long-running-operation",
            "arguments": {"duration": 1, "steps": 3},
            "_meta": {"progressToken": token},
        },
    )
    first = client.wait_for(lambda m: m.get("method") == "notifications/progress")
    assert first["params"]["progressToken"] == token
    assert "waiting for approval" in first["params"].get("message", ""), first
    home.approve(home.wait_pending(tool="trigger-long-running-operation")["id"])
    response = client.response(request, timeout=15.0)
    assert not response["result"].get("isError"), response
    seen = [first] + [m for m in client.received if m.get("method") == "notifications/progress"]
    values = [m["params"]["progress"] for m in seen if m["params"]["progressToken"] == token]
    assert len(values) >= 3, seen
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_audit_verify_catches_an_edited_row(home: Home, daemon: Daemon, wire: Callable[..., WireClient]) -> None:
    import sqlite3

    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    call_tool(client, "read_file", {"path": "/etc/hostname"})
    call_tool(client, "create_payment", {"amount": 5, "currency": "EUR", "recipient": "r"})
    client.close()
    ok = home.latch("audit", "verify")
    assert "intact" in ok.stdout, ok.stdout
    db = home.latch_home / "audit.db"
    with sqlite3.connect(db) as conn:
        (row,) = conn.execute("SELECT id FROM events WHERE tool = 'create_payment'").fetchone()
        conn.execute("UPDATE events SET decision = 'allow' WHERE id = ?", (row,))
    broken = home.latch("audit", "verify", check=False)
    assert broken.returncode == 1, broken
    assert f"row {row}" in broken.stdout and "changed" in broken.stdout, broken.stdout


def test_every_call_that_reached_the_server_has_its_row_after_a_sigkill(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    # A burst of calls, the daemon killed in the middle of it: whatever the
    # server received was recorded first (rows are committed before a call
    # is forwarded).
    daemon = Daemon(home)
    daemon.wait_ready()
    client = wire(SHIM_ALONE)
    client.initialize()
    client.call("tools/list")
    ids = [client.request("tools/call", {"name": "echo", "arguments": {"n": i}}) for i in range(300)]
    wait_until(lambda: len(home.recorded()) >= 20, 10.0, interval=0.01)
    os.kill(daemon.pid, signal.SIGKILL)
    assert daemon.stop() == -signal.SIGKILL
    for request_id in ids:
        client.response(request_id, timeout=15.0)  # every call is answered, one way or the other
    reached = {c["arguments"]["n"] for c in home.recorded()}
    assert reached, "nothing reached the server before the kill"
    restarted = Daemon(home)
    restarted.wait_ready()
    try:
        rows = home.latch_json("audit", "--json", "--limit", "1000", "--tool", "echo")
        logged = {json.loads(json.dumps(r["args"]))["n"] for r in rows if r["kind"] == "call"}
        assert reached <= logged, sorted(reached - logged)
        assert "intact" in home.latch("audit", "verify").stdout
    finally:
        assert restarted.stop() == 0


def test_audit_export_streams_the_log(home: Home, daemon: Daemon, wire: Callable[..., WireClient]) -> None:
    import csv
    import io

    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    call_tool(client, "read_file", {"path": "/etc/hostname"})
    note = str(home.path / "note.txt")
    call_tool(client, "write_file", {"path": note, "content": 'x, "y" token=sk-abcdefghijklmnopqrstuv'})
    client.close()
    lines = home.latch("audit", "export").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    calls = [r for r in rows if r["kind"] == "call"]
    assert [r["tool"] for r in calls] == ["read_file", "write_file"]
    assert "sk-abcdefghijklmnopqrstuv" not in "\n".join(lines), "secrets never leave redacted"
    table = list(csv.DictReader(io.StringIO(home.latch("audit", "export", "--format", "csv", "--since", "1h").stdout)))
    assert [r["tool"] for r in table if r["kind"] == "call"] == ["read_file", "write_file"]
    written = next(r for r in table if r["tool"] == "write_file")
    assert json.loads(written["args"])["content"].startswith('x, "y" token=')
    # Piped into `head`, it prints no error.
    out = subprocess.run(
        f"'{SHIM[0]}' audit export | head -1", shell=True, env=home.cli_env(), capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and out.stdout.count("\n") == 1 and "Broken pipe" not in out.stderr, out


def test_a_consumed_single_use_grant_stays_consumed_after_a_sigkill(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    home.write_policy("[approvals]\nhold_seconds = 1\n")
    daemon = Daemon(home)
    daemon.wait_ready()
    client = wire(SHIM_ALONE)
    client.initialize()
    client.call("tools/list")
    args = {"command": "make deploy"}
    first = call_tool(client, "run_command", args)
    assert first["result"]["_meta"][META]["status"] == "pending", first
    home.approve(first["result"]["_meta"][META]["approval_id"])
    ran = call_tool(client, "run_command", args)
    assert not ran["result"].get("isError"), ran
    os.kill(daemon.pid, signal.SIGKILL)
    assert daemon.stop() == -signal.SIGKILL
    restarted = Daemon(home)
    restarted.wait_ready()
    try:

        def retried() -> dict[str, Any] | None:
            answer = call_tool(client, "run_command", args)
            return None if "no Latch daemon" in json.dumps(answer) else answer

        again = wait_until(retried, 10.0, interval=0.2)
        assert again["result"].get("isError"), again
        assert again["result"]["_meta"][META].get("status") == "pending", again
        assert [c["name"] for c in home.recorded()] == ["run_command"]
    finally:
        assert restarted.stop() == 0


def test_a_number_beyond_any_machine_is_refused_and_never_forwarded(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    # JSON allows 1e400; no parser that reads it as a number can hold it.
    # The daemon cannot judge such arguments, so even a call that would be
    # allowed must not run, and its client hears why instead of waiting.
    client = wire(SHIM)
    client.initialize()
    client.send_line(
        '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo",'
        '"arguments":{"text":"hi","times":1e400}}}'
    )
    response = client.wait_for(lambda m: m.get("id") == 9, timeout=10)
    text = blocked_text(response)
    assert "arguments are JSON that Latch cannot read" in text and "number out of range" in text, text
    assert client.call("ping")["result"] == {}
    assert home.recorded() == []
