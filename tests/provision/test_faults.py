"""Faults at every step boundary: unplug the board, or kill -9 the station, then resume.

Each test walks ONE board through a chain of faults (each one hits the next boundary, each resume
picks up the job the previous fault left), checks `station db verify` after every fault, and ends
with a clean run. At the end every board holds exactly one valid identity, and every certificate
issued on the way is either the installed one or voided.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from station.domain.products import ProductAttestation
from station.domain.provision_events import Step, steps_for
from station.domain.records import CertificateStatus, DeviceQuery
from station_lab.boards.faults import Faults
from tests.provision.conftest import BOTH_FIRMWARES, Rig, split_der

UNPLUGGED = ("board.disconnected", "board.timeout", "tpm.unreachable")
REPO = Path(__file__).resolve().parents[2]
FLOWS = {
    "x509": ("se", "WO-X509", ProductAttestation.X509),
    "nokey": ("nokey", "WO-NOKEY", ProductAttestation.X509_INJECTED),
    "symmetric": ("nokey", "WO-SYM", ProductAttestation.SYMMETRIC_KEY),
    "tpm": ("tpm", "WO-TPM", ProductAttestation.TPM),
}
#: the board operations each flow uses, in order (unplug at each of them)
OPS = {
    "x509": ("keygen", "csr", "write", "read", "sign", "lock"),
    "nokey": ("write", "read", "sign", "lock"),
    "symmetric": ("read", "write", "lock"),
    "tpm": ("tpm", "read", "write", "lock"),
}


def assert_one_identity(rig: Rig, serial: str, port: str, board_state) -> None:
    """Exactly one live identity for the board; its certificate (if any) is the one it holds."""
    station = rig.station()
    store = station.store()
    devices = store.devices(DeviceQuery(serial=serial))
    live = [d for d in devices if d.status != "voided"]
    assert len(live) == 1, devices
    device = live[0]
    assert device.status == "provisioned"
    assert not [j for j in store.open_jobs() if j.board_serial == serial]
    certificates = store.certificates_for(device.registration_id)
    installed = [c for c in certificates if c.status == CertificateStatus.INSTALLED]
    others = [c for c in certificates if c.status != CertificateStatus.INSTALLED]
    assert all(c.status == CertificateStatus.VOIDED for c in others), others
    state = board_state(port)
    if device.attestation == "x509":
        assert len(installed) == 1
        leaf = split_der(state["cert_chain"].data)[0]
        assert leaf == x509.load_pem_x509_certificate(installed[0].certificate_pem.encode())
        assert installed[0].thumbprint_sha256.lower() == device.cert_thumbprint
    else:
        assert not certificates
    assert state["hello"].locked
    rig.verify()


@BOTH_FIRMWARES
@pytest.mark.parametrize("flow", list(FLOWS))
def test_unplug_at_every_operation_then_replug_resumes(rig: Rig, flow: str, board_state) -> None:
    kind, batch, _ = FLOWS[flow]
    (board,) = rig.lab.start(1, kind, Faults(unplug_at=OPS[flow][0]))
    failures = []
    for index, op in enumerate(OPS[flow]):
        if index:
            rig.lab.replug(board.index, Faults(unplug_at=op))
        outcome = rig.run(board.port, batch)
        failures.append((op, outcome.step, outcome.code))
        assert not outcome.passed, (op, outcome)
        assert outcome.code in UNPLUGGED, (op, outcome)
        rig.verify()
    # byte-level cuts in the middle of frames, at growing offsets
    for cut in (60, 400, 900):
        rig.lab.replug(board.index, Faults(unplug_after=cut))
        outcome = rig.run(board.port, batch)
        if outcome.passed:
            break
        assert outcome.code in UNPLUGGED, (cut, outcome)
        rig.verify()
    else:
        rig.lab.replug(board.index)
        outcome = rig.run(board.port, batch)
    assert outcome.passed, (failures, outcome)
    rig.lab.replug(board.index)  # without the byte-cut fault, to read what the board holds
    assert_one_identity(rig, board.serial, board.port, board_state)


def _kill_points(attestation: ProductAttestation) -> list[str]:
    points = []
    for step in steps_for(attestation, lock=True)[1:]:
        points.append(f"started:{step}")
        if step is not Step.RECORD:
            points.append(f"passed:{step}")
    return points


@BOTH_FIRMWARES
@pytest.mark.parametrize("flow", list(FLOWS))
def test_kill_9_at_every_step_boundary_then_resume(rig: Rig, flow: str, board_state) -> None:
    kind, batch, attestation = FLOWS[flow]
    (board,) = rig.lab.start(1, kind)
    for point in _kill_points(attestation):
        result = subprocess.run(
            [sys.executable, "-m", "tests.provision.crash_run", board.port, batch, point],
            cwd=REPO,
            env=rig.env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == -9, (point, result.stdout, result.stderr[-2000:])
        rig.verify()
    events: list[object] = []
    outcome = rig.run(board.port, batch, events=events)
    assert outcome.passed, outcome
    assert_one_identity(rig, board.serial, board.port, board_state)
    if attestation in (ProductAttestation.X509, ProductAttestation.X509_INJECTED):
        # the chain passed through both recovery paths: voiding an issued certificate that never
        # reached the board, and keeping one that did
        store = rig.station().store()
        certificates = store.certificates_for(outcome.registration_id)
        reasons = {c.void_reason for c in certificates if c.status == CertificateStatus.VOIDED}
        assert "issued but never installed on the board" in reasons
        assert len(certificates) >= 3
