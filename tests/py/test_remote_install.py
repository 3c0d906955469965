"""`latch install` wraps a remote entry in `latch shim --url`, and the
wrapped entry, started the way a client starts a stdio server, reaches the
server with its headers; `uninstall` restores the bytes."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from latchkit import LATCH_BIN, Daemon, Home, WireClient
from remotekit import FaultServer

ALLOW_ALL = '[[rule]]\nserver = "*"\ntool = "*"\neffect = "allow"\n'


def client_expands(value: str, env: dict[str, str]) -> str:
    """Claude Code's `${VAR}` expansion of a config value."""
    return re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], value)


def test_an_installed_remote_entry_reaches_the_server_with_its_headers(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tmp_path: Path
) -> None:
    start_daemon(policy=ALLOW_ALL)
    with FaultServer(home) as fault:
        fake_home = tmp_path / "h"
        fake_home.mkdir()
        config = fake_home / ".claude.json"
        original = (
            '{\n  "mcpServers": {\n    "remote-tools": {\n      "type": "http",\n'
            f'      "url": "{fault.url("/mcp")}",\n'
            '      "headers": { "Authorization": "Bearer ${FAULT_TOKEN}" }\n    }\n  }\n}\n'
        )
        config.write_text(original)
        run = lambda *a: subprocess.run(  # noqa: E731
            [LATCH_BIN, *a], env={**os.environ, "HOME": str(fake_home)}, capture_output=True, text=True, timeout=30
        )
        out = run("install", "claude-code")
        assert out.returncode == 0, out.stderr + out.stdout
        assert "wrapped          remote-tools" in out.stdout, out.stdout
        entry = json.loads(config.read_text())["mcpServers"]["remote-tools"]
        assert entry["args"] == ["shim", "--name", "remote-tools", "--url", fault.url("/mcp")]
        assert "FAULT_TOKEN" not in " ".join(entry["args"])
        doctor = run("doctor")
        assert "  wrapped          remote-tools\n" in doctor.stdout, doctor.stdout
        assert "Bearer" not in doctor.stdout

        # Started as Claude Code starts a stdio server: its env expanded.
        secret = "tok-installed"
        env = {k: client_expands(v, {"FAULT_TOKEN": secret}) for k, v in entry["env"].items()}
        client = wire([entry["command"], *entry["args"]], env)
        client.initialize()
        answer = client.call("tools/call", {"name": "echo", "arguments": {"message": "via install"}})
        assert answer["result"]["content"][0]["text"] == "via install"
        client.close()
        assert all(r["headers"]["authorization"] == f"Bearer {secret}" for r in fault.requests())

        back = run("uninstall", "claude-code")
        assert back.returncode == 0, back.stderr
        assert config.read_text() == original


CODEX = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "codex"


def test_a_codex_remote_entry_is_wrapped_as_codex_reads_it_and_reaches_the_server(
    home: Home, start_daemon: Callable[..., Daemon], wire: Callable[..., WireClient], tmp_path: Path
) -> None:
    start_daemon(policy=ALLOW_ALL)
    with FaultServer(home) as fault:
        fake_home = tmp_path / "h"
        (fake_home / ".codex").mkdir(parents=True)
        config = fake_home / ".codex" / "config.toml"
        original = (
            f'model = "m"\n\n[mcp_servers.remote-tools]\nurl = "{fault.url("/mcp")}"\n'
            'bearer_token_env_var = "FAULT_TOKEN"\nhttp_headers = { "X-Team" = "blue" }\n'
        )
        config.write_text(original)
        env = {**os.environ, "HOME": str(fake_home), "CODEX_HOME": str(fake_home / ".codex")}
        run = lambda *a: subprocess.run(a, env=env, capture_output=True, text=True, timeout=60)  # noqa: E731
        out = run(LATCH_BIN, "install", "codex")
        assert out.returncode == 0, out.stderr + out.stdout
        assert "wrapped          remote-tools" in out.stdout, out.stdout
        # Codex itself reads the wrapped entry as a stdio server.
        listed = run(str(CODEX), "mcp", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        entry = next(s for s in json.loads(listed.stdout) if s["name"] == "remote-tools")["transport"]
        assert entry["type"] == "stdio" and entry["args"][:4] == ["shim", "--name", "remote-tools", "--url"]
        assert entry["env_vars"] == ["FAULT_TOKEN"]
        assert "blue" not in " ".join(entry["args"])

        # Started as Codex starts it: its env block plus the env_vars passed through.
        secret = "tok-codex"
        client = wire([entry["command"], *entry["args"]], {**entry["env"], "FAULT_TOKEN": secret})
        client.initialize()
        answer = client.call("tools/call", {"name": "echo", "arguments": {"message": "via codex"}})
        assert answer["result"]["content"][0]["text"] == "via codex"
        client.close()
        for r in fault.requests():
            assert r["headers"]["authorization"] == f"Bearer {secret}" and r["headers"]["x-team"] == "blue"

        assert run(LATCH_BIN, "uninstall", "codex").returncode == 0
        assert config.read_text() == original
