"""Processes a test started: to prove that nothing it spawned outlives it."""

from __future__ import annotations

import os
from pathlib import Path


def descendants() -> set[int]:
    """PIDs of live processes whose parent chain leads to this test process."""
    me = os.getpid()
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found = set()
    for pid in parents:
        cursor = pid
        while cursor in parents and cursor not in (0, 1):
            cursor = parents[cursor]
            if cursor == me:
                found.add(pid)
                break
    return found
