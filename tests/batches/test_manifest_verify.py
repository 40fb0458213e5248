"""The signed batch manifest: every single-byte tamper is caught; changes are named."""

from __future__ import annotations

import random

import pytest

from station.cli.main import main
from station.domain.errors import ValidationError
from station.domain.manifest_signing import CompactJws, b64url, b64url_decode
from station.services.manifests import verify_manifest_bytes


@pytest.fixture
def exported(cloud, fill_batch, pki) -> tuple[bytes, list[str], object]:
    ids = fill_batch(cloud, "WO-M", 5)
    cloud.batches().seal("WO-M", operator="boss")
    path = cloud.batches().export("WO-M", formats=("manifest",), operator="boss").files["manifest"]
    return path.read_bytes(), ids, cloud.manifest_trust(pki.root_pem)


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


def test_untouched_manifest_passes(exported) -> None:
    data, ids, trust = exported
    report = verify_manifest_bytes(data, trust)
    assert report.ok and report.registration_ids == tuple(ids)


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_every_single_byte_tamper_is_caught(cloud, fill_batch, pki) -> None:
    fill_batch(cloud, "WO-FZ", 2)
    cloud.batches().seal("WO-FZ", operator="boss")
    path = cloud.batches().export("WO-FZ", formats=("manifest",), operator="boss").files["manifest"]
    data = path.read_bytes()
    trust = cloud.manifest_trust(pki.root_pem)
    assert verify_manifest_bytes(data, trust).ok
    rng = random.Random(7)
    missed = []
    for position in range(len(data)):
        tampered = bytearray(data)
        tampered[position] ^= rng.randrange(1, 256)  # a different byte, always
        if verify_manifest_bytes(bytes(tampered), trust).ok:
            missed.append(position)
    assert missed == []
    # and appended or dropped bytes
    assert not verify_manifest_bytes(data + b"\n", trust).ok
    assert not verify_manifest_bytes(data[:-1], trust).ok


def test_a_changed_record_is_named(exported) -> None:
    data, ids, trust = exported
    lines = _lines(data)
    head, payload, sig = lines[4].decode().split(".")
    text = b64url_decode(payload).replace(b'"serial":"wo-m-0000002"', b'"serial":"wo-m-9999999"')
    lines[4] = f"{head}.{b64url(text)}.{sig}".encode()
    report = verify_manifest_bytes(_join(lines), trust)
    assert [(f.kind, f.position, f.registration_id) for f in report.findings] == [
        ("changed", 2, ids[2])
    ]


def test_a_removed_record_is_named(exported) -> None:
    data, ids, trust = exported
    for index in range(5):
        lines = _lines(data)
        del lines[2 + index]
        report = verify_manifest_bytes(_join(lines), trust)
        assert [(f.kind, f.registration_id) for f in report.findings] == [("removed", ids[index])]


def test_an_added_or_duplicated_record_is_named(exported, cloud, fill_batch) -> None:
    data, ids, trust = exported
    lines = _lines(data)
    report = verify_manifest_bytes(_join([*lines[:4], lines[3], *lines[4:]]), trust)
    assert [(f.kind, f.registration_id) for f in report.findings] == [("added", ids[1])]
    # a correctly signed record of another batch, slipped in
    other = fill_batch(cloud, "WO-O", 1)
    cloud.batches().seal("WO-O", operator="boss")
    foreign = _lines(
        cloud.batches()
        .export("WO-O", formats=("manifest",), operator="boss")
        .files["manifest"]
        .read_bytes()
    )[2]
    report = verify_manifest_bytes(_join([*lines, foreign]), trust)
    assert [(f.kind, f.registration_id) for f in report.findings] == [("added", other[0])]


def test_reordered_records_are_named(exported) -> None:
    data, ids, trust = exported
    lines = _lines(data)
    moved = [*lines[:2], lines[2], lines[5], lines[3], lines[4], lines[6]]  # record 3 moved up
    report = verify_manifest_bytes(_join(moved), trust)
    assert [(f.kind, f.registration_id) for f in report.findings] == [("reordered", ids[3])]


def test_a_foreign_root_or_key_is_refused(exported, cloud, tmp_path) -> None:
    data, _, _ = exported
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.support.cloud import _cert

    key = ec.generate_private_key(ec.SECP256R1())
    other_root = _cert("Cloud Root", key.public_key(), "Cloud Root", key, ca=True)
    trust = cloud.manifest_trust(other_root.public_bytes(serialization.Encoding.PEM))
    report = verify_manifest_bytes(data, trust)
    assert [f.kind for f in report.findings] == ["header"]


def test_strict_base64url_and_jws_parsing() -> None:
    assert b64url_decode(b64url(b"\xff\x00")) == b"\xff\x00"
    with pytest.raises(ValidationError):
        b64url_decode("_w=")
    with pytest.raises(ValidationError):
        b64url_decode("_x")  # same bytes as "_w", spare bits set
    jws = CompactJws.parse(f"{b64url(b'{}')}.{b64url(b'x')}.{b64url(b's')}")
    assert jws.json_serialization()["payload"] == b64url(b"x")


def test_cli_verify_names_problems_and_sets_the_exit_status(
    exported, pki, tmp_path, capsys
) -> None:
    data, ids, _ = exported
    good = tmp_path / "good.jwsl"
    good.write_bytes(data)
    root = str(pki.root_file)
    assert main(["manifest", "verify", str(good), "--trust", root]) == 0
    assert "OK: batch WO-M" in capsys.readouterr().out
    lines = _lines(data)
    bad = tmp_path / "bad.jwsl"
    bad.write_bytes(_join([*lines[:3], *lines[4:]]))
    assert main(["manifest", "verify", str(bad), "--trust", root]) == 1
    err = capsys.readouterr().err
    assert "removed" in err and ids[1] in err
