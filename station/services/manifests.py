"""Verifying a signed batch manifest (the cloud operator's side)."""

from __future__ import annotations

from station.domain.manifest_signing import VerifyReport, verify_manifest
from station.ports import ManifestTrust


def verify_manifest_bytes(data: bytes, trust: ManifestTrust) -> VerifyReport:
    """Check a manifest file's bytes against the trusted root behind ``trust``.

    Returns:
        A report; ``report.ok`` only if the file is byte for byte what the station signed.
    """
    return verify_manifest(data, trust.signature_check)
