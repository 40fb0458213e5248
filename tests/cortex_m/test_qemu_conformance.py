"""``station board conformance --lock`` passes the Cortex-M firmware in QEMU, in both kinds the
emulated board can be: every clause of the spec, through the station's CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.cli.main import main
from station_lab.boards.runner import LabBoards


@pytest.mark.parametrize("kind", ["se", "nokey"])
def test_qemu_board_conforms_to_every_clause(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "station.toml"
    # quick operations get 5 s, not the default 2: an emulated board on a busy CI machine
    config.write_text(
        f'[station]\ndata_dir = "{tmp_path / "data"}"\n[board]\nbaud = 0\ntimeout_s = 5.0\n'
    )
    monkeypatch.setenv("STATION_CONFIG", str(config))
    with LabBoards(tmp_path / "data" / "lab", baud=0, firmware="qemu") as lab:
        (board,) = lab.start(1, kind)
        assert main(["board", "conformance", board.port, "--lock", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["board"]["model"].endswith("-CM3")
    verdicts = {c["title"]: c["verdict"] for c in report["clauses"]}
    assert "FAIL" not in verdicts.values()
    assert verdicts["manufacturing lock"] == "PASS"
    assert verdicts["a retried request is replayed, not applied twice"] == "PASS"
    key_clause = "device key generation" if kind == "se" else "injected private key"
    assert verdicts[key_clause] == verdicts["proof of possession"] == "PASS"
    assert verdicts["TPM passthrough and its command checks"] != "PASS"  # no TPM on this board
