"""The approval PIN and the accepted policy, tried as an attacker would.

The attacker is a second real process running as the same user: a Python
script on the daemon's socket speaking the line protocol (`socket_peer.py`),
or a write to the daemon's files while it is down. A person is the `latch`
CLI with `--pin-stdin`. Unit tests of the pure parts: daemon/src/pin,
daemon/src/accepted.rs, core/src/policy/diff.rs.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latchkit import LATCH_BIN, Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

SHIM = via_shim("test", our_server_cmd())
TOOL = "run_command"  # EXECUTE: asks by default
ARGS = {"command": "make deploy"}
PIN = "correct horse 42"
# A short hold: the agent hears "pending" at once and the approval stays.
POLICY = "[approvals]\nhold_seconds = 1\n"
PEER = Path(__file__).with_name("socket_peer.py")


def peer(home: Home, *messages: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs the attacker's script with MESSAGES; its replies after the welcome."""
    out = subprocess.run(
        [sys.executable, str(PEER), str(home.socket), json.dumps(list(messages))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert "welcome" in replies[0], replies
    return replies[1:]


def answer(approval_id: str, req: int, pin: str | None = None, who: str = "alice") -> dict[str, Any]:
    body: dict[str, Any] = {"req": req, "approval_id": approval_id, "approve": True, "scope": "always", "who": who}
    if pin is not None:
        body["pin"] = pin
    return {"answer": body}


def ask_once(wire: Callable[..., WireClient]) -> dict[str, Any]:
    """One run_command call through the shim; its result."""
    client = wire(SHIM)
    client.initialize()
    assert "result" in client.call("tools/list", {}, timeout=20)
    reply = client.call("tools/call", {"name": TOOL, "arguments": ARGS}, timeout=30)
    assert "result" in reply, reply
    return reply["result"]


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    return (result.get("_meta") or {}).get("dev.latch/decision") or {}


def status(home: Home) -> dict[str, Any]:
    return home.latch_json("status", "--json")


def rows(home: Home, kind: str) -> list[dict[str, Any]]:
    return [r for r in home.audit(500) if r["kind"] == kind]


def test_a_peer_on_the_socket_cannot_approve_without_the_pin(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=POLICY)
    assert "UNPROTECTED" in home.latch("status").stdout
    home.set_pin(PIN)
    assert "protected by a PIN" in home.latch("status").stdout
    assert verdict(ask_once(wire)).get("status") == "pending"
    approval_id = str(home.wait_pending(tool=TOOL)["id"])

    # The attacker lists what waits and approves "always" as "alice": no
    # PIN, then a wrong one.
    listed, no_pin, wrong = peer(home, {"list_pending": {"req": 1}}, answer(approval_id, 2), answer(approval_id, 3, "0000"))
    assert [i["id"] for i in listed["pending"]["items"]] == [approval_id]
    assert no_pin["answered"]["ok"] is False and "PIN" in no_pin["answered"]["message"], no_pin
    assert wrong["answered"]["ok"] is False and "wrong PIN" in wrong["answered"]["message"], wrong
    # The text names no command to run.
    assert "latch approve" not in no_pin["answered"]["message"]

    assert [str(p["id"]) for p in home.pending()] == [approval_id]
    assert home.recorded(TOOL) == []
    assert "\"always\"" not in (home.latch_home / "policy.toml").read_text()
    refused = rows(home, "answer_refused")
    assert len(refused) == 2, refused
    login = pwd.getpwuid(os.getuid()).pw_name
    for r in refused:
        # Who is what the daemon saw: the cli channel and the login of the
        # peer's user id, never the "alice" the peer claimed.
        assert r["answered_by"] == f"cli:{login}", r


def test_wrong_pins_are_rate_limited_and_the_right_one_works_after_the_pause(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=POLICY)
    home.set_pin(PIN)
    ask_once(wire)
    approval_id = str(home.wait_pending(tool=TOOL)["id"])
    replies = peer(home, *(answer(approval_id, n, f"{n:04d}") for n in range(1, 4)), answer(approval_id, 9, PIN))
    messages = [r["answered"]["message"] for r in replies]
    assert [r["answered"]["ok"] for r in replies] == [False] * 4, messages
    assert "(3 wrong in a row)" in messages[2], messages
    # Even the right PIN is refused while checks pause.
    assert "paused" in messages[3], messages
    assert len(rows(home, "answer_refused")) == 4

    # The pause is one second after three; then the PIN works, and the
    # answer's `who` is still the observed one.
    time.sleep(1.2)
    (ok,) = peer(home, answer(approval_id, 10, PIN, who="mallory"))
    assert ok["answered"]["ok"] is True, ok
    answered = [r for r in rows(home, "answer") if r["approval_id"] == approval_id]
    assert answered and "mallory" not in answered[0]["answered_by"], answered


def test_the_cli_reads_the_pin_from_stdin_or_the_terminal_never_argv(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=POLICY)
    home.set_pin(PIN)
    ask_once(wire)
    approval_id = str(home.wait_pending(tool=TOOL)["id"])

    # No terminal (a new session has none) and no --pin-stdin: refused.
    no_tty = subprocess.run(
        [LATCH_BIN, "approve", approval_id],
        env=home.cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
    )
    assert no_tty.returncode != 0 and "no terminal" in no_tty.stderr, no_tty
    wrong = home.latch("approve", approval_id, "--pin-stdin", input="nope\n", check=False, timeout=60)
    assert wrong.returncode == 1 and "wrong PIN" in wrong.stderr, wrong
    # Changing the PIN needs the old one.
    bad_change = home.latch("pin", "set", "--pin-stdin", input="nope\nnew pin 1\n", check=False, timeout=60)
    assert bad_change.returncode == 1, bad_change
    time.sleep(1.2)  # one wrong PIN more than the free ones: wait out the pause
    home.approve(approval_id)
    result = ask_once(wire)
    assert not result.get("isError"), result
    assert len(home.recorded(TOOL)) == 1

    # A deny needs no PIN: it only tightens.
    home.latch("pin", "set", "--pin-stdin", input=f"{PIN}\nnew pin 1\n", timeout=60)
    home.pin = "new pin 1"
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list", {}, timeout=20)
    client.call("tools/call", {"name": TOOL, "arguments": {"command": "make other"}}, timeout=30)
    other = str(home.wait_pending(tool=TOOL)["id"])
    home.deny(other)
    assert home.pending() == []


def wait_status(home: Home, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
    found = wait_until(lambda: s if predicate(s := status(home)) else None, timeout, interval=0.1)
    assert found, f"status never matched: {status(home)}"
    return found


def test_a_loosening_edit_waits_for_the_pin_and_a_tightening_edit_applies_at_once(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(policy=POLICY)
    home.set_pin(PIN)
    # The agent loosens the policy file: EXECUTE allowed.
    home.write_policy(POLICY + '[defaults]\nexecute = "allow"\n')
    pending = wait_status(home, lambda s: s.get("policy_pending") is not None)["policy_pending"]
    assert pending["loosen"] == 1 and any("execute" in line for line in pending["diff"]), pending
    assert "policy change pending: 1 rules loosen" in home.latch("status").stdout
    # The accepted policy is still in force: the call asks.
    assert verdict(ask_once(wire)).get("status") == "pending"
    assert home.recorded(TOOL) == []
    # The agent on the socket cannot accept it.
    (refused,) = peer(home, {"policy_accept": {"req": 1}})
    assert refused["done"]["ok"] is False, refused
    assert rows(home, "pin_refused"), home.audit()

    # The person accepts it with the PIN; then the call runs.
    accepted = home.latch("policy", "accept", "--pin-stdin", input=PIN + "\n", timeout=60)
    assert "accepted" in accepted.stdout, accepted
    assert status(home).get("policy_pending") is None
    assert not ask_once(wire).get("isError")
    assert len(home.recorded(TOOL)) == 1

    # A tightening edit (a deny rule) applies at once, no PIN asked.
    reloads = len(rows(home, "policy_reload"))
    home.write_policy(POLICY + f'[defaults]\nexecute = "allow"\n[[rule]]\ntool = "{TOOL}"\neffect = "deny"\n')
    assert wait_until(lambda: len(rows(home, "policy_reload")) > reloads, 15, 0.1), "the edit was not reloaded"
    assert status(home).get("policy_pending") is None
    assert verdict(ask_once(wire)).get("decision") == "deny"
    assert len(home.recorded(TOOL)) == 1


def test_an_always_answer_given_with_the_pin_is_already_accepted(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    first = start_daemon(policy=POLICY)
    home.set_pin(PIN)
    # After a restart the daemon has not seen the PIN yet: the answer's PIN
    # is what lets it verify the accepted policy and extend it.
    assert first.stop() == 0
    start_daemon()
    assert status(home).get("policy_note"), "unverified until the PIN is typed"
    ask_once(wire)
    approval_id = str(home.wait_pending(tool=TOOL)["id"])
    home.approve(approval_id, "always")
    assert status(home).get("policy_note") is None
    assert f'tool = "{TOOL}"' in (home.latch_home / "policy.toml").read_text()
    result = wait_until(lambda: r if not (r := ask_once(wire)).get("isError") else None, 15, 0.2)
    assert result, "the always rule did not apply"
    assert status(home).get("policy_pending") is None


def test_a_restart_with_a_forged_accepted_policy_enforces_the_defaults_until_the_pin(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    daemon = start_daemon(policy=POLICY)
    home.set_pin(PIN)
    assert daemon.stop() == 0
    # While the daemon is down the agent loosens the file and writes an
    # accepted-policy record to match, with a MAC it made up.
    loose = POLICY + '[defaults]\nexecute = "allow"\n'
    home.write_policy(loose)
    record = home.latch_home / "accepted-policy.json"
    assert record.exists()
    record.write_text(json.dumps({"text": loose, "mac": "00" * 32}))
    start_daemon()

    # Unverified: the stricter of it and the built-in defaults, so EXECUTE asks.
    st = status(home)
    assert st.get("policy_note") and "verified" in st["policy_note"], st
    assert verdict(ask_once(wire)).get("status") == "pending"
    assert home.recorded(TOOL) == []

    # A person unlocks: the forgery is found, the defaults become the
    # accepted policy and the loose file waits for acceptance.
    (unlocked,) = peer(home, {"unlock": {"req": 1, "pin": PIN}})
    assert unlocked["done"]["ok"] is True, unlocked
    st = wait_status(home, lambda s: s.get("policy_pending") is not None)
    assert st.get("policy_note") is None, st
    assert rows(home, "policy_guard"), "the forgery is an audit row"
    # Still asks (now held as the built-in defaults say: no reply awaited).
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list", {}, timeout=20)
    client.request("tools/call", {"name": TOOL, "arguments": {"command": "make other"}})
    assert wait_until(lambda: any(p["args"] == {"command": "make other"} for p in home.pending()), 15, 0.1)
    assert home.recorded(TOOL) == []


def test_deleting_the_pin_record_does_not_unprotect_approvals(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    daemon = start_daemon(policy=POLICY)
    home.set_pin(PIN)
    assert daemon.stop() == 0
    (home.latch_home / "pin.json").unlink()
    start_daemon()
    assert status(home)["pin_set"] is True
    ask_once(wire)
    approval_id = str(home.wait_pending(tool=TOOL)["id"])
    (reply,) = peer(home, answer(approval_id, 1))
    assert reply["answered"]["ok"] is False, reply
    assert home.recorded(TOOL) == []
