"""The station's main window: login, then the views the operator's role allows.

Technicians see the line view; QA also the QA and batches views; admins everything. The window
locks itself after ``[gui] lock_after_s`` seconds without input (or on Lock / Ctrl+Shift+L): the
lock screen says who locked it and shows the line read-only while the slots keep running; the
same operator unlocks with their PIN or badge, or another operator logs in.
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
from station.domain.permissions import Permission
from station.domain.records import OperatorRecord
from station.gui.admin_view import AdminView
from station.gui.batches_view import BatchesView
from station.gui.line_view import LineView
from station.gui.lock_screen import LockScreen
from station.gui.login import LoginView
from station.gui.qa_view import QaView
from station.gui.session import Session
from station.services.operators import OperatorService

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
        self.operator: OperatorRecord | None = None
        self.session = Session()  # the line view's commands read the operator here
        self._watching_input = False
        self._init_elements()
        self._init_connections()
        self._init_layout()

    def _init_elements(self) -> None:
        gui = self._station.config.gui
        slots = gui.slots()
        self.setWindowTitle(f"Station {self._station.config.station.id}")
        self.login_screen = LoginView(self._station)
        self.line = LineView(
            self._station, slots, session=self.session, beep_on_fail=gui.beep_on_fail
        )
        self.lock_screen = LockScreen(self._station, self.line)
        self.qa = QaView(self._station)
        self.batches = BatchesView(self._station)
        self.admin = AdminView(self._station, slots)
        self._views: tuple[tuple[QWidget, str, frozenset[Permission]], ...] = (
            (self.qa, "QA", frozenset({Permission.REPRINT_LABEL, Permission.REWORK})),
            (self.batches, "Batches", frozenset({Permission.OPEN_BATCH, Permission.SEAL_BATCH})),
            (self.admin, "Admin", frozenset({Permission.MANAGE_OPERATORS})),
        )
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
        self.login_screen.logged_in.connect(self.log_in)
        self.lock_screen.login.logged_in.connect(self.log_in)
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
        self.stack.addWidget(self.login_screen)
        self.stack.addWidget(work)
        self.stack.addWidget(self.lock_screen)
        self._work = work
        self.setCentralWidget(self.stack)
        self.resize(1280, 720)

    # ------------------------------------------------------------------ session
    @property
    def login(self) -> LoginView:
        """The login form on screen: the lock screen's while locked, else the login screen's."""
        return self.lock_screen.login if self.lock_screen.locked_by else self.login_screen

    def log_in(self, record: OperatorRecord) -> None:
        """Show the views ``record``'s role allows; audit events carry their name from now on.

        The operator who locked the window finds it as they left it.
        """
        resuming = self.lock_screen.locked_by
        self.lock_screen.unlock()
        if resuming is not None and (resuming.name, resuming.role) == (record.name, record.role):
            self._enter(record)
            self.stack.setCurrentWidget(self._work)
            self.line.start_waiting()
            return
        self._enter(record)
        grants = OperatorService.permissions_of(record.role)
        # the line is everyone's; another view shows when the role may do one of its actions
        views: list[tuple[QWidget, str]] = [(self.line, "Line")]
        views += [(widget, title) for widget, title, needs in self._views if needs & grants]
        self.tabs.blockSignals(True)
        self.tabs.clear()
        for widget, title in views:
            self.tabs.addTab(widget, title)
        self.tabs.blockSignals(False)
        self.stack.setCurrentWidget(self._work)
        self.tabs.setCurrentIndex(0)
        self.line.refresh_batches()
        self.line.start_waiting()  # boards that arrived while locked run in this name
        self.line.scan.setFocus()

    def _enter(self, record: OperatorRecord) -> None:
        """``record`` is the operator at the window from now on."""
        self.operator = record
        self.session.log_in(record)  # commands from the line name them from now on
        self.who.setText(f"{record.name} ({record.role})")
        self.qa.set_operator(record)
        self.batches.set_operator(record)
        self.admin.set_operator(record)
        if self.lock_timer.interval() > 0 and self._station.config.gui.lock_after_s > 0:
            self.lock_timer.start()

    def lock(self) -> None:
        """Lock the window: the lock screen shows the line read-only; slots keep running."""
        record = self.operator
        if record is None:
            return  # nobody is logged in: the login screen is showing already
        self.operator = None
        self.session.log_out()
        self.lock_timer.stop()
        self.qa.set_operator(None)
        self.batches.set_operator(None)
        self.admin.set_operator(None)
        for dialog in (self.qa.void_dialog, self.batches.void_dialog):
            if dialog is not None:
                dialog.reject()
        self.lock_screen.lock(record)
        self.stack.setCurrentWidget(self.lock_screen)
        self.lock_screen.login.badge.setFocus()  # a badge scan types into it at once

    @property
    def locked(self) -> bool:
        """Whether the login or the lock screen is showing (no view can be used)."""
        return self.stack.currentWidget() is not self._work

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
        self.lock_screen.unlock()
        self.line.shutdown()
        super().closeEvent(event)
