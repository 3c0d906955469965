"""`NO_COLOR` (no-color.org): the console draws no colour at all, and the
connected banner and tabs are still there."""

from __future__ import annotations

import re

from latchkit import Daemon, Home
from test_tui_e2e import Tmux, tmux  # noqa: F401  (the fixture)



def coloured(text: str) -> list[str]:
    out = []
    for m in re.finditer(r"\x1b\[([0-9;]*)m", text):
        parts = [p for p in m.group(1).split(";") if p]
        if any(p in ("38", "48") or 30 <= int(p) <= 37 or 40 <= int(p) <= 47 or 90 <= int(p) <= 107 for p in parts):
            out.append(m.group(0))
    return out


def test_no_color_draws_without_colour(home: Home, daemon: Daemon, tmux: Tmux) -> None:  # noqa: F811
    # Before the tmux server starts: its sessions get its environment.
    tmux.env["NO_COLOR"] = "1"
    console = tmux.console("nocolor")
    console.wait_ready()
    painted = tmux.run("capture-pane", "-p", "-e", "-t", "nocolor").stdout
    assert not coloured(painted), painted
    console.keys("q")
