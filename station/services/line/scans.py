"""What a keyboard-wedge scan at the line is, and the batch a work order selects.

The line has one scan field. A scan is a work order (selects the batch), an operator badge
(switches the operator), a device label (scan-back check) or anything else, which is a board
serial when a slot asks for one and is refused otherwise. Classifying needs the store, so it runs
off the GUI thread; what to do with the result is the line model's business
(:mod:`station.services.line.model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from station.domain.errors import (
    NotFoundError,
    PermissionDeniedError,
    ScanMismatchError,
    StationError,
)
from station.domain.labels.scans import parse_scanned
from station.domain.provision_events import Step, steps_for
from station.domain.records import OperatorRecord
from station.domain.states import BatchStatus
from station.services.batches import BatchService
from station.services.devices import DeviceService
from station.services.labels import LabelService
from station.services.operators import OperatorService


class ScanKind(StrEnum):
    """What a scan turned out to be."""

    WORK_ORDER = "work-order"
    BADGE = "badge"
    LABEL = "label"
    OTHER = "other"  # a board serial, if a slot asks for one; refused otherwise


@dataclass(frozen=True)
class Scan:
    """One classified scan.

    Args:
        kind: what it is.
        text: the scanned text, trimmed.
        operator: the badge's operator (``BADGE``).
        registration_id: the device whose label matched (``LABEL``).
        refusal: why an ``OTHER`` scan is neither work order, badge nor label, shown when no
            slot asks for a serial.
    """

    kind: ScanKind
    text: str
    operator: OperatorRecord | None = None
    registration_id: str = ""
    refusal: StationError | None = None


@dataclass(frozen=True)
class BatchChoice:
    """The batch the line provisions into, and the steps its product's boards go through."""

    name: str
    product: str
    size: int
    provisioned: int
    steps: tuple[Step, ...]


class ScanClassifier:
    """Tells work orders, badges, labels and anything else apart (one station, one thread)."""

    def __init__(
        self,
        *,
        batches: BatchService,
        operators: OperatorService,
        devices: DeviceService,
        labels: LabelService,
    ) -> None:
        self._batches = batches
        self._operators = operators
        self._devices = devices
        self._labels = labels

    def classify(self, text: str, *, operator: str) -> Scan:
        """Classify one scan; a label is verified by the label service, audited as ``operator``."""
        text = text.strip()
        if self._batches.get(text) is not None:
            return Scan(ScanKind.WORK_ORDER, text)
        try:
            return Scan(ScanKind.BADGE, text, operator=self._operators.authenticate_badge(text))
        except PermissionDeniedError:
            pass
        try:
            identity = parse_scanned(text)
        except ScanMismatchError as not_a_label:
            return Scan(ScanKind.OTHER, text, refusal=not_a_label)
        if (
            identity.form == "registration_id"
            and self._devices.get(identity.registration_id) is None
        ):
            # a bare code that names no device: most likely a board serial, not a label
            unknown = ScanMismatchError(
                f"{text[:70]!r} is not a work order, a badge or the label of a known device",
                remedy="Scan the work order, your badge, or the identity code on a label.",
                scanned=text[:200],
            )
            return Scan(ScanKind.OTHER, text, refusal=unknown)
        verified = self._labels.verify(text, operator=operator)
        return Scan(ScanKind.LABEL, text, registration_id=verified.registration_id)


def choose_batch(batches: BatchService, name: str) -> BatchChoice:
    """The line's batch ``name`` with its product's steps.

    Raises:
        NotFoundError: no such batch, or it is not open.
    """
    progress = batches.progress(name)
    if progress.batch.status != str(BatchStatus.OPEN):
        raise NotFoundError(
            f"batch {name} is {progress.batch.status}, not open",
            remedy="Scan the work order of an open batch, or ask QA to open one.",
        )
    recipe = batches.recipe(progress.batch.product)
    return BatchChoice(
        name,
        recipe.name,
        progress.batch.size,
        progress.provisioned,
        steps_for(
            recipe.attestation,
            lock=recipe.lock,
            operational=recipe.operational_certificate is not None,
        ),
    )
