"""Outputs never overwrite what the station owns, nor any file without --force (issue #20)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from station.bootstrap import build_station
from station.cli.main import main


def run(config_file: Path, *args: str, operator: str = "quinn") -> int:
    return main(["--config", str(config_file), "--operator", operator, *args])


def _owned(config) -> list[Path]:
    database = config.database_path
    return [database, database.with_name(database.name + "-wal"), config.source]


def test_no_output_writes_over_the_database_its_wal_or_the_config(
    config, config_file, ids, capsys
) -> None:
    for target in _owned(config):
        before = target.read_bytes() if target.exists() else None
        commands = [
            ("label", "reprint", ids[0], "--reason", "torn", "--out", str(target), "--force"),
            ("label", "preview", ids[0], "--out", str(target), "--force"),
            ("batch", "report", "WO-4711", "--out", str(target), "--force"),
            ("db", "backup", str(target), "--force"),
        ]
        for args in commands:
            assert run(config_file, *args) == 1, args
            err = capsys.readouterr().err
            assert "error:" in err and "refusing to write" in err, (args, err)
        after = target.read_bytes() if target.exists() else None
        assert after == before


def test_a_symlink_to_the_database_is_refused(config, config_file, ids, tmp_path, capsys):
    link = tmp_path / "innocent.png"
    link.symlink_to(config.database_path)
    assert run(config_file, "label", "preview", ids[0], "--out", str(link), "--force") == 1
    assert "the station's database" in capsys.readouterr().err


def test_an_existing_file_is_replaced_only_with_force(config_file, ids, tmp_path, capsys):
    keep = tmp_path / "precious.pdf"
    keep.write_bytes(b"mine")
    for args in (
        ("label", "preview", ids[0], "--out", str(keep)),
        ("label", "reprint", ids[0], "--reason", "torn", "--out", str(keep)),
        ("batch", "report", "WO-4711", "--out", str(keep)),
        ("db", "backup", str(keep)),
    ):
        assert run(config_file, *args) == 1, args
        assert "--force" in capsys.readouterr().err
        assert keep.read_bytes() == b"mine"
    assert run(config_file, "batch", "report", "WO-4711", "--out", str(keep), "--force") == 0
    assert keep.read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_backups_are_owner_only_and_default_reports_never_collide(
    config, config_file, ids, tmp_path, capsys
) -> None:
    target = tmp_path / "copies" / "b1.db"
    assert run(config_file, "db", "backup", str(target), operator="") == 0
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert run(config_file, "batch", "report", "WO-4711") == 0
    assert run(config_file, "batch", "report", "WO-4711") == 0
    reports = sorted(p.name for p in config.labels_output_dir.glob("batch-WO-4711-report*"))
    assert reports == ["batch-WO-4711-report-2.pdf", "batch-WO-4711-report.pdf"]


def test_key_files_and_pin_files_named_by_key_uris_are_owned(tmp_path) -> None:
    from station.config import load_config
    from station.domain.errors import OutputRefusedError

    key = tmp_path / "dev-ca.p8"
    pin = tmp_path / "token.pin"
    config = tmp_path / "keys.toml"
    config.write_text(
        f'[station]\ndata_dir = "{tmp_path / "d"}"\n[ca]\nkey_uri = "file:{key}"\n'
        f'[dps]\nmanifest_key_uri = "pkcs11:token=t;object=m?pin-source={pin}"\n',
        encoding="utf-8",
    )
    station = build_station(load_config(config, env={}))
    for target, what in ((key, "the CA key"), (pin, "the PIN file of the manifest key")):
        with pytest.raises(OutputRefusedError, match=what):
            station.check_output(target, force=True)
    station.check_output(tmp_path / "fine.pdf")
