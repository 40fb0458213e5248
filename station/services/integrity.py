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
5. every operator row matches the last ``operator.*`` audit event about it; wrong PINs are
   counted only for recorded operators;
6. every batch row: opened by a ``batch.opened`` event with the same product and size, its status
   reached through the matching ``batch.<status>`` event, its seal equal to what the
   ``batch.sealed`` event recorded; every seal belongs to a recorded batch;
7. the secure-element clone index (``device_keys``) names recorded devices;
8. every label row belongs to a recorded device and was counted by a ``label.*`` event; every
   job belongs to a batch (a passed one to a recorded device); every outbox row is a device of
   its batch;
9. given an anchor written outside the database (next to a backup, in a signed manifest), the
   chain still holds that event with that hash (catches a rolled-back WAL or a cut tail).

Before all of that, every row of every table is scanned for columns that cannot be read at all
(bad UTF-8, wrong type, broken JSON, unknown state): such a row is named, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

from station.domain.anchors import ChainAnchor, check_anchor
from station.domain.audit import AuditEvent, verify_chain
from station.domain.canonical import sha256_hex
from station.domain.errors import ValidationError
from station.domain.manifest import Attestation
from station.domain.records import (
    DEVICE_EVENT_KINDS,
    BatchCounts,
    CertificateRecord,
    CertificateStatus,
    DeviceRecord,
    SealRecord,
    index_columns,
)
from station.domain.states import BatchStatus, DeviceStatus, JobState
from station.ports import UnitOfWork

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


def verify_store(
    store: UnitOfWork, *, anchor: ChainAnchor | None = None, max_problems: int = 50
) -> IntegrityReport:
    """Verify the audit chain and cross-references of ``store``.

    Args:
        store: the identity store to check (read only).
        anchor: a chain head written outside the database, which the chain must still reach.
        max_problems: stop collecting after this many problems.
    """
    # the chain's tables are scanned and the chain walked (one core) while this process scans
    # the other tables and walks the devices (the other core)
    chain_walk = store.in_background(partial(walk_chain, anchor=anchor))
    others = [Problem(*row) for row in store.maintenance.damaged_rows(exclude=CHAIN_TABLES)]
    problems = list(others)
    unreadable = {problem.table for problem in problems}

    devices = 0
    installed: dict[str, str] = {}
    x509_live: list[tuple[str, str]] = []  # (registration ID, thumbprint), from the device walk

    def device_checks() -> list[Problem]:
        # The store cross-checks index columns and cited events inside SQLite; Python hashes
        # each manifest. A manifest whose bytes hash to the hash its (chain-pinned) audit event
        # recorded is byte for byte what the station validated and wrote in canonical form, so
        # only a row that fails either check is parsed and checked field by field.
        nonlocal devices
        found: list[Problem] = []
        sha256 = hashlib.sha256
        for row in store.devices.iter_cross_checked():
            devices += 1
            if row.attestation == Attestation.X509 and row.status != DeviceStatus.VOIDED:
                x509_live.append((row.registration_id, row.cert_thumbprint))
            if row.consistent and (
                sha256(row.manifest_json.encode("utf-8")).hexdigest() == row.manifest_hash
            ):
                continue
            device = store.devices.by_id(row.id)
            if device is not None and len(problems) + len(found) < max_problems:
                found.extend(_check_device(device, store.audit.event(device.event_seq)))
        return found

    device_problems = (
        _guard("devices", device_checks)
        if "devices" not in unreadable and len(problems) < max_problems
        else []
    )
    chain = chain_walk()
    problems = [*chain.damaged, *others]  # in the schema's order: the chain's tables first
    unreadable |= {problem.table for problem in chain.damaged}
    if chain.damaged:
        if anchor is not None:
            problems.append(Problem("events", "-", "the anchor cannot be checked: unreadable rows"))
    else:
        problems.extend(chain.problems)
    if len(problems) < max_problems:
        problems.extend(device_problems[: max_problems - len(problems)])
    else:  # as if the walk had not started: the report was full before it
        devices = 0
        x509_live.clear()

    certificates = 0

    def certificate_checks() -> list[Problem]:
        nonlocal certificates
        found: list[Problem] = []
        open_jobs = {job.id for job in store.jobs.open()}
        for cert in store.certificates.iter_all():
            certificates += 1
            if len(problems) + len(found) < max_problems:
                found.extend(_check_certificate(store, cert, chain.issued, open_jobs, installed))
        return found

    for table, check in (
        ("certificates", certificate_checks),
        ("devices", lambda: _check_x509_devices(x509_live, installed)),
        ("operators", lambda: _check_operators(store)),
        ("pin_failures", lambda: _check_pin_failures(store)),
        ("batches", lambda: _check_batches(store)),
        ("batch_counts", lambda: _check_batch_counts(store)),
        ("device_keys", lambda: _check_device_keys(store)),
        ("labels", lambda: _check_labels(store)),
        ("jobs", lambda: _check_jobs(store)),
        ("pushes", lambda: _check_pushes(store)),
    ):
        if table in unreadable or len(problems) >= max_problems:
            continue
        problems.extend(_guard(table, check))
    return IntegrityReport(
        events=chain.events,
        devices=devices,
        certificates=certificates,
        problems=tuple(problems[:max_problems]),
    )


#: the tables the chain walk reads: the events and the head recorded in ``meta``
CHAIN_TABLES = ("meta", "events")


@dataclass(frozen=True)
class ChainWalk:
    """What walking the audit chain found (it may run in another process: plain data)."""

    damaged: tuple[Problem, ...]  # unreadable rows of CHAIN_TABLES: then nothing was walked
    problems: tuple[Problem, ...]
    events: int
    issued: dict[str, tuple[str, bool]]  # certificate serial -> (thumbprint, issued manually)


def walk_chain(store: UnitOfWork, *, anchor: ChainAnchor | None) -> ChainWalk:
    """Scan the chain's tables; if every row reads, walk the chain: links, hashes, head, anchor.

    Every certificate issuance the chain records is noted for the issuance-log check.
    """
    damaged = tuple(Problem(*row) for row in store.maintenance.damaged_rows(CHAIN_TABLES))
    if damaged:
        return ChainWalk(damaged, (), 0, {})
    counter = _Counter()
    problems = _guard("events", lambda: _check_chain(store, counter, anchor))
    return ChainWalk((), tuple(problems), counter.n, counter.issued)


def _guard(table: str, check: Callable[[], list[Problem]]) -> list[Problem]:
    """Run one check; a row that still cannot be decoded is reported, never raised."""
    try:
        return check()
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        return [Problem(table, "-", f"a row cannot be decoded: {type(exc).__name__}: {exc}")]


def _check_chain(store: UnitOfWork, counter: _Counter, anchor: ChainAnchor | None) -> list[Problem]:
    chain_problem = verify_chain(counter.count(store.audit.events()))
    if chain_problem is not None:
        return [Problem("events", f"seq {chain_problem.seq}", chain_problem.reason)]
    problems: list[Problem] = []
    head = store.audit.head()
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
    if anchor is not None:
        event = store.audit.event(anchor.seq)
        reason = check_anchor(
            anchor, event.hash if event else None, last.seq if last is not None else 0
        )
        if reason:
            problems.append(Problem("events", f"seq {anchor.seq}", reason))
    return problems


def _check_certificate(
    store: UnitOfWork,
    cert: CertificateRecord,
    issued_by_serial: dict[str, tuple[str, bool]],
    open_jobs: set[int | None],
    installed: dict[str, str],
) -> list[Problem]:
    row = f"serial {cert.serial_number}"
    thumbprint = pem_thumbprint(cert.certificate_pem)
    if thumbprint is None:
        return [Problem("certificates", row, "stored certificate is not valid PEM")]
    if thumbprint != cert.thumbprint_sha256.lower():
        return [Problem("certificates", row, "thumbprint does not match the stored certificate")]
    issued = issued_by_serial.get(cert.serial_number.upper())
    if issued is None:
        return [Problem("certificates", row, "no audit event records issuing this certificate")]
    if issued[0] != thumbprint:
        return [
            Problem(
                "certificates",
                row,
                "the audit event recorded a different certificate under this serial",
            )
        ]
    if cert.status == CertificateStatus.VOIDED:
        return []
    device_row = store.devices.get(cert.registration_id)
    if cert.status == CertificateStatus.INSTALLED:
        if device_row is None:
            return [
                Problem(
                    "certificates",
                    row,
                    f"installed for {cert.registration_id}, but no such device is recorded",
                )
            ]
        installed[cert.registration_id] = thumbprint
    elif cert.job_id not in open_jobs and device_row is None and not issued[1]:
        return [
            Problem(
                "certificates",
                row,
                "issued but neither installed on a recorded device, voided, "
                "part of an open provisioning job, nor issued manually by an admin",
            )
        ]
    return []


def _check_batches(store: UnitOfWork) -> list[Problem]:
    """A batch row must match its ``batch.*`` events, and its seal the ``batch.sealed`` one."""
    problems: list[Problem] = []
    for batch in store.batches.all():
        events = [e for e in store.audit.events_for(batch.name) if e.kind.startswith("batch.")]
        opened = next((e for e in events if e.kind == "batch.opened"), None)
        if opened is None:
            problems.append(Problem("batches", batch.name, "no audit event records opening it"))
            continue
        wanted = (opened.payload.get("product"), opened.payload.get("size"))
        if wanted != (batch.product, batch.size):
            problems.append(
                Problem(
                    "batches",
                    batch.name,
                    f"row says product {batch.product} size {batch.size}, but audit event "
                    f"{opened.seq} opened it as product {wanted[0]} size {wanted[1]}",
                )
            )
        status = batch.status
        if status != BatchStatus.OPEN and not any(e.kind == f"batch.{status}" for e in events):
            problems.append(
                Problem(
                    "batches",
                    batch.name,
                    f"status is {status}, but no batch.{status} audit event moved it there",
                )
            )
        sealed = [e for e in events if e.kind == "batch.sealed"]
        seal = store.batches.seal(batch.name)
        if sealed and status != BatchStatus.OPEN:
            problems.extend(_check_seal(batch.name, seal, sealed[-1]))
        elif seal is not None and not sealed:
            problems.append(Problem("batch_seals", batch.name, "a seal no audit event recorded"))
    for seal in store.batches.iter_seals():
        if store.batches.get(seal.batch) is None:
            problems.append(Problem("batch_seals", seal.batch, "the seal of no recorded batch"))
    return problems


def _check_batch_counts(store: UnitOfWork) -> list[Problem]:
    """Each batch's kept counts must equal its rows: the room check and the quota trust them."""
    problems: list[Problem] = []
    kept = {counts.batch: counts for counts in store.batches.iter_counts()}
    recounted = {counts.batch: counts for counts in store.batches.recount()}
    for name in sorted(set(kept) | set(recounted)):
        have, rows = kept.get(name, BatchCounts(name)), recounted.get(name, BatchCounts(name))
        if have != rows:
            problems.append(
                Problem(
                    "batch_counts",
                    name,
                    f"kept counts say {have.provisioned} provisioned and {have.certificates} "
                    f"certificates, the rows {rows.provisioned} and {rows.certificates}",
                )
            )
    return problems


def _check_seal(batch: str, seal: SealRecord | None, event: AuditEvent) -> list[Problem]:
    if seal is None:
        return [Problem("batch_seals", batch, f"batch {batch} is sealed but its seal is missing")]
    if (seal.count, seal.digest) != (event.payload.get("count"), event.payload.get("seal_sha256")):
        return [
            Problem(
                "batch_seals",
                batch,
                f"the seal differs from what audit event {event.seq} recorded (edited)",
            )
        ]
    return []


def _check_device_keys(store: UnitOfWork) -> list[Problem]:
    """The secure-element clone index: every entry names a recorded device."""
    problems: list[Problem] = []
    for key, owner in store.devices.iter_keys():
        if store.devices.get(owner) is None:
            problems.append(
                Problem(
                    "device_keys", key, f"the clone index names {owner!r}, which is not recorded"
                )
            )
    return problems


def _check_jobs(store: UnitOfWork) -> list[Problem]:
    """A job belongs to a batch; a passed job formed a recorded device."""
    problems: list[Problem] = []
    for job in store.jobs.iter_all():
        row = f"job {job.id}"
        if store.batches.get(job.batch) is None:
            problems.append(Problem("jobs", row, f"belongs to batch {job.batch!r}, not recorded"))
        elif job.state is JobState.PASSED and store.devices.get(job.registration_id) is None:
            problems.append(
                Problem("jobs", row, f"passed, but device {job.registration_id!r} is not recorded")
            )
    return problems


def _check_pushes(store: UnitOfWork) -> list[Problem]:
    """Every outbox row is a device recorded in that batch."""
    problems: list[Problem] = []
    for batch, registration_id, _ in store.pushes.iter_all():
        device = store.devices.get(registration_id)
        if device is None or device.batch != batch:
            problems.append(
                Problem(
                    "pushes",
                    f"{batch}/{registration_id}",
                    "queued for DPS, but no such device is recorded in that batch",
                )
            )
    return problems


def _check_labels(store: UnitOfWork) -> list[Problem]:
    """Every printed label belongs to a recorded device and was counted by an audit event."""
    problems: list[Problem] = []
    counts: dict[str, int] = {}
    for label in store.labels.iter_all():
        counts[label.registration_id] = counts.get(label.registration_id, 0) + 1
    for registration_id, count in counts.items():
        if store.devices.get(registration_id) is None:
            problems.append(
                Problem("labels", registration_id, "labels printed for a device not recorded")
            )
            continue
        audited = sum(
            e.kind in ("label.printed", "label.reprinted")
            for e in store.audit.events_for(registration_id)
        )
        if audited != count:
            problems.append(
                Problem(
                    "labels",
                    registration_id,
                    f"{count} label row(s), but {audited} label audit event(s)",
                )
            )
    return problems


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


def _check_device(device: DeviceRecord, event: AuditEvent | None) -> list[Problem]:
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


def _check_x509_devices(live: list[tuple[str, str]], installed: dict[str, str]) -> list[Problem]:
    """Every live X.509 device holds an installed certificate of the issuance log."""
    return [
        Problem(
            "devices",
            registration_id,
            "no installed certificate in the issuance log matches this device's certificate",
        )
        for registration_id, thumbprint in live
        if installed.get(registration_id) != thumbprint
    ]


def _check_operators(store: UnitOfWork) -> list[Problem]:
    """An operator row must match what the last operator.* audit event recorded.

    This is what stops a role from being raised, or an account re-enabled, with plain SQL.
    """
    problems = []
    for record in store.operators.all():
        events = [e for e in store.audit.events_for(record.name) if e.kind.startswith("operator.")]
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


def _check_pin_failures(store: UnitOfWork) -> list[Problem]:
    """Wrong PINs are counted for recorded operators only."""
    return [
        Problem("pin_failures", name, "wrong PINs counted for an operator who is not recorded")
        for name, _ in store.operators.iter_pin_failures()
        if store.operators.get(name) is None
    ]


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
