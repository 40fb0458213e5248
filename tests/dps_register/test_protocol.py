"""The device API's protocol: polling, Retry-After, per-device poll limit, status lookup, errors."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station_lab.dps import DpsOptions, LocalDps
from station_lab.dps.allocation import Allocator, LinkedHub
from station_lab.dps.errors import ApiError
from station_lab.dps.registration import DeviceApiSettings, DeviceRegistrationApi
from station_lab.dps.service import ENROLLMENTS, ApiRequest, EnrollmentApi
from station_lab.dps.store import DpsStore
from station_lab.firstboot import (
    DeviceRegistrationClient,
    DpsEndpoint,
    SymmetricKeyCredential,
    sas_token,
)
from tests.support.registration import call


def _enrolled(service: DeviceProvisioningClient, reg_id: str) -> SymmetricKeyCredential:
    key = base64.b64encode(os.urandom(32)).decode("ascii")
    service.enrollment.create_or_update(
        id=reg_id,
        enrollment={
            "registrationId": reg_id,
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
        },
    )
    return SymmetricKeyCredential(reg_id, key)


def _auth(dps: LocalDps, credential: SymmetricKeyCredential) -> dict[str, str]:
    token = sas_token(dps.id_scope, credential.registration_id, credential.signer())
    return {"Authorization": token}


def test_polls_are_limited_to_five_per_ten_seconds_per_device(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    credential = _enrolled(service, "poller-1")
    other = _enrolled(service, "poller-2")
    base = f"/{dps.id_scope}/registrations/poller-1"
    started = call(dps, "PUT", f"{base}/register", {}, headers=_auth(dps, credential))
    operation = f"{base}/operations/{started.body['operationId']}"
    statuses = [call(dps, "GET", operation, headers=_auth(dps, credential)) for _ in range(6)]
    assert [a.status for a in statuses] == [200] * 5 + [429]
    throttled = statuses[-1]
    assert throttled.body["errorCode"] == 429001
    assert throttled.headers["retry-after"] in {str(s) for s in range(1, 11)}  # whole seconds
    # the limit is per device: another device polls freely
    base2 = f"/{dps.id_scope}/registrations/poller-2"
    started2 = call(dps, "PUT", f"{base2}/register", {}, headers=_auth(dps, other))
    poll2 = call(
        dps, "GET", f"{base2}/operations/{started2.body['operationId']}", headers=_auth(dps, other)
    )
    assert poll2.status == 200


def test_operation_result_is_dps_shaped(dps: LocalDps, service: DeviceProvisioningClient) -> None:
    credential = _enrolled(service, "shape-1")
    base = f"/{dps.id_scope}/registrations/shape-1"
    started = call(
        dps,
        "PUT",
        f"{base}/register",
        {"registrationId": "shape-1"},
        headers=_auth(dps, credential),
    )
    done = call(
        dps,
        "GET",
        f"{base}/operations/{started.body['operationId']}",
        headers=_auth(dps, credential),
    )
    assert done.status == 200
    assert done.body["operationId"] == started.body["operationId"]
    assert done.body["status"] == "assigned"
    state = done.body["registrationState"]
    assert {
        "registrationId",
        "createdDateTimeUtc",
        "assignedHub",
        "deviceId",
        "status",
        "substatus",
        "lastUpdatedDateTimeUtc",
        "etag",
    } <= set(state)
    assert state["createdDateTimeUtc"].endswith("Z") and len(state["createdDateTimeUtc"]) == 28


def test_status_lookup_needs_the_device_credential(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    credential = _enrolled(service, "lookup-1")
    path = f"/{dps.id_scope}/registrations/lookup-1"
    before = call(dps, "POST", path, {"registrationId": "lookup-1"}, headers=_auth(dps, credential))
    assert (before.status, before.body["errorCode"]) == (404, 404203)
    assignment = device.register(credential)
    found = call(dps, "POST", path, {"registrationId": "lookup-1"}, headers=_auth(dps, credential))
    assert found.status == 200
    assert found.body["assignedHub"] == assignment.assigned_hub
    assert found.body["etag"] == assignment.etag
    stranger = SymmetricKeyCredential("lookup-1", base64.b64encode(os.urandom(32)).decode())
    refused = call(dps, "POST", path, {"registrationId": "lookup-1"}, headers=_auth(dps, stranger))
    assert (refused.status, refused.body["errorCode"]) == (401, 401002)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/0ne99999999/registrations/err-1/register", 404, 404205),
        ("/{scope}/registrations/err-1/operations/5.nope.nope", 404, 404204),
        ("/{scope}/registrations/Bad!Id/register", 400, 400009),
    ],
    ids=["unknown-scope", "unknown-operation", "bad-id"],
)
def test_refusals_have_dps_error_bodies(
    dps: LocalDps, service: DeviceProvisioningClient, path: str, status: int, code: int
) -> None:
    credential = _enrolled(service, "err-1")
    method = "GET" if "/operations/" in path else "PUT"
    answer = call(
        dps,
        method,
        path.format(scope=dps.id_scope),
        None if method == "GET" else {},
        headers=_auth(dps, credential),
    )
    assert answer.status == status
    assert answer.body["errorCode"] == code
    assert answer.headers["x-ms-error-code"] == str(code)
    assert answer.body["trackingId"]


def test_body_and_credentials_are_checked(dps: LocalDps, service: DeviceProvisioningClient) -> None:
    credential = _enrolled(service, "err-2")
    path = f"/{dps.id_scope}/registrations/err-2/register"
    mismatch = call(dps, "PUT", path, {"registrationId": "err-3"}, headers=_auth(dps, credential))
    assert (mismatch.status, mismatch.body["errorCode"]) == (400, 400010)
    anonymous = call(dps, "PUT", path, {"registrationId": "err-2"})
    assert (anonymous.status, anonymous.body["errorCode"]) == (401, 401002)
    service_token = {
        "Authorization": "SharedAccessSignature sr=x&sig=y&se=1&skn=provisioningserviceowner"
    }
    wrong_kind = call(dps, "PUT", path, {}, headers=service_token)
    assert (wrong_kind.status, wrong_kind.body["errorCode"]) == (401, 401002)
    no_version = call(dps, "PUT", path, {}, headers=_auth(dps, credential), api_version="")
    assert no_version.status == 400


# --------------------------------------------------------------------------- assigning, in-process
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_operation_stays_assigning_until_the_delay_has_passed(tmp_path: Path) -> None:
    store = DpsStore(tmp_path / "dps.sqlite3")
    try:
        key = base64.b64encode(os.urandom(32)).decode("ascii")
        EnrollmentApi(store).put(
            ENROLLMENTS,
            ApiRequest(
                {"id": "slow-1"},
                {},
                {
                    "registrationId": "slow-1",
                    "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
                },
                has_body=True,
            ),
        )
        clock = FakeClock()
        api = DeviceRegistrationApi(
            store,
            Allocator([LinkedHub("only-hub")]),
            DeviceApiSettings(id_scope="0ne0000test", retry_after_s=3, assignment_delay_s=5),
            clock=clock,
        )
        token = sas_token("0ne0000test", "slow-1", SymmetricKeyCredential("slow-1", key).signer())
        params = {"idScope": "0ne0000test", "id": "slow-1"}
        started = api.register(ApiRequest(params, {"authorization": token}, {}, has_body=True))
        assert started.status == 202
        assert started.headers["Retry-After"] == "3"
        poll = ApiRequest(
            {**params, "operationId": started.body["operationId"]}, {"authorization": token}
        )
        waiting = api.operation_status(poll)
        assert (waiting.status, waiting.body["status"]) == (202, "assigning")
        clock.now += 4
        assert api.operation_status(poll).headers["Retry-After"] == "1"
        clock.now += 1
        done = api.operation_status(poll)
        assert (done.status, done.body["registrationState"]["assignedHub"]) == (200, "only-hub")
        clock.now += 0.5
        with pytest.raises(ApiError) as caught:
            for _ in range(5):
                api.operation_status(poll)
        assert caught.value.error_code == 429001
    finally:
        store.close()


def test_client_waits_out_assigning(tmp_path: Path) -> None:
    options = DpsOptions(
        state_dir=tmp_path / "dps", retry_after_s=0.3, assignment_delay_s=1.0, rate_limit=0
    )
    with LocalDps(options) as dps:
        client = DeviceProvisioningClient.from_connection_string(
            dps.connection_string(), connection_verify=str(dps.ca_bundle)
        )
        try:
            credential = _enrolled(client, "slow-2")
        finally:
            client.close()
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

        device = DeviceRegistrationClient(
            DpsEndpoint(dps.host_name, dps.id_scope, dps.ca_bundle), sleep=sleep
        )
        assignment = device.register(credential)
        assert assignment.assigned_hub
        polls = [e for e in dps.access_log() if e["operation"] == "device.operation"]
        assert len(polls) == len(waits) >= 2  # it polled while assigning, waiting each time
        assert all(w <= 0.3 + 1e-9 for w in waits)  # never longer than Retry-After
        assert [e["status"] for e in polls][-1] == 200
        assert {e["status"] for e in polls[:-1]} == {202}


def test_stand_in_prints_its_id_scope(dps: LocalDps) -> None:
    assert dps.id_scope == "0ne00000001"
    assert dps.device_endpoint == dps.endpoint


def test_hub_registry_is_readable_over_the_lab_api(
    dps: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    from station_lab.dps.auth import READER_POLICY, make_token

    assignment = device.register(_enrolled(service, "lab-read-1"))
    token = make_token(dps.host_name, dps.policies[READER_POLICY])
    everything = call(dps, "GET", "/lab/hubDevices", headers={"Authorization": token})
    assert [d["registrationId"] for d in everything.body] == ["lab-read-1"]
    one_hub = call(
        dps, "GET", f"/lab/hubs/{assignment.assigned_hub}/devices", headers={"Authorization": token}
    )
    assert one_hub.body == everything.body
    other = call(
        dps,
        "GET",
        "/lab/hubs/elsewhere.azure-devices.net/devices",
        headers={"Authorization": token},
    )
    assert other.body == []
    assert call(dps, "GET", "/lab/hubDevices").status == 401
