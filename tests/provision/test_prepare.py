"""A slot gets ready for a batch before its first board: batch, recipe, CA key."""

from __future__ import annotations

import pytest

from station.domain.errors import BatchFullError, KeyCustodyError
from station.services.provision import ProvisionRequest
from tests.support.rig import Rig


def test_prepare_loads_the_batch_recipe_and_opens_the_ca(rig: Rig) -> None:
    station = rig.station()
    recipe = station.provisioning().prepare("WO-X509")
    assert recipe.name == "lab-x509"
    # the CA key is open: the first board's issuance needs no HSM login
    assert station.ca().is_open


def test_prepare_refuses_an_unknown_or_sealed_batch(rig: Rig) -> None:
    with pytest.raises(BatchFullError) as caught:
        rig.station().provisioning().prepare("WO-NOPE")
    assert "no batch called 'WO-NOPE'" in caught.value.message
    admin = rig.station()
    admin.batches().open(name="WO-EMPTY", product="lab-x509", size=1, operator="boss")
    admin.batches().seal("WO-EMPTY", operator="boss")
    with pytest.raises(BatchFullError) as caught:
        rig.station().provisioning().prepare("WO-EMPTY")
    assert "not open" in caught.value.message


def test_prepare_reports_a_wrong_hsm_pin_before_any_board(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATION_PKCS11_PIN", "000000")
    with pytest.raises(KeyCustodyError) as caught:
        rig.station().provisioning().prepare("WO-X509")
    assert caught.value.code == "hsm.pin"
    # a symmetric-key batch needs no CA: it is ready
    assert rig.station().provisioning().prepare("WO-SYM").name == "lab-sym"


def test_a_ca_opened_for_one_operator_audits_whoever_acts_next(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se")
    station = rig.station()
    station.provisioning().prepare("WO-X509")  # the CA session opens as tina ...
    link = station.board_session(board.port, handshake=False)
    try:
        outcome = station.provisioning().run(
            # ... then another operator provisions at the same slot: the request names them
            link,
            ProvisionRequest(slot="s1", batch="WO-X509", operator="boss"),
        )
    finally:
        link.close()
    assert outcome.passed, outcome.reason
    issued = [
        e
        for e in station.store().audit.events_for(outcome.registration_id)
        if e.kind == "ca.certificate_issued"
    ]
    assert [e.operator for e in issued] == ["boss"]
