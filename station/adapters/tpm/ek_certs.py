"""EK certificates: tolerant parsing, key comparison with the EK, chain check against anchors.

Trust model (keylime's, described in templates/trust/README.md): every certificate found in the
trust locations is a trust anchor, roots and vendor intermediates alike. An EK certificate is
trusted when an anchor whose subject equals its issuer verifies its signature. Signatures are
checked over the certificate's original ``tbsCertificate`` bytes, so vendor certificates that
``cryptography`` only reads after canonical re-encoding (:mod:`.der`) still verify.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from station.adapters.tpm.cert_normalise import extract_certificate, normalise_certificate
from station.adapters.tpm.der import (
    DerError,
    certificate_parts,
    children,
    decode_oid,
    find_oid_values,
    read_tlv,
)
from station.adapters.tpm.public import parse_public
from station.adapters.tpm.wire import WireError
from station.domain.products import EkCertificateResult
from station.domain.tpm import EkCertificateCheck, vendor_name

log = logging.getLogger(__name__)

TPM_MANUFACTURER_OID = "2.23.133.2.1"
_CA_ISSUERS_OID = "1.3.6.1.5.5.7.48.2"
_MANUFACTURER = x509.ObjectIdentifier(TPM_MANUFACTURER_OID)
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)
_IMPORTED_FROM = re.compile(rb"^Source: (.+)$", re.M)  # written by the trust store's import
_CERT_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "1.3.14.3.2.26": hashes.SHA1(),
    "2.16.840.1.101.3.4.2.4": hashes.SHA224(),
    "2.16.840.1.101.3.4.2.1": hashes.SHA256(),
    "2.16.840.1.101.3.4.2.2": hashes.SHA384(),
    "2.16.840.1.101.3.4.2.3": hashes.SHA512(),
}
_RSA_PKCS1: dict[str, hashes.HashAlgorithm] = {
    "1.2.840.113549.1.1.5": hashes.SHA1(),
    "1.2.840.113549.1.1.14": hashes.SHA224(),
    "1.2.840.113549.1.1.11": hashes.SHA256(),
    "1.2.840.113549.1.1.12": hashes.SHA384(),
    "1.2.840.113549.1.1.13": hashes.SHA512(),
}
_ECDSA: dict[str, hashes.HashAlgorithm] = {
    "1.2.840.10045.4.1": hashes.SHA1(),
    "1.2.840.10045.4.3.1": hashes.SHA224(),
    "1.2.840.10045.4.3.2": hashes.SHA256(),
    "1.2.840.10045.4.3.3": hashes.SHA384(),
    "1.2.840.10045.4.3.4": hashes.SHA512(),
}
_RSA_PSS = "1.2.840.113549.1.1.10"
#: What cryptography raises for a certificate field it cannot read (it parses fields lazily).
PARSE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


class MalformedCertificate(ValueError):
    """The bytes are not a certificate, even read tolerantly."""


@dataclass(frozen=True)
class LoadedCertificate:
    """A certificate read tolerantly: fields from a DER copy, signature from the original."""

    original: bytes  # the certificate element as stored (TCG header and NV padding removed)
    cert: x509.Certificate  # parsed from the DER re-encoding
    deviations: tuple[str, ...] = ()  # what was normalised to read it (empty: it was DER)
    origin: str = ""  # where it was loaded from (trust anchors: the file)

    @property
    def canonical_subject(self) -> bytes:
        """The subject Name, DER."""
        return self.cert.subject.public_bytes()

    @property
    def canonical_issuer(self) -> bytes:
        """The issuer Name, DER."""
        return self.cert.issuer.public_bytes()

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate as stored, lower-case hex."""
        return hashlib.sha256(self.original).hexdigest()


def load_certificate(data: bytes, *, origin: str = "") -> LoadedCertificate:
    """Read one certificate from DER (TCG header and NV padding allowed) or PEM.

    Raises:
        MalformedCertificate: with the reason.
    """
    raw = bytes(data)
    match = _PEM.search(raw)
    if match is not None:
        try:
            raw = base64.b64decode(b"".join(match.group(1).split()), validate=True)
        except ValueError as exc:
            raise MalformedCertificate("the PEM block is not valid base64") from exc
    try:
        original, notes = extract_certificate(raw)
        cert = _strict(original)
        if cert is not None:  # DER already: nothing to normalise
            return LoadedCertificate(original, cert, tuple(notes), origin)
        found = normalise_certificate(raw)
    except DerError as exc:
        raise MalformedCertificate(f"not an X.509 certificate ({exc})") from exc
    try:
        cert = _parse(found.der)
    except PARSE_ERRORS as exc:
        raise MalformedCertificate(f"not a usable X.509 certificate ({exc})") from exc
    return LoadedCertificate(
        original=found.original, cert=cert, deviations=found.deviations, origin=origin
    )


def _strict(der: bytes) -> x509.Certificate | None:
    """The certificate if cryptography reads all of it as it is (strict DER), else None."""
    try:
        cert = _parse(der)
        _ = cert.extensions
    except PARSE_ERRORS:
        return None
    return cert


def _parse(der: bytes) -> x509.Certificate:
    """Parse, and make cryptography read what it parses lazily, so an unusable field fails here.

    Raises:
        PARSE_ERRORS: a name, the key or the validity cannot be read.
    """
    with warnings.catch_warnings():
        # cryptography warns about oddities (a zero serial number, a country name that is not
        # two letters); the verdict is what reports on a certificate.
        warnings.simplefilter("ignore")
        cert = x509.load_der_x509_certificate(der)
        cert.public_key()
        _ = cert.subject, cert.issuer, cert.serial_number
        _ = cert.not_valid_before_utc, cert.not_valid_after_utc
    return cert


def serial_hex(cert: x509.Certificate) -> str:
    """The serial number in hex (zero or negative ones, a vendor oddity, without a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return format(cert.serial_number, "x")


def _certificate_blobs(data: bytes) -> list[bytes]:
    if b"-----BEGIN" in data:
        return [match.group(0) for match in _PEM.finditer(data)]
    return [data]


class TrustAnchors:
    """Certificates trusted to sign EK certificates, read from files and directories.

    Only CERTIFICATE blocks are read; other PEM blocks (such as a lab CA's key next to its
    certificate) are ignored. Unreadable certificates are logged and skipped.
    """

    def __init__(self, sources: Iterable[Path]) -> None:
        self.sources = tuple(sources)
        self.anchors: list[LoadedCertificate] = []
        self.skipped: list[str] = []
        self._by_subject: dict[bytes, list[LoadedCertificate]] | None = None
        self._indexed = 0
        for source in self.sources:
            files = (
                sorted(p for p in source.rglob("*") if p.suffix.lower() in _CERT_SUFFIXES)
                if source.is_dir()
                else [source]
                if source.is_file()
                else []
            )
            for path in files:
                self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.skipped.append(f"{path}: {exc.strerror}")
            return
        imported = _IMPORTED_FROM.search(data.split(b"-----BEGIN", 1)[0])
        origin = str(path)
        if imported is not None:
            origin += f" (imported from {imported.group(1).decode('utf-8', 'replace').strip()})"
        for blob in _certificate_blobs(data):
            try:
                self.anchors.append(load_certificate(blob, origin=origin))
            except MalformedCertificate as exc:
                self.skipped.append(f"{path}: {exc}")
                log.warning("trust anchor %s skipped: %s", path, exc)

    def issuers_of(self, cert: LoadedCertificate) -> list[LoadedCertificate]:
        """Anchors whose subject equals ``cert``'s issuer."""
        index = self._by_subject
        if index is None or self._indexed != len(self.anchors):
            # built aside and swapped in whole: slot threads may share one set of anchors
            index = {}
            count = len(self.anchors)
            for anchor in self.anchors[:count]:
                index.setdefault(anchor.canonical_subject, []).append(anchor)
            self._by_subject, self._indexed = index, count
        return list(index.get(cert.canonical_issuer, []))


#: A file modified this recently is read again on every call: file times move in clock ticks,
#: so an edit of the same size within one tick would not change what :func:`_listing` sees.
_SETTLED_S = 2.0
_ANCHORS: dict[tuple[Path, ...], tuple[tuple[object, ...], TrustAnchors]] = {}
_ANCHORS_LOCK = threading.Lock()


def _listing(sources: tuple[Path, ...]) -> tuple[tuple[object, ...], bool]:
    """The files the anchors of ``sources`` come from, with their identities.

    Also whether every file is older than :data:`_SETTLED_S` (only then may the result be kept).
    """
    found: list[object] = []
    settled = True
    now = time.time()
    for source in sources:
        files = (
            sorted(p for p in source.rglob("*") if p.suffix.lower() in _CERT_SUFFIXES)
            if source.is_dir()
            else [source]
        )
        for path in files:
            try:
                status = path.stat()
            except OSError:
                found.append((str(path), None))
                continue
            found.append((str(path), status.st_ino, status.st_size, status.st_mtime_ns))
            settled = settled and now - status.st_mtime > _SETTLED_S
    return tuple(found), settled


def cached_anchors(sources: Iterable[Path]) -> TrustAnchors:
    """The :class:`TrustAnchors` of ``sources``, parsed again only when a file under them changed.

    Every TPM board checks its EK certificate against the same anchors; parsing them costs about
    1 ms per file. Adding, removing or editing a certificate file changes the listing, so an
    import is seen by the next board. The anchors returned are shared: read them only.
    """
    key = tuple(sources)
    listing, settled = _listing(key)
    with _ANCHORS_LOCK:
        known = _ANCHORS.get(key)
    if known is not None and known[0] == listing:
        return known[1]
    anchors = TrustAnchors(key)
    if settled:
        with _ANCHORS_LOCK:
            _ANCHORS[key] = (listing, anchors)
    return anchors


def verify_signature(cert: LoadedCertificate, issuer: LoadedCertificate) -> bool:
    """Whether ``issuer``'s key signed ``cert`` (over the original tbsCertificate bytes)."""
    try:
        parts = certificate_parts(cert.original)
        algorithm = children(read_tlv(parts.algorithm).content)
        oid = decode_oid(algorithm[0].content)
        key = issuer.cert.public_key()
        if oid in _RSA_PKCS1 and isinstance(key, rsa.RSAPublicKey):
            key.verify(parts.signature, parts.tbs, padding.PKCS1v15(), _RSA_PKCS1[oid])
            return True
        if oid == _RSA_PSS and isinstance(key, rsa.RSAPublicKey):
            digest, salt = _pss_parameters(algorithm[1].content if len(algorithm) > 1 else b"")
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=salt)
            key.verify(parts.signature, parts.tbs, pss, digest)
            return True
        if oid in _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(parts.signature, parts.tbs, ec.ECDSA(_ECDSA[oid]))
            return True
    except (InvalidSignature, DerError, ValueError, IndexError):
        return False
    return False


def _pss_parameters(content: bytes) -> tuple[hashes.HashAlgorithm, int]:
    digest: hashes.HashAlgorithm = hashes.SHA1()
    salt = 20
    for item in children(content):
        inner = children(item.content)
        if item.tag == 0xA0 and inner:
            digest = _HASHES[decode_oid(children(inner[0].content)[0].content)]
        elif item.tag == 0xA2 and inner:
            salt = int.from_bytes(inner[0].content, "big")
    return digest, salt


def ek_spki(ek: bytes) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a marshaled TPM2B_PUBLIC.

    Raises:
        ValueError: not a TPM2B_PUBLIC of an RSA or ECC key.
    """
    try:
        key = parse_public(ek).public_key()
    except WireError as exc:
        raise ValueError(f"not a usable TPM2B_PUBLIC ({exc})") from exc
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def name_text(value: x509.Name) -> str:
    """A Name as RFC 4514 text, control characters replaced ("" when unreadable)."""
    # Names come from the board's TPM: no control characters reach a terminal or a log.
    try:
        return printable_text(value.rfc4514_string())
    except PARSE_ERRORS:
        return ""


def printable_text(text: str) -> str:
    """``text`` with every control character replaced by "?"."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _vendor(cert: LoadedCertificate) -> str:
    try:
        san = cert.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for name in san.get_values_for_type(x509.DirectoryName):
            for attribute in name.get_attributes_for_oid(_MANUFACTURER):
                text = printable_text(str(attribute.value).strip())
                if text:
                    return vendor_name(text)
    except x509.ExtensionNotFound:
        pass
    except PARSE_ERRORS:
        pass
    # Not in a SAN cryptography can read: look for the attribute anywhere in the raw bytes.
    for value in find_oid_values(cert.original, TPM_MANUFACTURER_OID):
        text = printable_text(value.decode("utf-8", "replace").strip())
        if text:
            return vendor_name(text)
    organisations = cert.cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return printable_text(str(organisations[0].value)) if organisations else ""


class X509EkCertificateVerifier:
    """Implements :class:`station.ports.EkCertificateVerifier` with ``cryptography``.

    Args:
        anchors: the trust anchors (see :class:`TrustAnchors`).
        on_missing_issuer: told (issuer, AIA URL, time) when no anchor is named as a
            certificate's issuer, so the station can list what to import.
    """

    def __init__(
        self,
        anchors: TrustAnchors,
        on_missing_issuer: Callable[[str, str, datetime], None] | None = None,
    ) -> None:
        self.anchors = anchors
        self._on_missing_issuer = on_missing_issuer

    @classmethod
    def from_paths(cls, paths: Iterable[Path]) -> X509EkCertificateVerifier:
        """Load anchors from files and directories."""
        return cls(TrustAnchors(paths))

    def check(
        self,
        certificate: bytes | None,
        *,
        ek: bytes | None,
        now: datetime,
        nv_index: int | None = None,
    ) -> EkCertificateCheck:
        """See :meth:`station.ports.EkCertificateVerifier.check`."""
        if not certificate or not certificate.strip(b"\xff\x00"):
            return EkCertificateCheck(
                status=EkCertificateResult.ABSENT,
                reason="the TPM holds no EK certificate",
                nv_index=nv_index,
            )
        try:
            loaded = load_certificate(certificate)
        except MalformedCertificate as exc:
            return EkCertificateCheck(
                status=EkCertificateResult.MALFORMED,
                reason=str(exc),
                nv_index=nv_index,
                der=bytes(certificate),
            )
        cert = loaded.cert
        vendor = _vendor(loaded)
        base = EkCertificateCheck(
            status=EkCertificateResult.VALID,
            vendor=vendor,
            subject=name_text(cert.subject),
            issuer=name_text(cert.issuer),
            serial_number=serial_hex(cert),
            not_before=cert.not_valid_before_utc.isoformat(),
            not_after=cert.not_valid_after_utc.isoformat(),
            nv_index=nv_index,
            der=loaded.original,
            normalised=tuple(f"{vendor or 'certificate'}: {d}" for d in loaded.deviations),
        )

        def result(
            status: EkCertificateResult, reason: str = "", signer: LoadedCertificate | None = None
        ) -> EkCertificateCheck:
            if signer is None:
                return replace(base, status=status, reason=reason)
            anchor = name_text(signer.cert.subject)
            notes = tuple(f"issuer {anchor}: {d}" for d in signer.deviations)
            return replace(
                base,
                status=status,
                reason=reason,
                anchor=anchor,
                anchor_source=signer.origin,
                normalised=base.normalised + notes,
            )

        if ek is not None:
            try:
                expected = ek_spki(ek)
            except ValueError as exc:
                return result(EkCertificateResult.MISMATCH, f"the EK cannot be compared: {exc}")
            actual = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            if actual != expected:
                return result(
                    EkCertificateResult.MISMATCH,
                    "the certificate's public key is not the TPM's endorsement key",
                )
        issuers = self.anchors.issuers_of(loaded)
        signer = next((a for a in issuers if verify_signature(loaded, a)), None)
        if signer is None:
            if issuers:
                why = "its issuer's signature does not verify"
                return result(EkCertificateResult.UNTRUSTED, why)
            url = issuer_url(loaded)
            if self._on_missing_issuer is not None and base.issuer:
                self._on_missing_issuer(base.issuer, url, now)
            why = f"no trust anchor is named {base.issuer or 'as its issuer'}"
            if url:
                why += (
                    f"; its issuer's certificate is published at {url}: fetch it once and "
                    "import it with 'station tpm trust import'"
                )
            return replace(result(EkCertificateResult.UNTRUSTED, why), issuer_url=url)
        anchor = name_text(signer.cert.subject)
        for label, candidate in (("certificate", cert), ("issuer " + anchor, signer.cert)):
            if now < candidate.not_valid_before_utc:
                return result(
                    EkCertificateResult.EXPIRED,
                    f"the {label} is not valid before {candidate.not_valid_before_utc:%Y-%m-%d}",
                    signer,
                )
            if now > candidate.not_valid_after_utc:
                return result(
                    EkCertificateResult.EXPIRED,
                    f"the {label} expired on {candidate.not_valid_after_utc:%Y-%m-%d}",
                    signer,
                )
        return result(EkCertificateResult.VALID, "", signer)


def issuer_url(cert: LoadedCertificate) -> str:
    """The first http(s) caIssuers URL of the certificate's AIA extension ("" when none)."""
    for value in find_oid_values(cert.original, _CA_ISSUERS_OID):
        text = value.decode("ascii", "replace")
        if text.startswith(("http://", "https://")) and text.isprintable():
            return text
    return ""
