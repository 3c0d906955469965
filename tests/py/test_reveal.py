"""Revealing a masked value: only a console unlocked with the PIN gets the
unredacted arguments of a pending approval, and they are never stored.

The attacker is a second real process on the daemon's socket
(`socket_peer.py`) claiming whichever role it likes; the call comes through
the real shim. Unit tests: daemon/src/reveal.rs, tui/tests/reveal.rs.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim

SHIM = via_shim("test", our_server_cmd())
TOOL = "run_command"  # EXECUTE: asks by default
SECRET = "S3cr3t-Only-The-Person-Sees-7781"
ARGS = {"command": f"PGPASSWORD={SECRET} psql -h db.internal -c 'select 1'"}
PIN = "correct horse 42"
POLICY = "[approvals]\nhold_seconds = 1\n"
PEER = Path(__file__).with_name("socket_peer.py")


def peer(home: Home, role: str, *messages: dict[str, Any]) -> list[dict[str, Any]]:
    """The attacker's script, claiming ROLE; its replies after the welcome."""
    out = subprocess.run(
        [sys.executable, str(PEER), str(home.socket), json.dumps(list(messages)), role],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert "welcome" in replies[0], replies
    return replies[1:]


def reveal(approval_id: str, req: int) -> dict[str, Any]:
    return {"reveal": {"req": req, "approval_id": approval_id}}


def unlock(req: int, pin: str = PIN) -> dict[str, Any]:
    return {"unlock": {"req": req, "pin": pin}}


def ask(wire: Callable[..., WireClient]) -> str:
    client = wire(SHIM)
    client.initialize()
    assert "result" in client.call("tools/list", {}, timeout=20)
    reply = client.call("tools/call", {"name": TOOL, "arguments": ARGS}, timeout=30)
    assert "result" in reply, reply
    return json.dumps(reply)


def on_disk(home: Home) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in sorted(home.latch_home.rglob("*")) if p.is_file())


def test_only_a_console_unlocked_with_the_pin_gets_the_raw_arguments(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    daemon = start_daemon(policy=POLICY)
    home.set_pin(PIN)
    agent_saw = ask(wire)
    item = home.wait_pending(tool=TOOL)
    approval_id = str(item["id"])
    assert SECRET not in json.dumps(item) and "PGPASSWORD=" in json.dumps(item), item

    # A CLI peer, locked and then unlocked with the right PIN; a locked
    # console; a shim; a hook: all refused.
    (cli_locked,) = peer(home, "cli", reveal(approval_id, 1))
    cli_unlocked = peer(home, "cli", unlock(1), reveal(approval_id, 2))[1]
    (console_locked,) = peer(home, "console", reveal(approval_id, 1))
    (shim,) = peer(home, "shim", reveal(approval_id, 1))
    (hook,) = peer(home, "hook", reveal(approval_id, 1))
    refusals = [cli_locked, cli_unlocked, console_locked, shim, hook]
    for r in refusals:
        body = r["revealed"]
        assert body["ok"] is False and "args" not in body, r
        assert SECRET not in json.dumps(r)
        assert "latch " not in body["message"], "names no command to run"
    assert "not unlocked" in console_locked["revealed"]["message"]

    # The person's console, unlocked with the PIN on this connection.
    unlocked, shown = peer(home, "console", unlock(1), reveal(approval_id, 2))
    assert unlocked["done"]["ok"] is True, unlocked
    assert shown["revealed"]["ok"] is True, shown
    assert shown["revealed"]["args"] == ARGS

    # Every refusal is a row naming the observed peer; the served reveal is
    # a row too; no row, no file, no log line and nothing the agent got
    # holds the secret.
    rows = home.audit(500)
    refused = [r for r in rows if r["kind"] == "reveal_refused"]
    login = pwd.getpwuid(os.getuid()).pw_name
    assert sorted(r["answered_by"] for r in refused) == sorted(
        [f"cli:{login}", f"cli:{login}", f"tui:{login}", f"shim:{login}", f"hook:{login}"]
    ), refused
    assert all(r["approval_id"] == approval_id for r in refused)
    served = [r for r in rows if r["kind"] == "reveal"]
    assert [r["answered_by"] for r in served] == [f"tui:{login}"], served
    assert SECRET not in json.dumps(rows)
    assert SECRET not in daemon.log()
    assert SECRET not in on_disk(home)
    assert SECRET not in agent_saw
    assert SECRET not in home.latch("pending").stdout

    # Once the approval closes its arguments are gone from the daemon.
    home.deny(approval_id)
    _, gone = peer(home, "console", unlock(1), reveal(approval_id, 2))
    assert gone["revealed"]["ok"] is False and "no longer pending" in gone["revealed"]["message"], gone


def test_without_a_pin_nobody_gets_the_raw_arguments(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=POLICY)
    ask(wire)
    approval_id = str(home.wait_pending(tool=TOOL)["id"])
    # Unlock "succeeds" without a PIN, but proves nobody: still refused.
    _, refused = peer(home, "console", unlock(1, "anything"), reveal(approval_id, 2))
    assert refused["revealed"]["ok"] is False, refused
    assert "no approval PIN is set" in refused["revealed"]["message"]
    assert SECRET not in json.dumps(refused)
    assert [r["kind"] for r in home.audit(500) if r["kind"].startswith("reveal")] == ["reveal_refused"]
