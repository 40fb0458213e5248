"""Sealing, exports (bulk JSON against the swagger, CSV) and the signed manifest from SoftHSM2."""

from __future__ import annotations

import csv
import json

import pytest

from station.domain.errors import (
    PermissionDeniedError,
    TransitionError,
    UnresolvedJobsError,
    ValidationError,
)
from station.domain.manifest import Attestation
from station.domain.records import JobRecord, Role
from station.domain.states import JobState
from station.services.identities import void_identity
from station.services.manifests import verify_manifest_bytes


def _job(batch: str, slot: str, state: JobState) -> JobRecord:
    return JobRecord(
        slot=slot,
        batch=batch,
        state=state,
        step="inject-cert",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        board_serial=f"SN-{slot}",
    )


def test_sealing_with_unresolved_jobs_is_refused_with_the_list(cloud, fill_batch) -> None:
    fill_batch(cloud, "WO-S", 2)
    store = cloud.store()
    store.jobs.save(_job("WO-S", "slot-3", JobState.INTERRUPTED))
    store.jobs.save(_job("WO-S", "slot-4", JobState.PASSED))
    store.jobs.save(_job("OTHER", "slot-5", JobState.RUNNING))
    with pytest.raises(UnresolvedJobsError) as info:
        cloud.batches().seal("WO-S", operator="boss")
    assert len(info.value.details["jobs"]) == 1
    assert "slot-3" in info.value.details["jobs"][0] and "interrupted" in info.value.message
    assert store.batches.get("WO-S").status == "open"


def test_seal_freezes_the_batch_and_detects_later_changes(cloud, fill_batch) -> None:
    ids = fill_batch(cloud, "WO-Z", 3)
    seal = cloud.batches().seal("WO-Z", operator="boss")
    assert seal.count == 3 and len(seal.digest) == 64
    assert cloud.store().batches.get("WO-Z").status == "sealed"
    events = [e.kind for e in cloud.store().audit.events_for("WO-Z")]
    assert events == ["batch.opened", "batch.sealed"]
    with pytest.raises(TransitionError):
        cloud.batches().seal("WO-Z", operator="boss")
    assert cloud.batches().seal_of("WO-Z").digest == seal.digest
    void_identity(
        cloud.store(), ids[1], reason="scrap", clock=cloud.clock, station="s", operator="boss"
    )
    with pytest.raises(ValidationError, match="changed after it was sealed"):
        cloud.batches().export("WO-Z", operator="boss")


def test_technicians_may_not_seal_or_export(cloud, fill_batch) -> None:
    fill_batch(cloud, "WO-Q", 1)
    cloud.operators().add("tina", Role.TECHNICIAN, operator="boss")
    with pytest.raises(PermissionDeniedError, match="seal a batch"):
        cloud.batches().seal("WO-Q", operator="tina")
    cloud.batches().seal("WO-Q", operator="boss")
    with pytest.raises(PermissionDeniedError, match="export a batch"):
        cloud.batches().export("WO-Q", operator="tina")


def test_export_writes_swagger_valid_bulk_json_csv_and_a_verifiable_manifest(
    cloud, fill_batch, conforms, pki
) -> None:
    ids = fill_batch(cloud, "WO-X", 23, product="lab-x509", attestation=Attestation.X509)
    cloud.batches().seal("WO-X", operator="boss")
    result = cloud.batches().export("WO-X", operator="boss")
    assert set(result.files) == {"bulk-json", "csv", "manifest"}
    operations = json.loads(result.files["bulk-json"].read_text())
    assert [len(op["enrollments"]) for op in operations] == [10, 10, 3]
    for operation in operations:
        conforms("BulkEnrollmentOperation", operation)
    assert [e["registrationId"] for op in operations for e in op["enrollments"]] == ids
    rows = list(csv.DictReader(result.files["csv"].open(encoding="utf-8")))
    assert [r["registration_id"] for r in rows] == ids
    assert all(r["certificate_sha256"] and r["manifest_sha256"] for r in rows)
    report = verify_manifest_bytes(
        result.files["manifest"].read_bytes(), cloud.manifest_trust(pki.root_pem)
    )
    assert report.ok, report.findings
    assert report.header is not None and report.header.count == 23
    assert report.registration_ids == tuple(ids)
    assert report.header.seal_sha256 == cloud.batches().seal_of("WO-X").digest
    assert cloud.store().batches.get("WO-X").status == "exported"


def test_symmetric_keys_never_reach_a_file(cloud, fill_batch, conforms) -> None:
    fill_batch(cloud, "WO-Y", 4, product="lab-sym", attestation=Attestation.SYMMETRIC_KEY)
    cloud.batches().seal("WO-Y", operator="boss")
    result = cloud.batches().export("WO-Y", operator="boss")
    assert json.loads(result.files["bulk-json"].read_text()) == []
    assert result.group_enrolled == 4
    for path in result.files.values():
        text = path.read_text()
        assert "primaryKey" not in text and "secondaryKey" not in text
    groups = json.loads(result.files["groups"].read_text())
    assert [g["attestation"] for g in groups] == [{"type": "symmetricKey"}]
    for group in groups:
        conforms("EnrollmentGroup", group)


def test_x509_group_references_the_station_intermediate(cloud, conforms, pki) -> None:
    from station.domain.enrollments import x509_ca_group

    template = cloud.products().enrollment_template("default")
    ica_pem = pki.chain_file.read_text().split("-----END CERTIFICATE-----")[1].strip()
    ica_pem += "\n-----END CERTIFICATE-----\n"
    group = x509_ca_group("line-3", template, ca_certificate_pem=ica_pem, batch="B")
    conforms("EnrollmentGroup", group)
    assert group["attestation"]["x509"]["signingCertificates"]["primary"]["certificate"] == ica_pem
    assert group["initialTwin"]["tags"]["batch"] == "B"
    by_name = x509_ca_group("line-3", template, ca_reference="station-ica")
    conforms("EnrollmentGroup", by_name)
    with pytest.raises(ValidationError):
        x509_ca_group("line-3", template)


def test_exporting_requires_a_seal(cloud, fill_batch) -> None:
    fill_batch(cloud, "WO-N", 1)
    with pytest.raises(TransitionError, match="not sealed"):
        cloud.batches().export("WO-N", operator="boss")
