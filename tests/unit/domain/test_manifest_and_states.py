import dataclasses
import json

import pytest

from station.domain.errors import TransitionError, ValidationError
from station.domain.manifest import Attestation, IdentityManifest, TpmIdentity
from station.domain.states import (
    DeviceStatus,
    JobState,
    check_device_transition,
    check_job_transition,
)


def test_manifest_round_trips_through_canonical_json(make_manifest) -> None:
    for attestation in Attestation:
        manifest = make_manifest("SN9", attestation=attestation, thumbprint="ab" * 32)
        again = IdentityManifest.from_json(manifest.canonical().decode())
        assert again == manifest
        assert again.digest() == manifest.digest()


def test_manifest_canonical_form_is_sorted_compact_json(make_manifest) -> None:
    text = make_manifest().canonical().decode()
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert data["schema"] == "station.identity/1"
    assert "tpm" not in data and "x509" not in data


def test_digest_changes_with_any_field(make_manifest) -> None:
    manifest = make_manifest()
    changed = dataclasses.replace(manifest, batch="WO-2")
    assert changed.digest() != manifest.digest()


def test_attestation_section_must_match(make_manifest) -> None:
    manifest = make_manifest()
    with pytest.raises(ValidationError, match="needs its tpm section"):
        dataclasses.replace(manifest, attestation=Attestation.TPM)
    with pytest.raises(ValidationError, match="cannot carry tpm"):
        dataclasses.replace(manifest, tpm=TpmIdentity(endorsement_key="AA", ek_sha256="00"))


def test_registration_id_rules_apply_to_manifests(make_manifest) -> None:
    with pytest.raises(ValidationError):
        make_manifest(registration_id="Upper-Case")
    with pytest.raises(ValidationError):
        make_manifest(registration_id="a" * 65, attestation=Attestation.X509)
    assert make_manifest(registration_id="a" * 128).registration_id == "a" * 128


def test_unknown_schema_is_refused(make_manifest) -> None:
    data = make_manifest().to_dict()
    data["schema"] = "other/9"
    with pytest.raises(ValidationError, match="unknown manifest schema"):
        IdentityManifest.from_dict(data)
    with pytest.raises(ValidationError, match="malformed"):
        IdentityManifest.from_dict({"schema": "station.identity/1"})


def test_job_transitions() -> None:
    assert check_job_transition(JobState.CREATED, JobState.RUNNING) is JobState.RUNNING
    assert check_job_transition(JobState.INTERRUPTED, JobState.RUNNING) is JobState.RUNNING
    assert check_job_transition(JobState.FAILED, JobState.VOIDED) is JobState.VOIDED
    with pytest.raises(TransitionError) as info:
        check_job_transition(JobState.PASSED, JobState.RUNNING)
    assert info.value.details == {"kind": "job", "current": "passed", "target": "running"}
    assert JobState.PASSED.is_final and not JobState.FAILED.is_final


def test_device_transitions() -> None:
    assert check_device_transition(DeviceStatus.PROVISIONED, DeviceStatus.VOIDED)
    with pytest.raises(TransitionError):
        check_device_transition(DeviceStatus.VOIDED, DeviceStatus.PROVISIONED)
