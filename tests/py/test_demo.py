"""`latch demo --headless`: the scripted agent against real MCP servers through
`latch shim`, with the approval answered by the test the way a person would
(`latch approve` / `latch deny` with the demo's LATCH_HOME), and everything
the demo started gone afterwards, Ctrl-C included.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from latchkit import LATCH_BIN, REPO, Approver, Home, TmuxServer, processes_with_env, wait_until

LATCH = os.path.abspath(LATCH_BIN)
# npx finds the pinned server-filesystem in tests/node_modules from there.
TESTS_DIR = REPO / "tests"


def demo_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LATCH_HOME", None)
    return env


class DemoRun:
    """`latch demo --headless ARGS` with its output read line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [LATCH, "demo", "--headless", *args],
            cwd=TESTS_DIR,
            env=demo_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float = 40.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if m := re.search(pattern, line):
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._cond.wait(0.2)):
                    raise AssertionError(f"no line matching {pattern!r}:\n" + self.output())
                self._cond.wait(min(remaining, 0.2))

    def finish(self, timeout: float = 40.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"`latch demo` still running after {timeout} s:\n{self.output()}") from None
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            time.sleep(0.1)  # the reader thread takes the last lines

    def output(self) -> str:
        return "\n".join(self.lines)


def test_demo_headless_shows_allow_ask_and_deny_with_the_approval_answered_by_the_test(home: Home) -> None:
    demo = DemoRun("--dir", str(home.path))
    demo.wait_line(r"^daemon    started")  # `latch pending` needs a daemon
    demo.wait_line(rf"^PIN       {DEMO_PIN} ")  # the demo's own approval PIN
    home.pin = DEMO_PIN
    approver = Approver(home, tool="run_command", timeout=45.0)
    approver.start()
    code = demo.finish(timeout=55.0)
    out = demo.output()
    assert code == 0, out
    entry = approver.outcome()
    assert entry["server"] == "ops" and entry["class"] == "EXECUTE"

    if shutil.which("npx"):
        assert "files     @modelcontextprotocol/server-filesystem via npx" in out, out
        assert "1. files/read_text_file" in out
    assert re.search(r"→ ALLOW: Welcome to the Latch demo\.", out), out
    assert "→ ALLOW: Successfully wrote to" in out or "→ ALLOW:" in out.split("2. files/write_file")[1]
    # Held: seen while waiting, or (when the test answered first) in the audit row.
    assert re.search(rf"→ ASK \(EXECUTE\): held until a person answer(s|ed), approval {entry['id']}", out), out
    assert "→ APPROVED by a person" in out
    assert "→ DENY (TRANSFER_VALUE): Latch blocked create_payment" in out
    assert re.search(r"ops +create_payment +TRANSFER_VALUE +deny\b", out), out
    assert "Every decision was the expected one." in out
    assert (home.path / "demo-files" / "report.txt").read_text() == "Report written by the Latch demo agent.\n"
    # The conftest checks that no process carrying this LATCH_HOME is left.


def test_demo_in_its_own_temp_folder_takes_a_deny_from_the_printed_command_and_leaves_nothing() -> None:
    demo = DemoRun("--no-npx")
    m = demo.wait_line(r"deny: +LATCH_HOME=(\S+) (\S+) deny (\S+)")
    latch_home, exe, approval = m.group(1), m.group(2), m.group(3)
    assert os.path.realpath(exe) == os.path.realpath(LATCH) or exe == "latch"
    subprocess.run(
        [LATCH, "deny", approval, "--reason", "not in the demo"],
        env={**os.environ, "LATCH_HOME": latch_home},
        check=True,
        capture_output=True,
        timeout=15,
    )
    code = demo.finish()
    out = demo.output()
    assert code == 0, out
    assert "files     latch-test-server" in out
    assert "→ DENIED by a person: " in out and "not in the demo" in out, out
    assert not Path(latch_home).parent.exists(), "the demo's temporary folder is still there"
    assert processes_with_env("LATCH_HOME", latch_home) == []


def test_ctrl_c_while_waiting_for_an_approval_stops_everything(tmp_path: Path) -> None:
    demo = DemoRun("--no-npx")
    m = demo.wait_line(r"approve: +LATCH_HOME=(\S+) ")
    latch_home = m.group(1)
    assert len(processes_with_env("LATCH_HOME", latch_home)) >= 5  # daemon, 2 shims, 2 servers
    demo.proc.send_signal(signal.SIGINT)
    code = demo.finish(timeout=20.0)
    assert code == 130, demo.output()
    assert processes_with_env("LATCH_HOME", latch_home) == []
    assert not Path(latch_home).parent.exists()


DEMO_PIN = "2468"  # src/cli/demo.rs


class DemoInTmux:
    """`latch demo --dir HOME` (console mode) in a private tmux server, as a person runs it."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.server = TmuxServer(home)
        self.server.env["LANG"] = "C.UTF-8"
        self.status = home.path / "demo-status"
        script = f"cd {shlex.quote(str(TESTS_DIR))}; {shlex.quote(LATCH)} demo --dir {shlex.quote(str(home.path))}; echo $? > {self.status}"
        self.tmux("new-session", "-d", "-x", "110", "-y", "40", "-s", "demo", "sh", "-c", script)
        self.tmux("set-option", "-t", "demo", "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        return self.server.run(*args).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "demo")

    def wait_screen(self, text: str, timeout: float = 40.0) -> str:
        def shown() -> str | None:
            screen = self.screen()
            return screen if text in screen else None

        screen = wait_until(shown, timeout, interval=0.1)
        assert screen is not None, f"{text!r} never on the screen:\n{self.screen()}"
        return screen

    def exit_status(self, timeout: float = 20.0) -> int:
        ok = wait_until(lambda: self.status.exists() and self.status.read_text().strip(), timeout)
        assert ok, f"the demo did not end:\n{self.screen()}"
        return int(self.status.read_text())

    def close(self) -> None:
        self.server.kill()


def test_demo_console_approve_with_a_key_then_quit(home: Home) -> None:
    demo = DemoInTmux(home)
    try:
        demo.wait_screen("Press Enter to open the console")
        demo.tmux("send-keys", "-t", "demo", "Enter")
        demo.wait_screen("approval waiting")
        time.sleep(0.7)  # the console holds answer keys 500 ms after an approval took focus
        demo.tmux("send-keys", "-t", "demo", "a")
        # The demo set its own PIN: the console asks for it once.
        demo.wait_screen("PIN:")
        demo.tmux("send-keys", "-t", "demo", DEMO_PIN, "Enter")
        log = home.path / "agent.log"
        assert wait_until(lambda: "Every decision was the expected one" in log.read_text(), 30.0), log.read_text()
        demo.tmux("send-keys", "-t", "demo", "q")
        assert demo.exit_status() == 0, demo.screen()
        screen = demo.screen()
        assert "→ APPROVED by a person" in screen and re.search(r"answered by \S+( person)? in the console", screen), screen
        assert "→ DENY (TRANSFER_VALUE)" in screen
    finally:
        demo.close()


def test_closing_the_console_during_a_hold_ends_the_demo_cleanly(home: Home) -> None:
    demo = DemoInTmux(home)
    try:
        demo.wait_screen("Press Enter to open the console")
        demo.tmux("send-keys", "-t", "demo", "Enter")
        demo.wait_screen("approval waiting")
        demo.tmux("send-keys", "-t", "demo", "q")
        assert demo.exit_status() == 0, demo.screen()
        assert "The console was closed before the agent was done" in demo.screen()
        assert not [p for p in home.processes() if "tmux" not in p.cmdline and "sh -c" not in p.cmdline]
    finally:
        demo.close()


def test_the_console_mode_without_a_terminal_points_to_headless() -> None:
    run = subprocess.run([LATCH, "demo"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)
    assert run.returncode == 2
    assert "run `latch demo --headless`" in run.stderr


def test_console_demo_in_a_temp_folder_prints_the_agents_transcript_and_its_intro_fits_80_columns(
    home: Home,
) -> None:
    """No --dir: the transcript lives in the demo's temporary folder, which
    must be read before it is removed. 80×30 terminal, as a new user has."""
    server = TmuxServer(home)
    server.env["LANG"] = "C.UTF-8"
    server.env["TMPDIR"] = str(home.path)  # the demo's temporary folder goes here
    status = home.path / "demo-status"
    script = f"cd {shlex.quote(str(TESTS_DIR))}; {shlex.quote(LATCH)} demo; echo $? > {status}"
    try:
        server.run("new-session", "-d", "-x", "80", "-y", "30", "-s", "demo", "sh", "-c", script)
        server.run("set-option", "-t", "demo", "remain-on-exit", "on")

        def screen() -> str:
            return server.run("capture-pane", "-p", "-J", "-S", "-200", "-t", "demo").stdout

        def intro_shown() -> str | None:
            shown = screen()
            return shown if "Press Enter to open the console" in shown else None

        intro = wait_until(intro_shown, 40.0)
        assert intro, screen()
        # -J joins wrapped lines: a line over 80 columns would show here.
        long = [line for line in intro.splitlines() if len(line.rstrip()) > 80]
        assert not long, long
        server.run("send-keys", "-t", "demo", "Enter")
        assert wait_until(lambda: "approval waiting" in screen(), 40.0, interval=0.1), screen()
        time.sleep(0.7)  # the console holds answer keys 500 ms after an approval took focus
        server.run("send-keys", "-t", "demo", "a")
        assert wait_until(lambda: "PIN:" in screen(), 20.0, interval=0.1), screen()
        server.run("send-keys", "-t", "demo", DEMO_PIN, "Enter")

        def agent_done() -> bool:
            logs = list(home.path.glob("latch-demo-*/agent.log"))
            return bool(logs) and "Every decision was the expected one" in logs[0].read_text()

        assert wait_until(agent_done, 30.0), screen()
        server.run("send-keys", "-t", "demo", "q")
        assert wait_until(lambda: status.exists() and status.read_text().strip(), 20.0), screen()
        assert status.read_text().strip() == "0", screen()
        after = screen()
        assert "→ APPROVED by a person" in after and "→ DENY (TRANSFER_VALUE)" in after, after
        assert not list(home.path.glob("latch-demo-*")), "the temporary folder is left behind"
    finally:
        server.kill()
