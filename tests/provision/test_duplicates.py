"""Boards the station must stop: re-plugged provisioned boards, clones, wrong products, full
batches; and QA rework, which voids the old identity with an audited reason."""

from __future__ import annotations

import shutil

import pytest

from station.adapters.keys.device_crypto import SoftInjectedKey
from station.domain.errors import BoardDisconnectedError, ProvisionError
from station.domain.provision_events import Failed, Step, explain
from station.domain.records import CertificateStatus, DeviceQuery
from station_lab.boards.faults import Faults
from tests.support.rig import BOTH_FIRMWARES, Rig


def test_replugged_provisioned_board_is_stopped_with_date_and_batch(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se")
    first = rig.run(board.port, "WO-X509")
    assert first.passed
    rig.lab.replug(board.index)
    events: list[object] = []
    again = rig.run(board.port, "WO-X509", events=events)

    assert not again.passed
    assert again.code == "identity.duplicate" and again.step is Step.DUPLICATES
    device = rig.station().store().devices.get(first.registration_id)
    assert f"already provisioned on {device.created_at[:10]} in batch WO-X509" in again.reason
    assert "QA" in again.remedy
    failed = [e for e in events if isinstance(e, Failed)]
    assert len(failed) == 1 and failed[0].detail.startswith("identity.duplicate")
    # the failure is in the audit trail exactly as the batch report counts it
    store = rig.station().store()
    payloads = [e.payload for e in store.audit.events() if e.kind == "job.failed"]
    assert payloads == [{"batch": "WO-X509", "reason": again.reason, "code": "identity.duplicate"}]
    assert store.devices.count(DeviceQuery(serial=board.serial)) == 1
    rig.verify()


@BOTH_FIRMWARES
def test_cloned_tpm_is_caught(rig: Rig) -> None:
    original, clone = rig.lab.start(2, "tpm", Faults(clone=True))
    assert rig.run(original.port, "WO-TPM").passed
    outcome = rig.run(clone.port, "WO-TPM", slot="s2")

    assert not outcome.passed
    assert outcome.code == "identity.duplicate" and outcome.step is Step.TPM_EK
    assert "cloned TPM" in outcome.reason and original.serial in outcome.reason
    store = rig.station().store()
    assert store.devices.count(DeviceQuery(serial=clone.serial)) == 0
    rig.verify()


def test_qa_rework_voids_the_old_identity_and_provisions_anew(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey")
    first = rig.run(board.port, "WO-NOKEY")
    assert first.passed
    old_cert = rig.station().store().devices.get(first.registration_id).cert_thumbprint
    # a locked board cannot be re-written: QA reworks it after the factory reset tooling
    # (here: a fresh board state with the same serial is what the debug tooling leaves)
    refused = rig.run(board.port, "WO-NOKEY", rework="label damaged")
    assert not refused.passed and refused.code == "auth.permission_denied"

    board_dir = board.state_dir
    rig.lab.unplug(board.index)
    for child in board_dir.iterdir():
        if child.name != "board.log" and child.is_file():
            child.unlink()
    rig.lab.replug(board.index)
    redone = rig.run(board.port, "WO-NOKEY", operator="quinn", rework="label damaged")

    assert redone.passed, redone
    store = rig.station().store()
    device = store.devices.get(redone.registration_id)
    assert device.status == "provisioned" and device.cert_thumbprint != old_cert
    voided = [e for e in store.audit.events_for(first.registration_id) if e.kind == "device.voided"]
    assert voided and voided[-1].payload["reason"] == "rework: label damaged"
    assert voided[-1].operator == "quinn"
    statuses = sorted(c.status for c in store.certificates.for_device(first.registration_id))
    assert statuses == [CertificateStatus.INSTALLED, CertificateStatus.VOIDED]
    rig.verify()


def test_board_of_the_wrong_product_is_refused_before_anything_is_written(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se")
    outcome = rig.run(board.port, "WO-NOKEY")
    assert not outcome.passed and outcome.code == "provision.wrong_product"
    assert outcome.job_id is None
    assert rig.station().store().certificates.count() == 0


def test_full_batch_stops_the_next_board(rig: Rig) -> None:
    admin = rig.station()
    admin.batches().open(name="WO-ONE", product="lab-sym", size=1, operator="boss")
    first, second = rig.lab.start(2, "nokey")
    assert rig.run(first.port, "WO-ONE").passed
    outcome = rig.run(second.port, "WO-ONE", slot="s2")
    assert not outcome.passed and outcome.code == "provision.batch_full"
    assert "Ask QA" in outcome.remedy


def test_injected_key_is_unusable_after_wipe() -> None:
    key = SoftInjectedKey()
    assert len(key.private_key_der()) > 100
    key.wipe()
    assert key.wiped
    with pytest.raises(ProvisionError):
        key.private_key_der()
    with pytest.raises(ProvisionError):
        key.csr_der("dev-1")


def test_technician_wording_for_an_unplug() -> None:
    why = explain(Step.WRITE_CHAIN, BoardDisconnectedError("gone"))
    assert "unplugged" in why.reason and "write-chain" in why.reason
    assert "resumes" in why.remedy


@BOTH_FIRMWARES
def test_cloned_secure_element_is_caught_by_its_device_key(rig: Rig) -> None:
    (original,) = rig.lab.start(1, "se")
    first = rig.run(original.port, "WO-X509")
    assert first.passed
    # a counterfeit board whose secure element carries the original's key and keeps it
    (clone,) = rig.lab.start(1, "se", Faults(stuck_key=True))
    rig.lab.unplug(clone.index)
    shutil.copy2(rig.lab.device_key_file(original.index), rig.lab.device_key_file(clone.index))
    rig.lab.replug(clone.index, Faults(stuck_key=True))
    events: list[object] = []
    outcome = rig.run(clone.port, "WO-X509", slot="s2", events=events)

    assert not outcome.passed and outcome.code == "identity.duplicate"
    assert outcome.step is Step.KEYGEN
    assert f"already recorded for {first.registration_id}" in outcome.reason
    assert "cloned secure element" in outcome.reason
    store = rig.station().store()
    # nothing was issued for the clone; the original's identity stands
    assert [c.registration_id for c in store.certificates.for_device(first.registration_id)] == [
        first.registration_id
    ]
    assert store.certificates.count() == 1
    rig.verify()
