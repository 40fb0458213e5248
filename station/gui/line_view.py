"""The line view: one tile per slot, a scan bar and the shift's counters.

Each slot is provisioned by the same synchronous service the CLI runs
(:class:`~station.services.provision_line.ProvisionLine`: one worker thread per slot, owning that
slot's port, TPM context and database connection). Workers report frozen events through
``emit`` on their own threads; :class:`EventBridge` re-emits them as a Qt signal, so they reach
the tiles queued on the GUI thread. Board arrivals come from a hot-plug watcher thread the same
way. Everything else (discovery, scans, batch progress) runs as one-shot pool tasks.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.boards import PlugChange, SlotEvent
from station.domain.errors import NotFoundError, PermissionDeniedError, StationError
from station.domain.provision_events import (
    Failed,
    Passed,
    ProvisionEvent,
    Resumed,
    Step,
    StepFailed,
    StepPassed,
    StepStarted,
    steps_for,
)
from station.domain.records import OperatorRecord
from station.gui.style import RESULT_COLOURS, scaled_font
from station.gui.tasks import TaskRunner, describe
from station.services.provision_line import ProvisionLine

#: failures a technician cannot fix at the bench: the board goes to QA
QA_CODES = frozenset(
    {
        "identity.duplicate",
        "provision.board_locked",
        "provision.proof_failed",
        "ca.csr_rejected",
        "board.reported",
    }
)


DRAIN_MS = 50  # how often worker events reach the tiles (fast enough to look live)


class EventBridge(QObject):
    """Carries values from worker threads to the GUI thread.

    Provisioning events are queued (``put``, any thread) and drained on the GUI thread every
    ``DRAIN_MS`` as one batch: sixteen busy slots then cost one repaint per tick, not one per
    event. Board arrivals go through a queued signal.
    """

    provision_events = Signal(list)
    plug = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[ProvisionEvent] = deque()
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self.drain)
        self._timer.start()

    def put(self, event: ProvisionEvent) -> None:
        """Queue one event (called on worker threads; deque appends are thread-safe)."""
        self._queue.append(event)

    def drain(self) -> None:
        """Hand every queued event to the GUI thread's listeners, in order."""
        batch: list[ProvisionEvent] = []
        while self._queue:
            batch.append(self._queue.popleft())
        if batch:
            self.provision_events.emit(batch)


@dataclass(frozen=True)
class BatchChoice:
    """The batch the line provisions into, and the steps its product's boards go through."""

    name: str
    product: str
    size: int
    provisioned: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class ScanResult:
    """What a keyboard-wedge scan turned out to be."""

    kind: str  # batch | operator | label
    value: object


class SlotTile(QFrame):
    """One slot: name, board, step + progress, a large coloured result, reason and remedy.

    Keyboard: focus it with Tab; Enter starts the board plugged in it; D shows the detail.
    """

    start_requested = Signal(str)

    def __init__(self, slot: str) -> None:
        super().__init__()
        self.slot = slot
        self.result = "idle"
        self.steps: tuple[Step, ...] = ()
        self._done = 0
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self.set_result("idle")

    def _init_elements(self) -> None:
        self.setFrameShape(QFrame.Shape.Box)
        self.setLineWidth(2)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAutoFillBackground(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.name_label = QLabel(self.slot)
        self.name_label.setFont(scaled_font(self, 1.2, bold=True))
        self.board_label = QLabel("no board")
        self.step_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.result_label = QLabel("")
        self.result_label.setFont(scaled_font(self, 2.6, bold=True))
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.reason_label = QLabel("")
        self.reason_label.setWordWrap(True)
        self.remedy_label = QLabel("")
        self.remedy_label.setWordWrap(True)
        self.remedy_label.setFont(scaled_font(self, 1.0, bold=True))
        self.detail_label = QLabel("")
        self.detail_label.setWordWrap(True)
        self.detail_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail_label.setVisible(False)
        self.detail_button = QPushButton("Details")
        self.detail_button.setCheckable(True)
        self.detail_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.start_button = QPushButton("Start")
        self.start_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def _init_connections(self) -> None:
        self.detail_button.toggled.connect(self.detail_label.setVisible)
        self.start_button.clicked.connect(lambda: self.start_requested.emit(self.slot))

    def _init_layout(self) -> None:
        head = QHBoxLayout()
        head.addWidget(self.name_label, 1)
        head.addWidget(self.start_button)
        head.addWidget(self.detail_button)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.board_label)
        layout.addWidget(self.step_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.result_label, 1)
        layout.addWidget(self.reason_label)
        layout.addWidget(self.remedy_label)
        layout.addWidget(self.detail_label)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter/Return/Space start the slot; D toggles the technical detail."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.start_requested.emit(self.slot)
        elif event.key() == Qt.Key.Key_D:
            self.detail_button.toggle()
        else:
            super().keyPressEvent(event)

    def set_result(self, result: str) -> None:
        """Show ``result`` (idle, running, PASS, FAIL, needs QA) in its colours."""
        self.result = result
        background, text = RESULT_COLOURS[result]
        # a palette, not a style sheet: re-polishing a tile per event would load the GUI thread
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(background))
        palette.setColor(QPalette.ColorRole.WindowText, QColor(text))
        self.setPalette(palette)
        self.result_label.setText({"idle": "IDLE", "running": "RUNNING"}.get(result, result))

    def begin(self, port: str, steps: tuple[Step, ...]) -> None:
        """A board was handed to this slot."""
        self.steps = steps
        self._done = 0
        self.progress.setRange(0, max(len(steps), 1))
        self.progress.setValue(0)
        self.board_label.setText(f"board on {port}")
        self.step_label.setText("starting…")
        for label in (self.reason_label, self.remedy_label, self.detail_label):
            label.clear()
        self.set_result("running")

    def apply(self, event: ProvisionEvent) -> None:
        """Update the tile from one provisioning event."""
        if isinstance(event, StepStarted):
            self.step_label.setText(f"step: {event.step}")
            if self.result != "running":
                self.set_result("running")
        elif isinstance(event, StepPassed):
            self._done += 1
            self.progress.setValue(min(self._done, self.progress.maximum()))
            if event.detail:
                self.detail_label.setText(f"{event.step}: {event.detail}")
        elif isinstance(event, Resumed):
            self.step_label.setText(f"resumed from {event.from_step}")
            self.detail_label.setText(event.detail)
        elif isinstance(event, StepFailed):
            self.detail_label.setText(f"{event.code}: {event.detail}")
        elif isinstance(event, Passed):
            self.progress.setValue(self.progress.maximum())
            self.board_label.setText(f"{event.serial} — {event.registration_id}")
            self.step_label.setText(f"recorded in {event.batch}")
            self.set_result("PASS")
        elif isinstance(event, Failed):
            if event.serial:
                self.board_label.setText(event.serial)
            self.step_label.setText(f"stopped at: {event.step}")
            self.reason_label.setText(event.reason)
            self.remedy_label.setText(f"What to do: {event.remedy}")
            self.detail_label.setText(f"{event.code} at {event.step}: {event.detail}")
            self.set_result("needs QA" if event.code in QA_CODES else "FAIL")

    def show_error(self, error: StationError) -> None:
        """The slot could not even start (no board, unbound slot)."""
        self.set_result("FAIL")
        self.reason_label.setText(error.message)
        self.remedy_label.setText(f"What to do: {error.remedy}" if error.remedy else "")
        self.detail_label.setText(error.code)


class LineView(QWidget):
    """Slot tiles (1..16), scan bar, batch selector and shift counters."""

    operator_switched = Signal(object)
    status = Signal(str)

    def __init__(self, station: Station, slots: list[str], *, beep_on_fail: bool = True) -> None:
        super().__init__()
        self._station = station
        self._tasks = TaskRunner(station)
        self._bridge = EventBridge()
        self._beep = beep_on_fail
        self._slots = list(slots)
        self._line: ProvisionLine | None = None
        self._rework: tuple[str, str] | None = None  # (batch, reason) for the next board
        self._old_lines: list[ProvisionLine] = []
        self._batch: BatchChoice | None = None
        self._shift_start = time.monotonic()
        self.passed = 0
        self.failed = 0
        self._passed_before_batch = 0
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self.refresh_batches()
        # load the provisioning code once, off the GUI thread, before the first board arrives:
        # sixteen workers importing it at the same moment would hold up the event loop
        self._tasks.run(lambda s: type(s.provisioning()).__name__, lambda _n: None, self._fail)

    # ------------------------------------------------------------------ construction
    def _init_elements(self) -> None:
        self.scan = QLineEdit()
        self.scan.setPlaceholderText(
            "Scan: work order, badge, or a label (scan-back) — Ctrl+L to focus"
        )
        self.scan.setFont(scaled_font(self, 1.3))
        self.batch_box = QComboBox()
        self.batch_box.setMinimumContentsLength(14)
        self.counters = QLabel("")
        self.counters.setFont(scaled_font(self, 1.2, bold=True))
        self.batch_progress = QProgressBar()
        self.message = QLabel("Select a batch (scan its work order) to start.")
        self.message.setWordWrap(True)
        self.tiles: dict[str, SlotTile] = {slot: SlotTile(slot) for slot in self._slots}
        self.focus_scan = QShortcut(QKeySequence("Ctrl+L"), self)
        self._update_counters()

    def _init_connections(self) -> None:
        self.scan.returnPressed.connect(self._scanned)
        self.batch_box.activated.connect(lambda _i: self.select_batch(self.batch_box.currentText()))
        self._bridge.provision_events.connect(self._on_events)
        self._bridge.plug.connect(self._on_plug)
        self.focus_scan.activated.connect(self.scan.setFocus)
        for tile in self.tiles.values():
            tile.start_requested.connect(self.start_slot)

    def _init_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.scan, 3)
        top.addWidget(QLabel("Batch"))
        top.addWidget(self.batch_box, 1)
        stats = QHBoxLayout()
        stats.addWidget(self.counters, 2)
        stats.addWidget(self.batch_progress, 1)
        grid = QGridLayout()
        columns = _columns(len(self.tiles))
        for number, tile in enumerate(self.tiles.values()):
            grid.addWidget(tile, number // columns, number % columns)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(stats)
        layout.addWidget(self.message)
        layout.addLayout(grid, 1)

    # ------------------------------------------------------------------ batches
    def refresh_batches(self) -> None:
        """Reload the open batches into the selector."""

        def job(s: Station) -> list[str]:
            return [b.name for b in s.batches().all() if b.status == "open"]

        self._tasks.run(job, self._show_batches, self._fail)

    def _show_batches(self, names: list[str]) -> None:
        current = self._batch.name if self._batch else ""
        self.batch_box.clear()
        self.batch_box.addItems(names)
        if current in names:
            self.batch_box.setCurrentText(current)

    def select_batch(self, name: str) -> None:
        """Make ``name`` the line's batch (after checking it exists and is open)."""

        def job(s: Station) -> BatchChoice:
            progress = s.batches().progress(name)
            if progress.batch.status != "open":
                raise NotFoundError(
                    f"batch {name} is {progress.batch.status}, not open",
                    remedy="Scan the work order of an open batch, or ask QA to open one.",
                )
            recipe = s.products().product(progress.batch.product)
            return BatchChoice(
                name,
                recipe.name,
                progress.batch.size,
                progress.provisioned,
                steps_for(recipe.attestation, lock=recipe.lock),
            )

        self._tasks.run(job, self._batch_selected, self._fail)

    def _batch_selected(self, choice: BatchChoice) -> None:
        if self._batch is None or choice.name != self._batch.name:
            self._retire_line()
        self._batch = choice
        self._passed_before_batch = self.passed
        if self.batch_box.findText(choice.name) < 0:
            self.batch_box.addItem(choice.name)
        self.batch_box.setCurrentText(choice.name)
        self.batch_progress.setRange(0, max(choice.size, 1))
        self.batch_progress.setValue(choice.provisioned)
        self.batch_progress.setFormat(f"{choice.name}: %v / %m")
        self.message.setText(f"Batch {choice.name} ({choice.product}): plug boards in.")
        self.status.emit(f"batch {choice.name} selected")

    @property
    def batch(self) -> str:
        """The selected batch's name ("" when none)."""
        return self._batch.name if self._batch else ""

    # ------------------------------------------------------------------ scans
    def _scanned(self) -> None:
        text = self.scan.text().strip()
        self.scan.clear()
        if text:
            self.handle_scan(text)

    def handle_scan(self, text: str) -> None:
        """Classify a scan in the background: work order, operator badge or label scan-back."""

        def job(s: Station) -> ScanResult:
            if s.store().batch(text) is not None:
                return ScanResult("batch", text)
            try:
                return ScanResult("operator", s.operators().authenticate_badge(text))
            except PermissionDeniedError:
                pass
            return ScanResult("label", s.labels().verify(text))

        self._tasks.run(job, self._scan_done, self._fail)

    def _scan_done(self, result: ScanResult) -> None:
        if result.kind == "batch":
            self.select_batch(str(result.value))
        elif result.kind == "operator":
            record = result.value
            assert isinstance(record, OperatorRecord)
            self.operator_switched.emit(record)
            self.message.setText(f"Operator switched to {record.name}.")
        else:
            self.message.setText(f"Label OK: {getattr(result.value, 'registration_id', '')}.")

    # ------------------------------------------------------------------ slots
    def start_slot(self, slot: str) -> None:
        """Find the board plugged in ``slot`` (background) and provision it."""
        if not self._check_ready(slot):
            return
        tile = self.tiles[slot]
        tile.step_label.setText("looking for the board…")
        self._tasks.run(
            lambda s: s.discovery().board_in(slot).device,
            lambda device: self.plug(slot, str(device)),
            tile.show_error,
        )

    def plug(self, slot: str, port: str) -> None:
        """Provision the board on ``port`` in ``slot`` (a worker thread runs it)."""
        if not self._check_ready(slot) or self._batch is None:
            return
        tile = self.tiles[slot]
        if tile.result == "running":
            return  # the slot's worker is busy with the board already there
        tile.begin(port, self._batch.steps)
        if self._rework is not None:
            batch, reason = self._rework
            self._rework = None
            line = ProvisionLine(
                self._station.for_thread,
                batch=batch,
                emit=self._bridge.put,
                rework_reason=reason,
            )
            self._old_lines.append(line)
            line.plugged(slot, port)
            return
        if self._line is None:
            self._line = ProvisionLine(
                self._station.for_thread,
                batch=self._batch.name,
                emit=self._bridge.put,
            )
        self._line.plugged(slot, port)

    def arm_rework(self, batch: str, reason: str) -> None:
        """QA: the next board started on this line is reworked (identity voided, then redone)."""
        self._rework = (batch, reason)
        self.message.setText(f"Rework armed for batch {batch}: start the board's slot.")

    def _check_ready(self, slot: str) -> bool:
        if slot not in self.tiles:
            self.message.setText(f"Unknown slot {slot}.")
            return False
        if self._batch is None:
            self.message.setText("Select a batch first: scan its work order.")
            return False
        return True

    def _on_events(self, events: list[ProvisionEvent]) -> None:
        finished = False
        beep = False
        for event in events:
            tile = self.tiles.get(event.slot)
            if tile is None:
                continue
            tile.apply(event)
            if isinstance(event, Passed):
                self.passed += 1
                finished = True
            elif isinstance(event, Failed):
                self.failed += 1
                finished = beep = True
        if finished:
            self.batch_progress.setValue(self.batch_progress.minimum() + self._batch_done())
            self._update_counters()
        if beep and self._beep:
            QApplication.beep()

    def _batch_done(self) -> int:
        start = self._batch.provisioned if self._batch is not None else 0
        return start + self.passed - self._passed_before_batch

    def _update_counters(self) -> None:
        hours = max(time.monotonic() - self._shift_start, 60.0) / 3600
        rate = self.passed / hours
        self.counters.setText(
            f"Passed {self.passed}   Failed {self.failed}   Units/hour {rate:.0f}"
        )

    # ------------------------------------------------------------------ hot plug
    def watch_hotplug(self) -> None:
        """Start boards automatically when they appear in a bound slot (lab or USB)."""
        if self._watcher is not None:
            return
        station = self._station
        stop = self._watch_stop
        emit = self._bridge.plug.emit

        def watch() -> None:
            own = station.for_thread()
            try:
                watcher = own.hotplug()
                while not stop.is_set():
                    for change in watcher.poll():
                        emit(change)
                    stop.wait(0.5)
            finally:
                own.close()

        self._watcher = threading.Thread(target=watch, name="gui-hotplug", daemon=True)
        self._watcher.start()

    def _on_plug(self, event: SlotEvent) -> None:
        if event.change is PlugChange.ARRIVED and event.slot in self.tiles:
            self.plug(event.slot, event.board.device)
        elif event.change is PlugChange.REMOVED and event.slot in self.tiles:
            tile = self.tiles[event.slot]
            if tile.result != "running":
                tile.board_label.setText("no board")

    # ------------------------------------------------------------------ shutdown
    def _retire_line(self) -> None:
        if self._line is not None:
            self._line.stop_flag.set()  # workers end after their current step, on their own
            self._old_lines.append(self._line)
            self._line = None

    @property
    def idle(self) -> bool:
        """Whether no slot is provisioning."""
        lines = [*self._old_lines, *([self._line] if self._line else [])]
        return all(line.idle for line in lines)

    def shutdown(self, timeout: float = 120.0) -> None:
        """Stop the hot-plug watcher and every slot worker (on window close)."""
        self._watch_stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout)
        self._retire_line()
        for line in self._old_lines:
            line.stop(timeout)

    def _fail(self, error: StationError) -> None:
        self.message.setText(describe(error))


def _columns(count: int) -> int:
    """Grid columns for ``count`` tiles: 1, 2, 2, 2, 3, 3, 4 ... up to 4 x 4."""
    for columns in (1, 2, 3, 4):
        if count <= columns * columns:
            return columns
    return 4
