import json
from pathlib import Path

from click.testing import CliRunner

from station.cli.main import cli, main


def test_operator_add_list_disable(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("STATION_CONFIG", str(tmp_path / "station.toml"))
    assert main(["init", "--data-dir", str(tmp_path / "data"), "--admin", "boss"]) == 0
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--operator", "boss", "operator", "add", "tina", "--role", "technician", "--pin"],
        input="246802\n246802\n",
    )
    assert result.exit_code == 0, result.output
    assert "added tina as technician" in result.output
    assert "246802" not in result.output  # hidden prompt: the PIN is never echoed

    capsys.readouterr()
    assert main(["operator", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {
        "name": "tina",
        "role": "technician",
        "enabled": True,
        "pin": True,
        "badge": False,
    } in listed

    assert main(["--operator", "tina", "operator", "disable", "boss"]) == 1
    assert "you must be admin" in capsys.readouterr().err
    assert main(["--operator", "boss", "operator", "disable", "tina"]) == 0
    assert main(["operator", "list"]) == 0
    assert "DISABLED" in capsys.readouterr().out
    assert main(["db", "verify"]) == 0
