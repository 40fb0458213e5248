"""Rows of the identity store as frozen value objects (what the Store port reads and writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from station.domain.manifest import IdentityManifest
from station.domain.states import DeviceStatus, JobState


@dataclass(frozen=True)
class DeviceRecord:
    """A device row: the canonical manifest plus the columns the station searches by.

    The index columns are copies of manifest fields; ``station db verify`` checks they agree.
    """

    registration_id: str
    serial: str
    batch: str
    product: str
    attestation: str
    status: DeviceStatus
    ek_sha256: str
    cert_thumbprint: str
    manifest_json: str
    manifest_hash: str
    event_seq: int
    created_at: str
    updated_at: str
    id: int | None = None

    @classmethod
    def from_manifest(
        cls, manifest: IdentityManifest, *, event_seq: int, created_at: str, updated_at: str
    ) -> DeviceRecord:
        """Build the row for ``manifest``, recorded by audit event ``event_seq``."""
        return cls(
            **index_columns(manifest),
            manifest_json=manifest.canonical().decode("utf-8"),
            manifest_hash=manifest.digest(),
            event_seq=event_seq,
            created_at=created_at,
            updated_at=updated_at,
        )

    def manifest(self) -> IdentityManifest:
        """Parse the stored manifest."""
        return IdentityManifest.from_json(self.manifest_json)


#: the audit events a device row may cite (the one that wrote its current manifest)
DEVICE_EVENT_KINDS = frozenset({"device.recorded", "device.updated", "device.voided"})


class CrossChecked(NamedTuple):
    """A device row as ``db verify`` walks it, with the store's verdict on its consistency.

    A tuple, not a record: a million of them are made. ``consistent`` is ``True`` when the
    store found the index columns equal to the manifest's fields and the cited audit event a
    device event about this row that recorded its manifest hash (``False``: doubtful, or the
    store did not look).
    """

    id: int
    registration_id: str
    attestation: str
    status: str
    cert_thumbprint: str
    manifest_json: str
    manifest_hash: str
    consistent: bool


class StoredManifest(NamedTuple):
    """A device's manifest as stored: what exports stream (a tuple, so a million stay cheap)."""

    registration_id: str
    manifest_hash: str
    manifest_json: str


def index_columns(manifest: IdentityManifest) -> dict[str, Any]:
    """The searchable columns a device row copies from its manifest."""
    return {
        "registration_id": manifest.registration_id,
        "serial": manifest.board.serial,
        "batch": manifest.batch,
        "product": manifest.product,
        "attestation": str(manifest.attestation),
        "status": manifest.status,
        "ek_sha256": manifest.ek_sha256,
        "cert_thumbprint": manifest.certificate_thumbprint,
    }


class CertificateStatus(StrEnum):
    """States of an issuance-log entry."""

    ISSUED = "issued"  # signed and logged; not yet confirmed on the board
    INSTALLED = "installed"  # written to the board and read back
    VOIDED = "voided"  # never reached a board, or superseded by rework


@dataclass(frozen=True)
class CertificateRecord:
    """One entry of the issuance log: every certificate the station's CA ever signed."""

    serial_number: str  # upper-case hex, as DPS shows it
    registration_id: str
    thumbprint_sha256: str
    certificate_pem: str
    not_before: str
    not_after: str
    profile: str
    status: str
    issued_at: str
    batch: str = ""
    job_id: int | None = None
    void_reason: str = ""
    id: int | None = None


@dataclass(frozen=True)
class JobRecord:
    """One provisioning attempt on one slot, persisted before each side effect."""

    slot: str
    batch: str
    state: JobState
    step: str
    created_at: str
    updated_at: str
    board_serial: str = ""
    registration_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class BatchRecord:
    """A work order: devices of one product provisioned together."""

    name: str
    product: str
    size: int
    status: str
    created_at: str
    id: int | None = None


@dataclass(frozen=True)
class DeviceQuery:
    """Filters for finding devices. Empty strings mean "any"."""

    batch: str = ""
    status: str = ""
    serial: str = ""
    registration_id: str = ""
    ek_sha256: str = ""
    cert_thumbprint: str = ""
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class SchemaStatus:
    """Which migrations the database has, lacks, and has but this station does not know."""

    applied: tuple[str, ...]
    pending: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def is_current(self) -> bool:
        """Whether the database is exactly at this station's schema."""
        return not self.pending and not self.unknown


class Role(StrEnum):
    """What an operator may do. Technicians provision; QA reprints and reworks; admins manage."""

    TECHNICIAN = "technician"
    QA = "qa"
    ADMIN = "admin"


@dataclass(frozen=True)
class OperatorRecord:
    """A person who uses the station. Secrets are stored only as slow hashes."""

    name: str
    role: Role
    enabled: bool
    created_at: str
    # kept out of repr: a PIN hash in a log is an offline guess away from the PIN
    pin_hash: str = field(default="", repr=False)
    badge_hash: str = field(default="", repr=False)
    id: int | None = None


class LabelKind(StrEnum):
    """A device's first label, or a further copy (QA, with a reason)."""

    PRINT = "print"
    REPRINT = "reprint"


@dataclass(frozen=True)
class LabelRecord:
    """One entry of the print log (prints and reprints)."""

    registration_id: str
    template: str
    printer: str
    kind: str  # a LabelKind value, as stored
    operator: str
    printed_at: str
    reason: str = ""
    id: int | None = None


@dataclass(frozen=True)
class BatchCounts:
    """A batch's running counts, kept by the store with every device and certificate write.

    The admission's room check and the CA's quota read these at every board: counting the
    batch's rows instead would grow with the batch (milliseconds per board at 100,000).
    """

    batch: str
    provisioned: int = 0  # devices of the batch in status provisioned
    certificates: int = 0  # issuance-log entries of the batch, in any status


@dataclass(frozen=True)
class SealRecord:
    """What sealing a batch froze: how many devices and the digest of their manifest list."""

    batch: str
    count: int
    digest: str
    sealed_at: str
