"""The console's part of issue 18 in a real terminal (tmux): a session's
taint (the lethal trifecta) is shown over every pane and on the Health
pane, and the kill switch has keys: `X` twice stops every tool call (shown
as STOPPED), `U` resumes with the PIN.
"""

from __future__ import annotations

import json

from latchkit import Daemon, Home
from test_trifecta import LEAK, fetch, hook, read_credentials
from test_tui_e2e import Tmux, tmux  # noqa: F401  (the fixture)

PIN = "2468"
STOPPED = "a person stopped all tool calls in Latch"


def test_the_console_shows_a_tainted_session(home: Home, daemon: Daemon, tmux: Tmux) -> None:  # noqa: F811
    console = tmux.console("c1", width=140, height=30)
    console.wait_ready()
    assert fetch(home, "sess-t", "https://news.example/release", 1)[0] == "allow"
    # One source: listed on the Health pane, no warning yet.
    console.keys("4")
    screen = console.wait_text("· one source claude-code:sess-t (hook)", "untrusted https://news.example/release at")
    assert "trifecta:" not in screen, screen
    read_credentials(home, "sess-t", 2)
    screen = console.wait_text(
        "⚠ trifecta: claude-code:sess-t (hook) read untrusted content and private data",
        "✗ tainted claude-code:sess-t (hook)",
    )
    assert "/.aws/credentials at" in screen, screen
    assert fetch(home, "sess-t", LEAK, 3)[0] == "ask"
    # A console that starts now asks for what is known.
    console.keys("q")
    late = tmux.console("c2", width=140, height=30)
    late.wait_ready()
    late.wait_text("⚠ trifecta: claude-code:sess-t (hook)")


def test_x_twice_stops_everything_and_u_resumes_with_the_pin(
    home: Home, daemon: Daemon, tmux: Tmux  # noqa: F811
) -> None:
    home.set_pin(PIN)
    console = tmux.console("c1", width=140, height=30)
    console.wait_ready()
    console.keys("X")
    console.wait_text("press X again to STOP every tool call")
    assert "stopped_since" not in home.latch_json("status", "--json"), "one press stops nothing"
    console.keys("X")
    console.wait_text("■ STOPPED since", "U resumes, with the PIN")
    assert "stopped_since" in home.latch_json("status", "--json")
    p = hook(home, "sess-s", "Read", {"file_path": str(home.work / "notes.txt")}, 1)
    out = json.loads(p.stdout)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny" and STOPPED in out["permissionDecisionReason"], out
    # Every pane shows it; so does a console started now.
    console.keys("3")
    console.wait_text("■ STOPPED since")
    other = tmux.console("c2", width=140, height=30)
    other.wait_text("■ STOPPED since")
    # Resuming loosens: the PIN first.
    console.keys("U")
    console.wait_text("PIN:")
    console.keys(PIN, "Enter")
    console.wait_gone("■ STOPPED since")
    other.wait_gone("■ STOPPED since")
    assert "stopped_since" not in home.latch_json("status", "--json")
    (home.work / "notes.txt").write_text("hi")
    p = hook(home, "sess-s", "Read", {"file_path": str(home.work / "notes.txt")}, 2)
    assert p.stdout.strip() == "", p.stdout
