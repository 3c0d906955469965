"""Secrets never stored, sent or shown, end to end.

The whole redaction corpus (core/tests/corpus/secrets.toml and args.toml,
fake values in the shapes of real formats) is sent as the arguments of one
tool call through the real `latch shim` with the official Python client; the
server's own command line carries `--api-key`; a bot token is pasted into
the policy's [telegram] section. Then every place a person or a program can
read is searched for any piece of any secret: the pending list, `latch
status`, `latch audit`, the daemon's log, and the raw bytes of every file in
LATCH_HOME (the SQLite database with its WAL included).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from latchkit import REPO, Daemon, Home, mcp_session, our_server_cmd, result_json, via_shim, wait_until

CORPUS = REPO / "core" / "tests" / "corpus"
TOOL = "run_command"  # EXECUTE: asks by default
SHORT_HOLD = "[approvals]\nhold_seconds = 1\n"
SERVER_KEY = "sk-proj-Qw7eRt9yUi3oPa5sDf1gHj4kLz8xCv2bNm6QwErTyUiOp0AsDfGh"
BOT_TOKEN = "7012345678:AAFq3Xk9Lm2Pz8Rt5Vw1Yb4Nc7Hd0Jg6SeU"


def pieces(secret: str) -> list[str]:
    """The parts of a secret that must not survive: every whitespace-separated
    piece of 4+ characters (the same rule as the cargo corpus test)."""
    return [p for p in secret.split() if len(p) >= 4]


def corpus() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The arguments of one call holding every corpus secret, and for each
    case the pieces that must vanish."""
    formats = tomllib.loads((CORPUS / "secrets.toml").read_text())["secret"]
    args_cases = tomllib.loads((CORPUS / "args.toml").read_text())["secret"]
    samples = {f"s{i}": case["text"] for i, case in enumerate(formats)}
    shaped = {f"a{i}": json.loads(case["json"]) for i, case in enumerate(args_cases)}
    secrets = {case["name"]: pieces(case.get("secret", case["text"])) for case in formats}
    secrets.update({case["name"]: case["secrets"] for case in args_cases})
    args = {"command": "make deploy", "samples": samples, "shaped": shaped}
    return args, secrets


def leaks(where: str, text: str, secrets: dict[str, list[str]]) -> list[str]:
    return [f"{name} in {where}: {p[:12]}…" for name, ps in secrets.items() for p in ps if p in text]


def everything_on_disk(home: Home) -> str:
    """Raw bytes of every file under LATCH_HOME (database, WAL, state), as text."""
    parts = []
    for path in sorted(home.latch_home.rglob("*")):
        if path.is_file():
            parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


@pytest.mark.anyio
async def test_no_corpus_secret_reaches_the_database_the_pending_list_status_or_the_log(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    daemon = start_daemon(policy=SHORT_HOLD)
    args, secrets = corpus()
    secrets["server --api-key"] = [SERVER_KEY]
    shim = via_shim("vault", [*our_server_cmd(), "--api-key", SERVER_KEY])
    async with mcp_session(home, shim) as session:
        with anyio.fail_after(20):
            await session.list_tools()
            result = result_json(await session.call_tool(TOOL, args))
    # Held past the short hold: the call waits in the pending list.
    assert result.get("isError"), result
    entry = home.wait_pending(tool=TOOL)
    # What each reader shows, and the raw files.
    shown = {
        "pending list": json.dumps(home.pending()),
        "latch pending": home.latch("pending").stdout,
        "latch status": home.latch("status").stdout + home.latch("status", "--json").stdout,
        "latch audit": json.dumps(home.audit(limit=500)),
        "daemon log": daemon.log(),
        "agent's answer": json.dumps(result),
    }
    home.deny(entry["id"])
    shown["files in LATCH_HOME"] = everything_on_disk(home)
    found = [leak for where, text in shown.items() for leak in leaks(where, text, secrets)]
    assert not found, f"{len(found)} leaks:\n" + "\n".join(found)
    # The person still sees what was asked: the masks, the command, the
    # server's row with its flag.
    assert "[REDACTED]" in shown["pending list"] and "make deploy" in shown["pending list"]
    assert "--api-key" in shown["latch audit"]
    print(f"{len(secrets)} secret cases through the real shim: none stored, shown or logged")


def test_a_bot_token_pasted_into_the_policy_is_refused_without_being_repeated(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    daemon = start_daemon(policy="")
    secret = BOT_TOKEN.split(":")[1]
    for text in (
        f'[telegram]\nenabled = true\ntoken = "{BOT_TOKEN}"\n',
        f'[telegram]\nallowed_users = ["{BOT_TOKEN}"]\n',
        f'[telegram]\napi_url = "https://api.telegram.org/bot{BOT_TOKEN}"\n',
    ):
        home.write_policy(text)

        def error() -> str | None:
            return home.latch_json("status", "--json")["policy_error"]

        message = wait_until(error, 10.0, interval=0.2)
        assert message and "token" in message, message
        status = home.latch("status").stdout + json.dumps(home.latch_json("status", "--json"))
        check = home.latch("policy", "check", check=False)
        for where, shown in (
            ("status", status),
            ("policy check", check.stdout + check.stderr),
            ("audit", json.dumps(home.audit(limit=50))),
            ("daemon log", daemon.log()),
        ):
            assert secret not in shown, f"the token is repeated in {where}:\n{shown}"
        home.write_policy("")
        assert wait_until(lambda: error() is None, 10.0, interval=0.2)
    # The database and every other file under LATCH_HOME, except the policy
    # file the person wrote it into (now emptied).
    assert secret not in everything_on_disk(home)
