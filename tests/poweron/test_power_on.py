"""Lab boards provisioned by the real workflow power on, register with the lab DPS using only
what they hold, and keep the hub DPS assigned them."""

from __future__ import annotations

import json
import shutil

import cbor2

from station.adapters.board.session import open_session
from station_lab.boards.poweron import stored_assignment
from station_lab.boards.state import BoardState
from tests.support.poweron import DISABLED, HUB_NAMES, PowerRig

CLIENTS = {
    "symmetricKey": "azure-iot-device ",
    "x509": "azure-iot-device ",
    "tpm": "azure-iot-provisioning-device ",
}


def _read_hub(port: str) -> dict[str, str]:
    """The ``hub`` object a later read over the board link shows."""
    session = open_session(port, timeout_s=5.0, slow_timeout_s=60.0, retries=3)
    try:
        data = session.read("hub").data
        assert data is not None
        value = cbor2.loads(data)
        assert isinstance(value, dict)
        return value
    finally:
        session.close()


def test_every_attestation_registers_and_is_assigned(power: PowerRig) -> None:
    tpm, tpm_id = power.provision("tpm", "WO-TPM")
    se, se_id = power.provision("se", "WO-X509")
    nokey, nokey_id = power.provision("nokey", "WO-NOKEY")
    sym, sym_id = power.provision("nokey", "WO-SYM")
    power.enroll(tpm_id)  # individual TPM enrollment with the EK the station read
    power.enroll(se_id)  # individual X.509 enrollment with the leaf the station issued
    power.enroll_x509_group((nokey.state_dir / "objects" / "cert_chain.bin").read_bytes())
    power.enroll_symmetric_group()
    # Firmware side only: the station's database, CA files and HSM token are gone by now.
    shutil.rmtree(power.rig.config.data_dir)
    shutil.rmtree(power.rig.token.conf.parent)

    expected = {
        tpm.index: (tpm_id, "tpm", None),
        se.index: (se_id, "x509", None),
        nokey.index: (nokey_id, "x509", "lab-x509"),
        sym.index: (sym_id, "symmetricKey", "lab-sym"),
    }
    results = {index: power.power_on(power.lab.boards[index]) for index in expected}

    registry = {d["registrationId"]: d for d in power.dps.hub_devices()}
    for index, (reg_id, attestation, group) in expected.items():
        result = results[index]
        board = power.lab.boards[index]
        assert result.assigned, result
        assert result.registration_id == reg_id
        assert result.attestation == attestation
        assert result.client.startswith(CLIENTS[attestation]), result.client
        assert result.assigned_hub in HUB_NAMES
        assert result.device_id == reg_id
        # The hub registry shows the device on that hub, with how it authenticated.
        assert registry[reg_id]["hub"] == result.assigned_hub
        assert registry[reg_id]["authType"] == attestation
        assert registry[reg_id].get("enrollmentGroupId") == group
        # The board keeps the assignment; a later read over the link shows it.
        kept = stored_assignment(BoardState(board.state_dir))
        assert kept is not None and kept["assignedHub"] == result.assigned_hub
        assert _read_hub(board.port) == {
            "hub": result.assigned_hub,
            "deviceId": reg_id,
            "rid": reg_id,
        }
    assert len(registry) == 4
    # symmetric-key and X.509 boards spoke MQTT to DPS, the TPM board HTTPS
    mqtt = {e["registrationId"] for e in power.dps.access_log() if e.get("transport") == "mqtt"}
    assert mqtt == {se_id, nokey_id, sym_id}
    # DPS saw each board's own credential: status lookups agree with what the boards report.
    for reg_id, _, _ in expected.values():
        state = power.service.device_registration_state.get(id=reg_id)
        assert state["status"] == "assigned"


def test_board_without_dps_info_is_reported_and_not_registered(power: PowerRig) -> None:
    (board,) = power.lab.start(1, "se")
    result = power.power_on(board)
    assert not result.assigned
    assert result.error_code == "not-provisioned"
    assert "did not provision" in result.error
    assert result.serial == board.serial
    assert power.dps.hub_devices() == []
    assert [e for e in power.dps.access_log() if e["policy"] == "device"] == []


def test_disabled_enrollment_is_refused_with_dps_error(power: PowerRig) -> None:
    board, reg_id = power.provision("se", "WO-X509")
    power.enroll(reg_id, DISABLED)
    result = power.power_on(board)
    assert not result.assigned
    assert result.error_code == "disabled"  # what the Python SDK reports of DPS's answer
    assert result.client.startswith("azure-iot-device ")
    assert result.registration_id == reg_id
    assert "disabled" in result.error
    assert power.dps.hub_devices() == []
    assert stored_assignment(BoardState(board.state_dir)) is None
    state = power.service.device_registration_state.get(id=reg_id)
    assert state["status"] == "disabled"


def test_tpm_board_not_enrolled_gets_dps_not_found(power: PowerRig) -> None:
    board, reg_id = power.provision("tpm", "WO-TPM")
    result = power.power_on(board)
    assert not result.assigned
    assert result.attestation == "tpm"
    assert result.registration_id == reg_id
    # DPS answered 404201; the Node SDK only reports that the 401 challenge did not come
    assert result.error_code == "InvalidOperationError"
    assert "unauthorized" in result.error
    assert result.client.startswith("azure-iot-provisioning-device ")
    [refusal] = [e for e in power.dps.access_log() if e["operation"] == "device.register"]
    assert (refusal["status"], refusal["errorCode"]) == (404, 404201)
    # The board keeps serving the station after a failed first boot.
    assert json.loads((board.state_dir / "identity.json").read_text())["kind"] == "tpm"
    session = open_session(board.port, timeout_s=5.0, slow_timeout_s=60.0, retries=3)
    try:
        assert session.hello().serial == board.serial
    finally:
        session.close()
