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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

SHIM = via_shim("ours", our_server_cmd())


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
        self._send({"hello": {"protocol": 1, "role": "tui", "name": "test", "pid": os.getpid()}})
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
            if isinstance(event, dict) and name in event:
                return event[name]
            if event == name:
                return {}

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
    rows = [r for r in call_rows(home) if r["args"] == {"text": "decided in the shim"}]
    assert len(rows) == 1, rows
    assert rows[0]["decision"] == "allow"
    assert local(home, "decided in the shim"), "the row says the shim decided it"
    assert wait_until(lambda: [r for r in call_rows(home) if r["args"] == {"text": "decided in the shim"}][0].get("outcome") == "ok", 5.0)
    export = home.latch("audit", "export").stdout
    assert "decided in the shim" in export
    assert "intact" in home.latch("audit", "verify").stdout
