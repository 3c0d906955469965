"""`latch audit` as a person uses it: readable rows (a header, local and
relative times), bad filter values refused with the valid set (exit 2), no
daemon needed, and `--follow` printing rows as they are written.

Real binaries: `latch daemon`, `latch shim` in front of our test server,
the CLI; rows are made by real tool calls.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Callable

from latchkit import LATCH_BIN, Daemon, Home, WireClient, our_server_cmd, via_shim

SHIM = via_shim("ours", our_server_cmd())


def echo_calls(client: WireClient, first: int, n: int) -> None:
    ids = [client.request("tools/call", {"name": "echo", "arguments": {"n": i}}) for i in range(first, first + n)]
    for request_id in ids:
        client.response(request_id, timeout=30.0)


def test_audit_reads_the_database_without_a_daemon_with_a_header_and_relative_times(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    daemon = start_daemon()
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    echo_calls(client, 0, 3)
    client.close()
    assert daemon.stop() == 0

    out = home.latch("audit").stdout.splitlines()
    header = out[0].split()
    assert header[:3] == ["ID", "TIME", "KIND"] and "DECISION" in header, out
    echo_rows = [line for line in out[1:] if " echo " in line]
    assert len(echo_rows) == 3, out
    # Just written: the time is relative.
    assert all("s ago" in line or "m ago" in line for line in echo_rows), out
    # Nothing of a Unix millisecond count is shown.
    assert not any(part.isdigit() and len(part) >= 12 for line in out for part in line.split()), out

    rows = home.latch_json("audit", "--json", "--tool", "echo")
    assert len(rows) == 3 and all(r["decision"] == "allow" for r in rows), rows
    assert home.latch_json("audit", "--json", "--decision", "DENY") == []


def test_bad_filter_values_exit_2_and_name_the_valid_set(home: Home) -> None:
    bad = home.latch("audit", "--decision", "allowed", check=False)
    assert bad.returncode == 2, bad
    assert "allow, ask, deny" in bad.stderr, bad.stderr
    bad = home.latch("audit", "--class", "exec", check=False)
    assert bad.returncode == 2, bad
    assert "EXECUTE" in bad.stderr and "TRANSFER_VALUE" in bad.stderr, bad.stderr


def test_audit_with_no_database_yet_says_so(home: Home) -> None:
    done = home.latch("audit")
    assert "no calls recorded yet" in done.stderr, done
    assert home.latch_json("audit", "--json") == []


def test_follow_prints_rows_as_they_are_written(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon()
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    echo_calls(client, 0, 1)

    follow = subprocess.Popen(
        [LATCH_BIN, "audit", "--follow", "--json", "--tool", "echo"],
        env=home.cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert follow.stdout is not None
        for line in follow.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=10))
        assert first["tool"] == "echo" and first["args"] == {"n": 0}, first
        echo_calls(client, 1, 2)
        later = [json.loads(lines.get(timeout=10)) for _ in range(2)]
        assert [r["args"] for r in later] == [{"n": 1}, {"n": 2}], later
        assert later[0]["id"] < later[1]["id"]
    finally:
        follow.kill()
        follow.wait(timeout=5)
        client.close()


def test_a_row_whose_bytes_were_overwritten_is_listed_marked_damaged_and_the_listing_goes_on(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    """A fault the storage-fault script found: one overwritten byte (text that
    is not UTF-8) ended `latch audit` with a decoding error, hiding every
    older row. Now the row is listed, marked, with and without a daemon."""
    import sqlite3

    daemon = start_daemon()
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    echo_calls(client, 0, 3)
    client.close()
    assert daemon.stop() == 0
    with sqlite3.connect(home.latch_home / "audit.db") as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM events WHERE tool = 'echo' ORDER BY id")]
        conn.execute("UPDATE events SET tool = CAST(X'6563ff6f' AS TEXT) WHERE id = ?", (ids[1],))

    # No daemon: read from the database.
    listed = home.latch("audit", "--server", "ours")
    lines = [line for line in listed.stdout.splitlines()[1:] if "call" in line]
    damaged = [line for line in lines if "[damaged: tool does not hold" in line]
    assert len(damaged) == 1 and damaged[0].split()[0] == str(ids[1]), listed.stdout
    assert sum(" echo " in line for line in lines) == 2, listed.stdout
    rows = {r["id"]: r for r in home.latch_json("audit", "--json", "--server", "ours")}
    assert set(ids) <= set(rows), rows
    assert rows[ids[1]]["tool"] == "ec\ufffdo" and "tool" in rows[ids[1]]["damaged"], rows[ids[1]]
    assert "damaged" not in rows[ids[0]] and "damaged" not in rows[ids[2]], rows

    # With a daemon: the console's history pages and the CLI ask it.
    start_daemon()
    rows = {r["id"]: r for r in home.latch_json("audit", "--json", "--text", "ours")}
    assert set(ids) <= set(rows) and "tool" in rows[ids[1]]["damaged"], rows
