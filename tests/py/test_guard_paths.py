"""Self-protection holds for every spelling of a path or a command.

An agent with an allowed WRITE (or a policy that allows everything) tries to
rewrite Latch's policy through the real @modelcontextprotocol/server-filesystem
behind the real shim, with `//`, `/./`, `..`, `~`, a path relative to the
server, a symlink and a hard link; and to run `latch approve`, delete the
policy or kill the daemon through latch-test-server's `run_command` with
quotes, escapes, variables and substitutions. Every attempt is denied, the
policy file keeps its bytes and the server never sees the call. Both layouts:
LATCH_HOME, and the default one (HOME only, the policy under
~/.config/latch).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from latchkit import (
    CALL_TIMEOUT,
    LATCH_BIN,
    Approver,
    Daemon,
    Home,
    filesystem_cmd,
    our_server_cmd,
    processes_with_env,
    stop_process,
    text_of,
    via_shim,
    wait_until,
)

# A policy that allows everything: self-protection must hold anyway.
ALLOW_ALL = '[[rule]]\nserver = "*"\ntool = "*"\neffect = "allow"\n'


def blocked(result: Any) -> bool:
    return bool(result.is_error) and text_of(result).startswith("Latch blocked")


@asynccontextmanager
async def session(
    cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> AsyncIterator[ClientSession]:
    with open(log, "w") as errlog:
        params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env, cwd=str(cwd) if cwd else None)
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT) as s:
                with anyio.fail_after(20.0):
                    await s.initialize()
                yield s


def attack_paths(policy: Path, root: Path) -> dict[str, str]:
    """Spellings of POLICY for a filesystem server serving ROOT; makes the links."""
    link = root / "innocent.toml"
    link.symlink_to(policy)
    hard = root / "notes.toml"
    os.link(policy, hard)
    folder_link = root / "cfg"
    folder_link.symlink_to(policy.parent)
    s = str(policy)
    head, tail = os.path.split(s)
    return {
        "double slash": s.replace("/", "//"),
        "dot segments": head + "/./" + tail,
        "dot dot": head + "/../" + os.path.basename(head) + "/" + tail,
        "symlink": str(link),
        "symlinked folder": str(folder_link / tail),
        "hard link": str(hard),
    }


# ------------------------------------------------------------ LATCH_HOME layout


@pytest.mark.anyio
async def test_policy_spellings_are_denied_with_latch_home(home: Home, start_daemon: Callable[..., Daemon]) -> None:
    start_daemon(policy=ALLOW_ALL)
    policy = home.latch_home / "policy.toml"
    before = policy.read_bytes()
    spellings = attack_paths(policy, home.work)
    # The server resolves `~` against its HOME and relative paths against
    # the folder it serves: both name the policy here.
    env = home.server_env({"HOME": str(home.work)})
    spellings["tilde"] = "~/latch/policy.toml"
    spellings["relative to the served folder"] = "latch/policy.toml"
    spellings["relative with dot dot"] = "x/../latch/./policy.toml"
    cmd = via_shim("fs", filesystem_cmd(home.work))
    async with session(cmd, env, home.new_log("fs"), cwd=home.work) as s:
        ok = await s.call_tool("write_file", {"path": str(home.work / "fine.txt"), "content": "ok"})
        assert not ok.is_error, text_of(ok)
        for name, spelled in spellings.items():
            result = await s.call_tool("write_file", {"path": spelled, "content": '[defaults]\nwrite = "allow"\n'})
            assert blocked(result), f"{name}: {spelled}: {text_of(result)}"
            assert "Latch's own file" in text_of(result), text_of(result)
            read = await s.call_tool("read_text_file", {"path": spelled})
            assert blocked(read), f"read {name}: {spelled}: {text_of(read)}"
    assert policy.read_bytes() == before
    assert (home.work / "fine.txt").read_text() == "ok"


@pytest.mark.anyio
async def test_relative_path_from_the_servers_working_directory(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    # latch-test-server writes relative paths against its working directory.
    start_daemon(policy=ALLOW_ALL)
    policy = home.latch_home / "policy.toml"
    before = policy.read_bytes()
    cmd = via_shim("test", our_server_cmd())
    async with session(cmd, home.agent_env(), home.new_log("test"), cwd=home.latch_home) as s:
        result = await s.call_tool("write_file", {"path": "policy.toml", "content": "x"})
        assert blocked(result), text_of(result)
        result = await s.call_tool("write_file", {"path": "./run/../policy.toml", "content": "x"})
        assert blocked(result), text_of(result)
    assert policy.read_bytes() == before
    assert home.recorded("write_file") == []


@pytest.mark.anyio
async def test_a_path_latch_cannot_follow_asks_a_person(home: Home, start_daemon: Callable[..., Daemon]) -> None:
    """Paths whose end the daemon cannot find: a link whose target walks 260
    steps (`x/..` pairs, which the kernel follows) to the policy, and
    `/proc/self/cwd`, which is the server's own folder but the daemon's
    when the daemon reads it. Before, both counted as "not Latch's" and the
    server rewrote the policy under a policy that allows everything; now
    the call waits for a person (denied here), and `/proc/self/status`
    still runs."""
    start_daemon(policy=ALLOW_ALL)
    policy = home.latch_home / "policy.toml"
    before = policy.read_bytes()
    (home.work / "x").mkdir()
    long_way = "/".join([str(home.work)] + ["x", ".."] * 130 + ["latch", "policy.toml"])
    (home.work / "notes.toml").symlink_to(long_way)
    (home.work / "draft.toml").symlink_to(policy)
    assert os.path.realpath(home.work / "notes.toml") == str(policy)
    cmd = via_shim("test", our_server_cmd())
    async with session(cmd, home.agent_env(), home.new_log("test"), cwd=home.work) as s:
        for spelled in [str(home.work / "notes.toml"), "/proc/self/cwd/draft.toml"]:
            approver = Approver(home, tool="write_file", action="deny")
            approver.start()
            with anyio.fail_after(40):
                result = await s.call_tool("write_file", {"path": spelled, "content": '[defaults]\nwrite = "allow"\n'})
            entry = approver.outcome()
            assert blocked(result), f"{spelled}: {text_of(result)}"
            assert "cannot follow" in json.dumps(entry), entry
        ok = await s.call_tool("echo", {"path": "/proc/self/status"})
        assert not ok.is_error, text_of(ok)
    assert policy.read_bytes() == before


@pytest.mark.anyio
async def test_client_configs_and_hook_settings_may_be_read_not_written(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    start_daemon(policy=ALLOW_ALL)
    project = home.work / "project"
    (project / ".claude").mkdir(parents=True)
    mcp_json = project / ".mcp.json"
    mcp_json.write_text('{"mcpServers": {}}')
    settings = project / ".claude" / "settings.local.json"
    settings.write_text("{}")
    cmd = via_shim("fs", filesystem_cmd(home.work))
    async with session(cmd, home.server_env(), home.new_log("fs")) as s:
        for target in (mcp_json, settings, project / ".vscode" / "mcp.json"):
            read = await s.call_tool("read_text_file", {"path": str(target)})
            if target.exists():
                assert not blocked(read), text_of(read)
            wrote = await s.call_tool("write_file", {"path": str(target), "content": '{"env": {"LATCH_HOME": "/tmp"}}'})
            assert blocked(wrote), f"{target}: {text_of(wrote)}"
    assert mcp_json.read_text() == '{"mcpServers": {}}'


# ------------------------------------------------------------ shell commands


def shell_attacks(home: Home, daemon_pid: int) -> list[str]:
    policy = str(home.latch_home / "policy.toml")
    lh = str(home.latch_home)
    # A symlink to the binary, made by the agent earlier.
    link = Path(str(home.path)) / "tool"
    if not link.exists():
        link.symlink_to(LATCH_BIN)
    return [
        f"{link} approve 3",
        f"/proc/{daemon_pid}/exe approve 3",
        "latch approve 3",
        "l'a'tch approve 3",
        'lat""ch approve 3',
        "$'\\x6c\\x61\\x74\\x63\\x68' approve 3",
        "l\\atch approve --scope always 3",
        "x=lat; ${x}ch approve 3",
        '"$(which latch)" approve 3',
        f"{LATCH_BIN} deny 3",
        "$(printf lat)ch approve 3",
        "bash -c 'l\"\"atch policy accept'",
        "sudo -E env nohup latch approve 3",
        f"rm {policy}",
        f"rm -f {lh}//./policy.toml",
        f"cd {lh} && rm policy.toml",
        f"cd {lh}/run; rm ../policy.toml",
        f"echo '[defaults]' > {lh}/p'olicy'.toml",
        f"P={lh}; cat /tmp/evil > $P/policy.toml",
        f"mv {lh} /tmp/elsewhere",
        f"rm {lh}/p*.toml",
        f"sqlite3 {lh}/audit.db 'delete from events'",
        f"kill {daemon_pid}",
        f"kill -9 {daemon_pid}",
        "kill -9 -1",
        "pkill latch",
        "pkill -f 'l[a]tch daemon'",
        "killall latch",
        "pgrep latch | xargs kill",
        "kill $(pgrep -f latch)",
        f"rm {lh}/run/latch.sock",
        "systemctl --user stop latch.service",
        f"python3 -c \"open('{policy}', 'w').write('')\"",
    ]


@pytest.mark.anyio
async def test_shell_spellings_are_denied_even_when_execute_is_allowed(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    daemon = start_daemon(policy=ALLOW_ALL)
    policy = home.latch_home / "policy.toml"
    before = policy.read_bytes()
    cmd = via_shim("test", our_server_cmd())
    async with session(cmd, home.agent_env(), home.new_log("test"), cwd=home.work) as s:
        ok = await s.call_tool("run_command", {"command": "ls -la"})
        assert not ok.is_error, text_of(ok)
        for attack in shell_attacks(home, daemon.pid):
            result = await s.call_tool("run_command", {"command": attack})
            assert blocked(result), f"{attack}: {text_of(result)}"
    assert [c["arguments"]["command"] for c in home.recorded("run_command")] == ["ls -la"]
    assert policy.read_bytes() == before
    assert daemon.proc.poll() is None


# ------------------------------------------------------------ default layout


@pytest.fixture
def default_layout(home: Home) -> Iterator[dict[str, str]]:
    """A daemon with HOME only (no LATCH_HOME): the policy lives under
    ~/.config/latch. Its processes carry a tag of their own, since the
    shared leak check looks for LATCH_HOME."""
    fake_home = home.work / "h"
    fake_home.mkdir()
    tag = str(fake_home)
    env = {k: v for k, v in os.environ.items() if k != "LATCH_HOME"}
    env.update({"HOME": tag, "LATCH_TEST_TAG": tag})
    log = open(home.new_log("daemon-default"), "w")
    proc = subprocess.Popen(
        [LATCH_BIN, "daemon"], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def ready() -> bool:
        r = subprocess.run([LATCH_BIN, "status", "--json"], env=env, capture_output=True, timeout=10)
        return r.returncode == 0

    try:
        assert wait_until(ready, 15.0, interval=0.1), "the default-layout daemon did not answer"
        yield {"HOME": tag, "LATCH_TEST_TAG": tag, "PATH": os.environ["PATH"]}
    finally:
        stop_process(proc, grace=5.0)
        log.close()
        left = processes_with_env("LATCH_TEST_TAG", tag)
        for p in left:
            os.kill(p.pid, signal.SIGKILL)
        assert not left, left


@pytest.mark.anyio
async def test_policy_spellings_are_denied_in_the_default_layout(
    home: Home, default_layout: dict[str, str]
) -> None:
    fake_home = Path(default_layout["HOME"])
    policy = fake_home / ".config" / "latch" / "policy.toml"
    assert wait_until(policy.exists, 5.0)
    policy.write_text(ALLOW_ALL)
    before = policy.read_bytes()
    spellings = attack_paths(policy, fake_home)
    spellings["tilde"] = "~/.config/latch/policy.toml"
    spellings["tilde dot dot"] = "~/.config/x/../latch/policy.toml"
    spellings["relative to the served folder"] = ".config/latch/policy.toml"
    spellings["audit database"] = "~/.local/share/latch/audit.db"
    cmd = via_shim("fs", filesystem_cmd(fake_home))
    async with session(cmd, default_layout, home.new_log("fs-default"), cwd=fake_home) as s:
        ok = await s.call_tool("write_file", {"path": str(fake_home / "fine.txt"), "content": "ok"})
        assert not ok.is_error, text_of(ok)
        for name, spelled in spellings.items():
            result = await s.call_tool("write_file", {"path": spelled, "content": "[defaults]\n"})
            assert blocked(result), f"{name}: {spelled}: {text_of(result)}"
        # Hook settings and client configs in the real places of this home.
        for rel in (".claude/settings.json", ".codex/config.toml", ".cursor/mcp.json", ".claude.json"):
            result = await s.call_tool("write_file", {"path": f"~/{rel}", "content": "{}"})
            assert blocked(result), f"{rel}: {text_of(result)}"
    assert policy.read_bytes() == before


# ------------------------------------------------------------ sensitive places


@pytest.mark.anyio
async def test_a_write_to_a_persistence_place_asks_under_the_default_policy(home: Home, daemon: Daemon) -> None:
    # WRITE is allowed by default, but not to ~/.ssh, .bashrc, git hooks…
    keys = home.work / ".ssh" / "authorized_keys"
    keys.parent.mkdir()
    approver = Approver(home, tool="write_file", action="deny")
    approver.start()
    cmd = via_shim("test", our_server_cmd())
    async with session(cmd, home.agent_env(), home.new_log("test"), cwd=home.work) as s:
        ok = await s.call_tool("write_file", {"path": str(home.work / "notes.txt"), "content": "x"})
        assert not ok.is_error, text_of(ok)
        with anyio.fail_after(40):
            result = await s.call_tool("write_file", {"path": str(keys), "content": "ssh-ed25519 AAAA attacker"})
        approver.outcome()
    assert blocked(result), text_of(result)
    assert not keys.exists()
    assert approver.entry is not None
    rows = [r for r in home.audit() if r.get("tool") == "write_file" and str(keys) in json.dumps(r.get("args"))]
    assert rows and "persistence" in json.dumps(rows[0].get("reasons")), rows


@pytest.mark.anyio
async def test_a_link_to_a_persistence_place_asks_under_the_default_policy(home: Home, daemon: Daemon) -> None:
    """A link in the project to `.git/hooks` (a cloned repository may carry
    one): a write through it plants a hook the next commit runs. Before,
    only the path's name was read ("tools/pre-commit"), and the write ran."""
    hooks = home.work / ".git" / "hooks"
    hooks.mkdir(parents=True)
    (home.work / "tools").symlink_to(".git/hooks")
    approver = Approver(home, tool="write_file", action="deny")
    approver.start()
    cmd = via_shim("test", our_server_cmd())
    async with session(cmd, home.agent_env(), home.new_log("test"), cwd=home.work) as s:
        ok = await s.call_tool("write_file", {"path": "tools.txt", "content": "x"})
        assert not ok.is_error, text_of(ok)
        with anyio.fail_after(40):
            result = await s.call_tool("write_file", {"path": "tools/pre-commit", "content": "#!/bin/sh\nid\n"})
        entry = approver.outcome()
    assert blocked(result), text_of(result)
    assert not (hooks / "pre-commit").exists()
    assert "a git hook" in json.dumps(entry) and "through a symlink" in json.dumps(entry), entry


# ------------------------------------------------- the user's own deny rules


@pytest.mark.anyio
async def test_a_users_deny_on_a_folder_holds_for_every_spelling(
    home: Home, start_daemon: Callable[..., Daemon]
) -> None:
    """The same spellings against a deny rule of the user's (not Latch's own
    files): `..`, `//`, `/./`, a symlink to the folder, a link inside the
    served folder, `~`, a relative path. Before, every one but the plain
    path got past the rule, the real filesystem server wrote the file, and
    the agent read the secret back."""
    secret = home.work / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("the secret")
    policy = (
        '[[rule]]\nname = "no-secret"\nserver = "fs"\n'
        f'args = [{{ path = "path", prefix = "{secret}/" }}]\neffect = "deny"\n\n' + ALLOW_ALL
    )
    start_daemon(policy=policy)
    (home.work / "pub").mkdir()
    (home.work / "pub" / "shared").symlink_to(secret)
    (home.work / "notes.txt").symlink_to(secret / "key.txt")
    s_ = str(secret)
    spellings = {
        "plain": f"{s_}/key.txt",
        "double slash": f"{s_}//key.txt".replace("/", "//"),
        "dot segments": f"{home.work}/./secret/./key.txt",
        "dot dot": f"{home.work}/pub/../secret/key.txt",
        "symlinked folder": f"{home.work}/pub/shared/key.txt",
        "symlink": f"{home.work}/notes.txt",
        "tilde": "~/secret/key.txt",
        "relative to the served folder": "pub/shared/key.txt",
    }
    env = home.server_env({"HOME": str(home.work)})
    cmd = via_shim("fs", filesystem_cmd(home.work))
    async with session(cmd, env, home.new_log("fs"), cwd=home.work) as s:
        ok = await s.call_tool("read_text_file", {"path": str(home.work / "pub" / "../pub/../notes.txt.missing")})
        assert "no-secret" not in text_of(ok), text_of(ok)
        for name, spelled in spellings.items():
            read = await s.call_tool("read_text_file", {"path": spelled})
            assert blocked(read) and "no-secret" in text_of(read), f"{name}: {spelled}: {text_of(read)}"
            assert "the secret" not in text_of(read)
            wrote = await s.call_tool("write_file", {"path": spelled, "content": "overwritten"})
            assert blocked(wrote), f"write {name}: {spelled}: {text_of(wrote)}"
    assert (secret / "key.txt").read_text() == "the secret"
