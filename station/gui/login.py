"""The login form: a badge scan or a name and PIN; the role decides what the window shows.

The window's login screen is this form alone; the lock screen embeds one of its own, titled for
the operator who locked the window.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.errors import StationError
from station.domain.records import OperatorRecord
from station.gui.style import scaled_font
from station.gui.tasks import TaskRunner, describe


class LoginView(QWidget):
    """Badge field (a keyboard-wedge scanner types into it) or name + PIN.

    Emits ``logged_in`` with the authenticated :class:`OperatorRecord`.
    """

    logged_in = Signal(object)

    def __init__(self, station: Station) -> None:
        super().__init__()
        self._tasks = TaskRunner(station)
        self._init_elements()
        self._init_connections()
        self._init_layout()

    def _init_elements(self) -> None:
        self.title = QLabel("Scan your badge, or enter your name and PIN")
        self.title.setFont(scaled_font(self, 1.6, bold=True))
        self.badge = QLineEdit()
        self.badge.setPlaceholderText("Badge")
        self.badge.setEchoMode(QLineEdit.EchoMode.Password)
        self.name = QLineEdit()
        self.name.setPlaceholderText("Name")
        self.pin = QLineEdit()
        self.pin.setPlaceholderText("PIN")
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.login_button = QPushButton("Log in")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        for field in (self.badge, self.name, self.pin, self.login_button):
            field.setFont(scaled_font(self, 1.3))

    def _init_connections(self) -> None:
        self.badge.returnPressed.connect(self.submit_badge)
        self.name.returnPressed.connect(self.pin.setFocus)
        self.pin.returnPressed.connect(self.submit_pin)
        self.login_button.clicked.connect(self.submit_pin)

    def _init_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Badge", self.badge)
        form.addRow("Name", self.name)
        form.addRow("PIN", self.pin)
        box = QWidget()
        inner = QVBoxLayout(box)
        inner.addWidget(self.title)
        inner.addLayout(form)
        inner.addWidget(self.login_button)
        inner.addWidget(self.message)
        box.setMinimumWidth(self.fontMetrics().averageCharWidth() * 70)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)

    def set_title(self, text: str) -> None:
        """Replace the form's heading (the lock screen names who locked the window)."""
        self.title.setText(text)
        self.title.setWordWrap(True)

    def reset(self) -> None:
        """Clear every field (on lock and log-out) and focus the badge field."""
        for field in (self.badge, self.name, self.pin):
            field.clear()
        self.message.clear()
        self.badge.setFocus()

    def submit_badge(self) -> None:
        """Check the scanned badge in the background."""
        badge = self.badge.text().strip()
        self.badge.clear()
        if badge:
            self.message.setText("Checking badge…")
            self._tasks.run(
                lambda s: s.operators().authenticate_badge(badge), self._accept, self._refuse
            )

    def submit_pin(self) -> None:
        """Check name and PIN in the background (scrypt is slow on purpose)."""
        name, pin = self.name.text().strip(), self.pin.text()
        self.pin.clear()
        if not name or not pin:
            self.message.setText("Enter your name and PIN, or scan your badge.")
            return
        self.message.setText("Checking…")
        self._tasks.run(
            lambda s: s.operators().authenticate_pin(name, pin), self._accept, self._refuse
        )

    def _accept(self, record: OperatorRecord) -> None:
        self.reset()
        self.logged_in.emit(record)

    def _refuse(self, error: StationError) -> None:
        self.message.setText(describe(error))
