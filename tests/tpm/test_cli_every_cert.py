"""``station tpm verify-ek-cert`` and ``station tpm read`` on every certificate we have: a verdict,
never a traceback (the shared vendor certificates and roots, and the deviant ones made here)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from station.bootstrap import Station
from station.cli.main import main
from tests.support.deviant_certs import NAMES, DeviantSet
from tests.support.paths import SHARED_TESTDATA, VENDOR_ROOTS
from tests.tpm.fakes import FakeReader

SHARED = sorted(
    str(p.relative_to(SHARED_TESTDATA))
    for p in SHARED_TESTDATA.rglob("*")
    if p.suffix in (".pem", ".der", ".crt", ".cer")
)
CASES = [("shared", name) for name in SHARED] + [("own", name) for name in NAMES]


@pytest.fixture(scope="module")
def station_config(deviant: DeviantSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # One station for all cases: its database is made once.
    home = tmp_path_factory.mktemp("station")
    config = home / "station.toml"
    config.write_text(
        f'[station]\ndata_dir = "{home / "data"}"\n'
        f'[tpm]\nextra_trust_dirs = ["{VENDOR_ROOTS}", "{deviant.anchors}"]\n'
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATION_CONFIG", str(config))
        yield


@pytest.mark.usefixtures("station_config")
@pytest.mark.parametrize(("where", "name"), CASES, ids=[f"{w}:{n}" for w, n in CASES])
def test_verdict_never_a_traceback(
    deviant: DeviantSet,
    where: str,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = SHARED_TESTDATA / name if where == "shared" else deviant.certs[name]
    assert main(["tpm", "verify-ek-cert", str(path), "--json"]) in (0, 2)
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["status"] in ("valid", "untrusted", "expired", "malformed")
    assert verdict["status"] == "valid" or verdict["reason"]

    # The same bytes as the TPM's NV would hold them, through `station tpm read`.
    reader = FakeReader(certificates=[(0x01C00002, path.read_bytes())])
    monkeypatch.setattr(Station, "board_session", lambda self, port, **kw: object())
    monkeypatch.setattr(Station, "tpm_reader", lambda self, link: reader)
    assert main(["tpm", "read", "/dev/ttyLAB0", "--product", "lab-tpm", "--json"]) in (0, 2)
    read = json.loads(capsys.readouterr().out)
    # The fake TPM's EK is not the certificate's key: every readable certificate is a mismatch.
    assert read["ek_certificate"]["status"] in ("mismatch", "malformed")
    assert read["admitted"] is False and read["rejection"]["code"]
