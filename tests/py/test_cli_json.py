"""`--json` on `latch doctor` and `latch install`/`uninstall`: one JSON
object a script can read, the same exit code as the text, and nothing
interactive (no PIN offer). Real binary, a fake HOME with a client config.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from latchkit import LATCH_BIN, Home

CONFIG = {"mcpServers": {"fs": {"command": "npx", "args": ["-y", "some-fs-server", "/tmp"]}}}


def run(home: Home, fake_home: Path, *args: str) -> tuple[int, Any]:
    env = {**os.environ, "HOME": str(fake_home), "LATCH_HOME": str(home.latch_home)}
    proc = subprocess.run(
        [LATCH_BIN, *args],
        cwd=fake_home,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        raise AssertionError(f"`latch {' '.join(args)}` printed no JSON ({err}):\n{proc.stdout}\n{proc.stderr}") from None


def machine(home: Home) -> Path:
    fake_home = home.path / "home"
    (fake_home / ".cursor").mkdir(parents=True)
    (fake_home / ".cursor" / "mcp.json").write_text(json.dumps(CONFIG))
    return fake_home


def test_doctor_json_names_each_server_and_exits_1_while_one_is_not_wrapped(home: Home) -> None:
    fake_home = machine(home)
    code, report = run(home, fake_home, "doctor", "--json", "--project", str(fake_home))
    assert code == 1 and report["ok"] is False and report["exit"] == 1, report
    [server] = report["servers"]
    assert (server["client"], server["name"], server["state"]) == ("cursor", "fs", "not_wrapped"), server
    assert report["counts"] == {"wrapped": 0, "not_wrapped": 1, "remote_not_covered": 0}, report
    assert report["daemon"] is None, report

    code, installed = run(home, fake_home, "install", "--json", "--no-hooks", "--project", str(fake_home))
    assert code == 0 and installed["ok"] and installed["changed"] == 1, installed
    [file] = installed["files"]
    assert file["changed"] and file["error"] is None and any("wrapped" in line for line in file["lines"]), file
    assert "~/.cursor/mcp.json" in file["file"], file

    code, report = run(home, fake_home, "doctor", "--json", "--project", str(fake_home))
    assert [s["state"] for s in report["servers"]] == ["wrapped"], report


def test_install_json_reports_a_broken_file_with_its_error_and_exit_1(home: Home) -> None:
    fake_home = machine(home)
    (fake_home / ".cursor" / "mcp.json").write_text('{"mcpServers": {"fs": ')
    code, report = run(home, fake_home, "install", "--json", "--no-hooks", "--project", str(fake_home))
    assert code == 1 and report["ok"] is False, report
    [file] = report["files"]
    assert file["changed"] is False and file["error"], file

    code, dry = run(home, fake_home, "uninstall", "--json", "--dry-run", "--no-hooks", "--project", str(fake_home))
    assert dry["action"] == "uninstall" and dry["dry_run"] is True, dry
