from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station.adapters.store.unit_of_work import SqliteUnitOfWork


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "station.db"


@pytest.fixture
def store(db_path: Path, clock) -> Iterator[SqliteUnitOfWork]:
    opened = SqliteUnitOfWork.open(db_path, clock=clock, backup_dir=db_path.parent / "backups")
    yield opened
    opened.close()
