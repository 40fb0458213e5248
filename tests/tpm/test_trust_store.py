"""``station tpm trust import`` / ``list``: vendor CA files in every form, kept with their source;
an issuer only published online is named, imported once, and the verdict says which file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from station.bootstrap import build_station
from station.cli.main import main
from station.config import load_config
from tests.support.deviant_certs import DeviantSet
from tests.support.paths import VENDOR_ROOTS


@pytest.fixture
def station_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Path]:
    """An initialised station that trusts nothing but what is imported (certs run to 2044)."""
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n')
    monkeypatch.setenv("STATION_CONFIG", str(config))
    # Only `init` creates a station database; every other command refuses a missing one.
    assert main(["init"]) == 0
    monkeypatch.setenv("STATION_OPERATOR", "admin")  # the first admin: trust imports are theirs
    capsys.readouterr()
    yield tmp_path / "data"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_import_reads_bundles_der_and_pkcs7_and_says_what_it_skipped(
    deviant: DeviantSet, station_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    anchors = deviant.anchors
    (usb / "bundle.pem").write_bytes(
        (anchors / "root.pem").read_bytes() + key + (anchors / "issuing.pem").read_bytes()
    )
    (usb / "old.der").write_bytes((anchors / "old-intermediate.der").read_bytes())
    multi = x509.load_pem_x509_certificate((anchors / "multi-valued.pem").read_bytes())
    (usb / "vendor.p7b").write_bytes(
        pkcs7.serialize_certificates([multi], serialization.Encoding.DER)
    )
    (usb / "ek.der").write_bytes(deviant.certs["plain"].read_bytes())
    (usb / "broken.cer").write_bytes(deviant.certs["broken-truncated"].read_bytes())
    (usb / "README.txt").write_text("vendor notes")

    code, report = run_json(capsys, "tpm", "trust", "import", str(usb))
    assert code == 0
    imported = {Path(e["source"].split(" (")[0]).name: e for e in report["imported"]}
    assert sorted(imported) == ["bundle.pem", "old.der", "vendor.p7b"]
    assert len(report["imported"]) == 4  # two from the bundle
    root = "CN=Station Test EK Root,O=Station Test TPM Vendor,C=DE"
    signed_by = {e["subject"]: e["signed_by"] for e in report["imported"]}
    assert signed_by[root] == "self-signed"
    # Both intermediates chain to the root imported with them (one of them non-DER).
    assert signed_by["CN=Station Test Old Intermediate,O=Station Test TPM Vendor,C=DE"] == root
    assert signed_by["CN=Station Test EK Issuing CA,O=Station Test TPM Vendor,C=DE"] == root
    for entry in report["imported"]:
        kept = Path(entry["file"])
        assert kept.parent == station_dir / "tpm-trust"
        assert f"SHA-256: {entry['fingerprint']}" in kept.read_text()
        assert kept.name.endswith(f"{entry['fingerprint'][:12]}.pem")
    reasons = {Path(s["source"].split(" (")[0]).name: s["reason"] for s in report["skipped"]}
    assert reasons["README.txt"] == "not a certificate file (by its suffix)"
    assert reasons["ek.der"].startswith("an end-entity certificate")
    assert "element runs past the end" in reasons["broken.cer"]
    assert reasons["bundle.pem"].startswith("a private key: keys are never imported")
    assert not any("PRIVATE KEY" in p.read_text() for p in (station_dir / "tpm-trust").iterdir())

    # Once is enough: the same files again import nothing (exit 2) and say why.
    code, again = run_json(capsys, "tpm", "trust", "import", str(usb / "bundle.pem"))
    assert code == 2 and again["imported"] == []
    assert all(s["reason"].startswith("already trusted (") for s in again["skipped"][::2])

    # Each import is in the audit trail, and the trail still verifies.
    station = build_station(load_config(Path(os.environ["STATION_CONFIG"]), env={}))
    try:
        for entry in report["imported"]:
            (event,) = station.store().audit.events_for(entry["fingerprint"])
            assert event.kind == "tpm.trust_imported" and event.payload["source"] == entry["source"]
    finally:
        station.close()
    assert main(["db", "verify"]) == 0
    capsys.readouterr()

    code, listed = run_json(capsys, "tpm", "trust", "list")
    assert code == 0
    imported_sources = [a["source"] for a in listed["anchors"] if a["source"]]
    assert len(imported_sources) == 4 and all(str(usb) in s for s in imported_sources)


def test_an_issuer_published_online_is_named_imported_once_and_completes_the_chain(
    deviant: DeviantSet, station_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = str(deviant.certs["intel-explicit-default"])
    code, first = run_json(capsys, "tpm", "verify-ek-cert", cert)
    assert code == 2 and first["status"] == "untrusted"
    assert first["issuer_url"].startswith("https://tsci.intel.com/")

    code, listed = run_json(capsys, "tpm", "trust", "list")
    (missing,) = listed["missing_issuers"]
    assert missing["url"] == first["issuer_url"] and missing["issuer"] == first["issuer"]
    assert main(["tpm", "trust", "list"]) == 0
    assert f"fetch it from {first['issuer_url']}" in capsys.readouterr().out

    fetched = deviant.anchors / "issuing.pem"  # what the admin fetched from that URL
    assert main(["tpm", "trust", "import", str(fetched)]) == 0
    text = capsys.readouterr().out
    assert "signed by no CA the station trusts: check its fingerprint" in text
    assert f"completes the chain of EK certificates issued by {first['issuer']}" in text

    code, second = run_json(capsys, "tpm", "verify-ek-cert", cert)
    assert code == 0 and second["status"] == "valid"
    assert second["anchor_source"].startswith(str(station_dir / "tpm-trust"))
    assert second["anchor_source"].endswith(f"(imported from {fetched})")
    assert second["normalised"] == [
        "Intel: explicit DEFAULT in extension 3 (authorityInfoAccess): critical FALSE normalised"
    ]
    code, listed = run_json(capsys, "tpm", "trust", "list")
    assert listed["missing_issuers"] == []


def test_every_shared_vendor_root_imports(
    station_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_json(capsys, "tpm", "trust", "import", str(VENDOR_ROOTS))
    assert code == 0
    # The keylime store ships some certificates twice under two names: kept once, and said so.
    assert len(report["imported"]) + len(report["skipped"]) == 52
    assert len({e["fingerprint"] for e in report["imported"]}) == len(report["imported"]) == 46
    assert all(s["reason"].startswith("already trusted (") for s in report["skipped"])


def test_an_unwritable_trust_folder_is_an_error_with_a_remedy(
    deviant: DeviantSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the trust folder should be")
    config = tmp_path / "station.toml"
    config.write_text(
        f'[station]\ndata_dir = "{tmp_path / "data"}"\n[tpm]\nimport_dir = "{blocked}"\n'
    )
    monkeypatch.setenv("STATION_CONFIG", str(config))
    assert main(["init"]) == 0
    capsys.readouterr()
    imported = ["--operator", "admin", "tpm", "trust", "import"]
    assert main([*imported, str(deviant.anchors / "root.pem")]) == 1
    err = capsys.readouterr().err
    assert f"error: cannot write to the trust folder {blocked}" in err
    assert "what to do: Check that the folder" in err
