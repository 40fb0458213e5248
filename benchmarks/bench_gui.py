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
import shutil
import statistics
import sys
import tempfile
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
from station.gui.main_window import MainWindow
from station.gui.qa_view import QaView

TICK_MS = 10


class LatencyProbe:
    """A 10 ms timer; records how late each tick is (ms)."""

    def __init__(self) -> None:
        self.lates: list[float] = []
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.lates.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> list[float]:
        self._timer.stop()
        return list(self.lates)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lates.append(max((now - self._last) * 1000 - TICK_MS, 0.0))
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


def bench_line(app: QApplication, slots: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, gui_lab(Path(tmp) / "lab", boards=slots) as lab:
        station = lab.station()
        window = MainWindow(station)
        window.resize(1920, 1080)
        window.show()
        probe = LatencyProbe()
        try:
            window.login.name.setText("tina")
            window.login.pin.setText(PEOPLE["tina"][1])
            window.login.submit_pin()
            pump(app, lambda: window.operator is not None, 60)
            line = window.line
            line.handle_scan(BATCH)
            pump(app, lambda: line.batch == BATCH, 60)
            probe.start()
            pump(app, lambda: len(probe.lates) >= 300, 60)  # 3 s idle
            idle = probe.stop()
            probe.start()
            started = time.perf_counter()
            for slot in line.tiles:
                line.start_slot(slot)
            done = ("PASS", "FAIL", "needs QA")
            pump(app, lambda: all(t.result in done for t in line.tiles.values()), 1800)
            wall = time.perf_counter() - started
            busy = probe.stop()
            passed = sum(t.result == "PASS" for t in line.tiles.values())
        finally:
            window.close()
            QThreadPool.globalInstance().waitForDone(60_000)
            station.close()
    p50_idle, p99_idle = statistics.median(idle), pct(idle, 0.99)
    p50, p99 = statistics.median(busy), pct(busy, 0.99)
    print(f"## line: {slots} slots, {passed} PASS in {wall:.1f} s")
    print(f"  event-loop lateness idle (peer): p50 {p50_idle:.2f} ms  p99 {p99_idle:.2f} ms")
    print(
        f"  event-loop lateness provisioning: p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
        f"max {max(busy):.1f} ms  ({len(busy)} ticks)"
    )
    print(f"  p99 busy - p99 idle: {p99 - p99_idle:+.2f} ms")


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
    parser.add_argument("--skip-line", action="store_true")
    parser.add_argument("--skip-qa", action="store_true")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    if not args.skip_line:
        bench_line(app, args.slots)
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
