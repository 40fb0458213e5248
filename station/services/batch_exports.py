"""What a batch export writes: DPS bulk JSON, CSV, and the signed batch manifest.

Every format is a writer fed the same stream of stored manifests: an export of several files
reads each device row once, parses each manifest at most once (:func:`write_rows`), and the
signed manifest signs its records as they pass, its header (which needs the digest of every
record) put in front at the end.
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

from station.domain.canonical import canonical_json
from station.domain.enrollments import (
    CSV_COLUMNS,
    EnrollmentEncoder,
    EnrollmentTemplate,
    csv_row_of,
)
from station.domain.errors import ValidationError
from station.domain.manifest_signing import (
    HEADER_TYPE,
    RECORD_TYPE,
    BatchHeader,
    RecordsDigest,
    b64url,
    compact,
    manifest_lines,
    record_payload_from_canonical,
    signing_input,
)
from station.domain.records import StoredManifest
from station.ports import ExportSink, ManifestSigner

CHUNK = 10  # enrollments per DPS bulk operation


class FormatWriter(Protocol):
    """One export format, fed every released device in batch order."""

    #: whether :meth:`add` needs the manifest's parsed JSON object
    needs_data: bool

    def add(self, row: StoredManifest, data: dict[str, Any] | None) -> None:
        """Write one device (``data``: its manifest's JSON object, if :attr:`needs_data`)."""
        ...

    def finish(self) -> None:
        """Write what follows the last device."""
        ...


def write_rows(rows: Iterable[StoredManifest], writers: list[FormatWriter]) -> None:
    """Feed every row to every writer (each manifest parsed once, if any writer needs it).

    Raises:
        ValidationError: a stored manifest is not a manifest's JSON object.
    """
    parse = any(writer.needs_data for writer in writers)
    loads = json.loads
    for row in rows:
        try:
            data = loads(row.manifest_json) if parse else None
            for writer in writers:
                writer.add(row, data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(
                f"the stored manifest of {row.registration_id} is malformed ({exc!r})",
                remedy="Run 'station db verify'; restore the database from a backup.",
                registration_id=row.registration_id,
            ) from exc
    for writer in writers:
        writer.finish()


class BulkJsonWriter:
    """A JSON array of DPS ``BulkEnrollmentOperation`` bodies (create, at most 10 each).

    Symmetric-key identities are left out: they enroll through their group and their keys never
    go into a file. The text equals ``json.dumps({"mode": "create", "enrollments": [...]},
    sort_keys=True)`` per operation.
    """

    needs_data = True

    def __init__(self, sink: ExportSink, template: EnrollmentTemplate) -> None:
        self._sink = sink
        self._encode = EnrollmentEncoder(template).encode
        self._chunk: list[str] = []
        self._separator = "\n"
        sink.write("[")

    def add(self, row: StoredManifest, data: dict[str, Any] | None) -> None:
        """Add one device's enrollment (none for a symmetric-key device)."""
        assert data is not None  # needs_data
        body = self._encode(data)
        if body is None:
            return
        self._chunk.append(body)
        if len(self._chunk) == CHUNK:
            self._flush()

    def finish(self) -> None:
        """Close the array."""
        if self._chunk:
            self._flush()
        self._sink.write("\n]\n")

    def _flush(self) -> None:
        enrollments = ", ".join(self._chunk)
        self._sink.write(f'{self._separator}{{"enrollments": [{enrollments}], "mode": "create"}}')
        self._separator = ",\n"
        self._chunk.clear()


class CsvWriter:
    """The CSV export: a header line, then one row per identity with its stored hash."""

    needs_data = True

    def __init__(self, sink: ExportSink, template: EnrollmentTemplate) -> None:
        self._template = template
        self._writer = csv.DictWriter(sink, fieldnames=CSV_COLUMNS, lineterminator="\n")
        self._writer.writeheader()

    def add(self, row: StoredManifest, data: dict[str, Any] | None) -> None:
        """Add one device's row."""
        assert data is not None  # needs_data
        self._writer.writerow(csv_row_of(data, self._template, row.manifest_hash))

    def finish(self) -> None:
        """Nothing follows the last row."""


class SignedManifestWriter:
    """The signed batch manifest: records signed as they pass, the header put in front last.

    The header carries the digest of every record, so it is known only after the last one;
    the records do not depend on it, so nothing is read twice.
    """

    needs_data = False

    def __init__(
        self,
        sink: ExportSink,
        signer: ManifestSigner,
        *,
        batch: str,
        product: str,
        station: str,
        sealed_at: str,
        signed_at: str,
        seal_sha256: str,
        chain_head: tuple[int, str] | None = None,
    ) -> None:
        """Start a manifest in ``sink``, signed by ``signer``.

        Args:
            sink: the manifest file.
            signer: the manifest key.
            batch: the batch name, with ``product``, ``station`` and times for the header.
            product: see ``batch``.
            station: see ``batch``.
            sealed_at: see ``batch``.
            signed_at: see ``batch``.
            seal_sha256: the seal digest recorded when the batch was sealed.
            chain_head: the audit chain's ``(seq, hash)`` now, signed into the header as an
                anchor (``station db verify --anchor MANIFEST``).
        """
        self._sink = sink
        self._signer = signer
        self._header = BatchHeader(
            batch=batch,
            product=product,
            station=station,
            sealed_at=sealed_at,
            signed_at=signed_at,
            count=0,
            first="",
            last="",
            seal_sha256=seal_sha256,
            records_sha256="",
            chain_seq=chain_head[0] if chain_head else 0,
            chain_hash=chain_head[1] if chain_head else "",
        )
        self._record_header = b64url(canonical_json({"alg": "ES256", "typ": RECORD_TYPE}))
        self._digest = RecordsDigest()
        self._count = 0
        self._first = self._last = ""

    def add(self, row: StoredManifest, data: dict[str, Any] | None) -> None:
        """Sign and write one record."""
        payload = record_payload_from_canonical(
            self._count, self._last, self._header.batch, row.manifest_json.encode("utf-8")
        )
        self._digest.add(payload)
        signed = f"{self._record_header}.{b64url(payload)}".encode("ascii")
        self._sink.write(compact(signed, self._signer.sign(signed)) + "\n")
        self._first = self._first or row.registration_id
        self._last = row.registration_id
        self._count += 1

    def finish(self) -> None:
        """Sign the header and put it (after the magic line) in front of the records."""
        header = replace(
            self._header,
            count=self._count,
            first=self._first,
            last=self._last,
            records_sha256=self._digest.hexdigest(),
        )
        x5c = [base64.b64encode(der).decode("ascii") for der in self._signer.chain_der()]
        head_input = signing_input(
            {"alg": "ES256", "typ": HEADER_TYPE, "x5c": x5c}, canonical_json(header.to_dict())
        )
        header_jws = compact(head_input, self._signer.sign(head_input))
        self._sink.prepend("".join(manifest_lines(header_jws, ())))
