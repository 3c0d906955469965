"""The added cost of `latch shim --url` per call (a script, not a test).

server-everything in its streamable HTTP mode on 127.0.0.1; a lean client
calls `echo` directly over HTTP (one keep-alive connection, the session
header, nothing else), and a lean stdio client through `latch shim --url` +
`latch daemon` (allow-all policy: classified, decided, audited). Also the
CPU the Latch processes (shim, bridge, daemon) spent per call, from /proc. Blocks of calls alternate between the two paths so both see the
same load. Run with LATCH_BIN pointing at a release build:

    LATCH_BIN=$PWD/target/release/latch tests/.venv/bin/python tests/py/bench_remote.py [calls] [rounds]
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sys
import time

from latchkit import Daemon, Home, WireClient, processes_with_env
from remotekit import everything_http, via_url

ALLOW_ALL = '[[rule]]\nserver = "*"\ntool = "*"\neffect = "allow"\n'
TICK = os.sysconf("SC_CLK_TCK")


class Direct:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.session: str | None = None
        self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}})
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, msg: dict) -> bytes:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.session:
            headers["Mcp-Session-Id"] = self.session
            headers["MCP-Protocol-Version"] = "2025-06-18"
        self.conn.request("POST", "/mcp", json.dumps(msg), headers)
        resp = self.conn.getresponse()
        body = resp.read()
        self.session = self.session or resp.getheader("mcp-session-id")
        return body

    def call(self, i: int) -> None:
        body = self.post({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                          "params": {"name": "echo", "arguments": {"message": f"m{i}"}}})
        assert f"m{i}".encode() in body, body


def cpu(home: Home) -> float:
    total = 0
    for p in processes_with_env("LATCH_HOME", str(home.latch_home)):
        if "latch" not in p.cmdline.split(" ")[0]:
            continue
        with open(f"/proc/{p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def timed(call, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - t) * 1e6)
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main(calls: int, rounds: int) -> None:
    home = Home()
    home.write_policy(ALLOW_ALL)
    daemon = Daemon(home)
    daemon.wait_ready()
    server = everything_http(home, "streamableHttp")
    direct: list[float] = []
    shim: list[float] = []
    spent = 0.0
    try:
        d = Direct(server.port)
        w = WireClient(home, via_url("everything", server.url("/mcp")))
        w.initialize("2025-06-18")

        def via(i: int) -> None:
            answer = w.call("tools/call", {"name": "echo", "arguments": {"message": f"m{i}"}})
            assert "result" in answer, answer

        timed(d.call, 50)
        timed(via, 50)
        for _ in range(rounds):
            direct += timed(d.call, calls)
            before = cpu(home)
            shim += timed(via, calls)
            spent += cpu(home) - before
        w.close()
    finally:
        server.stop()
        daemon.stop()
        shutil.rmtree(home.path, ignore_errors=True)
    for name, xs in (("direct HTTP", direct), ("latch shim --url", shim)):
        print(f"{name:18} n={len(xs)} p50={pct(xs, 0.5):.0f} us p99={pct(xs, 0.99):.0f} us")
    print(f"added p50 {pct(shim, 0.5) - pct(direct, 0.5):.0f} us; Latch CPU per call {spent / len(shim) * 1e6:.0f} us")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(args[0] if args else 500, args[1] if len(args) > 1 else 4)
