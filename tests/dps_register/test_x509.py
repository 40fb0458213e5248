"""X.509 attestation: mutual TLS with real certificate chains."""

from __future__ import annotations

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.errors import DeviceRegistrationError
from station_lab.dps import LocalDps
from station_lab.firstboot import DeviceRegistrationClient, X509Credential
from tests.support.registration import Pki, call, issue


def _individual(service: DeviceProvisioningClient, reg_id: str, pem: str, **extra: object) -> None:
    service.enrollment.create_or_update(
        id=reg_id,
        enrollment={
            "registrationId": reg_id,
            "attestation": {
                "type": "x509",
                "x509": {"clientCertificates": {"primary": {"certificate": pem}}},
            },
            **extra,
        },
    )


def _group(service: DeviceProvisioningClient, group_id: str, x509: dict, **extra: object) -> None:
    service.enrollment_group.create_or_update(
        id=group_id,
        enrollment_group={
            "enrollmentGroupId": group_id,
            "attestation": {"type": "x509", "x509": x509},
            **extra,
        },
    )


def _credential(pki: Pki, reg_id: str, *, tamper: bool = False, cn: str | None = None):
    leaf = pki.device(reg_id, cn=cn)
    cert, key = pki.files(leaf, pki.ica, tamper=tamper)
    return leaf, X509Credential(reg_id, cert, key)


def test_individual_enrollment_registers(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    leaf, credential = _credential(pki, "x509-0001")
    _individual(service, "x509-0001", leaf.pem, deviceId="panel-0001")

    assignment = device.register(credential)

    assert assignment.device_id == "panel-0001"
    assert assignment.registration_state["x509"] == {}
    [entry] = dps.hub_devices()
    assert (entry["registrationId"], entry["authType"]) == ("x509-0001", "x509")


def test_group_on_the_intermediate_registers_its_devices(
    service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    _group(
        service, "station-ica", {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}}
    )
    _, credential = _credential(pki, "x509-0002")

    assignment = device.register(credential)

    assert assignment.device_id == "x509-0002"  # a group device's ID is its CN
    assert assignment.registration_state["x509"] == {"enrollmentGroupId": "station-ica"}


def test_group_on_the_root_is_found_by_walking_up_the_chain(
    service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    _group(service, "lab-root", {"signingCertificates": {"primary": {"certificate": pki.root.pem}}})
    _, credential = _credential(pki, "x509-0003")
    assignment = device.register(credential)
    assert assignment.registration_state["x509"] == {"enrollmentGroupId": "lab-root"}


def test_group_naming_an_uploaded_ca(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    info = dps.add_ca_certificate("Station-Root", pki.root.pem)
    assert info["isVerified"] is True
    _group(service, "by-reference", {"caReferences": {"primary": "station-root"}})
    _, credential = _credential(pki, "x509-0004")
    assignment = device.register(credential)
    assert assignment.registration_state["x509"] == {"enrollmentGroupId": "by-reference"}


def test_individual_enrollment_wins_over_a_group(
    service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    _group(
        service, "station-ica", {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}}
    )
    leaf, credential = _credential(pki, "x509-0005")
    _individual(service, "x509-0005", leaf.pem, deviceId="special-0005")
    assignment = device.register(credential)
    assert assignment.device_id == "special-0005"
    assert "enrollmentGroupId" not in assignment.registration_state["x509"]


def test_disabled_group_refuses(
    service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    _group(
        service,
        "station-ica",
        {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}},
        provisioningStatus="disabled",
    )
    _, credential = _credential(pki, "x509-0006")
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(credential)
    assert caught.value.details["status"] == "disabled"


def test_disabled_individual_enrollment_blocks_even_with_an_enabled_group(
    service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    _group(
        service, "station-ica", {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}}
    )
    leaf, credential = _credential(pki, "x509-0007")
    _individual(service, "x509-0007", leaf.pem, provisioningStatus="disabled")
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(credential)
    assert caught.value.details["status"] == "disabled"


def test_tampered_certificate_is_refused(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    _group(
        service, "station-ica", {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}}
    )
    _, credential = _credential(pki, "x509-0008", tamper=True)
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(credential)
    assert caught.value.details["error_code"] == 401002
    assert "tls_error" in caught.value.details
    assert dps.hub_devices() == []


def test_device_from_a_foreign_ca_is_refused(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    _group(
        service, "station-ica", {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}}
    )
    rogue_ca = issue("Rogue CA", ca=True)
    leaf = pki.device("x509-0009", issuer=rogue_ca)
    cert, key = pki.files(leaf, rogue_ca)
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(X509Credential("x509-0009", cert, key))
    assert caught.value.details["error_code"] == 401002
    assert dps.hub_devices() == []


def test_cn_must_equal_the_registration_id(
    dps: LocalDps, service: DeviceProvisioningClient, pki: Pki
) -> None:
    _group(
        service, "station-ica", {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}}
    )
    leaf = pki.device("x509-0010")
    files = pki.files(leaf, pki.ica)
    answer = call(
        dps,
        "PUT",
        f"/{dps.id_scope}/registrations/someone-else/register",
        {"registrationId": "someone-else"},
        cert=files,
    )
    assert answer.status == 401
    assert answer.body["errorCode"] == 401002
    assert "CN" in answer.body["message"]


def test_polls_must_present_the_same_certificate(
    dps: LocalDps, service: DeviceProvisioningClient, pki: Pki
) -> None:
    _group(
        service, "station-ica", {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}}
    )
    files = pki.files(pki.device("x509-0011"), pki.ica)
    base = f"/{dps.id_scope}/registrations/x509-0011"
    started = call(dps, "PUT", f"{base}/register", {"registrationId": "x509-0011"}, cert=files)
    assert started.status == 202
    operation = f"{base}/operations/{started.body['operationId']}"
    other = pki.files(pki.device("x509-0012"), pki.ica)
    assert call(dps, "GET", operation, cert=other).status == 401
    done = call(dps, "GET", operation, cert=files)
    assert done.status == 200
    assert done.body["registrationState"]["assignedHub"]


def test_leaf_only_chain_is_completed_from_enrolled_certificates(
    dps: LocalDps, service: DeviceProvisioningClient, pki: Pki
) -> None:
    """Without the private chain API only the leaf is known; the ICA comes from the enrollment."""
    from cryptography.hazmat.primitives import serialization

    from station_lab.dps.service import ApiRequest

    _group(
        service, "station-ica", {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}}
    )
    leaf = pki.device("x509-0013")
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    assert dps.device_api is not None
    params = {"idScope": dps.id_scope, "id": "x509-0013"}
    started = dps.device_api.register(ApiRequest(params, {}, {}, True, client_chain=(der,)))
    done = dps.device_api.operation_status(
        ApiRequest({**params, "operationId": started.body["operationId"]}, {}, client_chain=(der,))
    )
    assert done.body["registrationState"]["x509"] == {"enrollmentGroupId": "station-ica"}


def test_peer_chain_falls_back_to_the_leaf() -> None:
    from station_lab.dps.server import peer_chain

    class LeafOnly:
        _sslobj = object()  # no get_verified_chain, as on an interpreter without it

        def getpeercert(self, binary_form: bool = False) -> bytes:
            assert binary_form
            return b"leaf-der"

    class NoCertificate(LeafOnly):
        def getpeercert(self, binary_form: bool = False) -> bytes | None:  # type: ignore[override]
            return None

    assert peer_chain(LeafOnly()) == (b"leaf-der",)
    assert peer_chain(NoCertificate()) == ()
    assert peer_chain(object()) == ()


def test_many_devices_register_concurrently(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient, pki: Pki
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _group(
        service, "station-ica", {"signingCertificates": {"primary": {"certificate": pki.ica.pem}}}
    )
    credentials = [_credential(pki, f"x509-c{i:03d}")[1] for i in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assignments = list(pool.map(device.register, credentials))
    assert sorted(a.device_id for a in assignments) == sorted(
        c.registration_id for c in credentials
    )
    assert len(dps.hub_devices()) == 16
