"""``station tpm read`` against a lab TPM board, ``station tpm verify-ek-cert`` on shared files."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from station.adapters.tpm.ek_certs import ek_spki
from station.cli.main import main
from station.domain.registration import tpm_registration_id
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoards
from station_lab.boards.tpm import install_ek_certificate
from tests.tpm.conftest import EK_CERTS, SHARED_TESTDATA, VENDOR_ROOTS
from tests.tpm.deviant_certs import build


@pytest.fixture
def lab_station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabBoards]:
    """A station configured to trust the lab's TPM CA, and one lab TPM board."""
    config = tmp_path / "station.toml"
    config.write_text(
        f'[station]\ndata_dir = "{tmp_path / "data"}"\n[board]\nbaud = 0\n'
        "[tpm]\ntrust_lab_ca = true\n"
    )
    monkeypatch.setenv("STATION_CONFIG", str(config))
    lab = LabBoards(tmp_path / "data" / "lab", baud=0)
    try:
        lab.start(1, "tpm")
        yield lab
    finally:
        lab.stop()


def test_tpm_read(
    lab_station: LabBoards, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = lab_station.boards[1].port
    assert main(["tpm", "read", port, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ek = base64.b64decode(out["endorsement_key"])
    assert out["registration_id"] == tpm_registration_id(ek)
    assert out["resident"] is True and out["origin"] == "found"
    assert out["ek_certificate"]["status"] == "valid"
    assert out["ek_certificate"]["nv_index"] == "0x01c00002"

    assert main(["tpm", "read", port, "--product", "lab-tpm"]) == 0
    text = capsys.readouterr().out
    assert out["registration_id"] in text and "valid (IBM (software TPM))" in text
    assert "passed" in text

    empty = tmp_path / "no-anchors"
    empty.mkdir()
    assert main(["tpm", "read", port, "--product", "lab-tpm", "--roots", str(empty)]) == 2
    text = capsys.readouterr().out
    assert "untrusted" in text and "rejected: EK certificate is untrusted" in text


def test_verify_ek_cert(capsys: pytest.CaptureFixture[str]) -> None:
    padded = EK_CERTS / "keylime/st_sha256_with_rsa_ek__STM_EK_Int05__trailing_0xFF_padding.der"
    assert main(["tpm", "verify-ek-cert", str(padded), "--roots", str(VENDOR_ROOTS)]) == 0
    text = capsys.readouterr().out
    assert "valid (STMicroelectronics)" in text and "STM TPM EK Intermediate CA 05" in text

    swtpm = EK_CERTS / "keylime/swtpm_ek__swtpm-localca__fedora33.der"
    assert main(["tpm", "verify-ek-cert", str(swtpm), "--roots", str(VENDOR_ROOTS), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["status"] == "untrusted"

    sample = (
        SHARED_TESTDATA
        / "tpm-ek-samples"
        / ("azure-sdk-python_deviceprovisioning_TEST_ENDORSEMENT_KEY.tpm2b_public.bin")
    )
    argv = ["tpm", "verify-ek-cert", str(swtpm), "--ek", str(sample), "--json"]
    assert main(argv) == 2
    assert json.loads(capsys.readouterr().out)["status"] == "mismatch"


def test_verify_ek_cert_uses_the_shipped_trust_folder_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n')
    monkeypatch.setenv("STATION_CONFIG", str(config))
    cert = EK_CERTS / "keylime/nuvoton_rsa_ek__NuvotonRootCA2111__malformed.der"
    assert main(["tpm", "verify-ek-cert", str(cert)]) == 2
    assert "untrusted" in capsys.readouterr().out
    config.write_text(
        f'[station]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[tpm]\nextra_trust_dirs = ["{VENDOR_ROOTS}"]\n'
    )
    assert main(["tpm", "verify-ek-cert", str(cert)]) == 0
    assert "valid (Nuvoton)" in capsys.readouterr().out


def test_tpm_read_of_a_lying_tpm_fails_with_the_reason_and_a_remedy(
    lab_station: LabBoards, capsys: pytest.CaptureFixture[str]
) -> None:
    board = lab_station.replug(1, Faults(cap_same_handle=True))
    assert main(["tpm", "read", board.port]) == 1
    err = capsys.readouterr().err
    assert "error: TPM answered nonsense: GetCapability" in err
    assert "what to do: Reject the board" in err and "Traceback" not in err


def test_ctrl_c_ends_a_tpm_read_without_a_traceback(lab_station: LabBoards) -> None:
    # A slow TPM keeps each command on the link long enough to be interrupted mid-command.
    board = lab_station.replug(1, Faults(slow_tpm=20.0))
    process = subprocess.Popen(
        [sys.executable, "-m", "station", "-vv", "tpm", "read", board.port],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:  # ends when the process does: no wait without a bound
            seen.append(line)
            if "over the board link" in line:
                process.send_signal(signal.SIGINT)
                break
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = "".join(seen) + rest
    assert process.returncode == 130, err
    assert "aborted" in rest and "Traceback" not in err and "cffi" not in err


def test_tpm_read_of_a_board_with_an_rsaes_oaep_ek_certificate(
    lab_station: LabBoards, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # TPM 1.2-style certificate for the board's own EK, in its TPM's NV: it used to crash here.
    board = lab_station.boards[1]
    assert main(["tpm", "read", board.port, "--json"]) == 0
    ek = base64.b64decode(json.loads(capsys.readouterr().out)["endorsement_key"])
    public = serialization.load_der_public_key(ek_spki(ek))
    assert isinstance(public, rsa.RSAPublicKey)
    made = build(tmp_path / "deviant", public)
    lab_station.stop()  # the board saves its TPM state and swtpm exits
    install_ek_certificate(
        board.state_dir / "tpm", 0x01C00002, made.certs["rsaes-oaep"].read_bytes()
    )
    board = lab_station.replug(1)
    config = Path(os.environ["STATION_CONFIG"])
    config.write_text(
        config.read_text().replace(
            "trust_lab_ca = true\n", f'extra_trust_dirs = ["{made.anchors}"]\n'
        )
    )

    assert main(["tpm", "read", board.port, "--product", "lab-tpm"]) == 0
    text = capsys.readouterr().out
    assert "EK certificate:   valid (Intel)" in text
    assert (
        "normalised:     Intel: RSAES-OAEP public key (TPM 1.2 style) read as rsaEncryption" in text
    )
    assert f"anchor file:    {made.anchors / 'issuing.pem'}" in text
