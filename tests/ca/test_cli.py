"""``station ca`` end to end: init in SoftHSM2, lab root, status, issue, verify-code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hsm.softhsm import SoftHsmToken
from station.cli.main import main
from tests.support.ca import device_csr


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_ca_commands_end_to_end(
    station_cli: Path, softhsm: SoftHsmToken, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = station_cli
    status = _json(capsys, ["ca", "status", "--json"])
    assert status["key_uri"] == "" and status["certificate"] is None

    key = ["--key", softhsm.uri("station-ca"), "--common-name", "Line CA", "--json"]
    init = _json(capsys, ["--operator", "boss", "ca", "init", *key])
    assert init["key"]["extractable"] is False and "BEGIN CERTIFICATE REQUEST" in init["csr_pem"]

    # a technician is refused before the lab root is made, with the role needed
    assert main(["--operator", "boss", "operator", "add", "tina", "--role", "technician"]) == 0
    capsys.readouterr()
    assert main(["--operator", "tina", "ca", "lab-root"]) == 1
    assert "tina is technician; to sign the CA with a lab root you must be admin" in (
        capsys.readouterr().err
    )
    assert not (tmp / "data" / "ca" / "chain.pem").exists()
    lab = _json(capsys, ["--operator", "boss", "ca", "lab-root", "--json"])
    assert lab["certificate"]["subject"] == "CN=Line CA"

    (tmp / "dev.csr").write_bytes(device_csr("dev-0001"))
    capsys.readouterr()
    argv = ["ca", "issue", "--csr", str(tmp / "dev.csr"), "--registration-id", "dev-0001"]
    assert main(["--operator", "boss", *argv, "--out", str(tmp / "dev.pem")]) == 0
    assert "issued CN=dev-0001" in capsys.readouterr().out
    pem = (tmp / "dev.pem").read_text()
    leaf, _, chain = pem.partition("-----END CERTIFICATE-----\n")
    (tmp / "leaf.pem").write_text(leaf + "-----END CERTIFICATE-----\n")
    (tmp / "chain.pem").write_text(chain)
    result = subprocess.run(
        [
            "openssl", "verify", "-x509_strict", "-purpose", "sslclient",
            "-CAfile", str(tmp / "data" / "ca" / "root.pem"),
            "-untrusted", str(tmp / "chain.pem"), str(tmp / "leaf.pem"),
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    # the same policy from the outside: a hostile CSR is refused with its reason
    (tmp / "ca.csr").write_bytes(device_csr("dev-0002", extensions=[(_ca_true(), True)]))
    assert (
        main(
            [
                "--operator",
                "boss",
                "ca",
                "issue",
                "--csr",
                str(tmp / "ca.csr"),
                "--registration-id",
                "dev-0002",
            ]
        )
        == 1
    )
    assert "CSR refused" in capsys.readouterr().err
    # and only admins may use it
    assert main(["--operator", "nobody", *argv]) == 1
    assert "unknown operator" in capsys.readouterr().err

    verification = _json(
        capsys, ["--operator", "boss", "ca", "verify-code", "ABCDEF0123", "--json"]
    )
    assert verification["subject"] == "CN=ABCDEF0123"

    status = _json(capsys, ["ca", "status", "--json"])
    assert status["issued"] == 2 and status["key"]["backend"] == "pkcs11"
    assert status["certificate"]["path_length"] == 0
    from station.bootstrap import build_station
    from station.config import load_config
    from station.domain.audit import verify_chain

    station = build_station(load_config(tmp / "station.toml"))
    try:
        events = list(station.store().audit.events())
        assert verify_chain(events) is None
        kinds = [e.kind for e in events]
        assert kinds.count("ca.certificate_issued") == 2
        assert {"ca.key_generated", "ca.chain_imported"} <= set(kinds)
        certs = list(station.store().certificates.iter_all())
        assert sorted(c.profile for c in certs) == ["device-identity", "dps-verification"]
        assert [c.status for c in certs if c.profile == "dps-verification"] == ["voided"]
    finally:
        station.close()


def test_wrong_pin_file_gives_a_clear_cli_error(
    station_cli: Path, softhsm: SoftHsmToken, capsys: pytest.CaptureFixture[str]
) -> None:
    pin_file = station_cli / "ca.pin"
    pin_file.write_text("0000\n")
    assert main(["--operator", "boss", "ca", "init", "--key", softhsm.uri("station-ca")]) == 1
    err = capsys.readouterr().err
    assert "refused the PIN" in err and "what to do" in err
    pin_file.chmod(0o644)
    assert main(["--operator", "boss", "ca", "init", "--key", softhsm.uri("station-ca")]) == 1
    assert "chmod 600" in capsys.readouterr().err


def _ca_true():
    from cryptography import x509

    return x509.BasicConstraints(ca=True, path_length=None)


def test_import_group_key_from_stdin(
    station_cli: Path, softhsm: SoftHsmToken, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import base64
    import hashlib
    import hmac
    import io
    import os

    import hsm

    group_key = os.urandom(64)
    text = base64.b64encode(group_key).decode()
    monkeypatch.setattr("sys.stdin", io.StringIO(text + "\n"))
    uri = softhsm.uri("group-lab")
    assert main(["--operator", "boss", "ca", "import-group-key", "--key", uri, "--json"]) == 0
    out = capsys.readouterr()
    assert text not in out.out + out.err  # the key is never echoed
    assert json.loads(out.out)["extractable"] is False
    opened = hsm.open_group_key(
        uri, pin_source=hsm.PinSource(env={"STATION_PKCS11_PIN": softhsm.pin})
    )
    try:
        assert opened.derive("dev-1") == hmac.new(group_key, b"dev-1", hashlib.sha256).digest()
    finally:
        opened.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("not base64!\n"))
    assert main(["--operator", "boss", "ca", "import-group-key", "--key", softhsm.uri("g2")]) == 1
    assert "not base64" in capsys.readouterr().err


def test_lab_root_never_silently_replaces_a_chain_a_real_root_signed(
    station_cli: Path, softhsm: SoftHsmToken, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.ca.test_lifecycle import OfflineRoot

    init = ["ca", "init", "--key", softhsm.uri("station-ca"), "--common-name", "CA", "--json"]
    _json(capsys, ["--operator", "boss", *init])
    csr = (station_cli / "data" / "ca" / "intermediate.csr").read_text()
    root = OfflineRoot()
    (station_cli / "ica.pem").write_bytes(root.sign_intermediate(csr))
    (station_cli / "root.pem").write_bytes(root.pem)
    imported = [
        "ca",
        "import",
        str(station_cli / "ica.pem"),
        "--root",
        str(station_cli / "root.pem"),
    ]
    assert main(["--operator", "boss", *imported]) == 0
    before = (station_cli / "data" / "ca" / "chain.pem").read_bytes()
    capsys.readouterr()
    assert main(["--operator", "boss", "ca", "lab-root"]) == 1
    err = capsys.readouterr().err
    assert "not a lab root" in err and "--force" in err
    assert (station_cli / "data" / "ca" / "chain.pem").read_bytes() == before
    assert main(["--operator", "boss", "ca", "lab-root", "--force"]) == 0
    err = capsys.readouterr().err
    assert "warning: the chain a real root signed was replaced" in err
    assert (station_cli / "data" / "ca" / "chain.pem").read_bytes() != before
    # a lab root over a lab root needs no --force (a lab station re-run)
    assert main(["--operator", "boss", "ca", "lab-root"]) == 0
