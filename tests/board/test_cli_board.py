"""``station board list|probe|bind`` against lab boards published in the lab registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.cli.main import main
from station_lab.boards.runner import LabBoards


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabBoards]:
    """Two lab boards in the registry the configured station reads."""
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n[board]\nbaud = 0\n')
    monkeypatch.setenv("STATION_CONFIG", str(config))
    lab = LabBoards(tmp_path / "data" / "lab", baud=0)
    try:
        lab.start(2, "mixed")
        yield lab
    finally:
        lab.stop()


def test_list_probe_and_bind(published: LabBoards, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = published.boards[1], published.boards[2]
    assert main(["board", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(b["location"], b["device"], b["slot"]) for b in listed] == [
        ("lab-1", first.port, None),
        ("lab-2", second.port, None),
    ]
    assert main(["board", "bind", "1"]) == 1  # two unbound boards: ambiguous
    assert "exactly one" in capsys.readouterr().err
    assert main(["board", "bind", "1", "--location", "lab-2"]) == 0
    assert "lab-2" in capsys.readouterr().out
    assert main(["board", "bind", "2"]) == 0  # only lab-1 is left unbound
    capsys.readouterr()
    assert main(["board", "list"]) == 0
    table = capsys.readouterr().out
    assert "lab-1" in table and second.serial in table
    assert main(["board", "probe", "1", "--json"]) == 0  # by slot name
    probe = json.loads(capsys.readouterr().out)
    assert probe["serial"] == second.serial and probe["capabilities"] == ["se", "symkey"]
    assert main(["board", "probe", first.port]) == 0
    text = capsys.readouterr().out
    assert first.serial in text and "tpm" in text and "manufacturing mode" in text
    slots = (Path(published.lab_dir).parent / "slots.toml").read_text()
    assert '"1" = "lab-2"' in slots and '"2" = "lab-1"' in slots


def test_probe_of_a_missing_port_explains_what_to_do(
    published: LabBoards, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["board", "probe", "/dev/ttyNOPE7"]) == 1
    err = capsys.readouterr().err
    assert "cannot open board port" in err and "what to do" in err
    assert main(["board", "probe", "9"]) == 1
    assert "not bound" in capsys.readouterr().err
