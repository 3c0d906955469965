"""Server → client: results are relayed after reading only their envelope, and a
result whose envelope cannot be read one way only is never relayed."""

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from latchkit import Daemon, Home, WireClient, via_shim

HOSTILE = via_shim("hostile", [sys.executable, str(Path(__file__).with_name("hostile_results_server.py"))])
ALLOW = '[[rule]]\nserver = "hostile"\ntool = "answer"\neffect = "allow"\n'


@pytest.fixture
def client(home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]) -> WireClient:
    start_daemon(ALLOW)
    c = wire(HOSTILE)
    c.initialize()
    assert [t["name"] for t in c.call("tools/list")["result"]["tools"]] == ["answer"]
    return c


@pytest.mark.parametrize("how", ["two_ids", "escaped_id", "two_results", "two_messages", "open_string"])
def test_a_result_whose_envelope_reads_two_ways_is_refused(client: WireClient, how: str) -> None:
    answer = client.call("tools/call", {"name": "answer", "arguments": {"how": how}}, timeout=15)
    assert "error" in answer and "refused the MCP server's answer" in answer["error"]["message"], answer
    # Nothing of the line reached the client, under either id.
    assert not [m for m in client.received if m.get("id") == 999 or "__unparsable__" in m], client.received
    # The session goes on.
    honest = client.call("tools/call", {"name": "answer", "arguments": {"how": "honest"}}, timeout=15)
    assert honest["result"]["content"][0]["text"] == '"}],"id":999,{', honest


def test_text_that_looks_like_an_envelope_is_content(client: WireClient) -> None:
    for _ in range(3):
        honest = client.call("tools/call", {"name": "answer", "arguments": {"how": "honest"}}, timeout=15)
        assert honest["result"]["content"][0]["text"] == '"}],"id":999,{', honest
