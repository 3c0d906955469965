"""Writes outside the workspace ask; writes inside it run at once.

The real @modelcontextprotocol/server-filesystem behind the real shim and
daemon with the built-in policy. The workspace is the client's MCP roots
when it sends them (the official Python client's `list_roots_callback`),
else the server's working directory and the folders on its command line. A
write outside (a plain path, `..`, a symlink out of the project) waits for a
person; denied, it never reaches the server. When the client's roots change
(`notifications/roots/list_changed`), its new roots decide.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types

from latchkit import (
    Approver,
    Daemon,
    Home,
    filesystem_cmd,
    mcp_session,
    our_server_cmd,
    text_of,
    via_shim,
    wait_until,
)


def blocked(result: Any) -> bool:
    return bool(result.is_error) and text_of(result).startswith("Latch blocked")


async def denied_write(home: Home, session: Any, path: Path) -> dict[str, Any]:
    """Writes PATH, expecting Latch to ask; a person denies. The pending entry."""
    approver = Approver(home, tool="write_file", action="deny")
    approver.start()
    with anyio.fail_after(40):
        result = await session.call_tool("write_file", {"path": str(path), "content": "x"})
    entry = approver.outcome()
    assert blocked(result), text_of(result)
    assert not path.exists()
    text = json.dumps(entry)
    assert "outside the workspace" in text, text
    return entry


async def allowed_write(session: Any, path: Path) -> None:
    with anyio.fail_after(20):
        result = await session.call_tool("write_file", {"path": str(path), "content": "ok"})
    assert not result.is_error, text_of(result)
    assert path.read_text() == "ok"


@pytest.mark.anyio
async def test_the_servers_folder_is_the_workspace_without_client_roots(home: Home, daemon: Daemon) -> None:
    project = home.work / "project"
    elsewhere = home.work / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "out").symlink_to(elsewhere)
    cmd = via_shim("fs", filesystem_cmd(project))
    async with mcp_session(home, cmd, cwd=project) as session:
        await allowed_write(session, project / "inside.txt")
        entry = await denied_write(home, session, elsewhere / "x.txt")
        assert str(elsewhere / "x.txt") in json.dumps(entry)
        await denied_write(home, session, project / ".." / "elsewhere" / "y.txt")
        # A symlink inside the project that leads out of it.
        await denied_write(home, session, project / "out" / "z.txt")
    assert not any(elsewhere.iterdir())


@pytest.mark.anyio
async def test_the_clients_roots_decide_and_follow_its_changes(home: Home, daemon: Daemon) -> None:
    project = home.work / "project"
    first = home.work / "first"
    second = home.work / "second"
    for d in (project, first, second):
        d.mkdir()
    roots = [first]

    async def list_roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=r.as_uri(), name=r.name) for r in roots])

    async def serves(session: Any, folder: Path) -> bool:
        text = text_of(await session.call_tool("list_allowed_directories", {}))
        return str(folder) in text

    cmd = via_shim("fs", filesystem_cmd(project))
    async with mcp_session(home, cmd, cwd=project, roots_callback=list_roots) as session:
        # The server asks for the roots after initialisation; once it serves
        # them, the shim has told the daemon (the answer passes the shim first).
        with anyio.fail_after(20):
            while not await serves(session, first):
                await anyio.sleep(0.05)
        await allowed_write(session, first / "a.txt")
        # The server's own folder is not the workspace once the client said.
        await denied_write(home, session, project / "b.txt")

        roots[:] = [second]
        await session.send_roots_list_changed()
        with anyio.fail_after(20):
            while not await serves(session, second):
                await anyio.sleep(0.05)
        await allowed_write(session, second / "c.txt")
        await denied_write(home, session, first / "d.txt")
    assert wait_until(lambda: home.pending() == [], 10), home.pending()


@pytest.mark.anyio
async def test_shell_writes_and_configured_folders(home: Home, start_daemon: Any) -> None:
    # A policy that allows the shell tool: a write outside still asks, a
    # folder listed in [workspace] does not.
    extra = home.work / "extra"
    elsewhere = home.work / "elsewhere"
    project = home.work / "project"
    for d in (extra, elsewhere, project):
        d.mkdir()
    start_daemon(f'[workspace]\npaths = ["{extra}"]\n\n[[rule]]\ntool = "run_command"\neffect = "allow"\n')
    async with mcp_session(home, via_shim("ops", our_server_cmd()), cwd=project) as session:
        for command in (f"echo x > {extra}/a 2>/dev/null", "cargo build 2>&1 | tee build.log"):
            with anyio.fail_after(20):
                result = await session.call_tool("run_command", {"command": command})
            assert not result.is_error, text_of(result)
        for command in (f"echo x >> {elsewhere}/b", f"cd {elsewhere} && cp /etc/hostname c"):
            approver = Approver(home, tool="run_command", action="deny")
            approver.start()
            with anyio.fail_after(40):
                result = await session.call_tool("run_command", {"command": command})
            entry = approver.outcome()
            assert blocked(result), text_of(result)
            assert "outside the workspace" in json.dumps(entry)
    ran = [c["arguments"]["command"] for c in home.recorded("run_command")]
    assert ran == [f"echo x > {extra}/a 2>/dev/null", "cargo build 2>&1 | tee build.log"]
