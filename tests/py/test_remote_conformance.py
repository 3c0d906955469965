"""The MCP conformance suite's server scenarios (`@modelcontextprotocol/conformance`
on Node 22) against server-everything over streamable HTTP, directly and
through `latch shim --url` behind an HTTP front (supergateway): the same
scenarios pass."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable

from latchkit import LATCH_BIN, REPO, Daemon, Home
from remotekit import LOCALHOST_PRELOAD, HttpServer, everything_http, free_port

MODULES = REPO / "tests" / "node_modules"
NODE22 = MODULES / "node" / "bin" / "node"
CONFORMANCE = MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SUPERGATEWAY = MODULES / "supergateway" / "dist" / "index.js"

ALLOW_ALL = '[[rule]]\nserver = "*"\ntool = "*"\neffect = "allow"\n'
SUMMARY = re.compile(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed", re.M)


def scenarios(home: Home, url: str, what: str) -> dict[str, tuple[int, int]]:
    out = home.path / f"conformance-{what}"
    run = subprocess.run(
        [str(NODE22), str(CONFORMANCE), "server", "--url", url, "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": f"{NODE22.parent}:/usr/bin:/bin", "HOME": str(home.path)},
    )
    home.new_log(f"conformance-{what}").write_text(run.stdout + run.stderr)
    found = {m[0]: (int(m[1]), int(m[2])) for m in SUMMARY.findall(run.stdout)}
    assert found, run.stdout[-3000:] + run.stderr[-3000:]
    return found


def test_the_conformance_scenarios_pass_the_same_through_the_shim(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    assert NODE22.exists() and CONFORMANCE.exists() and SUPERGATEWAY.exists(), "run tests/run to install them"
    start_daemon(policy=ALLOW_ALL)
    with everything_http(home, "streamableHttp") as server:
        direct = scenarios(home, server.url("/mcp"), "direct")
        shim = f"{LATCH_BIN} shim --name everything --url {server.url('/mcp')}"
        front = [str(NODE22), "-r", str(LOCALHOST_PRELOAD), str(SUPERGATEWAY), "--stdio", shim]
        front += ["--outputTransport", "streamableHttp", "--stateful", "--port", str(free_port())]
        with HttpServer(home, front, "supergateway") as gateway:
            shimmed = scenarios(home, gateway.url("/mcp"), "shim")
    passed = lambda r: {k for k, (ok, bad) in r.items() if ok and not bad}  # noqa: E731
    assert passed(shimmed) == passed(direct), (direct, shimmed)
    assert {"server-initialize", "tools-list", "tools-call-simple-text", "ping"} <= passed(shimmed)
    assert shimmed == direct
