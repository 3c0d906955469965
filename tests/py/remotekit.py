"""Helpers for the remote-server tests: server-everything in its HTTP modes
on 127.0.0.1, direct HTTP client sessions (the official Python SDK's
streamable HTTP and SSE clients), and `latch shim --url` commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from latchkit import CALL_TIMEOUT, LATCH_BIN, REPO, Home, accepting_elicitation, fake_sampling, fixed_roots, stop_process

EVERYTHING_JS = REPO / "tests" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
LOCALHOST_PRELOAD = Path(__file__).with_name("localhost.cjs")


def via_url(name: str, url: str, *extra: str) -> list[str]:
    """The command an agent's config holds for a remote server once Latch is installed."""
    return [LATCH_BIN, "shim", "--name", name, "--url", url, *extra]


class HttpServer:
    """An HTTP server process bound to 127.0.0.1 on a free port, which it
    reports on stderr as "LATCH_TEST_LISTENING <port>"; it runs in the
    test's LATCH_HOME so the leftover scan sees it."""

    def __init__(self, home: Home, cmd: list[str], what: str) -> None:
        self.log_path = home.new_log(what)
        self._log = open(self.log_path, "w")
        env = {**os.environ, **home.server_env(), "PORT": "0"}
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stderr is not None
        self.port = 0
        for line in self.proc.stderr:
            self._log.write(line)
            if line.startswith("LATCH_TEST_LISTENING "):
                self.port = int(line.split()[1])
                break
        if not self.port:
            self.stop()
            raise AssertionError(f"{what} did not start:\n{self.log_path.read_text()}")
        # Keep draining stderr into the log so the server never blocks on it.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._log.write(line)
            self._log.flush()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        stop_process(self.proc, grace=5.0)
        self._log.close()

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def everything_http(home: Home, mode: str) -> HttpServer:
    """server-everything in MODE ("streamableHttp" or "sse"), its listen()
    pinned to 127.0.0.1 by a preload."""
    return HttpServer(home, ["node", "-r", str(LOCALHOST_PRELOAD), str(EVERYTHING_JS), mode], f"everything-{mode}")


class FaultServer(HttpServer):
    """remote_fault_server.py: our own streamable HTTP server, recording every request."""

    def __init__(self, home: Home) -> None:
        self.record_path = home.path / "http-record.jsonl"
        self.record_path.touch()
        script = Path(__file__).with_name("remote_fault_server.py")
        super().__init__(home, [sys.executable, str(script), str(self.record_path)], "fault-server")

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record_path.read_text().splitlines() if line.strip()]

    def calls(self) -> list[dict[str, Any]]:
        """The tools/call POSTs that reached the server."""
        return [r for r in self.requests() if isinstance(r["body"], dict) and r["body"].get("method") == "tools/call"]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def direct_session(url: str, transport: str, **features: Any) -> AsyncIterator[ClientSession]:
    """The official Python client straight to URL over TRANSPORT ("streamable" or "sse")."""
    cm: Any = streamable_http_client(url) if transport == "streamable" else sse_client(url)
    async with cm as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(
            read,
            write,
            read_timeout_seconds=CALL_TIMEOUT,
            sampling_callback=fake_sampling if features.get("sampling") else None,
            elicitation_callback=accepting_elicitation if features.get("elicitation") else None,
            list_roots_callback=fixed_roots if features.get("roots") else None,
            message_handler=features.get("message_handler"),
        ) as session:
            with anyio.fail_after(20):
                await session.initialize()
            yield session
