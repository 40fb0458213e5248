"""Recording and voiding identities: the manifest row and its audit event, in one transaction."""

from __future__ import annotations

from dataclasses import replace

from station.domain.audit import EventDraft, format_time
from station.domain.errors import DuplicateIdentityError, NotFoundError
from station.domain.manifest import IdentityManifest
from station.domain.records import DeviceRecord
from station.domain.states import DeviceStatus, check_device_transition
from station.ports import Clock, UnitOfWork


def record_identity(
    store: UnitOfWork,
    manifest: IdentityManifest,
    *,
    clock: Clock,
    station: str,
    operator: str,
) -> DeviceRecord:
    """Record ``manifest`` as a device, pinned by a ``device.recorded`` audit event.

    Raises:
        DuplicateIdentityError: a live device already holds this registration ID.
    """
    with store:
        existing = store.devices.get(manifest.registration_id)
        if existing is not None and existing.status != DeviceStatus.VOIDED:
            raise DuplicateIdentityError(
                f"registration ID {manifest.registration_id} is already provisioned "
                f"(batch {existing.batch}, {existing.created_at})",
                remedy="Set the board aside for QA: it may be a re-run or a clone.",
                registration_id=manifest.registration_id,
                batch=existing.batch,
            )
        event = store.audit.append(
            EventDraft(
                kind="device.recorded",
                subject=manifest.registration_id,
                payload={
                    "manifest_hash": manifest.digest(),
                    "serial": manifest.board.serial,
                    "batch": manifest.batch,
                    "attestation": str(manifest.attestation),
                    "status": str(manifest.status),
                },
                operator=operator,
                station=station,
            )
        )
        now = format_time(clock.now())
        record = DeviceRecord.from_manifest(
            manifest,
            event_seq=event.seq,
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        store.devices.save(record)
    return record


def void_identity(
    store: UnitOfWork,
    registration_id: str,
    *,
    reason: str,
    clock: Clock,
    station: str,
    operator: str,
) -> DeviceRecord:
    """Mark a recorded identity voided (rework, scrap), keeping it for the record.

    Raises:
        NotFoundError: no such device.
        TransitionError: the device is already voided.
    """
    with store:
        existing = store.devices.get(registration_id)
        if existing is None:
            raise NotFoundError(
                f"no device with registration ID {registration_id}",
                registration_id=registration_id,
            )
        check_device_transition(existing.status, DeviceStatus.VOIDED)
        manifest = replace(existing.manifest(), status=DeviceStatus.VOIDED)
        event = store.audit.append(
            EventDraft(
                kind="device.voided",
                subject=manifest.registration_id,
                payload={"manifest_hash": manifest.digest(), "reason": reason},
                operator=operator,
                station=station,
            )
        )
        record = DeviceRecord.from_manifest(
            manifest,
            event_seq=event.seq,
            created_at=existing.created_at,
            updated_at=format_time(clock.now()),
        )
        store.devices.save(record)
    return record
