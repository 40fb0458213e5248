"""Finding and showing recorded identities (QA's search, ``station devices``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from station.domain.audit import AuditEvent
from station.domain.errors import NotFoundError
from station.domain.records import CertificateRecord, DeviceQuery, DeviceRecord, LabelRecord
from station.ports import UnitOfWork

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class DeviceDetail:
    """Everything QA sees about one device."""

    device: DeviceRecord
    certificates: tuple[CertificateRecord, ...]
    labels: tuple[LabelRecord, ...]
    events: tuple[AuditEvent, ...]


class DeviceService:
    """Read-only queries over recorded identities."""

    def __init__(self, store: UnitOfWork) -> None:
        self._store = store

    def search(self, query: DeviceQuery) -> tuple[list[DeviceRecord], int]:
        """Return one page of matching devices and the total number of matches."""
        return self._store.devices.find(query), self._store.devices.count(query)

    def page(self, query: DeviceQuery) -> list[DeviceRecord]:
        """One page of matching devices (``query.limit`` and ``query.offset``)."""
        return self._store.devices.find(query)

    def count(self, query: DeviceQuery) -> int:
        """How many devices match ``query`` (a full scan of the filter: once per query)."""
        return self._store.devices.count(query)

    def get(self, registration_id: str) -> DeviceRecord | None:
        """The device recorded under ``registration_id``, or ``None``."""
        return self._store.devices.get(registration_id)

    def find(self, key: str) -> list[DeviceRecord]:
        """Find devices by any identifier a person may have at hand.

        ``key`` may be a board serial number, a registration ID, an EK SHA-256 or a certificate
        SHA-256 thumbprint (64 hex digits, with or without colons).
        """
        key = key.strip()
        found: dict[str, DeviceRecord] = {}
        compact = key.replace(":", "")
        queries = [DeviceQuery(serial=key, limit=20), DeviceQuery(registration_id=key, limit=20)]
        if _HEX64.fullmatch(compact):
            queries += [
                DeviceQuery(ek_sha256=compact, limit=20),
                DeviceQuery(cert_thumbprint=compact, limit=20),
            ]
        for query in queries:
            for device in self._store.devices.find(query):
                found[device.registration_id] = device
        return sorted(found.values(), key=lambda d: d.id or 0)

    def show(self, key: str) -> DeviceDetail:
        """Return the detail of the one device ``key`` identifies.

        Raises:
            NotFoundError: nothing matches, or more than one device does.
        """
        matches = self.find(key)
        if not matches:
            raise NotFoundError(
                f"no device matches {key!r}",
                remedy="Check the serial number or registration ID; scan the label again.",
                key=key,
            )
        if len(matches) > 1:
            ids = ", ".join(d.registration_id for d in matches)
            raise NotFoundError(
                f"{key!r} matches {len(matches)} devices ({ids})",
                remedy="Use the registration ID to pick one.",
                key=key,
            )
        device = matches[0]
        return DeviceDetail(
            device=device,
            certificates=tuple(self._store.certificates.for_device(device.registration_id)),
            labels=tuple(self._store.labels.for_device(device.registration_id)),
            events=tuple(self._store.audit.events_for(device.registration_id)),
        )
