"""A TPM registers through DPS's real 401 challenge with Microsoft's Node device SDK over HTTPS.

The TPM is a real swtpm (as a lab board runs it), lent to the SDK through the TPM-simulator
socket bridge; the SDK reads the EK and SRK, activates and imports the key DPS wraps for them, and
signs its SAS with it.
"""

from __future__ import annotations

import base64
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.errors import DeviceRegistrationError
from station.domain.registration import tpm_registration_id
from station_lab.boards.tpm import Swtpm
from station_lab.boards.tpm_tcti import open_device_tpm
from station_lab.dps import LocalDps
from station_lab.firstboot import DpsEndpoint
from station_lab.firstboot.node_sdk import register_with_node_sdk
from station_lab.firstboot.tpm_bridge import TpmSimulatorBridge
from tests.support.registration import HUBS


@pytest.fixture
def board_tpm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Swtpm, bytes]]:
    """A board's swtpm on its socketpair, and its EK (persisted at 0x81010001, as provisioned)."""
    monkeypatch.setenv("TSS2_LOG", "all+none")
    (tmp_path / "tpm").mkdir()
    tpm = Swtpm(tmp_path / "tpm", tmp_path / "swtpm.log")
    try:
        device = open_device_tpm(tpm)
        try:
            ek = device.endorsement_key()
        finally:
            device.close()
        yield tpm, ek
    finally:
        tpm.shutdown()


def _endpoint(dps: LocalDps) -> DpsEndpoint:
    return DpsEndpoint(dps.host_name, dps.id_scope, dps.ca_bundle)


def test_the_node_sdk_registers_a_tpm_through_the_401_challenge(
    dps: LocalDps, service: DeviceProvisioningClient, board_tpm: tuple[Swtpm, bytes]
) -> None:
    tpm, ek = board_tpm
    reg_id = tpm_registration_id(ek)
    service.enrollment.create_or_update(
        id=reg_id,
        enrollment={
            "registrationId": reg_id,
            "attestation": {
                "type": "tpm",
                "tpm": {"endorsementKey": base64.b64encode(ek).decode()},
            },
        },
    )

    assignment = register_with_node_sdk(_endpoint(dps), tpm, timeout_s=60)

    assert assignment.registration_id == reg_id  # the SDK derived the same ID from the EK
    assert assignment.assigned_hub in {hub.host_name for hub in HUBS}
    assert "authenticationKey" in assignment.registration_state["tpm"]
    device_calls = [
        (e["operation"], e["status"]) for e in dps.access_log() if e["policy"] == "device"
    ]
    assert device_calls[:2] == [("device.register", 401), ("device.register", 202)]
    assert device_calls[-1] == ("device.operation", 200)
    [registered] = dps.hub_devices()
    assert (registered["registrationId"], registered["authType"]) == (reg_id, "tpm")


def test_a_tpm_whose_ek_is_not_enrolled_is_refused(
    dps: LocalDps, board_tpm: tuple[Swtpm, bytes]
) -> None:
    tpm, _ = board_tpm

    with pytest.raises(DeviceRegistrationError) as caught:
        register_with_node_sdk(_endpoint(dps), tpm, timeout_s=60)

    assert caught.value.details["error_code"] == "InvalidOperationError"
    [refusal] = [e for e in dps.access_log() if e["operation"] == "device.register"]
    assert (refusal["status"], refusal["errorCode"]) == (404, 404201)
    assert dps.hub_devices() == []


def test_the_bridge_speaks_the_simulator_protocol(board_tpm: tuple[Swtpm, bytes]) -> None:
    tpm, _ = board_tpm
    get_random = bytes.fromhex("80010000000c0000017b0008")  # TPM2_GetRandom(8)
    with (
        TpmSimulatorBridge(tpm) as bridge,
        socket.create_connection((bridge.host, bridge.port), timeout=10) as command,
        socket.create_connection((bridge.host, bridge.port + 1), timeout=10) as platform,
    ):
        command.sendall(struct.pack(">II", 15, 1))  # handshake, client version 1
        assert command.recv(12) == struct.pack(">III", 1, 0, 0)
        platform.sendall(struct.pack(">I", 1))  # power on
        assert platform.recv(4) == b"\0\0\0\0"
        command.sendall(struct.pack(">IBI", 8, 0, len(get_random)) + get_random)
        size = struct.unpack(">I", command.recv(4))[0]
        response = b""
        while len(response) < size + 4:
            response += command.recv(64)
        assert size == 20 and response[-4:] == b"\0\0\0\0"  # 10-byte header + TPM2B of 8 bytes
        assert response[6:10] == b"\0\0\0\0"  # TPM_RC_SUCCESS
