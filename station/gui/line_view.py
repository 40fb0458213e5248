"""The line view: one tile per slot, a scan bar and the shift's counters.

Each slot has a :class:`~station.gui.slot_worker.SlotWorker`: a QObject in its own QThread that
owns the slot's station, port and TPM session and runs the same synchronous provisioning service
the CLI runs. Workers report frozen events through signals, delivered queued on the GUI thread,
where the tiles are updated. Board arrivals come from a :class:`HotplugWatcher` on its own thread
the same way. Everything else (discovery, scans, batch progress) runs as one-shot pool tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import Qt, QThread, Signal
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
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.boards import PlugChange, SlotEvent, printed_serial
from station.domain.errors import (
    NotFoundError,
    PermissionDeniedError,
    ScanMismatchError,
    StationError,
)
from station.domain.labels.scans import parse_scanned
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
from station.gui.session import Session
from station.gui.slot_worker import HotplugWatcher, SlotThreads, SlotWorker
from station.gui.style import RESULT_COLOURS, scaled_font
from station.gui.tasks import TaskRunner, describe
from station.services.provision import ProvisionOutcome

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
#: the board reports no serial: the technician scans the one printed on it
SERIAL_NEEDED = "provision.serial_needed"
SERIAL_MISMATCH = "provision.serial_mismatch"


@dataclass(frozen=True)
class BatchChoice:
    """The batch the line provisions into, and the steps its product's boards go through."""

    name: str
    product: str
    size: int
    provisioned: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Unrecognised:
    """A scan that is no work order, badge or label: a board serial if a slot waits for one."""

    text: str
    error: StationError  # why it is not a label, shown when no slot waits for a serial


@dataclass(frozen=True)
class ScanResult:
    """What a keyboard-wedge scan turned out to be."""

    kind: str  # batch | operator | label | other (a board serial, when a slot waits for one)
    value: object


class SlotTile(QFrame):
    """One slot: name, board, step + progress, a large coloured result, reason and remedy.

    Keyboard: focus it with Tab; Enter starts the board plugged in it; D shows the detail.
    ``compact`` tiles (more than nine on the line) use tighter spacing and put the board and
    the step on one row, so sixteen fit a 1366x768 screen.
    """

    start_requested = Signal(str)

    def __init__(self, slot: str, *, compact: bool = False) -> None:
        super().__init__()
        self.slot = slot
        self.compact = compact
        self.result = "idle"
        self.steps: tuple[Step, ...] = ()
        self.port = ""  # where the current board is plugged
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
        self.result_label.setFont(scaled_font(self, 2.0 if self.compact else 2.6, bold=True))
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.reason_label = QLabel("")
        self.reason_label.setWordWrap(True)
        self.remedy_label = QLabel("")
        self.remedy_label.setWordWrap(True)
        self.remedy_label.setFont(scaled_font(self, 1.0, bold=True))
        for label in (self.reason_label, self.remedy_label):
            label.setVisible(False)  # shown only when there is something to say
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
        if self.compact:
            layout.setContentsMargins(6, 3, 6, 3)
            layout.setSpacing(1)
            self.progress.setFixedHeight(max(self.fontMetrics().height() // 2, 6))
            board_and_step = QHBoxLayout()
            board_and_step.addWidget(self.board_label, 1)
            board_and_step.addWidget(self.step_label)
            layout.addLayout(board_and_step)
        else:
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
        """Show ``result`` (idle, running, PASS, FAIL, needs QA, SCAN SERIAL) in its colours."""
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
        self.port = port
        self._done = 0
        self.progress.setRange(0, max(len(steps), 1))
        self.progress.setValue(0)
        self.board_label.setText(f"board on {port}")
        self.step_label.setText("starting…")
        self._say("", "")
        self.detail_label.clear()
        self.set_result("running")

    def _say(self, reason: str, remedy: str) -> None:
        """Show the reason and the remedy (hidden when empty, to keep the tile compact)."""
        self.reason_label.setText(reason)
        self.reason_label.setVisible(bool(reason))
        self.remedy_label.setText(f"What to do: {remedy}" if remedy else "")
        self.remedy_label.setVisible(bool(remedy))

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
            self._say(event.reason, event.remedy)
            self.detail_label.setText(f"{event.code} at {event.step}: {event.detail}")
            if event.code == SERIAL_NEEDED:
                self.step_label.setText("waiting for a serial scan")
                self.set_result("SCAN SERIAL")
            else:
                self.set_result("needs QA" if event.code in QA_CODES else "FAIL")

    def show_error(self, error: StationError) -> None:
        """The slot could not even start (no board, unbound slot, not ready)."""
        self.set_result("FAIL")
        self._say(error.message, error.remedy)
        self.detail_label.setText(error.code)

    def show_ready(self, *, after_error: bool = False) -> None:
        """The slot is ready for boards; ``after_error`` clears its "not ready" failure."""
        if after_error:
            self.set_result("idle")
            self._say("", "")
            self.detail_label.clear()
        if self.result == "idle":
            self.step_label.setText("ready")


class LineView(QWidget):
    """Slot tiles (1..16), scan bar, batch selector and shift counters."""

    operator_switched = Signal(object)
    status = Signal(str)
    #: a board's run ended: its Passed or Failed event (not a wait for a serial scan)
    board_done = Signal(object)

    def __init__(
        self, station: Station, slots: list[str], *, session: Session, beep_on_fail: bool = True
    ) -> None:
        super().__init__()
        self._station = station
        self._session = session
        self._tasks = TaskRunner(station)
        self._beep = beep_on_fail
        self._slots = list(slots)
        self._workers = SlotThreads(station.for_thread, self)
        # (batch, reason, serial) of the board QA armed for rework: only that board takes it
        self._rework: tuple[str, str, str] | None = None
        self._reworking: dict[str, tuple[str, str, str]] = {}  # slot -> the rework it runs
        # slots whose board reports no serial -> their port; the next serial scan goes to the
        # first (insertion order; starting a waiting slot moves it to the front)
        self._awaiting_serial: dict[str, str] = {}
        self._unready: set[str] = set()  # slots whose tile shows why they could not get ready
        self.outcomes: list[ProvisionOutcome] = []  # every finished run, in order of finishing
        self._batch: BatchChoice | None = None
        self._shift_start = time.monotonic()
        self.passed = 0
        self.failed = 0
        self._passed_before_batch = 0
        self._watcher: HotplugWatcher | None = None
        self._watcher_thread: QThread | None = None
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
            "Scan: work order, badge, label (scan-back) or a board's serial — Ctrl+L to focus"
        )
        self.scan.setFont(scaled_font(self, 1.3))
        self.batch_box = QComboBox()
        self.batch_box.setMinimumContentsLength(14)
        self.counters = QLabel("")
        self.counters.setFont(scaled_font(self, 1.2, bold=True))
        self.batch_progress = QProgressBar()
        self.message = QLabel("Select a batch (scan its work order) to start.")
        self.message.setWordWrap(True)
        compact = len(self._slots) > 9
        self.tiles: dict[str, SlotTile] = {
            slot: SlotTile(slot, compact=compact) for slot in self._slots
        }
        # tiles never get cut off: when they cannot all fit (16 slots, large system font) the
        # grid scrolls instead
        self.tile_area = QScrollArea()
        self.tile_area.setWidgetResizable(True)
        self.tile_area.setFrameShape(QFrame.Shape.NoFrame)
        self.tile_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.focus_scan = QShortcut(QKeySequence("Ctrl+L"), self)
        self._update_counters()

    def _init_connections(self) -> None:
        self.scan.returnPressed.connect(self._scanned)
        self.batch_box.activated.connect(lambda _i: self.select_batch(self.batch_box.currentText()))
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
        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setContentsMargins(0, 0, 0, 0)
        columns = _columns(len(self.tiles))
        for number, tile in enumerate(self.tiles.values()):
            grid.addWidget(tile, number // columns, number % columns)
        self.tile_area.setWidget(grid_host)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(stats)
        layout.addWidget(self.message)
        layout.addWidget(self.tile_area, 1)

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
            recipe = s.batches().recipe(progress.batch.product)
            return BatchChoice(
                name,
                recipe.name,
                progress.batch.size,
                progress.provisioned,
                steps_for(recipe.attestation, lock=recipe.lock),
            )

        self._tasks.run(job, self._batch_selected, self._fail)

    def _batch_selected(self, choice: BatchChoice) -> None:
        self._batch = choice
        self._passed_before_batch = self.passed
        if self.batch_box.findText(choice.name) < 0:
            self.batch_box.addItem(choice.name)
        self.batch_box.setCurrentText(choice.name)
        self.batch_progress.setRange(0, max(choice.size, 1))
        self.batch_progress.setValue(choice.provisioned)
        self.batch_progress.setFormat(f"{choice.name}: %v / %m")
        self.message.setText(f"Batch {choice.name} ({choice.product}): plug boards in.")
        # every slot opens its station and the CA before its first board arrives
        self._workers.prepare([self._worker(slot) for slot in self._slots], choice.name)
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
        """Classify a scan in the background and act on it.

        A scan is a work order, an operator badge, a label (scan-back) or, while a slot waits for
        one, the serial printed on a board that reports none.
        """
        operator = self._session.name

        def job(s: Station) -> ScanResult:
            if s.batches().get(text) is not None:
                return ScanResult("batch", text)
            try:
                return ScanResult("operator", s.operators().authenticate_badge(text))
            except PermissionDeniedError:
                pass
            try:
                identity = parse_scanned(text)
            except ScanMismatchError as not_a_label:
                return ScanResult("other", Unrecognised(text, not_a_label))
            if (
                identity.form == "registration_id"
                and s.devices().get(identity.registration_id) is None
            ):
                # a bare code that names no device: most likely a board serial, not a label
                unknown = ScanMismatchError(
                    f"{text[:70]!r} is not a work order, a badge or the label of a known device",
                    remedy="Scan the work order, your badge, or the identity code on a label.",
                    scanned=text[:200],
                )
                return ScanResult("other", Unrecognised(text, unknown))
            return ScanResult("label", s.labels().verify(text, operator=operator))

        self._tasks.run(job, self._scan_done, self._fail)

    def _scan_done(self, result: ScanResult) -> None:
        if result.kind == "batch":
            self.select_batch(str(result.value))
        elif result.kind == "operator":
            record = result.value
            assert isinstance(record, OperatorRecord)
            self.operator_switched.emit(record)
            self.message.setText(f"Operator switched to {record.name}.")
        elif result.kind == "label":
            self.message.setText(f"Label OK: {getattr(result.value, 'registration_id', '')}.")
        else:
            assert isinstance(result.value, Unrecognised)
            if self._awaiting_serial:
                self.serial_scanned(result.value.text)
            else:
                self._fail(result.value.error)

    def serial_scanned(self, text: str) -> None:
        """A board serial was scanned: restart the first slot waiting for one with it."""
        if not self._awaiting_serial:
            self.message.setText("No slot is waiting for a serial number.")
            return
        slot = next(iter(self._awaiting_serial))
        try:
            serial = printed_serial(text)
        except StationError as exc:
            self.message.setText(f"Slot {slot}: {describe(exc)}")
            return
        port = self._awaiting_serial.pop(slot)
        self._mark_next_serial()
        self.message.setText(f"Slot {slot}: serial {serial} scanned, provisioning.")
        self.plug(slot, port, serial=serial)

    # ------------------------------------------------------------------ slots
    def start_slot(self, slot: str) -> None:
        """Find the board plugged in ``slot`` (background) and provision it.

        A slot waiting for a serial scan is not restarted: it takes the next serial scan.
        """
        if not self._check_ready(slot):
            return
        if slot in self._awaiting_serial:
            port = self._awaiting_serial.pop(slot)
            self._awaiting_serial = {slot: port, **self._awaiting_serial}
            self._mark_next_serial()
            self.message.setText(f"Scan the serial printed on the board in {slot}.")
            self.scan.setFocus()
            return
        tile = self.tiles[slot]
        tile.step_label.setText("looking for the board…")
        self._tasks.run(
            lambda s: s.discovery().board_in(slot).device,
            lambda device: self.plug(slot, str(device)),
            tile.show_error,
        )

    def plug(self, slot: str, port: str, *, serial: str = "") -> None:
        """Provision the board on ``port`` in ``slot`` (its slot worker runs it).

        ``serial``: scanned from a board that reports none.
        """
        if not self._check_ready(slot) or self._batch is None:
            return
        tile = self.tiles[slot]
        if tile.result == "running":
            return  # the slot's worker is busy with the board already there
        batch, reason = self._batch.name, ""
        if self._rework is not None:
            batch, reason, expected = self._rework
            if serial and serial != expected:
                self.message.setText(
                    f"Rework is armed for board {expected}, not {serial}: scan that board."
                )
                return
            # the service stops a board with another serial: a wrong board is never voided
            self._reworking[slot] = self._rework
            self._rework, serial = None, expected
            self.message.setText(f"Reworking board {expected} in {slot}.")
        self._unready.discard(slot)  # the tile shows this run from now on
        tile.begin(port, self._batch.steps)
        worker = self._worker(slot)
        worker.provision(port, batch, self._session.name, rework_reason=reason, serial=serial)

    def _worker(self, slot: str) -> SlotWorker:
        worker, created = self._workers.worker(slot)
        if created:
            worker.reported.connect(self._on_event)
            worker.finished.connect(self._on_finished)
            worker.prepared.connect(self._on_prepared)
        return worker

    def _on_prepared(self, slot: str, error: StationError | None) -> None:
        tile = self.tiles.get(slot)
        if tile is None or tile.result == "running":
            return
        if error is not None:
            self._unready.add(slot)
            tile.show_error(error)
        else:
            tile.show_ready(after_error=slot in self._unready)
            self._unready.discard(slot)

    def arm_rework(self, batch: str, reason: str, serial: str) -> None:
        """QA: board ``serial`` is reworked when next started (identity voided, then redone).

        The next board started takes the rework; if it is not board ``serial`` it stops at
        connect (serial mismatch) before anything is written or voided.
        """
        self._rework = (batch, reason, serial)
        self.message.setText(f"Rework armed for board {serial} (batch {batch}): start its slot.")

    def _check_ready(self, slot: str) -> bool:
        if slot not in self.tiles:
            self.message.setText(f"Unknown slot {slot}.")
            return False
        if self._batch is None:
            self.message.setText("Select a batch first: scan its work order.")
            return False
        return True

    def _on_event(self, event: ProvisionEvent) -> None:
        tile = self.tiles.get(event.slot)
        if tile is None:
            return
        tile.apply(event)
        if isinstance(event, Passed | Failed):
            rework = self._reworking.pop(event.slot, None)
            if rework is not None and isinstance(event, Failed) and event.code == SERIAL_MISMATCH:
                self._rework = rework  # another board was started: keep the rework for its own
                self.message.setText(
                    f"That was not board {rework[2]}: the rework stays armed for it."
                )
        if isinstance(event, Failed) and event.code == SERIAL_NEEDED:
            self._awaiting_serial[event.slot] = tile.port  # an action, not a failure
            self._mark_next_serial()
            return
        if isinstance(event, Passed):
            self.passed += 1
        elif isinstance(event, Failed):
            self.failed += 1
        else:
            return
        self.batch_progress.setValue(self.batch_progress.minimum() + self._batch_done())
        self._update_counters()
        self.board_done.emit(event)
        if isinstance(event, Failed) and self._beep:
            QApplication.beep()

    def _on_finished(self, outcome: ProvisionOutcome) -> None:
        self.outcomes.append(outcome)
        worker = self._workers.workers.get(outcome.slot)
        if worker is not None:
            worker.busy = False

    def _mark_next_serial(self) -> None:
        """Tell each waiting tile whether the next serial scan goes to it."""
        for number, slot in enumerate(self._awaiting_serial):
            self.tiles[slot].step_label.setText(
                "the next serial scan goes here"
                if number == 0
                else f"waiting for a serial scan ({number} before it)"
            )

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
        thread = QThread(self)
        thread.setObjectName("gui-hotplug")
        watcher = HotplugWatcher(self._station.for_thread)
        watcher.moveToThread(thread)
        watcher.changed.connect(self._on_plug)
        thread.start()
        watcher.start()
        self._watcher, self._watcher_thread = watcher, thread

    def _on_plug(self, event: SlotEvent) -> None:
        if event.change is PlugChange.ARRIVED and event.slot in self.tiles:
            self.plug(event.slot, event.board.device)
        elif event.change is PlugChange.REMOVED and event.slot in self.tiles:
            if self._awaiting_serial.pop(event.slot, None) is not None:
                self._mark_next_serial()
                self.tiles[event.slot].set_result("idle")
            tile = self.tiles[event.slot]
            if tile.result != "running":
                tile.board_label.setText("no board")

    # ------------------------------------------------------------------ shutdown
    @property
    def slot_workers(self) -> dict[str, SlotWorker]:
        """The slot workers started so far (slot -> worker)."""
        return dict(self._workers.workers)

    @property
    def idle(self) -> bool:
        """Whether no slot is provisioning."""
        return self._workers.idle

    def shutdown(self, timeout: float = 120.0) -> None:
        """Stop the hot-plug watcher and every slot worker (on window close)."""
        if self._watcher is not None and self._watcher_thread is not None:
            self._watcher.stop()
            self._watcher_thread.wait(int(timeout * 1000))
            self._watcher = self._watcher_thread = None
        self._workers.shutdown(timeout)

    def _fail(self, error: StationError) -> None:
        self.message.setText(describe(error))


def _columns(count: int) -> int:
    """Grid columns for ``count`` tiles: 1, 2, 2, 2, 3, 3, 4 ... up to 4 x 4."""
    for columns in (1, 2, 3, 4):
        if count <= columns * columns:
            return columns
    return 4
