"""A wall clock set backwards must not lengthen a grant.

The daemon runs under libfaketime (Debian's `libfaketime`): its wall clock
is whatever offset the file FAKETIME_TIMESTAMP_FILE holds, read afresh on
each call, while its monotonic and boot-time clocks stay real
(DONT_FAKE_MONOTONIC=1), as on a machine whose clock a person or NTP sets.
Grants must expire by elapsed time; after a restart, no later than their
TTL from the restart.

Real binaries: `latch daemon`, `latch shim` in front of our test server,
`latch approve`; SEND calls (`send_email`) ask and are held 1 s.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

FAKETIME_LIB = next(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"), Path("/usr/lib/faketime/libfaketime.so.1"))
# Skipped only where libfaketime is missing and not every test is required
# (tests/run installs it and requires every test).
pytestmark = pytest.mark.skipif(
    not FAKETIME_LIB.exists() and not os.environ.get("LATCH_REQUIRE_ALL_TESTS"),
    reason="libfaketime is not installed (Debian package libfaketime)",
)

# Without autostart: the daemon under test is the faked one, never one a
# shim started on its own around it (the shim reconnects to it by itself).
SHIM = via_shim("ours", our_server_cmd(), autostart=False)
TTL = 4
POLICY = f"[approvals]\nhold_seconds = 1\ngrant_ttl_seconds = {TTL}\n"
HOUR = 3600


@contextmanager
def faked_daemon(home: Home, offset: Path) -> Iterator[Daemon]:
    env = {
        "LD_PRELOAD": str(FAKETIME_LIB),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
    daemon = Daemon(home, env=env)
    try:
        daemon.wait_ready()
        yield daemon
    finally:
        daemon.stop()


def set_clock(offset: Path, seconds: int) -> None:
    offset.write_text(f"{seconds:+d}\n")


def send(client: WireClient, n: int) -> str:
    """`send_email` with arguments of its own: ran, held (asks) or another outcome."""
    args = {"to": "a@example.com", "subject": f"s{n}", "body": "b"}
    answer = client.call("tools/call", {"name": "send_email", "arguments": args}, timeout=30)
    text = json.dumps(answer)
    if "no Latch daemon" in text:
        return "unreachable"
    meta: dict[str, Any] = answer.get("result", {}).get("_meta", {}).get("dev.latch/decision", {})
    if meta.get("status") == "pending":
        return "held"
    return "blocked" if answer.get("result", {}).get("isError") else "ran"


def approved_after_hold(home: Home, client: WireClient, n: int) -> None:
    """A call held until its hold ran out, then approved: a single-use grant of TTL."""
    assert send(client, n) == "held"
    pending = home.wait_pending(tool="send_email", timeout=15)
    home.approve(pending["id"])


def test_a_clock_set_back_does_not_lengthen_a_grant(home: Home, wire: Callable[..., WireClient]) -> None:
    home.write_policy(POLICY)
    offset = home.path / "faketime"
    set_clock(offset, 0)
    with faked_daemon(home, offset):
        client = wire(SHIM)
        client.initialize()
        client.call("tools/list")

        # Within its TTL the grant holds, jump or not.
        approved_after_hold(home, client, 1)
        set_clock(offset, -HOUR)
        assert send(client, 1) == "ran"

        # Set back an hour more: once its TTL has elapsed, the grant is over,
        # although the wall clock is still an hour before its stored expiry.
        approved_after_hold(home, client, 2)
        approved_at = time.monotonic()
        set_clock(offset, -2 * HOUR)
        time.sleep(max(0.0, approved_at + TTL + 1 - time.monotonic()))
        assert send(client, 2) == "held", "the grant outlived its TTL by the jump"
        assert [c["arguments"]["subject"] for c in home.recorded("send_email")] == ["s1"]
        client.close()


def test_after_a_restart_with_the_clock_set_back_a_grant_lasts_at_most_its_ttl(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    home.write_policy(POLICY)
    offset = home.path / "faketime"
    set_clock(offset, 0)
    client = wire(SHIM)
    with faked_daemon(home, offset):
        client.initialize()
        client.call("tools/list")
        approved_after_hold(home, client, 1)
        approved_after_hold(home, client, 2)
    # While no daemon runs, the clock is set back an hour.
    set_clock(offset, -HOUR)
    with faked_daemon(home, offset):
        started = time.monotonic()
        # The shim reconnects by itself; until then it refuses (fail closed).
        # The grants were restored: one is used at once.
        assert wait_until(lambda: (o := send(client, 2)) != "unreachable" and o, 15.0, interval=0.2) == "ran"
        # The other is over once its TTL from the restart has elapsed,
        # although the wall clock is still an hour before its stored expiry.
        time.sleep(max(0.0, started + TTL + 1 - time.monotonic()))
        assert send(client, 1) == "held", "the restored grant outlived its TTL by the jump"
        assert [c["arguments"]["subject"] for c in home.recorded("send_email")] == ["s2"]
        client.close()
