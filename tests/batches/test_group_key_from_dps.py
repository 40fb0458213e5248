"""Issue 21: the symmetric group key DPS generated goes straight from DPS into the HSM."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json

import pytest

import hsm
from station.cli.main import main
from station.domain.manifest import Attestation
from tests.support.cloud import _client


def _derive(uri: str, pin: str, registration_id: str) -> bytes:
    opened = hsm.open_group_key(uri, pin_source=hsm.PinSource(env={"STATION_PKCS11_PIN": pin}))
    try:
        return opened.derive(registration_id)
    finally:
        opened.close()


def test_import_group_key_from_dps_and_from_its_json_answer(
    cloud, dps, fill_batch, pki, cloud_config_file, capsys, monkeypatch
) -> None:
    fill_batch(cloud, "WO-GK", 1, product="lab-sym", attestation=Attestation.SYMMETRIC_KEY)
    base = ["--config", str(cloud_config_file), "--operator", "boss"]
    assert main([*base, "batch", "groups", "WO-GK"]) == 0
    assert "enrollment group lab-sym-sym written" in capsys.readouterr().out
    with _client(dps) as client:
        answer = client.enrollment_group.get_attestation_mechanism("lab-sym-sym")
    primary = answer["symmetricKey"]["primaryKey"]
    expected = hmac.new(base64.b64decode(primary), b"sym-dev-1", hashlib.sha256).digest()
    token = pki.key_uri.split("token=")[1].split(";")[0]

    uri = f"pkcs11:token={token};object=group-from-dps"
    args = [*base, "ca", "import-group-key", "--key", uri, "--from-dps", "lab-sym-sym"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "group key stored: token" in out.out
    assert primary not in out.out + out.err
    assert _derive(uri, pki.pin, "sym-dev-1") == expected
    events = [e for e in cloud.store().audit.events() if e.kind == "ca.group_key_imported"]
    assert events and primary not in json.dumps([e.payload for e in events])

    # the JSON DPS (or 'az iot dps enrollment-group show --show-keys') answers, piped in
    uri2 = f"pkcs11:token={token};object=group-from-json"
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"attestation": answer}, indent=2)))
    assert main([*base, "ca", "import-group-key", "--key", uri2]) == 0
    assert _derive(uri2, pki.pin, "sym-dev-1") == expected

    # a group DPS does not have, an X.509 group, and a non-admin: clear refusals
    missing = [*base, "ca", "import-group-key", "--key", uri + "-2", "--from-dps", "nope"]
    assert main(missing) == 1
    assert "DPS has no enrollment group 'nope'" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO('{"attestation": {"type": "x509"}}'))
    assert main([*base, "ca", "import-group-key", "--key", uri + "-3"]) == 1
    assert "carries no symmetric primary key" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["{not json", "[]"])
def test_a_broken_json_answer_is_refused(text: str) -> None:
    from station.domain.certificates import decode_group_key
    from station.domain.errors import ValidationError

    with pytest.raises(ValidationError):
        decode_group_key(text)
