r"""The signed batch manifest: JWS (ES256) records under a signed batch header, and its checker.

File layout (UTF-8, ``\n`` line ends, nothing else)::

    station.batch-manifest/1
    <batch header, JWS compact serialisation>
    <record 0, JWS compact serialisation>
    ...

* The **header**'s protected header carries the signing certificate chain (``x5c``, leaf first);
  its payload is :class:`BatchHeader`: batch, product, station, seal time, signing time, record
  count, the first and last registration IDs, the batch's seal digest and the SHA-256 over the
  record payload digests in order. The leaf must be a manifest-signing certificate (its own
  extended key usage) whose CN is the header's station ID: a device certificate under the same
  root cannot sign a manifest, and one station's manifest key cannot speak for another.
* Each **record** is one JWS whose payload holds its position (``seq``), the registration ID of the
  record before it (``prev``), the batch and the device's identity manifest. Because every record
  names its predecessor, a removed record is named by its successor (or by the header's ``last``),
  and a record moved elsewhere is named because its ``seq`` no longer fits.

Compared with the Microchip secure-element manifest (a JSON array of JWS, each carrying the full
``x5c``), the chain is sent once, the batch itself is signed (so truncation and reordering are
caught, not just edits of a record), and the byte form is strict: the checker re-encodes every
base64url segment and refuses any byte that does not belong, so every single-byte change shows.

Pure: signature checks are injected (:class:`SignatureCheck`), so this module does no I/O and no
cryptography itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from station.domain.canonical import canonical_json, sha256_hex
from station.domain.errors import ValidationError

MANIFEST_MAGIC: Final = "station.batch-manifest/1"
HEADER_SCHEMA: Final = "station.batch-header/1"
RECORD_SCHEMA: Final = "station.batch-record/1"
HEADER_TYPE: Final = "station-batch+jws"
RECORD_TYPE: Final = "station-record+jws"
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


# --------------------------------------------------------------------------- base64url, JWS
def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url strictly: only the canonical encoding of some bytes is accepted.

    Raises:
        ValidationError: characters outside the alphabet, bad length, or non-zero spare bits.
    """
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValidationError("not canonical base64url", value=text[:40])
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValidationError("not canonical base64url", value=text[:40]) from exc
    if b64url(data) != text:  # spare bits set: another text for the same bytes
        raise ValidationError("not canonical base64url", value=text[:40])
    return data


@dataclass(frozen=True)
class CompactJws:
    """A parsed JWS compact serialisation (header and payload decoded, signature raw r||s)."""

    protected: dict[str, Any]
    payload: bytes
    signature: bytes
    signing_input: bytes

    @classmethod
    def parse(cls, text: str) -> CompactJws:
        """Parse ``header.payload.signature`` strictly.

        Raises:
            ValidationError: not three canonical base64url parts, or a header that is not a JSON
                object.
        """
        parts = text.split(".")
        if len(parts) != 3:
            raise ValidationError("a JWS has three dot-separated parts")
        head, body, sig = (b64url_decode(part) for part in parts)
        try:
            protected = json.loads(head)
        except ValueError as exc:
            raise ValidationError("the JWS header is not JSON") from exc
        if not isinstance(protected, dict):
            raise ValidationError("the JWS header is not a JSON object")
        return cls(protected, body, sig, f"{parts[0]}.{parts[1]}".encode("ascii"))

    def json_serialization(self) -> dict[str, str]:
        """The flattened JWS JSON serialisation (RFC 7515 §7.2.2) of the same signature."""
        head, body = self.signing_input.decode("ascii").split(".")
        return {"protected": head, "payload": body, "signature": b64url(self.signature)}


def signing_input(protected: dict[str, Any], payload: bytes) -> bytes:
    """``BASE64URL(header) || '.' || BASE64URL(payload)``, the bytes ES256 signs."""
    return f"{b64url(canonical_json(protected))}.{b64url(payload)}".encode("ascii")


def compact(signing_bytes: bytes, signature: bytes) -> str:
    """Join a signing input and a raw (r||s) signature into a compact JWS."""
    return f"{signing_bytes.decode('ascii')}.{b64url(signature)}"


# --------------------------------------------------------------------------- payload models
@dataclass(frozen=True)
class BatchHeader:
    """What the batch header asserts (its JWS payload)."""

    batch: str
    product: str
    station: str
    sealed_at: str
    signed_at: str
    count: int
    first: str
    last: str
    seal_sha256: str
    records_sha256: str
    # the station's audit-chain head when it signed: an anchor outside its database
    chain_seq: int = 0
    chain_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload."""
        return {
            "schema": HEADER_SCHEMA,
            "batch": self.batch,
            "product": self.product,
            "station": self.station,
            "sealed_at": self.sealed_at,
            "signed_at": self.signed_at,
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "seal_sha256": self.seal_sha256,
            "records_sha256": self.records_sha256,
            "chain_seq": self.chain_seq,
            "chain_hash": self.chain_hash,
        }

    @classmethod
    def from_payload(cls, payload: bytes) -> BatchHeader:
        """Parse a header payload.

        Raises:
            ValidationError: not a batch header.
        """
        data = _json_object(payload)
        if data.get("schema") != HEADER_SCHEMA:
            raise ValidationError("not a station batch header", schema=data.get("schema"))
        try:
            return cls(**{k: v for k, v in data.items() if k != "schema"})
        except TypeError as exc:
            raise ValidationError(f"malformed batch header: {exc}") from exc


def record_payload(seq: int, prev: str, batch: str, manifest: dict[str, Any]) -> bytes:
    """The canonical payload of record ``seq`` (``prev``: the registration ID before it)."""
    return canonical_json(
        {"schema": RECORD_SCHEMA, "seq": seq, "prev": prev, "batch": batch, "manifest": manifest}
    )


def record_payload_from_canonical(seq: int, prev: str, batch: str, manifest_json: bytes) -> bytes:
    """:func:`record_payload` from a manifest already in canonical JSON (as the store keeps it).

    Canonical JSON sorts keys, so the record object can be assembled around the stored bytes
    without parsing and re-serialising the manifest; the result is byte-identical.
    """
    return b"".join(
        (
            b'{"batch":',
            canonical_json(batch),
            b',"manifest":',
            manifest_json,
            b',"prev":',
            canonical_json(prev),
            b',"schema":',
            canonical_json(RECORD_SCHEMA),
            b',"seq":',
            str(int(seq)).encode("ascii"),
            b"}",
        )
    )


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise ValidationError("payload is not JSON") from exc
    if not isinstance(data, dict):
        raise ValidationError("payload is not a JSON object")
    return data


class RecordsDigest:
    """SHA-256 over the record payload digests, in order (what the header's records_sha256 is)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, payload: bytes) -> None:
        """Fold one record payload in."""
        self._hash.update(hashlib.sha256(payload).digest())

    def hexdigest(self) -> str:
        """The digest so far."""
        return self._hash.hexdigest()


def seal_line(registration_id: str, manifest_hash: str) -> bytes:
    r"""One line of the seal digest: ``"<registration id> <manifest hash>\n"``."""
    return f"{registration_id} {manifest_hash}\n".encode()


def seal_digest(entries: Iterable[tuple[str, str]]) -> str:
    r"""The seal digest: SHA-256 over :func:`seal_line` lines."""
    digest = hashlib.sha256()
    for registration_id, manifest_hash in entries:
        digest.update(seal_line(registration_id, manifest_hash))
    return digest.hexdigest()


# --------------------------------------------------------------------------- writing
def manifest_lines(header_jws: str, record_jws: Iterable[str]) -> Iterator[str]:
    r"""The lines of a manifest file, each ending in ``\n``."""
    yield MANIFEST_MAGIC + "\n"
    yield header_jws + "\n"
    for item in record_jws:
        yield item + "\n"


# --------------------------------------------------------------------------- checking
#: ``check(signing_input, raw_signature) -> bool`` with the header's verified leaf key.
SignatureCheck = Callable[[bytes, bytes], bool]


@dataclass(frozen=True)
class TrustedSigner:
    """A manifest signer whose chain, profile (and pin, if any) the verifier accepted."""

    check: SignatureCheck
    station: str  # the station ID its certificate names (its CN)
    fingerprint: str  # SHA-256 of its certificate (hex, upper case)


#: ``trust(x5c DER list) -> TrustedSigner``; raises ValidationError if the chain is not trusted
#: or its leaf is not a manifest-signing certificate.
ChainTrust = Callable[[Sequence[bytes]], TrustedSigner]


@dataclass(frozen=True)
class Finding:
    """One problem found in a manifest file."""

    kind: str  # structure | header | changed | added | removed | reordered
    message: str
    position: int | None = None  # 0-based record position in the file, if any
    registration_id: str = ""


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of checking a manifest file."""

    findings: tuple[Finding, ...]
    header: BatchHeader | None = None
    records: int = 0
    registration_ids: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """Whether the file is exactly what the station signed."""
        return not self.findings and self.header is not None


@dataclass(frozen=True)
class _Record:
    position: int
    seq: int
    prev: str
    batch: str
    registration_id: str
    payload: bytes


def verify_manifest(data: bytes, trust: ChainTrust) -> VerifyReport:
    """Check a manifest file's bytes: structure, header chain and signature, every record.

    Args:
        data: the whole file.
        trust: validates the header's ``x5c`` against the cloud operator's root and returns the
            signature check of the leaf key.

    Returns:
        A report naming every changed, added, removed or reordered record (empty when intact).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return VerifyReport((Finding("structure", "the file is not UTF-8 text"),))
    if not text.endswith("\n"):
        return VerifyReport((Finding("structure", "the file does not end with a newline"),))
    lines = text[:-1].split("\n")
    if lines[0] != MANIFEST_MAGIC:
        return VerifyReport((Finding("structure", f"the first line is not {MANIFEST_MAGIC!r}"),))
    if len(lines) < 2:
        return VerifyReport((Finding("structure", "the batch header is missing"),))
    try:
        head = CompactJws.parse(lines[1])
        if head.protected.get("alg") != "ES256" or head.protected.get("typ") != HEADER_TYPE:
            raise ValidationError("the header is not an ES256 station batch header")
        x5c = head.protected.get("x5c")
        if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
            raise ValidationError("the header carries no certificate chain (x5c)")
        signer = trust([base64.b64decode(c, validate=True) for c in x5c])
        check = signer.check
        if not check(head.signing_input, head.signature):
            raise ValidationError("the batch header signature does not verify")
        header = BatchHeader.from_payload(head.payload)
        if header.station != signer.station:
            raise ValidationError(
                f"the header names station {header.station!r}, but the signing certificate "
                f"belongs to station {signer.station!r}"
            )
    except (ValidationError, binascii.Error) as exc:
        return VerifyReport((Finding("header", f"batch header rejected: {exc}"),))
    findings: list[Finding] = []
    good: list[_Record] = []
    changed_positions: set[int] = set()
    for position, line in enumerate(lines[2:]):
        record = _check_record(position, line, check)
        if isinstance(record, Finding):
            findings.append(record)
            changed_positions.add(position)
        elif record.batch != header.batch:
            findings.append(
                Finding(
                    "added",
                    f"record {position} ({record.registration_id}) belongs to batch "
                    f"{record.batch}, not {header.batch}",
                    position,
                    record.registration_id,
                )
            )
        else:
            good.append(record)
    findings.extend(_sequence_findings(header, good, changed_positions))
    if not findings:
        digest = RecordsDigest()
        for record in good:
            digest.add(record.payload)
        if digest.hexdigest() != header.records_sha256:
            findings.append(Finding("header", "the records do not hash to the header's digest"))
    return VerifyReport(
        tuple(sorted(findings, key=lambda f: (f.position is None, f.position or 0, f.kind))),
        header,
        len(lines) - 2,
        tuple(r.registration_id for r in good),
    )


def _check_record(position: int, line: str, check: SignatureCheck) -> _Record | Finding:
    claimed = _claimed_id(line)
    name = f" (claims {claimed})" if claimed else ""
    try:
        jws = CompactJws.parse(line)
        if jws.protected.get("alg") != "ES256" or jws.protected.get("typ") != RECORD_TYPE:
            raise ValidationError("not an ES256 station record")
        if not check(jws.signing_input, jws.signature):
            raise ValidationError("signature does not verify")
        data = _json_object(jws.payload)
        manifest = data["manifest"]
        record = _Record(
            position=position,
            seq=int(data["seq"]),
            prev=str(data["prev"]),
            batch=str(data["batch"]),
            registration_id=str(manifest["registration_id"]),
            payload=jws.payload,
        )
        if data.get("schema") != RECORD_SCHEMA:
            raise ValidationError("unknown record schema")
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        return Finding("changed", f"record {position}{name} is altered: {exc}", position, claimed)
    return record


def _claimed_id(line: str) -> str:
    # best effort, for naming a damaged record: its payload is untrusted
    parts = line.split(".")
    if len(parts) < 2:
        return ""
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        value = json.loads(raw)["manifest"]["registration_id"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return ""
    return value if isinstance(value, str) else ""


def _sequence_findings(
    header: BatchHeader, good: list[_Record], changed_positions: set[int]
) -> list[Finding]:
    findings: list[Finding] = []
    by_seq: dict[int, _Record] = {}
    unique: list[_Record] = []
    for record in good:
        if not 0 <= record.seq < header.count:
            findings.append(
                Finding(
                    "added",
                    f"record {record.position} ({record.registration_id}) is not part of the "
                    f"signed batch (seq {record.seq} of {header.count})",
                    record.position,
                    record.registration_id,
                )
            )
        elif record.seq in by_seq:
            findings.append(
                Finding(
                    "added",
                    f"record {record.position} ({record.registration_id}) is a duplicate of "
                    f"record {by_seq[record.seq].position}",
                    record.position,
                    record.registration_id,
                )
            )
        else:
            by_seq[record.seq] = record
            unique.append(record)
    keep = _longest_increasing(unique)
    for record in unique:
        if record.position not in keep:
            findings.append(
                Finding(
                    "reordered",
                    f"record {record.registration_id} is at position {record.position}, "
                    f"signed as position {record.seq}",
                    record.position,
                    record.registration_id,
                )
            )
    for seq in range(header.count):
        if seq in by_seq or seq in changed_positions:
            continue  # a damaged record at its own position is reported as changed
        successor = by_seq.get(seq + 1)
        if successor is not None:
            name = successor.prev
        elif seq == header.count - 1:
            name = header.last
        elif seq == 0:
            name = header.first
        else:
            name = ""
        findings.append(
            Finding(
                "removed",
                f"record {seq}{f' ({name})' if name else ''} is missing",
                seq,
                name,
            )
        )
    return findings


def _longest_increasing(records: list[_Record]) -> set[int]:
    """Positions of a longest run of records whose seq increases with position (patience sort)."""
    tails: list[int] = []
    tail_index: list[int] = []
    parent: list[int] = [-1] * len(records)
    for index, record in enumerate(records):
        slot = bisect_left(tails, record.seq)
        if slot == len(tails):
            tails.append(record.seq)
            tail_index.append(index)
        else:
            tails[slot] = record.seq
            tail_index[slot] = index
        parent[index] = tail_index[slot - 1] if slot else -1
    kept: set[int] = set()
    at = tail_index[-1] if tail_index else -1
    while at >= 0:
        kept.add(records[at].position)
        at = parent[at]
    return kept


def payload_digest(payload: bytes) -> str:
    """SHA-256 (hex) of a record payload."""
    return sha256_hex(payload)
