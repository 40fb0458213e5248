"""Batches (work orders): opening them and reading their progress."""

from __future__ import annotations

import re
from dataclasses import dataclass

from station.domain.audit import EventDraft, format_time
from station.domain.errors import NotFoundError, ValidationError
from station.domain.records import BatchRecord, DeviceQuery, Role
from station.domain.states import BatchStatus, DeviceStatus
from station.ports import Clock, IdentityStore, ProductCatalog
from station.services.authz import require_role

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Who may open a batch: the people who plan the line, not every technician.
OPENERS = frozenset({Role.QA, Role.ADMIN})


@dataclass(frozen=True)
class BatchProgress:
    """How far a batch is."""

    batch: BatchRecord
    provisioned: int
    voided: int

    @property
    def remaining(self) -> int:
        """Devices still to provision before the batch is full."""
        return max(self.batch.size - self.provisioned, 0)


class BatchService:
    """Open batches and report their progress."""

    def __init__(
        self,
        store: IdentityStore,
        products: ProductCatalog,
        *,
        clock: Clock,
        station_id: str,
        operator: str,
    ) -> None:
        self._store = store
        self._products = products
        self._clock = clock
        self._station = station_id
        self._operator = operator

    def open(self, *, name: str, product: str, size: int) -> BatchRecord:
        """Open batch ``name`` for ``size`` devices of ``product`` (QA or admin).

        Raises:
            ValidationError: bad name or size, or the name is taken.
            NotFoundError: unknown product.
            PermissionDeniedError: the operator may not open batches.
        """
        if not _NAME.fullmatch(name):
            raise ValidationError(
                f"batch name {name!r} is invalid",
                remedy="Use the work-order number: letters, digits, '.', '_' or '-'.",
                batch=name,
            )
        if not 1 <= size <= 1_000_000:
            raise ValidationError(
                f"batch size {size} is out of range (1 to 1,000,000, the DPS enrollment limit)",
                batch=name,
            )
        recipe = self._products.product(product)  # validates the recipe before anything is written
        with self._store.atomic():
            require_role(self._store, self._operator, OPENERS, action="open a batch")
            if self._store.batch(name) is not None:
                raise ValidationError(f"batch {name} already exists", batch=name)
            record = self._store.save_batch(
                BatchRecord(
                    name=name,
                    product=recipe.name,
                    size=size,
                    status=str(BatchStatus.OPEN),
                    created_at=format_time(self._clock.now()),
                )
            )
            self._store.append_event(
                EventDraft(
                    kind="batch.opened",
                    subject=name,
                    payload={"product": recipe.name, "size": size},
                    operator=self._operator,
                    station=self._station,
                )
            )
        return record

    def all(self) -> list[BatchRecord]:
        """Every batch, newest first."""
        return self._store.batches()

    def progress(self, name: str) -> BatchProgress:
        """Counts of provisioned and voided devices in batch ``name``.

        Raises:
            NotFoundError: no such batch.
        """
        record = self._store.batch(name)
        if record is None:
            raise NotFoundError(f"no batch called {name!r}", batch=name)
        return BatchProgress(
            batch=record,
            provisioned=self._store.count_devices(
                DeviceQuery(batch=name, status=str(DeviceStatus.PROVISIONED))
            ),
            voided=self._store.count_devices(
                DeviceQuery(batch=name, status=str(DeviceStatus.VOIDED))
            ),
        )
