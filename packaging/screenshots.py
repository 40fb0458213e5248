"""Refresh the station window's screenshots in docs/images/: ``python packaging/screenshots.py``.

Runs the real window on the lab of packaging/gui_lab.py: seven virtual boards, one cut off
mid-provisioning, one that cannot report its serial, and one still running when the line view is
shot. Run it under ``xvfb-run -a`` (X11, as on a workstation) or without a display (Qt's
offscreen platform); it saves one PNG per view at 1366x768, the smallest screen the line runs on.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

if not os.environ.get("DISPLAY"):  # under xvfb-run (or a desktop) the real X11 platform draws
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gui_lab import BATCH, PEOPLE, gui_lab
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication

from station.gui.main_window import MainWindow
from station_lab.boards.faults import Faults

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
SIZE = (1366, 768)


def wait(
    app: QApplication,
    condition: Callable[[], bool],
    timeout_s: float = 300.0,
    why: Callable[[], str] = lambda: "",
) -> None:
    """Run the event loop until ``condition`` holds (or fail after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            faulthandler.dump_traceback(all_threads=True)
            raise TimeoutError(f"the window did not reach the expected state {why()}")
        app.processEvents()
        time.sleep(0.02)


def shoot(app: QApplication, window: MainWindow, name: str, *, settle: bool = True) -> None:
    """Save the window as docs/images/<name>.png.

    Pending events are handled first unless ``settle`` is False (a running slot must not finish
    before the shot).
    """
    if settle:
        app.processEvents()
    window.grab().save(str(OUT / f"{name}.png"))
    print(f"saved {OUT / name}.png")


def log_in(app: QApplication, window: MainWindow, name: str) -> None:
    """Log in as ``name`` with their lab PIN."""
    window.login.name.setText(name)
    window.login.pin.setText(PEOPLE[name][1])
    window.login.submit_pin()
    wait(app, lambda: window.operator is not None and window.operator.name == name)


@contextmanager
def lab_window(app: QApplication, boards: int, faults: dict[int, Faults]) -> Iterator[MainWindow]:
    """The station window at 1366x768 on a fresh lab, with the batch chosen and slots ready."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        gui_lab(Path(tmp) / "lab", boards=boards, faults=faults) as lab,
    ):
        station = lab.station()
        window = MainWindow(station)
        window.resize(*SIZE)
        window.show()
        try:
            yield window
        finally:
            window.close()
            QThreadPool.globalInstance().waitForDone(60_000)
            window.deleteLater()
            app.processEvents()
            station.close()


def choose_batch(app: QApplication, window: MainWindow) -> None:
    """Scan the lab's work order and wait until every slot is ready."""
    line = window.line
    line.handle_scan(BATCH)
    wait(app, lambda: line.batch == BATCH)
    wait(app, lambda: all(t.step_label.text() == "ready" for t in line.tiles.values()))


def main() -> int:
    """Take every screenshot."""
    OUT.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    faults = {5: Faults(unplug_at="csr"), 6: Faults(no_serial=True)}
    with lab_window(app, 7, faults) as window:
        shoot(app, window, "login")
        log_in(app, window, "tina")
        choose_batch(app, window)
        line = window.line
        tiles = line.tiles
        for slot in ("slot-1", "slot-2", "slot-3", "slot-4", "slot-5", "slot-6"):
            line.start_slot(slot)
        done = ("PASS", "FAIL", "needs QA")
        wait(app, lambda: all(tiles[f"slot-{n}"].result in done for n in range(1, 6)))
        wait(app, lambda: tiles["slot-6"].result == "SCAN SERIAL")
        tiles["slot-5"].detail_button.setChecked(True)
        line.start_slot("slot-7")
        wait(app, lambda: tiles["slot-7"].step_label.text().startswith("step:"))
        shoot(app, window, "line-view", settle=False)  # now: slot-7 is still running
        wait(app, lambda: tiles["slot-7"].result != "running")
        line.handle_scan("SN-STICKER-0006")  # the serial printed on slot-6's board
        wait(app, lambda: tiles["slot-6"].result in done)
        wait(app, lambda: line.idle)

        window.lock()
        log_in(app, window, "ada")
        window.show_view("QA")
        qa = window.qa
        wait(app, lambda: qa.model.rowCount() >= 5)
        qa.table.selectRow(0)
        wait(app, lambda: qa.current is not None and not qa.preview.pixmap().isNull())
        qa.reason.setText("label torn at packing")
        shoot(app, window, "qa-view")

        window.show_view("Batches")
        batches = window.batches
        wait(app, lambda: batches.table.rowCount() >= 1)
        batches.select(BATCH)
        shoot(app, window, "batches-view")

        window.show_view("Admin")
        admin = window.admin
        wait(app, lambda: admin.boards.count() >= 5, 120, admin.message.text)  # slot-5 was cut
        admin.products.setCurrentRow(admin.products.count() - 1)
        shoot(app, window, "admin-view")
    sixteen_slots(app)
    return 0


def sixteen_slots(app: QApplication) -> None:
    """A full line at 1366x768: sixteen slots, one cut off, one waiting for a serial scan."""
    faults = {7: Faults(unplug_at="csr"), 12: Faults(no_serial=True)}
    with lab_window(app, 16, faults) as window:
        log_in(app, window, "tina")
        choose_batch(app, window)
        line = window.line
        for slot in line.tiles:
            line.start_slot(slot)
        done = ("PASS", "FAIL", "needs QA", "SCAN SERIAL")
        wait(app, lambda: all(t.result in done for t in line.tiles.values()))
        wait(app, lambda: line.idle)
        shoot(app, window, "line-view-16")


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # PySide6 can crash while Python finalises its objects after the run; the PNGs are saved
    os._exit(code)
