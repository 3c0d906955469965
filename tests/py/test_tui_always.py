"""`latch tui` end to end for a narrowed "always" and the rules view: the
real console in tmux (helpers from test_tui_e2e.py), the real daemon, a
held call made by the official Python MCP client through `latch shim`.

`A` offers scopes narrowest first with the rule it will write; the person
picks "commands starting `npm run test`" and saves; the call runs, and the
policy then allows `npm run test …` but still asks for `npm run test; rm
-rf ~` and `npm run testx`. `R` lists the rule with who added it; `d`, `y`
deletes it, and `npm run test` asks again.
"""

from __future__ import annotations

import json
import os
import pwd
from typing import Any

import anyio
import pytest
from latchkit import Daemon, Home, mcp_session, our_server_cmd, result_json, via_shim
from test_tui_e2e import ARM_WAIT, Tmux, tmux  # noqa: F401  (the fixture)

SHIM = via_shim("test", our_server_cmd())
COMMAND = "npm run test -- --grep login"


def decision(home: Home, command: str) -> str:
    out = home.latch(
        "policy", "explain", "--server", "test", "--tool", "run_command", "--args", json.dumps({"command": command}),
        "--json",
    ).stdout
    return str(json.loads(out)["decision"])


@pytest.mark.anyio
async def test_a_narrowed_always_from_the_console_and_its_undo_in_the_rules_view(
    home: Home, daemon: Daemon, tmux: Tmux
) -> None:
    console = tmux.console("c1", width=100, height=32)
    console.wait_ready()
    results: dict[str, Any] = {}
    async with mcp_session(home, SHIM) as session:

        async def call() -> None:
            results["call"] = await session.call_tool("run_command", {"command": COMMAND})

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await anyio.to_thread.run_sync(lambda: console.wait_text("test / run_command", COMMAND))
                await anyio.sleep(ARM_WAIT)
                await anyio.to_thread.run_sync(console.keys, "A")
                screen = await anyio.to_thread.run_sync(
                    lambda: console.wait_text("how far?", "this exact command", "the whole tool", "Writes to the policy:")
                )
                lines = screen.split("\n")
                first = next(i for i, line in enumerate(lines) if "this exact command" in line)
                whole = next(i for i, line in enumerate(lines) if "the whole tool" in line)
                assert first < whole, screen
                await anyio.to_thread.run_sync(console.keys, "j")
                await anyio.to_thread.run_sync(lambda: console.wait_text('command = ["npm", "run", "test"]'))
                assert "call" not in results, "nothing is sent before the rule is saved"
                await anyio.to_thread.run_sync(console.keys, "y")
    assert not result_json(results["call"]).get("isError"), results["call"]
    assert [c["arguments"]["command"] for c in home.recorded("run_command")] == [COMMAND]

    policy = (home.latch_home / "policy.toml").read_text()
    login = pwd.getpwuid(os.getuid()).pw_name
    assert f"# from tui ({login}) at " in policy and 'command = ["npm", "run", "test"]' in policy, policy
    assert decision(home, "npm run test") == "allow"
    for wider in ["npm run test; rm -rf ~", "npm run testx", "sudo npm run test"]:
        assert decision(home, wider) != "allow", wider

    # The rules view shows who added it; d, y deletes it.
    console.keys("R")
    console.wait_text("Rules", "d delete")
    for _ in range(40):
        console.keys("j")
    console.wait_text(f"added tui ({login}) at ", 'command = ["npm", "run", "test"]')
    console.keys("d")
    console.wait_text("delete this rule?")
    console.keys("y")
    console.wait_for(
        lambda s: 'command = ["npm", "run", "test"]' not in s and "outside-workspace" in s, "the rule gone from the view"
    )
    assert 'command = ["npm", "run", "test"]' not in (home.latch_home / "policy.toml").read_text()
    assert decision(home, "npm run test") == "ask"
