"""The wire between the agent, the shim and the daemon, attacked as an agent would.

- Key-spelling smuggling: a small Go MCP server built from source in this test
  reads keys as Go's encoding/json does (case-insensitive, Unicode folding);
  spellings such as `"Method"`, `"Name"` and `"paramſ"` never reach it.
- A tools/call without an id is a notification: never forwarded, recorded.
- Text the agent reads names no Latch command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from latchkit import REPO, Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

GO_SOURCE = REPO / "tests" / "fixtures" / "gofold" / "main.go"
META = "dev.latch/decision"


def audit_kinds(home: Home) -> list[str]:
    return [row["kind"] for row in home.audit()]


# ---------------------------------------------------------------- the Go server


@pytest.fixture(scope="module")
def gofold() -> Iterator[str]:
    """tests/fixtures/gofold built with `go build` into a temporary folder."""
    go = shutil.which("go")
    if go is None:
        if os.environ.get("LATCH_REQUIRE_ALL_TESTS"):
            raise AssertionError("`go` is not on PATH (apt-get install golang-go); tests/run installs it")
        pytest.skip("needs Go (apt-get install golang-go)")
    build = Path(tempfile.mkdtemp(prefix="gofold-", dir="/tmp"))
    try:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(build),
            "GOCACHE": str(build / "cache"),
            "GOPATH": str(build / "gopath"),
            "GOFLAGS": "-mod=mod",
            "GO111MODULE": "on",
            "GOPROXY": "off",
            "CGO_ENABLED": "0",
        }
        binary = build / "gofold"
        subprocess.run(
            [go, "build", "-o", str(binary), str(GO_SOURCE)],
            env=env,
            cwd=build,
            check=True,
            capture_output=True,
            timeout=300,
        )
        yield str(binary)
    finally:
        shutil.rmtree(build, ignore_errors=True)


SMUGGLED = [
    # The shim reads no method (a response?); Go reads "Method".
    '{"jsonrpc":"2.0","id":11,"Method":"tools/call","params":{"name":"send_payment","arguments":{"to":"m"}}}',
    # The shim reads ping; Go reads the later "METHOD".
    '{"jsonrpc":"2.0","id":12,"method":"ping","METHOD":"tools/call","params":{"name":"send_payment","arguments":{}}}',
    # The shim decides get_note (a read); Go runs the later "Name".
    '{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"get_note","Name":"send_payment","arguments":{}}}',
    # The shim decides get_note; Go reads the later "paramſ" (long s).
    '{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"get_note","arguments":{}},'
    '"param\u017f":{"name":"send_payment","arguments":{"to":"s"}}}',
    # The same, with the long s written as a JSON escape.
    '{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"get_note","arguments":{}},'
    '"param\\u017f":{"name":"send_payment","arguments":{"to":"e"}}}',
    # The shim decides get_note; Go runs the later "nAME".
    '{"jsonrpc":"2.0","id":16,"method":"tools/call","params":{"name":"get_note","arguments":{},"nAME":"send_payment"}}',
]


def test_the_go_server_really_runs_smuggled_spellings_when_reached_directly(
    home: Home, gofold: str, wire: Callable[..., WireClient]
) -> None:
    # The premise: without Latch in between, each spelling runs the payment.
    client = wire([gofold])
    client.initialize()
    for line in SMUGGLED:
        client.send_line(line)
        client.wait_for(lambda m: "result" in m and m.get("id") == json.loads(line)["id"])
    assert [c["name"] for c in home.recorded()] == ["send_payment"] * len(SMUGGLED)


def test_key_spellings_that_fold_to_routed_keys_never_reach_a_go_server(
    home: Home, daemon: Daemon, gofold: str, wire: Callable[..., WireClient]
) -> None:
    client = wire(via_shim("gofold", [gofold]))
    client.initialize()
    assert [t["name"] for t in client.call("tools/list")["result"]["tools"]] == ["get_note", "send_payment"]
    for line in SMUGGLED:
        client.send_line(line)
        error = client.wait_for(lambda m: "error" in m and m.get("id") is None)
        assert error["error"]["code"] == -32600, (line, error)
        assert "another spelling of" in error["error"]["message"], error
    # The session goes on: an honest read runs, and it is the only call the server saw.
    honest = client.call("tools/call", {"name": "get_note", "arguments": {}}, timeout=20)
    assert honest["result"]["content"][0]["text"] == "ran get_note", honest
    assert [c["name"] for c in home.recorded()] == ["get_note"]
    assert wait_until(lambda: audit_kinds(home).count("malformed") >= len(SMUGGLED), 5.0), home.audit()


# ---------------------------------------------------------------- id-less calls


def test_a_tools_call_without_an_id_is_dropped_and_recorded(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(via_shim("ours", our_server_cmd()))
    client.initialize()
    client.call("tools/list")
    args = {"amount": 1, "currency": "EUR", "recipient": "notification"}
    client.notify("tools/call", {"name": "create_payment", "arguments": args})
    # Pipelined behind it: a request whose answer proves the notification was handled.
    assert client.call("ping")["result"] == {}
    assert wait_until(lambda: "malformed" in audit_kinds(home), 5.0), home.audit()
    assert home.recorded() == []
    assert not [m for m in client.received if m.get("id") is None and "result" in m]


# ---------------------------------------------------------------- agent-facing text


def agent_texts(messages: list[dict[str, Any]]) -> list[str]:
    """Every string in what the shim sent the agent."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for m in messages:
        walk(m)
    return out


def assert_names_no_command(messages: list[dict[str, Any]]) -> None:
    for text in agent_texts(messages):
        assert "latch approve" not in text.lower(), text
        assert "`latch " not in text, text
