"""Void open provisioning jobs from the window (QA and admin), with a reason.

A job stays open when its board was cut off and will not come back (broken, scrapped, taken
away). Sealing its batch is refused until the job is resumed or voided; this dialog voids it
through the provisioning service's ``void_job`` use case: the certificates the job left unused
are voided, and a ``job.voided`` audit event names the operator and the reason.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.errors import StationError
from station.domain.records import JobRecord
from station.gui.devices_model import short_time
from station.gui.tasks import TaskRunner, describe

HEADERS = ("Job", "Slot", "Batch", "Board", "State", "Stopped at", "Since")


class VoidJobsDialog(QDialog):
    """The open jobs (of one batch, or all), a reason box and **Void selected jobs**.

    Signal ``voided``: the list of job IDs voided, after each successful void.
    """

    voided = Signal(list)

    def __init__(
        self, station: Station, *, operator: str, batch: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._tasks = TaskRunner(station)
        self._operator = operator
        self._batch = batch
        self._jobs: list[JobRecord] = []
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self.load()

    def _init_elements(self) -> None:
        where = f"batch {self._batch}" if self._batch else "any batch"
        self.setWindowTitle(f"Void open jobs of {where}")
        self.intro = QLabel(
            "Void a job only when its board will not come back (broken, scrapped, taken away): "
            "the certificates it left unused are voided and the audit trail keeps your name and "
            "reason. A board that comes back is resumed on the Line view instead."
        )
        self.intro.setWordWrap(True)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Reason (required), e.g. board scrapped after a drop")
        self.void_button = QPushButton("Void checked jobs")
        self.void_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.message = QLabel("Loading the open jobs…")
        self.message.setWordWrap(True)
        self.resize(self.fontMetrics().averageCharWidth() * 110, self.fontMetrics().height() * 24)

    def _init_connections(self) -> None:
        self.void_button.clicked.connect(self.void_checked)
        self.close_button.clicked.connect(self.accept)
        self.table.itemChanged.connect(lambda _item: self._update_button())
        self.reason.textChanged.connect(lambda _text: self._update_button())

    def _init_layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.reason, 1)
        buttons.addWidget(self.void_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.message)

    # ------------------------------------------------------------------ reading
    def load(self) -> None:
        """List the open jobs in the background."""
        batch = self._batch
        self._tasks.run(lambda s: s.provisioning().open_jobs(batch), self._show, self._failed)

    def _show(self, jobs: list[JobRecord]) -> None:
        self._jobs = jobs
        self.table.blockSignals(True)
        self.table.setRowCount(len(jobs))
        for row, job in enumerate(jobs):
            values = (
                str(job.id),
                job.slot,
                job.batch,
                job.board_serial or job.registration_id or "unknown",
                str(job.state),
                job.step,
                short_time(job.updated_at),
            )
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column == 0:
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setCheckState(Qt.CheckState.Unchecked)
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        self.message.setText(
            f"{len(jobs)} open job(s): check the ones to void and type the reason."
            if jobs
            else "No open jobs: nothing to void."
        )
        self._update_button()

    # ------------------------------------------------------------------ acting
    def check(self, job_id: int, checked: bool = True) -> None:
        """Tick (or untick) the row of job ``job_id``."""
        for row, job in enumerate(self._jobs):
            item = self.table.item(row, 0)
            if job.id == job_id and item is not None:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def checked(self) -> list[int]:
        """The IDs of the ticked jobs."""
        ids = []
        for row, job in enumerate(self._jobs):
            item = self.table.item(row, 0)
            if (
                job.id is not None
                and item is not None
                and item.checkState() == Qt.CheckState.Checked
            ):
                ids.append(job.id)
        return ids

    def _update_button(self) -> None:
        self.void_button.setEnabled(bool(self.checked()) and bool(self.reason.text().strip()))

    def void_checked(self) -> None:
        """Void every ticked job with the typed reason, as the logged-in operator."""
        ids, reason, operator = self.checked(), self.reason.text().strip(), self._operator
        if not ids or not reason:
            self.message.setText("Tick the jobs to void and type the reason first.")
            return

        def job(s: Station) -> list[int]:
            service = s.provisioning()
            return [service.void_job(i, reason, operator=operator).id or i for i in ids]

        self.void_button.setEnabled(False)
        self.message.setText(f"Voiding {len(ids)} job(s)…")
        self._tasks.run(job, self._voided, self._failed)

    def _voided(self, ids: list[int]) -> None:
        self.reason.clear()
        self.message.setText(f"Voided job(s) {', '.join(map(str, ids))}.")
        self.voided.emit(ids)
        self._tasks.run(
            lambda s: s.provisioning().open_jobs(self._batch), self._reloaded, self._failed
        )

    def _reloaded(self, jobs: list[JobRecord]) -> None:
        said = self.message.text()
        self._show(jobs)
        self.message.setText(f"{said} {len(jobs)} open job(s) left.")

    def _failed(self, error: StationError) -> None:
        self.message.setText(describe(error))
        self._update_button()
