"""The record-first rule with the journal in front of the audit log.

The daemon answers a call once its row is journaled (one write, durable
against SIGKILL of any Latch process) and commits it to SQLite in a group
behind. Here the daemon's writer is held back (a debug-build knob), so the
answered call's row is in the journal only when the daemon is killed: the
next daemon commits it before anything else, chained.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim

SHIM = via_shim("ours", our_server_cmd(), autostart=False)  # the test starts its daemons


def test_a_call_answered_from_the_journal_has_its_row_after_a_sigkill(
    home: Home, wire: Callable[..., WireClient]
) -> None:
    daemon = Daemon(home, env={"LATCH_TEST_AUDIT_HOLD_MS": "600000"})
    daemon.wait_ready()
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    response = client.call("tools/call", {"name": "echo", "arguments": {"text": "journaled"}}, timeout=15.0)
    assert not response["result"].get("isError"), response
    assert [c["arguments"] for c in home.recorded("echo")] == [{"text": "journaled"}]
    db = home.latch_home / "audit.db"
    with sqlite3.connect(db) as conn:
        committed = conn.execute("SELECT COUNT(*) FROM events WHERE tool = 'echo'").fetchone()[0]
    assert committed == 0, "the writer was held: the row must be in the journal only"
    journal = db.with_name("audit.db.journal")
    assert b'"tool":"echo"' in journal.read_bytes()

    os.kill(daemon.pid, signal.SIGKILL)
    assert daemon.stop() == -signal.SIGKILL
    client.close()
    restarted = Daemon(home)
    restarted.wait_ready()
    try:
        rows = [r for r in home.audit() if r["kind"] == "call" and r["tool"] == "echo"]
        assert [(r["decision"], r["args"]) for r in rows] == [("allow", {"text": "journaled"})], rows
        assert "intact" in home.latch("audit", "verify").stdout
    finally:
        assert restarted.stop() == 0
