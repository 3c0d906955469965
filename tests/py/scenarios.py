"""Conversations with the real npm MCP servers, written once and run both
directly and through `latch shim`: each returns a transcript (plain JSON-like
data) so a test can demand that the two are identical."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio

from latchkit import Home, everything_cmd, filesystem_cmd, list_all_tools, mcp_session, result_json, wait_for_tools

# server-everything registers these only once the client's capabilities are known.
EVERYTHING_CONDITIONAL_TOOLS = ("get-roots-list", "trigger-sampling-request", "trigger-elicitation-request")

# server-everything tools whose answers do not depend on time, randomness or the environment.
EVERYTHING_STABLE_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("echo", {"message": "hello through Latch"}),
    ("get-sum", {"a": 40, "b": 2}),
    ("get-tiny-image", {}),
    ("get-structured-content", {"location": "Chicago"}),
    ("get-annotated-message", {"messageType": "success", "includeImage": True}),
]


def fresh_root(home: Home) -> Path:
    """An empty folder for server-filesystem, the same path every time it is called."""
    root = home.work / "fsroot"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    (root / "existing.txt").write_text("line one\nline two\nline three\n")
    (root / "sub").mkdir()
    (root / "sub" / "deep.md").write_text("# Deep\n")
    return root


async def filesystem_transcript(home: Home, wrap: Any = None) -> dict[str, Any]:
    """Lists tools, then reads, writes, edits, moves and lists files in a fresh root.

    WRAP turns the server command into the one to run (identity: direct).
    """
    root = fresh_root(home)
    cmd = filesystem_cmd(root)
    if wrap is not None:
        cmd = wrap(cmd)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_allowed_directories", {}),
        ("read_text_file", {"path": str(root / "existing.txt")}),
        ("read_text_file", {"path": str(root / "existing.txt"), "head": 2}),
        ("write_file", {"path": str(root / "new.txt"), "content": "written through MCP\n"}),
        ("read_text_file", {"path": str(root / "new.txt")}),
        (
            "edit_file",
            {"path": str(root / "new.txt"), "edits": [{"oldText": "through", "newText": "via"}]},
        ),
        ("create_directory", {"path": str(root / "made")}),
        ("move_file", {"source": str(root / "new.txt"), "destination": str(root / "made" / "moved.txt")}),
        ("list_directory", {"path": str(root)}),
        ("directory_tree", {"path": str(root)}),
        ("search_files", {"path": str(root), "pattern": "*.md"}),
        ("read_multiple_files", {"paths": [str(root / "existing.txt"), str(root / "made" / "moved.txt")]}),
        ("read_text_file", {"path": "/etc/hostname"}),  # outside the root: the server refuses
    ]
    transcript: dict[str, Any] = {"calls": []}
    async with mcp_session(home, cmd) as session:
        transcript["tools"] = await list_all_tools(session)
        for name, args in calls:
            result = await session.call_tool(name, args)
            transcript["calls"].append((name, result_json(result)))
    transcript["files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    transcript["moved"] = (root / "made" / "moved.txt").read_text()
    return transcript


async def everything_transcript(home: Home, wrap: Any = None) -> dict[str, Any]:
    """Tool list (with the conditional tools) and the stable tools' results."""
    cmd = everything_cmd() if wrap is None else wrap(everything_cmd())
    transcript: dict[str, Any] = {"calls": []}
    async with mcp_session(home, cmd, sampling=True, elicitation=True, roots=True) as session:
        transcript["tools"] = await wait_for_tools(session, EVERYTHING_CONDITIONAL_TOOLS)
        for name, args in EVERYTHING_STABLE_CALLS:
            transcript["calls"].append((name, result_json(await session.call_tool(name, args))))
    return transcript


async def everything_progress(home: Home, wrap: Any = None) -> tuple[dict[str, Any], list[tuple[float, float | None]]]:
    """trigger-long-running-operation with a progressToken: its result and the progress seen."""
    cmd = everything_cmd() if wrap is None else wrap(everything_cmd())
    progress: list[tuple[float, float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))

    async with mcp_session(home, cmd) as session:
        result = await session.call_tool(
            "trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=on_progress
        )
    return result_json(result), progress


async def everything_client_features(home: Home, wrap: Any = None) -> dict[str, Any]:
    """Server-to-client requests inside a tool call: sampling, elicitation, roots."""
    cmd = everything_cmd() if wrap is None else wrap(everything_cmd())
    out: dict[str, Any] = {}
    async with mcp_session(home, cmd, sampling=True, elicitation=True, roots=True) as session:
        await wait_for_tools(session, EVERYTHING_CONDITIONAL_TOOLS)
        with anyio.fail_after(30):
            out["sampling"] = result_json(
                await session.call_tool("trigger-sampling-request", {"prompt": "Say hi", "maxTokens": 20})
            )
            out["elicitation"] = result_json(await session.call_tool("trigger-elicitation-request", {}))
            out["roots"] = result_json(await session.call_tool("get-roots-list", {}))
    return out


def texts(result: dict[str, Any]) -> str:
    return "\n".join(c.get("text", "") for c in result.get("content", []))


def assert_progress_reported(progress: list[tuple[float, float | None]], steps: int) -> None:
    assert [v for v, _ in progress] == [float(i) for i in range(1, steps + 1)], progress
    assert all(total == steps for _, total in progress), progress
