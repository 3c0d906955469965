"""Every call ends somewhere: a call a person answered reaches its final
state in the log — the policy's decision, the person's answer, who gave it,
the wait and the outcome — whether the answer came while the call was held,
after its hold ended, or for an approved retry.

Real binaries: `latch daemon`, `latch shim` in front of our test server,
the `latch` CLI answering as a person would; `latch audit` reads the rows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

SHIM = via_shim("test", our_server_cmd())
TOOL = "run_command"  # EXECUTE: asks by default
ARGS = {"command": "gh pr merge 42 --squash"}
LONG_HOLD = "[approvals]\nhold_seconds = 30\n"
SHORT_HOLD = "[approvals]\nhold_seconds = 1\n"


def agent(wire: Callable[..., WireClient]) -> WireClient:
    client = wire(SHIM)
    client.initialize()
    assert "result" in client.call("tools/list", {}, timeout=20)
    return client


def call(client: WireClient) -> int:
    return client.request("tools/call", {"name": TOOL, "arguments": ARGS})


def result(client: WireClient, request_id: int) -> dict[str, Any]:
    answer = client.response(request_id, timeout=30)
    assert "result" in answer, answer
    return answer["result"]


def call_rows(home: Home, *filters: str) -> list[dict[str, Any]]:
    rows = home.latch_json("audit", "--json", "--limit", "50", *filters)
    return [r for r in rows if r["kind"] == "call" and r["tool"] == TOOL]


def settled(home: Home, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The newest call row once it satisfies PREDICATE (the log is written
    moments after the agent hears)."""
    found = wait_until(lambda: next((r for r in call_rows(home) if predicate(r)), None), timeout=10)
    assert found is not None, call_rows(home)
    return found


def test_a_held_call_a_person_denies_ends_denied_blocked_with_who_and_the_wait(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(LONG_HOLD)
    client = agent(wire)
    request_id = call(client)
    entry = home.wait_pending(tool=TOOL)
    time.sleep(0.3)  # a person reads before answering: the wait is measurable
    home.deny(entry["id"], reason="merging is for the release manager")
    denied = result(client, request_id)
    assert denied.get("isError"), denied

    row = settled(home, lambda r: r.get("outcome") is not None)
    assert row["decision"] == "ask", row
    assert row["answer"] == "deny", row
    assert row["outcome"] == "blocked", row
    assert row["answered_by"] and row["answered_by"].startswith("cli:"), row
    assert row["waited_ms"] is not None and row["waited_ms"] >= 300, row

    # The History filter "deny" finds a person's denial.
    assert [r["id"] for r in call_rows(home, "--decision", "deny")] == [row["id"]]
    # The answer row names the call it answered.
    answers = [r for r in home.audit() if r["kind"] == "answer"]
    assert answers and answers[0]["server"] == "test" and answers[0]["tool"] == TOOL, answers
    # And `latch audit` says so in words.
    text = home.latch("audit", "--limit", "5").stdout
    line = next(ln for ln in text.splitlines() if TOOL in ln and " call " in ln)
    assert re.search(r"ask→deny\s+blocked \(denied by \S+ on the command line after \d", line), text
    # The answer is sealed: the chain still verifies.
    assert home.latch("audit", "verify").returncode == 0


def test_a_held_call_a_person_approves_runs_and_ends_approved_with_its_outcome(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(LONG_HOLD)
    client = agent(wire)
    request_id = call(client)
    entry = home.wait_pending(tool=TOOL)
    home.approve(entry["id"])
    ran = result(client, request_id)
    assert not ran.get("isError"), ran

    row = settled(home, lambda r: r.get("outcome") == "ok")
    assert (row["decision"], row["answer"]) == ("ask", "allow"), row
    assert row["answered_by"].startswith("cli:") and row["waited_ms"] is not None, row
    assert [r["id"] for r in call_rows(home, "--decision", "allow")] == [row["id"]]
    assert home.latch("audit", "verify").returncode == 0


def test_an_answer_after_the_hold_ends_the_first_call_and_the_approved_retry_says_who(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    start_daemon(SHORT_HOLD)
    client = agent(wire)
    first = result(client, call(client))
    assert first.get("isError"), first  # told it waits for a person
    entry = home.wait_pending(tool=TOOL)
    home.approve(entry["id"])

    # The call the agent was told waits: approved, and it did not run.
    row = settled(home, lambda r: r.get("answer") is not None)
    assert (row["decision"], row["answer"], row["outcome"]) == ("ask", "allow", "blocked"), row
    assert row["answered_by"].startswith("cli:"), row

    retry = result(client, call(client))
    assert not retry.get("isError"), retry
    again = settled(home, lambda r: r["id"] != row["id"] and r.get("outcome") == "ok")
    assert again["decision"] == "allow" and again["approval_id"] == row["approval_id"], again
    # Not "not answered": the retry ran on a person's answer, and says whose.
    assert again["answer"] == "allow" and again["answered_by"] == row["answered_by"], again
    assert again["waited_ms"] is None, again
    assert home.latch("audit", "verify").returncode == 0
