"""``station demo --gui``: the demo's operator steps clicked through the station window."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from click.testing import CliRunner
from PySide6.QtCore import QTimer

from station.bootstrap import build_station
from station.cli.main import cli
from station.config import load_config
from station.gui.demo_front import GuiFrontEnd
from station_lab.demo import DEMO_BOARDS, DEMO_LINE, DEMO_LOGINS, QA, TECHNICIAN, run_demo
from tests.support.processes import descendants


def test_demo_runs_through_the_window_and_stops_everything(qtbot, tmp_path: Path) -> None:
    before = descendants()
    front = GuiFrontEnd(
        {name: pin for name, (_, pin) in DEMO_LOGINS.items()},
        technician=TECHNICIAN,
        qa=QA,
        dwell_s=0,
        keep_open=True,
    )
    lines: list[str] = []
    waited: list[bool] = []

    def done(_report: object) -> None:
        # the window now stays open for a look around; Ctrl-C (SIGINT) must end the demo cleanly
        assert front.window is not None and front.window.isVisible()
        waited.append(True)
        QTimer.singleShot(300, lambda: os.kill(os.getpid(), signal.SIGINT))

    report = run_demo(tmp_path / "demo", lines.append, front, on_done=done)
    assert waited == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored

    assert len(report.outcomes) == DEMO_BOARDS and all(o.passed for o in report.outcomes)
    assert len(report.hubs) == DEMO_BOARDS
    assert sum(": PASS " in line for line in lines) == DEMO_BOARDS  # live progress, per board
    assert front.window is None  # closed at the end, slot workers stopped

    # the window did the work: the technician recorded the devices, QA released the batches
    station = build_station(load_config(report.directory / "station.toml", env={}))
    try:
        events = list(station.store().audit.events())
        recorded = [e for e in events if e.kind == "device.recorded"]
        assert len(recorded) == DEMO_BOARDS and {e.operator for e in recorded} == {TECHNICIAN}
        sealed = [e for e in events if e.kind == "batch.sealed"]
        batches = {batch for _, _, batch in DEMO_LINE}
        assert len(sealed) == len(batches) and {e.operator for e in sealed} == {QA}
        assert {b.status for b in station.batches().all()} >= {"reconciled"}
    finally:
        station.close()
    leftover = descendants() - before
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert not leftover, f"demo left processes running: {leftover}"


def test_demo_gui_without_a_display_says_how_to_get_one(monkeypatch, tmp_path: Path) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--gui"])
    assert result.exit_code == 2
    assert "--gui needs a display" in result.output and "xvfb-run" in result.output
    assert not (tmp_path / "d").exists()  # refused before anything was set up
