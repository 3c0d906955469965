"""The real npm MCP servers, spoken to directly: the baseline every shim test
compares against, and a check that the pinned versions behave as the
scenarios assume."""

from __future__ import annotations

import pytest

from latchkit import TEST_ROOTS, Home
from scenarios import (
    EVERYTHING_CONDITIONAL_TOOLS,
    assert_progress_reported,
    everything_client_features,
    everything_progress,
    everything_transcript,
    filesystem_transcript,
    texts,
)


@pytest.mark.anyio
async def test_filesystem_reads_and_writes_in_its_root_and_refuses_outside(home: Home) -> None:
    transcript = await filesystem_transcript(home)
    names = {t["name"] for t in transcript["tools"]}
    assert {"read_text_file", "write_file", "edit_file", "move_file", "list_directory"} <= names
    calls = dict((name, result) for name, result in transcript["calls"][:3])
    assert "line one\nline two" in texts(calls["read_text_file"])
    assert transcript["moved"] == "written via MCP\n"
    assert "made/moved.txt" in transcript["files"]
    outside = transcript["calls"][-1][1]
    assert outside.get("isError") is True and "denied" in texts(outside).lower()


@pytest.mark.anyio
async def test_filesystem_transcript_is_reproducible(home: Home) -> None:
    # The shim tests compare a direct run with a shimmed one: two direct runs must agree.
    assert await filesystem_transcript(home) == await filesystem_transcript(home)


@pytest.mark.anyio
async def test_everything_lists_conditional_tools_and_answers_stable_calls(home: Home) -> None:
    first = await everything_transcript(home)
    assert set(EVERYTHING_CONDITIONAL_TOOLS) <= {t["name"] for t in first["tools"]}
    assert "42" in texts(dict(first["calls"])["get-sum"])
    assert first == await everything_transcript(home)


@pytest.mark.anyio
async def test_everything_reports_progress_to_a_progress_token(home: Home) -> None:
    result, progress = await everything_progress(home)
    assert "completed" in texts(result)
    assert_progress_reported(progress, 4)


@pytest.mark.anyio
async def test_everything_round_trips_sampling_elicitation_and_roots(home: Home) -> None:
    out = await everything_client_features(home)
    assert "sampled by the test client" in texts(out["sampling"])
    assert "Ada Lovelace" in texts(out["elicitation"])
    assert str(TEST_ROOTS[0].uri) in texts(out["roots"])
