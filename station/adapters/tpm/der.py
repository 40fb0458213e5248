"""A small, tolerant DER reader for the encodings TPM vendors actually ship.

Real EK certificates and vendor roots break strict DER in a few known ways: NV indices padded
past the certificate's end (0xFF or 0x00 fill), ``SET OF`` members out of canonical order in a
multi-valued RDN, and non-minimal ``INTEGER`` encodings. ``cryptography`` refuses all three.
This module reads elements and re-encodes them canonically, noting what was not DER;
:mod:`.cert_normalise` applies it to whole certificates. Signatures are always checked over the
*original* ``tbsCertificate`` bytes (:func:`certificate_parts`).
"""

from __future__ import annotations

from dataclasses import dataclass

_BOOLEAN = 0x01
_SEQUENCE = 0x30
_SET = 0x31
_INTEGER = 0x02
_OID = 0x06
_MAX_DEPTH = 32


class DerError(ValueError):
    """The bytes are not (even loosely) DER."""


@dataclass(frozen=True)
class Tlv:
    """One DER element: tag, content and where it sits in its buffer."""

    tag: int
    content: bytes
    start: int  # offset of the tag byte
    end: int  # offset just past the content

    @property
    def constructed(self) -> bool:
        """Whether the content is itself a list of elements."""
        return bool(self.tag & 0x20)


def read_tlv(data: bytes, offset: int = 0) -> Tlv:
    """Read one element at ``offset`` (single-byte tags, definite lengths).

    Raises:
        DerError: truncated, indefinite or absurd lengths, or multi-byte tags.
    """
    if offset + 2 > len(data):
        raise DerError("truncated element header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DerError("indefinite or oversized length")
        if pos + count > len(data):
            raise DerError("truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise DerError("element runs past the end of the data")
    return Tlv(tag=tag, content=data[pos : pos + length], start=offset, end=pos + length)


def children(content: bytes) -> list[Tlv]:
    """The elements inside a constructed element's content.

    Raises:
        DerError: the content is not a sequence of elements.
    """
    items = []
    offset = 0
    while offset < len(content):
        item = read_tlv(content, offset)
        items.append(item)
        offset = item.end
    return items


def encode_length(length: int) -> bytes:
    """The minimal DER length octets for ``length``."""
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def encode(tag: int, content: bytes) -> bytes:
    """One element with a minimal length."""
    return bytes([tag]) + encode_length(len(content)) + content


def canonical(data: bytes) -> bytes:
    """Re-encode one element canonically: sorted ``SET`` members, minimal integers and lengths.

    Primitive contents (OCTET STRING, BIT STRING, ...) are left as they are, so signatures and
    key bits are untouched.

    Raises:
        DerError: the data is not a well-formed element.
    """
    return canonical_element(read_tlv(data), [], "")


def canonical_element(item: Tlv, notes: list[str], label: str, depth: int = 0) -> bytes:
    """Re-encode ``item`` as DER; append to ``notes`` what was not DER, under ``label``.

    Raises:
        DerError: malformed content, a BOOLEAN that is not one byte, or nesting too deep.
    """
    if depth > _MAX_DEPTH:
        raise DerError("nesting too deep")
    if not minimal_header(item):
        notes.append(f"non-minimal length in {label} normalised")
    if item.tag == _INTEGER:
        value = minimal_integer(item.content)
        if value != item.content:
            notes.append(f"non-minimal INTEGER in {label} normalised")
        return encode(_INTEGER, value)
    if item.tag == _BOOLEAN:
        if len(item.content) != 1:
            raise DerError(f"a BOOLEAN in {label} is not one byte")
        if item.content not in (b"\x00", b"\xff"):
            notes.append(f"BER BOOLEAN TRUE in {label} normalised")
            return encode(_BOOLEAN, b"\xff")
        return encode(_BOOLEAN, item.content)
    if not item.constructed:
        return encode(item.tag, item.content)
    members = [canonical_element(c, notes, label, depth + 1) for c in children(item.content)]
    if item.tag == _SET:
        ordered = sorted(members)
        if ordered != members:
            notes.append(f"non-DER SET ordering in {label} normalised")
        members = ordered
    return encode(item.tag, b"".join(members))


def minimal_header(item: Tlv) -> bool:
    """Whether ``item``'s length octets are the minimal (DER) ones."""
    return item.end - item.start - len(item.content) == 1 + len(encode_length(len(item.content)))


def minimal_integer(content: bytes) -> bytes:
    """An INTEGER's content without redundant leading 0x00 / 0xFF octets."""
    value = content
    while len(value) > 1 and (
        (value[0] == 0x00 and value[1] < 0x80) or (value[0] == 0xFF and value[1] >= 0x80)
    ):
        value = value[1:]
    return value


@dataclass(frozen=True)
class CertificateParts:
    """The three parts of an X.509 certificate, as found in the original bytes."""

    tbs: bytes  # the whole tbsCertificate element, exactly as signed
    algorithm: bytes  # the signatureAlgorithm element
    signature: bytes  # the signature bits (BIT STRING content without the unused-bits byte)


def certificate_parts(der: bytes) -> CertificateParts:
    """Split a certificate into tbsCertificate, signatureAlgorithm and signature.

    Raises:
        DerError: not a three-part SEQUENCE with a BIT STRING signature.
    """
    outer = read_tlv(der)
    if outer.tag != _SEQUENCE:
        raise DerError("a certificate is a SEQUENCE")
    parts = children(outer.content)
    if len(parts) != 3 or parts[0].tag != _SEQUENCE or parts[2].tag != 0x03:
        raise DerError("a certificate has tbsCertificate, signatureAlgorithm and signature")
    if not parts[2].content or parts[2].content[0] != 0:
        raise DerError("the signature BIT STRING must have no unused bits")
    content = outer.content
    return CertificateParts(
        tbs=content[parts[0].start : parts[0].end],
        algorithm=content[parts[1].start : parts[1].end],
        signature=parts[2].content[1:],
    )


def decode_oid(content: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content.

    Raises:
        DerError: empty or truncated.
    """
    if not content:
        raise DerError("empty OID")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise DerError("truncated OID")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def find_oid_values(data: bytes, oid: str) -> list[bytes]:
    """Content of every element that directly follows ``oid`` in a SEQUENCE, anywhere inside.

    Used to pull attributes (e.g. the TPM manufacturer in the SAN's directoryName) out of
    structures ``cryptography`` may refuse to parse. Primitive OCTET STRINGs are searched too,
    because extension values are DER wrapped in OCTET STRINGs.
    """
    found: list[bytes] = []
    _walk(data, oid, found, 0)
    return found


def _walk(data: bytes, oid: str, found: list[bytes], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    try:
        items = children(data)
    except DerError:
        return
    for index, item in enumerate(items):
        if item.tag == _OID and index + 1 < len(items):
            try:
                if decode_oid(item.content) == oid:
                    found.append(items[index + 1].content)
            except DerError:
                pass
        if item.constructed or item.tag == 0x04:
            _walk(item.content, oid, found, depth + 1)
