"""Desktop notifications for pending approvals, against a real D-Bus.

Each test starts a private session bus (`dbus-daemon --session`) and, on it,
our own notification server (tests/py/fake_notifications.py, run with
/usr/bin/python3 for python3-dbus and python3-gi), which records every
`Notify` and `CloseNotification` and emits `ActionInvoked` when asked. The
daemon finds that bus through DBUS_SESSION_BUS_ADDRESS. A raw wire client
calls latch-test-server's `run_command` (EXECUTE: asks) through the shim;
what reaches the server (`home.recorded()`) proves what ran.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from latchkit import Daemon, Home, WireClient, our_server_cmd, stop_process, via_shim, wait_until

SHIM = via_shim("test", our_server_cmd())
TOOL = "run_command"
FAKE_SERVER = Path(__file__).with_name("fake_notifications.py")
SPOOF = Path(__file__).with_name("spoof_action.py")
SYSTEM_PYTHON = "/usr/bin/python3"
LONG_HOLD = "[approvals]\nhold_seconds = 30\n"
SHORT_HOLD = "[approvals]\nhold_seconds = 1\n"

SECRETS = {
    "openai": "sk-proj-Zq8vN3xK7mB2pL9wR4tY6uH1jF5gD0sAa",
    "github": "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A",
    "url_password": "hunter2-Correct-Horse",
}



def _have_dbus_tools() -> bool:
    if not shutil.which("dbus-daemon") or not Path(SYSTEM_PYTHON).exists():
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import dbus, gi"], capture_output=True, timeout=30)
    return probe.returncode == 0


# tests/run installs these; only a hand-run on a machine without them skips.
pytestmark = pytest.mark.skipif(
    not _have_dbus_tools() and not os.environ.get("LATCH_REQUIRE_ALL_TESTS"),
    reason="needs dbus-daemon and /usr/bin/python3 with python3-dbus and python3-gi "
    "(apt-get install dbus-daemon python3-dbus python3-gi)",
)


class Notifications:
    """The fake notification server on a private session bus."""

    def __init__(self, home: Home, flags: list[str], serve: bool = True) -> None:
        env = {"PATH": "/usr/bin:/bin", "LATCH_HOME": str(home.latch_home)}
        self.bus_log = open(home.new_log("dbus-daemon"), "w")
        self.bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.bus_log,
            text=True,
            start_new_session=True,
        )
        assert self.bus.stdout is not None
        self.address = self.bus.stdout.readline().strip()
        assert self.address.startswith("unix:"), f"dbus-daemon printed {self.address!r}"
        self.record = home.path / "notifications.jsonl"
        self.trigger = home.path / "notifications.trigger"
        self.log = open(home.new_log("fake-notifications"), "w")
        self.server: subprocess.Popen[bytes] | None = None
        if not serve:
            return
        self.server = subprocess.Popen(
            [SYSTEM_PYTHON, str(FAKE_SERVER), str(self.record), str(self.trigger), *flags],
            env={**env, "DBUS_SESSION_BUS_ADDRESS": self.address},
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_until(lambda: any(c["method"] == "ready" for c in self.calls()), 15):
            raise AssertionError("the fake notification server did not start; see its log")

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        calls = [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]
        return [c for c in calls if method is None or c["method"] == method]

    def wait(self, method: str, pred: Callable[[dict[str, Any]], bool] = lambda c: True, timeout: float = 15) -> Any:
        found = wait_until(lambda: [c for c in self.calls(method) if pred(c)], timeout)
        assert found, f"no matching {method} within {timeout}s; calls: {self.calls()}"
        return found[-1]

    def invoke(self, notification_id: int, action: str) -> None:
        with self.trigger.open("a") as f:
            f.write(json.dumps({"id": notification_id, "action": action}) + "\n")

    def stop(self) -> None:
        if self.server is not None:
            stop_process(self.server, grace=3)
        stop_process(self.bus, grace=3)
        self.log.close()
        self.bus_log.close()


@pytest.fixture
def notifications(home: Home, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Notifications]]:
    """Factory: a private bus with the fake server; daemons started after it use that bus."""
    started: list[Notifications] = []

    def start(*flags: str, serve: bool = True) -> Notifications:
        n = Notifications(home, list(flags), serve)
        started.append(n)
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", n.address)
        return n

    yield start
    for n in started:
        n.stop()


@pytest.fixture
def shim(wire: Callable[..., WireClient]) -> Callable[[], WireClient]:
    def connect() -> WireClient:
        client = wire(SHIM)
        client.initialize()
        assert "result" in client.call("tools/list", {}, timeout=20)
        return client

    return connect


def call(client: WireClient, args: dict[str, Any]) -> int:
    return client.request("tools/call", {"name": TOOL, "arguments": args})


def result(client: WireClient, request_id: int, timeout: float = 30) -> dict[str, Any]:
    answer = client.response(request_id, timeout)
    assert "result" in answer, answer
    return answer["result"]


def desktop_channel(home: Home, pred: Callable[[dict[str, Any]], bool] = lambda c: True) -> dict[str, Any]:
    """The desktop channel in `latch status --json` once PRED holds (its first
    bus attempt runs beside the daemon's start)."""

    def find() -> dict[str, Any] | None:
        channels = home.latch_json("status", "--json")["channels"]
        return next((c for c in channels if c["name"] == "desktop" and pred(c)), None)

    found = wait_until(find, 10, interval=0.1)
    assert found, f"no matching desktop channel: {home.latch_json('status', '--json')['channels']}"
    return found


def test_a_pending_approval_raises_a_notification_with_server_tool_class_and_summary(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=LONG_HOLD)
    client = shim()
    call(client, {"command": "make deploy"})
    pending = home.wait_pending(tool=TOOL)
    note = n.wait("Notify")
    assert note["replaces_id"] == 0
    assert note["app_name"] == "Latch"
    assert "EXECUTE" in note["summary"], note
    first_line = note["body"].splitlines()[0]
    assert first_line == "test · run_command · EXECUTE", note
    assert '"command":"make deploy"' in note["body"], note
    assert f"approval {pending['id']}" in note["body"], note
    assert note["actions"] == ["approve", "Approve", "deny", "Deny"], note
    assert max(len(line) for line in note["body"].splitlines()) <= 200, note


def test_the_approve_button_runs_the_held_call_and_the_audit_says_desktop(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=LONG_HOLD)
    client = shim()
    args = {"command": "make deploy"}
    request = call(client, args)
    approval = str(home.wait_pending(tool=TOOL)["id"])
    note = n.wait("Notify")
    assert home.recorded(TOOL) == []

    n.invoke(note["id"], "approve")
    answered = result(client, request)
    assert not answered.get("isError"), answered
    assert [c["arguments"] for c in home.recorded(TOOL)] == [args]
    answers = [r for r in home.audit() if r["kind"] == "answer" and str(r.get("approval_id")) == approval]
    assert len(answers) == 1, answers
    assert str(answers[0].get("answered_by", "")).startswith("desktop:"), answers
    assert answers[0]["decision"].lower() == "allow", answers
    # Answered: its notification goes away.
    n.wait("CloseNotification", lambda c: c["id"] == note["id"])
    assert home.pending() == []


def test_a_button_press_from_another_bus_peer_answers_nothing_and_is_recorded(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=LONG_HOLD)
    client = shim()
    args = {"command": "make deploy"}
    request = call(client, args)
    approval = str(home.wait_pending(tool=TOOL)["id"])
    note = n.wait("Notify")
    # A program of the user's, not the notification server, emits the signal.
    spoof = subprocess.run(
        [SYSTEM_PYTHON, str(SPOOF), n.address, str(note["id"]), "approve"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    sender = spoof.stdout.strip()
    refused = wait_until(lambda: [r for r in home.audit() if r["kind"] == "answer_refused"], 15, 0.1)
    assert refused, home.audit()
    assert refused[0]["answered_by"] == f"desktop:{sender}", refused
    assert str(refused[0]["approval_id"]) == approval, refused
    assert [str(p["id"]) for p in home.pending()] == [approval]
    assert home.recorded(TOOL) == []
    # The real server's press still works.
    n.invoke(note["id"], "approve")
    assert not result(client, request).get("isError")


def test_the_deny_button_blocks_the_held_call(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=LONG_HOLD)
    client = shim()
    request = call(client, {"command": "rm -rf build"})
    note = n.wait("Notify")
    n.invoke(note["id"], "deny")
    answered = result(client, request)
    assert answered.get("isError"), answered
    assert home.recorded(TOOL) == []


def test_a_notification_closes_when_the_approval_is_answered_from_the_cli(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=LONG_HOLD)
    client = shim()
    request = call(client, {"command": "make deploy"})
    pending = home.wait_pending(tool=TOOL)
    note = n.wait("Notify")
    home.approve(pending["id"])
    assert not result(client, request).get("isError")
    n.wait("CloseNotification", lambda c: c["id"] == note["id"])
    # A late button press on the closed notification changes nothing.
    n.invoke(note["id"], "deny")
    assert len(home.recorded(TOOL)) == 1


def test_a_retried_call_replaces_its_notification_instead_of_stacking_a_new_one(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=SHORT_HOLD)
    client = shim()
    args = {"command": "make deploy"}
    first = result(client, call(client, args))
    assert first.get("isError"), first  # held past the limit: pending
    note = n.wait("Notify")
    # The agent retries the identical call: it joins the same approval.
    second = call(client, args)
    again = n.wait("Notify", lambda c: c["replaces_id"] == note["id"])
    assert again["id"] == note["id"]
    assert {c["id"] for c in n.calls("Notify")} == {note["id"]}
    result(client, second)
    assert len(home.pending()) == 1


def test_secrets_in_arguments_never_reach_a_notification(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    # No action buttons, markup on: the body tells how to answer instead.
    n = notifications("--no-actions", "--markup")
    start_daemon(policy=LONG_HOLD)
    client = shim()
    args = {
        "command": f"curl -H 'Authorization: Bearer {SECRETS['openai']}' "
        f"https://deploy:{SECRETS['url_password']}@ci.example.com/hook?t={SECRETS['github']}",
        "api_key": SECRETS["openai"],
        "env": {"GITHUB_TOKEN": SECRETS["github"]},
    }
    request = call(client, args)
    pending = home.wait_pending(tool=TOOL)
    note = n.wait("Notify")
    assert note["actions"] == [], note
    assert f"latch approve {pending['id']}" in note["body"], note
    assert "curl" in note["body"], note
    home.deny(pending["id"])
    result(client, request)
    n.wait("CloseNotification")
    everything = n.record.read_text()
    for name, secret in SECRETS.items():
        assert secret not in everything, f"the {name} secret reached the notification server:\n{everything}"
        # Nor a long piece of it.
        assert secret[:12] not in everything, f"part of the {name} secret leaked:\n{everything}"


def test_classes_not_listed_in_notify_raise_no_notification(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=LONG_HOLD + '[notify]\nclasses = ["SUBMIT"]\n')
    client = shim()
    request = call(client, {"command": "make deploy"})
    pending = home.wait_pending(tool=TOOL)
    # The daemon handles events in order: once the CLI's answer has closed
    # the approval, a notification for it would have been sent already.
    home.approve(pending["id"])
    result(client, request)
    assert n.calls("Notify") == [], n.calls()
    assert desktop_channel(home) == {"name": "desktop", "enabled": True}


def test_desktop_false_turns_the_channel_off(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=LONG_HOLD + "[notify]\ndesktop = false\n")
    client = shim()
    request = call(client, {"command": "make deploy"})
    home.approve(home.wait_pending(tool=TOOL)["id"])
    result(client, request)
    assert n.calls("Notify") == []
    assert desktop_channel(home) == {"name": "desktop", "enabled": False}


def test_without_a_session_bus_the_daemon_works_and_status_names_the_problem(
    home: Home, start_daemon: Callable[..., Daemon], shim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a daemon started by a shim sees: no bus variable, no runtime dir bus.
    runtime = home.path / "runtime"
    runtime.mkdir()
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    if Path(f"/run/user/{os.getuid()}/bus").exists():
        pytest.skip("this machine has a user bus at /run/user/UID/bus")
    daemon = start_daemon(policy=LONG_HOLD)
    desktop = desktop_channel(home, lambda c: "problem" in c)
    assert desktop["enabled"] is True
    assert "no D-Bus session bus" in desktop["problem"] and "latch tui" in desktop["problem"], desktop

    # Approvals still work, and the problem is logged once, not per approval.
    client = shim()
    for command in ("make deploy", "make release"):
        request = call(client, {"command": command})
        home.approve(home.wait_pending(tool=TOOL)["id"])
        assert not result(client, request).get("isError")
    assert len(home.recorded(TOOL)) == 2
    assert daemon.log().count("desktop notifications:") == 1, daemon.log()


def quiet_hours_covering_now() -> str:
    """A quiet-hours window from 5 minutes ago to 10 minutes from now (local time)."""
    now = time.localtime()
    minute = now.tm_hour * 60 + now.tm_min

    def hhmm(m: int) -> str:
        m %= 24 * 60
        return f"{m // 60:02d}:{m % 60:02d}"

    return f"{hhmm(minute - 5)}-{hhmm(minute + 10)}"


def test_quiet_hours_hold_notifications_back_until_they_end(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=LONG_HOLD + f'[notify]\nquiet_hours = "{quiet_hours_covering_now()}"\n')
    client = shim()
    # One approval answered during the quiet hours, one still waiting.
    request = call(client, {"command": "make deploy"})
    home.approve(home.wait_pending(tool=TOOL)["id"])
    result(client, request)
    request = call(client, {"command": "make release"})
    waiting = home.wait_pending(tool=TOOL)
    time.sleep(0.5)
    assert n.calls("Notify") == [], n.calls()

    # The quiet hours end (here: removed by a reload): the waiting one is
    # shown, the answered one never is.
    home.write_policy(LONG_HOLD)
    note = n.wait("Notify")
    assert f"approval {waiting['id']}" in note["body"], note
    assert "make release" in note["body"], note
    home.approve(waiting["id"])
    assert not result(client, request).get("isError")
    assert len(n.calls("Notify")) == 1, n.calls()


def test_a_policy_reload_turns_desktop_notifications_on(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    n = notifications()
    start_daemon(policy=LONG_HOLD + "[notify]\ndesktop = false\n")

    desktop_channel(home, lambda c: c == {"name": "desktop", "enabled": False})
    home.write_policy(LONG_HOLD + "[notify]\ndesktop = true\n")
    desktop_channel(home, lambda c: c == {"name": "desktop", "enabled": True})
    client = shim()
    request = call(client, {"command": "make deploy"})
    pending = home.wait_pending(tool=TOOL)
    note = n.wait("Notify")
    assert f"approval {pending['id']}" in note["body"], note
    home.approve(pending["id"])
    result(client, request)


def test_a_bus_without_a_notification_server_is_reported_and_approvals_still_work(
    home: Home, start_daemon: Callable[..., Daemon], notifications: Callable[..., Notifications], shim: Any
) -> None:
    notifications(serve=False)
    daemon = start_daemon(policy=LONG_HOLD)
    desktop_channel(home, lambda c: "notification server did not answer" in (c.get("problem") or ""))
    client = shim()
    request = call(client, {"command": "make deploy"})
    home.approve(home.wait_pending(tool=TOOL)["id"])
    assert not result(client, request).get("isError")
    assert daemon.log().count("desktop notifications:") == 1, daemon.log()
