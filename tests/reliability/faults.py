#!/usr/bin/env python3
"""Storage and clock faults under a running client.

    tests/.venv/bin/python tests/reliability/faults.py [disk_full read_only truncated corrupted clock ...]

- disk_full: LATCH_HOME (database, daemon log, socket) on a 4 MiB tmpfs
  (needs root for `mount`), filled by the client's own calls and a filler
  file; calls must be refused once a row cannot be written, the daemon
  must live on, and calls must pass again once space is freed.
- read_only: LATCH_HOME made read-only (a bind mount, root) and a daemon
  started on it (Linux cannot turn a file open for writing read-only).
- truncated, corrupted: the database cut in half, or bytes overwritten in
  its pages (several seeds), then the daemon started on it.
- clock: the daemon's wall clock (libfaketime, Debian's libfaketime,
  monotonic clock left real as on a real machine) jumps an hour back,
  an hour forward and two days forward while approvals wait.

Checked each time: no call reached the server without its row; the daemon
did not crash; `latch audit verify` says intact (or, for a damaged file,
exits non-zero naming the damage). Prints one JSON line per fault.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import Home, kill_all, reached_without_row, rows, verify, wait_until
from latchkit import Daemon, WireClient, our_server_cmd
from crash_cycles import LATCH_BIN, outcome

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def connect(home: Home) -> WireClient:
    client = WireClient(home, [LATCH_BIN, "shim", "--name", "ours", "--no-autostart", "--", *our_server_cmd()])
    client.initialize()
    client.call("tools/list", timeout=30)
    return client


def call(client: WireClient, name: str, args: dict[str, Any], timeout: float = 30) -> str:
    return outcome(client.call("tools/call", {"name": name, "arguments": args}, timeout=timeout))


@contextmanager
def tmpfs_home(size: str = "4m"):
    """A Home whose LATCH_HOME is a fresh tmpfs of SIZE; unmounted afterwards."""
    home = Home()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(home.latch_home)],
                   check=True)
    try:
        yield home
    finally:
        kill_all(home)
        subprocess.run(["umount", "-l", str(home.latch_home)], check=False)


def common_checks(home: Home, result: dict[str, Any], daemon: Daemon | None) -> None:
    missing = reached_without_row(home, home.recorded())
    if missing:
        result["problems"].append(f"reached the server without a row: {missing[:5]}")
    if daemon is not None and daemon.proc.poll() is not None:
        result["problems"].append(f"the daemon exited ({daemon.proc.returncode}): {daemon.log()[-500:]}")


def disk_full() -> dict[str, Any]:
    result: dict[str, Any] = {"fault": "disk_full", "problems": []}
    with tmpfs_home() as home:
        daemon = Daemon(home)
        daemon.wait_ready()
        client = connect(home)
        counts: dict[str, int] = {}
        # Fill most of it with a file, then the rest with the calls' own rows.
        filler = home.latch_home / "filler"
        free = shutil.disk_usage(home.latch_home).free
        filler.write_bytes(b"\0" * max(0, free - 400_000))
        big = "y" * 20_000
        first_refused = None
        for n in range(200):
            o = call(client, "echo", {"n": n, "text": big})
            counts[o] = counts.get(o, 0) + 1
            if o != "ran" and first_refused is None:
                first_refused = n
            if first_refused is not None and n > first_refused + 10:
                break
        result["calls"] = counts
        result["first_refused_at"] = first_refused
        result["free_bytes_at_end"] = shutil.disk_usage(home.latch_home).free
        if first_refused is None:
            result["problems"].append("the disk never filled")
        result["refusal_text"] = json.dumps(
            client.call("tools/call", {"name": "echo", "arguments": {"n": 9999}})["result"]["content"][0]["text"]
        )[:300]
        common_checks(home, result, daemon)
        filler.unlink()
        # Space back: calls pass again (the daemon may need a restart; say which).
        again = wait_until(lambda: call(client, "echo", {"n": 10_000}) == "ran", 10.0, interval=0.5)
        result["passes_after_space_freed"] = bool(again)
        if not again:
            daemon.stop()
            daemon = Daemon(home)
            daemon.wait_ready(30)
            again = wait_until(lambda: call(client, "echo", {"n": 10_001}) == "ran", 15.0, interval=0.5)
            result["passes_after_daemon_restart"] = bool(again)
            if not again:
                result["problems"].append("calls still refused after space was freed and the daemon restarted")
        common_checks(home, result, daemon)
        client.close()
        daemon.stop()
        intact, text = verify(home)
        result["chain_intact"] = intact
        if not intact:
            result["problems"].append(f"audit verify: {text}")
    return result


def read_only() -> dict[str, Any]:
    """A log written, then LATCH_HOME made read-only (a read-only bind mount;
    its run/ folder, where the socket goes, stays writable) and a daemon
    started on it. Linux refuses to remount a file system read-only while a
    file on it is open for writing, so a running daemon's log cannot turn
    read-only under it; this is the state a daemon meets at start."""
    result: dict[str, Any] = {"fault": "read_only", "problems": []}
    home = Home()
    mounts: list[str] = []
    try:
        daemon = Daemon(home)
        daemon.wait_ready()
        client = connect(home)
        assert call(client, "echo", {"n": 1}) == "ran"
        daemon.stop()
        run_dir = home.latch_home / "run"
        spare = home.path / "run-rw"
        spare.mkdir()
        h = str(home.latch_home)
        subprocess.run(["mount", "--bind", h, h], check=True)
        mounts.append(h)
        subprocess.run(["mount", "-o", "remount,bind,ro", h], check=True)
        subprocess.run(["mount", "--bind", str(spare), str(run_dir)], check=True)
        mounts.append(str(run_dir))
        before = len(home.recorded())
        fresh = Daemon(home)
        try:
            fresh.wait_ready(15)
            result["daemon"] = "started"
        except AssertionError as err:
            result["daemon"] = "refused to start: " + str(err).strip().splitlines()[-1][:300]
        counts: dict[str, int] = {}
        text = ""
        for n in range(2, 12):
            answer = client.call("tools/call", {"name": "echo", "arguments": {"n": n}}, timeout=30)
            o = outcome(answer)
            counts[o] = counts.get(o, 0) + 1
            text = json.dumps(answer.get("result", answer))[:300]
        result["calls"] = counts
        result["last_answer"] = text
        if counts.get("ran") or len(home.recorded()) > before:
            result["problems"].append(f"calls ran with a read-only log: {counts}")
        common_checks(home, result, None)
        intact, vtext = verify(home)
        result["verify_read_only"] = "intact" if intact else vtext[:200]
        if not intact:
            result["problems"].append(f"audit verify on the read-only home: {vtext}")
        client.close()
        fresh.stop()
    finally:
        kill_all(home)
        for m in reversed(mounts):
            subprocess.run(["umount", "-l", m], check=False)
        if not result["problems"]:
            shutil.rmtree(home.path, ignore_errors=True)
    return result


def damaged(kind: str, seed: int) -> dict[str, Any]:
    """A log written, then truncated or corrupted, then a daemon started on it."""
    result: dict[str, Any] = {"fault": kind, "seed": seed, "problems": []}
    home = Home()
    try:
        daemon = Daemon(home)
        daemon.wait_ready()
        client = connect(home)
        for n in range(60):
            call(client, "echo", {"n": n, "text": "z" * 200})
        daemon.stop()
        client.close()
        db = home.latch_home / "audit.db"
        # Every row into the main file, so that the damage hits them.
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.stat().st_size
        rng = random.Random(seed)
        if kind == "truncated":
            cut = rng.randrange(size // 4, size - 1)
            with open(db, "r+b") as f:
                f.truncate(cut)
            result["cut_at"] = f"{cut}/{size}"
        else:
            with open(db, "r+b") as f:
                for _ in range(8):
                    # Past the 100-byte header, in the b-tree pages.
                    f.seek(rng.randrange(100, size))
                    f.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
        before = len(home.recorded())
        daemon = Daemon(home)
        try:
            daemon.wait_ready(15)
            result["daemon"] = "started"
        except AssertionError:
            result["daemon"] = "refused to start"
        client = connect(home)
        counts: dict[str, int] = {}
        for n in range(100, 110):
            o = call(client, "echo", {"n": n})
            counts[o] = counts.get(o, 0) + 1
        result["calls"] = counts
        ran_without_trust = len(home.recorded()) - before
        if ran_without_trust:
            # Allowed only when the damage was outside what the daemon reads
            # and writes and its rows for these calls exist.
            result["reached_server"] = ran_without_trust
            # Only the calls made after the damage: the bytes overwritten may
            # have hit the rows of earlier ones (verify names them).
            after = [c for c in home.recorded() if (c["arguments"].get("n") or 0) >= 100]
            missing = reached_without_row(home, after)
            if missing:
                result["problems"].append(f"reached the server without a row: {missing[:5]}")
        intact, text = verify(home)
        result["verify"] = "intact" if intact else text.splitlines()[0][:200] if text else "failed"
        # Damage SQLite sees refuses every call. A changed cell it cannot see
        # is named by verify; the running daemon does not walk the chain.
        if ran_without_trust and "DAMAGED" in text:
            result["problems"].append("calls ran although SQLite finds the log damaged")
        result["damage"] = "none found" if intact else "sqlite" if "DAMAGED" in text else "changed row"
        client.close()
        daemon.stop()
    finally:
        kill_all(home)
        if not result["problems"]:
            shutil.rmtree(home.path, ignore_errors=True)
    return result


def clock() -> dict[str, Any]:
    result: dict[str, Any] = {"fault": "clock", "problems": [], "steps": []}
    if not Path(FAKETIME_LIB).exists():
        result["problems"].append(f"{FAKETIME_LIB} missing (apt-get install libfaketime)")
        return result
    home = Home()
    home.write_policy("[approvals]\nhold_seconds = 5\n")
    offset_file = home.path / "faketime"
    offset_file.write_text("+0\n")
    env_extra = {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
    old_env = home.cli_env
    home.cli_env = lambda: {**old_env(), **env_extra}  # type: ignore[method-assign]
    try:
        daemon = Daemon(home)
        home.cli_env = old_env  # type: ignore[method-assign]
        daemon.wait_ready()
        client = connect(home)
        for n, jump in enumerate(["-3600", "+3600", "+172800", "-172800"]):
            args = {"to": "a@example.com", "subject": f"s{n}", "body": "b", "n": n}
            rid = client.request("tools/call", {"name": "send_email", "arguments": args})
            entry = home.wait_pending(tool="send_email", timeout=15)
            t0 = time.monotonic()
            offset_file.write_text(f"{jump}\n")
            step: dict[str, Any] = {"jump_s": int(jump)}
            # Approve while the call waits, after the jump.
            home.approve(entry["id"])
            answer = client.response(rid, timeout=30)
            step["held_call"] = outcome(answer)
            step["answered_after_s"] = round(time.monotonic() - t0, 2)
            if step["held_call"] != "ran":
                # The hold ended first: the approved retry must go through.
                step["retry"] = call(client, "send_email", args)
                if step["retry"] != "ran":
                    result["problems"].append(f"jump {jump}: the approved call did not run: {answer}")
            # A second wait that runs out its hold, to see the hold limit.
            args2 = {**args, "subject": f"t{n}"}
            t1 = time.monotonic()
            o = call(client, "send_email", args2)
            step["unanswered_hold_s"] = round(time.monotonic() - t1, 2)
            step["unanswered"] = o
            if o == "ran":
                result["problems"].append(f"jump {jump}: an unapproved call ran")
            if not 3 <= step["unanswered_hold_s"] <= 20:
                result["problems"].append(f"jump {jump}: hold lasted {step['unanswered_hold_s']} s (limit 5)")
            # A call whose hold ran out, approved, then the clock jumps, then
            # the agent retries: the grant (ttl 600 s) is reported, not judged.
            offset_file.write_text("+0\n")
            late = home.wait_pending(tool="send_email", timeout=15)
            home.approve(late["id"])
            offset_file.write_text(f"{jump}\n")
            step["approved_then_jump_retry"] = call(client, "send_email", args2)
            offset_file.write_text("+0\n")
            for left in home.pending():
                home.deny(left["id"])
            result["steps"].append(step)
        common_checks(home, result, daemon)
        times = [r["id"] for r in rows(home)]
        result["rows"] = len(times)
        client.close()
        daemon.stop()
        intact, text = verify(home)
        result["chain_intact"] = intact
        if not intact:
            result["problems"].append(f"audit verify: {text}")
    finally:
        kill_all(home)
        if not result["problems"]:
            shutil.rmtree(home.path, ignore_errors=True)
    return result


FAULTS: dict[str, Callable[[], Any]] = {
    "disk_full": disk_full,
    "read_only": read_only,
    "truncated": lambda: [damaged("truncated", s) for s in range(10)],
    "corrupted": lambda: [damaged("corrupted", s) for s in range(20)],
    "clock": clock,
}


def main() -> int:
    names = sys.argv[1:] or list(FAULTS)
    failed = False
    for name in names:
        out = FAULTS[name]()
        for r in out if isinstance(out, list) else [out]:
            failed |= bool(r["problems"])
            print(json.dumps(r), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    tempfile.tempdir = "/tmp"
    os.environ.setdefault("RUST_BACKTRACE", "1")
    sys.exit(main())
