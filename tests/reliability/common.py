"""Shared parts of the reliability scripts: the test kit of tests/py, the
audit rows read straight from the database, and the checks every script
makes (every call that reached a server has its row; the chain verifies).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))

from latchkit import LATCH_BIN, Home, processes_with_env, wait_until  # noqa: E402

__all__ = ["LATCH_BIN", "Home", "processes_with_env", "wait_until"]


def rows(home: Home) -> list[dict[str, Any]]:
    """Every audit row, oldest first, read from the database (no daemon needed)."""
    db = home.latch_home / "audit.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.text_factory = lambda b: b.decode(errors="replace")  # overwritten bytes read as U+FFFD
    try:
        conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
    except sqlite3.DatabaseError:
        conn.close()
        return []
    try:
        out = []
        cursor = conn.execute("SELECT id, kind, server, tool, decision, args FROM events ORDER BY id")
        for r in iter_rows(cursor):
            row = dict(r)
            try:
                row["args"] = json.loads(row["args"]) if row["args"] else None
            except (TypeError, json.JSONDecodeError):
                pass
            out.append(row)
        return out
    finally:
        conn.close()


def iter_rows(cursor: Any) -> Any:
    """The rows a cursor yields until the first it cannot read (a damaged file)."""
    while True:
        try:
            r = cursor.fetchone()
        except sqlite3.DatabaseError:
            return
        if r is None:
            return
        yield r


def tag(args: Any) -> Any:
    """The unique number a script put in a call's arguments (`n`), if any."""
    return args.get("n") if isinstance(args, dict) else None


def reached_without_row(home: Home, recorded: list[dict[str, Any]]) -> list[Any]:
    """Calls the test server received that have no `call` row allowing them
    (an allow, or an ask a person approved)."""
    logged = {(r["tool"], tag(r["args"])) for r in rows(home) if r["kind"] == "call" and r["decision"] != "deny"}
    return [(c["name"], tag(c["arguments"])) for c in recorded if (c["name"], tag(c["arguments"])) not in logged]


def verify(home: Home) -> tuple[bool, str]:
    """`latch audit verify`: (intact, its output)."""
    p = home.latch("audit", "verify", check=False, timeout=120)
    return p.returncode == 0 and "intact" in p.stdout, (p.stdout + p.stderr).strip()


def export_count(home: Home) -> int:
    """Rows `latch audit export` streams (each line parsed)."""
    p = home.latch("audit", "export", timeout=120)
    return sum(1 for line in p.stdout.splitlines() if json.loads(line))


def daemon_pids(home: Home) -> list[int]:
    """The `latch daemon` processes of this home (started by us or by a shim)."""
    return [p.pid for p in home.processes() if p.cmdline.split()[1:2] == ["daemon"]]


def kill_all(home: Home) -> None:
    """SIGTERM then SIGKILL every process of this home (all started by the script)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in home.processes():
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
        if wait_until(lambda: not home.processes(), 5.0):
            return


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def now() -> float:
    return time.monotonic()
