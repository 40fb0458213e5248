"""A lazy, read-only table model over recorded devices.

Rows arrive in pages from background tasks: ``canFetchMore``/``fetchMore`` ask for the next page
when the view scrolls near the end, so a million devices open instantly and scroll without the
GUI thread ever waiting on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from station.bootstrap import Station
from station.domain.errors import StationError
from station.domain.records import DeviceQuery, DeviceRecord

COLUMNS = (
    ("Registration ID", "registration_id"),
    ("Serial", "serial"),
    ("Batch", "batch"),
    ("Attestation", "attestation"),
    ("Status", "status"),
    ("Recorded", "created_at"),
)
#: typical widest text of each column after the registration ID (sizes the columns)
COLUMN_SAMPLES = (
    "SN-000000-00",
    "WO-000000",
    "x509-injected",
    "provisioned",
    "2026-11-26T12:36:44Z",
)
PAGE = 500

AnyIndex = QModelIndex | QPersistentModelIndex
Runner = Callable[
    [Callable[[Station], Any], Callable[[Any], None], Callable[[StationError], None]], Any
]


class DeviceTableModel(QAbstractTableModel):
    """Devices matching a query, fetched page by page in the background.

    Args:
        run: starts a background job (``TaskRunner.run``).
        page: rows per fetch.
    """

    loaded = Signal(int)  # total number of matches, after each page
    failed = Signal(object)

    def __init__(self, run: Runner, *, page: int = PAGE) -> None:
        super().__init__()
        self._run = run
        self._page = page
        self._rows: list[DeviceRecord] = []
        self._query = DeviceQuery(limit=page)
        self._total = 0
        self._pending = False
        self._generation = 0  # answers of a replaced query are dropped

    # ------------------------------------------------------------------ loading
    def set_query(self, query: DeviceQuery) -> None:
        """Show the devices matching ``query`` (first page loads in the background)."""
        self._generation += 1
        self.beginResetModel()
        self._rows = []
        self._total = 0
        self._query = query
        self._pending = False
        self.endResetModel()
        self._request()

    def set_rows(self, rows: list[DeviceRecord]) -> None:
        """Show exactly ``rows`` (a search by identifier: no paging)."""
        self._generation += 1
        self.beginResetModel()
        self._rows = list(rows)
        self._total = len(rows)
        self._pending = False
        self.endResetModel()
        self.loaded.emit(self._total)

    def _request(self) -> None:
        if self._pending:
            return
        self._pending = True
        generation = self._generation
        query = DeviceQuery(
            batch=self._query.batch,
            status=self._query.status,
            limit=self._page,
            offset=len(self._rows),
        )
        first = not self._rows

        def job(station: Station) -> tuple[list[DeviceRecord], int]:
            devices = station.devices()
            rows = devices.page(query)
            # counting is a full scan of the filter: do it once per query, not per page
            total = devices.count(query) if first else -1
            return rows, total

        self._run(
            job,
            lambda result: self._append(generation, result),
            lambda error: self._failed(generation, error),
        )

    def _append(self, generation: int, result: tuple[list[DeviceRecord], int]) -> None:
        if generation != self._generation:
            return
        rows, total = result
        self._pending = False
        if total >= 0:
            self._total = total
        if rows:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()
        if len(rows) < self._page:
            self._total = len(self._rows)
        self.loaded.emit(self._total)

    def _failed(self, generation: int, error: StationError) -> None:
        if generation == self._generation:
            self._pending = False
            self._total = len(self._rows)
            self.failed.emit(error)

    @property
    def total(self) -> int:
        """Matches in the database (known after the first page)."""
        return self._total

    @property
    def loading(self) -> bool:
        """Whether a page is on its way."""
        return self._pending

    def row(self, index: int) -> DeviceRecord:
        """The record shown on row ``index``."""
        return self._rows[index]

    # ------------------------------------------------------------------ Qt model API
    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008
        """More rows exist than are loaded (and none are on the way)."""
        return not parent.isValid() and not self._pending and len(self._rows) < self._total

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008
        """Ask for the next page in the background."""
        if not parent.isValid():
            self._request()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        """Loaded rows (flat model: zero under any valid parent)."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
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
