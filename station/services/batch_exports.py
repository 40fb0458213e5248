"""What a batch export writes: DPS bulk JSON, CSV, and the signed batch manifest (streamed)."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from station.domain.canonical import canonical_json
from station.domain.enrollments import CSV_COLUMNS, EnrollmentTemplate, csv_row, export_enrollment
from station.domain.manifest import IdentityManifest
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
from station.ports import ManifestSigner

CHUNK = 10

#: yields (registration ID, canonical manifest JSON) in batch order
Manifests = Callable[[], Iterator[tuple[str, bytes]]]


def bulk_json(manifests: Iterable[IdentityManifest], template: EnrollmentTemplate) -> Iterator[str]:
    """A JSON array of DPS ``BulkEnrollmentOperation`` bodies (create, at most 10 each).

    Symmetric-key identities are left out: they enroll through their group and their keys never
    go into a file.
    """
    yield "["
    first = True
    chunk: list[dict[str, Any]] = []

    def flush() -> str:
        text = json.dumps({"mode": "create", "enrollments": chunk}, sort_keys=True)
        chunk.clear()
        return ("\n" if first else ",\n") + text

    for manifest in manifests:
        body = export_enrollment(manifest, template)
        if body is None:
            continue
        chunk.append(body)
        if len(chunk) == CHUNK:
            yield flush()
            first = False
    if chunk:
        yield flush()
    yield "\n]\n"


def csv_lines(
    manifests: Iterable[tuple[IdentityManifest, str]], template: EnrollmentTemplate
) -> Iterator[str]:
    """The CSV export: a header line, then one row per (identity, stored manifest hash)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    yield buffer.getvalue()
    for manifest, digest in manifests:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(csv_row(manifest, template, manifest_sha256=digest))
        yield buffer.getvalue()


def signed_manifest(
    manifests: Manifests,
    signer: ManifestSigner,
    *,
    batch: str,
    product: str,
    station: str,
    sealed_at: str,
    signed_at: str,
    seal_sha256: str,
    chain_head: tuple[int, str] | None = None,
) -> Iterator[str]:
    """The lines of the signed batch manifest (two passes: digest, then sign and write).

    Args:
        manifests: yields (registration ID, canonical manifest JSON) in batch order (called
            twice).
        signer: the manifest key.
        batch: the batch name, with ``product``, ``station`` and times for the header.
        product: see ``batch``.
        station: see ``batch``.
        sealed_at: see ``batch``.
        signed_at: see ``batch``.
        seal_sha256: the seal digest recorded when the batch was sealed.
        chain_head: the audit chain's ``(seq, hash)`` now, signed into the header as an anchor
            (``station db verify --anchor MANIFEST``).
    """
    digest = RecordsDigest()
    count = 0
    first = last = ""
    for seq, (registration_id, manifest_json) in enumerate(manifests()):
        digest.add(record_payload_from_canonical(seq, last, batch, manifest_json))
        first = first or registration_id
        last = registration_id
        count = seq + 1
    header = BatchHeader(
        batch=batch,
        product=product,
        station=station,
        sealed_at=sealed_at,
        signed_at=signed_at,
        count=count,
        first=first,
        last=last,
        seal_sha256=seal_sha256,
        records_sha256=digest.hexdigest(),
        chain_seq=chain_head[0] if chain_head else 0,
        chain_hash=chain_head[1] if chain_head else "",
    )
    x5c = [base64.b64encode(der).decode("ascii") for der in signer.chain_der()]
    head_input = signing_input(
        {"alg": "ES256", "typ": HEADER_TYPE, "x5c": x5c}, canonical_json(header.to_dict())
    )
    header_jws = compact(head_input, signer.sign(head_input))
    record_header = b64url(canonical_json({"alg": "ES256", "typ": RECORD_TYPE}))

    def records() -> Iterator[str]:
        prev = ""
        for seq, (registration_id, manifest_json) in enumerate(manifests()):
            payload = record_payload_from_canonical(seq, prev, batch, manifest_json)
            data = f"{record_header}.{b64url(payload)}".encode("ascii")
            prev = registration_id
            yield compact(data, signer.sign(data))

    yield from manifest_lines(header_jws, records())
