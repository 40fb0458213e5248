"""The :class:`~station.ports.JobRepository` on the ``jobs`` table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from station.adapters.store.connection import Transactions
from station.domain.records import JobRecord
from station.domain.states import JobState

_COLUMNS = (
    "slot, batch, state, step, created_at, updated_at, board_serial, registration_id, data, id"
)
_WRITTEN = (
    "slot",
    "batch",
    "state",
    "step",
    "board_serial",
    "registration_id",
    "data",
    "created_at",
    "updated_at",
)
# the statements once, not built for every step of every board
_INSERT = f"INSERT INTO jobs ({', '.join(_WRITTEN)}) VALUES ({', '.join('?' for _ in _WRITTEN)})"
_UPDATE = f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in _WRITTEN)} WHERE id = ?"


class SqliteJobs:
    """Provisioning jobs."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx
        self._db = tx.db

    def save(self, record: JobRecord) -> JobRecord:
        """Insert or update a provisioning job."""
        values = (
            record.slot,
            record.batch,
            str(record.state),
            record.step,
            record.board_serial,
            record.registration_id,
            json.dumps(record.data, sort_keys=True),
            record.created_at,
            record.updated_at,
        )
        conn = self._db.conn
        with self._tx.write():
            if record.id is not None:
                conn.execute(_UPDATE, (*values, record.id))
                return record
            job_id = int(conn.execute(_INSERT, values).lastrowid or 0)
        return replace(record, id=job_id)

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
