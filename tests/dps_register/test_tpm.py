"""TPM attestation with real software TPMs (one swtpm process per TPM)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient
from tpm2_pytss.types import (
    TPM2B_DATA,
    TPM2B_ENCRYPTED_SECRET,
    TPM2B_ID_OBJECT,
    TPM2B_PRIVATE,
    TPM2B_PUBLIC,
)

from station.domain.errors import DeviceRegistrationError
from station.domain.registration import tpm_registration_id
from station_lab.dps import LocalDps
from station_lab.firstboot import DeviceRegistrationClient, DeviceTpm, TpmCredential, sas_token
from tests.support.registration import call


def _enroll(service: DeviceProvisioningClient, tpm: DeviceTpm, **extra: object) -> str:
    ek = tpm.endorsement_key()
    reg_id = tpm_registration_id(ek)
    service.enrollment.create_or_update(
        id=reg_id,
        enrollment={
            "registrationId": reg_id,
            "attestation": {
                "type": "tpm",
                "tpm": {"endorsementKey": base64.b64encode(ek).decode("ascii")},
            },
            **extra,
        },
    )
    return reg_id


def test_enrolled_tpm_registers_through_the_challenge(
    dps: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    make_tpm: Callable[[], DeviceTpm],
) -> None:
    tpm = make_tpm()
    reg_id = _enroll(service, tpm, deviceId="tpm-board-1")

    assignment = device.register(TpmCredential(tpm))

    assert assignment.registration_id == reg_id
    assert assignment.device_id == "tpm-board-1"
    # the assignment carries the IoT Hub credential blob, as DPS's does
    assert base64.b64decode(assignment.registration_state["tpm"]["authenticationKey"])
    [entry] = dps.hub_devices()
    assert (entry["registrationId"], entry["authType"]) == (reg_id, "tpm")
    # the access log shows the handshake: 401 challenge, then 202, then the poll
    statuses = [e["status"] for e in dps.access_log() if e["operation"].startswith("device.")]
    assert statuses[:2] == [401, 202]
    assert statuses[-1] == 200


def test_a_second_power_on_replaces_the_persisted_key(
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    make_tpm: Callable[[], DeviceTpm],
) -> None:
    tpm = make_tpm()
    _enroll(service, tpm)
    first = device.register(TpmCredential(tpm))
    second = device.register(TpmCredential(tpm))  # the key at 0x81000100 is evicted and replaced
    assert second.assigned_hub == first.assigned_hub
    assert second.etag != first.etag


def test_challenge_blob_has_the_six_parts_the_sdks_parse(
    dps: LocalDps, service: DeviceProvisioningClient, make_tpm: Callable[[], DeviceTpm]
) -> None:
    tpm = make_tpm()
    reg_id = _enroll(service, tpm)
    body = {
        "registrationId": reg_id,
        "tpm": {
            "endorsementKey": base64.b64encode(tpm.endorsement_key()).decode(),
            "storageRootKey": base64.b64encode(tpm.storage_root_key()).decode(),
        },
    }
    answer = call(dps, "PUT", f"/{dps.id_scope}/registrations/{reg_id}/register", body)
    assert answer.status == 401
    assert answer.body["keyName"] == "registration"
    blob = base64.b64decode(answer.body["authenticationKey"])
    offset = 0
    for kind in (
        TPM2B_ID_OBJECT,
        TPM2B_ENCRYPTED_SECRET,
        TPM2B_PRIVATE,
        TPM2B_ENCRYPTED_SECRET,
        TPM2B_PUBLIC,
        TPM2B_DATA,
    ):
        _, used = kind.unmarshal(blob[offset:])
        offset += used
    assert offset == len(blob)


def test_tpm_not_enrolled_gets_404201(
    device: DeviceRegistrationClient, make_tpm: Callable[[], DeviceTpm]
) -> None:
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(TpmCredential(make_tpm()))
    assert caught.value.details["http_status"] == 404
    assert caught.value.details["error_code"] == 404201


class _ClaimsAnotherEk:
    """A TPM that claims another device's (public) EK and registration ID."""

    def __init__(self, own: DeviceTpm, claimed: DeviceTpm) -> None:
        self.own = own
        self.claimed_ek = claimed.endorsement_key()

    def endorsement_key(self) -> bytes:
        return self.claimed_ek

    def storage_root_key(self) -> bytes:
        return self.own.storage_root_key()

    def import_authentication_key(self, blob: bytes) -> None:
        self.own.import_authentication_key(blob)

    def hmac_sha256(self, data: bytes) -> bytes:
        return self.own.hmac_sha256(data)


def test_tpm_with_a_different_ek_cannot_answer_the_challenge(
    dps: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    make_tpm: Callable[[], DeviceTpm],
) -> None:
    enrolled, impostor = make_tpm(), make_tpm()
    reg_id = _enroll(service, enrolled)

    # Presenting the enrolled (public) EK: the challenge is sealed to it, so activation fails.
    with pytest.raises(DeviceRegistrationError, match="cannot activate"):
        device.register(TpmCredential(_ClaimsAnotherEk(impostor, enrolled)))  # type: ignore[arg-type]

    # A SAS signed with any other key is refused with DPS's 401002.
    body = {
        "registrationId": reg_id,
        "tpm": {
            "endorsementKey": base64.b64encode(enrolled.endorsement_key()).decode(),
            "storageRootKey": base64.b64encode(impostor.storage_root_key()).decode(),
        },
    }
    forged = sas_token(dps.id_scope, reg_id, lambda data: b"\x00" * 32)
    path = f"/{dps.id_scope}/registrations/{reg_id}/register"
    answer = call(dps, "PUT", path, body, headers={"Authorization": forged})
    assert answer.status == 401
    assert answer.body["errorCode"] == 401002
    assert dps.hub_devices() == []


def test_tpm_presenting_its_own_ek_under_anothers_id_gets_400004(
    dps: LocalDps,
    service: DeviceProvisioningClient,
    make_tpm: Callable[[], DeviceTpm],
) -> None:
    enrolled, other = make_tpm(), make_tpm()
    reg_id = _enroll(service, enrolled)
    body = {
        "registrationId": reg_id,
        "tpm": {
            "endorsementKey": base64.b64encode(other.endorsement_key()).decode(),
            "storageRootKey": base64.b64encode(other.storage_root_key()).decode(),
        },
    }
    answer = call(dps, "PUT", f"/{dps.id_scope}/registrations/{reg_id}/register", body)
    assert answer.status == 400
    assert answer.body["errorCode"] == 400004


def test_disabled_tpm_enrollment_refuses(
    dps: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    make_tpm: Callable[[], DeviceTpm],
) -> None:
    tpm = make_tpm()
    _enroll(service, tpm, provisioningStatus="disabled")
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(TpmCredential(tpm))
    assert caught.value.details["status"] == "disabled"
    assert caught.value.details["error_code"] == 401003
    assert dps.hub_devices() == []
