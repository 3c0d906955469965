#!/usr/bin/env python3
"""Load: many shims and hooks at once against one daemon, for minutes.

    tests/.venv/bin/python tests/reliability/load.py [--shims 50] [--hooks 5] [--seconds 600] [--rate 2]

Each shim (`latch shim` in front of latch-test-server, its own server name)
is driven by a raw MCP wire client that makes mixed calls at RATE calls per
second: READ (echo, read_file), WRITE (write_file in the workspace), SEND
(send_email, asks, held 1 s, the same call each time so one approval stays
pending per server) and TRANSFER_VALUE (create_payment, refused). Each hook
loop runs `latch hook AGENT` back to back with allowed, held and refused
payloads. A baseline first measures the same calls straight to
latch-test-server, so that the latency Latch adds can be given.

Reported: calls per second, latency percentiles through the shim and
direct, hook latency, the daemon's CPU and RSS sampled every 10 s, every
call that reached a server has its row, and calls refused because no
daemon answered (must be none). One JSON line; exit 1 on a problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

from common import LATCH_BIN, Home, kill_all, percentile, reached_without_row, rows, verify
from crash_cycles import hook_payload, outcome
from latchkit import Daemon, WireClient, our_server_cmd
from memory import breakdown

POLICY = "[approvals]\nhold_seconds = 1\n"
CLK = os.sysconf("SC_CLK_TCK")


def call_for(home: Home, shim: int, n: int) -> tuple[str, dict[str, Any]]:
    kind = n % 10
    tag = shim * 1_000_000 + n
    if kind in (0, 1, 2, 3):
        return "echo", {"n": tag}
    if kind in (4, 5):
        return "read_file", {"path": "/etc/hostname", "n": tag}
    if kind in (6, 7):
        return "write_file", {"path": str(home.work / f"load-{shim}.txt"), "content": str(n), "n": tag}
    if kind == 8:
        return "create_payment", {"amount": 1, "currency": "EUR", "recipient": "r", "n": tag}
    return "send_email", {"to": "a@example.com", "subject": "load", "body": "same call each time"}


class Driver(threading.Thread):
    """One client making paced calls until STOP; keeps latencies and outcomes."""

    def __init__(self, home: Home, index: int, cmd: list[str], rate: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.home, self.index, self.rate, self.stop = home, index, rate, stop
        self.client = WireClient(home, cmd)
        self.lat: dict[str, list[float]] = {}
        self.outcomes: dict[str, int] = {}
        self.error: str | None = None

    def run(self) -> None:
        try:
            self.client.initialize()
            self.client.call("tools/list", timeout=60)
            n = 0
            next_at = time.monotonic()
            while not self.stop.is_set():
                name, args = call_for(self.home, self.index, n)
                t0 = time.monotonic()
                answer = self.client.call("tools/call", {"name": name, "arguments": args}, timeout=60)
                dt = time.monotonic() - t0
                o = outcome(answer)
                self.outcomes[o] = self.outcomes.get(o, 0) + 1
                if name != "send_email":  # asks are held on purpose
                    self.lat.setdefault(name, []).append(dt)
                n += 1
                next_at = max(next_at + 1 / self.rate, time.monotonic() - 1)
                self.stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as err:  # reported
            self.error = repr(err)[:300]


HOOKS = [
    ("claude-code", "Read", lambda n, h: {"file_path": str(h.work / f"r{n}.txt")}),
    ("codex", "Bash", lambda n, h: {"command": f"ls /tmp/n{n}"}),
    ("gemini", "read_file", lambda n, h: {"file_path": str(h.latch_home / "audit.db")}),
    ("copilot", "bash", lambda n, h: {"command": "rm -rf /tmp/latch-load-never"}),
]


class HookLoop(threading.Thread):
    def __init__(self, home: Home, index: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.home, self.index, self.stop = home, index, stop
        self.lat: dict[str, list[float]] = {}
        self.answers = 0
        self.failures: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            agent, tool, make = HOOKS[(n + self.index) % len(HOOKS)]
            if agent == "copilot":
                body = json.dumps({"sessionId": "load", "timestamp": 1, "cwd": str(self.home.work), "toolName": tool,
                                   "toolArgs": json.dumps(make(n, self.home))})
            else:
                body = hook_payload(agent, tool, make(n, self.home), str(self.home.work))
            t0 = time.monotonic()
            p = subprocess.run([LATCH_BIN, "hook", agent], env=self.home.cli_env(), input=body,
                               capture_output=True, text=True, timeout=120)
            self.lat.setdefault(f"{agent} {tool}", []).append(time.monotonic() - t0)
            self.answers += 1
            if p.returncode not in (0, 2) or "no Latch daemon" in p.stdout + p.stderr:
                self.failures.append(f"{agent} {tool}: exit {p.returncode} {(p.stdout + p.stderr)[:200]}")
            n += 1


def sample(pid: int) -> tuple[float, int]:
    """(CPU seconds so far, RSS in KiB) of PID."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return cpu, rss


def pct(values: list[float]) -> dict[str, float]:
    return {f"p{int(q * 100)}": round(percentile(values, q) * 1000, 1) for q in (0.5, 0.9, 0.99)} | {
        "max": round(max(values, default=0) * 1000, 1)}


def fill(home: Home, n: int) -> None:
    """A log that already holds N call rows (the size a long soak reaches), written
    before the chain starts: a daemon creates the database, the rows go in
    directly with no hash, as rows from before the hash chain; verify skips them."""
    daemon = Daemon(home)
    daemon.wait_ready()
    daemon.stop()
    now = int(time.time() * 1000)
    args = json.dumps({"path": "/home/me/project/src/main.rs", "n": 0, "note": "x" * 60})
    with sqlite3.connect(home.latch_home / "audit.db") as conn:
        conn.execute("DELETE FROM events")
        conn.executemany(
            "INSERT INTO events (id, time_ms, kind, server, session, tool, class, decision, reasons, args, args_hash,"
            " outcome, latency_us) VALUES (?, ?, 'call', ?, 'prefill', 'read_file', 'READ', 'allow',"
            " '[\"tool name word ''read''\"]', ?, ?, 'ok', 1200)",
            ((i, now - n + i, f"s{i % 50}", args, f"{i:064x}") for i in range(1, n + 1)),
        )


def run(home: Home, shims: int, hooks: int, seconds: float, rate: float, prefill: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = {"shims": shims, "hooks": hooks, "seconds": seconds, "rate_per_shim": rate,
                              "prefill": prefill, "problems": []}
    # Baseline: the same calls straight to the server, no Latch.
    stop = threading.Event()
    direct = [Driver(home, 900 + i, our_server_cmd(), rate, stop) for i in range(5)]
    for d in direct:
        d.start()
    time.sleep(min(30, seconds / 10))
    stop.set()
    for d in direct:
        d.join(30)
        d.client.close()
    base = [x for d in direct for k, v in d.lat.items() for x in v]
    result["direct_ms"] = pct(base)
    home.record_path.unlink(missing_ok=True)  # only calls through Latch are checked below

    if prefill:
        fill(home, prefill)
    daemon = Daemon(home)
    daemon.wait_ready()
    stop = threading.Event()
    drivers = [Driver(home, i, [LATCH_BIN, "shim", "--name", f"s{i}", "--no-autostart", "--", *our_server_cmd()],
                      rate, stop) for i in range(shims)]
    loops = [HookLoop(home, i, stop) for i in range(hooks)]
    t_start = time.monotonic()
    for t in [*drivers, *loops]:
        t.start()
    series = []
    cpu0, _ = sample(daemon.pid)
    last = (t_start, cpu0)
    while time.monotonic() - t_start < seconds:
        time.sleep(min(10, max(0.1, seconds - (time.monotonic() - t_start))))
        if daemon.proc.poll() is not None:
            result["problems"].append(f"the daemon exited: {daemon.log()[-500:]}")
            break
        cpu, rss = sample(daemon.pid)
        t = time.monotonic()
        db = home.latch_home / "audit.db"
        sizes = {f"{p.name}_mib": round(p.stat().st_size / 2**20, 1) for p in (db, db.with_name("audit.db-wal"))
                 if p.exists()}
        series.append({"t": round(t - t_start), "cpu_pct": round(100 * (cpu - last[1]) / (t - last[0]), 1),
                       "rss_mib": round(rss / 1024, 1), **breakdown(daemon.pid), **sizes})
        print(json.dumps(series[-1]), file=sys.stderr, flush=True)  # progress, for long soaks
        last = (t, cpu)
    stop.set()
    elapsed = time.monotonic() - t_start
    for t in [*drivers, *loops]:
        t.join(90)
    for d in drivers:
        d.client.close()
    outcomes: dict[str, int] = {}
    lat: list[float] = []
    for d in drivers:
        if d.error:
            result["problems"].append(f"shim {d.index}: {d.error}")
        for k, v in d.outcomes.items():
            outcomes[k] = outcomes.get(k, 0) + v
        lat += [x for v in d.lat.values() for x in v]
    total = sum(outcomes.values())
    result["calls"] = outcomes
    result["calls_per_s"] = round(total / elapsed, 1)
    result["shim_ms"] = pct(lat)
    result["added_ms"] = {k: round(result["shim_ms"][k] - result["direct_ms"][k], 1) for k in ("p50", "p90", "p99")}
    result["hook_calls"] = sum(h.answers for h in loops)
    kinds = sorted({k for h in loops for k in h.lat})
    result["hook_ms"] = {k: pct([x for h in loops for x in h.lat.get(k, [])]) for k in kinds}
    for h in loops:
        result["problems"] += h.failures[:3]
    if outcomes.get("unreachable") or outcomes.get("no answer") or outcomes.get("error"):
        result["problems"].append(f"calls refused or lost: {outcomes}")
    result["daemon"] = series
    if len(series) >= 4:
        rss = [s["rss_mib"] for s in series]
        q = len(rss) // 4
        result["rss_first_quarter_max"] = max(rss[:q])
        result["rss_last_quarter_max"] = max(rss[-q:])
        result["cpu_pct_mean"] = round(sum(s["cpu_pct"] for s in series) / len(series), 1)
    missing = reached_without_row(home, home.recorded())
    if missing:
        result["problems"].append(f"{len(missing)} calls reached a server without a row: {missing[:5]}")
    all_rows = rows(home)
    result["rows"] = len(all_rows)
    result["call_rows"] = sum(1 for r in all_rows if r["kind"] == "call")
    result["reached_servers"] = len(home.recorded())
    # With LATCH_DEBUG_MEMORY_SECONDS, the daemon's own allocator counters.
    result["memstats"] = [line.split("memory: ", 1)[1] for line in daemon.log().splitlines() if "memstats" in line]
    daemon.stop()
    intact, text = verify(home)
    result["chain_intact"] = intact
    if not intact:
        result["problems"].append(f"audit verify: {text}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shims", type=int, default=50)
    parser.add_argument("--hooks", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rate", type=float, default=2.0, help="calls per second per shim")
    parser.add_argument("--prefill", type=int, default=0, help="call rows in the log before the run starts")
    opts = parser.parse_args()
    home = Home()
    home.write_policy(POLICY)
    try:
        result = run(home, opts.shims, opts.hooks, opts.seconds, opts.rate, opts.prefill)
    finally:
        kill_all(home)
    print(json.dumps(result), flush=True)
    if result["problems"]:
        print(f"kept {home.path} for inspection", file=sys.stderr)
        return 1
    subprocess.run(["rm", "-rf", str(home.path)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
