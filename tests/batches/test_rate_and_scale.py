"""The client-side rate limit, Retry-After on 429, and a 20,000-device batch on a scaled clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from station.domain.manifest import Attestation
from tests.support.cloud import dps_ids


def _times(dps: Any) -> list[float]:
    stamps = [
        datetime.strptime(e["time"][:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
        for e in dps.access_log()
        if e["billable"] and e["status"] != 429
    ]
    return sorted(stamps)


def _max_in_window(stamps: list[float], window_s: float) -> int:
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize(
    ("dps_limits", "client_limits"),
    [({"rate_limit": 10, "time_scale": 60.0}, {"rate_limit_per_minute": 10, "time_scale": 60.0})],
)
def test_the_client_stays_under_the_dps_rate_limit(cloud, dps, fill_batch) -> None:
    ids = fill_batch(cloud, "WO-L", 250)  # 25 bulk calls at 10 per (scaled) minute of 1 s
    cloud.batches().seal("WO-L", operator="boss")
    summary = cloud.batches().push("WO-L", operator="boss")
    assert summary.pushed == 250
    log = dps.access_log()
    assert [e for e in log if e["status"] == 429] == []  # never throttled: we never exceeded it
    assert summary.throttled == 0
    assert _max_in_window(_times(dps), 1.0) <= 10
    assert sorted(dps_ids(dps)) == sorted(ids)


@pytest.mark.parametrize(
    ("dps_limits", "client_limits"),
    [({"rate_limit": 5, "time_scale": 60.0}, {"rate_limit_per_minute": 0, "time_scale": 1.0})],
)
def test_throttling_is_recovered_with_retry_after(cloud, dps, fill_batch) -> None:
    ids = fill_batch(cloud, "WO-T", 120)  # 12 calls against 5 per second, no client limit
    cloud.batches().seal("WO-T", operator="boss")
    summary = cloud.batches().push("WO-T", operator="boss")
    assert summary.pushed == 120 and summary.failed == {}
    assert summary.throttled > 0
    throttled = [e for e in dps.access_log() if e["status"] == 429]
    assert len(throttled) == summary.throttled
    assert sorted(dps_ids(dps)) == sorted(ids)
    # throttled calls are not billable; the accepted ones stayed within DPS's limit
    assert _max_in_window(_times(dps), 1.0) <= 5


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("dps_limits", "client_limits"),
    [
        (
            {"rate_limit": 1000, "time_scale": 120.0},
            {"rate_limit_per_minute": 1000, "time_scale": 120.0},
        )
    ],
)
def test_a_20000_device_batch_lands_completely_within_the_limit(sym_cloud, dps, fill_batch) -> None:
    # symmetric-key devices whose keys are derived in SoftHSM2 at push time: the cheapest bodies
    # for the stand-in to check, so the test spends its time on the push itself
    ids = fill_batch(
        sym_cloud, "WO-BIG", 20_000, product="lab-sym-push", attestation=Attestation.SYMMETRIC_KEY
    )
    sym_cloud.batches().seal("WO-BIG", operator="boss")
    summary = sym_cloud.batches().push("WO-BIG", operator="boss")
    assert summary.pushed == 20_000 and summary.conflicts == () and summary.failed == {}
    calls = [e for e in dps.access_log() if e["operation"] == "enrollment.bulk"]
    assert len(calls) == 2000 and all(c["status"] == 200 for c in calls)
    assert _max_in_window(_times(dps), 0.5) <= 1000
    held = dps_ids(dps)
    assert len(held) == len(set(held)) == 20_000
    assert set(held) == set(ids)
