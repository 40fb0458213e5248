"""Enrollment lifecycles driven through the official azure-iot-deviceprovisioning client.

Every request body we send and every body the stand-in answers is validated against the official
swagger (service.json, 2021-10-01), with objects closed to undeclared fields.
"""

from __future__ import annotations

import base64
import re

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from station.domain.registration import tpm_registration_id

DPS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


def test_tpm_enrollment_lifecycle(client, conforms, make_ek):
    ek = make_ek(1)
    reg_id = tpm_registration_id(base64.b64decode(ek))
    request = {
        "registrationId": reg_id,
        "deviceId": "board-0001",
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": ek}},
        "provisioningStatus": "enabled",
        "allocationPolicy": "static",
        "iotHubs": ["lab-hub.azure-devices.net"],
        "initialTwin": {"tags": {"site": {"line": 3}}, "properties": {"desired": {"mode": {}}}},
    }
    conforms("IndividualEnrollment", request)

    created = client.enrollment.create_or_update(id=reg_id, enrollment=request)
    conforms("IndividualEnrollment", created)
    assert created["attestation"] == {"type": "tpm", "tpm": {"endorsementKey": ek}}
    assert created["deviceId"] == "board-0001"
    assert created["iotHubs"] == ["lab-hub.azure-devices.net"]
    assert "registrationState" not in created  # PUT answers without it, GET with it
    assert DPS_TIME.match(created["createdDateTimeUtc"])
    assert created["createdDateTimeUtc"] == created["lastUpdatedDateTimeUtc"]

    fetched = client.enrollment.get(reg_id)
    conforms("IndividualEnrollment", fetched)
    assert fetched["registrationState"] == {"registrationId": reg_id, "status": "unassigned"}
    assert fetched["etag"] == created["etag"]

    mechanism = client.enrollment.get_attestation_mechanism(reg_id)
    conforms("AttestationMechanism", mechanism)
    assert mechanism["tpm"]["endorsementKey"] == ek

    update = dict(request, provisioningStatus="disabled")
    updated = client.enrollment.create_or_update(id=reg_id, enrollment=update, if_match="*")
    conforms("IndividualEnrollment", updated)
    assert updated["provisioningStatus"] == "disabled"
    assert updated["etag"] != created["etag"]
    assert updated["createdDateTimeUtc"] == created["createdDateTimeUtc"]

    client.enrollment.delete(reg_id, if_match=updated["etag"])
    with pytest.raises(ResourceNotFoundError) as info:
        client.enrollment.get(reg_id)
    assert info.value.response.json()["errorCode"] == 404201


def test_x509_enrollment_echoes_only_certificate_info(client, conforms, make_cert):
    pem = make_cert("sensor-0007", issuer_key=None)
    request = {
        "registrationId": "sensor-0007",
        "attestation": {
            "type": "x509",
            "x509": {"clientCertificates": {"primary": {"certificate": pem}}},
        },
    }
    conforms("IndividualEnrollment", request)
    created = client.enrollment.create_or_update(id="sensor-0007", enrollment=request)
    conforms("IndividualEnrollment", created)
    primary = created["attestation"]["x509"]["clientCertificates"]["primary"]
    assert "certificate" not in primary
    info = primary["info"]
    assert info["subjectName"] == "CN=sensor-0007"
    assert info["issuerName"] == "CN=sensor-0007"
    assert info["version"] == 3
    assert re.fullmatch(r"[0-9A-F]{64}", info["sha256Thumbprint"])
    assert re.fullmatch(r"[0-9A-F]{40}", info["sha1Thumbprint"])
    assert re.fullmatch(r"[0-9A-F]+", info["serialNumber"])
    assert DPS_TIME.match(info["notAfterUtc"])
    assert pem not in str(client.enrollment.get("sensor-0007"))
    # recorded from real DPS: a lone primary certificate is answered as the secondary too
    assert created["attestation"]["x509"]["clientCertificates"]["secondary"] == primary

    # base64 DER is accepted as well and gives the same info
    der = base64.b64encode(base64.b64decode("".join(pem.strip().splitlines()[1:-1]))).decode()
    again = dict(request)
    again["attestation"] = {
        "type": "x509",
        "x509": {"clientCertificates": {"primary": {"certificate": der}}},
    }
    updated = client.enrollment.create_or_update(id="sensor-0007", enrollment=again, if_match="*")
    assert updated["attestation"]["x509"]["clientCertificates"]["primary"]["info"] == info

    client.enrollment.delete("sensor-0007")


def test_x509_registration_id_limited_to_64(client, make_cert):
    long_id = "a" * 65
    request = {
        "registrationId": long_id,
        "attestation": {
            "type": "x509",
            "x509": {"clientCertificates": {"primary": {"certificate": make_cert("x")}}},
        },
    }
    with pytest.raises(HttpResponseError) as info:
        client.enrollment.create_or_update(id=long_id, enrollment=request)
    assert info.value.status_code == 400


def test_symmetric_key_enrollment_generates_and_keeps_keys(client, conforms):
    request = {"registrationId": "sym-0001", "attestation": {"type": "symmetricKey"}}
    created = client.enrollment.create_or_update(id="sym-0001", enrollment=request)
    conforms("IndividualEnrollment", created)
    keys = created["attestation"]["symmetricKey"]
    assert len(base64.b64decode(keys["primaryKey"])) == 64  # as DPS generates them
    assert len(base64.b64decode(keys["secondaryKey"])) == 64
    assert keys["primaryKey"] != keys["secondaryKey"]
    assert client.enrollment.get_attestation_mechanism("sym-0001")["symmetricKey"] == keys
    # GET and query never show the keys (recorded from real DPS: tests/batches/data/SOURCES.md)
    assert client.enrollment.get("sym-0001")["attestation"] == {"type": "symmetricKey"}
    listed = list(client.enrollment.query({"query": "*"}))
    assert [e["attestation"] for e in listed] == [{"type": "symmetricKey"}]
    # fields sent as null or left out are answered as DPS answers them, not filled in
    assert created["provisioningStatus"] is None
    assert "capabilities" not in created and "reprovisionPolicy" not in created

    # an update that omits the keys keeps them; one that sends a key replaces it
    kept = client.enrollment.create_or_update(id="sym-0001", enrollment=request, if_match="*")
    assert kept["attestation"]["symmetricKey"] == keys
    mine = base64.b64encode(bytes(range(16))).decode()
    request_with_key = {
        "registrationId": "sym-0001",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": mine}},
    }
    replaced = client.enrollment.create_or_update(
        id="sym-0001", enrollment=request_with_key, if_match="*"
    )
    assert replaced["attestation"]["symmetricKey"]["primaryKey"] == mine
    assert replaced["attestation"]["symmetricKey"]["secondaryKey"] == keys["secondaryKey"]


@pytest.mark.parametrize("size", [15, 65])
def test_symmetric_key_size_outside_16_to_64_bytes_is_refused(client, size):
    key = base64.b64encode(bytes(size)).decode()
    request = {
        "registrationId": "sym-bad",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
    }
    with pytest.raises(HttpResponseError) as info:
        client.enrollment.create_or_update(id="sym-bad", enrollment=request)
    assert info.value.status_code == 400
    assert info.value.response.json()["errorCode"] == 400007


def test_group_lifecycle_and_registration_states(dps, client, conforms, conforms_array):
    request = {
        "enrollmentGroupId": "line-3-sym",
        "attestation": {"type": "symmetricKey"},
        "allocationPolicy": "hashed",
        "iotHubs": ["lab-hub.azure-devices.net"],
    }
    conforms("EnrollmentGroup", request)
    created = client.enrollment_group.create_or_update(id="line-3-sym", enrollment_group=request)
    conforms("EnrollmentGroup", created)
    assert created["enrollmentGroupId"] == "line-3-sym"
    with pytest.raises(ResourceExistsError) as info:
        client.enrollment_group.create_or_update(id="line-3-sym", enrollment_group=request)
    assert info.value.response.json()["errorCode"] == 409202
    fetched = client.enrollment_group.get("line-3-sym")
    conforms("EnrollmentGroup", fetched)
    assert client.enrollment_group.get_attestation_mechanism("line-3-sym")["type"] == "symmetricKey"

    # registration states appear when devices register (recorded here through the lab API)
    for n in range(3):
        dps.record_registration(f"dev-{n}", group_id="line-3-sym")
    dps.record_registration("other", group_id=None)
    states = list(client.device_registration_state.query(id="line-3-sym"))
    conforms_array("DeviceRegistrationState", states)
    assert sorted(s["registrationId"] for s in states) == ["dev-0", "dev-1", "dev-2"]
    assert {s["status"] for s in states} == {"assigned"}

    state = client.device_registration_state.get("dev-1")
    conforms("DeviceRegistrationState", state)
    with pytest.raises(HttpResponseError) as info:
        client.device_registration_state.delete("dev-1", if_match="bm90LXRoZS1ldGFn")
    assert info.value.status_code == 412
    client.device_registration_state.delete("dev-1", if_match=state["etag"])
    with pytest.raises(ResourceNotFoundError):
        client.device_registration_state.get("dev-1")
    assert len(list(client.device_registration_state.query(id="line-3-sym"))) == 2

    client.enrollment_group.delete("line-3-sym")
    with pytest.raises(ResourceNotFoundError) as info:
        client.enrollment_group.get("line-3-sym")
    assert info.value.response.json()["errorCode"] == 404202


def test_x509_group_with_signing_certificate_and_ca_reference(client, conforms, make_cert):
    ca_pem = make_cert("station intermediate CA")
    signing = {
        "enrollmentGroupId": "x509-line",
        "attestation": {
            "type": "x509",
            "x509": {"signingCertificates": {"primary": {"certificate": ca_pem}}},
        },
    }
    created = client.enrollment_group.create_or_update(id="x509-line", enrollment_group=signing)
    conforms("EnrollmentGroup", created)
    assert created["attestation"]["x509"]["signingCertificates"]["primary"]["info"][
        "subjectName"
    ] == ("CN=station intermediate CA")
    by_ref = {
        "enrollmentGroupId": "x509-ref",
        "attestation": {"type": "x509", "x509": {"caReferences": {"primary": "station-ca"}}},
    }
    created = client.enrollment_group.create_or_update(id="x509-ref", enrollment_group=by_ref)
    conforms("EnrollmentGroup", created)
    assert created["attestation"]["x509"]["caReferences"] == {"primary": "station-ca"}


def test_group_cannot_use_tpm(client, make_ek):
    request = {
        "enrollmentGroupId": "tpm-group",
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": make_ek()}},
    }
    with pytest.raises(HttpResponseError) as info:
        client.enrollment_group.create_or_update(id="tpm-group", enrollment_group=request)
    assert info.value.status_code == 400
