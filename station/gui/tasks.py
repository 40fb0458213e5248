"""One-shot background jobs for the GUI (queries, exports), run on Qt's thread pool.

A task gets its own :class:`~station.bootstrap.Station` (``for_thread()``), because SQLite
connections and ports belong to the thread that opened them. Results and errors come back to the
GUI thread through queued signals carrying plain values; widgets are never touched off-thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from station.bootstrap import Station
from station.domain.errors import StationError

log = logging.getLogger(__name__)


class TaskSignals(QObject):
    """Signals of one task: exactly one of ``done`` or ``failed`` is emitted."""

    done = Signal(object)
    failed = Signal(object)


class StationTask(QRunnable):
    """Run ``job(station)`` on a pool thread with a station of its own."""

    def __init__(self, station: Station, job: Callable[[Station], Any]) -> None:
        super().__init__()
        # Python owns the task (the callers keep it referenced until it reports); letting the
        # pool delete the C++ side as well would free it twice when Python lets go.
        self.setAutoDelete(False)
        self.signals = TaskSignals()
        self._station = station
        self._job = job

    def run(self) -> None:
        """Thread-pool entry point: the one sanctioned broad catch for this job."""
        own = self._station.for_thread()
        try:
            result = self._job(own)
        except StationError as exc:
            self.signals.failed.emit(exc)
        except Exception as exc:
            log.exception("background task failed")
            self.signals.failed.emit(
                StationError(f"unexpected error: {exc}", remedy="See the log for details.")
            )
        else:
            self.signals.done.emit(result)
        finally:
            own.close()


class TaskRunner:
    """Starts one-shot tasks for a view and keeps them referenced until they report back."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self._running: set[StationTask] = set()

    def run(
        self,
        job: Callable[[Station], Any],
        on_done: Callable[[Any], None],
        on_failed: Callable[[StationError], None],
    ) -> StationTask:
        """Run ``job`` on the pool with a station of its own; callbacks run on the GUI thread."""
        task = StationTask(self.station, job)
        self._running.add(task)
        task.signals.done.connect(lambda _r: self._running.discard(task))
        task.signals.failed.connect(lambda _e: self._running.discard(task))
        task.signals.done.connect(on_done)
        task.signals.failed.connect(on_failed)
        QThreadPool.globalInstance().start(task)
        return task

    @property
    def busy(self) -> bool:
        """Whether any task of this runner is still running."""
        return bool(self._running)


def describe(error: StationError) -> str:
    """One line for a status bar: the message and what to do."""
    return error.message + (f" — {error.remedy}" if error.remedy else "")
