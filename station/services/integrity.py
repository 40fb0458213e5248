"""``station db verify``: walk the audit chain and every cross-reference, report what is wrong.

Checks, in order:

1. the audit chain: sequence, links and hashes (:func:`station.domain.audit.verify_chain`);
2. the chain head recorded with the last write equals the last stored event (catches a deleted
   tail, which a chain alone cannot show);
3. every device row: its manifest hashes to its ``manifest_hash``, its index columns equal the
   manifest's fields, and the audit event it cites recorded exactly that hash for that device;
4. every certificate in the issuance log was recorded by a ``ca.certificate_issued`` audit event
   with the same thumbprint, and belongs to a recorded device, is voided, belongs to a
   provisioning job that is still open, or was issued by an admin outside any job (``manual``);
   X.509 devices hold an installed certificate;
5. every operator row matches the last ``operator.*`` audit event about it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from station.domain.audit import AuditEvent, verify_chain
from station.domain.canonical import sha256_hex
from station.domain.errors import ValidationError
from station.domain.records import CertificateStatus, DeviceRecord, index_columns
from station.ports import IdentityStore

DEVICE_EVENT_KINDS = frozenset({"device.recorded", "device.updated", "device.voided"})
CERTIFICATE_ISSUED = "ca.certificate_issued"


@dataclass(frozen=True)
class Problem:
    """One inconsistency: where it is and what is wrong."""

    table: str
    row: str  # seq, registration ID or serial number
    reason: str

    def __str__(self) -> str:
        return f"{self.table} {self.row}: {self.reason}"


@dataclass(frozen=True)
class IntegrityReport:
    """The outcome of a verification run."""

    events: int
    devices: int
    certificates: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first problem found (chain problems come first)."""
        return self.problems[0] if self.problems else None


def verify_store(store: IdentityStore, *, max_problems: int = 50) -> IntegrityReport:
    """Verify the audit chain and cross-references of ``store``.

    Args:
        store: the identity store to check (read only).
        max_problems: stop collecting after this many problems.
    """
    problems: list[Problem] = []

    counter = _Counter()
    chain_problem = verify_chain(counter.count(store.events()))
    if chain_problem is not None:
        problems.append(Problem("events", f"seq {chain_problem.seq}", chain_problem.reason))
    else:
        head = store.audit_head()
        last = counter.last
        if head is None and last is not None:
            problems.append(Problem("meta", "audit_head", "events exist but no chain head"))
        elif head is not None and (last is None or head != (last.seq, last.hash)):
            found = f"event {last.seq}" if last else "no events"
            problems.append(
                Problem(
                    "events",
                    f"seq {head[0]}",
                    f"chain head says event {head[0]} is the last one, but the log ends at "
                    f"{found} (events deleted or the head edited)",
                )
            )

    devices = 0
    installed: dict[str, str] = {}
    for device in store.iter_devices():
        devices += 1
        if len(problems) < max_problems:
            problems.extend(_check_device(store, device))

    open_jobs = {job.id for job in store.open_jobs()}
    certificates = 0
    for cert in store.iter_certificates():
        certificates += 1
        if len(problems) >= max_problems:
            continue
        row = f"serial {cert.serial_number}"
        if cert.status not in CertificateStatus.ALL:
            problems.append(Problem("certificates", row, f"unknown status {cert.status!r}"))
            continue
        thumbprint = pem_thumbprint(cert.certificate_pem)
        if thumbprint is None:
            problems.append(Problem("certificates", row, "stored certificate is not valid PEM"))
            continue
        if thumbprint != cert.thumbprint_sha256.lower():
            problems.append(
                Problem("certificates", row, "thumbprint does not match the stored certificate")
            )
            continue
        issued = counter.issued.get(cert.serial_number.upper())
        if issued is None:
            problems.append(
                Problem("certificates", row, "no audit event records issuing this certificate")
            )
            continue
        if issued[0] != thumbprint:
            problems.append(
                Problem(
                    "certificates",
                    row,
                    "the audit event recorded a different certificate under this serial",
                )
            )
            continue
        if cert.status == CertificateStatus.VOIDED:
            continue
        device_row = store.device(cert.registration_id)
        if cert.status == CertificateStatus.INSTALLED:
            if device_row is None:
                problems.append(
                    Problem(
                        "certificates",
                        row,
                        f"installed for {cert.registration_id}, but no such device is recorded",
                    )
                )
            else:
                installed[cert.registration_id] = thumbprint
        elif cert.job_id not in open_jobs and device_row is None and not issued[1]:
            problems.append(
                Problem(
                    "certificates",
                    row,
                    "issued but neither installed on a recorded device, voided, "
                    "part of an open provisioning job, nor issued manually by an admin",
                )
            )

    if len(problems) < max_problems:
        problems.extend(_check_x509_devices(store, installed))
    if len(problems) < max_problems:
        problems.extend(_check_operators(store))
    return IntegrityReport(
        events=counter.n,
        devices=devices,
        certificates=certificates,
        problems=tuple(problems[:max_problems]),
    )


class _Counter:
    """Counts events while passing them through, remembering the last and every issuance."""

    def __init__(self) -> None:
        self.n = 0
        self.last: AuditEvent | None = None
        self.issued: dict[str, tuple[str, bool]] = {}  # serial -> (thumbprint, manual)

    def count(self, events: Iterable[AuditEvent]) -> Iterator[AuditEvent]:
        for event in events:
            self.n += 1
            self.last = event
            if event.kind == CERTIFICATE_ISSUED:
                payload = event.payload
                self.issued[str(payload.get("serial", "")).upper()] = (
                    str(payload.get("thumbprint", "")).lower(),
                    bool(payload.get("manual", False)),
                )
            yield event


def _check_device(store: IdentityStore, device: DeviceRecord) -> list[Problem]:
    row = device.registration_id
    if sha256_hex(device.manifest_json.encode("utf-8")) != device.manifest_hash:
        return [Problem("devices", row, "manifest does not match its manifest_hash (edited)")]
    try:
        manifest = device.manifest()
    except ValidationError as exc:
        return [Problem("devices", row, f"manifest is unreadable: {exc}")]
    if manifest.canonical().decode("utf-8") != device.manifest_json:
        return [Problem("devices", row, "manifest is not in canonical form (edited)")]
    for column, wanted in index_columns(manifest).items():
        stored = getattr(device, column)
        if str(stored) != str(wanted):
            return [
                Problem(
                    "devices",
                    row,
                    f"column {column} is {stored!r} but the manifest says {wanted!r} (edited)",
                )
            ]
    event = store.event(device.event_seq)
    if event is None:
        return [Problem("devices", row, f"cites audit event {device.event_seq}, which is missing")]
    if event.kind not in DEVICE_EVENT_KINDS or event.subject != device.registration_id:
        return [
            Problem(
                "devices",
                row,
                f"cites audit event {device.event_seq}, which is about "
                f"{event.kind} {event.subject!r}, not this device",
            )
        ]
    if event.payload.get("manifest_hash") != device.manifest_hash:
        return [
            Problem(
                "devices",
                row,
                f"manifest_hash differs from the one audit event {device.event_seq} recorded "
                "(the row was changed behind the station's back)",
            )
        ]
    return []


def _check_x509_devices(store: IdentityStore, installed: dict[str, str]) -> list[Problem]:
    problems = []
    for device in store.iter_devices():
        if device.attestation != "x509" or str(device.status) == "voided":
            continue
        if installed.get(device.registration_id) != device.cert_thumbprint:
            problems.append(
                Problem(
                    "devices",
                    device.registration_id,
                    "no installed certificate in the issuance log matches this device's "
                    "certificate",
                )
            )
    return problems


def _check_operators(store: IdentityStore) -> list[Problem]:
    """An operator row must match what the last operator.* audit event recorded.

    This is what stops a role from being raised, or an account re-enabled, with plain SQL.
    """
    problems = []
    for record in store.operators():
        events = [e for e in store.events_for(record.name) if e.kind.startswith("operator.")]
        if not events:
            problems.append(
                Problem("operators", record.name, "no audit event records this operator")
            )
            continue
        last = events[-1].payload
        recorded = (
            last.get("role"),
            last.get("enabled"),
            last.get("has_pin"),
            last.get("has_badge"),
        )
        actual = (str(record.role), record.enabled, bool(record.pin_hash), bool(record.badge_hash))
        if recorded != actual:
            problems.append(
                Problem(
                    "operators",
                    record.name,
                    f"row says role={actual[0]} enabled={actual[1]}, but audit event "
                    f"{events[-1].seq} recorded role={recorded[0]} enabled={recorded[1]} "
                    "(changed behind the station's back)",
                )
            )
    return problems


def pem_thumbprint(pem: str) -> str | None:
    """SHA-256 of the DER inside a PEM certificate, without a crypto library."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    if (
        len(lines) < 3
        or not lines[0].startswith("-----BEGIN")
        or not lines[-1].startswith("-----END")
    ):
        return None
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(der).hexdigest()
