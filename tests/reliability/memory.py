"""Where a process's resident memory is, from /proc alone (no debugger).

`breakdown(pid)` splits the RSS of /proc/PID/smaps by mapping:

- heap: glibc's main arena (`[heap]`, grown with brk);
- arenas: anonymous mappings inside 64 MiB-aligned reservations, glibc's
  per-thread arenas (one per thread that allocated, up to 8 per core);
- anon: every other anonymous mapping (thread stacks, large allocations
  glibc maps on their own, SQLite's page caches live in the arenas/heap);
- shm: the SQLite WAL index (`audit.db-shm`, mapped shared);
- files: the executable and shared libraries;

plus the thread count and the `smaps_rollup` totals. Used by load.py's
samples; run on its own: `memory.py PID`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

ARENA = 64 * 1024 * 1024


def breakdown(pid: int) -> dict[str, Any]:
    parts = {"heap": 0, "arenas": 0, "anon": 0, "shm": 0, "files": 0}
    maps = 0
    arena_count = 0
    current: str | None = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                maps += 1
                lo, _hi = (int(x, 16) for x in head[0].split("-"))
                path = head[5].strip() if len(head) > 5 else ""
                if path == "[heap]":
                    current = "heap"
                elif path.endswith("-shm"):
                    current = "shm"
                elif path.startswith("/"):
                    current = "files"
                elif path == "" and lo % ARENA == 0:
                    current = "arenas"
                    arena_count += 1
                elif path == "":
                    current = "anon"
                else:
                    current = "anon"  # [stack], [vdso] …
                continue
            if head[0] == "Rss:" and current is not None:
                parts[current] += int(head[1])
    with open(f"/proc/{pid}/status") as f:
        status = {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in f if ":" in ln)}
    rollup: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            bits = line.split()
            if len(bits) == 3 and bits[2] == "kB":
                rollup[bits[0].rstrip(":")] = int(bits[1])
    mib = lambda kb: round(kb / 1024, 1)  # noqa: E731
    return {
        **{f"{k}_mib": mib(v) for k, v in parts.items()},
        "arena_count": arena_count,
        "mappings": maps,
        "threads": int(status.get("Threads", "0")),
        "anonymous_mib": mib(rollup.get("Anonymous", 0)),
        "private_dirty_mib": mib(rollup.get("Private_Dirty", 0)),
    }


if __name__ == "__main__":
    print(json.dumps(breakdown(int(sys.argv[1]))))
