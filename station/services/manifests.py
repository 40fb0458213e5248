"""Verifying a signed batch manifest (the cloud operator's side)."""

from __future__ import annotations

from station.domain.errors import ManifestError
from station.domain.manifest_signing import VerifyReport, verify_manifest
from station.ports import ManifestTrust
from station.services.integrity import pem_thumbprint

_BEGIN = "-----BEGIN CERTIFICATE-----"
_END = "-----END CERTIFICATE-----"


def verify_manifest_bytes(data: bytes, trust: ManifestTrust) -> VerifyReport:
    """Check a manifest file's bytes against the trusted root behind ``trust``.

    Returns:
        A report; ``report.ok`` only if the file is byte for byte what the station signed.
    """
    return verify_manifest(data, trust.signer)


def certificate_sha256(pem: bytes) -> str:
    """The SHA-256 fingerprint (hex, upper case) of the first certificate in a PEM file.

    Raises:
        ManifestError: the file holds no PEM certificate.
    """
    text = pem.decode("ascii", "replace")
    start = text.find(_BEGIN)
    end = text.find(_END, start)
    thumbprint = pem_thumbprint(text[start : end + len(_END)]) if 0 <= start < end else None
    if thumbprint is None:
        raise ManifestError(
            "the signer file holds no PEM certificate",
            remedy="Pass the manifest key's certificate (PEM), as 'station ca manifest-key' "
            "wrote it.",
        )
    return thumbprint.upper()
