"""GUI responsiveness: event-loop latency while 16 lab slots provision, and the QA view over
1,000,000 devices (open, scroll, search).

Run: ``.venv/bin/python benchmarks/bench_gui.py [--db /tmp/bs1m/station.db] [--slots 16]``

The 1M-device database is one made by ``benchmarks/bench_store.py --rows 1000000 --dir DIR``;
it is copied to a temporary folder first (opening it may migrate it), so the original stays
untouched. Latency is measured with a 10 ms Qt timer: how late each tick fires is how long the
GUI thread was busy. The idle run right before is the peer the busy figures are compared with.
"""

from __future__ import annotations

import argparse
import functools
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packaging"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gui_lab import BATCH, PEOPLE, gui_lab
from PySide6.QtCore import QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

from station.bootstrap import build_station
from station.config import load_config
from station.domain.provision_events import Failed, Passed
from station.gui.main_window import MainWindow
from station.gui.qa_view import QaView

TICK_MS = 10


class LatencyProbe:
    """A 10 ms timer; records how late each tick is (ms)."""

    def __init__(self) -> None:
        self.lates: list[float] = []
        self.at: list[float] = []  # when each tick fired (s since start)
        self._started = 0.0
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.lates.clear()
        self.at.clear()
        self._last = self._started = time.perf_counter()
        self._timer.start()

    def stop(self) -> list[float]:
        self._timer.stop()
        return list(self.lates)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lates.append(max((now - self._last) * 1000 - TICK_MS, 0.0))
        self.at.append(now - self._started)
        self._last = now


def pump(app: QApplication, until: Callable[[], bool], timeout_s: float) -> float:
    """Run the event loop until ``until()``; return the seconds it took."""
    start = time.perf_counter()
    while not until():
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError("benchmark state not reached")
        app.processEvents()
        time.sleep(0.001)
    return time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def bench_line(app: QApplication, slots: int, baud: int, rounds: int) -> None:
    """A sustained line: every slot provisions ``rounds`` boards, swapped in as each passes.

    Boards start by hot-plug, as on the line. The swaps run on a helper thread (they stand for
    the technician's hands), so the GUI thread does only what the station does.
    """
    with (
        tempfile.TemporaryDirectory() as tmp,
        gui_lab(Path(tmp) / "lab", boards=slots, baud=baud, batch_size=slots * rounds) as lab,
    ):
        station = lab.station()
        window = MainWindow(station)
        window.resize(1920, 1080)
        window.show()
        probe = LatencyProbe()
        swaps: queue.Queue[int | None] = queue.Queue()

        def technician() -> None:
            while (index := swaps.get()) is not None:
                lab.lab.swap(index)

        hands = threading.Thread(target=technician, name="bench-technician")
        hands.start()
        try:
            window.login.name.setText("tina")
            window.login.pin.setText(PEOPLE["tina"][1])
            window.login.submit_pin()
            pump(app, lambda: window.operator is not None, 60)
            line = window.line
            line.handle_scan(BATCH)
            pump(app, lambda: line.batch == BATCH, 60)
            probe.start()
            prepared = pump(
                app, lambda: all(t.step_label.text() == "ready" for t in line.tiles.values()), 120
            )
            preparing = probe.stop()
            probe.start()
            pump(app, lambda: len(probe.lates) >= 300, 60)  # 3 s idle
            idle = probe.stop()
            finished = dict.fromkeys(line.tiles, 0)
            board_of = {f"slot-{board.index}": board.index for board in lab.boards}

            def board_done(event: Passed | Failed) -> None:
                # the technician swaps in the next unit until the slot has done its rounds
                finished[event.slot] += 1
                if finished[event.slot] < rounds:
                    swaps.put(board_of[event.slot])

            line.board_done.connect(board_done)
            probe.start()
            started = time.perf_counter()
            window.start_hotplug()
            total = slots * rounds
            pump(app, lambda: line.passed + line.failed >= total, 3600)
            wall = time.perf_counter() - started
            busy = probe.stop()
            stalls = [
                f"{at:.1f} s ({late:.0f} ms)"
                for at, late in zip(probe.at, busy, strict=True)
                if late > 100
            ]
        finally:
            swaps.put(None)
            hands.join()
            window.close()
            QThreadPool.globalInstance().waitForDone(60_000)
            station.close()
    p50_idle, p99_idle = statistics.median(idle), pct(idle, 0.99)
    p50, p99 = statistics.median(busy), pct(busy, 0.99)
    print(
        f"## line: {slots} slots x {rounds} boards at {baud or 'unpaced'} baud: "
        f"{line.passed} PASS, {line.failed} FAIL in {wall:.1f} s "
        f"({line.passed / wall * 3600:.0f} units/hour)"
    )
    print(
        f"  {slots} slots ready for the batch in {prepared:.1f} s; lateness meanwhile: "
        f"p50 {statistics.median(preparing):.2f} ms  max {max(preparing):.1f} ms"
    )
    print(f"  event-loop lateness idle (peer): p50 {p50_idle:.2f} ms  p99 {p99_idle:.2f} ms")
    print(
        f"  event-loop lateness provisioning: p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
        f"p99.9 {pct(busy, 0.999):.1f} ms  max {max(busy):.1f} ms  ({len(busy)} ticks)"
    )
    print(f"  ticks later than 100 ms: {len(stalls)}: {', '.join(stalls)}")


def bench_qa(app: QApplication, db: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_start = time.perf_counter()
        shutil.copyfile(db, work / "station.db")
        print(
            f"## QA view: copied {db} ({db.stat().st_size / 1e9:.1f} GB) in "
            f"{time.perf_counter() - copy_start:.1f} s"
        )
        (work / "s.toml").write_text(
            f'[station]\nid = "bench"\ndata_dir = "{work}"\n', encoding="utf-8"
        )
        station = build_station(load_config(work / "s.toml", env={}))
        start = time.perf_counter()
        station.store()  # open + migrate check: what a station start costs anyway
        print(f"  open store: {time.perf_counter() - start:.2f} s")
        view = QaView(station)
        view.resize(1920, 1080)
        view.show()
        probe = LatencyProbe()
        try:
            probe.start()
            start = time.perf_counter()
            view.refresh()
            constructed = time.perf_counter() - start
            first = pump(app, lambda: view.model.rowCount() > 0 and view.model.total > 0, 600)
            total = view.model.total
            pages: list[float] = []
            for _ in range(20):
                rows = view.model.rowCount()
                t0 = time.perf_counter()
                view.table.scrollToBottom()
                pump(app, functools.partial(grew, view, rows), 600)
                pages.append(time.perf_counter() - t0)
            scrolled = view.model.rowCount()
            search = pump_search(app, view, "SN00777777")
            lates = probe.stop()
        finally:
            QThreadPool.globalInstance().waitForDone(60_000)
            station.close()
    print(
        f"  {total:,} devices: refresh() returned in {constructed * 1000:.1f} ms; "
        f"first page shown after {first:.2f} s"
    )
    print(
        f"  scroll: 20 pages ({scrolled:,} rows loaded in all), median "
        f"{statistics.median(pages) * 1000:.0f} ms per page, max {max(pages) * 1000:.0f} ms"
    )
    print(f"  search by serial among them: {search * 1000:.0f} ms")
    print(
        f"  event-loop lateness meanwhile: p50 {statistics.median(lates):.2f} ms  "
        f"p99 {pct(lates, 0.99):.2f} ms  max {max(lates):.1f} ms"
    )


def grew(view: QaView, rows: int) -> bool:
    """Whether the QA table holds more than ``rows`` rows."""
    return view.model.rowCount() > rows


def pump_search(app: QApplication, view: QaView, key: str) -> float:
    view.search.setText(key)
    start = time.perf_counter()
    view.refresh()
    pump(app, lambda: view.model.rowCount() == 1 and view.model.row(0).serial == key, 600)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, default=Path("/tmp/bs1m/station.db"))
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--baud", type=int, default=115_200, help="lab board line speed")
    parser.add_argument("--rounds", type=int, default=4, help="boards per slot")
    parser.add_argument("--skip-line", action="store_true")
    parser.add_argument("--skip-qa", action="store_true")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    if not args.skip_line:
        bench_line(app, args.slots, args.baud, args.rounds)
    if not args.skip_qa:
        if args.db.exists():
            bench_qa(app, args.db)
        else:
            print(f"## QA view: {args.db} not found; make it with bench_store.py --rows 1000000")
    sys.stdout.flush()
    # PySide6 can crash while Python finalises its objects after the run; the figures are out
    os._exit(0)


if __name__ == "__main__":
    main()
