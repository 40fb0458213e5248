"""The batches view: open, seal, export, push and reconcile, with progress and per-device results.

Every action runs the same batch service as ``station batch`` on a pool task; push progress comes
back through a queued signal. The buttons follow the logged-in role and the selected batch's
state (Seal and Void open jobs on an open batch; Export, Push and Reconcile once it is sealed), by
the services' permission table, and the service checks the role again. When sealing is refused
because jobs are still open, **Void open jobs…** voids the ones whose boards will not come back.
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
from station.domain.errors import StationError, UnresolvedJobsError
from station.domain.permissions import Permission
from station.domain.pushes import PushSummary, ReconcileReport, ReconcileSubject
from station.domain.records import OperatorRecord, Role, SealRecord
from station.domain.states import BatchStatus
from station.gui.tasks import TaskRunner, describe
from station.gui.void_jobs import VoidJobsDialog
from station.services.batches import BatchProgress, ExportResult
from station.services.operators import OperatorService
from station.services.push import PushProgress

HEADERS = ("Batch", "Product", "Status", "Provisioned", "Size")
#: released batches: their devices are frozen, so they can be exported, pushed and reconciled
RELEASED = frozenset(
    {BatchStatus.SEALED, BatchStatus.EXPORTED, BatchStatus.PUSHED, BatchStatus.RECONCILED}
)


class ProgressBridge(QObject):
    """Carries push progress from the pool thread to the GUI thread."""

    progress = Signal(object)


class BatchesView(QWidget):
    """The batch table, an open form and the release actions.

    Signal ``finished``: (action, result) after a seal, export, push or reconcile; the result
    is the service's value, or the :class:`StationError` that stopped it.
    """

    finished = Signal(str, object)

    def __init__(self, station: Station) -> None:
        super().__init__()
        self._station = station
        self._tasks = TaskRunner(station)
        self._bridge = ProgressBridge()
        self._rows: list[BatchProgress] = []
        self._grants: frozenset[Permission] = frozenset()
        self._operator = ""
        self.void_dialog: VoidJobsDialog | None = None
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self.set_role(None)

    def _init_elements(self) -> None:
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
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
        self.void_button = QPushButton("Void open jobs…")
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
        self.void_button.clicked.connect(self.void_jobs)
        self.table.itemSelectionChanged.connect(self._update_buttons)
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
            self.void_button,
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

    def set_operator(self, record: OperatorRecord | None) -> None:
        """The logged-in operator (None when the window is locked): acts and role follow."""
        self._operator = record.name if record is not None else ""
        self.set_role(record.role if record is not None else None)

    def set_role(self, role: Role | None) -> None:
        """Enable what ``role`` may do by the services' permission table (None: nothing)."""
        self._grants = OperatorService.permissions_of(role)
        self.open_button.setEnabled(Permission.OPEN_BATCH in self._grants)
        self._update_buttons()

    def _update_buttons(self) -> None:
        """Enable what the role may do to the selected batch in its present state."""
        grants = self._grants
        status = self.selected_status()
        is_open = status is BatchStatus.OPEN
        released = status in RELEASED
        self.seal_button.setEnabled(Permission.SEAL_BATCH in grants and is_open)
        self.void_button.setEnabled(Permission.VOID_JOB in grants and is_open)
        for button, permission in (
            (self.export_button, Permission.EXPORT_BATCH),
            (self.push_button, Permission.PUSH_BATCH),
            (self.reconcile_button, Permission.RECONCILE_BATCH),
        ):
            button.setEnabled(permission in grants and released)
            button.setToolTip(
                "Seal the batch first." if is_open else "" if released else "Select a batch."
            )

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
        self._update_buttons()
        if self.product.count() != len(products):
            self.product.clear()
            self.product.addItems(products)

    def selected(self) -> str:
        """The selected batch's name ("" when none)."""
        rows = self.table.selectionModel().selectedRows()
        return self._rows[rows[0].row()].batch.name if rows and self._rows else ""

    def selected_status(self) -> BatchStatus | None:
        """The selected batch's state (None when none is selected)."""
        rows = self.table.selectionModel().selectedRows()
        if not rows or not self._rows:
            return None
        return BatchStatus(self._rows[rows[0].row()].batch.status)

    def select(self, name: str) -> None:
        """Select the row of batch ``name``."""
        for number, row in enumerate(self._rows):
            if row.batch.name == name:
                self.table.selectRow(number)

    def void_jobs(self) -> None:
        """Open the void-jobs dialog for the selected batch (QA and admin)."""
        name = self.selected()
        if not name:
            self.message.setText("Select a batch first.")
            return
        dialog = VoidJobsDialog(self._station, operator=self._operator, batch=name, parent=self)
        dialog.voided.connect(lambda ids: self._done(f"Voided job(s) of {name}: seal it again."))
        self.void_dialog = dialog
        dialog.open()

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
        operator = self._operator
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
        operator = self._operator
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
            f"  {'enrollment group ' if item.subject is ReconcileSubject.GROUP else ''}"
            f"{item.registration_id}: {item.status}"
            + (f" ({', '.join(item.differences)})" if item.differences else "")
            for item in report.items
        ]
        if report.policy_advice:
            lines += ["", report.policy_advice]
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
        if isinstance(error, UnresolvedJobsError):
            jobs = error.details.get("jobs", [])
            provisioning = error.details.get("provisioning", 0)
            lines = [f"Sealing {error.details.get('batch', '')} waits for:"]
            lines += [f"  {job}" for job in jobs]
            if provisioning:
                lines.append(f"  {provisioning} identity(ies) still provisioning")
            lines.append("Press Void open jobs… for boards that will not come back.")
            self.results.setPlainText("\n".join(lines))
        self.finished.emit("error", error)
