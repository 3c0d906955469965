"""A client faster than the daemon is slowed down, never refused: 100,000
pipelined allowed calls through the real shim and daemon all run."""

import os
import subprocess
import threading
import time

import pytest

from latchkit import Daemon, Home, our_server_cmd, stop_process, via_shim

CALLS = int(os.environ.get("LATCH_TEST_PIPELINED", "100000"))


@pytest.mark.timeout(900)
def test_pipelined_calls_are_slowed_down_never_refused(home: Home, daemon: Daemon) -> None:
    # Without the record file the test server would write a line per call.
    env = home.agent_env()
    env.pop("LATCH_TEST_RECORD", None)
    log = open(home.new_log("shim-pipelined"), "w")
    proc = subprocess.Popen(
        via_shim("test", our_server_cmd()),
        env=env,
        cwd=home.work,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        init = b'{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"pipeliner","version":"1"}}}\n'
        proc.stdin.write(init)
        proc.stdin.flush()
        assert b'"id":"init"' in proc.stdout.readline()
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')

        calls = b"".join(
            b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"n%d"}}}\n' % (i, i)
            for i in range(CALLS)
        )

        def write() -> None:
            assert proc.stdin is not None
            proc.stdin.write(calls)
            proc.stdin.flush()

        start = time.monotonic()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        answered, ran, refused = 0, 0, []
        while answered < CALLS:
            line = proc.stdout.readline()
            assert line, f"the shim closed stdout after {answered} answers"
            answered += 1
            if b'"isError":true' in line or b'"error"' in line:
                refused.append(line)
            else:
                ran += 1
        elapsed = time.monotonic() - start
        writer.join()
        print(f"\n{CALLS} pipelined calls answered in {elapsed:.1f} s ({CALLS / elapsed:.0f}/s)")
        unreachable = [r for r in refused if b"no Latch daemon is reachable" in r]
        assert not unreachable, f"{len(unreachable)} refused as unreachable: {unreachable[0][:300]!r}"
        assert not refused, f"{len(refused)} refused: {refused[0][:300]!r}"
        assert ran == CALLS
    finally:
        stop_process(proc)
        log.close()
