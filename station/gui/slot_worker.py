"""Long-lived GUI workers: a QObject in its own QThread per fixture slot, and the hot-plug watcher.

A :class:`SlotWorker` owns its slot's resources for the whole session: its own station (SQLite
connection, CA/HSM session) and, per board, the board session and TPM context. It runs the same
synchronous provisioning service the CLI runs
(:func:`~station.services.provision_line.provision_on_port`) and reports frozen events through
Qt signals; the GUI thread receives them queued, so widgets are only ever touched there.

Requests travel the other way as queued signals too: the GUI thread emits, the slot's thread
runs the slot. Cancellation is cooperative: :attr:`SlotWorker.cancel` is checked between steps
and every board I/O has a timeout, so a worker always comes back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

from station.bootstrap import Station
from station.domain.boards import SlotEvent
from station.domain.errors import ProvisionInternalError, StationError
from station.services.prompts import RelayedPrompt
from station.services.provision import ProvisionRequest
from station.services.provision_line import not_started, provision_on_port

log = logging.getLogger(__name__)

HOTPLUG_POLL_MS = 500  # how often the watcher looks for boards plugged in or pulled out
PREPARE_GAP_MS = 150  # between two slots getting ready for a batch (see SlotThreads.prepare)


class SlotWorker(QObject):
    """Provisions the boards of one slot, one at a time, on its own thread.

    Signals (emitted on the slot's thread, delivered queued to GUI-thread receivers):
        reported: each :class:`~station.domain.provision_events.ProvisionEvent` of a run.
        finished: the :class:`~station.services.provision.ProvisionOutcome` of a run.
        prepared: (slot, error or None) once the slot is ready for a batch's boards.
        asked: a :class:`~station.services.prompts.PendingQuestion` the run waits on (the
            slot's tile answers it on the GUI thread; the worker waits, the GUI never does).
    """

    reported = Signal(object)
    asked = Signal(object)
    finished = Signal(object)
    prepared = Signal(str, object)
    _preparing = Signal(str)  # batch: GUI thread -> the slot's thread
    # port, batch, operator, rework reason, expected serial, serial of the board that passed
    # last in the slot: GUI thread -> the slot's thread
    _requested = Signal(str, str, str, str, str, str)
    _closing = Signal()

    def __init__(self, slot: str, make_station: Callable[[], Station]) -> None:
        super().__init__()  # no parent: it moves to its own thread
        self.slot = slot
        self._make_station = make_station
        self._station: Station | None = None
        self.cancel = threading.Event()
        self._prompt = RelayedPrompt(self.asked.emit, self.cancel)
        self.busy = False  # read and written on the GUI thread only
        self._requested.connect(self._provision)
        self._preparing.connect(self._prepare)
        self._closing.connect(self._close)

    # ------------------------------------------------------------------ GUI thread
    def provision(
        self,
        port: str,
        batch: str,
        operator: str,
        *,
        rework_reason: str = "",
        serial: str = "",
        passed_serial: str = "",
    ) -> None:
        """Ask the slot's thread to provision the board on ``port`` into ``batch``.

        ``operator`` is who started it: the one logged in now, not when the worker was made.
        ``serial``: the board expected (a QA rework); another board is refused at connect.
        ``passed_serial``: the board that passed last in this slot and was not seen swapped.
        """
        self.busy = True
        self._requested.emit(port, batch, operator, rework_reason, serial, passed_serial)

    def prepare(self, batch: str) -> None:
        """Ask the slot's thread to open its station and get ready for ``batch``'s boards."""
        self._preparing.emit(batch)

    def close(self) -> None:
        """Ask the slot's thread to stop after the current board and release the slot."""
        self.cancel.set()
        self._closing.emit()

    # ------------------------------------------------------------------ slot thread
    @Slot(str, str, str, str, str, str)
    def _provision(
        self,
        port: str,
        batch: str,
        operator: str,
        rework_reason: str,
        serial: str,
        passed_serial: str,
    ) -> None:
        request = ProvisionRequest(
            slot=self.slot,
            batch=batch,
            operator=operator,
            rework_reason=rework_reason,
            serial=serial,
            passed_serial=passed_serial,
        )
        try:
            if self._station is None:
                self._station = self._make_station()
            outcome = provision_on_port(
                self._station,
                self._station.provisioning(),
                port,
                request,
                emit=self.reported.emit,
                cancel=self.cancel,
                prompt=self._prompt,
            )
        except StationError as exc:  # the slot's own station could not be built
            outcome = not_started(self.slot, exc, self.reported.emit)
        except Exception as exc:  # a bug must not end the slot's thread silently
            log.exception("slot %s worker failed", self.slot)
            bug = ProvisionInternalError(f"{type(exc).__name__}: {exc}")
            outcome = not_started(self.slot, bug, self.reported.emit)
        self.finished.emit(outcome)

    @Slot(str)
    def _prepare(self, batch: str) -> None:
        error: StationError | None = None
        try:
            if self._station is None:
                self._station = self._make_station()
            self._station.provisioning().prepare(batch)
        except StationError as exc:
            error = exc
        except Exception as exc:  # reported like any other problem, the slot stays usable
            log.exception("slot %s could not get ready", self.slot)
            error = StationError(f"{type(exc).__name__}: {exc}")
        self.prepared.emit(self.slot, error)

    @Slot()
    def _close(self) -> None:
        if self._station is not None:
            self._station.close()
            self._station = None
        # hand the object back to the GUI thread, where Python will destroy it, then end the
        # thread; posted after any queued request, so a running board finishes its step first
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())
        thread = QThread.currentThread()
        thread.quit()


class SlotThreads(QObject):
    """The slot workers of one line view: created on first use, each in its own QThread."""

    def __init__(self, make_station: Callable[[], Station], parent: QObject) -> None:
        super().__init__(parent)
        self._make_station = make_station
        self.workers: dict[str, SlotWorker] = {}
        self._threads: dict[str, QThread] = {}
        self._to_prepare: list[tuple[SlotWorker, str]] = []
        self._prepare_timer = QTimer(self)
        self._prepare_timer.setInterval(PREPARE_GAP_MS)
        self._prepare_timer.timeout.connect(self._prepare_next)

    def worker(self, slot: str) -> tuple[SlotWorker, bool]:
        """The worker of ``slot`` and whether it was just created (connect its signals then)."""
        existing = self.workers.get(slot)
        if existing is not None:
            return existing, False
        thread = QThread(self)
        thread.setObjectName(f"slot-{slot}")
        worker = SlotWorker(slot, self._make_station)
        worker.moveToThread(thread)
        self.workers[slot] = worker
        self._threads[slot] = thread
        thread.start()
        return worker, True

    def prepare(self, workers: list[SlotWorker], batch: str) -> None:
        """Get ``workers`` ready for ``batch``, one slot after another.

        Sixteen slots opening their stations at the same instant would compete with the GUI
        thread for the interpreter; a short gap between them keeps the window responsive.
        """
        self._to_prepare = [(worker, batch) for worker in workers]
        self._prepare_next()
        if self._to_prepare:
            self._prepare_timer.start()

    def _prepare_next(self) -> None:
        if not self._to_prepare:
            self._prepare_timer.stop()
            return
        worker, batch = self._to_prepare.pop(0)
        worker.prepare(batch)

    @property
    def idle(self) -> bool:
        """Whether no slot has a board queued or running."""
        return not any(worker.busy for worker in self.workers.values())

    def shutdown(self, timeout_s: float) -> bool:
        """Stop every worker after its current step and wait for the threads; True if all ended."""
        self._prepare_timer.stop()
        self._to_prepare.clear()
        for worker in self.workers.values():
            worker.close()
        ended = all(thread.wait(int(timeout_s * 1000)) for thread in self._threads.values())
        if not ended:
            log.error("a slot worker did not stop within %.0f s", timeout_s)
        self.workers.clear()
        self._threads.clear()
        return ended


class HotplugWatcher(QObject):
    """Polls board discovery on its own thread and reports slot changes (plug in / pull out).

    Signal:
        changed: a :class:`~station.domain.boards.SlotEvent`, delivered queued to the GUI thread.
    """

    changed = Signal(object)
    _begin = Signal()
    _ending = Signal()

    def __init__(self, make_station: Callable[[], Station]) -> None:
        super().__init__()  # no parent: it moves to its own thread
        self._make_station = make_station
        self._station: Station | None = None
        self._poll_changes: Callable[[], list[SlotEvent]] | None = None
        self._timer: QTimer | None = None
        self._begin.connect(self._start)
        self._ending.connect(self._stop)

    def start(self) -> None:
        """Begin polling (call after moving the watcher to its thread)."""
        self._begin.emit()

    def stop(self) -> None:
        """Stop polling and end the watcher's thread."""
        self._ending.emit()

    @Slot()
    def _start(self) -> None:
        self._station = self._make_station()
        self._poll_changes = self._station.hotplug().poll
        self._timer = QTimer(self)
        self._timer.setInterval(HOTPLUG_POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._poll()
        self._timer.start()

    @Slot()
    def _poll(self) -> None:
        assert self._poll_changes is not None
        try:
            for change in self._poll_changes():
                self.changed.emit(change)
        except StationError as exc:  # discovery hiccup: report, keep watching
            log.warning("hot-plug poll failed: %s", exc)

    @Slot()
    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()  # a child: it moves back to the GUI thread with the watcher
        if self._station is not None:
            self._station.close()
            self._station = None
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())
        QThread.currentThread().quit()
