"""Comparing our enrollments with DPS's answers: defaults, key fingerprints, groups."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from station.domain.enrollments import (
    KEYS_NOT_SHOWN,
    comparable,
    key_fingerprint,
    keys_not_shown,
    pem_thumbprint,
    with_attestation,
)
from tests.support.certs import new_cert

KEY = base64.b64encode(bytes(range(32))).decode()


def test_fields_dps_leaves_out_count_as_its_defaults() -> None:
    sent = {
        "registrationId": "dev-1",
        "deviceId": "dev-1",
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": "EK"}},
        "capabilities": {"iotEdge": False},
        "provisioningStatus": "enabled",
        "reprovisionPolicy": {"updateHubAssignment": True, "migrateDeviceData": True},
    }
    answered = {  # as real DPS answers a body sent with those fields null
        "registrationId": "dev-1",
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": "EK"}},
        "provisioningStatus": None,
        "etag": "x",
    }
    assert comparable(answered) == comparable(sent)
    edge = {**answered, "capabilities": {"iotEdge": True}}
    assert comparable(edge)["capabilities"] != comparable(sent)["capabilities"]


def test_symmetric_keys_are_compared_by_fingerprint_and_completed_from_the_mechanism() -> None:
    sent = {
        "registrationId": "dev-1",
        "attestation": {
            "type": "symmetricKey",
            "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY},
        },
    }
    ours = comparable(sent)
    assert KEY not in repr(ours)
    assert ours["attestation"] == {"symmetricKey": [key_fingerprint(KEY)] * 2}
    shown = {"registrationId": "dev-1", "attestation": {"type": "symmetricKey"}}  # GET, query
    assert keys_not_shown(comparable(shown)) and comparable(shown)["attestation"] == KEYS_NOT_SHOWN
    completed = with_attestation(shown, sent["attestation"])
    assert comparable(completed) == ours
    other = base64.b64encode(bytes(32)).decode()
    assert key_fingerprint(other) != key_fingerprint(KEY)


def test_x509_groups_compare_the_pem_we_send_with_the_info_dps_answers() -> None:
    pem = new_cert("station intermediate")
    thumb = x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()
    assert pem_thumbprint(pem) == thumb.upper()
    assert pem_thumbprint("not a certificate") == ""
    sent = {
        "enrollmentGroupId": "line-x509",
        "attestation": {
            "type": "x509",
            "x509": {"signingCertificates": {"primary": {"certificate": pem}}},
        },
    }
    answered = {
        "enrollmentGroupId": "line-x509",
        "attestation": {
            "type": "x509",
            "x509": {
                "signingCertificates": {"primary": {"info": {"sha256Thumbprint": thumb.upper()}}}
            },
        },
    }
    assert comparable(sent) == comparable(answered)
    assert "deviceId" not in comparable(sent)  # groups have no device ID
    referenced = {
        "enrollmentGroupId": "g",
        "attestation": {"type": "x509", "x509": {"caReferences": {"primary": "ica"}}},
    }
    assert comparable(referenced)["attestation"] == {"x509": "ca:ica"}
