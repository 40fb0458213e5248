import os
import signal
from pathlib import Path

from station.lab.demo import DEMO_BOARDS, run_demo


def _children() -> set[int]:
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


def test_demo_runs_twice_and_leaves_no_process_behind(tmp_path: Path) -> None:
    before = _children()
    lines: list[str] = []
    for _ in range(2):
        report = run_demo(tmp_path / "demo", lines.append)
        titles = [title for title, _ in report.steps]
        assert "Provision every board" in titles
        assert report.artifacts["database"].exists()
        assert report.artifacts["backup"].exists()
        assert len(report.outcomes) == DEMO_BOARDS
        assert all(outcome.passed for outcome in report.outcomes)
        assert len(report.hubs) == DEMO_BOARDS  # every board registered at first power-on
    passes = [line for line in "\n".join(lines).splitlines() if ": PASS " in line]
    assert len(passes) == 2 * DEMO_BOARDS
    leftover = _children() - before
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert not leftover, f"demo left processes running: {leftover}"
