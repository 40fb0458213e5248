"""Credential policies reach DPS under an api-version that defines them (docs/lab-dps.md).

DPS may drop a field its api-version does not define (the lab DPS does), and
``credentialPolicyName`` exists from 2025-07-01-preview on: the station writes and reads
policy-bearing enrollments under 2026-04-01 and everything else under 2021-10-01. An older client's enrollments lack the policy, and
reconcile says so and what to do. Which api-version went out is read from the lab DPS's
request log, never from the client's constants.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from station.adapters.dps.client import AzureEnrollmentService
from station.bootstrap import Overrides, Station, build_station
from station.cli.main import main
from station.config import load_config
from station.domain.errors import EnrollmentServiceError
from station.domain.manifest import Attestation, OperationalCertificate
from station.domain.pushes import ReconcileSubject
from station.services.identities import record_identity
from station_lab.dps import LocalDps
from tests.support.cloud import _client, fast_ek
from tests.support.paths import REPO_ROOT

PRODUCT = "lab-opcert-tpm"
POLICY = "lab-policy"
STABLE = "2026-04-01"  # the newest stable service api-version with credentialPolicyName
OLD = "2021-10-01"


@pytest.fixture
def policy_config(cloud_config_file: Path, tmp_path: Path) -> Path:
    """The cloud station's config, with a TPM product whose certificates come from DPS."""
    root = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "templates", root)
    product = (root / "products" / "lab-tpm.toml").read_text()
    product = product.replace('name = "lab-tpm"', f'name = "{PRODUCT}"')
    product += (
        f'\n[product.operational_certificate]\nsource = "dps"\ncredential_policy = "{POLICY}"\n'
    )
    (root / "products" / f"{PRODUCT}.toml").write_text(product)
    text = cloud_config_file.read_text().replace("[dps]", f'templates_dir = "{root}"\n[dps]')
    cloud_config_file.write_text(text)
    return cloud_config_file


@pytest.fixture
def station(policy_config: Path, clock: Any) -> Iterator[Station]:
    built = build_station(load_config(policy_config, env={}), clock=clock)
    built.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
    yield built
    built.close()


@pytest.fixture
def sealed(station: Station, make_manifest: Callable[..., Any]) -> Callable[..., list[str]]:
    """Open, fill (devices that renew through DPS under the policy) and seal batch NAME."""

    def fill(name: str, count: int, *, product: str = PRODUCT, first_ek: int = 0) -> list[str]:
        station.batches().open(name=name, product=product, size=count, operator="boss")
        symmetric = product == "lab-opcert"  # the shipped product: its devices enroll by group
        ids = []
        with station.store() as store:
            for index in range(count):
                manifest = make_manifest(
                    f"{name}-{index}",
                    attestation=Attestation.SYMMETRIC_KEY if symmetric else Attestation.TPM,
                    batch=name,
                    ek="" if symmetric else fast_ek(first_ek + index),
                )
                if product in {PRODUCT, "lab-opcert"}:
                    manifest = dataclasses.replace(
                        manifest,
                        operational_certificate=OperationalCertificate(POLICY, "ab" * 32),
                    )
                record_identity(
                    store, manifest, clock=station.clock, station="test-station", operator="boss"
                )
                ids.append(manifest.registration_id)
        station.batches().seal(name, operator="boss")
        return ids

    return fill


def _versions(dps: LocalDps, operation: str, since: int = 0) -> list[str]:
    """The api-versions of the stand-in's logged requests of ``operation`` (from entry ``since``)."""
    return [e["apiVersion"] for e in dps.access_log()[since:] if e["operation"] == operation]


def test_a_policy_batch_goes_out_under_2026_04_01_and_reconciles_clean(
    station: Station, dps: LocalDps, sealed: Callable[..., list[str]]
) -> None:
    # a batch without a policy first: it stays on the client's own 2021-10-01
    sealed("WO-PLAIN", 2, product="lab-tpm", first_ek=50)
    assert station.batches().push("WO-PLAIN", operator="boss").complete
    assert station.batches().reconcile("WO-PLAIN", operator="boss").clean
    assert _versions(dps, "enrollment.bulk") == [OLD]
    assert set(_versions(dps, "enrollment.query")) == {OLD}
    ids = sealed("WO-POL", 3)
    mark = len(dps.access_log())

    summary = station.batches().push("WO-POL", operator="boss")

    assert summary.complete
    assert _versions(dps, "enrollment.bulk", mark) == [STABLE]
    service = AzureEnrollmentService.from_connection_file(
        dps.connection_file, ca_bundle=dps.ca_bundle
    )
    try:
        for rid in ids:
            held = service.get(rid, credential_policy=True)
            assert held is not None and held["credentialPolicyName"] == POLICY
    finally:
        service.close()
    mark = len(dps.access_log())
    report = station.batches().reconcile("WO-POL", operator="boss")
    assert report.clean, report
    assert report.without_policy == () and report.policy_advice == ""
    assert set(_versions(dps, "enrollment.query", mark)) == {STABLE}
    assert station.store().batches.get("WO-POL").status == "reconciled"


def test_an_old_client_loses_the_policy_and_reconcile_says_what_to_do(
    station: Station,
    policy_config: Path,
    clock: Any,
    dps: LocalDps,
    sealed: Callable[..., list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = sealed("WO-OLD", 2, first_ek=100)
    # a station from before: the policy-bearing bulk call under the SDK's own api-version
    old_service = AzureEnrollmentService.from_connection_file(
        dps.connection_file, ca_bundle=dps.ca_bundle, credential_policy_api_version=OLD
    )
    old = build_station(
        load_config(policy_config, env={}),
        clock=clock,
        overrides=Overrides(enrollments=old_service),
    )
    try:
        assert old.batches().push("WO-OLD", operator="boss").complete
    finally:
        old.close()
        old_service.close()
    assert _versions(dps, "enrollment.bulk") == [OLD]

    report = station.batches().reconcile("WO-OLD", operator="boss")

    assert not report.clean
    assert report.without_policy == tuple(sorted(ids))
    assert {str(i.status) for i in report.items} == {"different"}
    assert all(i.differences == ("credentialPolicyName",) for i in report.items)
    assert POLICY in report.policy_advice and "operational certificate" in report.policy_advice
    assert station.store().batches.get("WO-OLD").status == "pushed"

    base = ["--config", str(policy_config), "--operator", "boss"]
    capsys.readouterr()
    assert main([*base, "batch", "reconcile", "WO-OLD"]) == 2
    out = capsys.readouterr().out
    assert f"do not carry the credential policy {POLICY}" in out
    assert "station batch reconcile WO-OLD --repush-missing" in out
    assert main([*base, "batch", "reconcile", "WO-OLD", "--json"]) == 2
    shown = json.loads(capsys.readouterr().out)
    assert shown["without_credential_policy"] == sorted(ids)

    # what the advice says: delete them in DPS, re-push the missing ones; now with the policy
    with _client(dps) as client:
        for rid in ids:
            client.enrollment.delete(id=rid)
    mark = len(dps.access_log())
    repaired = station.batches().reconcile("WO-OLD", repush_missing=True, operator="boss")
    assert repaired.repushed == 2 and repaired.clean
    assert _versions(dps, "enrollment.bulk", mark) == [STABLE]


def test_a_group_created_without_its_policy_is_refused_and_reconcile_names_it(
    station: Station,
    policy_config: Path,
    dps: LocalDps,
    sealed: Callable[..., list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sealed("WO-GRP", 1, product="lab-opcert")
    old_service = AzureEnrollmentService.from_connection_file(
        dps.connection_file, ca_bundle=dps.ca_bundle, credential_policy_api_version=OLD
    )
    group = station.batches().enrollment_groups("WO-GRP")[0]
    try:
        answer = old_service.create_group(group)
    finally:
        old_service.close()
    assert "credentialPolicyName" not in answer  # the old api-version dropped it
    assert _versions(dps, "group.put") == [OLD]

    # the station (2026-04-01) finds the group DPS holds differs: the policy is missing
    with pytest.raises(EnrollmentServiceError) as info:
        station.batches().push_groups("WO-GRP", operator="boss")
    assert info.value.details["differences"] == ["credentialPolicyName"]
    assert _versions(dps, "group.get") == [STABLE]
    # and reconcile of the batch, whose devices enroll through the group, names the group
    report = station.batches().reconcile("WO-GRP", operator="boss")
    [line] = report.items
    assert (line.registration_id, str(line.status), line.subject) == (
        "lab-opcert-sym",
        "different",
        ReconcileSubject.GROUP,
    )
    assert line.differences == ("credentialPolicyName",)
    assert report.without_policy == ("lab-opcert-sym",) and not report.clean
    base = ["--config", str(policy_config), "--operator", "boss"]
    capsys.readouterr()
    assert main([*base, "batch", "reconcile", "WO-GRP"]) == 2
    out = capsys.readouterr().out
    assert "different enrollment group lab-opcert-sym (credentialPolicyName)" in out
    assert "station batch groups WO-GRP" in out

    # what the advice says: delete the group in DPS, push the groups again
    with _client(dps) as client:
        client.enrollment_group.delete(id="lab-opcert-sym")
    assert station.batches().push_groups("WO-GRP", operator="boss") == ["lab-opcert-sym"]
    assert station.batches().reconcile("WO-GRP", operator="boss").clean
    assert _versions(dps, "group.put") == [OLD, STABLE, STABLE]  # old; refused (409); again
