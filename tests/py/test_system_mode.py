"""System mode (issue 20): `latch setup --system` runs the daemon as a
dedicated system user. Then a process of another user id can neither answer
an approval, nor kill the daemon, nor read its database, and a fake daemon
that user starts is not obeyed by a shim (which accepts only the uid root's
system.toml names); `--undo` removes everything.

Root only (CI runs as root). Debug builds place every system path under
LATCH_SYSTEM_PREFIX (a temp folder), so this test never touches the real
/etc, /run or /var; the users and groups it creates have random names and
are removed by the fixture's finalizer even when the test fails. The daemon
is started with setpriv, not systemd."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from latchkit import LATCH_BIN, Home, WireClient, our_server_cmd, via_shim, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="system mode creates users and root's files: run as root")

PEER = Path(__file__).with_name("socket_peer.py")
SHIM = via_shim("ours", our_server_cmd())


@dataclass
class System:
    prefix: Path
    user: str
    other: str
    member: str
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "LATCH_SYSTEM_PREFIX": str(self.prefix), "HOME": str(self.prefix)}

    @property
    def state(self) -> Path:
        return self.prefix / "var/lib/latch"

    @property
    def config(self) -> Path:
        return self.prefix / "etc/latch/system.toml"

    def latch(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [LATCH_BIN, *args], env=self.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"latch {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def as_user(self, user: str, *cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *cmd],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )

    def spawn_as(self, user: str, what: str, *cmd: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{what}.log", "wb")
        proc = subprocess.Popen(
            ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *cmd],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if what == "fake" else log,
            stderr=log,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def status(self) -> dict[str, Any] | None:
        proc = self.latch("status", "--json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None


def exists(db: str, name: str) -> bool:
    return subprocess.run(["getent", db, name], capture_output=True).returncode == 0


@pytest.fixture
def system(home: Home) -> Iterator[System]:
    prefix = Path(tempfile.mkdtemp(prefix="lt-sys-", dir="/tmp"))
    os.chmod(prefix, 0o755)
    tag = secrets.token_hex(3)
    s = System(prefix=prefix, user=f"ltsys{tag}", other=f"ltoth{tag}", member=f"ltmem{tag}", logs=home.logs)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", s.other], check=True)
    try:
        yield s
    finally:
        for proc in s.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if s.config.exists() or exists("passwd", s.user):
            s.latch("setup", "--system", "--undo", "--purge", "--user", s.user, check=False)
        for name in (s.member, s.user, s.other):
            if exists("passwd", name):
                subprocess.run(["userdel", name], capture_output=True)
            if exists("group", name):
                subprocess.run(["groupdel", name], capture_output=True)
        shutil.rmtree(prefix, ignore_errors=True)


def start_system_daemon(s: System) -> subprocess.Popen[bytes]:
    proc = s.spawn_as(s.user, "system-daemon", LATCH_BIN, "daemon", "--system")
    assert wait_until(lambda: proc.poll() is not None or s.status(), 15.0, interval=0.1)
    assert proc.poll() is None, (s.logs / "system-daemon.log").read_text()
    return proc


def test_system_mode_keeps_another_user_out_and_undo_removes_it(
    home: Home, system: System, wire: Callable[..., WireClient]
) -> None:
    s = system
    setup = s.latch("setup", "--system", "--user", s.user)
    assert "systemd is not running here" in setup.stdout, setup.stdout
    assert exists("passwd", s.user) and exists("group", s.user)
    shell = subprocess.run(["getent", "passwd", s.user], capture_output=True, text=True).stdout.strip().split(":")[-1]
    assert shell.endswith("nologin") or shell == "/bin/false", shell
    assert (s.prefix / "etc/systemd/system/latch.service").read_text().count(f"User={s.user}") == 1
    config = s.config.read_text()
    uid = int(subprocess.run(["id", "-u", s.user], capture_output=True, text=True).stdout)
    assert f"daemon_uid = {uid}" in config
    assert (s.config.stat().st_uid, s.config.stat().st_mode & 0o777) == (0, 0o644)
    assert (s.state.stat().st_uid, s.state.stat().st_mode & 0o777) == (uid, 0o700)

    daemon = start_system_daemon(s)
    status = s.status()
    assert status and status["daemon_pid"] == daemon.pid, status
    socket = Path(status["socket"])
    assert socket == s.prefix / "run/latch/daemon/latch.sock"
    assert socket.stat().st_mode & 0o777 == 0o660

    # A call that asks: pending in the system daemon.
    client = wire(SHIM, {"LATCH_SYSTEM_PREFIX": str(s.prefix)})
    client.initialize()
    client.call("tools/list")
    asked = client.request("tools/call", {"name": "run_command", "arguments": {"command": "echo hi"}})
    pending = wait_until(lambda: json.loads(s.latch("pending", "--json").stdout), 10.0, interval=0.1)
    assert pending, "the call waits for a person"
    approval = pending[0]["id"]

    # A person in the group connects as a client (the daemon's uid is the
    # one system.toml names) and sees the same approval.
    subprocess.run(["useradd", "--system", "--no-create-home", "-G", s.user, s.member], check=True)
    seen = s.as_user(s.member, LATCH_BIN, "pending", "--json")
    assert seen.returncode == 0 and approval in seen.stdout, seen

    # Another user id: cannot connect to answer, cannot kill, cannot read.
    answer = json.dumps([{"approve": {"req": 2, "approval_id": approval, "scope": "once"}}])
    tried = s.as_user(s.other, sys.executable, str(PEER), str(socket), answer)
    assert tried.returncode != 0 and "Permission denied" in tried.stderr, tried
    cli = s.as_user(s.other, LATCH_BIN, "approve", approval)
    assert cli.returncode != 0, cli
    assert [p["id"] for p in json.loads(s.latch("pending", "--json").stdout)] == [approval], "still pending"
    killed = s.as_user(s.other, "kill", "-TERM", str(daemon.pid))
    assert killed.returncode != 0 and daemon.poll() is None, killed
    for target in (s.state / "audit.db", s.state / "audit.db.journal", s.state):
        read = s.as_user(s.other, "cat" if target != s.state else "ls", str(target))
        assert read.returncode != 0 and "Permission denied" in read.stderr, (target, read)
    # Root's system file is not theirs to change.
    wrote = s.as_user(s.other, "sh", "-c", f"echo x >> {s.config}")
    assert wrote.returncode != 0

    # A fake daemon of that user on its own socket is not obeyed by a shim,
    # even were the system file to point at it.
    fake_dir = s.prefix / "fake"
    fake_dir.mkdir()
    shutil.chown(fake_dir, s.other, s.other)
    fake_sock = fake_dir / "latch.sock"
    listen = (
        "import socket,sys,os;s=socket.socket(socket.AF_UNIX);s.bind(sys.argv[1]);os.chmod(sys.argv[1],0o777);"
        "s.listen(16);print('ready',flush=True);conns=[s.accept() for _ in range(1000)]"
    )
    fake = s.spawn_as(s.other, "fake", sys.executable, "-c", listen, str(fake_sock))
    assert fake.stdout is not None and fake.stdout.readline().strip() == b"ready"
    s.config.write_text(config.replace(str(socket), str(fake_sock)))
    fooled = wire(SHIM, {"LATCH_SYSTEM_PREFIX": str(s.prefix)})
    fooled.initialize()
    fooled.call("tools/list")
    answer = fooled.call("tools/call", {"name": "read_file", "arguments": {"path": "/etc/hostname"}}, timeout=20.0)
    text = answer["result"]["content"][0]["text"]
    assert answer["result"].get("isError") and "not Latch's daemon" in text, answer
    assert "a person must start Latch's system daemon" in text, text
    assert not home.recorded("read_file"), "the call never reached the server"
    s.config.write_text(config)

    # The system daemon stopped: nothing starts one in its place.
    os.killpg(daemon.pid, signal.SIGTERM)
    daemon.wait(10)
    client.response(asked, timeout=15.0)
    down = s.latch("status", check=False)
    assert down.returncode != 0 and "a person starts Latch's system daemon" in down.stderr, down

    # Undo: the log is kept without --purge; with it, nothing is left.
    kept = s.latch("setup", "--system", "--undo", "--user", s.user, check=False)
    assert kept.returncode == 1 and "holds the audit log" in kept.stdout, kept
    assert (s.state / "audit.db").exists()
    subprocess.run(["userdel", s.member], check=True)
    s.latch("setup", "--system", "--undo", "--purge", "--user", s.user)
    assert not exists("passwd", s.user) and not exists("group", s.user)
    left = sorted(str(p.relative_to(s.prefix)) for p in s.prefix.rglob("*") if not p.is_relative_to(fake_dir))
    # Only the folders a real system has anyway (/etc/systemd/system, /run, /var/lib).
    assert left == ["etc", "etc/systemd", "etc/systemd/system", "run", "var", "var/lib"], left
    for gone in ("etc/latch", "run/latch", "var/lib/latch", "etc/systemd/system/latch.service"):
        assert not (s.prefix / gone).exists(), gone
