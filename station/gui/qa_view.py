"""The QA view: find devices, read their detail, print/reprint labels, rework, void jobs.

The device table is a lazy model (pages load in the background as it scrolls), so it opens and
scrolls over a million devices. The selected device's detail is a panel to read, not a dump:
identity, the certificate chain as a tree with validity dates, the label and its history, the
audit timeline; the raw manifest sits behind **Show JSON**. Each button is enabled only when the
action is allowed for the logged-in role and the device's state (the services check again), and a
search that finds nothing clears the selection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from PySide6.QtCore import QItemSelection, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.audit import AuditEvent
from station.domain.certificates import CertificateFacts
from station.domain.errors import StationError
from station.domain.fleet import FleetDeviceView
from station.domain.permissions import Permission
from station.domain.records import DeviceQuery, DeviceRecord, OperatorRecord, Role
from station.domain.states import DeviceStatus
from station.gui.devices_model import COLUMN_SAMPLES, DeviceTableModel, short_time
from station.gui.fleet_search import SCOPES, render_fleet
from station.gui.style import scaled_font
from station.gui.tasks import TaskRunner, describe
from station.gui.void_jobs import VoidJobsDialog
from station.services.devices import DeviceDetail
from station.services.labels import PrintOutcome
from station.services.operators import OperatorService

#: the actions that take the reason box's text
_WITH_REASON = frozenset({Permission.REPRINT_LABEL, Permission.REWORK, Permission.VOID_JOB})


@dataclass(frozen=True)
class DetailView:
    """A device's detail, its label preview and the CA chain above its certificate.

    ``preview_png`` is empty when the label cannot render (``preview_error`` says why);
    ``chain`` holds the intermediate(s), then the root (empty for other attestations).
    """

    detail: DeviceDetail
    preview_png: bytes
    preview_error: str = ""
    chain: tuple[CertificateFacts, ...] = ()


def allowed_actions(role: Role | None, detail: DeviceDetail | None) -> frozenset[str]:
    """What ``role`` may do to the shown device now: ``print``, ``reprint``, ``rework``, ``void``.

    A label is printed once for a provisioned device; further copies are reprints; a provisioned
    board may be reworked; open jobs may be voided with or without a device. Who may do each is
    the services' permission table (they check it again); ``None`` is nobody at the window
    (locked), who may do nothing.
    """
    grants = OperatorService.permissions_of(role)
    actions = {"void"} if Permission.VOID_JOB in grants else set()
    if detail is not None and detail.device.status == DeviceStatus.PROVISIONED:
        if not detail.labels:
            if Permission.PRINT_LABEL in grants:
                actions.add("print")
        elif Permission.REPRINT_LABEL in grants:
            actions.add("reprint")
        if Permission.REWORK in grants:
            actions.add("rework")
    return frozenset(actions)


class QaView(QWidget):
    """Search box, lazy device table and the selected device's detail panel."""

    rework_requested = Signal(str, str, str)  # batch, reason, the board's serial

    def __init__(self, station: Station) -> None:
        super().__init__()
        self._station = station
        self._tasks = TaskRunner(station)
        self._view: DetailView | None = None
        self._showing = ""  # the device whose detail is on its way (a late answer is dropped)
        self._role: Role | None = None
        self._operator = ""
        self.void_dialog: VoidJobsDialog | None = None
        self._init_elements()
        self._init_connections()
        self._init_layout()
        self.set_role(None)

    # ------------------------------------------------------------------ construction
    def _init_elements(self) -> None:
        self.search = QLineEdit()
        self.search.setPlaceholderText("Serial, registration ID, EK hash or certificate thumbprint")
        self.search_button = QPushButton("Search")
        self.scope = QComboBox()  # the whole fleet, when the station replicates to a ledger
        self.scope.addItems(SCOPES)
        self.scope.setVisible(self._station.fleet_configured())
        self.model = DeviceTableModel(self._tasks.run)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        # one line per device: a cell never wraps mid-word; a long value ends in "…" and its
        # tooltip holds it whole
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # the registration ID (up to 128 characters) gets the room; the others fit their
        # content, measured on sample text (measuring a million rows would freeze the view)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        metrics = self.table.fontMetrics()
        for column, sample in enumerate(COLUMN_SAMPLES, start=1):
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 24)
        self.status = QLabel("Loading…")
        self.title = QLabel("Select a device")
        self.title.setFont(scaled_font(self, 1.15, bold=True))
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.identity = QFormLayout()
        self.identity_labels: dict[str, QLabel] = {}
        for field in IDENTITY_FIELDS:
            label = QLabel("")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.identity_labels[field] = label
        self.chain = _tree(("Certificate", "Valid from", "Valid until", "State"))
        self.preview = QLabel("")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.label_history = _tree(("Printed", "Kind", "By", "Reason", "Printer"), stretch=3)
        self.timeline = _tree(("#", "Time", "Event", "By", "Detail"), stretch=4)
        self.json_button = QPushButton("Show JSON")
        self.json_button.setCheckable(True)
        self.manifest = QPlainTextEdit()
        self.manifest.setReadOnly(True)
        self.manifest.setVisible(False)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Reason (required for reprint, rework and void)")
        self.print_button = QPushButton("Print label")
        self.reprint_button = QPushButton("Reprint label…")
        self.rework_button = QPushButton("Rework board…")
        self.void_button = QPushButton("Void job…")
        self.message = QLabel("")
        self.message.setWordWrap(True)

    def _init_connections(self) -> None:
        self.search.returnPressed.connect(self.refresh)
        self.search_button.clicked.connect(self.refresh)
        self.model.loaded.connect(self._loaded)
        self.model.failed.connect(lambda e: self.status.setText(describe(e)))
        self.table.selectionModel().selectionChanged.connect(self._selected)
        self.json_button.toggled.connect(self._toggle_json)
        self.print_button.clicked.connect(self.print_label)
        self.reprint_button.clicked.connect(self.reprint)
        self.rework_button.clicked.connect(self.rework)
        self.void_button.clicked.connect(self.void_jobs)

    def _init_layout(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.scope)
        bar.addWidget(self.search_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addLayout(bar)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.status)

        for field, title in IDENTITY_FIELDS.items():
            self.identity.addRow(title, self.identity_labels[field])
        identity_box = QGroupBox("Identity")
        identity_box.setLayout(self.identity)
        chain_box = QGroupBox("Certificate chain")
        QVBoxLayout(chain_box).addWidget(self.chain)
        label_box = QGroupBox("Label")
        label_layout = QVBoxLayout(label_box)
        label_layout.addWidget(self.preview)
        label_layout.addWidget(self.label_history)
        audit_box = QGroupBox("Audit timeline")
        QVBoxLayout(audit_box).addWidget(self.timeline)
        panel = QWidget()
        panel_layout = QVBoxLayout(panel)
        for box in (identity_box, chain_box, label_box, audit_box):
            panel_layout.addWidget(box)
        panel_layout.addWidget(self.json_button, 0, Qt.AlignmentFlag.AlignLeft)
        panel_layout.addWidget(self.manifest)
        panel_layout.addStretch(1)
        self.panel = QScrollArea()
        self.panel.setWidget(panel)
        self.panel.setWidgetResizable(True)
        # the panel, not the window, scrolls sideways for a long unbreakable value
        self.panel.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

        actions = QHBoxLayout()
        for button in (
            self.print_button,
            self.reprint_button,
            self.rework_button,
            self.void_button,
        ):
            actions.addWidget(button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.title)
        right_layout.addWidget(self.panel, 1)
        right_layout.addWidget(self.reason)
        right_layout.addLayout(actions)
        right_layout.addWidget(self.message)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([680, 620])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    # ------------------------------------------------------------------ who
    def set_operator(self, record: OperatorRecord | None) -> None:
        """The logged-in operator (None when the window is locked): acts and role follow."""
        self._operator = record.name if record is not None else ""
        self.set_role(record.role if record is not None else None)

    def set_role(self, role: Role | None) -> None:
        """Enable what ``role`` may do by the services' permission table (None: nothing)."""
        self._role = role
        self.reason.setEnabled(bool(_WITH_REASON & OperatorService.permissions_of(role)))
        self._update_actions()

    def _update_actions(self) -> None:
        allowed = allowed_actions(self._role, self._view.detail if self._view else None)
        self.print_button.setEnabled("print" in allowed)
        self.reprint_button.setEnabled("reprint" in allowed)
        self.rework_button.setEnabled("rework" in allowed)
        self.void_button.setEnabled("void" in allowed)

    # ------------------------------------------------------------------ search
    def refresh(self) -> None:
        """Search by identifier, or list every device lazily when the box is empty."""
        key = self.search.text().strip()
        self.status.setText("Searching…")
        if self.scope.currentIndex() == 1:
            self._search_fleet(key)
            return
        if not key:
            self.clear_device()
            self.model.set_query(DeviceQuery())
            return
        self._tasks.run(lambda s: s.devices().find(key), self._found, self._failed)

    def _search_fleet(self, key: str) -> None:
        if not key:
            self.status.setText("Type a serial, registration ID or hash to search the fleet.")
            return
        self.clear_device()

        def shown(view: FleetDeviceView) -> None:
            # every station's record as text in the panel's text pane (no device actions:
            # a device of another station is acted on at that station)
            self.clear_device()
            self.title.setText(f"{key} across the fleet")
            self.manifest.setPlainText(render_fleet(view))
            self.json_button.setChecked(True)
            self.status.setText("Fleet search done.")

        self._tasks.run(lambda s: s.fleet().show(key), shown, self._failed)

    def _found(self, rows: list[DeviceRecord]) -> None:
        self.model.set_rows(rows)
        self.clear_device()  # the panel shows only a device the table lists and selects
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
        elif not self.table.selectionModel().hasSelection():
            self.clear_device()

    def show_device(self, registration_id: str) -> None:
        """Load a device's detail, label preview and CA chain in the background."""
        self._showing = registration_id
        self.title.setText(f"Loading {registration_id}…")

        def job(s: Station) -> DetailView:
            detail = s.devices().show(registration_id)
            chain: tuple[CertificateFacts, ...] = ()
            if detail.certificates:
                try:
                    chain = s.ca().chain()
                except StationError:
                    chain = ()  # the tree then shows the device certificates alone
            try:
                png = s.labels().preview_png(registration_id, dpi=120)
            except StationError as exc:
                return DetailView(detail, b"", exc.message, chain)
            return DetailView(detail, png, "", chain)

        self._tasks.run(job, self._show_detail, self._failed)

    def clear_device(self) -> None:
        """Nothing selected: empty the panel and disable the device actions."""
        self._view = None
        self._showing = ""
        self.table.clearSelection()
        self.title.setText("Select a device")
        for label in self.identity_labels.values():
            label.clear()
        for tree in (self.chain, self.label_history, self.timeline):
            tree.clear()
        self.preview.clear()
        self.manifest.clear()
        self._update_actions()

    def _show_detail(self, view: DetailView) -> None:
        device = view.detail.device
        if device.registration_id != self._showing:
            return  # another device was chosen (or none) while this one loaded
        self._view = view
        self.title.setText(f"{device.registration_id} — {device.serial} — {device.status}")
        manifest = _manifest(device)
        for field, text in identity_rows(device, manifest).items():
            self.identity_labels[field].setText(text)
        fill_chain(self.chain, view, manifest)
        if view.preview_png:
            pixmap = QPixmap()
            pixmap.loadFromData(view.preview_png, "PNG")
            self.preview.setPixmap(pixmap)
        else:
            self.preview.setText(f"No label preview: {view.preview_error}")
        _fill(
            self.label_history,
            [
                (
                    short_time(label.printed_at),
                    label.kind,
                    label.operator,
                    label.reason,
                    label.printer,
                )
                for label in view.detail.labels
            ]
            or [("none printed yet", "", "", "", "")],
        )
        _fill(
            self.timeline,
            [
                (str(e.seq), short_time(e.time), e.kind, e.operator, event_summary(e))
                for e in view.detail.events
            ],
        )
        self.manifest.setPlainText(json.dumps(manifest, indent=2, sort_keys=True))
        self._update_actions()

    def _toggle_json(self, shown: bool) -> None:
        self.manifest.setVisible(shown)
        self.json_button.setText("Hide JSON" if shown else "Show JSON")

    @property
    def current(self) -> DeviceRecord | None:
        """The device shown in the detail panel."""
        return self._view.detail.device if self._view is not None else None

    # ------------------------------------------------------------------ actions
    def print_label(self) -> None:
        """Print the first label of the shown device."""
        device = self.current
        if device is None:
            return
        rid, operator = device.registration_id, self._operator
        self._tasks.run(
            lambda s: s.labels().print_device(rid, operator=operator), self._printed, self._failed
        )

    def reprint(self) -> None:
        """Reprint the shown device's label; a reason is required (QA or admin)."""
        device = self.current
        reason = self.reason.text().strip()
        if device is None:
            self.message.setText("Select a device first.")
            return
        if not reason:
            self.message.setText("A reprint needs a reason: type why in the reason box.")
            self.reason.setFocus()
            return
        rid, operator = device.registration_id, self._operator
        self._tasks.run(
            lambda s: s.labels().reprint(rid, reason=reason, operator=operator),
            self._printed,
            self._failed,
        )

    def rework(self) -> None:
        """Arm the line for a rework of the shown device (QA or admin; reason required)."""
        device = self.current
        reason = self.reason.text().strip()
        if device is None or not reason:
            self.message.setText("Select a device and type the rework reason first.")
            return
        self.rework_requested.emit(device.batch, reason, device.serial)
        self.message.setText(
            f"Rework armed for board {device.serial}: plug it and start its slot on the line view."
        )

    def void_jobs(self) -> None:
        """Open the void-jobs dialog: every open job of the station (QA and admin)."""
        dialog = VoidJobsDialog(self._station, operator=self._operator, parent=self)
        if self.reason.text().strip():
            dialog.reason.setText(self.reason.text().strip())
        dialog.voided.connect(lambda ids: self.message.setText(f"Voided job(s) {ids}."))
        self.void_dialog = dialog
        dialog.open()

    def _printed(self, outcome: PrintOutcome) -> None:
        self.reason.clear()
        self.message.setText(f"{outcome.kind} sent: {', '.join(outcome.registration_ids)}")
        if self.current is not None:
            self.show_device(self.current.registration_id)

    def _failed(self, error: StationError) -> None:
        self.message.setText(describe(error))
        self.status.setText(describe(error))


#: identity rows of the detail panel: field -> title
IDENTITY_FIELDS = {
    "registration_id": "Registration ID",
    "serial": "Serial",
    "board": "Board",
    "product": "Product / batch",
    "attestation": "Attestation",
    "status": "Status",
    "provisioned": "Provisioned",
    "dps": "DPS",
    "fingerprint": "Fingerprint",
}


def identity_rows(device: DeviceRecord, manifest: dict[str, object]) -> dict[str, str]:
    """The identity panel's text, field by field (every field of :data:`IDENTITY_FIELDS`)."""
    board = _section(manifest, "board")
    dps = _section(manifest, "dps")
    hardware = ", ".join(
        f"{what} {board[key]}"
        for what, key in (("rev", "hardware_revision"), ("firmware", "firmware_version"))
        if board.get(key)
    )
    device_id = str(manifest.get("device_id", ""))
    fingerprint = (
        f"certificate SHA-256 {grouped(device.cert_thumbprint)}"
        if device.cert_thumbprint
        else f"EK SHA-256 {grouped(device.ek_sha256)}"
        if device.ek_sha256
        else "none (symmetric key)"
    )
    return {
        "registration_id": device.registration_id
        + (
            f" (device ID {device_id})" if device_id and device_id != device.registration_id else ""
        ),
        "serial": device.serial,
        "board": " — ".join(filter(None, [str(board.get("model", "")), hardware])),
        "product": f"{device.product} / {device.batch}",
        "attestation": device.attestation,
        "status": str(device.status),
        "provisioned": f"{short_time(str(manifest.get('provisioned_at', device.created_at)))} "
        f"by {manifest.get('operator', '?')} at station {manifest.get('station', '?')}",
        "dps": f"{dps.get('global_endpoint', '')}, ID scope {dps.get('id_scope', '') or 'not set'}",
        "fingerprint": fingerprint,
    }


def grouped(hex_text: str) -> str:
    """A long hex value in groups of 16 digits, so it wraps (the search accepts it so too)."""
    return " ".join(hex_text[i : i + 16] for i in range(0, len(hex_text), 16))


def fill_chain(tree: QTreeWidget, view: DetailView, manifest: dict[str, object]) -> None:
    """The certificate chain as a tree: root > intermediate > the device's certificates.

    A TPM device shows its endorsement key and EK-certificate verdict; a symmetric-key device
    says it holds no certificate.
    """
    tree.clear()
    detail = view.detail
    if not detail.certificates:
        tpm = _section(manifest, "tpm")
        sym = _section(manifest, "symmetric_key")
        if tpm:
            vendor = (
                f" ({tpm['ek_certificate_vendor']})" if tpm.get("ek_certificate_vendor") else ""
            )
            ek = QTreeWidgetItem(tree, [f"TPM endorsement key ({tpm.get('ek_origin', '')})"])
            QTreeWidgetItem(
                ek, [f"EK certificate{vendor}", "", "", str(tpm.get("ek_certificate_status", ""))]
            )
        elif sym:
            QTreeWidgetItem(
                tree, [f"No certificate: key derived from group key {sym.get('group_key', '')!r}"]
            )
        else:
            QTreeWidgetItem(tree, ["No certificate recorded"])
    else:
        parent: QTreeWidget | QTreeWidgetItem = tree
        issuer = _section(manifest, "x509").get("issuer", "")
        chain = list(reversed(view.chain))  # the root first
        if chain and chain[-1].subject != issuer:
            chain = []  # signed by a CA certificate no longer installed: say who signed it
        if not chain and issuer:
            parent = QTreeWidgetItem(tree, [f"{issuer} (not the installed CA certificate)"])
        for facts in chain:
            kind = "root" if facts.self_issued else "intermediate"
            parent = QTreeWidgetItem(
                parent,
                [
                    f"{facts.subject} ({kind})",
                    f"{facts.not_before:%Y-%m-%d}",
                    f"{facts.not_after:%Y-%m-%d}",
                    "",
                ],
            )
            parent.setToolTip(0, f"{facts.subject}\nissued by {facts.issuer}")
        for cert in detail.certificates:
            item = QTreeWidgetItem(
                parent,
                [
                    f"CN={cert.registration_id} (device)",
                    cert.not_before[:10],
                    cert.not_after[:10],
                    cert.status + (f": {cert.void_reason}" if cert.void_reason else ""),
                ],
            )
            item.setToolTip(0, f"serial number {cert.serial_number}, profile {cert.profile}")
    tree.expandAll()
    _fit(tree)


def event_summary(event: AuditEvent) -> str:
    """An audit event's payload in a few words: its short scalar values."""
    parts = []
    for key, value in sorted(event.payload.items()):
        if isinstance(value, str | int | float | bool) and len(str(value)) <= 40:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def _tree(headers: tuple[str, ...], *, stretch: int = 0) -> QTreeWidget:
    """A read-only tree sized to its rows; column ``stretch`` takes the room left and elides."""
    tree = QTreeWidget()
    tree.setHeaderLabels(list(headers))
    tree.setRootIsDecorated(stretch == 0)  # only the chain is a real tree
    tree.setWordWrap(False)
    tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    tree.setUniformRowHeights(True)
    tree.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    header = tree.header()
    header.setStretchLastSection(False)
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    _fit(tree)
    return tree


def _fill(tree: QTreeWidget, rows: list[tuple[str, ...]]) -> None:
    tree.clear()
    for row in rows:
        item = QTreeWidgetItem(tree, list(row))
        for column, text in enumerate(row):
            item.setToolTip(column, text)
    _fit(tree)


def _fit(tree: QTreeWidget) -> None:
    """Size ``tree`` to its rows: the panel scrolls as a whole, never a tree inside it."""
    rows = 0
    pending = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while pending:
        item = pending.pop()
        if item is not None:
            rows += 1
            pending += [item.child(i) for i in range(item.childCount())]
    line = tree.fontMetrics().height() + 8
    tree.setFixedHeight(tree.header().sizeHint().height() + max(rows, 1) * line + 6)


def _manifest(device: DeviceRecord) -> dict[str, object]:
    try:
        data = json.loads(device.manifest_json)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _section(manifest: dict[str, object], name: str) -> dict[str, object]:
    value = manifest.get(name)
    return value if isinstance(value, dict) else {}
