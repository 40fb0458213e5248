"""The station's main window: login, then the views the operator's role allows.

Technicians see the line view; QA also the QA and batches views; admins everything. The window
locks itself (back to the login screen) after ``[gui] lock_after_s`` seconds without input.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.records import OperatorRecord, Role
from station.gui.admin_view import AdminView
from station.gui.batches_view import BatchesView
from station.gui.line_view import LineView
from station.gui.login import LoginView
from station.gui.qa_view import QaView
from station.gui.session import Session

_INPUT_EVENTS = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
    }
)


class MainWindow(QMainWindow):
    """Login screen and, once logged in, the tabs of the operator's role."""

    def __init__(self, station: Station) -> None:
        super().__init__()
        self._station = station
        self.session = Session()
        self._watching_input = False
        self._init_elements()
        self._init_connections()
        self._init_layout()

    def _init_elements(self) -> None:
        gui = self._station.config.gui
        slots = gui.slots()
        self.setWindowTitle(f"Station {self._station.config.station.id}")
        self.login = LoginView(self._station)
        self.line = LineView(
            self._station, slots, session=self.session, beep_on_fail=gui.beep_on_fail
        )
        self.qa = QaView(self._station, self.session)
        self.batches = BatchesView(self._station, self.session)
        self.admin = AdminView(self._station, slots, self.session)
        for view in (self.line, self.qa, self.batches, self.admin):
            # owned by the window even while no tab shows them: a parentless widget would be
            # destroyed after QApplication at interpreter exit, which crashes Qt
            view.setParent(self)
            view.hide()
        self.tabs = QTabWidget()
        self.who = QLabel("")
        self.lock_button = QPushButton("Lock")
        self.stack = QStackedWidget()
        self.lock_timer = QTimer(self)
        self.lock_timer.setSingleShot(True)
        if gui.lock_after_s > 0:
            self.lock_timer.setInterval(gui.lock_after_s * 1000)
        self.lock_shortcut = QShortcut(QKeySequence("Ctrl+Shift+L"), self)

    def _init_connections(self) -> None:
        self.login.logged_in.connect(self.log_in)
        self.line.operator_switched.connect(self.log_in)
        self.line.status.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.qa.rework_requested.connect(self._rework)
        self.lock_button.clicked.connect(self.lock)
        self.lock_shortcut.activated.connect(self.lock)
        self.lock_timer.timeout.connect(self.lock)
        self.tabs.currentChanged.connect(self._tab_changed)

    def _init_layout(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(self.who, 1)
        bar.addWidget(self.lock_button)
        work = QWidget()
        work_layout = QVBoxLayout(work)
        work_layout.setContentsMargins(0, 0, 0, 0)
        work_layout.addLayout(bar)
        work_layout.addWidget(self.tabs, 1)
        self.stack.addWidget(self.login)
        self.stack.addWidget(work)
        self.setCentralWidget(self.stack)
        self.resize(1280, 720)

    # ------------------------------------------------------------------ session
    def log_in(self, record: OperatorRecord) -> None:
        """Show the views ``record``'s role allows; commands carry their name from now on."""
        self.session.log_in(record)
        self.who.setText(f"{record.name} ({record.role})")
        views: list[tuple[QWidget, str]] = [(self.line, "Line")]
        if record.role in (Role.QA, Role.ADMIN):
            views += [(self.qa, "QA"), (self.batches, "Batches")]
        if record.role is Role.ADMIN:
            views.append((self.admin, "Admin"))
        self.tabs.blockSignals(True)
        self.tabs.clear()
        for widget, title in views:
            self.tabs.addTab(widget, title)
        self.tabs.blockSignals(False)
        self.qa.set_role(record.role)
        self.batches.set_role(record.role)
        self.stack.setCurrentIndex(1)
        self.tabs.setCurrentIndex(0)
        self.line.refresh_batches()
        self.line.scan.setFocus()
        if self.lock_timer.interval() > 0 and self._station.config.gui.lock_after_s > 0:
            self.lock_timer.start()

    def lock(self) -> None:
        """Back to the login screen (slots keep running)."""
        self.session.log_out()
        self.lock_timer.stop()
        self.stack.setCurrentIndex(0)
        self.login.reset()

    @property
    def operator(self) -> OperatorRecord | None:
        """The logged-in operator (``None`` while locked)."""
        return self.session.operator

    @property
    def locked(self) -> bool:
        """Whether the login screen is showing."""
        return self.stack.currentIndex() == 0

    def view_titles(self) -> list[str]:
        """The tabs visible now."""
        return [self.tabs.tabText(i) for i in range(self.tabs.count())]

    def show_view(self, title: str) -> None:
        """Switch to the tab called ``title``."""
        self.tabs.setCurrentIndex(self.view_titles().index(title))

    def _tab_changed(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is self.qa and self.qa.model.rowCount() == 0:
            self.qa.refresh()
        elif widget is self.batches:
            self.batches.refresh()
        elif widget is self.admin:
            self.admin.refresh()

    def _rework(self, batch: str, reason: str, serial: str) -> None:
        self.line.arm_rework(batch, reason, serial)
        self.show_view("Line")

    def start_hotplug(self) -> None:
        """Let boards start as soon as they are plugged in a bound slot."""
        self.line.watch_hotplug()

    # ------------------------------------------------------------------ Qt hooks
    def showEvent(self, event: QShowEvent) -> None:
        """Watch the window's input for the inactivity lock once the window exists."""
        super().showEvent(event)
        handle = self.windowHandle()
        if handle is not None and not self._watching_input:
            # the platform window sees every key and mouse event of this window before any
            # widget, and little else: an application-wide filter would run Python for every
            # timer, paint and signal event, and slow the GUI while sixteen slots run
            handle.installEventFilter(self)
            self._watching_input = True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Restart the inactivity timer on any input while logged in."""
        if event.type() in _INPUT_EVENTS:
            self.note_input(event)
        return False

    def note_input(self, event: QEvent) -> None:
        """Input reached the window: restart the inactivity timer while logged in."""
        if self.operator is not None and self.lock_timer.isActive():
            self.lock_timer.start(self._station.config.gui.lock_after_s * 1000)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the slot workers and the hot-plug watcher before the window goes."""
        handle = self.windowHandle()
        if handle is not None and self._watching_input:
            handle.removeEventFilter(self)
            self._watching_input = False
        self.line.shutdown()
        super().closeEvent(event)
