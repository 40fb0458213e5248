"""Symmetric-key attestation through the device registration API, over real HTTPS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.errors import DeviceRegistrationError
from station_lab.dps import LocalDps
from station_lab.firstboot import DeviceRegistrationClient, SymmetricKeyCredential, sas_token
from tests.support.registration import call


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


def _enroll(service: DeviceProvisioningClient, reg_id: str, key: str, **extra: object) -> None:
    service.enrollment.create_or_update(
        id=reg_id,
        enrollment={
            "registrationId": reg_id,
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
            **extra,
        },
    )


def _group(service: DeviceProvisioningClient, group_id: str, key: str, **extra: object) -> None:
    service.enrollment_group.create_or_update(
        id=group_id,
        enrollment_group={
            "enrollmentGroupId": group_id,
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
            **extra,
        },
    )


def test_individual_enrollment_registers_and_is_assigned(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    key = _key()
    _enroll(service, "sym-0001", key, deviceId="thermo-0001")

    assignment = device.register(SymmetricKeyCredential("sym-0001", key))

    assert assignment.registration_id == "sym-0001"
    assert assignment.device_id == "thermo-0001"
    assert assignment.substatus == "initialAssignment"
    assert assignment.assigned_hub in {hub.host_name for hub in dps.options.linked_hubs}
    assert assignment.etag and assignment.operation_id.startswith("5.")
    # the service API sees the same registration state
    state = service.device_registration_state.get(id="sym-0001")
    assert state["status"] == "assigned"
    assert state["assignedHub"] == assignment.assigned_hub
    # and the hub registry recorded the device
    [entry] = dps.hub_devices(assignment.assigned_hub)
    assert entry["deviceId"] == "thermo-0001"
    assert entry["authType"] == "symmetricKey"


def test_group_member_registers_with_its_derived_key(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    group_key = _key()
    _group(service, "line-3", group_key)

    assignment = device.register(SymmetricKeyCredential.from_group_key("Sensor-0042", group_key))

    assert assignment.registration_id == "sensor-0042"
    assert assignment.registration_state["symmetricKey"] == {"enrollmentGroupId": "line-3"}
    listed = list(service.device_registration_state.query(id="line-3"))
    assert [s["registrationId"] for s in listed] == ["sensor-0042"]


def test_secondary_key_also_works(
    service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    primary, secondary = _key(), _key()
    service.enrollment.create_or_update(
        id="sym-0002",
        enrollment={
            "registrationId": "sym-0002",
            "attestation": {
                "type": "symmetricKey",
                "symmetricKey": {"primaryKey": primary, "secondaryKey": secondary},
            },
        },
    )
    assert device.register(SymmetricKeyCredential("sym-0002", secondary)).device_id == "sym-0002"


def test_wrong_key_is_refused_with_401002(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    _enroll(service, "sym-0003", _key())
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(SymmetricKeyCredential("sym-0003", _key()))
    assert caught.value.details["http_status"] == 401
    assert caught.value.details["error_code"] == 401002
    assert dps.hub_devices() == []


def test_wrong_group_key_is_refused(
    service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    _group(service, "line-4", _key())
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(SymmetricKeyCredential.from_group_key("sensor-9", _key()))
    assert caught.value.details["error_code"] == 401002


def test_device_not_enrolled_is_refused(device: DeviceRegistrationClient) -> None:
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(SymmetricKeyCredential("nobody-0001", _key()))
    assert caught.value.details["error_code"] == 401002


def test_disabled_enrollment_ends_disabled(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    key = _key()
    _enroll(service, "sym-0004", key, provisioningStatus="disabled")
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(SymmetricKeyCredential("sym-0004", key))
    assert caught.value.details["status"] == "disabled"
    assert caught.value.details["error_code"] == 401003
    assert service.device_registration_state.get(id="sym-0004")["status"] == "disabled"
    assert dps.hub_devices() == []


def test_disabled_group_refuses_its_devices(
    service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    group_key = _key()
    _group(service, "line-5", group_key, provisioningStatus="disabled")
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(SymmetricKeyCredential.from_group_key("sensor-5", group_key))
    assert caught.value.details["status"] == "disabled"


def _sign_raw(key: str, message: str) -> str:
    digest = hmac.new(base64.b64decode(key), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@pytest.mark.parametrize("encoded", [True, False], ids=["url-encoded", "raw-resource"])
def test_both_resource_encodings_are_accepted(
    dps: LocalDps, service: DeviceProvisioningClient, encoded: bool
) -> None:
    from urllib.parse import quote_plus, urlencode

    key = _key()
    _enroll(service, "sym-0005", key)
    resource = f"{dps.id_scope}/registrations/sym-0005"
    expiry = int(time.time()) + 600
    signed = quote_plus(resource) if encoded else resource  # Node signs the raw form
    token = "SharedAccessSignature " + urlencode(
        {"sr": resource, "sig": _sign_raw(key, f"{signed}\n{expiry}"), "se": expiry}
    )
    answer = call(
        dps,
        "PUT",
        f"/{dps.id_scope}/registrations/sym-0005/register",
        {"registrationId": "sym-0005"},
        headers={"Authorization": token + "&skn=registration"},
    )
    assert answer.status == 202
    assert answer.body["status"] == "assigning"
    assert answer.headers["retry-after"] == "1"  # whole seconds, even for the lab's 0.01 s
    assert answer.headers["x-ms-retry-after-ms"] == "10"
    assert answer.headers["location"].endswith("/registrations/sym-0005/register")


def test_expired_and_foreign_tokens_are_refused(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    key = _key()
    _enroll(service, "sym-0006", key)
    signer = SymmetricKeyCredential("sym-0006", key).signer()
    path = f"/{dps.id_scope}/registrations/sym-0006/register"
    expired = sas_token(dps.id_scope, "sym-0006", signer, now=time.time() - 7200)
    foreign = sas_token(dps.id_scope, "sym-0007", signer)
    for token in (expired, foreign):
        answer = call(
            dps, "PUT", path, {"registrationId": "sym-0006"}, headers={"Authorization": token}
        )
        assert answer.status == 401
        assert answer.body["errorCode"] == 401002
        assert answer.headers["x-ms-error-code"] == "401002"


def test_client_takes_what_a_board_holds(dps: LocalDps, service: DeviceProvisioningClient) -> None:
    """The board's ``dps`` object and raw ``symkey`` bytes are enough to register."""
    from station_lab.firstboot import DpsEndpoint

    raw = os.urandom(32)
    _enroll(service, "board-0001", base64.b64encode(raw).decode("ascii"))
    board_dps = {
        "endpoint": "global.azure-devices-provisioning.net",
        "scope": dps.id_scope,
        "rid": "board-0001",
    }
    endpoint = DpsEndpoint.from_board(
        board_dps, ca_bundle=dps.ca_bundle, endpoint_override=dps.host_name
    )
    credential = SymmetricKeyCredential.from_key_bytes(board_dps["rid"], raw)
    assignment = DeviceRegistrationClient(endpoint).register(credential)
    assert assignment.registration_id == "board-0001"
    with pytest.raises(DeviceRegistrationError):
        DpsEndpoint.from_board({"rid": "board-0001"})
