"""The small shim binary: `latch shim` replaces itself with `latch-shim` (beside
`latch`, from the same build), which relays, decides and exits as `latch shim`
does; without it (or told to run in-process) `latch shim` runs the shim itself.
An agent can neither read nor plant the small binary: running whatever sits
beside `latch` under that name would be running Latch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from latchkit import LATCH_BIN, Daemon, Home, WireClient, our_server_cmd, via_shim

SMALL = Path(LATCH_BIN).resolve().parent / "latch-shim"
ALLOW_ALL = '[[rule]]\nserver = "*"\ntool = "*"\neffect = "allow"\n'


def exe_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/exe")


def echo_works(client: WireClient) -> None:
    client.initialize()
    answer = client.call("tools/call", {"name": "echo", "arguments": {"text": "hello"}})
    assert "hello" in str(answer["result"]), answer


def test_latch_shim_runs_as_the_small_binary(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    assert SMALL.is_file(), "build every binary: cargo build --bins"
    client = wire(via_shim("test", our_server_cmd()))
    echo_works(client)
    assert exe_of(client.proc.pid) == str(SMALL)
    # The agent's config still names `latch shim`: the switch is internal.
    assert client.proc.args[1] == "shim"


def test_told_to_run_in_process_latch_shim_is_latch_itself(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(via_shim("test", our_server_cmd()), {"LATCH_SHIM_IN_PROCESS": "1"})
    echo_works(client)
    assert exe_of(client.proc.pid) == str(Path(LATCH_BIN).resolve())
    # The variable is not passed on to the server.
    server = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == client.proc.pid]
    assert server, "the server runs"
    for p in server:
        assert b"LATCH_SHIM_IN_PROCESS" not in (p / "environ").read_bytes()


def _parent(proc: Path) -> int:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_the_servers_exit_code_comes_back_through_the_small_binary(home: Home, daemon: Daemon) -> None:
    cmd = via_shim("exits", [sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(7)"])
    done = subprocess.run(cmd, env=home.agent_env(), input=b"", capture_output=True, timeout=30)
    assert done.returncode == 7, done.stderr


def test_the_small_binary_refuses_to_be_run_by_hand(home: Home) -> None:
    done = subprocess.run([str(SMALL), "--name", "x", "--", "true"], env=home.agent_env(), capture_output=True, timeout=30)
    assert done.returncode == 2 and b"latch shim" in done.stderr, done


def test_another_builds_small_binary_hands_back_to_latch(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    # As `latch` would start it, but naming a build it is not from: it runs
    # `latch shim` in-process with the same options instead.
    cmd = [str(SMALL), "--build", "0000", "--name", "test", "--grace", "2", "--max-message-mib", "256", "--", *our_server_cmd()]
    client = wire(cmd)
    echo_works(client)
    assert exe_of(client.proc.pid) == str(Path(LATCH_BIN).resolve())


def test_an_agent_cannot_read_or_plant_the_small_binary(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=ALLOW_ALL)
    client = wire(via_shim("test", our_server_cmd()))
    client.initialize()
    for tool, args in [
        ("read_file", {"path": str(SMALL)}),
        ("read_file", {"path": str(SMALL.parent / "." / "latch-shim")}),
    ]:
        answer = client.call("tools/call", {"name": tool, "arguments": args})
        text = str(answer["result"])
        assert answer["result"].get("isError") and "Latch blocked" in text, (tool, args, answer)
    assert home.recorded("read_file") == []
