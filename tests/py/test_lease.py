"""Issue 16: a plain allow decided in the shim under the daemon's lease.

The shim decides a call itself only while the epoch file holds its lease's
epoch, only for what the policy allows from its own text with nothing of
the daemon's state involved, and only once the call's row is appended to
its journal. These tests drive the real binaries and check the record
(`latch audit`), what reached the server, and what the agent was told.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

SHIM = via_shim("ours", our_server_cmd())
# For tests that kill the daemon: the shim starts none of its own.
SHIM_ALONE = via_shim("ours", our_server_cmd(), autostart=False)
SERVERS = Path(__file__).resolve().parent.parent / "fixtures" / "threat_servers"


def lease_dir(home: Home) -> Path:
    return home.latch_home / "lease"


def echo(client: WireClient, text: str, timeout: float = 10.0) -> dict[str, Any]:
    return client.call("tools/call", {"name": "echo", "arguments": {"text": text}}, timeout=timeout)


def denied(response: dict[str, Any]) -> bool:
    return bool(response.get("result", {}).get("isError")) or "error" in response


def leased(home: Home) -> bool:
    """A shim has taken up a lease: it made its journal after a call."""
    return any(lease_dir(home).glob("*.jsonl"))


def call_rows(home: Home, tool: str = "echo") -> list[dict[str, Any]]:
    return [r for r in home.audit() if r["kind"] == "call" and r["tool"] == tool]


def local_ids(home: Home) -> dict[str, str]:
    """Committed rows a shim decided: redacted arguments (JSON text) -> call id."""
    with sqlite3.connect(home.latch_home / "audit.db") as conn:
        rows = conn.execute("SELECT args, detail FROM events WHERE kind = 'call' AND detail LIKE 'lease call %'")
        return {args: detail.removeprefix("lease call ") for args, detail in rows}


def local(home: Home, text: str) -> bool:
    return json.dumps({"text": text}, separators=(",", ":")) in local_ids(home)


def ready(home: Home, client: WireClient) -> None:
    """Initialised, tools listed, and the lease in place (a first call made
    locally proves it: its row's detail names the lease)."""
    client.initialize()
    client.call("tools/list")

    def warm() -> bool:
        echo(client, "warm-up")
        home.latch("audit", "--json", "--limit", "1")  # the daemon commits what it has
        return local(home, "warm-up")

    assert wait_until(warm, 10.0, interval=0.1), "no call was decided under a lease"


class Events:
    """A console's event stream from the daemon's socket."""

    def __init__(self, home: Home) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(home.socket))
        self.stream = self.sock.makefile("rwb")
        self._send({"hello": {"protocol": 1, "role": "console", "name": "test", "pid": os.getpid()}})
        self._recv()
        self._send({"subscribe": {"req": 1}})

    def _send(self, msg: dict[str, Any]) -> None:
        self.stream.write(json.dumps(msg).encode() + b"\n")
        self.stream.flush()

    def _recv(self) -> dict[str, Any]:
        line = self.stream.readline()
        assert line, "the daemon closed the connection"
        return json.loads(line)

    def wait(self, name: str) -> dict[str, Any]:
        while True:
            msg = self._recv()
            event = msg.get("event", {}).get("event")
            if isinstance(event, dict) and event.get("kind") == name:
                return event

    def close(self) -> None:
        self.sock.close()


def test_a_locally_allowed_call_is_recorded_and_the_chain_verifies(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    ready(home, client)
    response = echo(client, "decided in the shim")
    assert not denied(response), response
    assert "decided in the shim" in json.dumps(response)
    # The row rides along to the daemon with the next frame (or after 3 ms).
    assert wait_until(lambda: [r for r in call_rows(home) if r["args"] == {"text": "decided in the shim"}], 5.0)
    rows = [r for r in call_rows(home) if r["args"] == {"text": "decided in the shim"}]
    assert len(rows) == 1, rows
    assert rows[0]["decision"] == "allow"
    assert local(home, "decided in the shim"), "the row says the shim decided it"
    assert wait_until(lambda: [r for r in call_rows(home) if r["args"] == {"text": "decided in the shim"}][0].get("outcome") == "ok", 5.0)
    export = home.latch("audit", "export").stdout
    assert "decided in the shim" in export
    assert "intact" in home.latch("audit", "verify").stdout


def test_a_local_allow_is_in_the_log_after_the_daemon_is_killed_before_it_heard_of_it(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    daemon = Daemon(home)
    daemon.wait_ready()
    client = wire(SHIM_ALONE)
    ready(home, client)
    # The daemon hears nothing more: the row is only in the shim's journal.
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        response = echo(client, "only the shim knows")
        assert not denied(response), response
        assert home.recorded("echo")[-1]["arguments"] == {"text": "only the shim knows"}
        journals = b"".join(p.read_bytes() for p in lease_dir(home).glob("*.jsonl"))
        assert b"only the shim knows" in journals
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
    assert daemon.stop() == -signal.SIGKILL
    restarted = Daemon(home)
    restarted.wait_ready()
    try:
        rows = [r for r in call_rows(home) if r["args"] == {"text": "only the shim knows"}]
        assert [r["decision"] for r in rows] == ["allow"], rows
        assert local(home, "only the shim knows")
        assert "intact" in home.latch("audit", "verify").stdout
    finally:
        client.close()
        assert restarted.stop() == 0
    again = Daemon(home)
    again.wait_ready()
    try:
        rows = [r for r in call_rows(home) if r["args"] == {"text": "only the shim knows"}]
        assert len(rows) == 1, rows
    finally:
        assert again.stop() == 0


DENY_ECHO = """
[[rule]]
name = "no-echo"
server = "ours"
tool = "echo"
effect = "deny"
"""


def test_a_tightened_policy_applies_to_the_very_next_call(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    ready(home, client)
    events = Events(home)
    try:
        home.write_policy(DENY_ECHO)
        events.wait("policy_reloaded")
    finally:
        events.close()
    response = echo(client, "after the reload")
    assert denied(response), response
    assert "no-echo" in json.dumps(response)
    assert not [c for c in home.recorded("echo") if c["arguments"] == {"text": "after the reload"}]


def test_stop_denies_the_next_call(home: Home, daemon: Daemon, wire: Callable[..., WireClient]) -> None:
    client = wire(SHIM)
    ready(home, client)
    home.latch("stop")
    response = echo(client, "while stopped")
    assert denied(response), response
    assert not [c for c in home.recorded("echo") if c["arguments"] == {"text": "while stopped"}]


def test_a_call_naming_a_path_is_decided_by_the_daemon(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    ready(home, client)
    for args in ({"text": "~/.ssh/id_rsa"}, {"text": "see /etc/passwd"}, {"path": "notes"}):
        response = client.call("tools/call", {"name": "echo", "arguments": args})
        assert not denied(response), response
    assert wait_until(lambda: [r for r in call_rows(home) if r["args"] == {"path": "notes"}], 5.0)
    decided_here = local_ids(home)
    for args in ({"text": "~/.ssh/id_rsa"}, {"text": "see /etc/passwd"}, {"path": "notes"}):
        assert json.dumps(args, separators=(",", ":")) not in decided_here, args
        assert [r for r in call_rows(home) if r["args"] == args], args


def test_a_call_the_self_protection_reads_is_denied_by_the_daemon(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    ready(home, client)
    policy = str(home.latch_home / "policy.toml")
    response = client.call("tools/call", {"name": "echo", "arguments": {"text": policy}})
    assert denied(response), response
    assert not [c for c in home.recorded("echo") if c["arguments"] == {"text": policy}]


LIMITED = """
[[limits]]
name = "echoes"
server = "ours"
tool = "echo"
per_minute = 2
"""


def test_a_rate_limited_tool_is_not_decided_in_the_shim(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=LIMITED)
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    answers = [echo(client, f"n{i}") for i in range(4)]
    assert [denied(a) for a in answers] == [False, False, True, True], answers
    assert not local_ids(home)


RUG_PULL = via_shim("facts", [sys.executable, str(SERVERS / "rug_pull.py")])
FACT = "get_fact_of_the_day"


@contextmanager
def rug_pulled(home: Home, wire: Callable[..., WireClient], pin: str | None = None) -> Iterator[WireClient]:
    """The rug-pull server behind a shim and a daemon of its own (asks held
    0.3 s): three calls, then the server changes its tool's description and
    says so, and the client lists again."""
    daemon = Daemon(home, env={"LATCH_HOLD_MS": "300"})
    daemon.wait_ready()
    if pin is not None:
        home.set_pin(pin)
    client = wire(RUG_PULL)
    try:
        client.initialize()
        client.call("tools/list")
        for i in range(3):
            assert not denied(client.call("tools/call", {"name": FACT, "arguments": {"n": f"{i}"}})), i
        client.wait_for(lambda m: m.get("method") == "notifications/tools/list_changed")
        client.call("tools/list")
        yield client
    finally:
        client.close()
        assert daemon.stop() == 0


def test_a_tool_whose_definition_changed_is_not_decided_in_the_shim(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    with rug_pulled(home, wire) as client:
        response = client.call("tools/call", {"name": FACT, "arguments": {"n": "after"}}, timeout=15.0)
        assert denied(response), response
        before = ['{"n":"0"}', '{"n":"1"}', '{"n":"2"}']
        assert wait_until(lambda: any(b in local_ids(home) for b in before), 5.0), "the first calls were local"
        here = local_ids(home)
        assert '{"n":"after"}' not in here, here
        rows = [r for r in call_rows(home, FACT) if r["args"] == {"n": "after"}]
        assert [r["decision"] for r in rows] == ["ask"], rows


def test_a_journal_that_cannot_be_written_sends_the_call_to_the_daemon(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    ready(home, client)
    # The shim's open segment is replaced by a folder, and so is every name
    # its next segments would take: every append fails.
    [segment] = lease_dir(home).glob("*.jsonl")
    prefix, number, _ = segment.name.split(".")
    segment.unlink()
    for n in range(int(number), int(number) + 20):
        (lease_dir(home) / f"{prefix}.{n}.jsonl").mkdir(exist_ok=True)
    response = echo(client, "unrecorded?")
    assert not denied(response), response
    home.latch("audit", "--json", "--limit", "1")
    assert not local(home, "unrecorded?"), "no row in the shim's journal: the daemon decided"
    rows = [r for r in call_rows(home) if r["args"] == {"text": "unrecorded?"}]
    assert [r["decision"] for r in rows] == ["allow"], rows


def test_garbage_in_a_shim_journal_does_not_stop_the_daemon(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    daemon = Daemon(home)
    daemon.wait_ready()
    client = wire(SHIM_ALONE)
    ready(home, client)
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        assert not denied(echo(client, "kept beside garbage"))
        [journal] = [p for p in lease_dir(home).glob("*.jsonl") if b"kept beside garbage" in p.read_bytes()]
        prefix = journal.name.split(".")[0]
        # Another process writes into the journal and beside it.
        with open(journal, "ab") as f:
            f.write(b"\xff\xfe not json\n{\"call_id\": 7}\n" + b"x" * (2 << 20) + b"\n{\"half\": ")
        (lease_dir(home) / f"{prefix}.99.jsonl").write_bytes(b'{"call_id":"other-1","n":1}\n\x00\x00')
        forged = {
            "call_id": "elsewhere-5", "n": 5, "epoch": 1, "server": "ours", "session": "s", "time_ms": 1,
            "tool": "echo", "class": "READ", "reasons": [], "args": "{}", "args_hash": "h",
        }
        (lease_dir(home) / f"{prefix}.98.jsonl").write_text(json.dumps(forged) + "\n")
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
    daemon.stop()
    client.close()
    restarted = Daemon(home)
    restarted.wait_ready()
    try:
        rows = [r for r in call_rows(home) if r["args"] == {"text": "kept beside garbage"}]
        assert [r["decision"] for r in rows] == ["allow"], rows
        assert not [r for r in call_rows(home) if r["args"] == {}], "a row whose id is not its file's is not recorded"
        skipped = [r for r in home.audit() if r["kind"] == "journal"]
        assert skipped, "the skipped lines are recorded"
        assert "intact" in home.latch("audit", "verify").stdout
    finally:
        assert restarted.stop() == 0


def test_an_accepted_definition_is_decided_in_the_shim_again(home: Home, wire: Callable[..., WireClient]) -> None:
    # Accepting a changed definition (with the PIN) gives its tool back to
    # the lease at once; before, it waited for the next policy or tool change.
    pin = "lease 4 people"
    with rug_pulled(home, wire, pin=pin) as client:
        assert denied(client.call("tools/call", {"name": FACT, "arguments": {"n": "changed"}}, timeout=15.0))
        home.latch("tools", "accept", "facts", FACT, "--pin-stdin", input=pin + "\n", timeout=60)

        def local_again() -> bool:
            n = f"again-{time.monotonic_ns()}"
            assert not denied(client.call("tools/call", {"name": FACT, "arguments": {"n": n}}, timeout=15.0))
            home.latch("audit", "--json", "--limit", "1")
            return json.dumps({"n": n}, separators=(",", ":")) in local_ids(home)

        assert wait_until(local_again, 10.0, interval=0.2), "the accepted tool was not leased again"


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_a_key_linked_to_a_latch_file_in_the_servers_folder_is_decided_by_the_daemon(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient], link: str
) -> None:
    # Keys are read as paths (`{"files": {PATH: CONTENT}}`), against the
    # server's working directory: a plain name there may be a link to one
    # of Latch's files, which only its identity tells.
    client = wire(SHIM)
    ready(home, client)
    target = home.latch_home / "audit.db"
    name = home.work / "notes"
    if link == "symlink":
        name.symlink_to(target)
    else:
        os.link(target, name)
    response = client.call("tools/call", {"name": "echo", "arguments": {"text": "k", "notes": "x"}})
    assert denied(response), response
    assert not [c for c in home.recorded("echo") if c["arguments"].get("notes")], home.recorded("echo")
    assert not [a for a in local_ids(home) if '"notes"' in a], local_ids(home)
