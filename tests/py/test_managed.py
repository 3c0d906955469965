"""A managed policy (issue 20): root's `/etc/latch/managed.toml`, layered above
the user's policy. The stricter layer decides, so the user's file can only
tighten it; `policy explain` names the layer, `policy check` the user rules
that have no effect, `status` and `doctor` say it is in force; a managed file
that is not root's, is writable by others or does not validate is refused and
every call is denied (fail closed). Debug builds read LATCH_MANAGED_POLICY
instead of the fixed path; the file is made root's here (CI runs as root)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a managed policy must be root's: run as root (CI does)")

SHIM = via_shim("ours", our_server_cmd())

MANAGED = """
[[rule]]
name = "no-reads"
server = "ours"
tool = "read_file"
effect = "deny"
reason = "the security team forbids it"
"""

LOOSE_USER = """
[[rule]]
name = "read-anything"
server = "ours"
tool = "read_file"
effect = "allow"
"""


@pytest.fixture
def managed(home: Home, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A root-owned folder (0755) for the managed file, named to the daemon and CLI."""
    folder = home.path / "etc-latch"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    os.chmod(home.path, 0o755)
    path = folder / "managed.toml"
    monkeypatch.setenv("LATCH_MANAGED_POLICY", str(path))
    yield path


def write_managed(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, mode)
    tmp.rename(path)


def read(client: WireClient) -> dict[str, Any]:
    return client.call("tools/call", {"name": "read_file", "arguments": {"path": "/etc/hostname"}}, timeout=15.0)


def text_of(response: dict[str, Any]) -> str:
    return response["result"]["content"][0]["text"]


def denied(response: dict[str, Any]) -> bool:
    return bool(response["result"].get("isError")) and "Latch blocked" in text_of(response)


def status(home: Home) -> dict[str, Any]:
    return home.latch_json("status", "--json")


def explain(home: Home) -> dict[str, Any]:
    out = home.latch("policy", "explain", "--server", "ours", "--tool", "read_file", "--args", '{"path": "/etc/hostname"}', "--json")
    return json.loads(out.stdout)


def connect(wire: Callable[..., WireClient]) -> WireClient:
    client = wire(SHIM)
    client.initialize()
    client.call("tools/list")
    return client


def test_a_user_rule_cannot_loosen_the_managed_policy(
    home: Home, managed: Path, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    write_managed(managed, MANAGED)
    start_daemon(policy=LOOSE_USER)
    client = connect(wire)
    response = read(client)
    assert denied(response), response
    assert "security team forbids it" in text_of(response)
    assert home.recorded("read_file") == [], "the call never reached the server"
    rows = [r for r in home.audit() if r.get("tool") == "read_file"]
    assert rows and rows[0]["rule"] == 'managed rule "no-reads" (line 2)', rows[:1]
    # explain names the managed layer; check names the user rule that has no effect.
    x = explain(home)
    assert (x["decision"], x["layer"]) == ("deny", "managed"), x
    check = home.latch("policy", "check")
    assert "read-anything" in check.stderr and "no effect" in check.stderr, check.stderr
    assert 'managed rule "no-reads"' in check.stderr, check.stderr
    assert "policy.toml:2:1" in check.stderr, "the user's rule is named at its line"
    text = home.latch("policy", "explain", "--server", "ours", "--tool", "read_file").stdout
    assert "layer     managed" in text, text
    # status and doctor say a managed policy is in force.
    assert "in force" in (status(home).get("managed") or ""), status(home)
    doctor = home.latch("doctor", check=False)
    assert "managed   in force" in doctor.stdout, doctor.stdout


def test_the_user_can_still_tighten_and_explain_names_the_user_layer(
    home: Home, managed: Path, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    write_managed(managed, "[defaults]\nread = \"allow\"\n")
    start_daemon(policy=LOOSE_USER.replace('effect = "allow"', 'effect = "deny"'))
    assert denied(read(connect(wire)))
    x = explain(home)
    assert (x["decision"], x["layer"]) == ("deny", "user"), x


def test_a_group_writable_managed_file_is_refused_and_every_call_denied(
    home: Home, managed: Path, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    write_managed(managed, "[defaults]\nread = \"allow\"\n")
    start_daemon()
    client = connect(wire)
    assert not denied(read(client))
    os.chmod(managed, 0o664)
    assert wait_until(lambda: "REFUSED" in (status(home).get("managed") or ""), 10.0, interval=0.1), status(home)
    assert "writable by its group" in status(home)["managed"]
    response = read(client)
    assert denied(response), response
    assert "managed policy cannot be used" in text_of(response)
    assert "latch approve" not in text_of(response)
    doctor = home.latch("doctor", check=False)
    assert doctor.returncode != 0 and "REFUSED" in doctor.stdout, doctor.stdout
    x = explain(home)
    assert (x["decision"], x["layer"]) == ("deny", "managed"), x
    # Fixed by its owner: in force again, without a restart.
    os.chmod(managed, 0o644)
    assert wait_until(lambda: "in force" in (status(home).get("managed") or ""), 10.0, interval=0.1)
    assert not denied(read(client))


def test_a_managed_file_or_folder_not_owned_by_root_is_refused(
    home: Home, managed: Path, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    write_managed(managed, "[defaults]\nread = \"allow\"\n")
    os.chown(managed, 65534, 65534)
    start_daemon()
    assert "not root" in (status(home).get("managed") or ""), status(home)
    assert denied(read(connect(wire)))
    os.chown(managed, 0, 0)
    os.chown(managed.parent, 65534, 65534)
    try:
        report = wait_until(lambda: "uid 65534" in (status(home).get("managed") or ""), 10.0, interval=0.1)
        assert report, f"a folder above it that is not root's is noticed: {status(home)}"
        x = explain(home)
        assert x["decision"] == "deny", x
    finally:
        os.chown(managed.parent, 0, 0)


def test_a_typo_in_the_managed_file_fails_closed_and_names_the_line(
    home: Home, managed: Path, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    write_managed(managed, "[defaults]\nread = \"allow\"\n\n[[rule]]\nserver = \"ours\"\nefect = \"deny\"\n")
    start_daemon()
    report = status(home).get("managed") or ""
    assert "REFUSED" in report and ":6:" in report and "efect" in report, report
    assert denied(read(connect(wire)))
    check = home.latch("policy", "check", str(managed), check=False)
    assert check.returncode == 1 and ":6:" in check.stderr, check.stderr


MANAGED_NO_ECHO = """
[[rule]]
name = "no-echo"
server = "ours"
tool = "echo"
effect = "deny"
reason = "the security team forbids echo"
"""


def echo(client: WireClient, text: str) -> dict[str, Any]:
    return client.call("tools/call", {"name": "echo", "arguments": {"text": text}}, timeout=15.0)


def lease_rows(home: Home) -> list[str]:
    """Arguments of the committed rows a shim decided under a lease."""
    home.latch("audit", "--json", "--limit", "1")  # the daemon commits what it has
    with sqlite3.connect(home.latch_home / "audit.db") as conn:
        rows = conn.execute("SELECT args FROM events WHERE kind = 'call' AND detail LIKE 'lease call %'")
        return [args for (args,) in rows]


def test_a_managed_policy_ends_the_shims_leases_and_decides_the_next_call(
    home: Home, managed: Path, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    # A lease carries the user's policy text only: a shim deciding under it
    # would let through what the managed layer denies.
    start_daemon()
    client = connect(wire)

    def local_warm_up() -> bool:
        echo(client, "warm-up")
        return any("warm-up" in a for a in lease_rows(home))

    assert wait_until(local_warm_up, 10.0, interval=0.1), "no call was decided under a lease"
    write_managed(managed, MANAGED_NO_ECHO)
    assert wait_until(lambda: "in force" in (status(home).get("managed") or ""), 15.0), status(home)
    response = echo(client, "after-managed")
    assert denied(response), response
    assert "security team forbids echo" in text_of(response)
    assert all("after-managed" not in str(r) for r in home.recorded("echo")), "the call never reached the server"
    assert all("after-managed" not in a for a in lease_rows(home))


def test_no_call_is_decided_in_a_shim_while_a_managed_policy_is_in_force(
    home: Home, managed: Path, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    write_managed(managed, MANAGED)
    start_daemon()
    client = connect(wire)
    for n in range(20):
        assert not denied(echo(client, f"call-{n}"))
    assert lease_rows(home) == [], "every call was decided by the daemon, under both layers"
    assert len([r for r in home.audit() if r.get("tool") == "echo"]) == 20


MANAGED_ASKS_NPM = """
[[rule]]
name = "npm-asks"
tool = "run_command"
args = [{ path = "command", command = ["npm"] }]
effect = "ask"
"""
USER_ALLOWS_TESTS = (
    '[approvals]\nhold_seconds = 1\n[[rule]]\nname = "tests"\ntool = "run_command"\n'
    'args = [{ path = "command", command = ["npm", "run", "test"] }]\neffect = "allow"\n'
)


def test_what_a_change_would_do_is_replayed_under_the_managed_layer(
    home: Home, managed: Path, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    write_managed(managed, MANAGED_ASKS_NPM)
    start_daemon(policy="[approvals]\nhold_seconds = 1\n")
    home.set_pin("correct horse 42")
    client = connect(wire)
    for _ in range(2):
        reply = client.call("tools/call", {"name": "run_command", "arguments": {"command": "npm run test"}}, timeout=30)
        assert "result" in reply, reply
    asked = lambda: [r for r in home.audit(500) if r["kind"] == "call" and r["tool"] == "run_command"]  # noqa: E731
    assert wait_until(lambda: len(asked()) >= 2, 15, 0.1), home.audit()
    # The user's loosening waits for the PIN; the managed rule still asks,
    # so the change would allow none of those calls.
    home.write_policy(USER_ALLOWS_TESTS)
    pending = wait_until(lambda: status(home).get("policy_pending"), 15, 0.1)
    assert pending, status(home)
    assert not [line for line in pending.get("replay") or [] if "would allow" in line], pending
    # The same by hand.
    candidate = home.path / "candidate.toml"
    candidate.write_text(USER_ALLOWS_TESTS)
    report = json.loads(home.latch("policy", "replay", str(candidate), "--since", "1h", "--json").stdout)
    assert "groups" in report and not [g for g in report["groups"] if g["to"] == "allow"], report


def test_always_is_refused_where_the_managed_policy_asks_and_once_still_works(
    home: Home, managed: Path, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient]
) -> None:
    # The managed layer allows commands but asks about npm.
    write_managed(managed, '[defaults]\nexecute = "allow"\n' + MANAGED_ASKS_NPM)
    start_daemon(policy="[approvals]\nhold_seconds = 1\n")
    client = connect(wire)
    args = {"command": "npm run test"}
    reply = client.call("tools/call", {"name": "run_command", "arguments": args}, timeout=30)
    assert "result" in reply, reply
    pending = home.wait_pending(tool="run_command")
    policy_before = (home.latch_home / "policy.toml").read_text()
    out = home.latch("approve", str(pending["id"]), "--scope", "always", check=False)
    assert out.returncode != 0, out
    said = out.stdout + out.stderr
    assert "managed policy asks" in said and "approve it once" in said, said
    # Nothing was written, the call is still pending, and "once" works.
    assert (home.latch_home / "policy.toml").read_text() == policy_before
    assert [p["id"] for p in home.pending()] == [pending["id"]]
    home.approve(pending["id"])
    ran = client.call("tools/call", {"name": "run_command", "arguments": args}, timeout=30)
    assert not ran["result"].get("isError"), ran
    # Where only the user's defaults ask, "always" writes its rule as ever.
    # (Where the managed file sets no defaults, its floor is the built-in
    # ones, which ask about every command: "always" is refused there too.)
    other = {"command": "make build"}
    client.call("tools/call", {"name": "run_command", "arguments": other}, timeout=30)
    second = home.wait_pending(tool="run_command")
    home.approve(second["id"], scope="always")
    assert (home.latch_home / "policy.toml").read_text() != policy_before
