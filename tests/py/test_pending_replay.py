"""A pending policy change says what it would have done to recent calls.

Real daemon, real calls through the shim to our test server (they ask and
are recorded), then a loosening edit of the policy file while a PIN is set:
the change waits for the person, and `latch status` (which the console's
Health pane shows too) says how many of the asked calls it would have
allowed, by which rule. Unit tests: daemon/src/pending_replay.rs,
core/src/policy/replay.rs; the Health pane: tui/tests/views.rs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

SHIM = via_shim("test", our_server_cmd())
TOOL = "run_command"  # EXECUTE: asks by default
PIN = "correct horse 42"
# A short hold: the agent hears "pending" at once.
POLICY = "[approvals]\nhold_seconds = 1\n"
TESTS_RULE = (
    '[[rule]]\nname = "tests"\ntool = "run_command"\n'
    'args = [{ path = "command", command = ["npm", "run", "test"] }]\neffect = "allow"\n'
)


def status(home: Home) -> dict[str, Any]:
    return home.latch_json("status", "--json")


def test_a_pending_change_says_which_asked_calls_it_would_have_allowed(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=POLICY)
    home.set_pin(PIN)
    client = wire(SHIM)
    client.initialize()
    assert "result" in client.call("tools/list", {}, timeout=20)
    commands = ["npm run test", "npm run test", "npm run test -- --watch", "make deploy"]
    for command in commands:
        reply = client.call("tools/call", {"name": TOOL, "arguments": {"command": command}}, timeout=30)
        assert "result" in reply, reply
    asked = lambda: [r for r in home.audit(500) if r["kind"] == "call" and r["tool"] == TOOL]  # noqa: E731
    assert wait_until(lambda: len(asked()) >= len(commands), 15, 0.1), home.audit()
    assert all(r["decision"] == "ask" for r in asked()), asked()

    # The agent loosens the policy file: `npm run test` allowed.
    home.write_policy(POLICY + TESTS_RULE)
    found = wait_until(lambda: status(home).get("policy_pending"), 15, 0.1)
    assert found, status(home)
    # Three calls asked and would now be allowed by "tests"; `make deploy` stays asked.
    want = 'would allow 3 calls that were asked in the last 7 days (rule "tests")'
    assert found.get("replay") == [want], found
    text = home.latch("status").stdout
    assert "policy change pending: 1 rules loosen" in text and want in text, text

    # Accepted, nothing waits and nothing is replayed.
    home.latch("policy", "accept", "--pin-stdin", input=PIN + "\n", timeout=60)
    assert status(home).get("policy_pending") is None
