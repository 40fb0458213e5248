import json
import sqlite3
from pathlib import Path

import pytest

from station import __version__
from station.bootstrap import build_station
from station.cli.main import main
from station.config import load_config
from station.services.identities import record_identity


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "etc" / "station.toml"
    monkeypatch.setenv("STATION_CONFIG", str(path))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert __version__ in out


def test_every_command_has_help_text(capsys) -> None:
    from station.cli.main import cli

    def walk(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    for path, command in walk(cli, []):
        assert (command.help or "").strip(), f"'station {' '.join(path)}' has no help text"
        code, out, _ = run(capsys, *path, "--help")
        assert code == 0 and "Usage:" in out


def test_init_is_idempotent_and_audited(cfg: Path, tmp_path: Path, capsys) -> None:
    code, out, _ = run(
        capsys, "init", "--data-dir", str(tmp_path / "data"), "--station-id", "line-7"
    )
    assert code == 0, out
    assert "(created)" in out and "initialised (audit event 1)" in out
    assert cfg.exists()
    assert (tmp_path / "data" / "station.db").exists()
    assert (tmp_path / "data" / "backups").is_dir()

    code, out, _ = run(capsys, "init", "--json")
    assert code == 0
    data = json.loads(out)
    assert data == {
        "config": str(cfg),
        "config_created": False,
        "database": str(tmp_path / "data" / "station.db"),
        "initialized": False,
        "station": "line-7",
        "admin_created": None,  # the first run created it
        "admin_pin_set": False,
    }
    conn = sqlite3.connect(tmp_path / "data" / "station.db")
    kinds = [r[0] for r in conn.execute("SELECT kind FROM events ORDER BY seq")]
    conn.close()
    assert kinds == ["station.initialized", "operator.added"]


def test_missing_config_gives_a_clear_error(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "--config", str(tmp_path / "none.toml"), "db", "verify")
    assert code == 1
    assert "does not exist" in err and "station init" in err


def test_db_verify_backup_and_migrate(cfg: Path, tmp_path: Path, capsys) -> None:
    run(capsys, "init", "--data-dir", str(tmp_path / "data"))
    code, out, _ = run(capsys, "db", "verify")
    assert code == 0 and "OK" in out

    code, out, _ = run(capsys, "db", "backup", str(tmp_path / "copy.db"), "--json")
    assert code == 0
    assert json.loads(out)["events"] == 2
    assert (tmp_path / "copy.db").exists()

    code, out, _ = run(capsys, "db", "migrate", "--status", "--json")
    assert code == 0
    assert json.loads(out)["pending"] == []

    conn = sqlite3.connect(tmp_path / "data" / "station.db")
    conn.execute("UPDATE events SET subject = 'forged' WHERE seq = 1")
    conn.commit()
    conn.close()
    code, out, _ = run(capsys, "db", "verify")
    assert code == 1
    assert "INCONSISTENT events seq 1" in out
    code, out, _ = run(capsys, "db", "verify", "--json")
    assert code == 1
    assert json.loads(out)["problems"][0]["row"] == "seq 1"


def test_devices_list_and_show(cfg: Path, tmp_path: Path, capsys, make_manifest) -> None:
    run(capsys, "init", "--data-dir", str(tmp_path / "data"))
    station = build_station(load_config(cfg))
    try:
        for i in range(3):
            record_identity(
                station.store(),
                make_manifest(f"SN{i}", batch="WO-A" if i < 2 else "WO-B"),
                clock=station.clock,
                station="s",
                operator="o",
            )
    finally:
        station.close()

    code, out, _ = run(capsys, "devices", "list", "--batch", "WO-A", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["total"] == 2
    assert {d["serial"] for d in data["devices"]} == {"SN0", "SN1"}

    code, out, _ = run(capsys, "devices", "list", "--limit", "1")
    assert "showing 1-1 of 3" in out

    code, out, _ = run(capsys, "devices", "show", "SN2", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["device"]["registration_id"] == "dev-sn2"
    assert shown["manifest"]["batch"] == "WO-B"
    assert [e["kind"] for e in shown["events"]] == ["device.recorded"]

    code, out, _ = run(capsys, "devices", "show", "DEV-SN1")
    assert code == 0 and "registration ID  dev-sn1" in out

    code, _, err = run(capsys, "devices", "show", "nothing")
    assert code == 1 and "no device matches" in err
