import sqlite3
from pathlib import Path

from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.domain.audit import EventDraft
from station.services.integrity import verify_store


def test_backup_is_a_verified_copy_taken_while_open(
    store: SqliteUnitOfWork, tmp_path: Path, clock
) -> None:
    for i in range(20):
        store.audit.append(EventDraft(kind="k", subject=f"s{i}"))
    target = tmp_path / "backups" / "copy.db"
    store.maintenance.backup(target)
    assert not target.with_name("copy.db.partial").exists()
    copy = SqliteUnitOfWork.open(target, clock=clock)
    try:
        assert copy.audit.head() == store.audit.head()
        assert verify_store(copy).ok
        assert len(list(copy.audit.events())) == 20
    finally:
        copy.close()
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
