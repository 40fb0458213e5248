"""Allocation policies over 1,000 registrations, the hub registry, and reprovisioning.

The 1,000-device runs call the device API in-process (same code as over HTTPS, without the
transport) with real SAS tokens; a few registrations per policy also go over HTTPS.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from typing import Any

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.errors import DeviceRegistrationError, LabDpsError
from station_lab.dps import LinkedHub, LocalDps
from station_lab.dps.service import ApiRequest
from station_lab.firstboot import DeviceRegistrationClient, SymmetricKeyCredential, sas_token
from tests.support.registration import HUBS, Webhook

N = 1000
HUB_A, HUB_B, HUB_C = (hub.host_name for hub in HUBS)


def _group(service: DeviceProvisioningClient, group_id: str, **extra: Any) -> str:
    key = base64.b64encode(os.urandom(32)).decode("ascii")
    service.enrollment_group.create_or_update(
        id=group_id,
        enrollment_group={
            "enrollmentGroupId": group_id,
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
            **extra,
        },
    )
    return key


def _register(dps: LocalDps, group_key: str, reg_id: str, payload: Any = None) -> dict[str, Any]:
    """Register in-process and return the finished operation's registrationState."""
    assert dps.device_api is not None
    credential = SymmetricKeyCredential.from_group_key(reg_id, group_key)
    token = sas_token(dps.id_scope, reg_id, credential.signer())
    body: dict[str, Any] = {"registrationId": reg_id}
    if payload is not None:
        body["payload"] = payload
    params = {"idScope": dps.id_scope, "id": reg_id}
    started = dps.device_api.register(
        ApiRequest(params, {"authorization": token}, body, has_body=True)
    )
    assert started.status == 202
    done = dps.device_api.operation_status(
        ApiRequest({**params, "operationId": started.body["operationId"]}, {"authorization": token})
    )
    assert done.status == 200
    return dict(done.body["registrationState"])


def _hub_counts(dps: LocalDps) -> Counter[str]:
    return Counter(entry["hub"] for entry in dps.hub_devices())


def test_hashed_is_close_to_even_over_1000_devices(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    key = _group(service, "fleet")  # no policy: the service default, hashed
    for i in range(N):
        _register(dps, key, f"dev-{i:05d}")
    counts = _hub_counts(dps)
    assert sum(counts.values()) == N
    assert set(counts) == {HUB_A, HUB_B, HUB_C}
    # Expected 333 each; SHA-256 over fixed IDs is deterministic, so these bounds (about +-4
    # standard deviations) cannot flake.
    assert all(270 <= count <= 400 for count in counts.values()), counts
    # the registry agrees with each registration's state, and a device stays on its hub
    again = _register(dps, key, "dev-00007")
    assert again["assignedHub"] == dps.hub_devices()[7]["hub"]


def test_hashed_respects_weights() -> None:
    from station_lab.dps.allocation import AllocationContext, Allocator

    allocator = Allocator([LinkedHub("big", weight=3), LinkedHub("small", weight=1)])
    counts = Counter(
        allocator.allocate(AllocationContext(f"d{i}", {}, is_group=True)).hub for i in range(N)
    )
    assert 680 <= counts["big"] <= 820, counts


def test_static_always_goes_to_its_hub(dps: LocalDps, service: DeviceProvisioningClient) -> None:
    key = _group(service, "pinned", allocationPolicy="static", iotHubs=[HUB_C])
    for i in range(N):
        assert _register(dps, key, f"st-{i:05d}")["assignedHub"] == HUB_C
    assert _hub_counts(dps) == Counter({HUB_C: N})


def test_geo_latency_picks_the_nearest_candidate(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    near = _group(service, "near", allocationPolicy="geoLatency")
    limited = _group(service, "limited", allocationPolicy="geoLatency", iotHubs=[HUB_A, HUB_C])
    for i in range(N // 2):
        assert _register(dps, near, f"geo-{i:04d}")["assignedHub"] == HUB_B  # 12 ms
        assert _register(dps, limited, f"lim-{i:04d}")["assignedHub"] == HUB_A  # 40 < 90 ms
    assert _hub_counts(dps) == Counter({HUB_B: N // 2, HUB_A: N // 2})


def test_custom_webhook_decides_over_1000_devices(
    dps: LocalDps, service: DeviceProvisioningClient, webhook: Webhook
) -> None:
    def decide(request: dict[str, Any]) -> tuple[int, Any]:
        number = int(request["deviceRuntimeContext"]["registrationId"].split("-")[1])
        hub = HUB_A if number % 4 == 0 else HUB_C
        return 200, {
            "iotHubHostName": hub,
            "initialTwin": {"tags": {"bucket": number % 4}},
            "payload": {"slot": number},
        }

    webhook.decide = decide
    key = _group(
        service,
        "custom",
        allocationPolicy="custom",
        customAllocationDefinition={"webhookUrl": webhook.url, "apiVersion": "2021-10-01"},
        initialTwin={"tags": {"from": "enrollment"}},
    )
    for i in range(N):
        state = _register(dps, key, f"cu-{i:05d}", payload={"model": "thermo"})
        assert state["assignedHub"] == (HUB_A if i % 4 == 0 else HUB_C)
        assert state["payload"] == {"slot": i}
    assert _hub_counts(dps) == Counter({HUB_A: N // 4, HUB_C: N - N // 4})
    registry = {entry["registrationId"]: entry for entry in dps.hub_devices()}
    assert registry["cu-00005"]["twin"] == {"tags": {"bucket": 1}}
    # the real AllocationRequest shape (dps-api.md §9)
    first = webhook.requests[0]
    assert set(first) == {"enrollmentGroup", "deviceRuntimeContext", "linkedHubs"}
    assert first["enrollmentGroup"]["enrollmentGroupId"] == "custom"
    assert first["enrollmentGroup"]["attestation"]["symmetricKey"] == {}  # keys never leave
    assert first["deviceRuntimeContext"] == {
        "registrationId": "cu-00000",
        "symmetricKey": {},
        "payload": {"model": "thermo"},
    }
    assert first["linkedHubs"] == [HUB_A, HUB_B, HUB_C]


def test_custom_webhook_over_https_end_to_end(
    dps: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    webhook: Webhook,
) -> None:
    webhook.decide = lambda request: (200, {"iotHubHostName": HUB_B, "payload": {"ok": True}})
    key = base64.b64encode(os.urandom(32)).decode("ascii")
    service.enrollment.create_or_update(
        id="cu-single",
        enrollment={
            "registrationId": "cu-single",
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
            "allocationPolicy": "custom",
            "customAllocationDefinition": {"webhookUrl": webhook.url, "apiVersion": "2021-10-01"},
        },
    )
    assignment = device.register(SymmetricKeyCredential("cu-single", key), payload={"fw": "1.2"})
    assert (assignment.assigned_hub, assignment.payload) == (HUB_B, {"ok": True})
    assert "individualEnrollment" in webhook.requests[0]
    assert webhook.requests[0]["deviceRuntimeContext"]["payload"] == {"fw": "1.2"}


@pytest.mark.parametrize(
    "answer",
    [(200, {"iotHubHostName": "not-linked.azure-devices.net"}), (500, {"error": "boom"})],
    ids=["unlinked-hub", "webhook-error"],
)
def test_custom_webhook_failure_fails_the_registration(
    dps: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    webhook: Webhook,
    answer: tuple[int, Any],
) -> None:
    webhook.decide = lambda request: answer
    key = _group(
        service,
        "custom",
        allocationPolicy="custom",
        customAllocationDefinition={"webhookUrl": webhook.url, "apiVersion": "2021-10-01"},
    )
    with pytest.raises(DeviceRegistrationError) as caught:
        device.register(SymmetricKeyCredential.from_group_key("cu-bad", key))
    assert caught.value.details["status"] == "failed"
    assert caught.value.details["error_code"] == 500002
    assert dps.hub_devices() == []


def _move_group_to(service: DeviceProvisioningClient, group_id: str, hub: str, **extra: Any):
    current = service.enrollment_group.get(id=group_id)
    current.update(allocationPolicy="static", iotHubs=[hub], **extra)
    service.enrollment_group.create_or_update(
        id=group_id, enrollment_group=current, if_match=current["etag"]
    )


@pytest.mark.parametrize(
    ("policy", "moves", "substatus", "twin"),
    [
        (
            {"updateHubAssignment": False, "migrateDeviceData": False},
            False,
            "initialAssignment",
            "old",
        ),
        (
            {"updateHubAssignment": True, "migrateDeviceData": True},
            True,
            "deviceDataMigrated",
            "old",
        ),
        ({"updateHubAssignment": True, "migrateDeviceData": False}, True, "deviceDataReset", "new"),
    ],
    ids=["never", "migrate", "reset"],
)
def test_reprovisioning_follows_the_reprovision_policy(
    dps: LocalDps,
    service: DeviceProvisioningClient,
    policy: dict[str, bool],
    moves: bool,
    substatus: str,
    twin: str,
) -> None:
    key = _group(
        service,
        "movable",
        allocationPolicy="static",
        iotHubs=[HUB_A],
        reprovisionPolicy=policy,
        initialTwin={"tags": {"v": "old"}},
    )
    first = _register(dps, key, "mover-1")
    assert (first["assignedHub"], first["substatus"]) == (HUB_A, "initialAssignment")
    _move_group_to(service, "movable", HUB_C, initialTwin={"tags": {"v": "new"}})

    second = _register(dps, key, "mover-1")

    assert second["assignedHub"] == (HUB_C if moves else HUB_A)
    assert second["substatus"] == substatus
    [entry] = dps.hub_devices()
    assert entry["hub"] == second["assignedHub"]  # moved, not copied
    assert entry["twin"] == {"tags": {"v": twin}}


def test_enrollment_hubs_that_are_not_linked_fail_the_registration(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    key = _group(service, "elsewhere", iotHubs=["unknown-hub.azure-devices.net"])
    state = _register(dps, key, "lost-1")
    assert state["status"] == "failed"
    assert "linked" in state["errorMessage"]


def test_linked_hub_specs_parse() -> None:
    assert LinkedHub.parse("Hub-EU.azure-devices.net=35/2") == LinkedHub(
        "hub-eu.azure-devices.net", 35.0, 2
    )
    assert LinkedHub.parse("hub") == LinkedHub("hub")
    for bad in ("hub=fast", "=3", "hub=1/0", "hub=-1"):
        with pytest.raises(LabDpsError):
            LinkedHub.parse(bad)
