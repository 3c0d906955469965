"""The policy file is read at start, reloaded when it changes, and a file that
does not validate never replaces the policy in force."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

SHIM = via_shim("ours", our_server_cmd())

DENY_READS = """
[[rule]]
name = "no-reads"
server = "ours"
tool = "read_file"
effect = "deny"
"""


def read(client: WireClient, path: str = "/etc/hostname") -> dict[str, Any]:
    return client.call("tools/call", {"name": "read_file", "arguments": {"path": path}}, timeout=15.0)


def denied(response: dict[str, Any]) -> bool:
    return bool(response["result"].get("isError")) and "Latch blocked" in response["result"]["content"][0]["text"]


def test_first_run_writes_the_commented_default_policy(home: Home, daemon: Daemon) -> None:
    text = (home.latch_home / "policy.toml").read_text()
    assert text.lstrip().startswith("#"), text[:200]
    home.latch("policy", "check")
    assert home.latch_json("status", "--json")["policy_error"] is None


def test_a_changed_policy_applies_without_a_restart(
    home: Home, daemon: Daemon, wire: Callable[..., WireClient]
) -> None:
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    assert not denied(read(client))
    home.write_policy(DENY_READS)
    assert wait_until(lambda: denied(read(client)), 10.0, interval=0.2)
    rows = [r for r in home.audit() if r["kind"] == "policy_reload"]
    assert rows, "the reload is recorded"


def test_a_broken_policy_keeps_the_previous_one_and_says_where(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=DENY_READS)
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    assert denied(read(client))
    # A typo: an unknown key on line 3.
    home.write_policy('[[rule]]\nserver = "ours"\ntol = "read_file"\neffect = "allow"\n')

    def error() -> str | None:
        return home.latch_json("status", "--json")["policy_error"]

    message = wait_until(error, 10.0, interval=0.2)
    assert message and ":3:" in message and "tol" in message, message
    # The previous policy (deny reads) is still in force.
    assert denied(read(client))
    # Fixing the file clears the error and applies the new policy.
    home.write_policy("")
    assert wait_until(lambda: error() is None, 10.0, interval=0.2)
    assert wait_until(lambda: not denied(read(client)), 10.0, interval=0.2)
    failed = home.latch("policy", "check", str(home.latch_home / "policy.toml"), check=False)
    assert failed.returncode == 0


def test_self_protection_cannot_be_switched_off(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    # Even a rule that allows everything does not let a call touch Latch itself.
    start_daemon(policy='[[rule]]\nserver = "*"\ntool = "*"\neffect = "allow"\n')
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    policy = str(home.latch_home / "policy.toml")
    write = client.call(
        "tools/call", {"name": "write_file", "arguments": {"path": policy, "content": ""}}, timeout=15.0
    )
    assert denied(write), write
    approve = client.call(
        "tools/call", {"name": "run_command", "arguments": {"command": "latch approve abc123"}}, timeout=15.0
    )
    assert denied(approve), approve
    assert home.recorded() == []
