"""Fixtures shared by Latch's integration tests.

- `home`: a fresh LATCH_HOME for every test (autouse). At teardown it checks
  that no process carrying that LATCH_HOME is still alive (shims, servers,
  daemons, anything they spawned), kills leftovers and fails the test if
  there were any. On failure it prints the logs of every process the test
  started.
- `start_daemon(policy=None)`: runs `latch daemon` (optionally after writing
  policy.toml) and waits until `latch status --json` answers; stops it at
  teardown with SIGTERM (SIGKILL after 5 s) and fails if SIGTERM was not
  enough. `daemon` is the same with the built-in policy.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from latchkit import LATCH_BIN, NODE_BIN, TEST_SERVER, Daemon, Home, WireClient, wait_until


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = [p for p in (LATCH_BIN, TEST_SERVER) if not Path(p).is_file()]
    missing += [
        str(NODE_BIN / b) for b in ("mcp-server-filesystem", "mcp-server-everything") if not (NODE_BIN / b).exists()
    ]
    if missing:
        raise pytest.UsageError(
            "missing test binaries: " + ", ".join(missing) + " — run `tests/run`, which builds and installs them"
        )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def home(request: pytest.FixtureRequest) -> Iterator[Home]:
    home = Home()
    yield home
    reports = [getattr(request.node, f"rep_{when}", None) for when in ("setup", "call")]
    failed = any(report is not None and report.failed for report in reports)
    leftovers = []
    if not wait_until(lambda: not home.processes(), timeout=5.0):
        leftovers = home.processes()
        for proc in leftovers:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if failed or leftovers:
        print(f"LATCH_HOME {home.latch_home}\n{home.dump_logs()}")
    else:
        shutil.rmtree(home.path, ignore_errors=True)
    assert not leftovers, "processes of this test still running 5 s after it ended (now killed):\n" + "\n".join(
        str(p) for p in leftovers
    )


@pytest.fixture
def start_daemon(home: Home) -> Iterator[Callable[..., Daemon]]:
    daemons: list[Daemon] = []

    def start(policy: str | None = None) -> Daemon:
        if policy is not None:
            home.write_policy(policy)
        daemon = Daemon(home)
        daemons.append(daemon)
        daemon.wait_ready()
        return daemon

    yield start
    for daemon in daemons:
        status = daemon.stop()
        assert daemon.proc.poll() is not None, "the daemon is still running"
        assert status != -signal.SIGKILL, f"`latch daemon` ignored SIGTERM for 5 s:\n{daemon.log()}"


@pytest.fixture
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon()


@pytest.fixture
def wire(home: Home) -> Iterator[Callable[..., WireClient]]:
    """Factory of raw stdio clients, all shut down at teardown."""
    clients: list[WireClient] = []

    def connect(cmd: list[str], extra_env: dict[str, str] | None = None) -> WireClient:
        client = WireClient(home, cmd, extra_env)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
