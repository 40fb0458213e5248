"""The fleet ledger's use cases: replicate, check uniqueness online, and look across stations.

* :class:`FleetReplicator` sends the station's audit events, in order, with the devices,
  certificates and batches they are about, through the outbox (``fleet_outbox`` in SQLite). It
  asks the ledger where this station stands first, so a crash anywhere (before or after the
  ledger committed) resumes without loss or duplicate. A ledger that is down only leaves the
  events queued.
* :class:`FleetGuard` is the online uniqueness check the provisioning flow calls before it locks
  a board (products in ``online`` mode); ``deferred`` products are checked on replication.
* :class:`FleetViews` answers the fleet-wide questions: devices, one board, stations (sync, lag,
  yield, CA), alarms, quotas, issuance per station, and one export per work order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

from station.domain.audit import AuditEvent, EventDraft, format_time
from station.domain.canonical import canonical_json
from station.domain.errors import NotFoundError, StationError
from station.domain.fleet import (
    Ack,
    BatchIssuance,
    FleetAlarm,
    FleetBatch,
    FleetCertificate,
    FleetChainError,
    FleetDevice,
    FleetDeviceView,
    FleetError,
    FleetIdentity,
    FleetPolicy,
    FleetQuery,
    FleetUnavailableError,
    IngestBatch,
    LedgerProblem,
    OutboxStatus,
    StationCa,
    StationSummary,
    SyncReport,
    UniquenessMode,
    duplicate_error,
)
from station.domain.records import BatchRecord, CertificateRecord, DeviceRecord
from station.ports import Clock, ExportFiles, FleetLedger, FleetOutbox, UnitOfWork
from station.services.authz import Permission, require

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class FleetReplicator:
    """Replicates one station's store to the ledger, exactly once and in order."""

    def __init__(
        self,
        *,
        store: UnitOfWork,
        outbox: FleetOutbox,
        ledger: FleetLedger,
        clock: Clock,
        station_id: str,
        key_hash: Callable[[str], str],
        station_ca: Callable[[], StationCa | None] = lambda: None,
        batch_size: int = 500,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._ledger = ledger
        self._clock = clock
        self._station = station_id
        self._key_hash = key_hash
        self._station_ca = station_ca
        self._batch_size = max(batch_size, 1)

    def sync(self, *, max_batches: int = 0) -> SyncReport:
        """Send everything queued (or ``max_batches`` batches); never raises for a down ledger.

        Raises:
            FleetChainError: the ledger and this station disagree about the station's own
                history (a database restored from an older backup, an edited chain).
            IntegrityError: a queued event changed in the station database.
        """
        self._outbox.enqueue_new()
        sent = 0
        ack = Ack(0, "")
        try:
            ack = self._ledger.acked(self._station)
            self._check_local(ack)
            self._outbox.mark_sent_through(ack.seq)  # the ledger committed, the station died
            batches = 0
            while True:
                events = self._outbox.pending(self._batch_size)
                ack = self._ledger.ingest(self._batch(events))
                self._outbox.mark_sent_through(ack.seq)
                sent += len(events)
                batches += 1
                if not events or (max_batches and batches >= max_batches):
                    break
        except FleetUnavailableError as exc:
            self._outbox.note_failure(exc.message)
            return SyncReport(sent, ack, self._outbox.status().pending, error=exc.message)
        return SyncReport(sent, ack, self._outbox.status().pending)

    def status(self) -> OutboxStatus:
        """The station's side: head, last sent, pending, attempts, last error."""
        self._outbox.enqueue_new()
        return self._outbox.status()

    def _check_local(self, ack: Ack) -> None:
        if ack.seq == 0:
            return
        local = self._store.audit.event(ack.seq)
        if local is None or local.hash != ack.hash:
            head = self._store.audit.head()
            raise FleetChainError(
                f"the ledger holds this station's events up to {ack.seq}, but the station's "
                + (
                    f"database ends at event {head[0] if head else 0}"
                    if local is None
                    else f"event {ack.seq} differs from it"
                )
                + ": the database was restored from an older backup or edited",
                remedy="Stop provisioning on this station; an admin compares 'station db verify' "
                "with 'station fleet verify' before replication resumes.",
                station=self._station,
                seq=ack.seq,
            )

    def _batch(self, events: list[AuditEvent]) -> IngestBatch:
        """The events and a snapshot of every device, certificate and batch they touch."""
        last_seq = events[-1].seq if events else 0
        devices: dict[str, FleetDevice] = {}
        certificates: dict[str, FleetCertificate] = {}
        batches: dict[str, FleetBatch] = {}
        for event in events:
            if event.kind.startswith("device."):
                record = self._store.devices.get(event.subject)
                # a row changed by a later event travels with that event's batch
                if record is not None and record.event_seq <= last_seq:
                    devices[record.registration_id] = self._device(record)
                for cert in self._store.certificates.for_device(event.subject):
                    certificates[cert.serial_number] = self._certificate(cert)
            serial = event.payload.get("serial") if "certificate" in event.kind else None
            if isinstance(serial, str):
                cert_record = self._store.certificates.get(serial)
                if cert_record is not None:
                    certificates[cert_record.serial_number] = self._certificate(cert_record)
            if event.kind.startswith("batch."):
                batch = self._store.batches.get(event.subject)
                if batch is not None:
                    batches[batch.name] = self._batch_row(batch)
        head = self._store.audit.head()
        return IngestBatch(
            station=self._station,
            events=tuple(events),
            devices=tuple(devices.values()),
            certificates=tuple(certificates.values()),
            batches=tuple(batches.values()),
            station_time=format_time(self._clock.now()),
            head_seq=head[0] if head else 0,
            ca=self._station_ca(),
        )

    def _device(self, record: DeviceRecord) -> FleetDevice:
        manifest = record.manifest()
        key = ""
        if manifest.x509 is not None and manifest.x509.certificate_pem:
            try:
                key = self._key_hash(manifest.x509.certificate_pem)
            except (ValueError, StationError):
                key = ""  # 'station db verify' names a manifest whose certificate is unreadable
        return FleetDevice(
            station=self._station,
            registration_id=record.registration_id,
            serial=record.serial,
            batch=record.batch,
            product=record.product,
            attestation=record.attestation,
            status=str(record.status),
            operator=manifest.operator,
            ek_sha256=record.ek_sha256,
            cert_thumbprint=record.cert_thumbprint,
            device_key_sha256=key,
            manifest_hash=record.manifest_hash,
            manifest_json=record.manifest_json,
            event_seq=record.event_seq,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )

    def _certificate(self, record: CertificateRecord) -> FleetCertificate:
        return FleetCertificate(
            station=self._station,
            serial_number=record.serial_number,
            registration_id=record.registration_id,
            thumbprint_sha256=record.thumbprint_sha256,
            profile=record.profile,
            status=record.status,
            batch=record.batch,
            issued_at=record.issued_at,
            not_after=record.not_after,
        )

    def _batch_row(self, record: BatchRecord) -> FleetBatch:
        return FleetBatch(
            station=self._station,
            name=record.name,
            product=record.product,
            size=record.size,
            status=str(record.status),
            created_at=record.created_at,
        )


class FleetGuard:
    """The online uniqueness check, run before a board is locked."""

    def __init__(self, ledger: Callable[[], FleetLedger], policy: FleetPolicy) -> None:
        self._ledger = ledger
        self._policy = policy

    def mode_for(self, product: str) -> UniquenessMode:
        """The uniqueness mode of ``product``."""
        return self._policy.mode_for(product)

    def check(self, identity: FleetIdentity) -> str:
        """Claim the board's keys in the ledger for an ``online`` product; return a note.

        Raises:
            FleetDuplicateError: another station's live device holds one of the keys.
            FleetQuotaError: the batch's fleet-wide quota is used up.
            FleetUnavailableError: the ledger is unreachable and the policy says stop.
        """
        if self._policy.mode_for(identity.product) is UniquenessMode.DEFERRED:
            return "fleet check deferred to replication"
        try:
            verdict = self._ledger().claim(identity)
        except FleetUnavailableError as exc:
            if self._policy.stop_when_unreachable:
                raise FleetUnavailableError(
                    f"product {identity.product} needs the fleet ledger's uniqueness check "
                    f"before locking, and the ledger is unreachable: {exc.message}",
                    remedy="Leave the board in its slot and retry when the ledger is back; the "
                    "board was not locked and nothing was recorded.",
                    product=identity.product,
                ) from exc
            return "fleet ledger unreachable: checked on replication instead"
        error = duplicate_error(identity, verdict)
        if error is not None:
            raise error
        return "unique across the fleet"


class FleetViews:
    """Fleet-wide queries and the ledger's administration."""

    def __init__(
        self, ledger: FleetLedger, store: Callable[[], UnitOfWork], *, station_id: str = ""
    ) -> None:
        self._ledger = ledger
        self._store = store  # opened only by what is audited here (setting a quota)
        self._station = station_id

    def install(self) -> None:
        """Create the ledger's tables (idempotent)."""
        self._ledger.install_schema()

    def devices(self, query: FleetQuery) -> list[FleetDevice]:
        """One page of devices across the fleet."""
        return self._ledger.devices(query)

    def find(self, key: str) -> list[FleetDevice]:
        """Devices whose serial, registration ID, EK hash or device key hash is ``key``."""
        key = key.strip()
        compact = key.replace(":", "").lower()
        queries = [FleetQuery(serial=key, limit=50), FleetQuery(registration_id=key, limit=50)]
        if _HEX64.fullmatch(compact):
            queries += [
                FleetQuery(ek_sha256=compact, limit=50),
                FleetQuery(device_key_sha256=compact, limit=50),
            ]
        found: dict[tuple[str, str], FleetDevice] = {}
        for query in queries:
            for device in self._ledger.devices(query):
                found[(device.station, device.registration_id)] = device
        return [found[k] for k in sorted(found)]

    def show(self, key: str) -> FleetDeviceView:
        """Every station's record of the board ``key`` names, its events and its alarms.

        Raises:
            NotFoundError: no station replicated a device with that key.
        """
        devices = self.find(key)
        if not devices:
            raise NotFoundError(
                f"no station replicated a device with serial, registration ID, EK hash or "
                f"device key {key!r}",
                remedy="Check the key; a station that has not synced yet shows its own devices "
                "with 'station devices show' ('station fleet stations' shows its lag).",
                key=key,
            )
        events = tuple(
            (device.station, event)
            for device in devices
            for event in self._ledger.device_events(device.station, device.registration_id)
        )
        mine = {(d.station, d.registration_id) for d in devices}
        alarms = tuple(
            alarm
            for alarm in self._ledger.alarms(limit=10_000)
            if (alarm.first.station, alarm.first.registration_id) in mine
            or (alarm.second.station, alarm.second.registration_id) in mine
        )
        return FleetDeviceView(key=key, devices=tuple(devices), events=events, alarms=alarms)

    def stations(self) -> list[StationSummary]:
        """Each station's last sync, lag, clock skew, yield, certificates and CA."""
        return self._ledger.stations()

    def alarms(self, limit: int = 100) -> list[FleetAlarm]:
        """Conflicts, newest first."""
        return self._ledger.alarms(limit=limit)

    def set_quota(self, batch: str, limit: int, *, operator: str) -> None:
        """Set (0: remove) the fleet-wide device quota of a work order (admins only, audited).

        The ledger is changed first and the station's audit event written after it: holding
        the station's write lock across a network call would make the line wait for it.

        Raises:
            PermissionDeniedError: ``operator`` is not an enabled admin of this station.
            FleetError: the ledger refused (its role may not set quotas) or is unreachable.
        """
        store = self._store()
        require(store, operator, Permission.SET_FLEET_QUOTA)
        self._ledger.set_quota(batch, limit)
        store.audit.append(
            EventDraft(
                kind="fleet.quota_set",
                subject=batch,
                payload={"batch": batch, "limit": limit},
                operator=operator,
                station=self._station,
            )
        )

    def quota(self, batch: str) -> int:
        """A work order's fleet-wide quota (0: none)."""
        return self._ledger.quota(batch)

    def issuance(self, batch: str = "") -> list[BatchIssuance]:
        """Certificates each station's CA issued, per batch."""
        return self._ledger.issuance(batch)

    def verify(self) -> list[LedgerProblem]:
        """Every station's chain in the ledger and every device row against its event."""
        return self._ledger.verify()

    def export_batch(self, batch: str, files: ExportFiles) -> tuple[str, int]:
        """Write one JSON export of a work order across every station; returns (path, count).

        The file is deterministic: devices by station then registration ID, canonical JSON.

        Raises:
            NotFoundError: no station replicated a device of this batch.
        """
        per_station = self._ledger.batch_stations(batch)
        count = sum(per_station.values())
        if not count:
            raise NotFoundError(
                f"no station replicated a device of batch {batch}",
                remedy="Check the batch name; 'station fleet stations' shows stations that "
                "have not synced yet.",
                batch=batch,
            )
        chunks = self._export_chunks(batch, count, sorted(per_station))
        path = files.write(f"{batch}.fleet.json", chunks)
        return str(path), count

    def _export_chunks(self, batch: str, count: int, stations: list[str]) -> Iterator[str]:
        # keys in canonical (sorted) order: batch, count, devices, stations
        yield canonical_json({"batch": batch, "count": count}).decode()[:-1] + ',"devices":['
        for index, device in enumerate(self._ledger.batch_devices(batch)):
            row = dict(vars(device))  # a shallow copy: asdict deep-copies every string
            manifest = row.pop("manifest_json")
            try:
                json.loads(manifest)
            except ValueError as exc:
                raise FleetError(
                    f"the ledger's manifest of {device.registration_id} at {device.station} is "
                    "not JSON",
                    remedy="Run 'station fleet verify': the row was edited in the ledger.",
                    station=device.station,
                    registration_id=device.registration_id,
                ) from exc
            # the manifest is the station's canonical JSON already: spliced in at its sorted
            # place ("manifest" sorts just before "manifest_hash") instead of parsed and dumped
            text = canonical_json(row).decode()
            cut = text.index('"manifest_hash":')
            yield ("," if index else "") + f'{text[:cut]}"manifest":{manifest},{text[cut:]}'
        yield '],"stations":' + canonical_json(stations).decode() + "}\n"
