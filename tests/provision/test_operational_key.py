"""Products whose operational certificates come from DPS: the line proves the board's P-384
operational key and CSR before the board is locked, and records that it can renew; every bad
board or recipe stops before the lock, with nothing recorded as provisioned."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from station.domain.products import ProductAttestation
from station.domain.provision_events import Failed, Step, StepPassed, steps_for
from station_lab.boards.faults import Faults
from tests.support.paths import REPO_ROOT
from tests.support.rig import BOTH_FIRMWARES, Rig, kill_station_at


def _passed(events: list[object]) -> list[Step]:
    return [e.step for e in events if isinstance(e, StepPassed)]


@BOTH_FIRMWARES
def test_an_operational_certificate_product_reaches_pass_and_records_the_policy(
    rig: Rig, board_state
) -> None:
    (board,) = rig.lab.start(1, "se")
    events: list[object] = []

    outcome = rig.run(board.port, "WO-OPC", events=events)

    assert outcome.passed, outcome
    expected = steps_for(ProductAttestation.SYMMETRIC_KEY, lock=True, operational=True)
    assert _passed(events) == list(expected)
    assert _passed(events).index(Step.OPERATIONAL_KEY) < _passed(events).index(Step.LOCK)
    assert board_state(board.port)["hello"].locked
    station = rig.station()
    manifest = station.store().devices.get(outcome.registration_id).manifest()
    operational = manifest.operational_certificate
    assert operational is not None
    assert (operational.credential_policy, operational.key_curve) == ("lab-policy", "p384")
    assert manifest.symmetric_key is not None  # the onboarding credential, as today
    # the recorded key is the one the (locked) board still signs its renewal CSRs with
    link = station.board_session(board.port)
    try:
        csr = x509.load_der_x509_csr(link.csr(outcome.registration_id, key="operational"))
    finally:
        link.close()
    spki = csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert hashlib.sha256(spki).hexdigest() == operational.public_key_sha256
    rig.verify()


def _assert_stopped_before_lock(
    rig: Rig, board_state, port: str, outcome, events: list[object], reason: str
) -> None:
    assert not outcome.passed
    assert outcome.step is Step.OPERATIONAL_KEY
    assert reason in outcome.reason
    assert outcome.remedy
    assert not board_state(port)["hello"].locked
    failed = [e for e in events if isinstance(e, Failed)]
    assert failed and failed[-1].step is Step.OPERATIONAL_KEY
    station = rig.station()
    assert station.store().devices.get(outcome.registration_id) is None
    rig.verify()


@BOTH_FIRMWARES
def test_a_board_that_cannot_make_a_p384_key_stops_before_the_lock(rig: Rig, board_state) -> None:
    (board,) = rig.lab.start(1, "se", Faults(no_p384=True))
    events: list[object] = []

    outcome = rig.run(board.port, "WO-OPC", events=events)

    _assert_stopped_before_lock(rig, board_state, board.port, outcome, events, "P-384")
    assert outcome.code == "provision.operational_key"


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        (Faults(csr_cn="someone-else"), "someone-else"),
        (Faults(bad_csr_sig=True), "does not verify"),
    ],
    ids=["other-cn", "bad-signature"],
)
def test_a_bad_operational_csr_stops_before_the_lock(
    rig: Rig, board_state, faults: Faults, reason: str
) -> None:
    (board,) = rig.lab.start(1, "se", faults)
    events: list[object] = []

    outcome = rig.run(board.port, "WO-OPC", events=events)

    _assert_stopped_before_lock(rig, board_state, board.port, outcome, events, reason)


def test_a_policy_the_station_does_not_know_stops_before_the_lock(
    rig: Rig, board_state, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "templates", templates)
    recipe = (templates / "products" / "lab-opcert.toml").read_text()
    recipe = recipe.replace('name = "lab-opcert"', 'name = "lab-opcert-ghost"')
    recipe = recipe.replace('credential_policy = "lab-policy"', 'credential_policy = "ghost"')
    (templates / "products" / "lab-opcert-ghost.toml").write_text(recipe)
    rig.config = replace(rig.config, station=replace(rig.config.station, templates_dir=templates))
    admin = rig.station()
    admin.batches().open(name="WO-GHOST", product="lab-opcert-ghost", size=2, operator="boss")
    admin.close()
    rig.stations.remove(admin)
    (board,) = rig.lab.start(1, "se")
    events: list[object] = []

    outcome = rig.run(board.port, "WO-GHOST", events=events)

    _assert_stopped_before_lock(rig, board_state, board.port, outcome, events, "ghost")
    assert outcome.code == "provision.credential_policy_unknown"
    assert "lab-policy" in outcome.remedy  # the known policies are named


def test_a_station_killed_after_the_lock_resumes_with_the_operational_key_kept(
    rig: Rig, board_state
) -> None:
    (board,) = rig.lab.start(1, "se")
    kill_station_at(rig, board.port, "WO-OPC", "passed:lock")
    assert board_state(board.port)["hello"].locked
    link = rig.station().board_session(board.port)
    try:
        before = x509.load_der_x509_csr(link.csr("probe", key="operational")).public_key()
    finally:
        link.close()

    outcome = rig.run(board.port, "WO-OPC")

    assert outcome.passed, outcome
    operational = rig.station().store().devices.get(outcome.registration_id).manifest()
    spki = before.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert operational.operational_certificate is not None
    assert operational.operational_certificate.public_key_sha256 == hashlib.sha256(spki).hexdigest()
    rig.verify()
