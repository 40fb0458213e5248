"""Throttling (429 + Retry-After), quotas and injected faults, seen through the official client."""

from __future__ import annotations

import dataclasses

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from station.domain.errors import LabDpsError
from station_lab.dps import FaultPlan, LocalDps
from station_lab.dps.limits import FaultInjector, RateLimiter, retry_after_headers


def _sym(reg_id: str):
    return {"registrationId": reg_id, "attestation": {"type": "symmetricKey"}}


def test_throttling_answers_429_with_retry_after(dps_options, make_client, conforms):
    # 5 operations per 10 s: far more than the six calls below take, even on a loaded machine
    options = dataclasses.replace(dps_options, rate_limit=5, time_scale=6.0)
    with LocalDps(options) as server:
        client = make_client(server, retry_total=0)
        for n in range(5):
            client.enrollment.create_or_update(id=f"t-{n}", enrollment=_sym(f"t-{n}"))
        with pytest.raises(HttpResponseError) as info:
            client.enrollment.get("t-0")
        response = info.value.response
        assert response.status_code == 429
        conforms("ProvisioningServiceErrorDetails", response.json())
        assert response.json()["errorCode"] == 429001
        # whole seconds, as DPS sends them, even on the lab's scaled clock; the exact (scaled)
        # wait is in x-ms-retry-after-ms
        assert response.headers["Retry-After"] in {str(s) for s in range(1, 11)}
        assert 0 < int(response.headers["x-ms-retry-after-ms"]) <= 10_000
        log = server.access_log()
        assert [e["status"] for e in log] == [200] * 5 + [429]
        assert [e["billable"] for e in log] == [True] * 5 + [False]


def test_client_retries_after_throttling_and_every_call_lands(dps_options, make_client):
    # 2 operations per second: five calls fit in one window only if each took over half a second
    options = dataclasses.replace(dps_options, rate_limit=2, time_scale=60.0)
    with LocalDps(options) as server:
        client = make_client(server, retry_total=20, retry_backoff_factor=0.01)
        for n in range(5):
            client.enrollment.create_or_update(id=f"r-{n}", enrollment=_sym(f"r-{n}"))
        statuses = [e["status"] for e in server.access_log()]
        assert statuses.count(200) == 5
        assert statuses.count(429) >= 1
        assert set(statuses) == {200, 429}
        assert len(list(client.enrollment.query({"query": "SELECT *"}))) == 5


def test_retry_after_is_whole_seconds_in_real_time():
    assert retry_after_headers(0.2) == {"Retry-After": "1", "x-ms-retry-after-ms": "200"}
    assert retry_after_headers(12.01) == {"Retry-After": "13", "x-ms-retry-after-ms": "12010"}
    assert retry_after_headers(3.0) == {"Retry-After": "3", "x-ms-retry-after-ms": "3000"}
    assert retry_after_headers(0.0)["Retry-After"] == "1"  # never "come back at once"


def test_rate_limiter_sliding_window_with_fake_clock():
    now = [100.0]
    limiter = RateLimiter(3, time_scale=2.0, clock=lambda: now[0])  # 3 per 30 s
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire() == pytest.approx(30.0)
    now[0] += 10
    assert limiter.acquire() == pytest.approx(20.0)
    now[0] += 20
    assert limiter.acquire() == 0.0
    assert RateLimiter(0).acquire() == 0.0


def test_enrollment_quota(dps_options, make_client):
    options = dataclasses.replace(dps_options, max_enrollments=3, max_groups=1)
    with LocalDps(options) as server:
        client = make_client(server)
        for n in range(3):
            client.enrollment.create_or_update(id=f"q-{n}", enrollment=_sym(f"q-{n}"))
        with pytest.raises(HttpResponseError) as info:
            client.enrollment.create_or_update(id="q-3", enrollment=_sym("q-3"))
        assert info.value.status_code == 403
        assert info.value.response.json()["errorCode"] == 403002
        result = client.enrollment.run_bulk_operation(
            {"mode": "create", "enrollments": [_sym("q-4")]}
        )
        assert [e["errorCode"] for e in result["errors"]] == [403002]
        # updating an existing record is not blocked by the quota
        client.enrollment.create_or_update(id="q-0", enrollment=_sym("q-0"), if_match="*")
        group = {"enrollmentGroupId": "g-0", "attestation": {"type": "symmetricKey"}}
        client.enrollment_group.create_or_update(id="g-0", enrollment_group=group)
        with pytest.raises(HttpResponseError) as info:
            client.enrollment_group.create_or_update(
                id="g-1", enrollment_group=dict(group, enrollmentGroupId="g-1")
            )
        assert info.value.status_code == 403


def test_injected_500_is_dps_shaped_and_retried(dps, make_client, conforms):
    strict = make_client(dps, retry_total=0)
    dps.faults.inject("500")
    with pytest.raises(HttpResponseError) as info:
        strict.enrollment.create_or_update(id="f-1", enrollment=_sym("f-1"))
    assert info.value.status_code == 500
    conforms("ProvisioningServiceErrorDetails", info.value.response.json())
    with pytest.raises(HttpResponseError):
        strict.enrollment.get("f-1")  # the 500 happened before the write

    patient = make_client(dps, retry_total=3, retry_backoff_factor=0.01)
    dps.faults.inject("500", count=2)
    patient.enrollment.create_or_update(id="f-1", enrollment=_sym("f-1"))
    faults = [e["fault"] for e in dps.access_log() if e["operation"] == "enrollment.put"]
    assert faults == ["500", "500", "500", None]


def test_dropped_connection_before_and_after_the_write(dps, make_client):
    client = make_client(dps, retry_total=0)
    dps.faults.inject("drop")
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        client.enrollment.create_or_update(id="d-1", enrollment=_sym("d-1"))
    with pytest.raises(HttpResponseError):
        client.enrollment.get("d-1")

    dps.faults.inject("drop-after")
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        client.enrollment.create_or_update(id="d-1", enrollment=_sym("d-1"))
    # the write happened even though the client never saw an answer
    assert client.enrollment.get("d-1")["registrationId"] == "d-1"
    faults = [e["fault"] for e in dps.access_log()]
    assert faults.count("drop") == 1
    assert faults.count("drop-after") == 1


def test_random_faults_follow_the_seeded_plan():
    plan = FaultPlan.parse("500=0.2,drop=0.1,drop-after=0.1,latency=0,seed=42")
    assert plan == FaultPlan(error_rate=0.2, drop_rate=0.1, drop_after_rate=0.1, seed=42)
    first = [FaultInjector(plan).next_fault() for _ in range(1)]
    injector_a, injector_b = FaultInjector(plan), FaultInjector(plan)
    run_a = [injector_a.next_fault() for _ in range(500)]
    run_b = [injector_b.next_fault() for _ in range(500)]
    assert run_a == run_b and run_a[:1] == first
    assert 60 < run_a.count("500") < 140
    assert 20 < run_a.count("drop") < 80
    assert run_a.count(None) > 250


@pytest.mark.parametrize("spec", ["boom=1", "500=2", "drop", "latency=-1", "500=x"])
def test_bad_fault_specs_are_refused(spec):
    with pytest.raises(LabDpsError):
        FaultPlan.parse(spec)


def test_latency_fault_delays_answers(dps_options, make_client):
    options = dataclasses.replace(dps_options, faults=FaultPlan(latency_s=2.0))
    with LocalDps(options) as server:
        client = make_client(server, retry_total=0)
        # a client that waits far less than the injected latency gives up
        with pytest.raises(ServiceResponseError):
            client.enrollment.get("slow", read_timeout=0.2)
