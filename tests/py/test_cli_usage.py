"""Mistakes in what a person typed are usage errors (exit 2) whose message
says how to fix them, not internal errors (70)."""

from __future__ import annotations

from latchkit import Home


def test_bad_args_json_exits_2_with_an_example(home: Home) -> None:
    run = home.latch("policy", "explain", "--server", "fs", "--tool", "read_file", "--args", "{path: x}", check=False)
    assert run.returncode == 2, run
    assert "--args is not valid JSON" in run.stderr and "--args '{" in run.stderr, run.stderr


def test_a_missing_policy_file_exits_2_and_names_it(home: Home) -> None:
    missing = str(home.path / "no-such-policy.toml")
    run = home.latch("policy", "check", missing, check=False)
    assert run.returncode == 2, run
    assert f"no policy file at {missing}" in run.stderr, run.stderr
    run = home.latch("policy", "explain", "--server", "a", "--tool", "b", "--policy", missing, check=False)
    assert run.returncode == 2, run
