"""Batches (work orders): open -> sealed -> exported and/or pushed -> reconciled.

* ``open``/``all``/``progress``: planning and following the line.
* ``seal``: no more devices; the list of (registration ID, manifest hash) is frozen into a seal
  digest kept in the database and pinned by an audit event. Exports and pushes re-check it.
* ``export``: DPS bulk JSON, CSV and the signed batch manifest for the cloud operator.
* ``push``/``reconcile``: into DPS through the outbox (:mod:`station.services.push`).

Who may: opening, sealing, exporting, pushing and reconciling need the QA or admin role.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station.domain.audit import EventDraft, format_time
from station.domain.canonical import sha256_hex
from station.domain.certificates import group_key_text
from station.domain.enrollments import (
    CREDENTIAL_POLICY_FIELD,
    EnrollmentTemplate,
    comparable,
    expected_comparable,
    individual_enrollment,
    names_credential_policy,
    symmetric_key_group,
    x509_ca_group,
)
from station.domain.errors import (
    ConfigError,
    EnrollmentServiceError,
    NotFoundError,
    TransitionError,
    UnresolvedJobsError,
    ValidationError,
)
from station.domain.manifest import Attestation
from station.domain.manifest_signing import seal_digest, seal_line
from station.domain.products import ProductAttestation, ProductRecipe
from station.domain.pushes import (
    PushState,
    PushSummary,
    ReconcileItem,
    ReconcileReport,
    ReconcileStatus,
    ReconcileSubject,
)
from station.domain.records import (
    BatchRecord,
    DeviceQuery,
    DeviceRecord,
    SealRecord,
    StoredManifest,
)
from station.domain.states import BatchStatus, DeviceStatus, check_batch_transition
from station.ports import (
    Clock,
    EnrollmentService,
    ExportFiles,
    ExportSink,
    GroupKeys,
    ManifestSigner,
    ProductCatalog,
    PushOutbox,
    UnitOfWork,
)
from station.services import batch_exports
from station.services.authz import Permission, require
from station.services.push import Pusher, PushProgress, conflicts, reconcile_items
from station.services.ratelimit import RateLimiter

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
EXPORT_FORMATS = ("bulk-json", "csv", "manifest")
_EXPORT_SUFFIXES = {"bulk-json": ".dps-bulk.json", "csv": ".csv", "manifest": ".manifest.jwsl"}
ALREADY_THERE = 409  # DPS's answer to creating a group that exists
_RELEASED = (BatchStatus.SEALED, BatchStatus.EXPORTED, BatchStatus.PUSHED, BatchStatus.RECONCILED)


@dataclass(frozen=True)
class ExportResult:
    """Files one export wrote."""

    batch: str
    files: dict[str, Path]
    devices: int
    group_enrolled: int  # symmetric-key devices, left out of the bulk JSON


@dataclass
class CloudPorts:
    """What the cloud use cases need, opened on first use by the composition root."""

    enrollments: Callable[[], EnrollmentService]
    outbox: Callable[[], PushOutbox]
    group_keys: Callable[[], GroupKeys]
    signer: Callable[[], ManifestSigner]
    exports: Callable[[Path | None, bool], ExportFiles]  # (folder, replace existing files)
    monotonic: Callable[[], float]
    sleep: Callable[[float], None]
    rate_limit_per_minute: int = 1000
    time_scale: float = 1.0
    intermediate_pem: Callable[[], str] = field(default=lambda: "")


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
        store: UnitOfWork,
        products: ProductCatalog,
        *,
        clock: Clock,
        station_id: str,
        cloud: CloudPorts | None = None,
    ) -> None:
        self._store = store
        self._products = products
        self._clock = clock
        self._station = station_id
        self._cloud = cloud

    def open(self, *, name: str, product: str, size: int, operator: str) -> BatchRecord:
        """Open batch ``name`` for ``size`` devices of ``product`` (``operator``: QA or admin).

        Raises:
            ValidationError: bad name or size, or the name is taken.
            NotFoundError: unknown product.
            PermissionDeniedError: the operator may not open batches.
        """
        require(self._store, operator, Permission.OPEN_BATCH)
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
        with self._store:
            if self._store.batches.get(name) is not None:
                raise ValidationError(f"batch {name} already exists", batch=name)
            record = self._store.batches.save(
                BatchRecord(
                    name=name,
                    product=recipe.name,
                    size=size,
                    status=str(BatchStatus.OPEN),
                    created_at=format_time(self._clock.now()),
                )
            )
            self._store.audit.append(
                EventDraft(
                    kind="batch.opened",
                    subject=name,
                    payload={"product": recipe.name, "size": size},
                    operator=operator,
                    station=self._station,
                )
            )
        return record

    def all(self) -> list[BatchRecord]:
        """Every batch, newest first."""
        return self._store.batches.all()

    def get(self, name: str) -> BatchRecord | None:
        """Batch ``name``, or ``None`` when there is none (a scanned work order, say)."""
        return self._store.batches.get(name)

    def product_names(self) -> list[str]:
        """The products a batch can be opened for."""
        return self._products.product_names()

    def recipe(self, product: str) -> ProductRecipe:
        """Product ``product``'s recipe (loaded and checked).

        Raises:
            NotFoundError: no such product; ValidationError: its recipe is invalid.
        """
        return self._products.product(product)

    def check_dps(self) -> None:
        """Ask DPS for an enrollment that does not exist: any answer proves the connection.

        Raises:
            ConfigError: no cloud connection is configured.
            EnrollmentServiceError: DPS cannot be reached or refuses the credentials.
        """
        self._ports().enrollments().get("station-connection-test")

    def progress(self, name: str) -> BatchProgress:
        """Counts of provisioned and voided devices in batch ``name``.

        Raises:
            NotFoundError: no such batch.
        """
        record = self._store.batches.get(name)
        if record is None:
            raise NotFoundError(f"no batch called {name!r}", batch=name)
        return BatchProgress(
            batch=record,
            provisioned=self._store.devices.count(
                DeviceQuery(batch=name, status=str(DeviceStatus.PROVISIONED))
            ),
            voided=self._store.devices.count(
                DeviceQuery(batch=name, status=str(DeviceStatus.VOIDED))
            ),
        )

    # ------------------------------------------------------------------ seal
    def seal(self, name: str, *, operator: str) -> SealRecord:
        """Seal batch ``name``: no more devices; its manifest list is frozen and hashed.

        ``operator`` (QA or admin) is who seals.

        Raises:
            NotFoundError: no such batch.
            TransitionError: the batch is not open.
            UnresolvedJobsError: provisioning jobs (or identities) of the batch are unresolved;
                ``details["jobs"]`` lists them.
            PermissionDeniedError: the operator is not QA or admin.
        """
        with self._store:
            require(self._store, operator, Permission.SEAL_BATCH)
            record = self._batch(name)
            check_batch_transition(BatchStatus(record.status), BatchStatus.SEALED)
            jobs = [job for job in self._store.jobs.open() if job.batch == name]
            unfinished = self._store.devices.count(
                DeviceQuery(batch=name, status=str(DeviceStatus.PROVISIONING))
            )
            if jobs or unfinished:
                listing = [
                    f"job {job.id} slot {job.slot} {job.state} at {job.step}"
                    + (f" ({board})" if (board := job.registration_id or job.board_serial) else "")
                    for job in jobs
                ]
                raise UnresolvedJobsError(
                    f"batch {name} has {len(jobs)} unresolved job(s) and {unfinished} "
                    "identity(ies) still provisioning: " + "; ".join(listing[:20]),
                    remedy="Resume or void each listed job at the station, then seal again.",
                    batch=name,
                    jobs=listing,
                    provisioning=unfinished,
                )
            entries = [
                (row.registration_id, row.manifest_hash)
                for row in self._store.devices.iter_manifests(name, str(DeviceStatus.PROVISIONED))
            ]
            seal = SealRecord(
                batch=name,
                count=len(entries),
                digest=seal_digest(entries),
                sealed_at=format_time(self._clock.now()),
            )
            self._store.batches.save_seal(seal)
            self._store.batches.save(
                BatchRecord(
                    record.name,
                    record.product,
                    record.size,
                    str(BatchStatus.SEALED),
                    record.created_at,
                )
            )
            self._store.audit.append(
                EventDraft(
                    kind="batch.sealed",
                    subject=name,
                    payload={"count": seal.count, "seal_sha256": seal.digest},
                    operator=operator,
                    station=self._station,
                )
            )
        return seal

    def seal_of(self, name: str) -> SealRecord:
        """The seal of batch ``name``, re-checked against the devices now stored.

        Raises:
            TransitionError: the batch is not sealed.
            ValidationError: the batch's devices changed after sealing.
        """
        seal = self._seal(name)
        for _ in self._released(seal):
            pass
        return seal

    def _seal(self, name: str) -> SealRecord:
        """The stored seal of a released batch, not yet checked against its devices."""
        seal = self._store.batches.seal(name)
        record = self._batch(name)
        if seal is None or BatchStatus(record.status) not in _RELEASED:
            raise TransitionError(
                f"batch {name} is not sealed",
                remedy=f"Seal it first: station batch seal {name}",
                batch=name,
            )
        return seal

    def _released(self, seal: SealRecord) -> Iterator[StoredManifest]:
        """The sealed batch's manifests, streamed once, checked as they pass.

        Each manifest must hash to its stored hash (which the seal covers); the seal digest is
        recomputed over the rows as they are yielded, and after the last one a batch that
        changed after sealing raises, so a streamed export is refused before its files are kept.

        Raises:
            ValidationError: a manifest does not match its hash, or the batch's devices changed
                after sealing.
        """
        digest = hashlib.sha256()
        sha256 = hashlib.sha256
        for row in self._store.devices.iter_manifests(seal.batch, str(DeviceStatus.PROVISIONED)):
            if sha256(row.manifest_json.encode("utf-8")).hexdigest() != row.manifest_hash:
                raise ValidationError(
                    f"the stored manifest of {row.registration_id} does not match its hash",
                    remedy="Run 'station db verify'; restore the database from a backup.",
                    registration_id=row.registration_id,
                )
            digest.update(seal_line(row.registration_id, row.manifest_hash))
            yield row
        now = digest.hexdigest()
        if now != seal.digest:
            raise ValidationError(
                f"batch {seal.batch} changed after it was sealed (seal {seal.digest[:12]}, "
                f"now {now[:12]})",
                remedy="Run 'station db verify' and ask QA: a sealed batch must not change.",
                batch=seal.batch,
            )

    def _batch(self, name: str) -> BatchRecord:
        record = self._store.batches.get(name)
        if record is None:
            raise NotFoundError(f"no batch called {name!r}", batch=name)
        return record

    def _devices(self, name: str) -> Iterator[DeviceRecord]:
        """The batch's provisioned devices in recording order (voided ones are not released)."""
        return self._store.devices.iter_batch(name, str(DeviceStatus.PROVISIONED))

    def _ports(self) -> CloudPorts:
        if self._cloud is None:
            raise ConfigError("this station has no cloud connection configured")
        return self._cloud

    def _template(self, recipe: ProductRecipe) -> EnrollmentTemplate:
        return self._products.enrollment_template(recipe.enrollment_template)

    def _advance(
        self,
        record: BatchRecord,
        target: BatchStatus,
        payload: dict[str, Any],
        kind: str,
        operator: str,
    ) -> None:
        current = BatchStatus(record.status)
        with self._store:
            if current != target:
                try:
                    check_batch_transition(current, target)
                except TransitionError:
                    target = current  # e.g. exporting a pushed batch keeps it "pushed"
            self._store.batches.save(
                BatchRecord(
                    record.name, record.product, record.size, str(target), record.created_at
                )
            )
            self._store.audit.append(
                EventDraft(
                    kind=kind,
                    subject=record.name,
                    payload=payload,
                    operator=operator,
                    station=self._station,
                )
            )

    # ------------------------------------------------------------------ export
    def export(
        self,
        name: str,
        *,
        formats: tuple[str, ...] = EXPORT_FORMATS,
        out: Path | None = None,
        force: bool = False,
        operator: str,
    ) -> ExportResult:
        """Write the batch's export files for the cloud operator (``operator``: QA or admin).

        Existing files are replaced only with ``force``; the station's own files never are.

        Raises:
            ValidationError: an unknown format, or the batch changed after sealing.
            TransitionError: the batch is not sealed, or was sealed with no devices.
            PermissionDeniedError: the operator is not QA or admin.
        """
        unknown = sorted(set(formats) - set(EXPORT_FORMATS))
        if unknown or not formats:
            raise ValidationError(
                f"unknown export format(s) {unknown}; choose from {', '.join(EXPORT_FORMATS)}"
            )
        require(self._store, operator, Permission.EXPORT_BATCH)
        record = self._batch(name)
        seal = self._seal(name)
        _require_devices(seal, "export")
        recipe = self._products.product(record.product)
        template = self._template(recipe)
        ports = self._ports()
        files = ports.exports(out, force)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        # one stream of the sealed rows feeds every format; it re-checks each manifest against
        # its hash and, after the last row, the seal, so nothing is kept if the batch changed
        names = {fmt: f"{safe}{_EXPORT_SUFFIXES[fmt]}" for fmt in EXPORT_FORMATS if fmt in formats}
        chain_head = self._store.audit.head()
        signer = ports.signer() if "manifest" in names else None

        def produce(sinks: Mapping[str, ExportSink]) -> None:
            writers: list[batch_exports.FormatWriter] = []
            if "bulk-json" in names:
                writers.append(batch_exports.BulkJsonWriter(sinks[names["bulk-json"]], template))
            if "csv" in names:
                writers.append(batch_exports.CsvWriter(sinks[names["csv"]], template))
            if signer is not None:
                writers.append(
                    batch_exports.SignedManifestWriter(
                        sinks[names["manifest"]],
                        signer,
                        batch=name,
                        product=record.product,
                        station=self._station,
                        sealed_at=seal.sealed_at,
                        signed_at=format_time(self._clock.now()),
                        seal_sha256=seal.digest,
                        chain_head=chain_head,
                    )
                )
            batch_exports.write_rows(self._released(seal), writers)

        paths = files.write_together(list(names.values()), produce)
        written = {fmt: paths[file_name] for fmt, file_name in names.items()}
        groups = self.enrollment_groups(name)
        if groups:
            written["groups"] = files.write(
                f"{safe}.dps-groups.json", [json.dumps(groups, indent=2, sort_keys=True) + "\n"]
            )
        group_enrolled = (
            self._store.devices.count(DeviceQuery(batch=name, status=str(DeviceStatus.PROVISIONED)))
            if recipe.attestation is ProductAttestation.SYMMETRIC_KEY
            else 0
        )
        self._advance(
            record,
            BatchStatus.EXPORTED,
            {
                "formats": sorted(written),
                "files": {k: p.name for k, p in sorted(written.items())},
                "count": seal.count,
                "seal_sha256": seal.digest,
            },
            "batch.exported",
            operator,
        )
        return ExportResult(name, written, seal.count, group_enrolled)

    def enrollment_groups(self, name: str) -> list[dict[str, Any]]:
        """The enrollment groups batch ``name``'s product needs (X.509 CA group, symmetric-key)."""
        record = self._batch(name)
        recipe = self._products.product(record.product)
        template = self._template(recipe)
        operational = recipe.operational_certificate
        common = {
            "batch": name,
            "product": recipe.name,
            "station": self._station,
            "credential_policy": operational.credential_policy if operational else "",
        }
        group_id = re.sub(r"[^a-z0-9-]", "-", recipe.name.lower())
        if recipe.attestation is ProductAttestation.SYMMETRIC_KEY:
            return [symmetric_key_group(f"{group_id}-sym", template, **common)]
        if recipe.attestation is ProductAttestation.X509 and self._cloud is not None:
            pem = self._cloud.intermediate_pem()
            if pem:
                return [
                    x509_ca_group(f"{group_id}-x509", template, ca_certificate_pem=pem, **common)
                ]
        return []

    def push_groups(self, name: str, *, operator: str) -> list[str]:
        """Create (or update) in DPS the enrollment groups batch ``name``'s product needs.

        ``operator`` (QA or admin) is who pushes.

        Returns:
            The group IDs written.

        Raises:
            PermissionDeniedError: the operator is not QA or admin.
            EnrollmentServiceError: DPS refused a group.
        """
        require(self._store, operator, Permission.PUSH_GROUPS)
        groups = self.enrollment_groups(name)
        ports = self._ports()
        pusher = Pusher(ports.enrollments(), ports.outbox(), self._limiter(ports))
        service = ports.enrollments()
        written = []
        for group in groups:
            group_id = str(group["enrollmentGroupId"])
            try:
                answer = pusher.call(service.create_group, group)
            except EnrollmentServiceError as exc:
                if exc.details.get("status") != ALREADY_THERE:
                    raise
                self._check_existing_group(pusher, service, group)
            else:
                _require_policy_kept(group, answer)
            written.append(group_id)
        if written:
            with self._store:
                self._store.audit.append(
                    EventDraft(
                        kind="batch.groups_pushed",
                        subject=name,
                        payload={"groups": written},
                        operator=operator,
                        station=self._station,
                    )
                )
        return written

    def dps_group_key(self, group_id: str, *, operator: str) -> str:
        """The primary key DPS generated for enrollment group ``group_id`` (admins only).

        Read through ``attestationmechanism`` (one DPS operation) and handed back to the caller
        only, to go straight into the HSM: it is never stored, logged or audited.

        Raises:
            PermissionDeniedError: the operator is not an admin.
            NotFoundError: DPS has no such group.
            ValidationError: the group is not a symmetric-key group.
        """
        require(self._store, operator, Permission.READ_DPS_GROUP_KEY)
        ports = self._ports()
        service = ports.enrollments()
        pusher = Pusher(service, ports.outbox(), self._limiter(ports))
        mechanism = pusher.call(service.group_attestation_mechanism, group_id)
        if mechanism is None:
            raise NotFoundError(
                f"DPS has no enrollment group {group_id!r}",
                remedy="Create it with 'station batch groups BATCH' (the group ID is the batch "
                "product's, e.g. 'lab-sym-sym'), or check the name in the DPS portal.",
                group=group_id,
            )
        return group_key_text(mechanism)

    def _check_existing_group(
        self, pusher: Pusher, service: EnrollmentService, group: dict[str, Any]
    ) -> None:
        """A group DPS already holds (a re-run, or a crash after creating it) must be ours.

        Compared as DPS shows it (no keys: the station sends none for symmetric-key groups).

        Raises:
            EnrollmentServiceError: DPS holds a different group under this ID.
        """
        group_id = str(group["enrollmentGroupId"])
        remote = pusher.call(
            service.get_group, group_id, credential_policy=names_credential_policy(group)
        )
        theirs = comparable(remote) if remote is not None else {}
        ours = comparable(group)
        if theirs != ours:
            differences = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise EnrollmentServiceError(
                f"DPS already holds a different enrollment group {group_id} "
                f"({', '.join(differences)} differ)",
                remedy="Check the group in DPS: delete it if it is stale, or change the "
                "product's enrollment template to match it; then run 'batch groups' again.",
                group=group_id,
                differences=differences,
            )

    # ------------------------------------------------------------------ push
    def push(
        self,
        name: str,
        *,
        operator: str,
        progress: Callable[[PushProgress], None] | None = None,
    ) -> PushSummary:
        """Push the batch's individual enrollments into DPS (resumable, exactly once).

        ``operator`` (QA or admin) is who pushes.

        Raises:
            TransitionError: the batch is not sealed.
            ValidationError: the batch changed after sealing.
            EnrollmentServiceError: DPS cannot be reached or refuses the credentials.
            PermissionDeniedError: the operator is not QA or admin.
        """
        require(self._store, operator, Permission.PUSH_BATCH)
        record = self._batch(name)
        _require_devices(self.seal_of(name), "push")
        recipe = self._products.product(record.product)
        template = self._template(recipe)
        ports = self._ports()
        if not self._eligible(recipe, template):
            raise ValidationError(
                f"batch {name} holds symmetric-key devices of {recipe.name}, which enroll through "
                "their enrollment group, not individually",
                remedy=f"Create the group from 'station batch export {name}' (the groups file); "
                'set symmetric_keys = "push" in the enrollment template only if individual '
                "enrollments are really wanted.",
                batch=name,
            )
        outbox = ports.outbox()
        outbox.enqueue(name, (d.registration_id for d in self._devices(name)))
        total = sum(outbox.counts(name).values())
        service = ports.enrollments()
        start_ops = service.operations
        pusher = Pusher(service, outbox, self._limiter(ports))
        body_for = self._body_for(recipe, template)
        pusher.run(name, body_for, total=total, progress=progress)
        entries = list(outbox.entries(name))
        pushed = sum(1 for e in entries if e.state is PushState.PUSHED)
        found = conflicts(entries, lambda rid: body_for(rid)[1])
        failed = {e.registration_id: e.last_error for e in entries if e.state is PushState.FAILED}
        summary = PushSummary(
            batch=name,
            total=total,
            pushed=pushed,
            conflicts=tuple(found),
            failed=failed,
            billable_operations=service.operations - start_ops,
            calls=pusher.counters.calls,
            throttled=pusher.counters.throttled,
            retried=pusher.counters.retried,
        )
        payload = {
            "pushed": pushed,
            "total": total,
            "conflicts": len(found),
            "failed": len(failed),
            "billable_operations": summary.billable_operations,
        }
        if summary.complete and total:
            self._advance(record, BatchStatus.PUSHED, payload, "batch.pushed", operator)
        else:
            with self._store:
                self._store.audit.append(
                    EventDraft(
                        kind="batch.push_incomplete",
                        subject=name,
                        payload=payload,
                        operator=operator,
                        station=self._station,
                    )
                )
        return summary

    def _eligible(self, recipe: ProductRecipe, template: EnrollmentTemplate) -> bool:
        # symmetric-key devices get individual enrollments only if the template says "push"
        return (
            recipe.attestation is not ProductAttestation.SYMMETRIC_KEY
            or template.symmetric_keys == "push"
        )

    def _limiter(self, ports: CloudPorts) -> RateLimiter:
        return RateLimiter(
            ports.rate_limit_per_minute,
            time_scale=ports.time_scale,
            monotonic=ports.monotonic,
            sleep=ports.sleep,
        )

    def _body_for(
        self, recipe: ProductRecipe, template: EnrollmentTemplate
    ) -> Callable[[str], tuple[dict[str, Any], dict[str, Any]]]:
        ports = self._ports()

        def build(registration_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
            device = self._store.devices.get(registration_id)
            if device is None:
                raise ValidationError(f"{registration_id} is no longer recorded")
            manifest = device.manifest()
            keys: tuple[str, str] | None = None
            if (
                manifest.attestation is Attestation.SYMMETRIC_KEY
                and template.symmetric_keys == "push"
            ):
                derived = ports.group_keys().derive(recipe.group_key, registration_id)
                text = base64.b64encode(derived).decode("ascii")
                keys = (text, text)
            body = individual_enrollment(manifest, template, symmetric_keys=keys)
            return body, expected_comparable(manifest, template, body)

        return build

    # ------------------------------------------------------------------ reconcile
    def _reconcile_groups(
        self, name: str, pusher: Pusher, service: EnrollmentService
    ) -> list[ReconcileItem]:
        """The product's enrollment groups compared with DPS's, read so they show the policy."""
        items = []
        for group in self.enrollment_groups(name):
            group_id = str(group["enrollmentGroupId"])
            remote = pusher.call(
                service.get_group, group_id, credential_policy=names_credential_policy(group)
            )
            if remote is None:
                items.append(
                    ReconcileItem(group_id, ReconcileStatus.MISSING, (), ReconcileSubject.GROUP)
                )
                continue
            theirs, ours = comparable(remote), comparable(group)
            differences = tuple(
                sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            )
            status = ReconcileStatus.DIFFERENT if differences else ReconcileStatus.EQUAL
            items.append(ReconcileItem(group_id, status, differences, ReconcileSubject.GROUP))
        return items

    def reconcile(
        self, name: str, *, repush_missing: bool = False, operator: str
    ) -> ReconcileReport:
        """Compare DPS with the batch: equal / missing / different / unexpected extra.

        Args:
            name: the batch.
            operator: who reconciles (QA or admin).
            repush_missing: push the missing ones again (through the outbox), then compare again.

        Raises:
            TransitionError: the batch is not sealed.
            PermissionDeniedError: the operator is not QA or admin.
        """
        require(self._store, operator, Permission.RECONCILE_BATCH)
        record = self._batch(name)
        self.seal_of(name)
        recipe = self._products.product(record.product)
        template = self._template(recipe)
        ports = self._ports()
        service = ports.enrollments()
        start_ops = service.operations
        body_for = self._body_for(recipe, template)
        eligible = self._eligible(recipe, template)
        recorded = {d.registration_id for d in self._devices(name)}
        pusher = Pusher(service, ports.outbox(), self._limiter(ports))

        def compare() -> list[Any]:
            expected = [(rid, body_for(rid)[1]) for rid in sorted(recorded)] if eligible else []
            # read under the api-version that shows the policy the product's enrollments name
            policies = any(names_credential_policy(body) for _, body in expected)
            remote = pusher.every_enrollment(credential_policy=policies)
            return reconcile_items(name, expected, remote, recorded, compared=pusher.compared)

        items = compare()
        repushed = 0
        missing = [i.registration_id for i in items if i.status is ReconcileStatus.MISSING]
        if repush_missing and missing:
            outbox = ports.outbox()
            outbox.enqueue(name, missing)
            outbox.mark(name, missing, PushState.PENDING)
            pusher.run(name, body_for, total=len(missing))
            repushed = len(missing)
            items = compare()
        operational = recipe.operational_certificate
        if operational is not None:
            # the policy may sit on the product's group (symmetric-key and X.509 CA groups)
            items += self._reconcile_groups(name, pusher, service)
        counts: dict[str, int] = {}
        for item in items:
            counts[str(item.status)] = counts.get(str(item.status), 0) + 1
        report = ReconcileReport(
            name,
            tuple(items),
            repushed,
            service.operations - start_ops,
            counts,
            credential_policy=operational.credential_policy if operational else "",
        )
        payload: dict[str, Any] = {
            "counts": counts,
            "repushed": repushed,
            "items_sha256": sha256_hex(repr(items).encode()),
        }
        if report.without_policy:
            payload["without_credential_policy"] = len(report.without_policy)
        if report.clean:
            self._advance(record, BatchStatus.RECONCILED, payload, "batch.reconciled", operator)
        else:
            with self._store:
                self._store.audit.append(
                    EventDraft(
                        kind="batch.reconcile_mismatch",
                        subject=name,
                        payload=payload,
                        operator=operator,
                        station=self._station,
                    )
                )
        return report


def _require_policy_kept(group: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
    """A group created with a credential policy must come back with it.

    DPS may drop a field its api-version does not define (assumed), and such a group's devices
    would never get an operational certificate.

    Raises:
        EnrollmentServiceError: DPS's answer lacks the policy or names another one.
    """
    wanted = group.get(CREDENTIAL_POLICY_FIELD)
    if wanted and answer.get(CREDENTIAL_POLICY_FIELD) != wanted:
        group_id = str(group["enrollmentGroupId"])
        raise EnrollmentServiceError(
            f"DPS created enrollment group {group_id} without its credential policy {wanted}",
            remedy="Its devices would get no operational certificate. Check that the DPS "
            "instance is linked to the Device Registry namespace holding the policy, delete the "
            "group in DPS and push the groups again.",
            group=group_id,
            credential_policy=str(wanted),
        )


def _require_devices(seal: SealRecord, action: str) -> None:
    """Refuse to release a batch sealed empty: it would end "exported" or "pushed" with nothing."""
    if seal.count == 0:
        raise TransitionError(
            f"batch {seal.batch} was sealed with no devices: there is nothing to {action}",
            remedy="Provision into a new batch (a sealed batch takes no more devices).",
            batch=seal.batch,
        )
