"""The fleet ledger's values and rules: what a station replicates, claims and is told back.

A factory runs several stations, each with its own SQLite store. With ``[fleet]`` configured each
station replicates its audit chain (and the devices, certificates and batches the events are
about) to one PostgreSQL ledger. The ledger keeps every station's chain exactly once and in order
(``(station, seq)`` and ``(station, hash)`` are unique, and a batch must continue the chain it
holds), and checks identities across the fleet: a serial (per product), a registration ID, an EK
hash or a device public key held by two live devices is a :class:`FleetAlarm` naming both
stations, boards and operators. Products in ``online`` mode ask the ledger before a board is
locked (:class:`FleetIdentity` -> :class:`ClaimVerdict`).

Order is the station's sequence number, never its clock: a station whose clock is wrong by hours
replicates correctly, and the ledger shows the skew it measured (:class:`StationSummary`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from station.domain.audit import AuditEvent
from station.domain.errors import DuplicateIdentityError, StationError


class UniquenessMode(StrEnum):
    """When a product's identities are checked across the fleet."""

    ONLINE = "online"  # before the board is locked: a duplicate never leaves the line
    DEFERRED = "deferred"  # on replication: a duplicate raises a fleet alarm


class ClaimKind(StrEnum):
    """The identity keys that must be unique across the fleet."""

    SERIAL = "serial"  # unique per product (two products may share a serial scheme)
    REGISTRATION_ID = "registration_id"
    EK = "ek_sha256"
    DEVICE_KEY = "device_key"
    QUOTA = "quota"  # not a key: a batch went past its fleet-wide quota (alarms only)


#: how each kind is named to a person
CLAIM_LABELS: dict[ClaimKind, str] = {
    ClaimKind.SERIAL: "serial",
    ClaimKind.REGISTRATION_ID: "registration ID",
    ClaimKind.EK: "EK hash",
    ClaimKind.DEVICE_KEY: "device public key",
    ClaimKind.QUOTA: "batch quota",
}


@dataclass(frozen=True)
class FleetPolicy:
    """How this station uses the ledger.

    The uniqueness mode per product, and what an online check does when the ledger is down.
    """

    default_mode: UniquenessMode = UniquenessMode.DEFERRED
    online_products: frozenset[str] = frozenset()
    deferred_products: frozenset[str] = frozenset()
    stop_when_unreachable: bool = False  # online products: stop the line rather than defer

    def mode_for(self, product: str) -> UniquenessMode:
        """The uniqueness mode of ``product``."""
        if product in self.online_products:
            return UniquenessMode.ONLINE
        if product in self.deferred_products:
            return UniquenessMode.DEFERRED
        return self.default_mode


@dataclass(frozen=True)
class FleetIdentity:
    """One board's identity keys, as a station claims them in the ledger."""

    station: str
    product: str
    batch: str
    registration_id: str
    serial: str
    operator: str
    ek_sha256: str = ""
    device_key_sha256: str = ""

    def claims(self) -> tuple[tuple[ClaimKind, str, str], ...]:
        """``(kind, scope, value)`` of every key this identity has, in the ledger's lock order.

        A serial is scoped by product; the other keys are unique across the whole fleet. The
        fixed order keeps two stations claiming overlapping keys from deadlocking.
        """
        keys = [
            (ClaimKind.SERIAL, self.product, self.serial),
            (ClaimKind.REGISTRATION_ID, "", self.registration_id),
            (ClaimKind.EK, "", self.ek_sha256.lower()),
            (ClaimKind.DEVICE_KEY, "", self.device_key_sha256.lower()),
        ]
        return tuple(sorted((kind, scope, value) for kind, scope, value in keys if value))


@dataclass(frozen=True)
class ClaimOwner:
    """Who holds a key in the ledger: a station, its device and the operator who made it."""

    station: str
    registration_id: str
    serial: str
    operator: str
    batch: str = ""

    def describe(self) -> str:
        """``board SERIAL (REG) at STATION by OPERATOR``."""
        who = f" by {self.operator}" if self.operator else ""
        return f"board {self.serial} ({self.registration_id}) at {self.station}{who}"


@dataclass(frozen=True)
class ClaimConflict:
    """A key this board shares with a live device of another owner."""

    kind: ClaimKind
    value: str
    owner: ClaimOwner


@dataclass(frozen=True)
class ClaimVerdict:
    """The ledger's answer to an online claim."""

    conflicts: tuple[ClaimConflict, ...] = ()
    quota_full: bool = False
    quota: int = 0

    @property
    def ok(self) -> bool:
        """True when every key is this board's and the batch has room."""
        return not self.conflicts and not self.quota_full


@dataclass(frozen=True)
class FleetDevice:
    """A device row as the ledger holds it (the station's latest replicated state)."""

    station: str
    registration_id: str
    serial: str
    batch: str
    product: str
    attestation: str
    status: str
    operator: str
    ek_sha256: str
    cert_thumbprint: str
    device_key_sha256: str
    manifest_hash: str
    manifest_json: str
    event_seq: int
    created_at: str
    updated_at: str

    def identity(self) -> FleetIdentity:
        """The identity keys of this device."""
        return FleetIdentity(
            station=self.station,
            product=self.product,
            batch=self.batch,
            registration_id=self.registration_id,
            serial=self.serial,
            operator=self.operator,
            ek_sha256=self.ek_sha256,
            device_key_sha256=self.device_key_sha256,
        )


@dataclass(frozen=True)
class FleetCertificate:
    """An issuance-log entry of a station's CA, as the ledger holds it (no private material)."""

    station: str
    serial_number: str
    registration_id: str
    thumbprint_sha256: str
    profile: str
    status: str
    batch: str
    issued_at: str
    not_after: str


@dataclass(frozen=True)
class FleetBatch:
    """A station's part of a work order."""

    station: str
    name: str
    product: str
    size: int
    status: str
    created_at: str


@dataclass(frozen=True)
class StationCa:
    """A station's intermediate CA certificate (public), so the fleet sees who issues what."""

    subject: str
    fingerprint_sha256: str
    not_after: str
    certificate_pem: str


@dataclass(frozen=True)
class IngestBatch:
    """What a station sends in one ledger transaction: events in order, and the rows they touch.

    ``station_time`` is the station's clock when it sent the batch (only to measure skew) and
    ``head_seq`` its chain head (to show lag); neither orders anything.
    """

    station: str
    events: tuple[AuditEvent, ...]
    devices: tuple[FleetDevice, ...] = ()
    certificates: tuple[FleetCertificate, ...] = ()
    batches: tuple[FleetBatch, ...] = ()
    station_time: str = ""
    head_seq: int = 0
    ca: StationCa | None = None


@dataclass(frozen=True)
class Ack:
    """The last event of a station the ledger holds: everything up to it is replicated."""

    seq: int
    hash: str


@dataclass(frozen=True)
class FleetAlarm:
    """A conflict the ledger found: two live devices share a key, or a batch is over quota."""

    id: int
    kind: ClaimKind
    scope: str
    value: str
    first: ClaimOwner
    second: ClaimOwner
    raised_at: str

    def describe(self) -> str:
        """One line naming the key, both boards, both stations and both operators."""
        label = CLAIM_LABELS.get(self.kind, str(self.kind))
        if self.kind is ClaimKind.QUOTA:
            return (
                f"batch {self.scope} is over its fleet quota of {self.value}: "
                f"{self.second.describe()}"
            )
        return (
            f"duplicate {label} {self.value}: {self.first.describe()} and {self.second.describe()}"
        )


@dataclass(frozen=True)
class StationSummary:
    """One station as the ledger sees it: sync state, lag, clock skew, yield and its CA."""

    station: str
    acked_seq: int
    head_seq: int
    last_sync: str  # the ledger's clock
    clock_skew_s: float  # station clock minus ledger clock at the last sync
    devices: int
    provisioned: int
    voided: int
    certificates: int
    ca_subject: str = ""
    ca_fingerprint: str = ""

    @property
    def lag(self) -> int:
        """Events the station reported but the ledger does not hold yet."""
        return max(self.head_seq - self.acked_seq, 0)

    @property
    def yield_pct(self) -> float:
        """Provisioned devices among the recorded ones (voided count as losses)."""
        done = self.provisioned + self.voided
        return 100.0 * self.provisioned / done if done else 0.0


@dataclass(frozen=True)
class FleetQuery:
    """Filters for a fleet-wide device search (empty: any)."""

    station: str = ""
    batch: str = ""
    product: str = ""
    status: str = ""
    serial: str = ""
    registration_id: str = ""
    ek_sha256: str = ""
    device_key_sha256: str = ""
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class BatchIssuance:
    """Certificates a station's CA issued for one batch."""

    station: str
    batch: str
    issued: int
    installed: int
    voided: int


@dataclass(frozen=True)
class LedgerProblem:
    """Something the ledger holds that does not fit (an edited event, a row off its event)."""

    station: str
    where: str
    problem: str


@dataclass(frozen=True)
class OutboxStatus:
    """The station's side of replication."""

    head_seq: int
    sent_seq: int
    pending: int
    attempts: int
    last_error: str = ""
    last_sent_at: str = ""


@dataclass(frozen=True)
class SyncReport:
    """What one replication pass did."""

    sent: int
    acked: Ack
    pending: int
    error: str = ""
    details: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- errors
class FleetError(StationError):
    """The fleet ledger could not do what was asked."""

    code = "fleet.error"


class FleetUnavailableError(FleetError):
    """The ledger cannot be reached (down, slow, partitioned); the station keeps its outbox."""

    code = "fleet.unavailable"


class FleetNotConfiguredError(FleetError):
    """A fleet command on a station without ``[fleet]``."""

    code = "fleet.not_configured"


class FleetChainError(FleetError):
    """What a station sends does not continue the chain the ledger holds for it."""

    code = "fleet.chain_mismatch"


class FleetDuplicateError(DuplicateIdentityError, FleetError):
    """An online claim found a key held by another station's live device."""

    code = "fleet.duplicate"


class FleetQuotaError(FleetError):
    """The batch's fleet-wide quota is used up."""

    code = "fleet.quota_exceeded"


def duplicate_error(identity: FleetIdentity, verdict: ClaimVerdict) -> FleetError | None:
    """The error that stops a board the ledger refused, or ``None`` when it was accepted."""
    if verdict.conflicts:
        owners: dict[ClaimOwner, list[str]] = {}
        for conflict in verdict.conflicts:
            owners.setdefault(conflict.owner, []).append(CLAIM_LABELS[conflict.kind])
        held = "; ".join(
            f"its {' and '.join(labels)} already "
            f"{'belongs' if len(labels) == 1 else 'belong'} to {owner.describe()}"
            for owner, labels in owners.items()
        )
        return FleetDuplicateError(
            f"board {identity.serial} is a duplicate across the fleet: {held}",
            remedy="Do not ship this board: set it aside for QA. It is a clone or was "
            "provisioned twice; 'station fleet show' names the other board. Nothing was "
            "recorded for it here and it was not locked.",
            registration_id=identity.registration_id,
            serial=identity.serial,
            conflicts=[
                {"kind": str(c.kind), "value": c.value, "station": c.owner.station}
                for c in verdict.conflicts
            ],
        )
    if verdict.quota_full:
        return FleetQuotaError(
            f"batch {identity.batch} reached its fleet-wide quota of {verdict.quota} devices "
            "across all stations",
            remedy="Stop this batch here; an admin raises the quota with 'station fleet quota' "
            "if the work order grew.",
            batch=identity.batch,
            quota=verdict.quota,
        )
    return None


@dataclass(frozen=True)
class FleetDeviceView:
    """Everything the ledger knows about one board across the fleet (``station fleet show``)."""

    key: str
    devices: tuple[FleetDevice, ...]
    events: tuple[tuple[str, AuditEvent], ...]  # (station, event), by station then seq
    alarms: tuple[FleetAlarm, ...]
