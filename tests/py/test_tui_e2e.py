"""`latch tui` end to end: the real console in a real terminal (tmux), the
real daemon, a real held call made by the official Python MCP client through
`latch shim` to latch-test-server.

Every test runs its own tmux server on a socket inside its home
(`tmux -S <home>/tmux.sock`), so a user's tmux is never touched; the server
is killed at teardown. The tmux server carries the test's LATCH_HOME, so the
`home` fixture's leftover-process check covers it and every console in it.

The screen is read with `capture-pane`, polled until a condition holds or a
deadline passes; keys are typed with `send-keys`. No fixed sleeps, except the
console's documented answer-key hold (ARM_MS, 500 ms) after an approval took
focus by itself.
"""

from __future__ import annotations

import os
import pwd
import shlex
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from latchkit import LATCH_BIN, Daemon, Home, TmuxServer, mcp_session, our_server_cmd, result_json, text_of, via_shim, wait_until

SHIM = via_shim("test", our_server_cmd())
RUN_COMMAND = ("run_command", {"command": "git push --force origin main"})

# The console holds answer keys this long after an approval took focus by
# itself (tui/src/app.rs ARM_MS = 500 ms); we wait a little more.
ARM_WAIT = 0.7
SCREEN_TIMEOUT = 15.0


class Tmux(TmuxServer):
    """A private tmux server holding `latch tui` consoles, one session each."""

    def __init__(self, home: Home) -> None:
        super().__init__(home)
        self.home = home
        self.sessions: list[str] = []

    def console(self, name: str, width: int = 80, height: int = 24) -> Console:
        """Starts `latch tui` in a new WIDTHxHEIGHT session NAME.

        The pane runs a shell script that records the terminal settings
        (`stty -g`) before and after the console and its exit status; the
        pane stays (remain-on-exit) so its screen can be read afterwards.
        """
        out = self.home.path / f"console-{name}"
        out.mkdir()
        script = (
            f"stty -g > {out}/stty-before; "
            f"{shlex.quote(LATCH_BIN)} tui 2> {out}/stderr; "
            f"echo $? > {out}/status; "
            f"stty -g > {out}/stty-after"
        )
        self.run("new-session", "-d", "-x", str(width), "-y", str(height), "-s", name, "sh", "-c", script)
        self.sessions.append(name)
        # remain-on-exit is a window option: keep the dead pane readable.
        self.run("set-option", "-w", "-t", name, "remain-on-exit", "on")
        return Console(self, name, out)


class Console:
    """One `latch tui` in a tmux session."""

    def __init__(self, tmux: Tmux, name: str, out: Path) -> None:
        self.tmux, self.name, self.out = tmux, name, out

    def screen(self) -> str:
        return self.tmux.run("capture-pane", "-p", "-t", self.name).stdout

    def lines(self) -> list[str]:
        return self.screen().split("\n")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux.run("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)

    def info(self, fmt: str) -> str:
        return self.tmux.run("display-message", "-p", "-t", self.name, fmt).stdout.strip()

    def wait_for(self, predicate: Callable[[str], Any], what: str, timeout: float = SCREEN_TIMEOUT) -> str:
        """The screen once PREDICATE holds for it; fails with the last screen at the deadline."""
        last = [""]

        def check() -> str | None:
            last[0] = self.screen()
            return last[0] if predicate(last[0]) else None

        screen = wait_until(check, timeout, interval=0.05)
        if screen is None:
            raise AssertionError(f"console {self.name}: no {what} within {timeout}s; screen:\n{last[0]}\n{self.stderr()}")
        return screen

    def wait_text(self, *texts: str, timeout: float = SCREEN_TIMEOUT) -> str:
        return self.wait_for(lambda s: all(t in s for t in texts), "screen with " + repr(texts), timeout)

    def wait_gone(self, *texts: str, timeout: float = SCREEN_TIMEOUT) -> str:
        return self.wait_for(lambda s: not any(t in s for t in texts), "screen without " + repr(texts), timeout)

    def dead(self) -> bool:
        return self.info("#{pane_dead}") == "1"

    def status(self) -> str | None:
        path = self.out / "status"
        return path.read_text().strip() if path.exists() else None

    def stderr(self) -> str:
        path = self.out / "stderr"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"console stderr: {text!r}" if text else ""

    def wait_ready(self) -> str:
        return self.wait_text("● connected", "Live")


@pytest.fixture
def tmux(home: Home) -> Iterator[Tmux]:
    server = Tmux(home)
    yield server
    server.kill()


def pending_listed(screen: str) -> bool:
    """The pending pane lists our held call: server, tool and class."""
    return "1 approval waiting" in screen and any(
        "test" in line and "run_command" in line and "EXECUTE" in line for line in screen.split("\n")
    )


def pending_shown(screen: str) -> bool:
    """Listed, and its detail (arguments included) drawn: a whole frame, not
    one caught half-way through its output."""
    return pending_listed(screen) and "test / run_command" in screen and "git push --force origin main" in screen


async def held_call(
    home: Home,
    console: Console,
    answer_key: str | tuple[str, ...],
    before_answer: Callable[[], None] | None = None,
) -> tuple[Any, str]:
    """Calls run_command through the shim in the background, waits for the
    console to show it (it takes focus by itself), runs BEFORE_ANSWER (in a
    thread), types ANSWER_KEY; returns the call's result and the screen that
    showed the approval."""
    name, args = RUN_COMMAND
    results: dict[str, Any] = {}
    async with mcp_session(home, SHIM) as session:

        async def call() -> None:
            results["call"] = await session.call_tool(name, args)

        with anyio.fail_after(45):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                shown = await anyio.to_thread.run_sync(lambda: console.wait_for(pending_shown, "pending approval"))
                assert "call" not in results, "the call did not wait for an answer"
                await anyio.sleep(ARM_WAIT)
                if before_answer is not None:
                    await anyio.to_thread.run_sync(before_answer)
                    assert "call" not in results, "the call did not wait for an answer"
                keys = (answer_key,) if isinstance(answer_key, str) else answer_key
                await anyio.to_thread.run_sync(lambda: console.keys(*keys))
    return results["call"], shown


@pytest.mark.anyio
async def test_with_a_pin_the_console_asks_for_it_once_then_the_approval_runs(
    home: Home, daemon: Daemon, tmux: Tmux
) -> None:
    name, args = RUN_COMMAND
    console = tmux.console("c1")
    console.wait_ready()
    console.wait_for(lambda s: "UNPROTECTED" in s, "the header warning without a PIN")
    home.set_pin("2468")
    console.keys("q")
    console = tmux.console("c2")
    console.wait_ready()
    results: dict[str, Any] = {}
    async with mcp_session(home, SHIM) as session:

        async def call() -> None:
            results["call"] = await session.call_tool(name, args)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await anyio.to_thread.run_sync(lambda: console.wait_for(pending_shown, "pending approval"))
                await anyio.sleep(ARM_WAIT)
                await anyio.to_thread.run_sync(console.keys, "a")
                screen = await anyio.to_thread.run_sync(lambda: console.wait_for(lambda s: "PIN:" in s, "the PIN input"))
                assert "UNPROTECTED" not in screen, screen
                assert "call" not in results, "approved before the PIN was typed"
                await anyio.to_thread.run_sync(lambda: console.keys("2468", "Enter"))
    assert not result_json(results["call"]).get("isError"), results["call"]
    assert [(c["name"], c["arguments"]) for c in home.recorded()] == [(name, args)]
    # The screen never showed the PIN itself.
    assert "2468" not in console.screen()


@pytest.mark.anyio
async def test_r_in_the_detail_reveals_a_masked_value_on_screen_after_the_pin_and_masks_it_again(
    home: Home, daemon: Daemon, tmux: Tmux
) -> None:
    secret = "S3cr3t-Shown-On-Screen-Only-4417"
    args = {"command": f"PGPASSWORD={secret} psql -h db.internal -c 'select 1'"}
    home.set_pin("2468")
    console = tmux.console("c1", width=120, height=40)
    console.wait_ready()
    results: dict[str, Any] = {}
    async with mcp_session(home, SHIM) as session:

        async def call() -> None:
            results["call"] = await session.call_tool("run_command", args)

        def on_screen() -> None:
            console.wait_text("test / run_command", "PGPASSWORD=", "psql")
            assert secret not in console.screen()
            console.keys("Enter")
            console.wait_text("r reveals")
            console.keys("r")
            console.wait_text("PIN:")
            console.keys("2468", "Enter")
            shown = console.wait_text(secret, "REVEALED")
            assert "2468" not in shown
            console.keys("r")
            console.wait_gone(secret)
            console.keys("d")
            console.wait_text("why, for the agent")
            console.keys("Enter")

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await anyio.to_thread.run_sync(on_screen)
    assert result_json(results["call"]).get("isError") or "denied" in text_of(results["call"]).lower(), results["call"]
    assert home.recorded() == []
    # What the screen showed was never stored or logged.
    rows = home.audit(200)
    assert [r["answered_by"].split(":")[0] for r in rows if r["kind"] == "reveal"] == ["tui"], rows
    assert secret not in repr(rows)
    assert secret not in daemon.log()
    assert secret not in text_of(results["call"])


@pytest.mark.anyio
async def test_approve_key_lets_the_held_call_run_once_with_its_real_result(
    home: Home, daemon: Daemon, tmux: Tmux
) -> None:
    name, args = RUN_COMMAND
    async with mcp_session(home, our_server_cmd()) as direct:
        want = result_json(await direct.call_tool(name, args))
    home.record_path.unlink(missing_ok=True)

    console = tmux.console("c1")
    console.wait_ready()
    result, shown = await held_call(home, console, "a")

    # It took focus by itself: the pending pane's detail of the call is shown.
    assert "test / run_command" in shown, shown
    assert "git push --force origin main" in shown, shown
    assert result_json(result) == want
    assert [(c["name"], c["arguments"]) for c in home.recorded()] == [(name, args)]
    console.wait_text("No approvals waiting.")
    assert home.pending() == []
    log = home.audit()
    [call_row] = [r for r in log if r["kind"] == "call" and r["tool"] == name]
    answers = [r for r in log if r["kind"] == "answer"]
    assert len(answers) == 1, log
    assert answers[0]["approval_id"] == call_row["approval_id"], (answers, call_row)
    # Who answered is what the daemon observed: the channel and the login of
    # the peer's user id (never what the console says it is).
    assert answers[0]["answered_by"] == f"tui:{pwd.getpwuid(os.getuid()).pw_name}", answers[0]
    assert answers[0]["decision"].lower() == "allow", answers[0]


@pytest.mark.anyio
async def test_the_approved_call_row_names_who_answered_it(home: Home, daemon: Daemon, tmux: Tmux) -> None:
    # The schema says answered_by is "channel:who, for answers and approved
    # calls" (daemon/migrations/0001_events.sql) and tui/tests/E2E.md expects
    # the call's row to carry `tui:$USER`.
    console = tmux.console("c1")
    console.wait_ready()
    result, _ = await held_call(home, console, "a")
    assert not result.is_error, result_json(result)
    [call_row] = [r for r in home.audit() if r["kind"] == "call"]
    assert (call_row.get("answered_by") or "").startswith("tui:"), call_row


@pytest.mark.anyio
async def test_approve_always_asks_first_and_n_sends_nothing(home: Home, daemon: Daemon, tmux: Tmux) -> None:
    console = tmux.console("c1")
    console.wait_ready()

    def always_then_cancel() -> None:
        console.keys("A")
        console.wait_text("Approve ALWAYS", "test / run_command  (EXECUTE)", "confirm", "cancel")
        console.keys("n")
        console.wait_for(lambda s: "Approve ALWAYS" not in s and pending_shown(s), "confirmation closed")
        # Nothing was sent: the call still waits, no rule was written.
        assert [p["tool"] for p in home.pending()] == ["run_command"]
        policy = home.latch_home / "policy.toml"
        assert "run_command" not in (policy.read_text() if policy.exists() else "")

    result, _ = await held_call(home, console, "a", before_answer=always_then_cancel)
    assert not result.is_error, result_json(result)
    assert [c["name"] for c in home.recorded()] == ["run_command"]


@pytest.mark.anyio
async def test_deny_key_blocks_the_held_call_and_the_server_never_sees_it(
    home: Home, daemon: Daemon, tmux: Tmux
) -> None:
    console = tmux.console("c1")
    console.wait_ready()
    # d asks why (for the agent); Enter denies without a reason.
    result, _ = await held_call(home, console, ("d", "Enter"))

    assert result.is_error, result_json(result)
    text = text_of(result)
    assert text.startswith("Latch blocked"), text
    assert "den" in text.lower(), text
    assert home.recorded() == []
    console.wait_text("No approvals waiting.")
    assert home.pending() == []


@pytest.mark.anyio
async def test_an_answer_in_one_console_empties_the_pending_list_of_the_other(
    home: Home, daemon: Daemon, tmux: Tmux
) -> None:
    first, second = tmux.console("c1"), tmux.console("c2")
    first.wait_ready()
    second.wait_ready()
    name, args = RUN_COMMAND
    results: dict[str, Any] = {}
    async with mcp_session(home, SHIM) as session:

        async def call() -> None:
            results["call"] = await session.call_tool(name, args)

        with anyio.fail_after(45):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                for console in (first, second):
                    await anyio.to_thread.run_sync(lambda c=console: c.wait_for(pending_shown, "pending approval"))
                await anyio.sleep(ARM_WAIT)
                await anyio.to_thread.run_sync(first.keys, "a")
                # The other console drops it without a key.
                await anyio.to_thread.run_sync(lambda: second.wait_text("No approvals waiting."))
                assert "⚠ Pending" not in second.screen()
    assert not results["call"].is_error, result_json(results["call"])
    assert [c["name"] for c in home.recorded()] == [name]


def test_console_survives_a_killed_daemon_and_reconnects_to_a_new_one(
    home: Home, start_daemon: Callable[..., Daemon], tmux: Tmux
) -> None:
    crashed = Daemon(home)
    try:
        crashed.wait_ready()
        console = tmux.console("c1")
        console.wait_ready()

        crashed.proc.send_signal(signal.SIGKILL)
        crashed.proc.wait(5)
        screen = console.wait_text("daemon down")
        assert "✗" in screen
    finally:
        crashed.stop()
    # Down, and still running: it waits for the daemon to come back.
    time.sleep(1.0)
    assert not console.dead(), console.screen()
    assert "daemon down" in console.screen()

    start_daemon()
    # The retry backoff tops out at 5 s; the footer says it reconnected.
    screen = console.wait_text("● connected", "reconnected to the daemon", timeout=20)
    assert "daemon down" not in screen
    assert not console.dead()
    # The reconnected console works: it answers a status request.
    console.keys("4")
    console.wait_text("Health", str(home.latch_home / "run" / "latch.sock")[:30])


def test_q_exits_zero_and_restores_the_terminal(home: Home, daemon: Daemon, tmux: Tmux) -> None:
    console = tmux.console("c1")
    console.wait_ready()
    assert console.info("#{alternate_on}") == "1", "the console does not use the alternate screen"
    console.keys("q")
    assert wait_until(console.dead, 10), console.screen()
    assert console.status() == "0", f"exit status {console.status()!r}\n{console.stderr()}"
    assert console.info("#{alternate_on}") == "0", "the alternate screen was left on"
    before = (console.out / "stty-before").read_text()
    after = (console.out / "stty-after").read_text()
    assert after == before, f"terminal settings changed: {before!r} -> {after!r}"


def test_sigterm_exits_zero_and_restores_the_terminal(home: Home, daemon: Daemon, tmux: Tmux) -> None:
    console = tmux.console("c1")
    console.wait_ready()
    tui_pids = [p.pid for p in home.processes() if p.cmdline.endswith(" tui")]
    assert len(tui_pids) == 1, home.processes()
    os.kill(tui_pids[0], signal.SIGTERM)
    assert wait_until(console.dead, 10), console.screen()
    assert console.status() == "0", f"exit status {console.status()!r}\n{console.stderr()}"
    assert console.info("#{alternate_on}") == "0"
    assert (console.out / "stty-after").read_text() == (console.out / "stty-before").read_text()


def test_a_resize_redraws_without_a_key(home: Home, daemon: Daemon, tmux: Tmux) -> None:
    console = tmux.console("c1")
    screen = console.wait_ready()
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) == 24, lines
    assert "? help" in lines[-1], lines[-1]

    tmux.run("resize-window", "-t", "c1", "-x", "60", "-y", "20")

    def redrawn(screen: str) -> bool:
        lines = screen.rstrip("\n").split("\n")
        # At 60 columns the header has no room for the connection mark; the
        # footer (help bar) moves to row 20.
        return len(lines) == 20 and "● connected" not in lines[0] and "? help" in lines[-1]

    screen = console.wait_for(redrawn, "redraw at 60x20")
    assert all(len(line) <= 60 for line in screen.split("\n")), screen
    # The pane's frame is closed at the new right edge.
    assert any(line.rstrip().endswith(("┐", "╮")) and len(line.rstrip()) == 60 for line in screen.split("\n")), screen

    tmux.run("resize-window", "-t", "c1", "-x", "80", "-y", "24")
    console.wait_for(lambda s: "● connected" in s.split("\n")[0], "redraw at 80x24")


def test_an_idle_console_uses_no_cpu(home: Home, daemon: Daemon, tmux: Tmux) -> None:
    console = tmux.console("c1")
    console.wait_ready()
    [pid] = [p.pid for p in home.processes() if p.cmdline.endswith(" tui")]

    def cpu_ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    time.sleep(0.5)  # let the start-up settle (first frames, status reply)
    before = cpu_ticks()
    time.sleep(5.0)
    used = cpu_ticks() - before
    tick = os.sysconf("SC_CLK_TCK")
    # Nothing pending, no key: no timer should run. 2 ticks of slack.
    assert used <= 2, f"the idle console used {used / tick:.2f} s of CPU in 5 s"
