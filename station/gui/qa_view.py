"""The QA view: find devices, see their detail, preview/print/reprint labels, rework.

The device table is a lazy model (pages load in the background as it scrolls), so it opens and
scrolls over a million devices. Reprint and rework need QA or admin; the buttons follow the
logged-in role and the services check the role again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from PySide6.QtCore import QItemSelection, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.errors import StationError
from station.domain.records import DeviceQuery, DeviceRecord, Role
from station.gui.devices_model import COLUMN_SAMPLES, DeviceTableModel
from station.gui.session import Session
from station.gui.tasks import TaskRunner, describe
from station.services.devices import DeviceDetail
from station.services.labels import PrintOutcome


@dataclass(frozen=True)
class DetailView:
    """A device's detail with its label preview (PNG bytes; empty when it cannot render)."""

    detail: DeviceDetail
    preview_png: bytes
    preview_error: str = ""


class QaView(QWidget):
    """Search box, lazy device table and the selected device's detail."""

    rework_requested = Signal(str, str, str)  # batch, reason, the board's serial

    def __init__(self, station: Station, session: Session) -> None:
        super().__init__()
        self._station = station
        self._session = session
        self._tasks = TaskRunner(station)
        self._current: DeviceRecord | None = None
        self._role = Role.TECHNICIAN
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self.set_role(Role.TECHNICIAN)

    def _init_elements(self) -> None:
        self.search = QLineEdit()
        self.search.setPlaceholderText("Serial, registration ID, EK hash or certificate thumbprint")
        self.search_button = QPushButton("Search")
        self.model = DeviceTableModel(self._tasks.run)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # the registration ID (up to 128 characters) gets the room; the others fit their
        # content, measured on sample text (measuring a million rows would freeze the view)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        metrics = self.table.fontMetrics()
        for column, sample in enumerate(COLUMN_SAMPLES, start=1):
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 16)
        self.status = QLabel("Loading…")
        self.title = QLabel("Select a device")
        self.detail = QPlainTextEdit()
        self.detail.setReadOnly(True)
        self.preview = QLabel("")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Reason (required for reprint and rework)")
        self.print_button = QPushButton("Print label")
        self.reprint_button = QPushButton("Reprint label…")
        self.rework_button = QPushButton("Rework board…")
        self.message = QLabel("")
        self.message.setWordWrap(True)

    def _init_connections(self) -> None:
        self.search.returnPressed.connect(self.refresh)
        self.search_button.clicked.connect(self.refresh)
        self.model.loaded.connect(self._loaded)
        self.model.failed.connect(lambda e: self.status.setText(describe(e)))
        self.table.selectionModel().selectionChanged.connect(self._selected)
        self.print_button.clicked.connect(self.print_label)
        self.reprint_button.clicked.connect(self.reprint)
        self.rework_button.clicked.connect(self.rework)

    def _init_layout(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.search_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addLayout(bar)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.status)
        actions = QHBoxLayout()
        actions.addWidget(self.print_button)
        actions.addWidget(self.reprint_button)
        actions.addWidget(self.rework_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.title)
        scroll = QScrollArea()
        scroll.setWidget(self.preview)
        scroll.setWidgetResizable(True)
        right_layout.addWidget(scroll, 1)
        right_layout.addWidget(self.detail, 2)
        right_layout.addWidget(self.reason)
        right_layout.addLayout(actions)
        right_layout.addWidget(self.message)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([600, 400])  # the device list gets the larger share
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def set_role(self, role: Role) -> None:
        """Enable what ``role`` may do: reprint and rework are QA's and the admin's."""
        self._role = role
        allowed = role in (Role.QA, Role.ADMIN)
        self.reprint_button.setEnabled(allowed)
        self.rework_button.setEnabled(allowed)
        self.reason.setEnabled(allowed)

    # ------------------------------------------------------------------ search
    def refresh(self) -> None:
        """Search by identifier, or list every device lazily when the box is empty."""
        key = self.search.text().strip()
        self.status.setText("Searching…")
        if not key:
            self.model.set_query(DeviceQuery())
            return
        self._tasks.run(lambda s: s.devices().find(key), self._found, self._failed)

    def _found(self, rows: list[DeviceRecord]) -> None:
        self.model.set_rows(rows)
        if not rows:
            self.status.setText("No devices match.")
        elif len(rows) == 1:
            self.table.selectRow(0)

    def _loaded(self, total: int) -> None:
        if total or not self.search.text().strip():
            shown = self.model.rowCount()
            self.status.setText(f"{total} device(s) — {shown} loaded")

    # ------------------------------------------------------------------ detail
    def _selected(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        indexes = selected.indexes()
        if indexes:
            self.show_device(self.model.row(indexes[0].row()).registration_id)

    def show_device(self, registration_id: str) -> None:
        """Load a device's detail and label preview in the background."""
        self.title.setText(f"Loading {registration_id}…")

        def job(s: Station) -> DetailView:
            detail = s.devices().show(registration_id)
            try:
                png = s.labels().preview_png(registration_id, dpi=120)
            except StationError as exc:
                return DetailView(detail, b"", exc.message)
            return DetailView(detail, png)

        self._tasks.run(job, self._show_detail, self._failed)

    def _show_detail(self, view: DetailView) -> None:
        device = view.detail.device
        self._current = device
        self.title.setText(f"{device.registration_id} — {device.serial} — {device.status}")
        self.detail.setPlainText(render_detail(view.detail))
        if view.preview_png:
            pixmap = QPixmap()
            pixmap.loadFromData(view.preview_png, "PNG")
            self.preview.setPixmap(pixmap)
        else:
            self.preview.setText(f"No label preview: {view.preview_error}")

    @property
    def current(self) -> DeviceRecord | None:
        """The device shown in the detail pane."""
        return self._current

    # ------------------------------------------------------------------ actions
    def print_label(self) -> None:
        """Print the first label of the shown device."""
        device = self._current
        if device is None:
            return
        rid, operator = device.registration_id, self._session.name
        self._tasks.run(
            lambda s: s.labels().print_device(rid, operator=operator), self._printed, self._failed
        )

    def reprint(self) -> None:
        """Reprint the shown device's label; a reason is required (QA or admin)."""
        device = self._current
        reason = self.reason.text().strip()
        if device is None:
            self.message.setText("Select a device first.")
            return
        if not reason:
            self.message.setText("A reprint needs a reason: type why in the reason box.")
            self.reason.setFocus()
            return
        rid, operator = device.registration_id, self._session.name
        self._tasks.run(
            lambda s: s.labels().reprint(rid, reason=reason, operator=operator),
            self._printed,
            self._failed,
        )

    def rework(self) -> None:
        """Arm the line for a rework of the shown device (QA or admin; reason required)."""
        device = self._current
        reason = self.reason.text().strip()
        if device is None or not reason:
            self.message.setText("Select a device and type the rework reason first.")
            return
        self.rework_requested.emit(device.batch, reason, device.serial)
        self.message.setText(
            f"Rework armed for board {device.serial}: plug it and start its slot on the line view."
        )

    def _printed(self, outcome: PrintOutcome) -> None:
        self.reason.clear()
        self.message.setText(f"{outcome.kind} sent: {', '.join(outcome.registration_ids)}")
        if self._current is not None:
            self.show_device(self._current.registration_id)

    def _failed(self, error: StationError) -> None:
        self.message.setText(describe(error))
        self.status.setText(describe(error))


def render_detail(detail: DeviceDetail) -> str:
    """Plain-text detail: manifest, EK certificate status, certificates, labels, audit trail."""
    device = detail.device
    lines = [f"Batch {device.batch}   product {device.product}   {device.attestation}"]
    try:
        manifest = json.loads(device.manifest_json)
    except ValueError:
        manifest = {}
    ek = _find_key(manifest, "ek_certificate")
    if ek is not None:
        lines.append(f"EK certificate: {json.dumps(ek, sort_keys=True)[:300]}")
    if device.ek_sha256:
        lines.append(f"EK SHA-256: {device.ek_sha256}")
    lines.append("")
    lines.append("Certificates:")
    for cert in detail.certificates or ():
        lines.append(
            f"  {cert.serial_number}  {cert.status}  {cert.profile}  "
            f"{cert.not_before} → {cert.not_after}  thumbprint {cert.thumbprint_sha256}"
        )
    if not detail.certificates:
        lines.append("  none")
    lines.append("Labels:")
    for label in detail.labels:
        why = f"  reason: {label.reason}" if label.reason else ""
        lines.append(f"  {label.printed_at}  {label.kind} by {label.operator}{why}")
    if not detail.labels:
        lines.append("  none printed")
    lines.append("Audit events:")
    for event in detail.events:
        lines.append(f"  #{event.seq} {event.time} {event.kind} by {event.operator}")
    lines.append("")
    lines.append("Manifest:")
    lines.append(json.dumps(manifest, indent=2, sort_keys=True))
    return "\n".join(lines)


def _find_key(value: object, key: str) -> object | None:
    if isinstance(value, dict):
        if key in value:
            found: object = value[key]
            return found
        for item in value.values():
            inner = _find_key(item, key)
            if inner is not None:
                return inner
    return None
