"""``ca issue`` runs the line's duplicate and batch checks (issue #20, item 5)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station.domain.errors import DuplicateIdentityError, ValidationError
from station.services.identities import record_identity


def _csr(cn: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def test_no_second_live_certificate_for_a_registration_id(pki) -> None:
    ca = pki.ca_station.ca()
    ca.issue_as_admin(_csr("dev-a1"), "dev-a1", operator="boss")
    with pytest.raises(DuplicateIdentityError, match="already holds live certificate"):
        ca.issue_as_admin(_csr("dev-a1"), "DEV-A1", operator="boss")


def test_no_certificate_for_a_provisioned_device(pki, make_manifest) -> None:
    station = pki.ca_station
    manifest = make_manifest("SN-P1", registration_id="dev-p1")
    record_identity(station.store(), manifest, clock=station.clock, station="s", operator="boss")
    with pytest.raises(DuplicateIdentityError, match="already provisioned"):
        station.ca().issue_as_admin(_csr("dev-p1"), "dev-p1", operator="boss")


def test_a_batch_of_another_attestation_is_refused(pki) -> None:
    station = pki.ca_station
    station.batches().open(name="WO-TPM", product="lab-tpm", size=2, operator="boss")
    station.batches().open(name="WO-X", product="lab-x509", size=2, operator="boss")
    with pytest.raises(ValidationError, match="is a tpm batch"):
        station.ca().issue_as_admin(_csr("dev-t1"), "dev-t1", batch="WO-TPM", operator="boss")
    assert station.store().certificates.count(batch="WO-TPM") == 0
    issued = station.ca().issue_as_admin(_csr("dev-x1"), "dev-x1", batch="WO-X", operator="boss")
    assert issued.batch == "WO-X"
