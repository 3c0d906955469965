"""The daemon stops promptly: within a second of SIGTERM it has answered its
held calls, closed its connections and exited, and a new daemon can start
at once on the same home (the lock, socket and database are free).

Real binaries: `latch daemon`, a shim in front of our test server holding a
connection, `latch status` as the readiness signal.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim

# Without autostart: a shim that loses its daemon starts one of its own,
# racing the next round's.
SHIM = via_shim("test", our_server_cmd(), autostart=False)


def test_sigterm_ends_the_daemon_within_a_second_and_a_new_one_starts_at_once(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    for round_ in range(3):
        daemon = start_daemon()
        # A connected shim and an answered call: the daemon has work to close.
        client = wire(SHIM)
        client.initialize()
        answer = client.call("tools/call", {"name": "echo", "arguments": {"round": round_}}, timeout=20)
        assert "result" in answer, answer

        started = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        status = daemon.proc.wait(timeout=5)
        took = time.monotonic() - started
        assert status == 0, daemon.log()
        assert took < 1.0, f"round {round_}: the daemon took {took:.2f}s to exit after SIGTERM\n{daemon.log()}"
        assert "shutting down" in daemon.log()
        client.close()
    # The last one is left for the fixture to stop, as a person's would be.
    start_daemon()
