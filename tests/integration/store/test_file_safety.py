"""The database file: owner-only, never silently recreated (issue #20, items 4 and 8)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.cli.main import main
from station.domain.errors import StoreError


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_database_its_wal_and_backups_are_owner_only(store, db_path) -> None:
    with store:
        store.settings.save("probe", "1")
    assert _mode(db_path) == 0o600
    assert _mode(db_path.with_name("station.db-wal")) == 0o600
    assert _mode(db_path.parent) == 0o700
    target = db_path.parent / "backups" / "copy.db"
    store.maintenance.backup(target)
    assert _mode(target) == 0o600 and _mode(target.parent) == 0o700


def test_a_missing_database_is_not_created_except_when_asked(tmp_path: Path, clock) -> None:
    path = tmp_path / "typo" / "station.db"
    with pytest.raises(StoreError, match="there is no station database"):
        SqliteUnitOfWork.open(path, clock=clock, create=False)
    assert not path.parent.exists()


def test_an_emptied_database_is_refused_not_recreated(store, db_path, clock) -> None:
    store.close()
    db_path.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    with pytest.raises(StoreError, match="is empty"):
        SqliteUnitOfWork.open(db_path, clock=clock)
    assert db_path.stat().st_size == 0


def test_cli_commands_refuse_a_mistyped_data_dir(tmp_path: Path, capsys) -> None:
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\ndata_dir = "{tmp_path / "dta"}"\n', encoding="utf-8")
    for args in (("db", "verify"), ("devices", "list"), ("batch", "list")):
        assert main(["--config", str(config), *args]) == 1, args
        assert "there is no station database" in capsys.readouterr().err
    assert not (tmp_path / "dta" / "station.db").exists()
