"""Validation helpers of the stand-in, without a server."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station_lab.dps import validation
from station_lab.dps.errors import ApiError


def _cert_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ACME"),
            x509.NameAttribute(NameOID.COMMON_NAME, "dev-42"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0xABCDEF)
        .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_certificate_info_from_every_accepted_encoding():
    pem = _cert_pem()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    forms = [pem.decode(), base64.b64encode(der).decode(), base64.b64encode(pem).decode()]
    infos = [validation.certificate_info(form, "c") for form in forms]
    assert infos[0] == infos[1] == infos[2]
    info = infos[0]
    assert info["subjectName"] == "CN=dev-42, O=ACME, C=DE"
    assert info["serialNumber"] == "ABCDEF"
    assert info["notBeforeUtc"] == "2026-01-01T00:00:00.0000000Z"
    assert info["notAfterUtc"] == "2027-01-01T00:00:00.0000000Z"
    assert info["version"] == 3


def test_timestamp_has_seven_fractional_digits():
    moment = datetime(2023, 5, 19, 23, 10, 42, 391551, tzinfo=UTC)
    assert validation.timestamp(moment) == "2023-05-19T23:10:42.3915510Z"


def test_etags_are_fresh_and_dps_shaped():
    tags = {validation.new_etag() for _ in range(100)}
    assert len(tags) == 100
    decoded = base64.b64decode(next(iter(tags))).decode()
    assert decoded.startswith('"') and decoded.endswith('"') and decoded.count("-") == 4


def test_ecc_endorsement_key_is_accepted_and_empty_point_refused():
    from tpm2_pytss.types import TPM2B_PUBLIC

    public = TPM2B_PUBLIC.parse(
        "ecc256", objectAttributes="fixedtpm|fixedparent|restricted|decrypt"
    )
    empty = base64.b64encode(public.marshal()).decode()
    with pytest.raises(ApiError) as info:
        validation.parse_tpm2b_public(empty, "ek")
    assert info.value.error_code == 400004
    public.publicArea.unique.ecc.x = b"\x01" * 32
    public.publicArea.unique.ecc.y = b"\x02" * 32
    ok = base64.b64encode(public.marshal()).decode()
    assert validation.parse_tpm2b_public(ok, "ek") == public.marshal()


def test_unknown_fields_are_dropped_and_null_fields_not_filled():
    record = validation.enrollment(
        {"registrationId": "Dev-1", "attestation": {"type": "symmetricKey"}, "color": "blue"},
        "dev-1",
    )
    assert "color" not in record
    assert record["registrationId"] == "dev-1"
    # as real DPS answers them (recorded): null status, no capabilities, no reprovision policy
    assert record["provisioningStatus"] is None
    assert "capabilities" not in record and "reprovisionPolicy" not in record
    given = validation.enrollment(
        {
            "registrationId": "dev-2",
            "attestation": {"type": "symmetricKey"},
            "capabilities": {"iotEdge": True},
            "provisioningStatus": "disabled",
            "reprovisionPolicy": {"updateHubAssignment": False},
        },
        "dev-2",
    )
    assert given["capabilities"] == {"iotEdge": True}
    assert given["provisioningStatus"] == "disabled"
    assert given["reprovisionPolicy"] == {"updateHubAssignment": False, "migrateDeviceData": True}
