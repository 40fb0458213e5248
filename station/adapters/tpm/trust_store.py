"""The station's EK-certificate trust store: import vendor CA files, list anchors, note gaps.

Offline factories get vendor roots and intermediates on a USB stick, in whatever form the vendor
publishes them: PEM bundles, single DER files, PKCS#7 (``.p7b``). ``station tpm trust import``
copies each CA certificate into ``[tpm] import_dir`` as one PEM file that records its source and
fingerprint; that folder is one more trust location next to ``[tpm] trust_dir`` and
``extra_trust_dirs`` (the same :class:`~.ek_certs.TrustAnchors` reads them all).

Intermediates some vendors publish only online (Intel's on-die CA chain) are named by the EK
certificate's AIA URL. When an EK certificate's issuer is missing, the verifier records it here
(``wanted.json``); ``station tpm trust list`` shows the URL, and the import that provides the
issuer says which chain it completed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from station.adapters.tpm.der import DerError, children, decode_oid, read_tlv
from station.adapters.tpm.ek_certs import (
    PARSE_ERRORS,
    LoadedCertificate,
    MalformedCertificate,
    TrustAnchors,
    load_certificate,
    name_text,
    printable_text,
    verify_signature,
)
from station.domain.errors import ConfigError
from station.domain.tpm import TrustEntry, TrustImportReport, TrustSkip, WantedIssuer

log = logging.getLogger(__name__)

WANTED_FILE = "wanted.json"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.+?)-----END \1-----", re.S)
_SIGNED_DATA = "1.2.840.113549.1.7.2"
#: File suffixes a folder import looks at (a single FILE argument is always read).
IMPORT_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der", ".p7b", ".p7c", ".p7", ".cert"})
_PEM_SKIPS = {
    "X509 CRL": "a certificate revocation list, not a certificate",
    "PRIVATE KEY": "a private key: keys are never imported (and should not travel with CAs)",
    "RSA PRIVATE KEY": "a private key: keys are never imported (and should not travel with CAs)",
    "EC PRIVATE KEY": "a private key: keys are never imported (and should not travel with CAs)",
    "ENCRYPTED PRIVATE KEY": "a private key: keys are never imported",
}


class FileTrustStore:
    """Implements :class:`station.ports.EkTrustStore` on trust folders.

    Args:
        import_dir: where imported certificates are kept (created on the first import).
        sources: every trust location the station reads, ``import_dir`` included.
    """

    _lock = threading.Lock()  # slots record wanted issuers from several threads

    def __init__(self, import_dir: Path, sources: list[Path]) -> None:
        self.import_dir = import_dir
        self.sources = sources

    # ------------------------------------------------------------------ import
    def import_path(self, path: Path, *, now: datetime) -> TrustImportReport:
        """See :meth:`station.ports.EkTrustStore.import_path`."""
        anchors = TrustAnchors(self.sources)
        known = {a.fingerprint: a.origin for a in anchors.anchors}
        taken: list[LoadedCertificate] = []
        imported: list[TrustEntry] = []
        skipped: list[TrustSkip] = []
        for file in _files(path, skipped):
            for where, blob, problem in _blobs(file):
                if problem:
                    skipped.append(TrustSkip(where, problem))
                    continue
                try:
                    cert = load_certificate(blob, origin=where)
                except MalformedCertificate as exc:
                    skipped.append(TrustSkip(where, str(exc)))
                    continue
                if not _may_sign(cert):
                    skipped.append(
                        TrustSkip(where, "an end-entity certificate (cA FALSE): it signs nothing")
                    )
                    continue
                if cert.fingerprint in known:
                    skipped.append(TrustSkip(where, f"already trusted ({known[cert.fingerprint]})"))
                    continue
                known[cert.fingerprint] = where
                taken.append(cert)
        # Say for each new anchor what vouches for it: a root, or a CA already trusted.
        anchors.anchors.extend(taken)
        try:
            for cert in taken:
                entry = self._keep(cert, cert.origin, now)
                imported.append(replace(entry, signed_by=_signer(cert, anchors)))
            completed = self._complete([e.subject for e in imported])
        except OSError as exc:
            raise ConfigError(
                f"cannot write to the trust folder {self.import_dir}: {exc.strerror}",
                remedy="Check that the folder ([tpm] import_dir) is writable by the station's "
                "user and the disk is not full, then import again (nothing is imported twice).",
                folder=str(self.import_dir),
            ) from exc
        return TrustImportReport(tuple(imported), tuple(skipped), tuple(completed))

    def _keep(self, cert: LoadedCertificate, source: str, now: datetime) -> TrustEntry:
        self.import_dir.mkdir(parents=True, exist_ok=True)
        subject = name_text(cert.cert.subject)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", _common_name(cert) or "ca").strip("-")[:40]
        target = self.import_dir / f"{slug}-{cert.fingerprint[:12]}.pem"
        body = base64.encodebytes(cert.original).decode("ascii")
        text = (
            "Imported by 'station tpm trust import'\n"
            f"Source: {printable_text(source)}\n"
            f"SHA-256: {cert.fingerprint}\n"
            f"Subject: {subject}\n"
            f"Imported: {now.isoformat()}\n"
            f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"
        )
        _write_atomically(target, text)
        return _entry(cert, str(target), source)

    # ------------------------------------------------------------------ listing
    def entries(self) -> tuple[list[TrustEntry], list[TrustSkip]]:
        """See :meth:`station.ports.EkTrustStore.entries`."""
        anchors = TrustAnchors(self.sources)
        found = [_entry(a, *_split_origin(a.origin)) for a in anchors.anchors]
        skipped = []
        for line in anchors.skipped:
            source, _, reason = line.partition(": ")
            skipped.append(TrustSkip(source, reason))
        return found, skipped

    # ------------------------------------------------------------------ missing issuers
    def wanted(self) -> list[WantedIssuer]:
        """See :meth:`station.ports.EkTrustStore.wanted`."""
        return [WantedIssuer(**item) for item in self._read_wanted().values()]

    def record_wanted(self, issuer: str, url: str, now: datetime) -> None:
        """Remember an issuer no anchor provides (once per issuer; best effort)."""
        with self._lock:
            wanted = self._read_wanted()
            if issuer in wanted:
                return
            wanted[issuer] = {"issuer": issuer, "url": url, "first_seen": now.isoformat()}
            try:
                self._write_wanted(wanted)
            except OSError as exc:
                log.warning("cannot record the missing EK issuer %s: %s", issuer, exc)

    def _complete(self, subjects: list[str]) -> list[WantedIssuer]:
        with self._lock:
            wanted = self._read_wanted()
            done = [WantedIssuer(**wanted.pop(s)) for s in subjects if s in wanted]
            if done:
                self._write_wanted(wanted)
        return done

    def _read_wanted(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads((self.import_dir / WANTED_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_wanted(self, wanted: dict[str, dict[str, str]]) -> None:
        self.import_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(wanted, indent=2, sort_keys=True) + "\n"
        _write_atomically(self.import_dir / WANTED_FILE, text)


def _files(path: Path, skipped: list[TrustSkip]) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        skipped.append(TrustSkip(str(path), "no such file or folder"))
        return []
    files = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.suffix.lower() in IMPORT_SUFFIXES:
            files.append(file)
        else:
            skipped.append(TrustSkip(str(file), "not a certificate file (by its suffix)"))
    return files


def _blobs(file: Path) -> list[tuple[str, bytes, str]]:
    """(where, certificate bytes, why not) for everything in one file."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        return [(str(file), b"", f"cannot be read ({exc.strerror})")]
    if b"-----BEGIN" in data:
        blocks = [(m.group(1).decode(), m.group(2)) for m in _PEM_BLOCK.finditer(data)]
        if not blocks:
            return [(str(file), b"", "a broken PEM file (BEGIN without a matching END)")]
        found: list[tuple[str, bytes, str]] = []
        for number, (label, text) in enumerate(blocks, start=1):
            where = (
                f"{file} (PEM block {number} of {len(blocks)})" if len(blocks) > 1 else str(file)
            )
            try:
                der = base64.b64decode(b"".join(text.split()), validate=True)
            except ValueError:
                found.append((where, b"", "the PEM block is not valid base64"))
                continue
            if label in ("CERTIFICATE", "X509 CERTIFICATE"):
                found.append((where, der, ""))
            elif label == "PKCS7":
                found += _pkcs7(where, der)
            else:
                found.append(
                    (where, b"", _PEM_SKIPS.get(label, f"a PEM {label}, not a certificate"))
                )
        return found
    if _is_pkcs7(data):
        return _pkcs7(str(file), data)
    return [(str(file), data, "")]


def _is_pkcs7(data: bytes) -> bool:
    try:
        items = children(read_tlv(data).content)
        return items[0].tag == 0x06 and decode_oid(items[0].content) == _SIGNED_DATA
    except (DerError, IndexError):
        return b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02" in data[:32]


def _pkcs7(where: str, data: bytes) -> list[tuple[str, bytes, str]]:
    """The certificates of a PKCS#7 SignedData, exactly as encoded in it."""
    try:
        content_info = children(read_tlv(data).content)
        signed_data = children(children(content_info[1].content)[0].content)
        bag = next(item for item in signed_data if item.tag == 0xA0)
        blobs = [bag.content[c.start : c.end] for c in children(bag.content)]
    except (DerError, IndexError, StopIteration):
        # BER with indefinite lengths (some Windows exports): let OpenSSL read it.
        try:
            certs = pkcs7.load_der_pkcs7_certificates(data)
        except ValueError as exc:
            return [(where, b"", f"not a readable PKCS#7 file ({exc})")]
        blobs = [c.public_bytes(serialization.Encoding.DER) for c in certs]
    if not blobs:
        return [(where, b"", "a PKCS#7 file without certificates")]
    return [
        (f"{where} (certificate {n} of {len(blobs)})", blob, "")
        for n, blob in enumerate(blobs, start=1)
    ]


def _signer(cert: LoadedCertificate, anchors: TrustAnchors) -> str:
    if cert.canonical_subject == cert.canonical_issuer and verify_signature(cert, cert):
        return "self-signed"
    for issuer in anchors.issuers_of(cert):
        if issuer is not cert and verify_signature(cert, issuer):
            return name_text(issuer.cert.subject)
    return ""


def _may_sign(cert: LoadedCertificate) -> bool:
    try:
        constraints = cert.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return True  # old v1/v3 roots without the extension
    except PARSE_ERRORS:
        return True  # an extension cryptography cannot read: the chain check decides
    return constraints.value.ca


def _entry(cert: LoadedCertificate, file: str, source: str) -> TrustEntry:
    return TrustEntry(
        fingerprint=cert.fingerprint,
        subject=name_text(cert.cert.subject),
        issuer=name_text(cert.cert.issuer),
        not_after=cert.cert.not_valid_after_utc.isoformat(),
        file=file,
        source=source,
    )


def _split_origin(origin: str) -> tuple[str, str]:
    file, _, rest = origin.partition(" (imported from ")
    return file, rest.removesuffix(")")


def _common_name(cert: LoadedCertificate) -> str:
    names = cert.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _write_atomically(target: Path, text: str) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
