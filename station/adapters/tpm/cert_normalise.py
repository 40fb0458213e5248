"""Normalise the DER deviations real TPM vendors ship, naming each one.

``cryptography`` reads strict DER only. Vendor EK certificates and roots deviate in a few known,
harmless ways; this module finds the certificate inside what an NV index holds and re-encodes it
as DER so its fields can be read, and says what it changed (for the verdict):

* the TCG stored-certificate header in front of the certificate (PC Client NV format);
* NV padding (0xFF or 0x00 fill) after the certificate;
* an explicitly encoded DEFAULT (``critical FALSE`` in an extension, ``cA FALSE`` in
  basicConstraints, ``version v1``), as in Intel PTT EK certificates;
* ``SET OF`` members out of canonical order (multi-valued names, Nuvoton roots);
* non-minimal INTEGERs and lengths, BER booleans (older issuer certificates);
* an RSAES-OAEP SubjectPublicKeyInfo (TPM 1.2-style EK certificates), read as rsaEncryption.

Normalising only serves parsing. Signatures are always verified over the certificate's original
``tbsCertificate`` bytes (:func:`station.adapters.tpm.der.certificate_parts`), so a certificate
whose signature only holds over some re-encoding is refused. Anything else that is not DER,
trailing bytes that are not padding included, stays an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from station.adapters.tpm.der import (
    DerError,
    Tlv,
    canonical_element,
    children,
    decode_oid,
    encode,
    minimal_header,
    read_tlv,
)

_BOOLEAN = 0x01
_INTEGER = 0x02
_BIT_STRING = 0x03
_OCTET_STRING = 0x04
_NULL = 0x05
_OID = 0x06
_SEQUENCE = 0x30
_SET = 0x31
_VERSION = 0xA0
_EXTENSIONS = 0xA3

_RSA_ENCRYPTION = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1
_OAEP = "1.2.840.113549.1.1.7"
_BASIC_CONSTRAINTS = "2.5.29.19"
#: TCG PC Client: TCG_PCCLIENT_STORED_CERT tag, certType 0 (full certificate).
_STORED_CERT = b"\x10\x01\x00"
_FULL_CERT = b"\x10\x02"

_EXTENSION_NAMES = {
    "2.5.29.9": "subjectDirectoryAttributes",
    "2.5.29.14": "subjectKeyIdentifier",
    "2.5.29.15": "keyUsage",
    "2.5.29.17": "subjectAltName",
    "2.5.29.19": "basicConstraints",
    "2.5.29.31": "cRLDistributionPoints",
    "2.5.29.32": "certificatePolicies",
    "2.5.29.35": "authorityKeyIdentifier",
    "2.5.29.37": "extKeyUsage",
    "1.3.6.1.5.5.7.1.1": "authorityInfoAccess",
}
_TBS_FIELDS = (
    "serial number",
    "signature algorithm",
    "issuer name",
    "validity",
    "subject name",
    "public key",
)


@dataclass(frozen=True)
class Normalised:
    """A certificate as found (``original``) and as DER (``der``), with what was changed."""

    original: bytes  # the certificate element exactly as stored (header and padding removed)
    der: bytes  # the DER re-encoding, for parsing only
    deviations: tuple[str, ...]  # one phrase per deviation, in certificate order


def extract_certificate(data: bytes) -> tuple[bytes, list[str]]:
    """Find the certificate element in NV or file contents: TCG header and padding removed.

    Raises:
        DerError: no complete element, an inconsistent TCG header, or trailing bytes that are
            not NV padding.
    """
    notes: list[str] = []
    body = data
    if body.startswith(_STORED_CERT) and len(body) >= 5:
        size = int.from_bytes(body[3:5], "big")
        if len(body) < 5 + size:
            raise DerError(
                f"the TCG stored-certificate header announces {size} bytes, {len(body) - 5} follow"
            )
        rest, body = body[5 + size :], body[5 : 5 + size]
        if body.startswith(_FULL_CERT):
            body = body[2:]
        notes.append("TCG stored-certificate header removed")
        _check_padding(rest, notes)
    element = read_tlv(body)
    _check_padding(body[element.end :], notes)
    return body[: element.end], notes


def _check_padding(rest: bytes, notes: list[str]) -> None:
    if not rest:
        return
    fill = rest[0]
    if fill not in (0x00, 0xFF) or rest.count(fill) != len(rest):
        raise DerError(f"{len(rest)} bytes after the certificate are not NV padding")
    notes.append(f"{len(rest)} bytes of NV padding ({fill:#04x}) ignored")


def normalise_certificate(data: bytes) -> Normalised:
    """Find the certificate in ``data`` and re-encode it as DER, naming each deviation.

    Raises:
        DerError: not a certificate, even read tolerantly (the message says why).
    """
    original, notes = extract_certificate(data)
    outer = read_tlv(original)
    if outer.tag != _SEQUENCE:
        raise DerError("a certificate is a SEQUENCE")
    parts = children(outer.content)
    if len(parts) != 3 or parts[0].tag != _SEQUENCE or parts[2].tag != _BIT_STRING:
        raise DerError("a certificate has tbsCertificate, signatureAlgorithm and signature")
    tbs = _tbs(parts[0], notes)
    algorithm = canonical_element(parts[1], notes, "outer signature algorithm")
    der = encode(_SEQUENCE, tbs + algorithm + encode(_BIT_STRING, parts[2].content))
    _note_length(outer, notes, "certificate")
    if der != original and not notes:
        notes.append("non-DER encoding normalised")
    return Normalised(original=original, der=der, deviations=tuple(dict.fromkeys(notes)))


def _tbs(item: Tlv, notes: list[str]) -> bytes:
    fields = children(item.content)
    out: list[bytes] = []
    index = 0
    if fields and fields[0].tag == _VERSION:
        version = children(fields[0].content)
        if [v.tag for v in version] == [_INTEGER] and not version[0].content.strip(b"\0"):
            notes.append("explicit DEFAULT version v1 normalised")
        else:
            out.append(canonical_element(fields[0], notes, "version"))
        index = 1
    if len(fields) < index + len(_TBS_FIELDS):
        raise DerError("the tbsCertificate is missing fields")
    for label, field in zip(_TBS_FIELDS, fields[index:], strict=False):
        if label == "public key":
            out.append(_spki(field, notes))
        else:
            out.append(canonical_element(field, notes, label))
    for field in fields[index + len(_TBS_FIELDS) :]:
        if field.tag == _EXTENSIONS:
            out.append(_extensions(field, notes))
        else:
            out.append(canonical_element(field, notes, "unique identifier"))
    _note_length(item, notes, "tbsCertificate")
    return encode(_SEQUENCE, b"".join(out))


def _spki(item: Tlv, notes: list[str]) -> bytes:
    parts = children(item.content) if item.tag == _SEQUENCE else []
    if len(parts) == 2 and parts[0].tag == _SEQUENCE:
        algorithm = children(parts[0].content)
        if algorithm and algorithm[0].tag == _OID and decode_oid(algorithm[0].content) == _OAEP:
            notes.append("RSAES-OAEP public key (TPM 1.2 style) read as rsaEncryption")
            rsa = encode(_SEQUENCE, _RSA_ENCRYPTION + encode(_NULL, b""))
            return encode(_SEQUENCE, rsa + canonical_element(parts[1], notes, "public key"))
    return canonical_element(item, notes, "public key")


def _extensions(item: Tlv, notes: list[str]) -> bytes:
    wrapper = children(item.content)
    if len(wrapper) != 1 or wrapper[0].tag != _SEQUENCE:
        raise DerError("the extensions field is not one SEQUENCE")
    out = []
    for number, extension in enumerate(children(wrapper[0].content), start=1):
        out.append(_extension(number, extension, notes))
    return encode(_EXTENSIONS, encode(_SEQUENCE, b"".join(out)))


def _extension(number: int, item: Tlv, notes: list[str]) -> bytes:
    parts = children(item.content) if item.tag == _SEQUENCE else []
    shapes = [p.tag for p in parts]
    if shapes not in ([_OID, _OCTET_STRING], [_OID, _BOOLEAN, _OCTET_STRING]):
        raise DerError(f"extension {number} is not an OID, an optional BOOLEAN and an OCTET STRING")
    oid = decode_oid(parts[0].content)
    label = f"extension {number} ({_EXTENSION_NAMES.get(oid, oid)})"
    out = [encode(_OID, parts[0].content)]
    if len(parts) == 3:
        critical = parts[1].content
        if critical == b"\x00":
            notes.append(f"explicit DEFAULT in {label}: critical FALSE normalised")
        else:
            out.append(canonical_element(parts[1], notes, label))
    out.append(encode(_OCTET_STRING, _extension_value(oid, parts[-1].content, notes, label)))
    return encode(_SEQUENCE, b"".join(out))


def _extension_value(oid: str, value: bytes, notes: list[str], label: str) -> bytes:
    # The value is DER inside an OCTET STRING; cryptography parses it when the extension is
    # read. A value that is not one element is left as it is, for cryptography to judge.
    try:
        inner = read_tlv(value)
        if inner.end != len(value):
            return value
        if oid == _BASIC_CONSTRAINTS and inner.tag == _SEQUENCE:
            fields = children(inner.content)
            if fields and fields[0].tag == _BOOLEAN and fields[0].content == b"\x00":
                notes.append(f"explicit DEFAULT in {label}: cA FALSE normalised")
                rest = b"".join(canonical_element(f, notes, label) for f in fields[1:])
                return encode(_SEQUENCE, rest)
        return canonical_element(inner, notes, label)
    except DerError:
        return value


def _note_length(item: Tlv, notes: list[str], label: str) -> None:
    if not minimal_header(item):
        notes.append(f"non-minimal length in {label} normalised")
