"""The line view: one tile per slot, a scan bar and the shift's counters.

Each slot has a :class:`~station.gui.slot_worker.SlotWorker`: a QObject in its own QThread that
owns the slot's station, port and TPM session and runs the same synchronous provisioning service
the CLI runs. Workers report frozen events through signals, delivered queued on the GUI thread,
where the tiles are updated. Board arrivals come from a :class:`HotplugWatcher` on its own thread
the same way. Everything else (discovery, scans, batch progress) runs as one-shot pool tasks.

The view decides nothing itself: :class:`~station.services.line.LineModel` (Qt-free) owns what
each tile shows, the serial and rework queues and when Start is allowed; the view renders it and
forwards scans, key presses, hot-plug changes and worker signals to it. A slot whose board needs
an operator's answer (its serial) asks on its tile while its worker waits.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QThread, QTimer, Signal
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
from station.domain.boards import PlugChange, SlotEvent
from station.domain.errors import StationError
from station.domain.provision_events import Failed, ProvisionEvent
from station.domain.states import BatchStatus
from station.gui.session import Session
from station.gui.slot_worker import HotplugWatcher, SlotThreads, SlotWorker
from station.gui.style import RESULT_COLOURS, scaled_font
from station.gui.tasks import TaskRunner, describe
from station.services.line import (
    BatchChoice,
    LineModel,
    ProvisionOrder,
    Question,
    Scan,
    ScanClassifier,
    SelectBatch,
    SlotResult,
    SlotView,
    SwitchOperator,
    choose_batch,
)
from station.services.provision import ProvisionOutcome

#: how long a note (a scan's result, a refusal) stays before the message bar says again what
#: the line waits for
NOTE_MS = 15_000


class _SerialField(QLineEdit):
    """The tile's serial field: its Enter answers the slot and does not also start it."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Keep Enter here (a line edit passes it on to the tile, which would start the slot)."""
        super().keyPressEvent(event)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()


class SlotTile(QFrame):
    """One slot: name, board, step + progress, a large coloured result, reason and remedy.

    It renders the line model's :class:`~station.services.line.SlotView` and forwards input:
    Tab focuses it, Enter starts the board plugged in it, D shows the detail. While the slot
    asks for a board's serial, a field on the tile takes it (a scan or typing, then Enter).
    ``compact`` tiles (more than nine on the line) use tighter spacing and put the board and
    the step on one row, so sixteen fit a 1366x768 screen.
    """

    start_requested = Signal(str)
    serial_entered = Signal(str, str)  # slot, text

    def __init__(self, slot: str, *, compact: bool = False) -> None:
        super().__init__()
        self.slot = slot
        self.compact = compact
        self.result = SlotResult.IDLE
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self._paint(SlotResult.IDLE)

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
        self.serial_field = _SerialField()
        self.serial_field.setPlaceholderText("scan or type the board's serial, then Enter")
        for widget in (self.reason_label, self.remedy_label, self.serial_field):
            widget.setVisible(False)  # shown only when there is something to say or ask
        self.detail_label = QLabel("")
        self.detail_label.setWordWrap(True)
        self.detail_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail_label.setVisible(False)
        self.detail_button = QPushButton("Details")
        self.detail_button.setCheckable(True)
        self.detail_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.start_button = QPushButton("Start")
        self.start_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.start_button.setEnabled(False)

    def _init_connections(self) -> None:
        self.detail_button.toggled.connect(self.detail_label.setVisible)
        self.start_button.clicked.connect(lambda: self.start_requested.emit(self.slot))
        self.serial_field.returnPressed.connect(self._serial_entered)

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
            # a long board name is cut rather than widening its column (and squeezing the rest)
            self.board_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
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
        layout.addWidget(self.serial_field)
        layout.addWidget(self.detail_label)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter/Return/Space start the slot; D toggles the technical detail."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.start_requested.emit(self.slot)
        elif event.key() == Qt.Key.Key_D:
            self.detail_button.toggle()
        else:
            super().keyPressEvent(event)

    def _serial_entered(self) -> None:
        text = self.serial_field.text().strip()
        self.serial_field.clear()
        if text:
            self.serial_entered.emit(self.slot, text)

    def show_view(self, view: SlotView) -> None:
        """Show the slot as the line model sees it."""
        if view.result != self.result:
            self._paint(view.result)
        self.board_label.setText(view.board)
        self.step_label.setText(view.step)
        if self.progress.maximum() != view.total:
            self.progress.setRange(0, view.total)
        self.progress.setValue(view.done)
        self.reason_label.setText(view.reason)
        self.reason_label.setVisible(bool(view.reason))
        self.remedy_label.setText(f"What to do: {view.remedy}" if view.remedy else "")
        self.remedy_label.setVisible(bool(view.remedy))
        asking = view.result is SlotResult.ASKING
        if self.serial_field.isVisibleTo(self) != asking:
            self.serial_field.setVisible(asking)
            if not asking:
                self.serial_field.clear()
        self.detail_label.setText(view.detail)
        self.start_button.setEnabled(view.can_start)
        self.start_button.setText(view.start_text)

    def _paint(self, result: SlotResult) -> None:
        """Colour the tile for ``result`` (only when it changes)."""
        self.result = result
        background, text = RESULT_COLOURS[result]
        # a palette, not a style sheet: re-polishing a tile per event would load the GUI thread
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(background))
        palette.setColor(QPalette.ColorRole.WindowText, QColor(text))
        self.setPalette(palette)
        shown = {SlotResult.IDLE: "IDLE", SlotResult.RUNNING: "RUNNING"}.get(result, result)
        self.result_label.setText(str(shown))


class LineView(QWidget):
    """Slot tiles (1..16), scan bar, batch selector and shift counters.

    A view of :class:`~station.services.line.LineModel`: user input and worker signals go to
    the model, and the tiles, counters and message bar show what it says.
    """

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
        self.model = LineModel(self._slots, hotplug=False)
        self.outcomes: list[ProvisionOutcome] = []  # every finished run, in order of finishing
        self._shift_start = time.monotonic()
        self._watcher: HotplugWatcher | None = None
        self._watcher_thread: QThread | None = None
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self.refresh()
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
        self.batch_box.setPlaceholderText("choose a work order")
        self.counters = QLabel("")
        self.counters.setFont(scaled_font(self, 1.2, bold=True))
        self.batch_progress = QProgressBar()
        self.batch_progress.setFormat("no batch")
        self.batch_progress.setValue(0)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.setInterval(NOTE_MS)
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

    def _init_connections(self) -> None:
        self.scan.returnPressed.connect(self._scanned)
        self.batch_box.activated.connect(lambda _i: self.select_batch(self.batch_box.currentText()))
        self.focus_scan.activated.connect(self.scan.setFocus)
        self._note_timer.timeout.connect(self._note_expired)
        for tile in self.tiles.values():
            tile.start_requested.connect(self.start_slot)
            tile.serial_entered.connect(lambda slot, text: self.serial_scanned(text, slot))

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

    # ------------------------------------------------------------------ rendering
    def refresh(self, *slots: str) -> None:
        """Show the model: ``slots`` (every tile when none given), the counters, the message."""
        for slot in slots or self._slots:
            self.tiles[slot].show_view(self.model.view(slot))
        self.counters.setText(self.model.counters(time.monotonic() - self._shift_start))
        self._show_message()

    def _show_message(self) -> None:
        text = self.model.message
        if self.message.text() == text:
            return
        self.message.setText(text)
        if self.model.has_note:
            self._note_timer.start()  # the note stays a while, then the line's state again

    def _note_expired(self) -> None:
        self.model.expire_note()
        self._show_message()

    # ------------------------------------------------------------------ batches
    def refresh_batches(self) -> None:
        """Reload the open batches into the selector."""

        def job(s: Station) -> list[str]:
            return [b.name for b in s.batches().all() if b.status == BatchStatus.OPEN]

        self._tasks.run(job, self._show_batches, self._fail)

    def _show_batches(self, names: list[str]) -> None:
        self.batch_box.clear()
        self.batch_box.addItems(names)
        # the box shows the line's batch, and nothing (its placeholder) before one is chosen
        self.batch_box.setCurrentIndex(self.batch_box.findText(self.batch))

    def select_batch(self, name: str) -> None:
        """Make ``name`` the line's batch (after checking it exists and is open)."""

        def job(s: Station) -> BatchChoice:
            return choose_batch(s.batches(), name)

        self._tasks.run(job, self._batch_selected, self._batch_refused)

    def _batch_refused(self, error: StationError) -> None:
        self._fail(error)
        self.batch_box.setCurrentIndex(self.batch_box.findText(self.batch))

    def _batch_selected(self, choice: BatchChoice) -> None:
        self.model.choose(choice)
        if self.batch_box.findText(choice.name) < 0:
            self.batch_box.addItem(choice.name)
        self.batch_box.setCurrentText(choice.name)
        self.batch_progress.setRange(0, max(choice.size, 1))
        self.batch_progress.setValue(choice.provisioned)
        self.batch_progress.setFormat(f"{choice.name}: %v / %m")
        # every slot opens its station and the CA before its first board arrives
        self._workers.prepare([self._worker(slot) for slot in self._slots], choice.name)
        self.status.emit(f"batch {choice.name} selected")
        self.refresh()

    @property
    def batch(self) -> str:
        """The selected batch's name ("" when none)."""
        return self.model.batch.name if self.model.batch else ""

    @property
    def passed(self) -> int:
        """Boards passed this shift."""
        return self.model.passed

    @property
    def failed(self) -> int:
        """Boards failed this shift (a wait for a serial scan is no failure)."""
        return self.model.failed

    # ------------------------------------------------------------------ scans
    def _scanned(self) -> None:
        text = self.scan.text().strip()
        self.scan.clear()
        if text:
            self.handle_scan(text)

    def handle_scan(self, text: str) -> None:
        """Classify a scan in the background, then let the model act on it.

        A scan is a work order, an operator badge, a label (scan-back) or, while a slot asks for
        one, the serial printed on a board that reports none.
        """
        operator = self._session.name

        def job(s: Station) -> Scan:
            classifier = ScanClassifier(
                batches=s.batches(), operators=s.operators(), devices=s.devices(), labels=s.labels()
            )
            return classifier.classify(text, operator=operator)

        self._tasks.run(job, self._scan_done, self._fail)

    def _scan_done(self, scan: Scan) -> None:
        action = self.model.scanned(scan)
        if isinstance(action, SelectBatch):
            self.select_batch(action.name)
        elif isinstance(action, SwitchOperator):
            self.operator_switched.emit(action.operator)
        self.refresh()

    def serial_scanned(self, text: str, slot: str = "") -> None:
        """A board serial was scanned (for ``slot``, or the first slot asking for one)."""
        self.model.serial_scanned(text, slot)
        self.refresh()

    # ------------------------------------------------------------------ slots
    def start_slot(self, slot: str) -> None:
        """Find the board plugged in ``slot`` (background) and provision it.

        A slot asking for a serial is not restarted: it takes the next serial scan.
        """
        if not self.model.start(slot):
            self.refresh()  # the message says why; an asking slot may have moved up the queue
            if slot in self.model.asking:
                self.scan.setFocus()
            return
        self.refresh(slot)
        self._tasks.run(
            lambda s: s.discovery().board_in(slot).device,
            lambda device: self.plug(slot, str(device)),
            lambda error: self._not_found(slot, error),
        )

    def _not_found(self, slot: str, error: StationError) -> None:
        self.model.not_found(slot, error)
        self.refresh(slot)

    def plug(self, slot: str, port: str, *, arrived: bool = False) -> None:
        """Provision the board on ``port`` in ``slot`` (its slot worker runs it).

        ``arrived``: hot-plug saw the board appear (the slot's last board was swapped out).
        """
        order = self.model.plugged(slot, port, operator=self._session.name, arrived=arrived)
        if order is not None:
            self._provision(order)
        if slot in self.tiles:
            self.refresh(slot)

    def start_waiting(self) -> None:
        """Someone logged in: start the boards that arrived while the window was locked."""
        for order in self.model.logged_in(self._session.name):
            self._provision(order)
        self.refresh()

    def _provision(self, order: ProvisionOrder) -> None:
        self._worker(order.slot).provision(
            order.port,
            order.batch,
            order.operator,
            rework_reason=order.rework_reason,
            serial=order.serial,
            passed_serial=order.passed_serial,
        )

    def _worker(self, slot: str) -> SlotWorker:
        worker, created = self._workers.worker(slot)
        if created:
            worker.reported.connect(self._on_event)
            worker.finished.connect(self._on_finished)
            worker.prepared.connect(self._on_prepared)
            worker.asked.connect(self._on_asked)
        return worker

    def _on_prepared(self, slot: str, error: StationError | None) -> None:
        self.model.prepared(slot, error)
        if slot in self.tiles:
            self.refresh(slot)

    def _on_asked(self, question: Question) -> None:
        self.model.asked(question)
        self.refresh()  # every asking tile says whether the next scan goes to it

    def arm_rework(self, batch: str, reason: str, serial: str) -> None:
        """QA: board ``serial`` is reworked when next started (identity voided, then redone).

        The next board started takes the rework; if it is not board ``serial`` it stops at
        connect (serial mismatch) before anything is written or voided.
        """
        self.model.arm_rework(batch, reason, serial)
        self.refresh()

    def _on_event(self, event: ProvisionEvent) -> None:
        if event.slot not in self.tiles:
            return
        ended = self.model.apply(event)
        if not ended:
            self.tiles[event.slot].show_view(self.model.view(event.slot))
            self._show_message()  # a run that ended quietly (board pulled) changes it
            return
        self.refresh(event.slot)
        self.batch_progress.setValue(self.batch_progress.minimum() + self.model.batch_done)
        self.board_done.emit(event)
        if isinstance(event, Failed) and self._beep:
            QApplication.beep()

    def _on_finished(self, outcome: ProvisionOutcome) -> None:
        self.outcomes.append(outcome)
        worker = self._workers.workers.get(outcome.slot)
        if worker is not None:
            worker.busy = False

    # ------------------------------------------------------------------ hot plug
    def watch_hotplug(self) -> None:
        """Start boards automatically when they appear in a bound slot (lab or USB)."""
        if self._watcher is not None:
            return
        self.model.hotplug = True
        thread = QThread(self)
        thread.setObjectName("gui-hotplug")
        watcher = HotplugWatcher(self._station.for_thread)
        watcher.moveToThread(thread)
        watcher.changed.connect(self._on_plug)
        thread.start()
        watcher.start()
        self._watcher, self._watcher_thread = watcher, thread
        self.refresh()

    def _on_plug(self, event: SlotEvent) -> None:
        if event.slot not in self.tiles:
            return
        if event.change is PlugChange.ARRIVED:
            self.plug(event.slot, event.board.device, arrived=True)
        elif event.change is PlugChange.REMOVED:
            self.model.unplugged(event.slot)
            self.refresh()

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
        self.model.note(describe(error))  # in the window's words
        self._show_message()


def _columns(count: int) -> int:
    """Grid columns for ``count`` tiles: 1, 2, 2, 2, 3, 3, 4 ... up to 4 x 4."""
    for columns in (1, 2, 3, 4):
        if count <= columns * columns:
            return columns
    return 4
