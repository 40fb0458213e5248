"""Pushing batches into the local DPS stand-in through the official client."""

from __future__ import annotations

import math
from typing import Any

import pytest

from station.domain.errors import PermissionDeniedError, TransitionError
from station.domain.pushes import PushState
from station.domain.records import Role
from tests.support.cloud import dps_ids


def _bulk_calls(dps: Any) -> list[dict[str, Any]]:
    return [e for e in dps.access_log() if e["operation"] == "enrollment.bulk"]


@pytest.mark.parametrize("count", [1, 10, 11, 1000])
def test_push_puts_every_enrollment_in_dps_exactly_once(cloud, dps, fill_batch, count) -> None:
    ids = fill_batch(cloud, "WO-P", count)
    cloud.batches().seal("WO-P", operator="boss")
    seen: list[int] = []
    summary = cloud.batches().push("WO-P", progress=lambda p: seen.append(p.done), operator="boss")
    assert (summary.total, summary.pushed, summary.conflicts, summary.failed) == (
        count,
        count,
        (),
        {},
    )
    assert sorted(dps_ids(dps)) == sorted(ids)
    calls = _bulk_calls(dps)
    assert len(calls) == math.ceil(count / 10)  # chunks of at most 10, none resent
    assert all(c["status"] == 200 for c in calls)
    assert summary.billable_operations == len(calls)
    assert seen[-1] == count and seen == sorted(seen)
    assert cloud.store().batches.get("WO-P").status == "pushed"
    # a second push finds nothing left to do and calls DPS not at all
    again = cloud.batches().push("WO-P", operator="boss")
    assert again.pushed == count and again.billable_operations == 0
    assert len(_bulk_calls(dps)) == len(calls)


def test_pushed_enrollments_equal_the_records(cloud, dps, fill_batch) -> None:
    fill_batch(cloud, "WO-E", 3)
    cloud.batches().seal("WO-E", operator="boss")
    cloud.batches().push("WO-E", operator="boss")
    report = cloud.batches().reconcile("WO-E", operator="boss")
    assert report.clean
    assert report.counts == {"equal": 3}
    assert cloud.store().batches.get("WO-E").status == "reconciled"


def test_push_needs_a_sealed_batch_and_the_right_role(cloud, fill_batch) -> None:
    fill_batch(cloud, "WO-R", 2)
    with pytest.raises(TransitionError, match="not sealed"):
        cloud.batches().push("WO-R", operator="boss")
    cloud.batches().seal("WO-R", operator="boss")
    cloud.operators().add("tina", Role.TECHNICIAN, operator="boss")
    with pytest.raises(PermissionDeniedError, match="to push a batch you must be"):
        cloud.batches().push("WO-R", operator="tina")


def test_500s_and_lost_answers_are_recovered_exactly_once(cloud, dps, fill_batch) -> None:
    ids = fill_batch(cloud, "WO-F", 40)
    cloud.batches().seal("WO-F", operator="boss")
    dps.faults.inject("500", count=3)
    summary = cloud.batches().push("WO-F", operator="boss")
    assert summary.pushed == 40 and summary.retried >= 3
    dps.faults.inject("drop-after", count=1)  # DPS wrote the chunk, the answer never came
    # a fresh batch makes the lost answer land in the middle of a push
    more = fill_batch(cloud, "WO-G", 25)
    cloud.batches().seal("WO-G", operator="boss")
    summary = cloud.batches().push("WO-G", operator="boss")
    assert summary.pushed == 25 and summary.conflicts == () and summary.failed == {}
    assert sorted(dps_ids(dps)) == sorted(ids + more)
    statuses = [e["status"] for e in _bulk_calls(dps)]
    assert statuses.count(500) >= 3


def test_conflicts_are_surfaced_not_overwritten(cloud, dps, fill_batch) -> None:
    ids = fill_batch(cloud, "WO-C", 12)
    cloud.batches().seal("WO-C", operator="boss")
    from tests.support.cloud import _client

    with _client(dps) as client:
        # someone else enrolled one of our IDs with another EK, and another identically
        theirs = {
            "registrationId": ids[3],
            "attestation": {"type": "tpm", "tpm": {"endorsementKey": _other_ek()}},
        }
        client.enrollment.create_or_update(id=ids[3], enrollment=theirs)
        ours = cloud.batches()._body_for(  # the exact body the station pushes
            cloud.products().product("lab-tpm"), cloud.products().enrollment_template("default")
        )(ids[5])[0]
        client.enrollment.create_or_update(id=ids[5], enrollment=ours)
        summary = cloud.batches().push("WO-C", operator="boss")
        assert summary.pushed == 11
        assert [c.registration_id for c in summary.conflicts] == [ids[3]]
        conflict = summary.conflicts[0]
        assert "attestation" in conflict.differences()
        assert (
            conflict.theirs["attestation"]["tpm"] == theirs["attestation"]["tpm"]["endorsementKey"]
        )
        assert conflict.ours["attestation"]["tpm"] != conflict.theirs["attestation"]["tpm"]
        # DPS still holds their version
        stored = client.enrollment.get(ids[3])
        assert (
            stored["attestation"]["tpm"]["endorsementKey"]
            == theirs["attestation"]["tpm"]["endorsementKey"]
        )
    states = {e.registration_id: e.state for e in cloud.push_outbox().entries("WO-C")}
    assert states[ids[3]] is PushState.CONFLICT and states[ids[5]] is PushState.PUSHED
    assert cloud.store().batches.get("WO-C").status == "sealed"  # not complete: a human decides


def _other_ek() -> str:
    from tests.support.certs import new_ek

    return new_ek(999)
