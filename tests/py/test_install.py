"""`latch install` / `latch uninstall` / `latch doctor` on sample configs of
every client (tests/fixtures/install), with HOME pointed at a temp folder:
wrap, wrap again (no change), unwrap to the same bytes, a malformed file left
untouched while the others are processed, remote servers reported, and
`--dry-run` changing nothing. The last test starts a server from a rewritten
config, the way the client would, and sees it go through the shim.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from latchkit import LATCH_BIN, REPO, TEST_SERVER, Daemon, Home

FIXTURES = REPO / "tests" / "fixtures" / "install"
LATCH = os.path.abspath(LATCH_BIN)  # commands below run in another folder
LATCH_REAL = os.path.realpath(LATCH_BIN)
SERVER = os.path.abspath(TEST_SERVER)

# (client id, fixture, where it goes under HOME or the project ("P/"), servers wrapped (remote ones through
# `latch shim --url`), remote servers not covered)
CASES = [
    ("claude-desktop", "claude_desktop_config.json", ".config/Claude/claude_desktop_config.json",
     {"filesystem", "sqlite", "memory", "weather"}, set()),
    ("claude-code", "claude.json", ".claude.json", {"github", "airtable", "postgres", "sentry"}, set()),
    ("claude-code", "project.mcp.json", "P/.mcp.json", {"shared-server", "playwright", "api-server"}, set()),
    ("cursor", "cursor_mcp.json", ".cursor/mcp.json", {"filesystem", "web-search", "remote"}, set()),
    ("cursor", "cursor_mcp.json", "P/.cursor/mcp.json", {"filesystem", "web-search", "remote"}, set()),
    ("vscode", "vscode_settings.json", ".config/Code/User/settings.json", {"playwright"}, set()),
    ("vscode", "vscode_mcp.json", ".config/Code/User/mcp.json", {"Perplexity", "fetch", "github"}, set()),
    ("vscode", "vscode_mcp.json", "P/.vscode/mcp.json", {"Perplexity", "fetch", "github"}, set()),
    ("windsurf", "windsurf_mcp_config.json", ".codeium/windsurf/mcp_config.json", {"github", "figma"}, set()),
    ("codex", "codex_config.toml", ".codex/config.toml", {"docs", "context7", "time", "git", "search", "figma"}, set()),
    ("gemini", "gemini_settings.json", ".gemini/settings.json", {"pythonTools", "nodeServer", "httpServer"}, set()),
]


class Machine:
    """A fake HOME with a project folder inside it (the current folder of every command)."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.project = self.home / "code" / "proj"
        self.project.mkdir(parents=True)

    def path(self, where: str) -> Path:
        return self.project / where[2:] if where.startswith("P/") else self.home / where

    def put(self, fixture: str, where: str) -> Path:
        target = self.path(where)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURES / fixture, target)
        return target

    def latch(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "HOME": str(self.home), **(env or {})}
        full_env.pop("LATCH_HOME", None)
        full_env.update(env or {})
        return subprocess.run(
            [LATCH, *args],
            cwd=self.project,
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def wrapped_names(text: str, fixture: str) -> set[str]:
    """Servers of the file whose command is our latch, started with `shim --name NAME --`."""
    if fixture.endswith(".toml"):
        import tomllib

        servers = tomllib.loads(text).get("mcp_servers", {})
        entries = list(servers.items())
    else:
        # The fixtures with comments are parsed by stripping whole-line and trailing // comments.
        data = json.loads(strip_jsonc(text))
        lists = [data.get("mcpServers", {}), data.get("servers", {}), data.get("mcp", {}).get("servers", {})]
        lists += [p.get("mcpServers", {}) for p in data.get("projects", {}).values()]
        entries = [item for lst in lists for item in lst.items()]
    names = set()
    for name, entry in entries:
        if entry.get("command") == LATCH_REAL:
            assert entry["args"][:4] in (["shim", "--name", name, "--"], ["shim", "--name", name, "--url"]), entry
            names.add(name)
    return names


def strip_jsonc(text: str) -> str:
    """Good enough for our fixtures: drops comments and trailing commas outside strings."""
    out, i, in_str = [], 0, False
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        else:
            out.append(c)
        i += 1
    import re

    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


@pytest.mark.parametrize(("client", "fixture", "where", "wrapped", "remote"), CASES, ids=[c[2] for c in CASES])
def test_install_wraps_once_and_uninstall_restores_the_bytes(
    machine: Machine, client: str, fixture: str, where: str, wrapped: set[str], remote: set[str]
) -> None:
    target = machine.put(fixture, where)
    original = target.read_bytes()

    first = machine.latch("install", client)
    assert first.returncode == 0, first.stderr + first.stdout
    after = target.read_text()
    assert wrapped_names(after, fixture) == wrapped, first.stdout
    for name in wrapped:
        assert f"wrapped          {name}" in first.stdout, first.stdout
    for name in remote:
        assert f"not covered      {name}: remote server" in first.stdout, first.stdout
    backup = target.with_name(target.name + ".latch-backup")
    assert backup.read_bytes() == original, "the backup is not the file before the change"

    second = machine.latch("install", client)
    assert second.returncode == 0, second.stderr
    assert target.read_text() == after, "the second install changed the file"
    assert "wrapped          " not in second.stdout and "already wrapped" in second.stdout
    assert "nothing to change" in second.stdout

    gone = machine.latch("uninstall", client)
    assert gone.returncode == 0, gone.stderr
    assert target.read_bytes() == original, "uninstall did not restore the original bytes"
    assert not backup.exists(), "a backup equal to the restored file is left behind"


def test_comments_survive_in_jsonc_files(machine: Machine) -> None:
    target = machine.put("cursor_mcp.json", ".cursor/mcp.json")
    assert machine.latch("install", "cursor").returncode == 0
    text = target.read_text()
    for comment in ["// Cursor: global MCP servers", "/* The file system, read-write */", "// my projects", "// module"]:
        assert comment in text


def test_dry_run_prints_a_diff_and_changes_nothing(machine: Machine) -> None:
    placed = [machine.put(f, w) for _, f, w, _, _ in CASES if not w.startswith("P/")]
    before = {p: p.read_bytes() for p in placed}
    run = machine.latch("install", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert {p: p.read_bytes() for p in placed} == before
    assert not list(machine.home.rglob("*.latch-backup"))
    assert "--- ~/.cursor/mcp.json\n+++ ~/.cursor/mcp.json (after latch install)\n@@ " in run.stdout
    assert f'+      "command": "{LATCH_REAL}",' in run.stdout
    assert '-      "command": "npx",' in run.stdout
    assert "would wrap" in run.stdout and "dry run:" in run.stdout


def test_a_malformed_file_is_named_and_left_untouched_while_the_others_change(machine: Machine) -> None:
    bad = machine.put("malformed.json", "P/.mcp.json")
    good = machine.put("windsurf_mcp_config.json", ".codeium/windsurf/mcp_config.json")
    bad_before = bad.read_bytes()
    run = machine.latch("install")
    assert run.returncode == 1, run.stdout
    assert "~/code/proj/.mcp.json:5:64: expected `,` or `]`" in run.stderr, run.stderr
    assert "left untouched" in run.stderr
    assert bad.read_bytes() == bad_before
    assert not bad.with_name(".mcp.json.latch-backup").exists()
    assert wrapped_names(good.read_text(), "x.json") == {"github", "figma"}


def test_an_unknown_client_is_a_usage_error(machine: Machine) -> None:
    run = machine.latch("install", "emacs")
    assert run.returncode == 2
    assert "unknown client `emacs`: use one of claude-desktop, claude-code" in run.stderr


def test_no_config_at_all_is_said_plainly(machine: Machine) -> None:
    run = machine.latch("install")
    assert run.returncode == 0
    assert "no config file of any MCP client found" in run.stdout


def test_doctor_lists_wrapped_unwrapped_and_remote_servers_and_the_daemon(machine: Machine, home: Home) -> None:
    machine.put("gemini_settings.json", ".gemini/settings.json")
    machine.put("codex_config.toml", ".codex/config.toml")
    assert machine.latch("install", "codex").returncode == 0
    env = {"LATCH_HOME": str(home.latch_home)}
    report = machine.latch("doctor", env=env)
    # Servers are not covered: doctor fails (exit 1) until they are.
    assert report.returncode == 1, report.stderr
    out = report.stdout
    assert "  wrapped          docs\n" in out
    assert "  NOT wrapped      pythonTools\n" in out
    assert "  NOT wrapped      httpServer\n" in out
    assert "  wrapped          figma\n" in out
    assert "6 wrapped, 3 not wrapped, 0 remote not covered" in out
    assert "daemon    not running" in out
    assert "notify    not configured" in out and "telegram  not configured" in out
    home.write_policy("[notify]\ndesktop = false\n")
    out = machine.latch("doctor", env=env).stdout
    assert "notify    off ([notify] desktop = false in " in out, out
    (home.latch_home / "policy.toml").unlink()

    daemon = Daemon(home)
    try:
        daemon.wait_ready()
        out = machine.latch("doctor", env=env).stdout
        assert f"daemon    running (pid {daemon.pid}" in out, out
        assert "console   none attached — open one with `latch tui`" in out
        # From the daemon's channel report: absent, or the desktop channel's state.
        assert re.search(r"^notify    (not configured|working|NOT working: |configured, disabled)", out, re.M), out
        assert re.search(r"^telegram  ", out, re.M), out
    finally:
        daemon.stop()


def test_a_rewritten_entry_starts_its_server_through_the_shim(machine: Machine, home: Home, daemon: Daemon, wire) -> None:  # type: ignore[no-untyped-def]
    config = machine.path("P/.mcp.json")
    config.write_text(json.dumps({"mcpServers": {"ours": {"command": SERVER, "args": [], "env": {}}}}, indent=2))
    assert machine.latch("install", "claude-code").returncode == 0
    entry = json.loads(config.read_text())["mcpServers"]["ours"]
    assert entry["command"] == LATCH_REAL
    assert entry["args"] == ["shim", "--name", "ours", "--", SERVER]
    client = wire([entry["command"], *entry["args"]])
    client.initialize()
    answer = client.call("tools/call", {"name": "echo", "arguments": {"x": 1}})
    assert "result" in answer, answer
    status = home.latch_json("status", "--json")
    assert [s["server"] for s in status["shims"]] == ["ours"]


def test_a_symlinked_config_is_rewritten_through_the_link_and_keeps_its_mode(machine: Machine) -> None:
    dotfiles = machine.home / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "claude.json"
    shutil.copyfile(FIXTURES / "claude.json", real)
    real.chmod(0o600)
    link = machine.home / ".claude.json"
    link.symlink_to(real)
    original = real.read_bytes()
    assert machine.latch("install", "claude-code").returncode == 0
    assert link.is_symlink(), "the link was replaced by a file"
    assert wrapped_names(real.read_text(), "x.json") == {"github", "airtable", "postgres", "sentry"}
    assert (real.stat().st_mode & 0o777) == 0o600
    assert (dotfiles / "claude.json.latch-backup").read_bytes() == original
    assert machine.latch("uninstall", "claude-code").returncode == 0
    assert real.read_bytes() == original and link.is_symlink()


def test_doctor_names_a_wrapped_server_whose_latch_is_gone(machine: Machine, home: Home) -> None:
    config = machine.path(".cursor/mcp.json")
    config.parent.mkdir(parents=True)
    entry = {"command": "/nowhere/bin/latch", "args": ["shim", "--name", "fs", "--", "npx", "pkg"]}
    config.write_text(json.dumps({"mcpServers": {"fs": entry}}))
    report = machine.latch("doctor", env={"LATCH_HOME": str(home.latch_home)})
    assert report.returncode == 1
    assert "wrapped          fs: BROKEN, /nowhere/bin/latch does not exist" in report.stdout, report.stdout
    # uninstall still recognises it, and install then points at this latch.
    assert machine.latch("uninstall", "cursor").returncode == 0
    assert json.loads(config.read_text())["mcpServers"]["fs"] == {"command": "npx", "args": ["pkg"]}
    assert machine.latch("install", "cursor").returncode == 0
    assert wrapped_names(config.read_text(), "x.json") == {"fs"}


def test_install_adds_the_agents_hooks_beside_the_servers_in_one_file_and_uninstall_restores_both(
    machine: Machine,
) -> None:
    # Gemini CLI's settings.json and Codex's config.toml hold both the MCP servers and the hooks.
    gemini = machine.put("gemini_settings.json", ".gemini/settings.json")
    codex = machine.put("codex_config.toml", ".codex/config.toml")
    (machine.home / ".claude").mkdir()
    originals = {p: p.read_bytes() for p in (gemini, codex)}

    only_servers = machine.latch("install", "--no-hooks")
    assert only_servers.returncode == 0, only_servers.stdout
    assert "pre-tool hook" not in only_servers.stdout and not (machine.home / ".claude" / "settings.json").exists()
    assert '"hooks"' not in gemini.read_text() and "[[hooks.PreToolUse]]" not in codex.read_text()

    both = machine.latch("install")
    assert both.returncode == 0, both.stdout + both.stderr
    data = json.loads(strip_jsonc(gemini.read_text()))
    assert data["hooks"]["BeforeTool"][0]["hooks"][0]["command"].split()[1:3] == ["hook", "gemini"]
    assert wrapped_names(gemini.read_text(), "x.json") == {"pythonTools", "nodeServer", "httpServer"}
    import tomllib

    toml = tomllib.loads(codex.read_text())
    [group] = toml["hooks"]["PreToolUse"]
    assert group["hooks"][0]["command"].split()[1:3] == ["hook", "codex"]
    key = f"{codex}:pre_tool_use:0:0"
    assert toml["hooks"]["state"][key]["trusted_hash"].startswith("sha256:")
    claude = json.loads((machine.home / ".claude" / "settings.json").read_text())
    assert claude["hooks"]["PreToolUse"][0]["hooks"][0]["command"].split()[1:3] == ["hook", "claude-code"]
    # One backup per file, still the file before Latch touched it.
    for p, original in originals.items():
        assert p.with_name(p.name + ".latch-backup").read_bytes() == original

    gone = machine.latch("uninstall")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    for p, original in originals.items():
        assert p.read_bytes() == original, p
        assert not p.with_name(p.name + ".latch-backup").exists()
    assert not (machine.home / ".claude" / "settings.json").exists()


def test_hooks_only_and_servers_only_leave_the_other_half_alone(machine: Machine) -> None:
    gemini = machine.put("gemini_settings.json", ".gemini/settings.json")
    original = gemini.read_bytes()
    assert machine.latch("install", "--hooks", "gemini").returncode == 0
    assert wrapped_names(gemini.read_text(), "x.json") == set() and '"BeforeTool"' in gemini.read_text()
    assert machine.latch("install", "gemini").returncode == 0
    assert wrapped_names(gemini.read_text(), "x.json") == {"pythonTools", "nodeServer", "httpServer"}
    # Taking only the servers out keeps the hook, and the backup stays until both are gone.
    assert machine.latch("uninstall", "--no-hooks", "gemini").returncode == 0
    assert wrapped_names(gemini.read_text(), "x.json") == set() and '"BeforeTool"' in gemini.read_text()
    assert gemini.with_name("settings.json.latch-backup").read_bytes() == original
    assert machine.latch("uninstall", "gemini").returncode == 0
    assert gemini.read_bytes() == original and not gemini.with_name("settings.json.latch-backup").exists()
    assert machine.latch("install", "--hooks", "cursor").returncode == 2
