"""End to end: each product flow takes a real lab board to PASS, and what the station recorded
is what the board holds."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes

import hsm
from station.domain.products import ProductAttestation
from station.domain.provision_events import Passed, Step, StepPassed, StepStarted, steps_for
from station.domain.records import CertificateStatus, DeviceQuery
from station.services.provision import ProvisionRequest
from tests.support.rig import (
    BOTH_FIRMWARES,
    GROUP_KEY_URI,
    PIN,
    Rig,
    openssl_verify,
    split_der,
)


def _passed_steps(events: list[object]) -> list[Step]:
    return [e.step for e in events if isinstance(e, StepPassed)]


def _dps_on_board(state: dict, registration_id: str) -> None:
    dps = cbor2.loads(state["dps"].data)
    assert dps == {
        "endpoint": "global.azure-devices-provisioning.net",
        "scope": "0ne00000001",
        "rid": registration_id,
    }


@BOTH_FIRMWARES
def test_x509_secure_element_board_reaches_pass(
    rig: Rig, root_pem: bytes, board_state, tmp_path: Path
) -> None:
    (board,) = rig.lab.start(1, "se")
    events: list[object] = []
    outcome = rig.run(board.port, "WO-X509", events=events)

    assert outcome.passed, outcome
    assert outcome.registration_id == f"lab-{board.serial.lower()}"
    assert _passed_steps(events) == list(steps_for(ProductAttestation.X509, lock=True))
    assert isinstance(events[-1], Passed)
    started = [e.step for e in events if isinstance(e, StepStarted)]
    assert started == _passed_steps(events)

    state = board_state(board.port)
    assert state["hello"].locked
    certs = split_der(state["cert_chain"].data)
    leaf = certs[0]
    station = rig.station()
    device = station.store().devices.get(outcome.registration_id)
    assert device is not None and device.status == "provisioned"
    manifest = device.manifest()
    assert manifest.x509 is not None and manifest.x509.key_origin == "secure-element"
    recorded = x509.load_pem_x509_certificate(manifest.x509.certificate_pem.encode())
    assert recorded == leaf
    assert leaf.fingerprint(hashes.SHA256()).hex() == device.cert_thumbprint
    cn = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == outcome.registration_id
    log = station.store().certificates.get(manifest.x509.serial_number)
    assert log is not None and log.status == CertificateStatus.INSTALLED
    _dps_on_board(state, outcome.registration_id)
    openssl_verify(tmp_path, root_pem, state["cert_chain"].data)
    rig.verify()


@BOTH_FIRMWARES
def test_injected_key_board_reaches_pass_and_station_keeps_no_key(
    rig: Rig, root_pem: bytes, board_state, tmp_path: Path
) -> None:
    (board,) = rig.lab.start(1, "nokey")
    outcome = rig.run(board.port, "WO-NOKEY")

    assert outcome.passed, outcome
    state = board_state(board.port)
    assert state["privkey"] is not None and state["privkey"].data is None  # secret: digest only
    manifest = rig.station().store().devices.get(outcome.registration_id).manifest()
    assert manifest.x509 is not None and manifest.x509.key_origin == "injected"
    assert "PRIVATE" not in manifest.canonical().decode()
    leaf = split_der(state["cert_chain"].data)[0]
    assert leaf == x509.load_pem_x509_certificate(manifest.x509.certificate_pem.encode())
    openssl_verify(tmp_path, root_pem, state["cert_chain"].data)
    # nothing in the station's data directory holds a private key
    for path in rig.config.data_dir.rglob("*"):
        if path.is_file() and path.suffix != ".db":
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    rig.verify()


@BOTH_FIRMWARES
def test_symmetric_key_board_gets_the_hsm_derived_key(rig: Rig, board_state) -> None:
    (board,) = rig.lab.start(1, "nokey")
    outcome = rig.run(board.port, "WO-SYM")

    assert outcome.passed, outcome
    state = board_state(board.port)
    group = hsm.open_group_key(
        GROUP_KEY_URI, pin_source=hsm.PinSource(env={"STATION_PKCS11_PIN": PIN})
    )
    try:
        expected = group.derive(outcome.registration_id)
    finally:
        group.close()
    assert state["symkey"].sha256 == hashlib.sha256(expected).digest()
    device = rig.station().store().devices.get(outcome.registration_id)
    manifest = device.manifest()
    assert manifest.symmetric_key is not None and manifest.symmetric_key.group_key == GROUP_KEY_URI
    # the station stores no device secret: neither the key nor its base64 appears in the manifest
    text = device.manifest_json
    assert base64.b64encode(expected).decode() not in text and expected.hex() not in text
    _dps_on_board(state, outcome.registration_id)
    assert state["hello"].locked
    rig.verify()


def test_a_new_board_is_written_without_reading_its_objects_first(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey")
    station = rig.station()
    link = station.board_session(board.port, handshake=False)
    outcome = station.provisioning().run(
        link, ProvisionRequest(slot="s1", batch="WO-SYM", operator="tina")
    )
    assert outcome.passed, outcome
    # hello; the symmetric key written and read back; the DPS info written and read back; lock
    # (only a resumed job reads first: its board may be locked already)
    assert link.stats.requests == 6


@BOTH_FIRMWARES
def test_tpm_board_reaches_pass_with_the_ek_it_holds(rig: Rig, board_state) -> None:
    (board,) = rig.lab.start(1, "tpm")
    events: list[object] = []
    outcome = rig.run(board.port, "WO-TPM", events=events)

    assert outcome.passed, outcome
    assert _passed_steps(events) == list(steps_for(ProductAttestation.TPM, lock=True))
    device = rig.station().store().devices.get(outcome.registration_id)
    manifest = device.manifest()
    assert manifest.tpm is not None
    ek = base64.b64decode(manifest.tpm.endorsement_key)
    assert device.ek_sha256 == hashlib.sha256(ek).hexdigest()
    # the registration ID is the Azure SDK derivation over the EK the TPM holds
    digest = base64.b32encode(hashlib.sha256(ek).digest()).decode().lower().rstrip("=")
    assert outcome.registration_id == digest
    assert manifest.tpm.storage_root_key
    # read the EK straight from the board's TPM: it is the one recorded
    station = rig.station()
    link = station.board_session(board.port)
    held = station.tpm_reader(link).read_endorsement_key(template="rsa2048", create_if_absent=False)
    assert held.public == ek
    station.close()
    state = board_state(board.port)
    _dps_on_board(state, outcome.registration_id)
    rig.verify()


def test_tpm_board_with_an_untrusted_ek_certificate_is_stopped(rig: Rig) -> None:
    from station.config import load_config

    text = rig.config_file.read_text().replace("trust_lab_ca = true", "trust_lab_ca = false")
    rig.config_file.write_text(text)
    rig.config = load_config(rig.config_file, env={})
    (board,) = rig.lab.start(1, "tpm")
    outcome = rig.run(board.port, "WO-TPM")

    assert not outcome.passed
    assert outcome.step is Step.TPM_EK_CERT and outcome.code == "tpm.ek_certificate_rejected"
    assert "untrusted" in outcome.reason and "QA" in outcome.remedy
    assert rig.station().store().devices.count(DeviceQuery()) == 0


def test_tpm_board_whose_tpm_answers_nonsense_fails_with_a_remedy(rig: Rig) -> None:
    from station_lab.boards.faults import Faults

    (board,) = rig.lab.start(1, "tpm", Faults(nv_read_empty=True))
    outcome = rig.run(board.port, "WO-TPM")

    assert not outcome.passed
    assert outcome.step is Step.TPM_EK_CERT and outcome.code == "tpm.nonsense"
    assert "(TPM answered nonsense: NV_Read of 0x01c00002 at offset 0" in outcome.reason
    assert "Reject the board" in outcome.remedy
    assert rig.station().store().devices.count(DeviceQuery()) == 0
    rig.verify()


def test_tpm_board_with_an_rsaes_oaep_ek_certificate_reaches_pass(rig: Rig, tmp_path: Path) -> None:
    # A TPM 1.2-style EK certificate used to crash the step and leave the job open.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from station.adapters.tpm.ek_certs import ek_spki
    from station.config import load_config
    from station.domain.provision_events import StepPassed
    from station_lab.boards.tpm import install_ek_certificate
    from tests.support.deviant_certs import build

    (board,) = rig.lab.start(1, "tpm")
    station = rig.station()
    link = station.board_session(board.port)
    ek = station.tpm_reader(link).read_endorsement_key(template="rsa2048", create_if_absent=False)
    station.close()
    public = serialization.load_der_public_key(ek_spki(ek.public))
    assert isinstance(public, rsa.RSAPublicKey)
    made = build(tmp_path / "deviant", public)
    rig.lab.stop()  # the board saves its TPM state and swtpm exits
    install_ek_certificate(
        board.state_dir / "tpm", 0x01C00002, made.certs["rsaes-oaep"].read_bytes()
    )
    board = rig.lab.replug(1)
    text = rig.config_file.read_text().replace(
        "trust_lab_ca = true", f'extra_trust_dirs = ["{made.anchors}"]'
    )
    rig.config_file.write_text(text)
    rig.config = load_config(rig.config_file, env={})

    events: list[object] = []
    outcome = rig.run(board.port, "WO-TPM", events=events)
    assert outcome.passed, outcome
    (cert_step,) = [e for e in events if isinstance(e, StepPassed) and e.step is Step.TPM_EK_CERT]
    assert "valid (Intel), 1 vendor encoding deviation normalised" in str(cert_step)
    assert not rig.station().store().jobs.open()
    rig.verify()
