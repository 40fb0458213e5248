"""The lock screen: the window is locked, by whom, and the line as it runs, read-only.

Locking (the Lock button, Ctrl+Shift+L, or ``[gui] lock_after_s`` without input) never stops a
slot: boards keep provisioning and this screen shows their progress, but it has no button that
acts on them. A board plugged in while it shows waits (WAITING) until someone logs in, and is
then provisioned in that operator's name. The operator who locked unlocks with their PIN or
badge, or another operator logs in (the window then shows that operator's views).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.records import OperatorRecord
from station.gui.line_view import LineView
from station.gui.login import LoginView
from station.gui.style import RESULT_COLOURS, scaled_font

#: how often the summary re-reads the line (the tiles themselves update on every event)
REFRESH_MS = 500


@dataclass(frozen=True)
class SlotGlance:
    """What one slot shows right now."""

    slot: str
    result: str  # a key of RESULT_COLOURS
    board: str
    step: str
    done: int
    total: int


@dataclass(frozen=True)
class LineGlance:
    """The line right now: its batch, the shift's counters and every slot."""

    batch: str
    counters: str
    slots: tuple[SlotGlance, ...]


def glance(line: LineView) -> LineGlance:
    """Read the line view's state (the one place the lock screen looks into the line)."""
    slots = tuple(
        SlotGlance(
            slot=tile.slot,
            result=tile.result,
            board=tile.board_label.text(),
            step=tile.step_label.text(),
            done=tile.progress.value() - tile.progress.minimum(),
            total=tile.progress.maximum() - tile.progress.minimum(),
        )
        for tile in line.tiles.values()
    )
    return LineGlance(line.batch, line.counters.text(), slots)


class ElidedLabel(QLabel):
    """One line of text that never widens its tile: too long, it is shortened in the middle."""

    def __init__(self) -> None:
        super().__init__("")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the text elided to the label's width (the tooltip holds it whole)."""
        painter = QPainter(self)
        text = self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideMiddle, self.width()
        )
        painter.drawText(self.rect(), int(self.alignment()), text)


class SlotSummary(QFrame):
    """A read-only slot tile: name, result, board, step and progress. Nothing to click."""

    def __init__(self, slot: str) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.Box)
        self.setAutoFillBackground(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMaximumHeight(self.fontMetrics().height() * 10)  # readable, not a wall of colour
        self.name = QLabel(slot)
        self.name.setFont(scaled_font(self, 1.1, bold=True))
        self.result = QLabel("")
        self.result.setFont(scaled_font(self, 1.6, bold=True))
        self.board = ElidedLabel()
        self.step = ElidedLabel()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(max(self.fontMetrics().height() // 2, 6))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 6)
        layout.setSpacing(2)
        layout.addWidget(self.name)
        layout.addWidget(self.result, 1)
        for widget in (self.board, self.step, self.progress):
            layout.addWidget(widget)
        self.shown = SlotGlance(slot, "idle", "", "", 0, 0)

    def show_glance(self, slot: SlotGlance) -> None:
        """Show ``slot`` (repaints only what changed)."""
        if slot == self.shown:
            return
        self.shown = slot
        background, text = RESULT_COLOURS.get(slot.result, RESULT_COLOURS["idle"])
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(background))
        palette.setColor(QPalette.ColorRole.WindowText, QColor(text))
        self.setPalette(palette)
        self.result.setText({"idle": "IDLE", "running": "RUNNING"}.get(slot.result, slot.result))
        self.board.setText(slot.board)
        self.board.setToolTip(slot.board)
        self.step.setText(slot.step)
        self.progress.setRange(0, max(slot.total, 1))
        self.progress.setValue(slot.done)


class LockScreen(QWidget):
    """The lock banner (who locked, when), the line summary and the unlock form (:attr:`login`)."""

    def __init__(self, station: Station, line: LineView) -> None:
        super().__init__()
        self._station = station
        self._line = line
        self.locked_by: OperatorRecord | None = None
        self._init_elements()
        self._init_connections()
        self._init_layout()

    def _init_elements(self) -> None:
        self.banner = QLabel("LOCKED")
        self.banner.setFont(scaled_font(self, 2.2, bold=True))
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.who = QLabel("")
        self.who.setFont(scaled_font(self, 1.2))
        self.who.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.who.setWordWrap(True)
        self.line_state = QLabel("")
        self.line_state.setFont(scaled_font(self, 1.1, bold=True))
        self.slots = {slot: SlotSummary(slot) for slot in self._line.tiles}
        self.login = LoginView(self._station)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)

    def _init_connections(self) -> None:
        self.timer.timeout.connect(self.refresh)

    def _init_layout(self) -> None:
        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        grid.setAlignment(Qt.AlignmentFlag.AlignTop)
        columns = 8 if len(self.slots) > 8 else max(len(self.slots), 1)
        for number, summary in enumerate(self.slots.values()):
            grid.addWidget(summary, number // columns, number % columns)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(self.who)
        layout.addWidget(self.login)
        layout.addStretch(1)
        layout.addWidget(self.line_state)
        layout.addWidget(grid_host, 2)

    def lock(self, record: OperatorRecord) -> None:
        """Show the window locked by ``record``, ready for their PIN or badge."""
        self.locked_by = record
        at = self._station.clock.now().astimezone().strftime("%H:%M")
        self.who.setText(
            f"Locked by {record.name} ({record.role}) at {at}. The boards already running "
            f"finish; a board plugged in now waits on its tile until someone logs in, and runs "
            f"in that operator's name."
        )
        self.login.set_title(f"Unlock as {record.name}, or log in as another operator")
        self.login.reset()
        self.login.name.setText(record.name)
        self.refresh()
        self.timer.start()

    def unlock(self) -> None:
        """Stop watching the line (the window shows its views again)."""
        self.timer.stop()
        self.locked_by = None

    def refresh(self) -> None:
        """Re-read the line and show it."""
        now = glance(self._line)
        self.line_state.setText(
            f"Line — batch {now.batch or 'not chosen'} — {now.counters}".rstrip(" —")
        )
        for slot in now.slots:
            summary = self.slots.get(slot.slot)
            if summary is not None:
                summary.show_glance(slot)
