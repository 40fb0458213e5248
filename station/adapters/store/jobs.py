"""The :class:`~station.ports.JobRepository` on the ``jobs`` table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from station.adapters.store.connection import Transactions
from station.domain.records import JobRecord
from station.domain.states import JobState

_COLUMNS = (
    "slot, batch, state, step, created_at, updated_at, board_serial, registration_id, data, id"
)


class SqliteJobs:
    """Provisioning jobs."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx
        self._db = tx.db

    def save(self, record: JobRecord) -> JobRecord:
        """Insert or update a provisioning job."""
        values = {
            "slot": record.slot,
            "batch": record.batch,
            "state": str(record.state),
            "step": record.step,
            "board_serial": record.board_serial,
            "registration_id": record.registration_id,
            "data": json.dumps(record.data, sort_keys=True),
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        with self._tx.write():
            if record.id is None:
                cursor = self._db.execute(
                    f"INSERT INTO jobs ({', '.join(values)}) "
                    f"VALUES ({', '.join('?' for _ in values)})",
                    list(values.values()),
                )
                job_id = int(cursor.lastrowid or 0)
            else:
                self._db.execute(
                    f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
                    [*values.values(), record.id],
                )
                job_id = record.id
        return JobRecord(**{**record.__dict__, "id": job_id})

    def get(self, job_id: int) -> JobRecord | None:
        """Return one job."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", [job_id]).fetchone()
        return _job(row) if row else None

    def open(self) -> list[JobRecord]:
        """Jobs not yet passed or voided, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE state NOT IN ('passed', 'voided') ORDER BY id"
        ).fetchall()
        return [_job(row) for row in rows]

    def iter_all(self) -> Iterator[JobRecord]:
        """Every provisioning job, oldest first."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY id").fetchall()
        return iter([_job(row) for row in rows])


def _job(row: Any) -> JobRecord:
    return JobRecord(
        slot=row[0],
        batch=row[1],
        state=JobState(row[2]),
        step=row[3],
        created_at=row[4],
        updated_at=row[5],
        board_serial=row[6],
        registration_id=row[7],
        data=json.loads(row[8]),
        id=row[9],
    )
