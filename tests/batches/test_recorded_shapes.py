"""Push, re-push after a crash and reconcile on the shapes real DPS answers in.

The answers come from :class:`RecordedShapeDps`, which is first checked against the Azure SDK's
recordings of real DPS (``data/dps_recorded_shapes.json``, sources in ``data/SOURCES.md``).
Real DPS never shows symmetric keys on GET or query: a station that compared keys through them
would call every pushed symmetric-key device a conflict and every reconcile "different".
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from station.bootstrap import Overrides, Station, build_station
from station.domain.errors import DpsThrottledError
from station.domain.manifest import Attestation
from station.domain.pushes import PushState
from tests.support.recorded_dps import (
    GENERATED_KEY_BYTES,
    SERVER_FIELDS,
    RecordedShapeDps,
    recordings,
)


def _server_blanked(answer: dict[str, Any] | None) -> dict[str, Any]:
    """An answer with the server-made fields (etag, times) blanked."""
    assert answer is not None
    return {k: ("<server>" if k in SERVER_FIELDS else v) for k, v in answer.items()}


def _keys_blanked(answer: dict[str, Any]) -> dict[str, Any]:
    """A copy of an answer with its symmetric key values blanked (the recorder sanitized them)."""
    blanked = copy.deepcopy(answer)
    mechanism = blanked.get("attestation", blanked)
    if "symmetricKey" in mechanism:
        mechanism["symmetricKey"] = dict.fromkeys(mechanism["symmetricKey"], "<key>")
    return blanked


@pytest.mark.parametrize("entry", ["symmetric_key_enrollment", "tpm_enrollment", "x509_enrollment"])
def test_the_double_answers_each_enrollment_as_real_dps_did(entry: str) -> None:
    recorded = recordings()[entry]
    recorded_info = (
        recorded["put"]["attestation"].get("x509", {}).get("clientCertificates", {}).get("primary")
    )
    double = RecordedShapeDps(info_of=lambda pem: dict(recorded_info["info"]))
    rid = recorded["request"]["registrationId"]
    assert _server_blanked(double.put(recorded["request"])) == _server_blanked(recorded["put"])
    assert _server_blanked(double.get(rid)) == _server_blanked(recorded["get"])
    assert [_server_blanked(item) for item in double.query()] == [
        _server_blanked(recorded["query"])
    ]
    if "attestationmechanism" in recorded:
        assert double.attestation_mechanism(rid) == recorded["attestationmechanism"]


def test_the_double_answers_nulls_generated_keys_groups_and_order_as_recorded() -> None:
    data = recordings()
    double = RecordedShapeDps()
    first, generated = (
        data["symmetric_key_enrollment"],
        data["symmetric_key_enrollment_generated_keys"],
    )
    double.put(first["request"])
    answer = double.put(generated["request"])
    # keys sent as null are generated; null fields are left out, provisioningStatus stays null
    assert _keys_blanked(_server_blanked(answer)) == _keys_blanked(
        _server_blanked(generated["put"])
    )
    keys = answer["attestation"]["symmetricKey"]
    assert {len(base64.b64decode(k)) for k in keys.values()} == {GENERATED_KEY_BYTES}
    # the recorded query listed the second enrollment first
    listed = [item["registrationId"] for item in double.query()]
    assert listed == [generated["request"]["registrationId"], first["request"]["registrationId"]]
    group = data["symmetric_key_group"]
    created = double.create_group(group["request"])
    gid = group["request"]["enrollmentGroupId"]
    assert _server_blanked(created) == _server_blanked(group["put"])
    assert _server_blanked(double.group(gid, "get")) == _server_blanked(group["get"])
    assert _server_blanked(double.group(gid, "query")) == _server_blanked(group["query"])
    assert double.group(gid, "attestationmechanism") == group["attestationmechanism"]


@pytest.fixture
def on_double(sym_cloud: Station) -> Iterator[Callable[[RecordedShapeDps], Station]]:
    """``sym_cloud``'s station with DPS answered by ``double`` (handed in as an override)."""
    built: list[Station] = []

    def build(double: RecordedShapeDps) -> Station:
        station = build_station(
            sym_cloud.config, clock=sym_cloud.clock, overrides=Overrides(enrollments=double)
        )
        built.append(station)
        return station

    yield build
    for station in built:
        station.close()


def _crash_after_sending(station: Station, batch: str) -> None:
    """What a kill between the bulk call and recording its answer leaves: 'sending' rows."""
    outbox = station.push_outbox()
    ids = [entry.registration_id for entry in outbox.entries(batch)]
    outbox.mark(batch, ids, PushState.SENDING)


@pytest.mark.parametrize(
    ("product", "attestation"),
    [
        ("lab-sym-push", Attestation.SYMMETRIC_KEY),
        ("lab-tpm", Attestation.TPM),
        ("lab-x509", Attestation.X509),
    ],
)
def test_push_repush_after_a_crash_and_reconcile_find_every_device_equal(
    on_double: Callable[[RecordedShapeDps], Station],
    fill_batch: Any,
    product: str,
    attestation: Attestation,
) -> None:
    double = RecordedShapeDps()
    station = on_double(double)
    ids = fill_batch(station, "WO-REAL", 12, product=product, attestation=attestation)
    batches = station.batches()
    batches.seal("WO-REAL", operator="boss")
    first = batches.push("WO-REAL", operator="boss")
    assert (first.pushed, first.conflicts, first.failed) == (12, (), {})

    _crash_after_sending(station, "WO-REAL")
    again = batches.push(
        "WO-REAL", operator="boss"
    )  # DPS answers 409201 for each; the station compares
    assert (again.pushed, again.conflicts, again.failed) == (12, (), {})
    assert double.calls.count("get") == 12

    report = batches.reconcile("WO-REAL", operator="boss")
    assert {item.registration_id: str(item.status) for item in report.items} == dict.fromkeys(
        ids, "equal"
    )
    assert report.clean and station.store().batches.get("WO-REAL").status == "reconciled"
    if attestation is Attestation.SYMMETRIC_KEY:
        # the keys were read where real DPS shows them, once per device and comparison
        assert double.calls.count("attestationmechanism") == 24
        outbox_text = repr(list(station.push_outbox().entries("WO-REAL")))
        stored = double.attestation_mechanism(ids[0])
        assert stored is not None
        assert stored["symmetricKey"]["primaryKey"] not in outbox_text


def test_a_key_that_differs_in_dps_is_a_conflict_named_by_fingerprint(
    on_double: Callable[[RecordedShapeDps], Station], fill_batch: Any
) -> None:
    double = RecordedShapeDps()
    station = on_double(double)
    ids = fill_batch(
        station, "WO-KEY", 3, product="lab-sym-push", attestation=Attestation.SYMMETRIC_KEY
    )
    batches = station.batches()
    batches.seal("WO-KEY", operator="boss")
    # someone enrolled one of our devices first, letting DPS generate its keys
    double.put({"registrationId": ids[1], "attestation": {"type": "symmetricKey"}})
    summary = batches.push("WO-KEY", operator="boss")
    assert summary.pushed == 2 and [c.registration_id for c in summary.conflicts] == [ids[1]]
    conflict = summary.conflicts[0]
    assert "attestation" in conflict.differences()
    theirs = conflict.theirs["attestation"]["symmetricKey"]
    assert all(fingerprint.startswith("sha256:") for fingerprint in theirs)
    report = batches.reconcile("WO-KEY", operator="boss")
    found = {item.registration_id: item for item in report.items}
    assert str(found[ids[1]].status) == "different"
    assert "attestation" in found[ids[1]].differences
    assert [str(found[rid].status) for rid in (ids[0], ids[2])] == ["equal", "equal"]


def test_reconcile_reads_dps_page_by_page_and_a_throttled_page_is_asked_again(
    on_double: Callable[[RecordedShapeDps], Station],
    fill_batch: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    double = RecordedShapeDps()
    throttled: list[str | None] = []
    real_page = double.query_page

    def page_throttled_once(continuation: str | None = None, **kwargs: Any) -> Any:
        if continuation is not None and not throttled:  # the second page: 429 once
            throttled.append(continuation)
            raise DpsThrottledError("DPS throttled the station (429)", retry_after_s=0.0)
        return real_page(continuation, **kwargs)

    monkeypatch.setattr(double, "query_page", page_throttled_once)
    station = on_double(double)
    ids = fill_batch(station, "WO-PAGES", 12)
    batches = station.batches()
    batches.seal("WO-PAGES", operator="boss")
    batches.push("WO-PAGES", operator="boss")
    report = batches.reconcile("WO-PAGES", operator="boss")
    assert report.counts == {"equal": 12} and len(ids) == 12
    # pages of 5: three pages, the throttled second one asked twice, the first one not again
    assert double.calls.count("query") == 3 and throttled == ["5"]


def test_groups_pushed_again_are_found_equal_on_the_recorded_shapes(
    on_double: Callable[[RecordedShapeDps], Station], fill_batch: Any
) -> None:
    double = RecordedShapeDps()
    station = on_double(double)
    fill_batch(station, "WO-GRP", 1, product="lab-sym", attestation=Attestation.SYMMETRIC_KEY)
    assert station.batches().push_groups("WO-GRP", operator="boss") == ["lab-sym-sym"]
    assert station.batches().push_groups("WO-GRP", operator="boss") == [
        "lab-sym-sym"
    ]  # 409, then found equal
    assert double.calls == ["group.put", "group.put", "group.get"]
    assert double.group("lab-sym-sym", "get")["attestation"] == {"type": "symmetricKey"}
