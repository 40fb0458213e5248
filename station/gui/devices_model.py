"""A read-only table model over device summaries."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from station.domain.records import DeviceRecord

COLUMNS = (
    ("Registration ID", "registration_id"),
    ("Serial", "serial"),
    ("Batch", "batch"),
    ("Attestation", "attestation"),
    ("Status", "status"),
    ("Recorded", "created_at"),
)

AnyIndex = QModelIndex | QPersistentModelIndex


class DeviceTableModel(QAbstractTableModel):
    """Rows are :class:`DeviceRecord` values handed in from a background query."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[DeviceRecord] = []

    def set_rows(self, rows: list[DeviceRecord]) -> None:
        """Replace the rows (GUI thread only)."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row(self, index: int) -> DeviceRecord:
        """The record shown on row ``index``."""
        return self._rows[index]

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt API
        """Number of rows (flat model: zero under any valid parent)."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt API
        """Number of columns."""
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text."""
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        return str(getattr(self._rows[index.row()], COLUMNS[index.column()][1]))

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None
