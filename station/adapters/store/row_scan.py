"""Find rows the store could not even read: bad UTF-8, wrong types, broken JSON, unknown states.

``station db verify`` runs this before anything decodes a row into a record, so a flipped byte in
any column of any table is named (table, row, column) instead of ending in a traceback. Each
column is read as a BLOB with its SQLite type, so nothing here can fail on the data itself.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator
from typing import Final

from station.domain.pushes import PushState
from station.domain.records import CertificateStatus, LabelKind, Role
from station.domain.states import BatchStatus, DeviceStatus, JobState

# column kinds: text, int, int?, bool, json, json-object, or a frozenset of allowed texts
_Kind = str | frozenset[str]

#: table -> (column naming the row, {column: kind}); every table of the station's schema
SCHEMA: Final[dict[str, tuple[str, dict[str, _Kind]]]] = {
    "meta": ("key", {"key": "text", "value": "text"}),
    "events": (
        "seq",
        {
            "seq": "int",
            "time": "text",
            "station": "text",
            "operator": "text",
            "kind": "text",
            "subject": "text",
            "payload": "json-object",
            "prev_hash": "text",
            "hash": "text",
        },
    ),
    "operators": (
        "name",
        {
            "name": "text",
            "role": frozenset(str(role) for role in Role),
            "enabled": "bool",
            "pin_hash": "text",
            "badge_hash": "text",
            "created_at": "text",
        },
    ),
    "batches": (
        "name",
        {
            "name": "text",
            "product": "text",
            "size": "int",
            "status": frozenset(str(status) for status in BatchStatus),
            "created_at": "text",
        },
    ),
    "batch_counts": (
        "batch",
        {"batch": "text", "provisioned": "int", "certificates": "int"},
    ),
    "devices": (
        "registration_id",
        {
            "registration_id": "text",
            "serial": "text",
            "batch": "text",
            "product": "text",
            "attestation": "text",
            "status": frozenset(str(status) for status in DeviceStatus),
            "ek_sha256": "text",
            "cert_thumbprint": "text",
            "manifest": "json-object",
            "manifest_hash": "text",
            "event_seq": "int",
            "created_at": "text",
            "updated_at": "text",
        },
    ),
    "certificates": (
        "serial_number",
        {
            "serial_number": "text",
            "registration_id": "text",
            "thumbprint_sha256": "text",
            "certificate_pem": "text",
            "not_before": "text",
            "not_after": "text",
            "profile": "text",
            "status": frozenset(str(status) for status in CertificateStatus),
            "issued_at": "text",
            "batch": "text",
            "job_id": "int?",
            "void_reason": "text",
        },
    ),
    "jobs": (
        "id",
        {
            "slot": "text",
            "batch": "text",
            "state": frozenset(str(state) for state in JobState),
            "step": "text",
            "board_serial": "text",
            "registration_id": "text",
            "data": "json-object",
            "created_at": "text",
            "updated_at": "text",
        },
    ),
    "labels": (
        "id",
        {
            "registration_id": "text",
            "template": "text",
            "printer": "text",
            "kind": frozenset(str(kind) for kind in LabelKind),
            "reason": "text",
            "operator": "text",
            "printed_at": "text",
        },
    ),
    "batch_seals": (
        "batch",
        {"batch": "text", "count": "int", "digest": "text", "sealed_at": "text"},
    ),
    "device_keys": ("spki_sha256", {"spki_sha256": "text", "registration_id": "text"}),
    "pin_failures": ("operator", {"operator": "text", "failures": "int"}),
    "pushes": (
        "id",
        {
            "batch": "text",
            "registration_id": "text",
            "state": frozenset(str(state) for state in PushState),
            "attempts": "int",
            "last_error": "text",
            "etag": "text",
            "updated_at": "text",
            "remote": "text",
        },
    ),
    "fleet_outbox": (
        "seq",
        {
            "seq": "int",
            "hash": "text",
            "state": frozenset({"pending", "sent"}),
            "attempts": "int",
            "last_error": "text",
            "enqueued_at": "text",
            "sent_at": "text",
        },
    ),
}


def damaged_rows(
    conn: sqlite3.Connection,
    *,
    tables: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> Iterator[tuple[str, str, str]]:
    """Yield ``(table, row, reason)`` for every row with a column the store cannot read.

    ``tables`` (default: all of :data:`SCHEMA`) less ``exclude`` are scanned, in schema order.

    SQLite checks types, allowed values and JSON in one pass over each table and Python only
    decodes each row's text once; a row either check doubts is then checked column by column
    (:func:`_check`), which alone decides what is reported.
    """
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table, (key, columns) in SCHEMA.items():
        if (tables is not None and table not in tables) or table in exclude:
            continue
        if table not in present:
            yield table, "-", "the table is missing"
            continue
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        names = [column for column in columns if column in have]
        for missing in sorted(set(columns) - have):
            yield table, "-", f"column {missing} is missing"
        texts = [c for c in names if _is_text(columns[c])]
        clean = " AND ".join(_sql_clean(c, columns[c]) for c in names) or "1"
        # one blob per row holding every text column, so Python decodes once per row
        joined = "CAST(" + (" || x'00' || ".join(texts) or "''") + " AS BLOB)"
        doubtful = []
        for rowid, ok, raw in conn.execute(
            f"SELECT rowid, {clean}, {joined} FROM {table} ORDER BY rowid"
        ):
            if not ok or not _utf8(raw):
                doubtful.append(rowid)
        yield from _check_rows(conn, table, key, columns, names, doubtful)


def _check_rows(
    conn: sqlite3.Connection,
    table: str,
    key: str,
    columns: dict[str, _Kind],
    names: list[str],
    rowids: list[int],
) -> Iterator[tuple[str, str, str]]:
    select = ", ".join(f"typeof({c}), CAST({c} AS BLOB)" for c in names)
    for rowid in rowids:
        row = conn.execute(
            f"SELECT rowid, {select} FROM {table} WHERE rowid = ?", [rowid]
        ).fetchone()
        values = {name: (row[1 + 2 * i], row[2 + 2 * i]) for i, name in enumerate(names)}
        for column in names:
            reason = _check(columns[column], *values[column])
            if reason:
                yield table, _row_name(row[0], values.get(key)), f"column {column} {reason}"


def _is_text(kind: _Kind) -> bool:
    return kind not in ("int", "int?", "bool")


def _sql_clean(column: str, kind: _Kind) -> str:
    """An SQL test that is true when ``column`` surely passes :func:`_check` (UTF-8 aside)."""
    if kind in ("int", "bool"):
        return f"typeof({column}) = 'integer'"
    if kind == "int?":
        return f"typeof({column}) IN ('integer', 'null')"
    text = f"typeof({column}) = 'text'"
    if isinstance(kind, frozenset):
        allowed = ", ".join("'" + value.replace("'", "''") + "'" for value in sorted(kind))
        return f"(CASE WHEN {text} THEN {column} IN ({allowed}) ELSE 0 END)"
    # CASE evaluates lazily: SQLite reads a blob as JSONB and json_type() raises on a bad one
    if kind == "json":
        return f"(CASE WHEN {text} THEN json_valid({column}) ELSE 0 END)"
    if kind == "json-object":
        # valid JSON that starts with "{" is an object: one parse, not two (leading blanks
        # make the row doubtful, and the column-by-column check decides)
        return (
            f"(CASE WHEN {text} AND substr({column}, 1, 1) = '{{' "
            f"THEN json_valid({column}) ELSE 0 END)"
        )
    return text


def _utf8(raw: bytes | None) -> bool:
    try:
        (raw or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check(kind: _Kind, sql_type: str, raw: bytes | None) -> str:
    if kind in ("int", "bool"):
        return "" if sql_type == "integer" else f"is {sql_type}, not an integer"
    if kind == "int?":
        return "" if sql_type in ("integer", "null") else f"is {sql_type}, not an integer"
    if sql_type != "text" or raw is None:
        return f"is {sql_type}, not text"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "is not valid UTF-8 text"
    if isinstance(kind, frozenset):
        return "" if text in kind else f"has the unknown value {text[:40]!r}"
    if kind in ("json", "json-object"):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return "is not valid JSON"
        if kind == "json-object" and not isinstance(value, dict):
            return "is not a JSON object"
    return ""


def _row_name(rowid: int, key: tuple[str, bytes | None] | None) -> str:
    """The row's natural key (as far as it is readable), else its row number."""
    if key is None or key[1] is None:
        return f"row {rowid}"
    return key[1].decode("utf-8", "replace")
