"""``station demo --gui``: the demo's operator steps clicked through the station window.

The same window a technician and QA use: the technician logs in, scans each work order into the
scan bar and starts the slots; the tiles go from running to PASS live. QA then logs in, seals,
exports, pushes and reconciles each batch in the batches view, and finds a device in the QA
view. Each step waits on what the window shows (the driver pumps the event loop), so the demo
fails loudly, with the window's own message, if the GUI does not get there.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TypeVar

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from station.bootstrap import Station
from station.domain.errors import StationError
from station.domain.provision_events import ProvisionEvent
from station.domain.pushes import PushSummary, ReconcileReport
from station.domain.records import SealRecord
from station.gui.line_view import LineView
from station.gui.main_window import MainWindow
from station.services.batches import ExportResult
from station.services.provision import ProvisionOutcome

DONE = ("PASS", "FAIL", "needs QA")
STEP_TIMEOUT_S = 600.0
_R = TypeVar("_R")


class GuiDemoError(StationError):
    """The window did not reach the state the demo waits for."""

    code = "demo.gui"


class GuiFrontEnd:
    """Drives the station window through the demo's operator steps.

    Args:
        logins: name -> PIN of the demo's technician and QA operators.
        technician: who provisions; qa: who releases batches.
        dwell_s: how long each view stays on screen after its step, for people watching
            (0 in tests).
        keep_open: at the end, leave the window open until the user closes it.
        size: the window size (the smallest supported screen by default).
    """

    def __init__(
        self,
        logins: dict[str, str],
        *,
        technician: str,
        qa: str,
        dwell_s: float = 1.0,
        keep_open: bool = True,
        size: tuple[int, int] = (1366, 768),
    ) -> None:
        self._logins = logins
        self._technician = technician
        self._qa = qa
        self._dwell_s = dwell_s
        self._keep_open = keep_open
        self._size = size
        app = QApplication.instance()
        self._app = app if isinstance(app, QApplication) else QApplication([])
        self.window: MainWindow | None = None
        self._station: Station | None = None
        self._results: list[tuple[str, object]] = []
        self._stop_signal = 0  # set by Ctrl-C / SIGTERM while Qt runs the loop
        self._old_handlers: dict[int, object] = {}

    # ------------------------------------------------------------------ DemoFrontEnd
    def open(self, station: Station) -> None:
        """Open the station window on the demo station."""
        # Qt's loop would swallow a KeyboardInterrupt raised inside a slot: note the signal
        # and stop from the demo's own loop, so the lab is always cleaned up
        for number in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[number] = signal.signal(number, self._on_stop_signal)
        self._station = station.for_thread()
        window = MainWindow(self._station)
        window.setWindowTitle(f"{window.windowTitle()} — demo")
        window.resize(*self._size)
        window.batches.finished.connect(
            lambda action, result: self._results.append((action, result))
        )
        window.show()
        self.window = window
        self._pump(lambda: window.isVisible(), "the window to show")

    def provision(
        self, plan: Sequence[tuple[str, str]], show: Callable[[ProvisionEvent], None]
    ) -> list[ProvisionOutcome]:
        """As the technician: per batch, scan its work order and start its slots."""
        window = self._log_in(self._technician)
        line = window.line
        window.show_view("Line")
        line.board_done.connect(show)
        try:
            batches: dict[str, list[str]] = {}
            for slot, batch in plan:
                batches.setdefault(batch, []).append(slot)
            for batch, slots in batches.items():
                line.scan.setText(batch)
                line.scan.returnPressed.emit()  # what a keyboard-wedge scanner's Enter does
                self._pump(_is_batch(line, batch), f"batch {batch} to be selected")
                for slot in slots:
                    line.start_slot(slot)
                self._pump(_all_done(line, slots), f"slots {', '.join(slots)} to finish")
            self._pump(lambda: line.idle, "every slot worker to finish")
            self._dwell()
            return list(line.outcomes)
        finally:
            line.board_done.disconnect(show)

    def seal(self, batch: str) -> SealRecord:
        """As QA: seal ``batch`` in the batches view."""
        return self._batch_action(batch, "seal", SealRecord)

    def export(self, batch: str) -> ExportResult:
        """As QA: export ``batch`` in the batches view."""
        return self._batch_action(batch, "export", ExportResult)

    def push(self, batch: str) -> PushSummary:
        """As QA: push ``batch`` to DPS in the batches view."""
        return self._batch_action(batch, "push", PushSummary)

    def reconcile(self, batch: str) -> ReconcileReport:
        """As QA: reconcile ``batch`` in the batches view; then show its first device."""
        report = self._batch_action(batch, "reconcile", ReconcileReport)
        self._show_device(report)
        return report

    def finish(self) -> None:
        """Leave the window open for a look around (until closed), then close it."""
        window = self.window
        if window is None:
            return
        if self._keep_open:
            window.statusBar().showMessage(
                "Demo finished: look around, then close the window to stop the lab."
            )
            while window.isVisible() and not self._stop_signal:
                self._wait(0.1)
        self.close()

    def close(self) -> None:
        """Close the window (slot workers stop) and its station."""
        if self.window is not None:
            self.window.close()
            self.window.deleteLater()
            self.window = None
        if self._station is not None:
            self._station.close()
            self._station = None
        for number, handler in self._old_handlers.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._old_handlers.clear()

    # ------------------------------------------------------------------ steps in the window
    def _batch_finished(self, action: str, result: object) -> None:
        self._results.append((action, result))

    def _log_in(self, name: str) -> MainWindow:
        window = self._require_window()
        if window.operator is not None and window.operator.name == name:
            return window
        if window.operator is not None:
            window.lock()
        window.login.name.setText(name)
        window.login.pin.setText(self._logins[name])
        window.login.submit_pin()
        self._pump(
            lambda: window.operator is not None and window.operator.name == name,
            f"{name} to log in",
            failure=lambda: window.login.message.text(),
        )
        return window

    def _batch_action(self, batch: str, action: str, kind: type[_R]) -> _R:
        window = self._log_in(self._qa)
        view = window.batches
        window.show_view("Batches")
        view.refresh()

        def selected() -> bool:
            view.select(batch)  # the rows arrive from a background refresh
            return view.selected() == batch

        self._pump(selected, f"batch {batch} in the batches view")
        self._results.clear()
        button = {
            "seal": view.seal_button,
            "export": view.export_button,
            "push": view.push_button,
            "reconcile": view.reconcile_button,
        }[action]
        button.click()
        self._pump(lambda: bool(self._results), f"{action} of {batch}")
        done, result = self._results[-1]
        if isinstance(result, StationError):
            raise result
        if done != action or not isinstance(result, kind):
            raise GuiDemoError(f"{action} of {batch} ended with {done}: {result!r}")
        self._dwell()
        return result

    def _show_device(self, report: ReconcileReport) -> None:
        if not report.items:
            return
        window = self._require_window()
        window.show_view("QA")
        qa = window.qa
        qa.search.setText(report.items[0].registration_id)
        qa.search_button.click()
        self._pump(lambda: qa.current is not None, "the device to show in the QA view")
        self._dwell()

    # ------------------------------------------------------------------ event loop
    def _require_window(self) -> MainWindow:
        if self.window is None:
            raise GuiDemoError("the demo window is not open")
        return self.window

    def _pump(
        self,
        until: Callable[[], bool],
        what: str,
        *,
        failure: Callable[[], str] | None = None,
    ) -> None:
        """Run the event loop until ``until()`` holds (the window does the work meanwhile)."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not until():
            if time.monotonic() > deadline:
                shown = failure() if failure else ""
                raise GuiDemoError(
                    f"the GUI demo waited {STEP_TIMEOUT_S:.0f} s for {what}"
                    + (f": {shown}" if shown else ""),
                    remedy="Run `station demo` (headless) to see whether the services work.",
                )
            if self._stop_signal:
                self.close()
                raise KeyboardInterrupt
            if self.window is not None and not self.window.isVisible():
                raise GuiDemoError("the demo window was closed before the demo finished")
            self._wait(0.02)

    def _on_stop_signal(self, number: int, frame: FrameType | None) -> None:
        self._stop_signal = number

    def _dwell(self) -> None:
        if self._dwell_s > 0:
            self._wait(self._dwell_s)

    @staticmethod
    def _wait(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()


def _is_batch(line: LineView, batch: str) -> Callable[[], bool]:
    return lambda: line.batch == batch


def _all_done(line: LineView, slots: list[str]) -> Callable[[], bool]:
    return lambda: all(line.tiles[slot].result in DONE for slot in slots)
