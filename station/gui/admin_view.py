"""The admin view: CA/HSM status, DPS test, products, operators, slot binding, printer.

The CA box names the key in words (token, label, key ID in hex), flags a chain that ends at a lab
root (NOT FOR PRODUCTION) and warns when the CA certificate expires within ``[ca]
expiry_warning_days``; "Test DPS connection" asks the configured DPS for one enrollment; the
operators table shows each account's state and login method; slot binding binds the selected
plugged board's physical port to a slot.

Everything that touches the token, DPS, discovery or the printer runs on a pool task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_to_bytes

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from station.bootstrap import Station
from station.domain.boards import DiscoveredBoard
from station.domain.errors import StationError
from station.domain.labels.model import LabelData
from station.domain.products import ProductAttestation, ProductRecipe
from station.domain.records import OperatorRecord, Role
from station.gui.tasks import TaskRunner, describe
from station.services.ca import CaStatus
from station.services.operators import OperatorStanding

#: what a test print shows: obviously not a device
TEST_LABEL = LabelData(
    registration_id="TEST-PRINT",
    device_id="TEST-PRINT",
    serial="TEST0000",
    model="test",
    batch="TEST",
    product="test",
    date="2026-01-01",
    thumbprint="0000000000000000",
    attestation="x509",
)

OPERATOR_HEADERS = ("Name", "Role", "State", "Logs in with")


@dataclass(frozen=True)
class AdminSnapshot:
    """What the admin view shows, read in one background task."""

    ca: CaStatus
    expiry_warning: str
    products: tuple[ProductRecipe, ...]
    operators: tuple[OperatorStanding, ...]
    boards: tuple[DiscoveredBoard, ...]


class AdminView(QWidget):
    """Status boxes and the admin's actions."""

    def __init__(self, station: Station, slots: list[str]) -> None:
        super().__init__()
        self._operator = ""  # who acts: the window sets it at login and lock
        self._station = station
        self._tasks = TaskRunner(station)
        self._slots = list(slots)
        self._boards: tuple[DiscoveredBoard, ...] = ()
        self._init_elements()
        self._init_connections()
        self._init_layout()

    def _init_elements(self) -> None:
        self.ca_label = QLabel("CA: not read yet")
        self.ca_label.setWordWrap(True)
        self.ca_label.setMinimumHeight(self.fontMetrics().lineSpacing() * 4)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #c62828; font-weight: bold;")
        self.dps_button = QPushButton("Test DPS connection")
        dps = self._station.config.dps
        target = dps.endpoint or (
            f"connection file {dps.connection_string_file}" if dps.connection_string_file else ""
        )
        self.dps_label = QLabel(f"DPS: {target or 'not configured'}")
        self.dps_label.setWordWrap(True)
        self.products = QListWidget()
        self.product_detail = QLabel("Select a product to see its recipe.")
        self.product_detail.setWordWrap(True)
        self.product_detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._recipes: tuple[ProductRecipe, ...] = ()
        self.operators = QTableWidget(0, len(OPERATOR_HEADERS))
        self.operators.setHorizontalHeaderLabels(list(OPERATOR_HEADERS))
        self.operators.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.operators.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.operators.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.operators.verticalHeader().setVisible(False)
        self.operators.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.operators.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.operators.horizontalHeader().setStretchLastSection(True)
        self._operators: tuple[OperatorStanding, ...] = ()
        self.op_name = QLineEdit()
        self.op_name.setPlaceholderText("name")
        self.op_role = QComboBox()
        self.op_role.addItems([str(role) for role in Role])
        self.op_pin = QLineEdit()
        self.op_pin.setPlaceholderText("PIN")
        self.op_pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.op_badge = QLineEdit()
        self.op_badge.setPlaceholderText("badge (scan)")
        self.op_badge.setEchoMode(QLineEdit.EchoMode.Password)
        self.add_operator = QPushButton("Add operator")
        self.toggle_operator = QPushButton("Enable / disable selected")
        self.boards = QListWidget()
        self.slot_box = QComboBox()
        self.slot_box.setEditable(True)
        self.slot_box.addItems(self._slots)
        self.bind_button = QPushButton("Bind selected board to slot")
        self.printer = QLineEdit(self._station.config.labels.printer)
        self.printer.setPlaceholderText("printer URI (empty: save PDFs)")
        self.test_print = QPushButton("Test print")
        self.refresh_button = QPushButton("Refresh")
        self.message = QLabel("")
        self.message.setWordWrap(True)

    def _init_connections(self) -> None:
        self.refresh_button.clicked.connect(self.refresh)
        self.dps_button.clicked.connect(self.test_dps)
        self.add_operator.clicked.connect(self.add)
        self.toggle_operator.clicked.connect(self.toggle)
        self.products.currentRowChanged.connect(self._show_recipe)
        self.bind_button.clicked.connect(self.bind)
        self.test_print.clicked.connect(self.print_test)

    def _init_layout(self) -> None:
        ca_box = QGroupBox("CA and HSM")
        ca_layout = QVBoxLayout(ca_box)
        ca_layout.addWidget(self.ca_label)
        ca_layout.addWidget(self.warning)
        dps_box = QGroupBox("DPS target")
        dps_layout = QVBoxLayout(dps_box)
        dps_layout.addWidget(self.dps_label)
        dps_layout.addWidget(self.dps_button)
        products_box = QGroupBox("Products")
        products_layout = QVBoxLayout(products_box)
        products_layout.addWidget(self.products, 1)
        products_layout.addWidget(self.product_detail)
        ops_box = QGroupBox("Operators and roles")
        ops_layout = QVBoxLayout(ops_box)
        ops_layout.addWidget(self.operators)
        form = QFormLayout()
        form.addRow("Name", self.op_name)
        form.addRow("Role", self.op_role)
        form.addRow("PIN", self.op_pin)
        form.addRow("Badge", self.op_badge)
        ops_layout.addLayout(form)
        ops_layout.addWidget(self.add_operator)
        ops_layout.addWidget(self.toggle_operator)
        slots_box = QGroupBox("Slot binding: plug a board, select it, choose the slot")
        slots_layout = QVBoxLayout(slots_box)
        slots_layout.addWidget(self.boards)
        row = QHBoxLayout()
        row.addWidget(self.slot_box, 1)
        row.addWidget(self.bind_button)
        slots_layout.addLayout(row)
        printer_box = QGroupBox("Printer")
        printer_layout = QVBoxLayout(printer_box)
        printer_layout.addWidget(self.printer)
        printer_layout.addWidget(self.test_print)
        left = QVBoxLayout()
        left.addWidget(ca_box)
        left.addWidget(dps_box)
        left.addWidget(products_box, 1)
        ca_box.setMinimumHeight(self.fontMetrics().lineSpacing() * 7)
        left.addWidget(printer_box)
        right = QVBoxLayout()
        right.addWidget(ops_box, 3)
        right.addWidget(slots_box, 2)
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.refresh_button)
        layout.addLayout(columns, 1)
        layout.addWidget(self.message)

    # ------------------------------------------------------------------ reading
    def refresh(self) -> None:
        """Read CA status, products, operators and plugged boards in the background."""

        def job(s: Station) -> AdminSnapshot:
            status = s.ca().status()
            batches = s.batches()
            return AdminSnapshot(
                status,
                ca_warnings(status, s.clock.now()),
                tuple(batches.recipe(name) for name in batches.product_names()),
                tuple(s.operators().standings()),
                tuple(s.discovery().boards()),
            )

        self._tasks.run(job, self._show, self._failed)

    def _show_recipe(self, row: int) -> None:
        if not 0 <= row < len(self._recipes):
            self.product_detail.setText("Select a product to see its recipe.")
            return
        recipe = self._recipes[row]
        identity = (
            "from the TPM endorsement key"
            if recipe.attestation is ProductAttestation.TPM
            else recipe.registration_id.replace("{prefix}", recipe.prefix or "{prefix}")
        )
        lines = [
            f"Attestation: {recipe.attestation}; board model: {recipe.model or 'any'}",
            f"Registration ID: {identity}",
            f"Certificate profile: {recipe.certificate_profile}; lock after provisioning: "
            + ("yes" if recipe.lock else "no"),
            f"Label: {recipe.label_template}"
            + (" (printed at PASS)" if recipe.auto_print_label else ""),
            f"DPS: {recipe.dps.global_endpoint}, ID scope {recipe.dps.id_scope or 'not set'}",
            f"Recipes are version-controlled files in "
            f"{self._station.config.templates_dir / 'products'}: change them there.",
        ]
        self.product_detail.setText("\n".join(lines))

    def _show(self, snap: AdminSnapshot) -> None:
        self.ca_label.setText(ca_summary(snap.ca))
        self.warning.setText(snap.expiry_warning)
        self._recipes = snap.products
        self.products.clear()
        self.products.addItems([f"{r.name} — {r.attestation}" for r in snap.products])
        self._operators = snap.operators
        self.operators.setRowCount(len(snap.operators))
        for row, op in enumerate(snap.operators):
            values = (op.record.name, str(op.record.role), op.state, op.login)
            for column, value in enumerate(values):
                self.operators.setItem(row, column, QTableWidgetItem(value))
        self._boards = snap.boards
        self.boards.clear()
        for board in snap.boards:
            slot = f" → {board.slot}" if board.slot else ""
            self.boards.addItem(f"{board.location} ({board.device}){slot}")

    # ------------------------------------------------------------------ actions
    def test_dps(self) -> None:
        """Ask DPS for an enrollment that does not exist: any answer proves the connection."""

        def job(s: Station) -> str:
            s.batches().check_dps()
            return "DPS answered: connection and credentials work."

        self.dps_label.setText("Testing…")
        self._tasks.run(job, self.dps_label.setText, lambda e: self.dps_label.setText(describe(e)))

    def set_operator(self, record: OperatorRecord | None) -> None:
        """The logged-in operator (None when the window is locked): the admin's acts name them."""
        self._operator = record.name if record is not None else ""

    def add(self) -> None:
        """Add an operator with the form's name, role, PIN and badge."""
        name, role = self.op_name.text().strip(), Role(self.op_role.currentText())
        pin, badge = self.op_pin.text(), self.op_badge.text()
        self.op_pin.clear()
        self.op_badge.clear()
        operator = self._operator
        self._tasks.run(
            lambda s: s.operators().add(name, role, pin=pin, badge=badge, operator=operator),
            lambda _r: self._done(f"Operator {name} added."),
            self._failed,
        )

    def toggle(self) -> None:
        """Enable or disable the selected operator."""
        row = self.operators.currentRow()
        if row < 0 or row >= len(self._operators):
            self.message.setText("Select an operator in the table first.")
            return
        op, operator = self._operators[row].record, self._operator
        self._tasks.run(
            lambda s: s.operators().set_enabled(op.name, not op.enabled, operator=operator),
            lambda _r: self._done(f"Operator {op.name} updated."),
            self._failed,
        )

    def bind(self) -> None:
        """Bind the selected plugged board's physical port to the chosen slot."""
        row = self.boards.currentRow()
        slot = self.slot_box.currentText().strip()
        if row < 0 or row >= len(self._boards) or not slot:
            self.message.setText("Select a plugged board and a slot.")
            return
        location = self._boards[row].location
        self._tasks.run(
            lambda s: s.discovery().bind_plugged(slot, location),
            lambda _b: self._done(f"Slot {slot} is bound to port {location}."),
            self._failed,
        )

    def print_test(self) -> None:
        """Print a sample label (no device, nothing recorded) on the chosen printer."""
        printer = self.printer.text().strip()

        def job(s: Station) -> str:
            labels = s.labels()
            spec = printer or labels.default_printer
            receipt = labels.printers.printer(spec).print_labels(
                labels.template(), [TEST_LABEL], title="station-test-print"
            )
            return f"Test print sent: {receipt.labels} label(s) to {receipt.printer} {receipt.job}"

        self._tasks.run(job, self.message.setText, self._failed)

    def _done(self, text: str) -> None:
        self.message.setText(text)
        self.refresh()

    def _failed(self, error: StationError) -> None:
        self.message.setText(describe(error))


def ca_summary(status: CaStatus) -> str:
    """The CA box's text: where the key is (in words), what was issued, the certificate."""
    if status.key is not None:
        key = status.key.location
    elif status.key_uri:
        key = describe_key_uri(status.key_uri)
    else:
        key = "not set up (the admin guide's CA ceremony sets it up)"
    text = f"Key: {key}\nIssued {status.issued} certificate(s)."
    cert = status.certificate
    if cert is not None:
        text += f"\nCA: {cert.subject}, valid until {cert.not_after:%Y-%m-%d}."
        text += f"\nSigned by: {cert.issuer}."
    return text


def ca_warnings(status: CaStatus, now: datetime) -> str:
    """What the admin must act on: a lab root, an unreachable key, a certificate expiring soon."""
    warnings = []
    if status.lab_root:
        warnings.append(
            "LAB ROOT — NOT FOR PRODUCTION: this CA was signed by the station's throwaway lab "
            "root. Devices it certifies are for the lab only; import the chain your offline "
            "root signed before producing real devices."
        )
    if status.key_error:
        warnings.append(f"CA key: {status.key_error}")
    left = status.expires_within(now)
    if left is not None:
        warnings.append(
            f"CA certificate expires in {left} day(s) (warning from {status.warn_days} days): "
            "renew the intermediate with your offline root."
        )
    return "\n".join(warnings)


def describe_key_uri(uri: str) -> str:
    """A key URI for people: ``pkcs11:`` attributes percent-decoded, the key ID in hex."""
    if not uri.startswith("pkcs11:"):
        return uri
    path = uri[len("pkcs11:") :].split("?", 1)[0]
    parts = []
    for attribute in filter(None, path.split(";")):
        name, _, value = attribute.partition("=")
        raw = unquote_to_bytes(value)
        if name == "id":
            parts.append(f"id {raw.hex()}")
        else:
            parts.append(f"{name} {raw.decode('utf-8', 'replace')!r}")
    return ", ".join(parts) or uri
