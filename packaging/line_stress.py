"""Run the sixteen-slot line in the window, offscreen, and report every slot that did not pass.

``line_stress.py [--runs N] [--hotplug] [--stranger]``: each run builds the lab of
packaging/gui_lab.py (sixteen secure-element boards, board 7 cut off at its CSR and board 12
without a serial, as in the screenshots), logs in, chooses the batch, starts every slot and waits
until each one ends. ``--hotplug`` also runs the hot-plug watcher (as ``make gui`` does), so Start
and arrivals race for the same boards. ``--stranger`` then starts, in a lab of its own, a board
that was provisioned and locked by another station: the next pty opened on the machine, as any
other lab or terminal on a shared machine would, while the cut-off board of slot 7 is still
listed with the pty it had. The script prints each slot's result, reason and detail, and exits 1
when a slot ended with "locked but the station has no record of it".

It is how the cause of that report was found (docs/operator-guide.md); it is not part of the test
suite (a run takes about a minute of two cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gui_lab import BATCH, PEOPLE, gui_lab
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication

from station.bootstrap import Station, build_station
from station.gui.main_window import MainWindow
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoards

ENDED = ("PASS", "FAIL", "needs QA", "SCAN SERIAL", "SWAP BOARD")
LOCKED = "locked but the station has no record"


def wait(app: QApplication, condition, what: str, timeout_s: float = 600.0) -> None:
    """Run the event loop until ``condition`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        app.processEvents()
        time.sleep(0.02)


def stranger_board(directory: Path, station: Station) -> LabBoards:
    """A board of another lab, locked as another station leaves a board that passed."""
    lab = LabBoards(directory, baud=0, registry=directory / "boards.json")
    (board,) = lab.start(1, "se")
    print(f"a board of another lab, locked elsewhere, on {board.port}")
    link = station.board_session(board.port)
    try:
        link.lock()
    finally:
        link.close()
    return lab


def one_run(app: QApplication, number: int, *, hotplug: bool, stranger: bool) -> list[str]:
    """One sixteen-slot run; returns the slots that ended locked without a record."""
    faults = {7: Faults(unplug_at="csr"), 12: Faults(no_serial=True)}
    with (
        tempfile.TemporaryDirectory() as tmp,
        gui_lab(Path(tmp) / "lab", boards=16, faults=faults) as lab,
    ):
        station = build_station(lab.config)
        window = MainWindow(station)
        window.resize(1366, 768)
        window.show()
        others: LabBoards | None = None
        try:
            window.login.name.setText("tina")
            window.login.pin.setText(PEOPLE["tina"][1])
            window.login.submit_pin()
            wait(app, lambda: window.operator is not None, "login")
            line = window.line
            if hotplug:
                window.start_hotplug()
            line.handle_scan(BATCH)
            wait(app, lambda: line.batch == BATCH, "batch")
            for slot in line.tiles:
                line.start_slot(slot)
            tiles = line.tiles.values()
            wait(app, lambda: all(t.result in ENDED for t in tiles), "every slot ends")
            if stranger:
                others = stranger_board(Path(tmp) / "other-lab", station)
                # slot 7 is started again, as a technician does after a cut-off board
                ended = len(line.outcomes)
                line.start_slot("slot-7")
                seven = line.tiles["slot-7"]
                wait(
                    app,
                    lambda: len(line.outcomes) > ended or seven.step_label.text() == "",
                    "slot-7 ends again (a run, or no board found)",
                )
            bad = []
            for slot, tile in line.tiles.items():
                if tile.result != "PASS":
                    print(
                        f"run {number} {slot}: {tile.result}: {tile.reason_label.text()} "
                        f"[{tile.detail_label.text()}]"
                    )
                if LOCKED in tile.reason_label.text():
                    bad.append(slot)
            return bad
        finally:
            window.close()
            QThreadPool.globalInstance().waitForDone(60_000)
            window.deleteLater()
            app.processEvents()
            station.close()
            if others is not None:
                others.stop()


def main() -> int:
    """Run the line ``--runs`` times; exit 1 if any slot ended locked without a record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--hotplug", action="store_true")
    parser.add_argument("--stranger", action="store_true")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    bad = []
    for number in range(1, args.runs + 1):
        bad += one_run(app, number, hotplug=args.hotplug, stranger=args.stranger)
    print(f"{args.runs} run(s); slots locked without a record: {bad or 'none'}")
    return 1 if bad else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # PySide6 can crash while Python finalises its objects after the run
