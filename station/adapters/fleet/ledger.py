"""The :class:`~station.ports.FleetLedger` on PostgreSQL through psycopg 3.

Each call is one transaction on one connection. A call that cannot finish within ``timeout_s``
(the server down, slow, restarted, or the network cut) raises
:class:`~station.domain.fleet.FleetUnavailableError` and drops the connection; the next call
connects again. Nothing is lost either way: a transaction the server did not commit left
nothing behind, and one it did commit is acknowledged again on the next call, because
:meth:`PostgresLedger.ingest` skips events it already holds (by station, seq and hash).

A call runs on a helper thread the caller waits for at most ``timeout_s``: a half-open
connection (a partition that drops packets without a reset) would otherwise block the calling
thread until the kernel gives up, and an online uniqueness check must not hold the line.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

import psycopg

from station.adapters.fleet.schema import SCHEMA_VERSION, STATEMENTS
from station.domain.audit import AuditEvent, verify_chain
from station.domain.errors import ManifestError, ValidationError
from station.domain.fleet import (
    Ack,
    BatchIssuance,
    ClaimConflict,
    ClaimKind,
    ClaimOwner,
    ClaimVerdict,
    FleetAlarm,
    FleetChainError,
    FleetDevice,
    FleetError,
    FleetIdentity,
    FleetNotConfiguredError,
    FleetQuery,
    FleetUnavailableError,
    IngestBatch,
    LedgerProblem,
    StationSummary,
)
from station.domain.manifest import IdentityManifest
from station.domain.records import index_columns

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]
Cursor = psycopg.Cursor[tuple[Any, ...]]

_DEVICE_COLUMNS = (
    "station, registration_id, serial, batch, product, attestation, status, operator, ek_sha256, "
    "cert_thumbprint, device_key_sha256, manifest_hash, manifest, event_seq, created_at, "
    "updated_at"
)
_EVENT_COLUMNS = "seq, time, event_station, operator, kind, subject, payload, prev_hash, hash"
_UTC_TEXT = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
_GENESIS = "0" * 64


class PostgresLedger:
    """The fleet ledger. Use one instance from one thread; close it when done."""

    def __init__(
        self,
        conninfo: str,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: int = 5,
        application_name: str = "station",
    ) -> None:
        self._conninfo = conninfo
        self._timeout_s = timeout_s
        self._connect_timeout_s = max(int(connect_timeout_s), 1)
        self._application_name = application_name
        self._conn: Connection | None = None

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Close the connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connect(self) -> Connection:
        try:
            psycopg.conninfo.conninfo_to_dict(self._conninfo)
        except psycopg.ProgrammingError:
            # libpq quotes the fragment it cannot parse, which may be the password: say
            # neither it nor libpq's text (this error ends in the outbox and on the terminal)
            raise FleetNotConfiguredError(
                "the fleet ledger connection string does not parse",
                remedy="Check it is keyword=value pairs (host=... dbname=... user=...) or a "
                "postgresql:// URI, in [fleet] conninfo or the conninfo_file.",
            ) from None
        return psycopg.connect(
            self._conninfo,
            connect_timeout=self._connect_timeout_s,
            application_name=self._application_name,
            # the server abandons a statement the station has long stopped waiting for
            options=f"-c statement_timeout={int(self._timeout_s * 1000)}",
            autocommit=True,  # transactions are explicit: one per call
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )

    def _forget(self, conn: Connection | None) -> None:
        """Close ``conn`` and stop using it (another call may have a newer one by then)."""
        if conn is None:
            return
        if self._conn is conn:
            self._conn = None
        with contextlib.suppress(psycopg.Error):
            conn.close()

    def _run(self, what: str, work: Callable[[Cursor], T]) -> T:
        """Run ``work`` in one transaction, bounded by ``timeout_s``, errors translated."""
        box: dict[str, Any] = {}

        def call() -> None:
            for attempt in (1, 2):
                conn = self._conn if self._conn is not None and not self._conn.closed else None
                reused = conn is not None
                try:
                    if conn is None:
                        conn = self._conn = self._connect()
                    with conn.transaction(), conn.cursor() as cur:
                        box["result"] = work(cur)
                    return
                except psycopg.OperationalError as exc:
                    broken = conn is None or conn.broken
                    if broken:
                        self._forget(conn)
                    # a kept connection that died meanwhile (the server restarted) gets one
                    # fresh try, which is safe because every call is idempotent
                    if reused and broken and attempt == 1:
                        continue
                    box["error"] = exc
                    return
                except BaseException as exc:  # noqa: BLE001  # re-raised on the waiting thread
                    box["error"] = exc
                    return

        worker = threading.Thread(target=call, name=f"fleet-{what}", daemon=True)
        worker.start()
        worker.join(self._timeout_s + self._connect_timeout_s)
        if worker.is_alive():
            # the thread is stuck on a dead connection: forget it; it ends when the socket does
            self._conn = None
            raise FleetUnavailableError(
                f"the fleet ledger did not answer within {self._timeout_s:g} s ({what})",
                remedy="The station keeps working and replicates later. Check the ledger "
                "server and the network to it ('station fleet status').",
                operation=what,
            )
        if "error" in box:
            raise self._translate(what, box["error"]) from box["error"]
        result: T = box["result"]
        return result

    def _translate(self, what: str, exc: BaseException) -> BaseException:
        if isinstance(exc, FleetError):
            return exc
        if isinstance(exc, psycopg.errors.UndefinedTable):
            return FleetError(
                "the fleet ledger has no station tables yet",
                remedy="Run 'station fleet init-ledger' once with the ledger owner's role.",
                operation=what,
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return FleetError(
                f"the ledger role may not do this ({what}): {exc.diag.message_primary}",
                remedy="Grant the station role as docs/admin-guide.md ('Fleet ledger') says.",
                operation=what,
            )
        if isinstance(exc, psycopg.OperationalError):
            return FleetUnavailableError(
                f"the fleet ledger is unreachable ({what}): {_first_line(exc)}",
                remedy="The station keeps working and replicates later. Check the ledger "
                "server and the network to it ('station fleet status').",
                operation=what,
            )
        if isinstance(exc, psycopg.Error):
            return FleetError(
                f"the fleet ledger refused {what}: {_first_line(exc)}",
                remedy="Check the ledger's logs; 'station fleet verify' checks its rows.",
                operation=what,
            )
        return exc

    # ------------------------------------------------------------------ schema
    def install_schema(self) -> None:
        """Create the ledger's tables and indexes if missing."""

        def work(cur: Cursor) -> None:
            cur.execute("SELECT pg_advisory_xact_lock(2323)")  # two installers at once
            for statement in STATEMENTS:
                cur.execute(statement)  # fixed literals only
            cur.execute("SELECT count(*) FROM fleet_schema")
            row = cur.fetchone()
            if row is not None and row[0] == 0:
                cur.execute("INSERT INTO fleet_schema (version) VALUES (%s)", [SCHEMA_VERSION])

        self._run("install the schema", work)

    # ------------------------------------------------------------------ replication
    def acked(self, station: str) -> Ack:
        """The acknowledged head of ``station``."""

        def work(cur: Cursor) -> Ack:
            cur.execute(
                "SELECT acked_seq, acked_hash FROM fleet_stations WHERE station = %s", [station]
            )
            row = cur.fetchone()
            return Ack(0, _GENESIS) if row is None else Ack(int(row[0]), str(row[1]))

        return self._run("read the acknowledged head", work)

    def ingest(self, batch: IngestBatch) -> Ack:
        """Store one batch after the station's acknowledged head (see the port)."""
        return self._run("replicate", lambda cur: _ingest(cur, batch))

    def claim(self, identity: FleetIdentity) -> ClaimVerdict:
        """Reserve the identity's keys, or name who holds them; all or nothing."""
        return self._run("check uniqueness", lambda cur: _claim(cur, identity))

    # ------------------------------------------------------------------ queries
    def devices(self, query: FleetQuery) -> list[FleetDevice]:
        """Devices matching ``query``."""
        where, params = _device_filter(query)

        def work(cur: Cursor) -> list[FleetDevice]:
            cur.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM fleet_devices {where} "
                "ORDER BY station, registration_id LIMIT %s OFFSET %s",
                [*params, query.limit, query.offset],
            )
            return [_device(row) for row in cur.fetchall()]

        return self._run("search devices", work)

    def device_events(self, station: str, registration_id: str) -> list[AuditEvent]:
        """One device's replicated events at one station."""

        def work(cur: Cursor) -> list[AuditEvent]:
            cur.execute(
                f"SELECT {_EVENT_COLUMNS} FROM fleet_events "
                "WHERE station = %s AND subject = %s ORDER BY seq",
                [station, registration_id],
            )
            return [_event(row) for row in cur.fetchall()]

        return self._run("read device events", work)

    def stations(self) -> list[StationSummary]:
        """Every station with its sync state, counts and CA."""

        def work(cur: Cursor) -> list[StationSummary]:
            cur.execute(
                "SELECT s.station, s.acked_seq, s.head_seq, "
                f"coalesce({_UTC_TEXT.format('s.last_sync')}, ''), s.clock_skew_s, "
                "coalesce(d.total, 0), coalesce(d.provisioned, 0), coalesce(d.voided, 0), "
                "coalesce(c.issued, 0), s.ca_subject, s.ca_fingerprint "
                "FROM fleet_stations s "
                "LEFT JOIN (SELECT station, count(*) AS total, "
                "  count(*) FILTER (WHERE status = 'provisioned') AS provisioned, "
                "  count(*) FILTER (WHERE status = 'voided') AS voided "
                "  FROM fleet_devices GROUP BY station) d USING (station) "
                "LEFT JOIN (SELECT station, count(*) AS issued FROM fleet_certificates "
                "  GROUP BY station) c USING (station) "
                "ORDER BY s.station"
            )
            return [
                StationSummary(
                    station=row[0],
                    acked_seq=int(row[1]),
                    head_seq=int(row[2]),
                    last_sync=row[3],
                    clock_skew_s=float(row[4]),
                    devices=int(row[5]),
                    provisioned=int(row[6]),
                    voided=int(row[7]),
                    certificates=int(row[8]),
                    ca_subject=row[9],
                    ca_fingerprint=row[10],
                )
                for row in cur.fetchall()
            ]

        return self._run("list stations", work)

    def alarms(self, *, limit: int = 100) -> list[FleetAlarm]:
        """Conflicts, newest first."""

        def work(cur: Cursor) -> list[FleetAlarm]:
            cur.execute(
                "SELECT id, kind, scope, value, first_station, first_registration_id, "
                "first_serial, first_operator, first_batch, second_station, "
                "second_registration_id, second_serial, second_operator, second_batch, "
                f"{_UTC_TEXT.format('raised_at')} FROM fleet_alarms ORDER BY id DESC LIMIT %s",
                [limit],
            )
            return [
                FleetAlarm(
                    id=int(row[0]),
                    kind=ClaimKind(row[1]),
                    scope=row[2],
                    value=row[3],
                    first=ClaimOwner(row[4], row[5], row[6], row[7], row[8]),
                    second=ClaimOwner(row[9], row[10], row[11], row[12], row[13]),
                    raised_at=row[14],
                )
                for row in cur.fetchall()
            ]

        return self._run("list alarms", work)

    def set_quota(self, batch: str, limit: int) -> None:
        """Set or remove a batch's fleet-wide quota."""

        def work(cur: Cursor) -> None:
            if limit <= 0:
                cur.execute("DELETE FROM fleet_quotas WHERE batch = %s", [batch])
            else:
                cur.execute(
                    "INSERT INTO fleet_quotas (batch, max_devices) VALUES (%s, %s) "
                    "ON CONFLICT (batch) DO UPDATE SET max_devices = EXCLUDED.max_devices",
                    [batch, limit],
                )

        self._run("set a quota", work)

    def quota(self, batch: str) -> int:
        """A batch's fleet-wide quota (0: none)."""

        def work(cur: Cursor) -> int:
            cur.execute("SELECT max_devices FROM fleet_quotas WHERE batch = %s", [batch])
            row = cur.fetchone()
            return 0 if row is None else int(row[0])

        return self._run("read a quota", work)

    def issuance(self, batch: str = "") -> list[BatchIssuance]:
        """Certificates per station and batch."""

        def work(cur: Cursor) -> list[BatchIssuance]:
            cur.execute(
                "SELECT station, batch, count(*), "
                "count(*) FILTER (WHERE status = 'installed'), "
                "count(*) FILTER (WHERE status = 'voided') FROM fleet_certificates "
                "WHERE (%s = '' OR batch = %s) GROUP BY station, batch ORDER BY batch, station",
                [batch, batch],
            )
            return [BatchIssuance(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in cur]

        return self._run("count issuance", work)

    def batch_stations(self, batch: str) -> dict[str, int]:
        """Devices per station in a work order (from the batch index alone)."""

        def work(cur: Cursor) -> dict[str, int]:
            cur.execute(
                "SELECT station, count(*) FROM fleet_devices WHERE batch = %s GROUP BY station "
                "ORDER BY station",
                [batch],
            )
            return {str(station): int(count) for station, count in cur.fetchall()}

        return self._run("count a batch", work)

    def batch_devices(self, batch: str) -> Iterator[FleetDevice]:
        """A work order's devices by station and registration ID, in pages of 1,000."""
        after = ("", "")
        while True:
            page = self._run("export a batch", partial(_batch_page, batch=batch, after=after))
            if not page:
                return
            yield from page
            after = (page[-1].station, page[-1].registration_id)

    def verify(self) -> list[LedgerProblem]:
        """Each station's chain, its acknowledged head, and each device against its event."""
        return self._run("verify", _verify)


# ---------------------------------------------------------------------- ingest
def _ingest(cur: Cursor, batch: IngestBatch) -> Ack:
    station = batch.station
    cur.execute(
        "INSERT INTO fleet_stations (station) VALUES (%s) ON CONFLICT DO NOTHING", [station]
    )
    cur.execute(
        "SELECT acked_seq, acked_hash FROM fleet_stations WHERE station = %s FOR UPDATE",
        [station],
    )
    row = cur.fetchone()
    assert row is not None  # inserted above
    ack = Ack(int(row[0]), str(row[1]))
    fresh = _new_events(cur, station, ack, batch.events)
    if fresh:
        with cur.copy(
            "COPY fleet_events (station, seq, hash, prev_hash, time, event_station, operator, "
            "kind, subject, payload) FROM STDIN"
        ) as copy:
            for event in fresh:
                copy.write_row(
                    (
                        station,
                        event.seq,
                        event.hash,
                        event.prev_hash,
                        event.time,
                        event.station,
                        event.operator,
                        event.kind,
                        event.subject,
                        event.payload_json,
                    )
                )
        ack = Ack(fresh[-1].seq, fresh[-1].hash)
    _store_rows(cur, batch)
    _check_uniqueness(cur, batch)
    ca = batch.ca
    cur.execute(
        "UPDATE fleet_stations SET acked_seq = %s, acked_hash = %s, "
        "head_seq = greatest(head_seq, %s, %s), last_sync = now(), "
        "clock_skew_s = coalesce(extract(epoch FROM (%s::timestamptz - now())), clock_skew_s), "
        "ca_subject = coalesce(%s, ca_subject), ca_fingerprint = coalesce(%s, ca_fingerprint), "
        "ca_not_after = coalesce(%s, ca_not_after), "
        "ca_certificate = coalesce(%s, ca_certificate) WHERE station = %s",
        [
            ack.seq,
            ack.hash,
            batch.head_seq,
            ack.seq,
            batch.station_time or None,
            ca.subject if ca else None,
            ca.fingerprint_sha256 if ca else None,
            ca.not_after if ca else None,
            ca.certificate_pem if ca else None,
            station,
        ],
    )
    return ack


def _new_events(
    cur: Cursor, station: str, ack: Ack, events: Sequence[AuditEvent]
) -> list[AuditEvent]:
    """The events after ``ack``, checked to continue the chain; held ones checked by hash."""
    held = [event for event in events if event.seq <= ack.seq]
    if held:
        cur.execute(
            "SELECT seq, hash FROM fleet_events WHERE station = %s AND seq = ANY(%s)",
            [station, [event.seq for event in held]],
        )
        stored = {int(seq): str(digest) for seq, digest in cur.fetchall()}
        for event in held:
            if stored.get(event.seq) != event.hash:
                raise FleetChainError(
                    f"station {station}'s event {event.seq} differs from the one the ledger "
                    "holds: its database was restored from an older backup or edited",
                    remedy="Do not provision on this station until an admin compares "
                    "'station db verify' with 'station fleet verify'.",
                    station=station,
                    seq=event.seq,
                )
    fresh = [event for event in events if event.seq > ack.seq]
    expected, prev = ack.seq + 1, ack.hash
    for event in fresh:
        if event.seq != expected or event.prev_hash != prev:
            raise FleetChainError(
                f"station {station}'s event {event.seq} does not continue the chain the ledger "
                f"holds (it expects event {expected} after hash {prev[:12]})",
                remedy="Do not provision on this station until an admin compares "
                "'station db verify' with 'station fleet verify'.",
                station=station,
                seq=event.seq,
                expected=expected,
            )
        if event.computed_hash() != event.hash:
            raise FleetChainError(
                f"station {station}'s event {event.seq} does not match its own hash",
                remedy="Run 'station db verify' on that station.",
                station=station,
                seq=event.seq,
            )
        expected, prev = event.seq + 1, event.hash
    return fresh


def _store_rows(cur: Cursor, batch: IngestBatch) -> None:
    if batch.devices:
        updates = ", ".join(
            f"{c} = EXCLUDED.{c}"
            for c in _DEVICE_COLUMNS.replace(" ", "").split(",")
            if c not in ("station", "registration_id")
        )
        cur.executemany(
            f"INSERT INTO fleet_devices ({_DEVICE_COLUMNS}) VALUES "
            f"({', '.join(['%s'] * 16)}) ON CONFLICT (station, registration_id) DO UPDATE SET "
            f"{updates} WHERE fleet_devices.event_seq <= EXCLUDED.event_seq",
            [device_row(d) for d in batch.devices],
        )
    if batch.certificates:
        cur.executemany(
            "INSERT INTO fleet_certificates (station, serial_number, registration_id, "
            "thumbprint_sha256, profile, status, batch, issued_at, not_after) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (station, serial_number) DO "
            "UPDATE SET registration_id = EXCLUDED.registration_id, status = EXCLUDED.status, "
            "batch = EXCLUDED.batch",
            [
                (
                    c.station,
                    c.serial_number,
                    c.registration_id,
                    c.thumbprint_sha256,
                    c.profile,
                    c.status,
                    c.batch,
                    c.issued_at,
                    c.not_after,
                )
                for c in batch.certificates
            ],
        )
    if batch.batches:
        cur.executemany(
            "INSERT INTO fleet_batches (station, name, product, size, status, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (station, name) DO UPDATE SET "
            "product = EXCLUDED.product, size = EXCLUDED.size, status = EXCLUDED.status",
            [(b.station, b.name, b.product, b.size, b.status, b.created_at) for b in batch.batches],
        )


def _check_uniqueness(cur: Cursor, batch: IngestBatch) -> None:
    """Release the keys of voided devices, claim the others; a key held elsewhere is an alarm."""
    voided = [d.registration_id for d in batch.devices if d.status == "voided"]
    if voided:
        cur.execute(
            "DELETE FROM fleet_claims WHERE station = %s AND registration_id = ANY(%s)",
            [batch.station, voided],
        )
    live = [d.identity() for d in batch.devices if d.status != "voided"]
    conflicts = _take_claims(cur, live)
    for identity, conflict in conflicts:
        scope = identity.product if conflict.kind is ClaimKind.SERIAL else ""
        _raise_alarm(cur, conflict.kind, scope, conflict.value, conflict.owner, identity)
    for batch_name in sorted({identity.batch for identity in live}):
        _check_quota(cur, batch_name, [i for i in live if i.batch == batch_name])


def _take_claims(
    cur: Cursor, identities: Sequence[FleetIdentity]
) -> list[tuple[FleetIdentity, ClaimConflict]]:
    """Claim every key (in one sorted statement); return the keys another device holds."""
    rows = sorted(
        (str(kind), scope, value, identity)
        for identity in identities
        for kind, scope, value in identity.claims()
    )
    if not rows:
        return []
    columns: list[list[str]] = [[] for _ in range(8)]
    for kind, scope, value, identity in rows:
        for column, item in zip(
            columns,
            (
                kind,
                scope,
                value,
                identity.station,
                identity.registration_id,
                identity.serial,
                identity.operator,
                identity.batch,
            ),
            strict=True,
        ):
            column.append(item)
    cur.execute(
        "INSERT INTO fleet_claims (kind, scope, value, station, registration_id, serial, "
        "operator, batch) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
        "%s::text[], %s::text[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING",
        columns,
    )
    # a new statement sees what concurrent claimers committed meanwhile (read committed)
    cur.execute(
        "SELECT kind, scope, value, station, registration_id, serial, operator, batch "
        "FROM fleet_claims WHERE (kind, scope, value) IN "
        "(SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
        columns[:3],
    )
    owners = {(r[0], r[1], r[2]): ClaimOwner(r[3], r[4], r[5], r[6], r[7]) for r in cur}
    found = []
    for kind, scope, value, identity in rows:
        owner = owners.get((kind, scope, value))
        if owner is None:
            continue  # released by a void committed meanwhile: nobody else holds it
        if (owner.station, owner.registration_id) != (identity.station, identity.registration_id):
            found.append((identity, ClaimConflict(ClaimKind(kind), value, owner)))
    return found


def _raise_alarm(
    cur: Cursor,
    kind: ClaimKind,
    scope: str,
    value: str,
    first: ClaimOwner,
    second: FleetIdentity,
) -> None:
    cur.execute(
        "INSERT INTO fleet_alarms (kind, scope, value, first_station, first_registration_id, "
        "first_serial, first_operator, first_batch, second_station, second_registration_id, "
        "second_serial, second_operator, second_batch) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [
            str(kind),
            scope,
            value,
            first.station,
            first.registration_id,
            first.serial,
            first.operator,
            first.batch,
            second.station,
            second.registration_id,
            second.serial,
            second.operator,
            second.batch,
        ],
    )


def _check_quota(cur: Cursor, batch: str, identities: Sequence[FleetIdentity]) -> None:
    cur.execute("SELECT max_devices FROM fleet_quotas WHERE batch = %s", [batch])
    row = cur.fetchone()
    if row is None:
        return
    limit = int(row[0])
    cur.execute(
        "SELECT count(*) FROM fleet_claims WHERE kind = 'registration_id' AND batch = %s", [batch]
    )
    count_row = cur.fetchone()
    if count_row is None or int(count_row[0]) <= limit:
        return
    for identity in identities:
        owner = ClaimOwner(
            identity.station,
            identity.registration_id,
            identity.serial,
            identity.operator,
            identity.batch,
        )
        _raise_alarm(cur, ClaimKind.QUOTA, batch, str(limit), owner, identity)


def _claim(cur: Cursor, identity: FleetIdentity) -> ClaimVerdict:
    """All of the identity's keys or none: conflicts roll the savepoint back."""
    quota = 0
    if identity.batch:
        # the quota row lock makes two stations' last free places a queue, not a race
        cur.execute(
            "SELECT max_devices FROM fleet_quotas WHERE batch = %s FOR UPDATE", [identity.batch]
        )
        row = cur.fetchone()
        quota = 0 if row is None else int(row[0])
    if quota:
        cur.execute(
            "SELECT count(*) FROM fleet_claims WHERE kind = 'registration_id' AND batch = %s "
            "AND NOT (station = %s AND registration_id = %s)",
            [identity.batch, identity.station, identity.registration_id],
        )
        taken = cur.fetchone()
        if taken is not None and int(taken[0]) >= quota:
            return ClaimVerdict(quota_full=True, quota=quota)
    try:
        with cur.connection.transaction():  # a savepoint: undone when a key is someone else's
            conflicts = [conflict for _, conflict in _take_claims(cur, [identity])]
            if conflicts:
                raise _Refused(conflicts)
    except _Refused as refused:
        return ClaimVerdict(conflicts=tuple(refused.conflicts), quota=quota)
    return ClaimVerdict(quota=quota)


class _Refused(Exception):
    """Unwinds the claim savepoint when a key belongs to another device."""

    def __init__(self, conflicts: list[ClaimConflict]) -> None:
        super().__init__("refused")
        self.conflicts = conflicts


# ---------------------------------------------------------------------- queries
def _device_filter(query: FleetQuery) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (
        ("station", query.station),
        ("batch", query.batch),
        ("product", query.product),
        ("status", query.status),
        ("serial", query.serial),
        ("registration_id", query.registration_id.lower()),
        ("ek_sha256", query.ek_sha256.lower()),
        ("device_key_sha256", query.device_key_sha256.lower()),
    ):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _batch_page(cur: Cursor, *, batch: str, after: tuple[str, str]) -> list[FleetDevice]:
    cur.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM fleet_devices WHERE batch = %s "
        "AND (station, registration_id) > (%s, %s) ORDER BY station, registration_id LIMIT 1000",
        [batch, *after],
    )
    return [_device(row) for row in cur.fetchall()]


def _verify(cur: Cursor) -> list[LedgerProblem]:
    problems: list[LedgerProblem] = []
    cur.execute("SELECT station, acked_seq, acked_hash FROM fleet_stations ORDER BY station")
    for station, acked_seq, acked_hash in cur.fetchall():
        problems += _verify_station(cur, station, int(acked_seq), str(acked_hash))
    cur.execute(
        f"SELECT {', '.join('d.' + c for c in _DEVICE_COLUMNS.split(', '))}, e.payload "
        "FROM fleet_devices d LEFT JOIN fleet_events e "
        "ON e.station = d.station AND e.seq = d.event_seq ORDER BY d.station, d.registration_id"
    )
    for row in cur:
        device = _device(row)
        problem = _device_problem(device, row[16])
        if problem:
            problems.append(
                LedgerProblem(device.station, f"device {device.registration_id}", problem)
            )
    return problems


def _verify_station(
    cur: Cursor, station: str, acked_seq: int, acked_hash: str
) -> list[LedgerProblem]:
    cur.execute(
        f"SELECT {_EVENT_COLUMNS} FROM fleet_events WHERE station = %s ORDER BY seq", [station]
    )
    events = [_event(row) for row in cur.fetchall()]
    problems = []
    broken = verify_chain(events)
    if broken is not None:
        problems.append(LedgerProblem(station, f"event {broken.seq}", broken.reason))
    last = events[-1] if events else None
    if (last.seq if last else 0, last.hash if last else _GENESIS) != (acked_seq, acked_hash):
        problems.append(
            LedgerProblem(
                station,
                "head",
                f"the acknowledged head is event {acked_seq} but the ledger's chain ends at "
                f"{last.seq if last else 0} (events deleted or the head edited)",
            )
        )
    return problems


def _device_problem(device: FleetDevice, payload: str | None) -> str:
    try:
        parsed = IdentityManifest.from_json(device.manifest_json)
    except (ManifestError, ValidationError, ValueError) as exc:
        return f"its manifest does not parse ({exc})"
    if parsed.digest() != device.manifest_hash:
        return "its manifest does not match its hash (edited)"
    columns = index_columns(parsed)
    for name in ("registration_id", "serial", "batch", "product", "status", "ek_sha256"):
        if str(columns[name]) != getattr(device, name):
            return f"its {name} column differs from its manifest (edited)"
    if payload is None:
        return f"the event it cites ({device.event_seq}) is not in the ledger"
    try:
        cited = json.loads(payload).get("manifest_hash")
    except (ValueError, AttributeError):
        cited = None
    if cited != device.manifest_hash:
        return f"the event it cites ({device.event_seq}) recorded another manifest (row edited)"
    return ""


def _device(row: Sequence[Any]) -> FleetDevice:
    return FleetDevice(
        station=row[0],
        registration_id=row[1],
        serial=row[2],
        batch=row[3],
        product=row[4],
        attestation=row[5],
        status=row[6],
        operator=row[7],
        ek_sha256=row[8],
        cert_thumbprint=row[9],
        device_key_sha256=row[10],
        manifest_hash=row[11],
        manifest_json=row[12],
        event_seq=int(row[13]),
        created_at=row[14],
        updated_at=row[15],
    )


def _event(row: Sequence[Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row[0]),
        time=row[1],
        station=row[2],
        operator=row[3],
        kind=row[4],
        subject=row[5],
        payload_json=row[6],
        prev_hash=row[7],
        hash=row[8],
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def device_row(d: FleetDevice) -> tuple[object, ...]:
    """A device as a row of ``fleet_devices``, in the order of its columns."""
    return (
        d.station,
        d.registration_id,
        d.serial,
        d.batch,
        d.product,
        d.attestation,
        d.status,
        d.operator,
        d.ek_sha256,
        d.cert_thumbprint,
        d.device_key_sha256,
        d.manifest_hash,
        d.manifest_json,
        d.event_seq,
        d.created_at,
        d.updated_at,
    )
