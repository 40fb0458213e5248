"""The station's main window: a device search over the identity store.

The line, QA, batches and admin views grow from here; every view gets the station through its
constructor and runs I/O in background tasks.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.errors import StationError
from station.domain.records import DeviceQuery, DeviceRecord
from station.gui.devices_model import DeviceTableModel
from station.gui.tasks import StationTask, start_task

PAGE = 500


class MainWindow(QMainWindow):
    """Top-level window: search box, device table, status line."""

    def __init__(self, station: Station) -> None:
        super().__init__()
        self._station = station
        self._tasks: set[StationTask] = set()
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self.refresh()

    def _init_elements(self) -> None:
        self.setWindowTitle(f"Station {self._station.config.station.id}")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Serial, registration ID, EK hash or certificate thumbprint")
        self.search_button = QPushButton("Search")
        self.model = DeviceTableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.status = QLabel("Loading…")

    def _init_connections(self) -> None:
        self.search.returnPressed.connect(self.refresh)
        self.search_button.clicked.connect(self.refresh)

    def _init_layout(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.search_button)
        layout = QVBoxLayout()
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        central = QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)
        self.resize(1100, 640)

    def refresh(self) -> None:
        """Run the search in the background; the table updates when it returns."""
        key = self.search.text().strip()
        self.status.setText("Searching…")

        def job(station: Station) -> tuple[list[DeviceRecord], int]:
            service = station.devices()
            if key:
                found = service.find(key)
                return found, len(found)
            return service.search(DeviceQuery(limit=PAGE))

        task = start_task(self._station, job, self._show, self._fail)
        self._tasks.add(task)
        task.signals.done.connect(lambda _result: self._tasks.discard(task))
        task.signals.failed.connect(lambda _error: self._tasks.discard(task))

    def _show(self, result: tuple[list[DeviceRecord], int]) -> None:
        rows, total = result
        self.model.set_rows(rows)
        if total:
            database = self._station.config.database_path
            self.status.setText(f"{total} device(s) — database {database}")
        elif self.search.text().strip():
            self.status.setText("No devices match.")
        else:
            self.status.setText("No devices recorded yet.")

    def _fail(self, error: StationError) -> None:
        text = error.message + (f" — {error.remedy}" if error.remedy else "")
        self.status.setText(text)
