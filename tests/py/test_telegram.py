"""The Telegram fallback for approvals, end to end against a fake Bot API.

The daemon runs with `[telegram] api_url` pointing at `fake_telegram` on
127.0.0.1; an agent (the raw wire client) calls latch-test-server's
`run_command` through `latch shim`, which asks; the test plays the people
in the Telegram chat by queueing button presses for the bot's `getUpdates`.
What reached latch-test-server (`home.recorded()`) proves what ran; every
request body the bot sent is kept and searched for secrets.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_telegram import FakeTelegram, Request, user
from latchkit import Daemon, Home, WireClient, our_server_cmd, via_shim, wait_until

SHIM = via_shim("test", our_server_cmd())
TOOL = "run_command"  # EXECUTE: asks by default
TOKEN = "424242:TEST-fake-bot-token_for-latch-tests"

ALICE = user(1111, "alice", "Alice")  # allowed
BOB = user(2222, None, "Bob")  # allowed, no username
MALLORY = user(6666, "mallory", "Mallory")  # in the group, not allowed
GROUP = -100777

# Secrets of three kinds, in the arguments of the held call.
OPENAI_KEY = "sk-proj-Q7fTz9LmK2pXw8RvB4nYc6HdJ1sGa3Ue5Wi0Ok"
GITHUB_TOKEN = "ghp_R8kLm2Qx7Tz4Vb9Nc1Wd6Hy3Jf5Gs0Pa2Eu7"
URL_PASSWORD = "hunter2-Secr3t-pass"
SECRET_COMMAND = (
    f"curl -H 'Authorization: Bearer {OPENAI_KEY}' https://deploy:{URL_PASSWORD}@db.example.com/dump "
    f"&& git push https://x:{GITHUB_TOKEN}@github.com/acme/app"
)
SECRETS = [OPENAI_KEY, GITHUB_TOKEN, URL_PASSWORD]


def policy(tg_url: str, *, delay: int = 20, users: list[int] | None = None, extra: str = "") -> str:
    users = users if users is not None else [ALICE["id"], BOB["id"]]
    return (
        "[approvals]\nhold_seconds = 30\n\n"
        "[telegram]\nenabled = true\n"
        f"allowed_users = {json.dumps(users)}\nchat_id = {GROUP}\ndelay_seconds = {delay}\n"
        f'api_url = "{tg_url}"\n{extra}'
    )


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon (started with the test's environment) finds the token here."""
    monkeypatch.setenv("LATCH_TELEGRAM_TOKEN", TOKEN)


def agent(wire: Callable[..., WireClient]) -> WireClient:
    client = wire(SHIM)
    client.initialize()
    assert "result" in client.call("tools/list", {}, timeout=20)
    return client


def call(client: WireClient, command: str) -> int:
    return client.request("tools/call", {"name": TOOL, "arguments": {"command": command}})


def buttons(sent: Request) -> list[tuple[str, str]]:
    """(label, callback_data) of every button of a sendMessage."""
    rows = sent.json["reply_markup"]["inline_keyboard"]
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


def button(sent: Request, label: str) -> str:
    return dict(buttons(sent))[label]


def message_of(tg: FakeTelegram, sent: Request) -> dict[str, Any]:
    """The message a sendMessage made, as the fake answered it (what a press refers to)."""
    assert isinstance(sent.result, dict), sent
    return sent.result


def press(tg: FakeTelegram, who: dict[str, Any], data: str, sent: Request) -> Request:
    """Presses a button; returns the bot's answerCallbackQuery for it."""
    query_id = tg.press(who, data, message_of(tg, sent))
    return tg.wait_for("answerCallbackQuery", lambda r: r.json.get("callback_query_id") == query_id)


def assert_nothing_secret_left(tg: FakeTelegram) -> None:
    assert tg.requests, "the bot sent nothing"
    for r in tg.requests:
        for secret in [*SECRETS, TOKEN]:
            assert secret not in r.text, f"{secret!r} left the machine in {r.method}: {r.text}"


def telegram_state(home: Home) -> dict[str, Any] | None:
    status = home.latch_json("status", "--json")
    return next((c for c in status.get("channels", []) if c["name"] == "telegram"), None)


def wait_problem(home: Home, words: str, timeout: float = 15.0) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        state = telegram_state(home)
        return state if state and words in (state.get("problem") or "") else None

    state = wait_until(found, timeout, interval=0.2)
    assert state, f"`latch status --json` never showed a telegram problem with {words!r}: {telegram_state(home)}"
    return state


def result_of(client: WireClient, request_id: int, timeout: float = 20.0) -> dict[str, Any]:
    answer = client.response(request_id, timeout)
    assert "result" in answer, answer
    return answer["result"]


# ---------------------------------------------------------------- answering


def test_an_allowed_user_approves_from_telegram_and_the_call_runs(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tg: FakeTelegram, token_env: None
) -> None:
    start_daemon(policy=policy(tg.url))
    client = agent(wire)
    request = call(client, SECRET_COMMAND)

    # No console is attached: the message goes at once, to the group.
    sent = tg.wait_for("sendMessage")
    pending = home.wait_pending(tool=TOOL)
    assert sent.token == TOKEN
    assert sent.json["chat_id"] == GROUP
    text = sent.json["text"]
    for want in [pending["id"], "server: test", f"tool: {TOOL}", "class: EXECUTE", "db.example.com"]:
        assert want in text, f"{want!r} missing from the message:\n{text}"
    assert [label for label, _ in buttons(sent)] == ["Approve once", "Approve for session", "Deny"]
    values = [data for _, data in buttons(sent)]
    assert len(set(values)) == 3 and not any(pending["id"] in v for v in values), values

    # Someone else in the group presses Approve: refused, still pending.
    refused = press(tg, MALLORY, button(sent, "Approve once"), sent)
    assert "not allowed" in refused.json["text"], refused.json
    assert [p["id"] for p in home.pending()] == [pending["id"]]
    assert home.recorded() == []
    # The refused press is evidence: a row of its own in the audit log.
    attempts = [r for r in home.audit() if r.get("kind") == "answer_refused"]
    assert [(r["answered_by"], r["approval_id"]) for r in attempts] == [("telegram:@mallory", pending["id"])], attempts

    # Alice approves once: the held call runs.
    answered = press(tg, ALICE, button(sent, "Approve once"), sent)
    assert answered.json["text"].startswith(f"Approved {pending['id']} once"), answered.json
    result = result_of(client, request)
    assert not result.get("isError"), result
    assert [c["arguments"]["command"] for c in home.recorded(TOOL)] == [SECRET_COMMAND]
    assert home.pending() == []
    rows = [r for r in home.audit() if r.get("answered_by")]
    assert any(r["answered_by"] == "telegram:@alice" for r in rows), rows

    # The message now says so, without buttons.
    edit = tg.wait_for("editMessageText")
    assert edit.json["message_id"] == message_of(tg, sent)["message_id"]
    assert "Approved by @alice via Telegram" in edit.json["text"], edit.json
    assert "reply_markup" not in edit.json

    # Pressing again (a replay of the same value) changes nothing.
    again = press(tg, ALICE, button(sent, "Deny"), sent)
    assert "expired" in again.json["text"], again.json
    assert len(home.recorded(TOOL)) == 1

    assert_nothing_secret_left(tg)
    assert telegram_state(home) == {"name": "telegram", "enabled": True}
    assert "channel  telegram: working" in home.latch("status").stdout


def test_a_replayed_button_does_nothing_and_cli_answers_edit_the_message(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tg: FakeTelegram, token_env: None
) -> None:
    start_daemon(policy=policy(tg.url))
    client = agent(wire)
    first_req = call(client, "make deploy")
    first = tg.wait_for("sendMessage")
    first_id = home.wait_pending(tool=TOOL)["id"]

    # Answered at the terminal: the Telegram message is edited to say so.
    home.approve(first_id)
    assert not result_of(client, first_req).get("isError")
    edit = tg.wait_for("editMessageText")
    assert edit.json["message_id"] == message_of(tg, first)["message_id"]
    assert "Approved by" in edit.json["text"] and "on the command line" in edit.json["text"], edit.json
    assert "cli:" not in edit.json["text"], edit.json
    assert "reply_markup" not in edit.json

    # A second approval is waiting; the first one's buttons are dead.
    mark = tg.mark()
    second_req = call(client, "make deploy --force")
    second = tg.wait_for("sendMessage", after=mark)
    second_id = next(p["id"] for p in home.pending())
    assert second_id != first_id
    assert not set(dict(buttons(first)).values()) & set(dict(buttons(second)).values())
    for label, data in buttons(first):
        reply = press(tg, ALICE, data, first)
        assert "expired" in reply.json["text"], (label, reply.json)
    assert [p["id"] for p in home.pending()] == [second_id]
    assert len(home.recorded(TOOL)) == 1

    # Bob (no username) denies the second from Telegram: recorded by id.
    reply = press(tg, BOB, button(second, "Deny"), second)
    assert reply.json["text"].startswith(f"Denied {second_id}"), reply.json
    result = result_of(client, second_req)
    assert result.get("isError") and "Latch blocked" in result["content"][0]["text"], result
    assert len(home.recorded(TOOL)) == 1
    edit = tg.wait_for("editMessageText", lambda r: r.json["message_id"] == message_of(tg, second)["message_id"])
    assert f"Denied by {BOB['id']} via Telegram" in edit.json["text"], edit.json


def test_buttons_survive_a_daemon_restart_and_messages_of_approvals_closed_meanwhile_say_so(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tg: FakeTelegram, token_env: None
) -> None:
    daemon = start_daemon(policy=policy(tg.url))
    client = agent(wire)
    call(client, "make deploy")
    first = tg.wait_for("sendMessage")
    first_id = home.wait_pending(tool=TOOL)["id"]
    mark = tg.mark()
    call(client, "make release")
    second = tg.wait_for("sendMessage", after=mark)
    second_id = next(p["id"] for p in home.pending() if p["id"] != first_id)

    # The daemon restarts: both approvals are still pending, and nothing is
    # sent again for them.
    assert daemon.stop() == 0
    mark = tg.mark()
    start_daemon()
    assert sorted(p["id"] for p in home.pending()) == sorted([first_id, second_id])
    tg.wait_for("getUpdates", after=mark)
    time.sleep(2.5)  # a few of the channel's one-second ticks
    assert tg.calls("sendMessage")[-1] is second, [r.text for r in tg.calls("sendMessage")]

    # The old message's button still answers its approval.
    answered = press(tg, ALICE, button(first, "Approve once"), first)
    assert answered.json["text"].startswith(f"Approved {first_id} once"), answered.json
    assert [p["id"] for p in home.pending()] == [second_id]
    edit = tg.wait_for("editMessageText", lambda r: r.json["message_id"] == message_of(tg, first)["message_id"])
    assert "Approved by @alice via Telegram" in edit.json["text"], edit.json

    # The bot is off while the second is answered at the terminal; when it
    # is back, that message says it closed, and its buttons are dead.
    home.write_policy("[approvals]\nhold_seconds = 30\n")
    wait_until(lambda: telegram_state(home) == {"name": "telegram", "enabled": False}, 10.0, interval=0.2)
    home.deny(second_id)
    mark = tg.mark()
    home.write_policy(policy(tg.url))
    edit = tg.wait_for(
        "editMessageText", lambda r: r.json["message_id"] == message_of(tg, second)["message_id"], after=mark
    )
    assert "answered or withdrawn while this bot was not running" in edit.json["text"], edit.json
    assert "reply_markup" not in edit.json
    reply = press(tg, ALICE, button(second, "Approve once"), second)
    assert "expired" in reply.json["text"], reply.json
    assert len(tg.calls("sendMessage")) == 2
    assert_nothing_secret_left(tg)


def test_approve_for_session_lets_the_identical_call_run_again(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tg: FakeTelegram, token_env: None
) -> None:
    start_daemon(policy=policy(tg.url))
    client = agent(wire)
    request = call(client, "make test")
    sent = tg.wait_for("sendMessage")
    reply = press(tg, ALICE, button(sent, "Approve for session"), sent)
    assert "for this session" in reply.json["text"], reply.json
    assert not result_of(client, request).get("isError")
    # The same call again runs without asking.
    assert not result_of(client, call(client, "make test")).get("isError")
    assert len(home.recorded(TOOL)) == 2
    assert len(tg.calls("sendMessage")) == 1


def test_the_bot_waits_for_the_delay_while_a_console_is_attached(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tg: FakeTelegram, token_env: None
) -> None:
    start_daemon(policy=policy(tg.url, delay=3))
    console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        console.connect(str(home.socket))
        hello = {"hello": {"protocol": 1, "role": "console", "name": "pytest", "pid": os.getpid()}}
        console.sendall(json.dumps(hello).encode() + b"\n")
        assert wait_until(lambda: home.latch_json("status", "--json")["consoles"] == 1, 10)

        client = agent(wire)
        request = call(client, "make release")
        entry = home.wait_pending(tool=TOOL)
        sent = tg.wait_for("sendMessage", timeout=15)
        waited = sent.time - entry["created_at"] / 1000
        assert waited >= 2.9, f"sent after {waited:.1f}s although a console is attached and the delay is 3 s"
        press(tg, ALICE, button(sent, "Approve once"), sent)
        assert not result_of(client, request).get("isError")
    finally:
        console.close()


def test_enabling_the_section_starts_the_bot_and_disabling_it_stops_it_without_a_restart(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tg: FakeTelegram, token_env: None
) -> None:
    start_daemon(policy="[approvals]\nhold_seconds = 30\n")
    assert telegram_state(home) is None
    client = agent(wire)
    request = call(client, "make deploy")
    entry = home.wait_pending(tool=TOOL)
    assert tg.requests == []

    # Enabled by editing the policy: the approval already waiting is sent.
    home.write_policy(policy(tg.url))
    sent = tg.wait_for("sendMessage", timeout=20)
    assert entry["id"] in sent.json["text"]
    press(tg, ALICE, button(sent, "Approve once"), sent)
    assert not result_of(client, request).get("isError")

    # Disabled again: shown as off, and nothing more is sent.
    home.write_policy(policy(tg.url).replace("enabled = true", "enabled = false"))
    assert wait_until(lambda: (telegram_state(home) or {}).get("enabled") is False, 20, interval=0.2)
    assert "channel  telegram: off" in home.latch("status").stdout
    mark = tg.mark()
    request = call(client, "make deploy --again")
    home.wait_pending(tool=TOOL)
    time.sleep(2)
    assert [r.method for r in tg.requests[mark:] if r.method != "getupdates"] == []
    home.deny(home.wait_pending(tool=TOOL)["id"])
    assert result_of(client, request).get("isError")


def test_who_may_answer_follows_the_policy_without_resending_the_message(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tg: FakeTelegram, token_env: None
) -> None:
    start_daemon(policy=policy(tg.url, users=[ALICE["id"], BOB["id"]]))
    client = agent(wire)
    request = call(client, "make deploy")
    sent = tg.wait_for("sendMessage")
    reloads = len([r for r in home.audit() if r["kind"] == "policy_reload"])

    # Bob is taken off the list.
    home.write_policy(policy(tg.url, users=[ALICE["id"]]))
    assert wait_until(lambda: len([r for r in home.audit() if r["kind"] == "policy_reload"]) > reloads, 10)
    time.sleep(0.5)  # the channel reads the reload from the daemon's event bus
    reply = press(tg, BOB, button(sent, "Approve once"), sent)
    assert "not allowed" in reply.json["text"], reply.json
    assert home.pending() and home.recorded() == []

    # The message and its buttons stay valid for Alice: nothing was re-sent.
    press(tg, ALICE, button(sent, "Approve once"), sent)
    assert not result_of(client, request).get("isError")
    assert len(tg.calls("sendMessage")) == 1


# ---------------------------------------------------------------- when Telegram fails


def held_call_still_answers_from_the_cli(home: Home, wire: Callable[..., WireClient]) -> None:
    client = agent(wire)
    request = call(client, "make deploy")
    entry = home.wait_pending(tool=TOOL)
    home.approve(entry["id"])
    assert not result_of(client, request).get("isError")
    assert len(home.recorded(TOOL)) == 1


def test_a_wrong_token_shows_in_status_approvals_still_work_and_a_fixed_one_is_picked_up(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tg: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LATCH_TELEGRAM_TOKEN", raising=False)
    token_file = home.path / "telegram-token"
    token_file.write_text("424242:not-the-right-token\n")
    token_file.chmod(0o600)
    daemon = start_daemon(policy=policy(tg.url, extra=f'token_file = "{token_file}"\n'))
    state = wait_problem(home, "refused the bot token")
    assert state["enabled"] is True
    text = home.latch("status").stdout
    assert "channel  telegram: NOT WORKING" in text, text
    held_call_still_answers_from_the_cli(home, wire)
    assert tg.requests and all(r.token != TOKEN and r.result is None for r in tg.requests)
    # Logged once, not once per retry.
    assert daemon.log().count("refused the bot token") == 1, daemon.log()
    assert "not-the-right-token" not in daemon.log()

    # The right token written to the file is read on a later attempt.
    token_file.write_text(TOKEN + "\n")
    assert wait_until(lambda: telegram_state(home) == {"name": "telegram", "enabled": True}, 30, interval=0.2), (
        telegram_state(home)
    )
    client = agent(wire)
    request = call(client, "make deploy --now")
    sent = tg.wait_for("sendMessage", lambda r: r.token == TOKEN)
    press(tg, ALICE, button(sent, "Approve once"), sent)
    assert not result_of(client, request).get("isError")


def test_telegram_down_shows_in_status_and_approvals_still_work(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], token_env: None
) -> None:
    # A port nobody listens on.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = start_daemon(policy=policy(f"http://127.0.0.1:{port}"))
    state = wait_problem(home, "cannot reach the Bot API")
    assert str(port) in state["problem"]
    held_call_still_answers_from_the_cli(home, wire)
    # Retried meanwhile (the approval was due at once), logged once.
    assert daemon.log().count("cannot reach the Bot API") == 1, daemon.log()


def test_a_token_file_others_can_read_is_refused_until_it_is_private(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tg: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LATCH_TELEGRAM_TOKEN", raising=False)
    token_file = home.path / "telegram-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    start_daemon(policy=policy(tg.url, extra=f'token_file = "{token_file}"\n'))
    state = wait_problem(home, "chmod 600")
    assert "0644" in state["problem"] and TOKEN not in state["problem"]
    assert tg.requests == []

    # Made private, it is read on the next attempt and the bot starts.
    token_file.chmod(0o600)
    assert wait_until(lambda: (telegram_state(home) or {}).get("problem") is None, 20, interval=0.2), telegram_state(
        home
    )
    client = agent(wire)
    request = call(client, "make deploy")
    sent = tg.wait_for("sendMessage")
    assert sent.token == TOKEN
    press(tg, ALICE, button(sent, "Approve once"), sent)
    assert not result_of(client, request).get("isError")
