"""The tamper-evident audit chain, as pure functions.

Each event's hash covers its sequence number, time, station, operator, kind, subject, canonical
payload and the previous event's hash. Editing, deleting, inserting or reordering any event
therefore breaks the link to every later event, and :func:`verify_chain` names the first row that
does not fit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from json.encoder import encode_basestring as _quote  # canonical JSON's string escaping
from typing import Any

from station.domain.canonical import canonical_form, canonical_json, sha256_hex
from station.domain.errors import ValidationError

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class EventDraft:
    """An audit event before it is chained: what happened, to what, by whom, where."""

    kind: str
    subject: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    operator: str = ""
    station: str = ""
    time: datetime | None = None

    def __post_init__(self) -> None:
        if not self.kind or not self.kind.replace(".", "").replace("_", "").isalnum():
            raise ValidationError(f"invalid event kind {self.kind!r}", kind=self.kind)
        canonical_json(dict(self.payload))  # fail early on a payload that cannot be hashed


@dataclass(frozen=True)
class AuditEvent:
    """A stored, chained audit event."""

    seq: int
    time: str
    station: str
    operator: str
    kind: str
    subject: str
    payload_json: str
    prev_hash: str
    hash: str

    def computed_hash(self) -> str:
        """The hash this event's contents and link should have."""
        return event_hash(
            seq=self.seq,
            time=self.time,
            station=self.station,
            operator=self.operator,
            kind=self.kind,
            subject=self.subject,
            payload_json=self.payload_json,
            prev_hash=self.prev_hash,
        )

    @property
    def payload(self) -> dict[str, Any]:
        """The payload, decoded."""
        decoded: dict[str, Any] = json.loads(self.payload_json)
        return decoded


def format_time(moment: datetime) -> str:
    """Render a timezone-aware time as RFC 3339 UTC with microseconds."""
    if moment.tzinfo is None:
        raise ValidationError("audit times must be timezone-aware")
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime does not pad such years; keep its text
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # the same text as strftime, without its per-call time-zone work (several per board)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def event_hash(
    *,
    seq: int,
    time: str,
    station: str,
    operator: str,
    kind: str,
    subject: str,
    payload_json: str,
    prev_hash: str,
) -> str:
    """Return the chain hash of one event.

    The hashed material is the canonical JSON of ``{"seq", "time", "station", "operator",
    "kind", "subject", "payload", "prev"}``. Its keys are fixed and every value but ``seq`` is a
    string, so the text is assembled directly (keys in code-point order, each string escaped as
    canonical JSON escapes it): a million events are re-hashed by ``db verify``.
    """
    if type(seq) is not int:  # not what the station writes: the general encoder decides
        return _general_event_hash(
            seq, time, station, operator, kind, subject, payload_json, prev_hash
        )
    text = _quote
    try:
        material = (
            f'{{"kind":{text(kind)},"operator":{text(operator)},"payload":{text(payload_json)},'
            f'"prev":{text(prev_hash)},"seq":{seq},"station":{text(station)},'
            f'"subject":{text(subject)},"time":{text(time)}}}'
        )
    except TypeError:  # a value that is not a string: the general encoder decides
        return _general_event_hash(
            seq, time, station, operator, kind, subject, payload_json, prev_hash
        )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _general_event_hash(
    seq: Any,
    time: Any,
    station: Any,
    operator: Any,
    kind: Any,
    subject: Any,
    payload_json: Any,
    prev_hash: Any,
) -> str:
    """:func:`event_hash` through the canonical JSON encoder, for values of any type."""
    return sha256_hex(
        canonical_json(
            {
                "seq": seq,
                "time": time,
                "station": station,
                "operator": operator,
                "kind": kind,
                "subject": subject,
                "payload": payload_json,
                "prev": prev_hash,
            }
        )
    )


def chain(draft: EventDraft, *, prev: AuditEvent | None, time: datetime) -> AuditEvent:
    """Turn a draft into the next event after ``prev`` (``None`` for the first event)."""
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.hash
    when = format_time(draft.time or time)
    payload_json = canonical_json(dict(draft.payload)).decode("utf-8")
    unhashed = AuditEvent(
        seq=seq,
        time=when,
        station=draft.station,
        operator=draft.operator,
        kind=draft.kind,
        subject=draft.subject,
        payload_json=payload_json,
        prev_hash=prev_hash,
        hash="",
    )
    return replace(unhashed, hash=unhashed.computed_hash())


@dataclass(frozen=True)
class ChainProblem:
    """The first place where the stored chain stops being consistent."""

    seq: int
    reason: str


def verify_chain(events: Iterable[AuditEvent]) -> ChainProblem | None:
    """Walk ``events`` in stored order and return the first inconsistency, or ``None``."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    for event in events:
        if event.seq != expected_seq:
            return ChainProblem(
                event.seq,
                f"sequence gap or reorder: expected event {expected_seq}, found {event.seq}",
            )
        if event.prev_hash != prev_hash:
            return ChainProblem(event.seq, "prev_hash does not match the previous event's hash")
        try:
            canonical = canonical_form(event.payload_json)
        except (ValueError, RecursionError):
            return ChainProblem(event.seq, "payload is not valid canonical JSON")
        if canonical != event.payload_json:
            return ChainProblem(event.seq, "payload is not in canonical form (edited?)")
        recomputed = event.computed_hash()
        if recomputed != event.hash:
            return ChainProblem(event.seq, "hash does not match the event's contents (edited)")
        prev_hash = event.hash
        expected_seq += 1
    return None
