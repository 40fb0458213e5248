"""Slots in parallel: one worker thread per slot, each running the same provisioning service.

The line is told where boards appear (``plugged(slot, port)``: from hot-plug polling in the CLI,
from the GUI, or once for ``--port``). Each slot's worker owns that slot's station (its own SQLite
connection, board session, CA session and TPM context: single-owner resources), provisions one
board per port it is handed, and reports every event through ``emit``. ``emit`` is called from
worker threads; the caller makes it thread-safe (the CLI serialises printing, the GUI posts to
the Qt event loop).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from station.domain.errors import StationError
from station.domain.provision_events import (
    Failed,
    ProvisionEvent,
    Step,
    disposition_of,
    explain,
    failure_kind,
)
from station.ports import BoardLink, OperatorPrompt
from station.services.prompts import PendingQuestion, RelayedPrompt
from station.services.provision import (
    ProvisionOutcome,
    ProvisionRequest,
    ProvisionService,
)

log = logging.getLogger(__name__)

_POLL_S = 0.2  # how often an idle worker looks at its stop flag


class SlotStation(Protocol):
    """What a slot worker needs from the composition root (``Station.for_thread()``)."""

    def provisioning(self) -> ProvisionService:
        """The provisioning service on this station's connections."""
        ...

    def board_session(self, port: str, *, handshake: bool = True) -> BoardLink:
        """Open the board on ``port``."""
        ...

    def close(self) -> None:
        """Close every connection this station opened."""
        ...


class SlotWorker:
    """One slot's thread: provisions each board handed to it, one at a time.

    Args:
        slot: the slot's name.
        make_station: builds this worker's own station (called on the worker's thread).
        batch: the batch boards go into.
        operator: who provisions them (every request of this worker carries it).
        emit: receives every event (called on the worker's thread).
        stop: set to stop every worker of the line (checked between steps).
        rework_reason: QA rework: void a recorded identity and provision anew.
        ask: where the worker's operator questions go (a :class:`PendingQuestion` each, posted
            from the worker's thread); none: boards that need an answer stop at connect.
    """

    def __init__(
        self,
        slot: str,
        make_station: Callable[[], SlotStation],
        *,
        batch: str,
        operator: str,
        emit: Callable[[ProvisionEvent], None],
        stop: threading.Event,
        rework_reason: str = "",
        ask: Callable[[PendingQuestion], None] | None = None,
    ) -> None:
        self.slot = slot
        self._prompt = RelayedPrompt(ask, stop) if ask is not None else None
        self._make_station = make_station
        self._request = ProvisionRequest(
            slot=slot, batch=batch, operator=operator, rework_reason=rework_reason
        )
        self._emit = emit
        self._stop = stop
        self._ports: queue.Queue[tuple[str, str]] = queue.Queue()  # (port, scanned serial)
        self.outcomes: list[ProvisionOutcome] = []
        self._thread = threading.Thread(target=self._main, name=f"slot-{slot}", daemon=True)
        self._busy = threading.Event()

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def submit(self, port: str, serial: str = "") -> None:
        """Provision the board that just appeared on ``port`` (``serial``: scanned from it)."""
        self._busy.set()
        self._ports.put((port, serial))

    @property
    def idle(self) -> bool:
        """Whether the worker has nothing queued and nothing running."""
        return not self._busy.is_set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after the line's stop flag is set)."""
        self._thread.join(timeout)

    def _main(self) -> None:
        station = None
        try:
            station = self._make_station()
            service = station.provisioning()
            while not self._stop.is_set():
                try:
                    port, serial = self._ports.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                self.outcomes.append(self._one(station, service, port, serial))
                if self._ports.empty():
                    self._busy.clear()
        except Exception:  # a broken station must not vanish silently
            log.exception("slot %s worker stopped", self.slot)
            raise
        finally:
            self._busy.clear()
            if station is not None:
                station.close()

    def _one(
        self, station: SlotStation, service: ProvisionService, port: str, serial: str
    ) -> ProvisionOutcome:
        request = dataclasses.replace(self._request, serial=serial)
        return provision_on_port(
            station,
            service,
            port,
            request,
            emit=self._emit,
            cancel=self._stop,
            prompt=self._prompt,
        )


def provision_on_port(
    station: SlotStation,
    service: ProvisionService,
    port: str,
    request: ProvisionRequest,
    *,
    emit: Callable[[ProvisionEvent], None],
    cancel: threading.Event,
    prompt: OperatorPrompt | None = None,
) -> ProvisionOutcome:
    """Open the board on ``port`` and provision it: one board, start to end, on this thread.

    Shared by the CLI's slot threads and the GUI's slot workers, so both run exactly the same
    steps. Never raises for a board problem: a board that cannot even be opened is reported as
    a :class:`Failed` event at the connect step and a failed outcome. ``prompt`` answers the
    run's operator questions.
    """
    try:
        link = station.board_session(port, handshake=False)
    except StationError as exc:
        return not_started(request.slot, exc, emit)
    try:
        return service.run(link, request, emit=emit, cancel=cancel, prompt=prompt)
    finally:
        link.close()


def not_started(
    slot: str, error: StationError, emit: Callable[[ProvisionEvent], None]
) -> ProvisionOutcome:
    """Report a run that failed before the board answered (no port, no station): at connect."""
    why = explain(Step.CONNECT, error)
    detail = f"{error.code}: {error.message}"
    disposition = disposition_of(failure_kind(error))
    emit(
        Failed(
            slot, Step.CONNECT, why.reason, why.remedy, error.code, detail, disposition=disposition
        )
    )
    return ProvisionOutcome(
        passed=False,
        slot=slot,
        reason=why.reason,
        remedy=why.remedy,
        code=error.code,
        detail=detail,
    )


class ProvisionLine:
    """Workers per slot, created on first use.

    Args:
        make_station: builds a worker's own station (``station.for_thread``).
        batch: the batch boards go into.
        operator: who provisions them.
        emit: receives every event, from worker threads.
        rework_reason: QA rework for every board on the line (one-board runs only, in practice).
        ask: receives every operator question, from worker threads (see :class:`SlotWorker`).
    """

    def __init__(
        self,
        make_station: Callable[[], SlotStation],
        *,
        batch: str,
        operator: str,
        emit: Callable[[ProvisionEvent], None],
        rework_reason: str = "",
        ask: Callable[[PendingQuestion], None] | None = None,
    ) -> None:
        self._make_station = make_station
        self._ask = ask
        self._batch = batch
        self._operator = operator
        self._emit = emit
        self._rework = rework_reason
        self.stop_flag = threading.Event()
        self.workers: dict[str, SlotWorker] = {}

    def plugged(self, slot: str, port: str, serial: str = "") -> None:
        """A board appeared on ``port`` in ``slot``: provision it on that slot's worker.

        ``serial`` is the serial scanned from the board, for boards that report none.
        """
        worker = self.workers.get(slot)
        if worker is None:
            worker = SlotWorker(
                slot,
                self._make_station,
                batch=self._batch,
                operator=self._operator,
                emit=self._emit,
                stop=self.stop_flag,
                rework_reason=self._rework,
                ask=self._ask,
            )
            self.workers[slot] = worker
            worker.start()
        worker.submit(port, serial)

    @property
    def idle(self) -> bool:
        """Whether every worker is idle."""
        return all(worker.idle for worker in self.workers.values())

    def outcomes(self) -> list[ProvisionOutcome]:
        """Every finished run, per slot in order of slot creation."""
        return [outcome for worker in self.workers.values() for outcome in worker.outcomes]

    def stop(self, timeout: float = 120.0) -> None:
        """Ask every worker to stop after its current step and wait for them."""
        self.stop_flag.set()
        for worker in self.workers.values():
            worker.join(timeout)
