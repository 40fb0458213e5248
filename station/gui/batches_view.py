"""The batches view: open, seal, export, push and reconcile, with progress and per-device results.

Every action runs the same batch service as ``station batch`` on a pool task; push progress comes
back through a queued signal. The service checks the role again (QA or admin release batches).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.errors import StationError
from station.domain.pushes import PushSummary, ReconcileReport
from station.domain.records import Role, SealRecord
from station.gui.session import Session
from station.gui.tasks import TaskRunner, describe
from station.services.batches import BatchProgress, ExportResult
from station.services.push import PushProgress

HEADERS = ("Batch", "Product", "Status", "Provisioned", "Size")


class ProgressBridge(QObject):
    """Carries push progress from the pool thread to the GUI thread."""

    progress = Signal(object)


class BatchesView(QWidget):
    """The batch table, an open form and the release actions.

    Signal ``finished``: (action, result) after a seal, export, push or reconcile; the result
    is the service's value, or the :class:`StationError` that stopped it.
    """

    finished = Signal(str, object)

    def __init__(self, station: Station, session: Session) -> None:
        super().__init__()
        self._station = station
        self._session = session
        self._tasks = TaskRunner(station)
        self._bridge = ProgressBridge()
        self._rows: list[BatchProgress] = []
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self.set_role(Role.TECHNICIAN)

    def _init_elements(self) -> None:
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.name = QLineEdit()
        self.name.setPlaceholderText("Work order, e.g. WO-1042")
        self.product = QComboBox()
        self.size_box = QSpinBox()
        self.size_box.setRange(1, 1_000_000)
        self.size_box.setValue(100)
        self.open_button = QPushButton("Open batch")
        self.refresh_button = QPushButton("Refresh")
        self.seal_button = QPushButton("Seal")
        self.export_button = QPushButton("Export")
        self.push_button = QPushButton("Push to DPS")
        self.reconcile_button = QPushButton("Reconcile")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.results = QPlainTextEdit()
        self.results.setReadOnly(True)
        self.message = QLabel("")
        self.message.setWordWrap(True)

    def _init_connections(self) -> None:
        self.open_button.clicked.connect(self.open_batch)
        self.refresh_button.clicked.connect(self.refresh)
        self.seal_button.clicked.connect(lambda: self._act("seal"))
        self.export_button.clicked.connect(lambda: self._act("export"))
        self.push_button.clicked.connect(lambda: self._act("push"))
        self.reconcile_button.clicked.connect(lambda: self._act("reconcile"))
        self._bridge.progress.connect(self._push_progress)

    def _init_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Work order", self.name)
        form.addRow("Product", self.product)
        form.addRow("Size", self.size_box)
        form.addRow(self.open_button)
        actions = QHBoxLayout()
        for button in (
            self.refresh_button,
            self.seal_button,
            self.export_button,
            self.push_button,
            self.reconcile_button,
        ):
            actions.addWidget(button)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self.table, 3)
        top.addLayout(form, 1)
        layout.addLayout(top, 2)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.message)

    def set_role(self, role: Role) -> None:
        """Opening and releasing batches is QA's and the admin's."""
        allowed = role in (Role.QA, Role.ADMIN)
        for button in (
            self.open_button,
            self.seal_button,
            self.export_button,
            self.push_button,
            self.reconcile_button,
        ):
            button.setEnabled(allowed)

    # ------------------------------------------------------------------ table
    def refresh(self) -> None:
        """Reload batches, their progress and the product list."""

        def job(s: Station) -> tuple[list[BatchProgress], list[str]]:
            service = s.batches()
            return [service.progress(b.name) for b in service.all()], service.product_names()

        self._tasks.run(job, self._show, self._refresh_failed)

    def _show(self, result: tuple[list[BatchProgress], list[str]]) -> None:
        rows, products = result
        selected = self.selected()
        self._rows = rows
        self.table.setRowCount(len(rows))
        for number, row in enumerate(rows):
            values = (
                row.batch.name,
                row.batch.product,
                row.batch.status,
                str(row.provisioned),
                str(row.batch.size),
            )
            for column, value in enumerate(values):
                self.table.setItem(number, column, QTableWidgetItem(value))
            if row.batch.name == selected:
                self.table.selectRow(number)
        if self.product.count() != len(products):
            self.product.clear()
            self.product.addItems(products)

    def selected(self) -> str:
        """The selected batch's name ("" when none)."""
        rows = self.table.selectionModel().selectedRows()
        return self._rows[rows[0].row()].batch.name if rows and self._rows else ""

    def select(self, name: str) -> None:
        """Select the row of batch ``name``."""
        for number, row in enumerate(self._rows):
            if row.batch.name == name:
                self.table.selectRow(number)

    # ------------------------------------------------------------------ actions
    def open_batch(self) -> None:
        """Open a batch with the form's work order, product and size."""
        name, product, size = (
            self.name.text().strip(),
            self.product.currentText(),
            self.size_box.value(),
        )
        if not name or not product:
            self.message.setText("Type the work order and choose the product.")
            return
        operator = self._session.name
        self._tasks.run(
            lambda s: s.batches().open(name=name, product=product, size=size, operator=operator),
            lambda _record: self._done(f"Batch {name} opened."),
            self._failed,
        )

    def _act(self, action: str) -> None:
        name = self.selected()
        if not name:
            self.message.setText("Select a batch first.")
            return
        self.message.setText(f"{action} {name}…")
        emit = self._bridge.progress.emit
        operator = self._session.name
        if action == "seal":
            self._tasks.run(
                lambda s: s.batches().seal(name, operator=operator), self._sealed, self._failed
            )
        elif action == "export":
            # the Export button re-exports into the station's export folder: replacing that
            # batch's earlier export files is what it asks for (never a file the station owns)
            self._tasks.run(
                lambda s: s.batches().export(name, force=True, operator=operator),
                self._exported,
                self._failed,
            )
        elif action == "push":
            self.progress.setRange(0, 0)  # busy until the first report
            self._tasks.run(
                lambda s: s.batches().push(name, operator=operator, progress=emit),
                self._pushed,
                self._failed,
            )
        else:
            self._tasks.run(
                lambda s: s.batches().reconcile(name, operator=operator),
                self._reconciled,
                self._failed,
            )

    def _sealed(self, seal: SealRecord) -> None:
        self._done(f"Batch {seal.batch} sealed: {seal.count} device(s), digest {seal.digest}.")
        self.finished.emit("seal", seal)

    def _exported(self, result: ExportResult) -> None:
        files = "\n".join(f"  {kind}: {path}" for kind, path in result.files.items())
        self.results.setPlainText(f"Exported {result.devices} device(s):\n{files}")
        self._done(f"Batch {result.batch} exported.")
        self.finished.emit("export", result)

    def _push_progress(self, report: PushProgress) -> None:
        self.progress.setRange(0, max(report.total, 1))
        self.progress.setValue(report.done)
        self.message.setText(
            f"pushed {report.pushed}, conflicts {report.conflicts}, failed {report.failed}"
        )

    def _pushed(self, summary: PushSummary) -> None:
        self.progress.setRange(0, max(summary.total, 1))
        self.progress.setValue(summary.total)
        lines = [
            f"Pushed {summary.pushed} of {summary.total}; conflicts {len(summary.conflicts)}; "
            f"failed {len(summary.failed)}; billable operations {summary.billable_operations}",
        ]
        lines += [f"  conflict {c.registration_id}: {c.differences()}" for c in summary.conflicts]
        lines += [f"  failed {rid}: {why}" for rid, why in summary.failed.items()]
        self.results.setPlainText("\n".join(lines))
        self._done(f"Batch {summary.batch} pushed.")
        self.finished.emit("push", summary)

    def _reconciled(self, report: ReconcileReport) -> None:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
        lines = [f"Reconcile {report.batch}: {counts}; billable {report.billable_operations}"]
        lines += [
            f"  {item.registration_id}: {item.status}"
            + (f" ({', '.join(item.differences)})" if item.differences else "")
            for item in report.items
        ]
        self.results.setPlainText("\n".join(lines))
        self._done("Clean." if report.clean else "Differences found.")
        self.finished.emit("reconcile", report)

    def _done(self, text: str) -> None:
        self.message.setText(text)
        self.refresh()

    def _refresh_failed(self, error: StationError) -> None:
        self.message.setText(describe(error))

    def _failed(self, error: StationError) -> None:
        self.progress.setRange(0, 1)
        self.message.setText(describe(error))
        self.finished.emit("error", error)
