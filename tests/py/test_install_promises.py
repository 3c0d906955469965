"""`latch install` / `uninstall` keep their promises: uninstall gives back
the file byte for byte even when one of its servers was already wrapped
before `install` (and leaves no backup behind), and `--dry-run` prints no
secret from an `env` block or a URL.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_install import LATCH_REAL, Machine, machine  # noqa: F401  (the fixture)

PRE_WRAPPED = {
    "mcpServers": {
        "team-db": {
            "command": LATCH_REAL,
            "args": ["shim", "--name", "team-db", "--", "npx", "-y", "some-db-server"],
        },
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    }
}


def test_uninstall_restores_bytes_when_a_server_was_wrapped_before_install(machine: Machine) -> None:
    target = machine.project / ".mcp.json"
    original = (json.dumps(PRE_WRAPPED, indent=2) + "\n").encode()
    target.write_bytes(original)

    first = machine.latch("install", "claude-code", "--no-hooks")
    assert first.returncode == 0, first.stderr + first.stdout
    assert "already wrapped  team-db" in first.stdout and "wrapped          files" in first.stdout, first.stdout
    assert target.read_bytes() != original

    gone = machine.latch("uninstall", "claude-code", "--no-hooks")
    assert gone.returncode == 0, gone.stderr + gone.stdout
    assert target.read_bytes() == original, target.read_text()
    assert not Path(str(target) + ".latch-backup").exists(), "a backup is left behind"
    assert "team-db" in gone.stdout and "left as it was" in gone.stdout, gone.stdout


SECRETS = ["ghp_abcdefghijklmnopqrstuvwxyz0123456789", "sk-live-0123456789abcdefSECRET", "hunter2-pass"]


def test_dry_run_prints_no_secret_from_env_blocks_or_urls(machine: Machine) -> None:
    target = machine.project / ".mcp.json"
    config = {
        "mcpServers": {
            "github": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github", "--token", SECRETS[1]],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": SECRETS[0]},
            },
            "db": {"command": "npx", "args": ["-y", "pg-server", f"postgres://app:{SECRETS[2]}@db.internal/app"]},
        }
    }
    target.write_text(json.dumps(config, indent=2) + "\n")
    dry = machine.latch("install", "claude-code", "--no-hooks", "--dry-run")
    assert dry.returncode == 0, dry.stderr + dry.stdout
    assert "would wrap" in dry.stdout, dry.stdout
    printed = dry.stdout + dry.stderr
    for secret in SECRETS:
        assert secret not in printed, printed
    assert target.read_text() == json.dumps(config, indent=2) + "\n"


def test_a_shared_project_file_gets_latch_from_path_or_a_warning(machine: Machine) -> None:
    project_file = machine.project / ".mcp.json"
    user_file = machine.home / ".claude.json"
    servers = {"mcpServers": {"files": {"command": "npx", "args": ["-y", "server-filesystem", "/tmp"]}}}
    for f in (project_file, user_file):
        f.write_text(json.dumps(servers, indent=2) + "\n")
    original = project_file.read_bytes()

    # latch is not on PATH: the absolute path is written, with a warning.
    alone = machine.latch("install", "claude-code", "--no-hooks", env={"PATH": "/usr/bin:/bin"})
    assert alone.returncode == 0, alone.stderr + alone.stdout
    assert json.loads(project_file.read_text())["mcpServers"]["files"]["command"] == LATCH_REAL
    assert "teammates" in alone.stdout, alone.stdout
    assert machine.latch("uninstall", "claude-code", "--no-hooks").returncode == 0
    assert project_file.read_bytes() == original

    # The latch on PATH is this one: the project file names plain `latch`,
    # the user's own file keeps the absolute path.
    on_path = f"{Path(LATCH_REAL).parent}:/usr/bin:/bin"
    shared = machine.latch("install", "claude-code", "--no-hooks", env={"PATH": on_path})
    assert shared.returncode == 0, shared.stderr + shared.stdout
    assert "teammates" not in shared.stdout, shared.stdout
    assert json.loads(project_file.read_text())["mcpServers"]["files"]["command"] == "latch"
    assert json.loads(user_file.read_text())["mcpServers"]["files"]["command"].startswith("/")
    gone = machine.latch("uninstall", "claude-code", "--no-hooks", env={"PATH": on_path})
    assert gone.returncode == 0, gone.stderr + gone.stdout
    assert project_file.read_bytes() == original
    assert not Path(str(project_file) + ".latch-backup").exists()


def test_an_install_error_is_printed_once(machine: Machine) -> None:
    bad = machine.project / ".mcp.json"
    bad.write_text('{"mcpServers": {"x": {"command": "npx",, }}}\n')
    run = machine.latch("install", "claude-code", "--no-hooks")
    assert run.returncode == 1, run.stdout
    both = run.stdout + run.stderr
    assert both.count("left untouched") == 1, both


def test_doctor_checks_another_project_and_fails_while_a_server_is_uncovered(machine: Machine, tmp_path: Path) -> None:
    other = tmp_path / "other-project"
    other.mkdir()
    servers = {"mcpServers": {"files": {"command": "npx", "args": ["-y", "server-filesystem", "/tmp"]}}}
    (other / ".mcp.json").write_text(json.dumps(servers))
    env = {"LATCH_HOME": str(tmp_path / "latch-home")}

    here = machine.latch("doctor", env=env)
    assert "files" not in here.stdout, here.stdout
    there = machine.latch("doctor", "--project", str(other), env=env)
    assert there.returncode == 1, there.stdout
    assert "NOT wrapped      files" in there.stdout, there.stdout

    assert machine.latch("install", "claude-code", "--no-hooks", "--project", str(other)).returncode == 0
    covered = machine.latch("doctor", "--project", str(other), env=env)
    assert "wrapped          files" in covered.stdout and "0 not wrapped" in covered.stdout, covered.stdout
