"""The official Python device SDK registers with the lab DPS over MQTT and MQTT over WebSocket.

Every attestation the SDK offers over MQTT: a symmetric-key individual enrollment, a device of a
symmetric-key group (derived key), an X.509 individual enrollment and a device of an X.509 CA
group (a verified CA named by reference).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.errors import DeviceRegistrationError
from station_lab.dps import LocalDps
from station_lab.firstboot import DeviceRegistrationClient, DpsEndpoint, SymmetricKeyCredential
from station_lab.firstboot.python_sdk import SdkRoute, register_with_python_sdk
from tests.support.registration import HUBS, Pki

from .sdk import TRANSPORTS, derive, entries, new_key, sdk_client


def _symkey_individual(
    dps: LocalDps, service: DeviceProvisioningClient, pki: Pki, reg_id: str
) -> dict[str, Any]:
    key = new_key()
    service.enrollment.create_or_update(
        id=reg_id,
        enrollment={
            "registrationId": reg_id,
            "deviceId": f"dev-{reg_id}",
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
        },
    )
    return {"symmetric_key": key, "device_id": f"dev-{reg_id}", "group": None}


def _symkey_group(
    dps: LocalDps, service: DeviceProvisioningClient, pki: Pki, reg_id: str
) -> dict[str, Any]:
    group_key = new_key()
    service.enrollment_group.create_or_update(
        id="sym-group",
        enrollment_group={
            "enrollmentGroupId": "sym-group",
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": group_key}},
        },
    )
    return {
        "symmetric_key": derive(group_key, reg_id),
        "device_id": reg_id,
        "group": "sym-group",
    }


def _x509_individual(
    dps: LocalDps, service: DeviceProvisioningClient, pki: Pki, reg_id: str
) -> dict[str, Any]:
    leaf = pki.device(reg_id)
    service.enrollment.create_or_update(
        id=reg_id,
        enrollment={
            "registrationId": reg_id,
            "attestation": {
                "type": "x509",
                "x509": {"clientCertificates": {"primary": {"certificate": leaf.pem}}},
            },
        },
    )
    return {"cert": pki.files(leaf, pki.ica), "device_id": reg_id, "group": None}


def _x509_ca_group(
    dps: LocalDps, service: DeviceProvisioningClient, pki: Pki, reg_id: str
) -> dict[str, Any]:
    dps.add_ca_certificate("station-root", pki.root.pem)
    service.enrollment_group.create_or_update(
        id="x509-group",
        enrollment_group={
            "enrollmentGroupId": "x509-group",
            "attestation": {"type": "x509", "x509": {"caReferences": {"primary": "station-root"}}},
        },
    )
    leaf = pki.device(reg_id)
    return {
        "cert": pki.files(leaf, pki.ica),  # leaf + intermediate, up to the verified root
        "device_id": reg_id,
        "group": "x509-group",
    }


KINDS: dict[str, Callable[..., dict[str, Any]]] = {
    "symkey-individual": _symkey_individual,
    "symkey-group": _symkey_group,
    "x509-individual": _x509_individual,
    "x509-ca-group": _x509_ca_group,
}


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_the_python_sdk_registers(
    dps: LocalDps,
    service: DeviceProvisioningClient,
    pki: Pki,
    kind: str,
    transport: str,
) -> None:
    reg_id = f"{kind}-{transport}-0001"
    setup = KINDS[kind](dps, service, pki, reg_id)
    client = sdk_client(
        dps,
        reg_id,
        transport=transport,
        symmetric_key=setup.get("symmetric_key"),
        cert=setup.get("cert"),
    )

    result = client.register()

    assert result.status == "assigned"
    state = result.registration_state
    assert state.device_id == setup["device_id"]
    assert state.assigned_hub in {hub.host_name for hub in HUBS}
    assert state.sub_status == "initialAssignment"
    [registered] = dps.hub_devices()
    assert registered["registrationId"] == reg_id
    assert registered["authType"] == ("x509" if kind.startswith("x509") else "symmetricKey")
    assert registered["enrollmentGroupId"] == setup["group"]
    # the same registration core answers the service API
    stored = service.device_registration_state.get(id=reg_id)
    assert stored["assignedHub"] == state.assigned_hub
    # the SDK spoke DPS's MQTT topics on the transport asked for
    log = entries(dps, reg_id)
    assert {e["transport"] for e in log} == {transport}
    outcomes = [(e["operation"], e.get("status"), e.get("connackCode")) for e in log]
    assert outcomes[0] == ("mqtt.connect", None, 0)
    assert ("device.register", 202, None) in outcomes
    assert outcomes[-1] == ("device.operation", 200, None)


def test_https_and_mqtt_share_one_registration_core(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    key = new_key()
    service.enrollment.create_or_update(
        id="both-ways",
        enrollment={
            "registrationId": "both-ways",
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
        },
    )
    over_https = device.register(SymmetricKeyCredential("both-ways", key))

    over_mqtt = sdk_client(dps, "both-ways", symmetric_key=key).register()

    # one hub registry and one registration record: the second registration re-provisions
    assert over_mqtt.registration_state.assigned_hub == over_https.assigned_hub
    assert over_mqtt.registration_state.sub_status == "deviceDataMigrated"
    [registered] = dps.hub_devices()
    assert registered["registrationId"] == "both-ways"


def test_station_lab_dps_reports_the_mqtt_endpoints(dps: LocalDps, tmp_path: Path) -> None:
    assert dps.mqtt_port not in (0, dps.port)
    assert dps.websocket_url == f"wss://{dps.host_name}/$iothub/websocket"
    assert dps.port_map[1] not in (0, dps.port, dps.mqtt_port)


def test_the_board_firmware_reports_what_the_sdk_says_of_a_refusal(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    service.enrollment.create_or_update(
        id="fw-0001",
        enrollment={
            "registrationId": "fw-0001",
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": new_key()}},
        },
    )
    host, port = dps.port_map
    endpoint = DpsEndpoint(dps.host_name, dps.id_scope, dps.ca_bundle)
    route = SdkRoute(proxy=f"{host}:{port}")

    with pytest.raises(DeviceRegistrationError) as caught:
        register_with_python_sdk(endpoint, SymmetricKeyCredential("fw-0001", new_key()), route)

    assert caught.value.details["error_code"] == "401"
    assert "status 401" in caught.value.message
    key = new_key()
    service.enrollment.create_or_update(
        id="fw-0002",
        enrollment={
            "registrationId": "fw-0002",
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
            "provisioningStatus": "disabled",
        },
    )
    with pytest.raises(DeviceRegistrationError) as caught:
        register_with_python_sdk(endpoint, SymmetricKeyCredential("fw-0002", key), route)
    assert caught.value.details["error_code"] == "disabled"
