"""The audit log over time: retention with a checkpoint `verify` accepts,
`latch audit prune` with and without a daemon, time ranges, and the daemon
refusing a database it cannot keep safely.

Real binaries throughout: `latch daemon`, `latch shim` in front of our test
server, the CLI; rows are made by real tool calls.
"""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable

from latchkit import LATCH_BIN, Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

SHIM = via_shim("ours", our_server_cmd())


def make_calls(wire: Callable[..., WireClient], n: int) -> None:
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    ids = [client.request("tools/call", {"name": "echo", "arguments": {"n": i}}) for i in range(n)]
    for request_id in ids:
        client.response(request_id, timeout=30.0)
    client.close()


def row_count(home: Home) -> int:
    with sqlite3.connect(home.latch_home / "audit.db") as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_prune_without_a_daemon_keeps_max_rows_and_verify_names_the_checkpoint(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    daemon = start_daemon()
    make_calls(wire, 150)
    assert daemon.stop() == 0
    before = row_count(home)
    assert before > 150
    # No [audit] section: nothing is ever removed.
    dry = home.latch("audit", "prune", "--dry-run")
    assert "every row is kept" in dry.stdout, dry
    home.write_policy((home.latch_home / "policy.toml").read_text() + "\n[audit]\nmax_rows = 100\n")
    dry = home.latch("audit", "prune", "--dry-run")
    assert f"would remove rows 1..{before - 99} ({before - 99} rows" in dry.stdout, dry.stdout
    assert row_count(home) == before, "a dry run changes nothing"
    done = home.latch("audit", "prune")
    assert f"removed rows 1..{before - 99}" in done.stdout and "max_rows = 100" in done.stdout, done.stdout
    assert row_count(home) == 100
    verified = home.latch("audit", "verify")
    assert "intact (100 chained rows)" in verified.stdout, verified.stdout
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    assert f"rows 1..{before - 99} ({before - 99} rows" in verified.stdout, verified.stdout
    assert f"removed by retention on {today}" in verified.stdout, verified.stdout
    assert f"chain verified from row {before - 98}" in verified.stdout, verified.stdout
    # The export starts where the chain does and ends with the checkpoint.
    rows = [json.loads(line) for line in home.latch("audit", "export").stdout.splitlines()]
    assert rows[0]["id"] == before - 98 and rows[-1]["kind"] == "retention"
    assert json.loads(rows[-1]["detail"])["removed"] == before - 99


def test_cutting_the_log_by_hand_is_still_tampering(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    daemon = start_daemon()
    make_calls(wire, 20)
    assert daemon.stop() == 0
    with sqlite3.connect(home.latch_home / "audit.db") as conn:
        conn.execute("DELETE FROM events WHERE id <= 5")
    broken = home.latch("audit", "verify", check=False)
    assert broken.returncode == 1 and "no retention checkpoint" in broken.stdout, broken.stdout
    # Retention refuses to paper over it.
    home.write_policy((home.latch_home / "policy.toml").read_text() + "\n[audit]\nmax_rows = 100\n")
    refused = home.latch("audit", "prune", "--dry-run", check=False)
    assert refused.returncode != 0 and "latch audit verify" in refused.stderr, refused


def test_the_daemon_prunes_at_start_up_and_on_demand(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    daemon = start_daemon()
    make_calls(wire, 130)
    assert daemon.stop() == 0
    # At start-up, with the policy's limit.
    policy = (home.latch_home / "policy.toml").read_text()
    daemon = start_daemon(policy + "\n[audit]\nmax_rows = 100\n")
    assert wait_until(lambda: "retention: removed rows 1.." in daemon.log(), 10.0), daemon.log()
    assert "intact" in home.latch("audit", "verify").stdout
    # On demand, through the running daemon, after more calls.
    make_calls(wire, 30)
    assert row_count(home) > 100
    done = home.latch("audit", "prune")
    assert "removed rows" in done.stdout and "checkpoint row" in done.stdout, done.stdout
    assert row_count(home) <= 101, "100, and the call rows written since (the shim's disconnect)"
    verified = home.latch("audit", "verify")
    assert "intact" in verified.stdout and "removed by retention" in verified.stdout, verified.stdout
    listed = home.latch_json("audit", "--json", "--limit", "500")
    assert listed[-1]["id"] > 1 and any(r["kind"] == "retention" for r in listed)


def test_an_agent_cannot_prune_the_log(home: Home) -> None:
    out = home.latch(
        "policy", "explain", "--server", "sh", "--tool", "run_command", "--args", '{"command": "latch audit prune"}'
    )
    assert "deny" in out.stdout and "self_protect" in out.stdout, out.stdout


def test_audit_and_export_take_a_time_range(home: Home, daemon: Daemon, wire: Callable[..., WireClient]) -> None:
    make_calls(wire, 3)
    # The shim's disconnect is the last row this test makes.
    assert wait_until(lambda: any(r["kind"] == "shim_disconnect" for r in home.audit()), 10.0)
    everything = home.latch_json("audit", "--json", "--since", "1h")
    assert len([r for r in everything if r["kind"] == "call"]) == 3
    assert home.latch_json("audit", "--json", "--until", "1h") == []
    tomorrow = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    assert len(home.latch_json("audit", "--json", "--until", tomorrow)) == len(everything)
    assert home.latch("audit", "export", "--since", "2000-01-01", "--until", "2000-01-02T00:00Z").stdout == ""
    exported = home.latch("audit", "export", "--since", "2000-01-01 00:00:00", "--until", tomorrow).stdout
    assert len(exported.splitlines()) == len(everything)
    bad = home.latch("audit", "export", "--until", "2026-13-01", check=False)
    assert bad.returncode == 2 and "is not a date" in bad.stderr, bad.stderr
    backwards = home.latch("audit", "--since", "1h", "--until", "2h", check=False)
    assert backwards.returncode != 0 and "--since must be before --until" in backwards.stderr, backwards.stderr


def test_the_daemon_refuses_a_database_others_may_read(home: Home, start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon()
    assert daemon.stop() == 0
    db = home.latch_home / "audit.db"
    os.chmod(db, 0o644)
    out = subprocess.run([str(LATCH_BIN), "daemon"], env=home.cli_env(), capture_output=True, text=True, timeout=15)
    assert out.returncode != 0, out
    assert "others may read it" in out.stderr and f"chmod 600 {db}" in out.stderr, out.stderr
