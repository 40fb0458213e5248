"""Take the station window's screenshots into a folder: ``screenshots.py OUT_DIR``.

Runs the real window on the lab of packaging/gui_lab.py, at 1366x768 (the smallest screen the
line runs on), and saves one PNG per view and state into ``OUT_DIR`` (there is no default: the
operator guide's pictures are refreshed with ``screenshots.py docs/images``). Run it under
``xvfb-run -a`` (X11, as on a workstation) or without a display (Qt's offscreen platform).

The shots are deterministic: seven boards, one cut off mid-provisioning, one that cannot report
its serial, and one **held** while the line and the lock screen are shot. Holding freezes the
board's process (SIGSTOP) before its slot starts, so its tile stays RUNNING however fast the
other boards finish; the station waits for its answer (the shots' ``[board] timeout_s`` is
raised for that) and the board goes on when it is released. A second lab of four boards, with
hot-plug off as the others, shows SWAP BOARD (Next board on a board that passed) and then, after
the lock, WAITING tiles for the boards that arrive; a third lab fills all sixteen slots.
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

if not os.environ.get("DISPLAY"):  # under xvfb-run (or a desktop) the real X11 platform draws
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gui_lab import BATCH, PEOPLE, GuiLab, gui_lab
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication, QWidget

from station.bootstrap import Station, build_station
from station.domain.errors import PermissionDeniedError
from station.gui.main_window import MainWindow
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoard

SIZE = (1366, 768)
#: how long the station waits for a held board (the shots take a second or two)
HOLD_TIMEOUT_S = 120.0
DONE = ("PASS", "FAIL", "needs QA")


class Shots:
    """Saves grabs of the window (or a dialog) into the chosen folder."""

    def __init__(self, app: QApplication, out: Path) -> None:
        self.app = app
        self.out = out
        self.saved: list[Path] = []

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float = 300.0) -> None:
        """Run the event loop until ``condition`` holds (or fail after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                faulthandler.dump_traceback(all_threads=True)
                raise TimeoutError(f"the window did not reach the expected state: {what}")
            self.app.processEvents()
            time.sleep(0.02)

    def shoot(self, widget: QWidget, name: str) -> None:
        """Handle pending events, then save ``widget`` as ``<out>/<name>.png``."""
        for _ in range(5):
            self.app.processEvents()
        path = self.out / f"{name}.png"
        if not widget.grab().save(str(path)):
            raise OSError(f"could not write {path}")
        self.saved.append(path)
        print(f"saved {path}")


@contextmanager
def held(board: LabBoard) -> Iterator[None]:
    """Freeze ``board``'s process until the block ends: its slot waits at its current step."""
    assert board.process is not None, "the board is not plugged"
    os.kill(board.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(board.process.pid, signal.SIGCONT)


def log_in(shots: Shots, window: MainWindow, name: str) -> None:
    """Log in (or unlock) as ``name`` with their lab PIN through the form on screen."""
    window.login.name.setText(name)
    window.login.pin.setText(PEOPLE[name][1])
    window.login.submit_pin()
    shots.wait(
        lambda: window.operator is not None and window.operator.name == name, f"{name} logs in"
    )


@contextmanager
def lab_window(
    shots: Shots, boards: int, faults: dict[int, Faults]
) -> Iterator[tuple[MainWindow, GuiLab, Station]]:
    """The station window at 1366x768 on a fresh lab (nobody logged in), the lab, its station.

    Hot-plug is off (as ``[gui] hotplug = false``): slots start by Start / Next board until a
    shot calls ``window.start_hotplug()``.
    """
    with (
        tempfile.TemporaryDirectory() as tmp,
        gui_lab(Path(tmp) / "lab", boards=boards, faults=faults) as lab,
    ):
        config = dataclasses.replace(
            lab.config, board=dataclasses.replace(lab.config.board, timeout_s=HOLD_TIMEOUT_S)
        )
        station = build_station(config)
        window = MainWindow(station)
        window.resize(*SIZE)
        window.show()
        try:
            yield window, lab, station
        finally:
            window.close()
            QThreadPool.globalInstance().waitForDone(60_000)
            window.deleteLater()
            shots.app.processEvents()
            station.close()


def choose_batch(shots: Shots, window: MainWindow) -> None:
    """Scan the lab's work order and wait until every slot is ready."""
    line = window.line
    line.handle_scan(BATCH)
    shots.wait(lambda: line.batch == BATCH, "the batch is chosen")
    shots.wait(
        lambda: all(t.step_label.text() == "ready" for t in line.tiles.values()),
        "every slot is ready",
    )


def main(argv: list[str] | None = None) -> int:
    """Take every screenshot into the folder named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNGs (created if missing)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    shots = Shots(app, out)
    seven_slots(shots)
    swap_and_wait(shots)
    sixteen_slots(shots)
    print(f"{len(shots.saved)} screenshots in {out}")
    return 0


def seven_slots(shots: Shots) -> None:
    """Login, the line with every result, the lock screen, then QA, batches and admin."""
    faults = {5: Faults(unplug_at="csr"), 6: Faults(no_serial=True)}
    with lab_window(shots, 7, faults) as (window, lab, station):
        boards = lab.boards
        shots.shoot(window, "login")
        log_in(shots, window, "tina")
        choose_batch(shots, window)
        line = window.line
        tiles = line.tiles
        for slot in ("slot-1", "slot-2", "slot-3", "slot-4", "slot-5", "slot-6"):
            line.start_slot(slot)
        shots.wait(
            lambda: all(tiles[f"slot-{n}"].result in DONE for n in range(1, 6)),
            "slots 1 to 5 end",
        )
        shots.wait(lambda: tiles["slot-6"].result == "SCAN SERIAL", "slot-6 asks for its serial")
        tiles["slot-5"].detail_button.setChecked(True)
        with held(boards[6]):  # slot-7 stays RUNNING while the line and the lock are shot
            line.start_slot("slot-7")
            shots.wait(lambda: tiles["slot-7"].step_label.text().startswith("step:"), "slot-7 runs")
            shots.shoot(window, "line-view")
            window.lock()
            shots.shoot(window, "lock-screen")
        log_in(shots, window, "tina")  # the same operator unlocks
        shots.wait(lambda: tiles["slot-7"].result in DONE, "slot-7 ends")
        line.handle_scan("SN-STICKER-0006")  # the serial printed on slot-6's board
        shots.wait(lambda: tiles["slot-6"].result in DONE, "slot-6 ends")
        shots.wait(lambda: line.idle, "the line is idle")

        window.lock()
        log_in(shots, window, "ada")  # another operator takes over
        qa_view(shots, window)
        batches_view(shots, window)
        admin_view(shots, window, station)


def qa_view(shots: Shots, window: MainWindow) -> None:
    """A device's detail panel after its first label, the reason for a reprint typed."""
    window.show_view("QA")
    qa = window.qa
    shots.wait(lambda: qa.model.rowCount() >= 5, "the QA list fills")
    qa.table.selectRow(0)
    shots.wait(
        lambda: qa.current is not None and not qa.preview.pixmap().isNull(), "a device shows"
    )
    qa.print_button.click()
    shots.wait(qa.reprint_button.isEnabled, "the first label is printed")
    qa.reason.setText("label torn at packing")
    shots.shoot(window, "qa-view")


def batches_view(shots: Shots, window: MainWindow) -> None:
    """Sealing the open batch is refused for the cut-off board's job; QA voids it in the window."""
    window.show_view("Batches")
    batches = window.batches
    shots.wait(lambda: batches.table.rowCount() >= 1, "the batch list fills")
    batches.select(BATCH)
    batches.seal_button.click()
    shots.wait(lambda: "unresolved job" in batches.message.text(), "the seal is refused")
    shots.shoot(window, "batches-view")
    batches.void_button.click()
    dialog = batches.void_dialog
    assert dialog is not None
    shots.wait(lambda: dialog.table.rowCount() == 1, "the open job is listed")
    for job_id in [int(dialog.table.item(0, 0).text())]:
        dialog.check(job_id)
    dialog.reason.setText("board cut off at the CSR, scrapped")
    shots.shoot(dialog, "void-jobs")
    dialog.void_button.click()
    shots.wait(lambda: "0 open job(s) left" in dialog.message.text(), "the job is voided")
    dialog.accept()


def admin_view(shots: Shots, window: MainWindow, station: Station) -> None:
    """The admin view after quinn typed five wrong PINs (locked out)."""
    for _ in range(5):
        with suppress(PermissionDeniedError):
            station.operators().authenticate_pin("quinn", "000000")
    window.show_view("Admin")
    admin = window.admin
    shots.wait(lambda: admin.boards.count() >= 6, "the plugged boards are listed")
    shots.wait(lambda: admin.operators.rowCount() >= 4, "the operators are listed")
    admin.products.setCurrentRow(admin.products.count() - 1)
    shots.shoot(window, "admin-view")


def swap_and_wait(shots: Shots) -> None:
    """Next board on a board still in its slot (SWAP BOARD), then boards plugged while locked.

    Four boards pass; Next board on slot-1 without swapping shows SWAP BOARD. Then the operator
    locks the window, fresh boards go into slot-1 and slot-2 and hot-plug sees them arrive: their
    tiles on the lock screen say WAITING (the boards of slot-3 and slot-4 were taken out).
    """
    with lab_window(shots, 4, {}) as (window, lab, _station):
        log_in(shots, window, "tina")
        choose_batch(shots, window)
        line = window.line
        tiles = line.tiles
        for slot in tiles:
            line.start_slot(slot)
        shots.wait(lambda: all(t.result == "PASS" for t in tiles.values()), "every slot passes")
        tiles["slot-1"].start_button.click()  # Next board, but the passed board is still there
        shots.wait(lambda: tiles["slot-1"].result == "SWAP BOARD", "slot-1 says swap the board")
        shots.wait(lambda: line.idle, "the line is idle")
        shots.shoot(window, "line-swap-board")

        window.lock()
        for board in lab.boards[2:]:
            lab.lab.unplug(board.index)
        for board in lab.boards[:2]:
            lab.lab.swap(board.index)  # the next units go in while nobody is at the window
        window.start_hotplug()
        summary = window.lock_screen.slots
        shots.wait(
            lambda: all(summary[s].result.text() == "WAITING" for s in ("slot-1", "slot-2")),
            "the boards plugged in while locked wait",
        )
        shots.shoot(window, "lock-screen-waiting")


def sixteen_slots(shots: Shots) -> None:
    """A full line at 1366x768: sixteen slots, one cut off, one waiting for a serial scan."""
    faults = {7: Faults(unplug_at="csr"), 12: Faults(no_serial=True)}
    with lab_window(shots, 16, faults) as (window, _lab, _station):
        log_in(shots, window, "tina")
        choose_batch(shots, window)
        line = window.line
        for slot in line.tiles:
            line.start_slot(slot)
        ended = (*DONE, "SCAN SERIAL")
        # the slot asking for a serial keeps its worker waiting for the answer: not idle
        shots.wait(lambda: all(t.result in ended for t in line.tiles.values()), "every slot ends")
        shots.shoot(window, "line-view-16")


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # PySide6 can crash while Python finalises its objects after the run; the PNGs are saved
    os._exit(code)
