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


def test_policy_check_json(home: Home) -> None:
    import json

    good = home.path / "good.toml"
    good.write_text("[[rule]]\nname = \"reads\"\nserver = \"fs\"\ntool = \"read_file\"\neffect = \"allow\"\n")
    run = home.latch("policy", "check", "--json", str(good), check=False)
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["ok"] is True and report["rules"] == 1, run
    bad = home.path / "bad.toml"
    bad.write_text("[[rule]]\nname = \"x\"\nserver = \"fs\"\neffect = \"allowed\"\n")
    run = home.latch("policy", "check", "--json", str(bad), check=False)
    report = json.loads(run.stdout)
    assert run.returncode == 1 and report["ok"] is False, run
    assert report["problems"] and report["problems"][0]["line"] >= 1, report


def test_approve_and_deny_json(home: Home, daemon) -> None:  # type: ignore[no-untyped-def]
    import json

    for verb in ("approve", "deny"):
        run = home.latch(verb, "no-such-approval", "--json", check=False)
        answer = json.loads(run.stdout)
        assert run.returncode == 1 and answer["ok"] is False and answer["message"], run


def test_tui_without_a_terminal_says_so_in_one_plain_line(home: Home) -> None:
    run = home.latch("tui", check=False)
    assert run.returncode == 2, run
    assert run.stdout == "", run.stdout
    assert run.stderr.count("\n") == 1 and "needs a terminal" in run.stderr, run.stderr
    assert "\x1b" not in run.stderr
    # Nothing was started for it.
    assert not (home.latch_home / "run" / "latch.sock").exists()


def test_completions_load_in_bash_and_name_the_subcommands(home: Home) -> None:
    import subprocess

    script = home.latch("completions", "bash").stdout
    assert "audit" in script and "install" in script, script[:200]
    completion = home.path / "latch.bash"
    completion.write_text(script)
    loaded = subprocess.run(
        ["bash", "-c", f"source {completion} && complete -p latch"], capture_output=True, text=True, timeout=10
    )
    assert loaded.returncode == 0 and "latch" in loaded.stdout, loaded
    for shell in ("zsh", "fish"):
        assert home.latch("completions", shell).stdout
    assert home.latch("completions", "tcsh", check=False).returncode == 2
