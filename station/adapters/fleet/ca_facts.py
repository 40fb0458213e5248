"""The station's intermediate CA as the ledger shows it: subject, fingerprint, expiry (public)."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from station.domain.audit import format_time
from station.domain.fleet import StationCa


def station_ca(chain_pem: str) -> StationCa | None:
    """The first certificate of the station's CA chain, or ``None`` (no CA, or unreadable).

    An unreadable chain is left out rather than failing replication: ``station ca status``
    names what is wrong with it.
    """
    if not chain_pem.strip():
        return None
    try:
        certificate = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))[0]
    except (ValueError, IndexError, UnicodeEncodeError):
        return None
    der = certificate.public_bytes(serialization.Encoding.DER)
    return StationCa(
        subject=certificate.subject.rfc4514_string(),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        not_after=format_time(certificate.not_valid_after_utc),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )
