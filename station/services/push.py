"""Pushing a batch's enrollments into DPS through the outbox, and reconciling DPS with it.

Exactly-once without a distributed transaction: every device has an outbox row. A chunk of at
most 10 is marked ``sending`` (committed) before the bulk ``create``; its answers are recorded
after. A kill between the two leaves ``sending`` rows, which the next run sends again; DPS then
answers 409201 for those it already holds, and the station fetches each and compares: identical
means pushed, different means a conflict for a human (DPS's version is never overwritten). So a
device is created at most once by DPS and none is skipped.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from station.domain.canonical import canonical_json
from station.domain.enrollments import (
    comparable,
    keys_not_shown,
    names_credential_policy,
    with_attestation,
)
from station.domain.errors import (
    DpsThrottledError,
    DpsTransientError,
    ValidationError,
)
from station.domain.pushes import (
    Conflict,
    OutboxEntry,
    PushState,
    ReconcileItem,
    ReconcileStatus,
)
from station.ports import EnrollmentService, PushOutbox
from station.services.ratelimit import RateLimiter

CHUNK: Final = 10  # DPS: at most 10 enrollments per bulk call
ALREADY_EXISTS: Final = 409201
MAX_PASSES: Final = 3

#: ``body_for(registration_id) -> (body we push, comparable form we expect back)``
BodyFor = Callable[[str], tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class PushProgress:
    """Reported after every bulk call."""

    done: int
    total: int
    pushed: int
    conflicts: int
    failed: int


@dataclass
class PushCounters:
    """What one run did (for the summary and the benchmark)."""

    calls: int = 0
    throttled: int = 0
    retried: int = 0


class Pusher:
    """Drains a batch's outbox into DPS, chunk by chunk, within the rate limit."""

    def __init__(
        self,
        service: EnrollmentService,
        outbox: PushOutbox,
        limiter: RateLimiter,
        *,
        max_attempts: int = 6,
        backoff_s: float = 0.5,
        max_throttles: int = 1000,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._service = service
        self._outbox = outbox
        self._limiter = limiter
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_throttles = max_throttles
        self._jitter = jitter
        self.counters = PushCounters()

    def run(
        self,
        batch: str,
        body_for: BodyFor,
        *,
        total: int,
        progress: Callable[[PushProgress], None] | None = None,
    ) -> None:
        """Send every ``pending``/``sending`` entry (``failed`` ones get one more try)."""
        failed = [
            e.registration_id for e in self._outbox.take(batch, (PushState.FAILED,), 10_000_000)
        ]
        if failed:
            self._outbox.mark(batch, failed, PushState.PENDING)
        counts = {str(k): v for k, v in self._outbox.counts(batch).items()}
        cursor = 0
        passes = 0
        while True:
            chunk = self._outbox.take(
                batch, (PushState.SENDING, PushState.PENDING), CHUNK, after_id=cursor
            )
            if not chunk:
                passes += 1
                if cursor == 0 or passes >= MAX_PASSES:
                    return
                cursor = 0  # another pass for entries sent back to pending (deleted meanwhile)
                continue
            cursor = max(entry.id or 0 for entry in chunk)
            for state in self._push_chunk(batch, chunk, body_for):
                counts[state] = counts.get(state, 0) + 1
            if progress is not None:
                pushed = counts.get(PushState.PUSHED, 0)
                conflicts = counts.get(PushState.CONFLICT, 0)
                failures = counts.get(PushState.FAILED, 0)
                progress(
                    PushProgress(pushed + conflicts + failures, total, pushed, conflicts, failures)
                )

    def _push_chunk(self, batch: str, chunk: list[OutboxEntry], body_for: BodyFor) -> list[str]:
        """Send one chunk; return the final states its entries reached."""
        outcome: list[str] = []
        ids = [entry.registration_id for entry in chunk]
        bodies: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for rid in ids:
            try:
                bodies[rid] = body_for(rid)
            except ValidationError as exc:  # a record that cannot become an enrollment
                self._outbox.mark(batch, [rid], PushState.FAILED, error=exc.message, attempt=True)
                outcome.append(PushState.FAILED)
        ids = [rid for rid in ids if rid in bodies]
        if not ids:
            return outcome
        self._outbox.mark(batch, ids, PushState.SENDING, attempt=True)
        try:
            errors = self.call(self._service.bulk_create, [bodies[rid][0] for rid in ids])
        except (DpsTransientError, DpsThrottledError) as exc:
            # out of retries: leave them for the next run, with the reason
            self._outbox.mark(batch, ids, PushState.FAILED, error=exc.message)
            return outcome + [PushState.FAILED] * len(ids)
        refused = {error.registration_id.lower(): error for error in errors}
        accepted = [rid for rid in ids if rid not in refused]
        self._outbox.mark(batch, accepted, PushState.PUSHED)
        outcome += [PushState.PUSHED] * len(accepted)
        for rid, error in refused.items():
            if rid not in bodies:
                continue
            if error.code == ALREADY_EXISTS:
                outcome.append(self._resolve_existing(batch, rid, bodies[rid][1]))
            else:
                self._outbox.mark(
                    batch, [rid], PushState.FAILED, error=f"DPS {error.code}: {error.status}"
                )
                outcome.append(PushState.FAILED)
        return [state for state in outcome if state != PushState.PENDING]

    def _resolve_existing(self, batch: str, rid: str, expected: Mapping[str, Any]) -> PushState:
        remote = self.call(
            self._service.get, rid, credential_policy=names_credential_policy(expected)
        )
        theirs = None if remote is None else self.compared(rid, remote)
        if theirs is None:  # deleted in between: send it again on the next round
            self._outbox.mark(batch, [rid], PushState.PENDING)
            return PushState.PENDING
        if theirs == expected:
            self._outbox.mark(batch, [rid], PushState.PUSHED)
            return PushState.PUSHED
        else:
            self._outbox.mark(
                batch,
                [rid],
                PushState.CONFLICT,
                error="DPS already holds a different enrollment under this registration ID",
                remote=canonical_json(theirs).decode("utf-8"),
            )
            return PushState.CONFLICT

    def every_enrollment(self, *, credential_policy: bool = False) -> list[dict[str, Any]]:
        """Every individual enrollment DPS holds, one page per operation within the rate limit.

        A throttled or failed page is asked for again (same continuation); the pages before it
        are kept, so a large DPS is read in one pass however often it says 429.
        ``credential_policy``: read so that enrollments show their credential policy.
        """
        found: list[dict[str, Any]] = []
        continuation: str | None = None
        while True:
            page, continuation = self.call(
                self._service.query_page, continuation, credential_policy=credential_policy
            )
            found.extend(page)
            if continuation is None:
                return found

    def compared(self, rid: str, remote: Mapping[str, Any]) -> dict[str, Any] | None:
        """:func:`comparable` of DPS's answer for ``rid``, symmetric keys included.

        GET and query never show symmetric keys, so for a symmetric-key enrollment the keys
        are read through ``attestationmechanism`` (one more operation) and compared by their
        fingerprints. ``None``: the enrollment was deleted in between.
        """
        theirs = comparable(remote)
        if not keys_not_shown(theirs):
            return theirs
        mechanism = self.call(self._service.attestation_mechanism, rid)
        if mechanism is None:
            return None
        return comparable(with_attestation(remote, mechanism))

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One DPS operation within the rate limit; 429 waits Retry-After, 5xx backs off."""
        attempt = 0
        throttles = 0
        while True:
            self._limiter.acquire()
            self.counters.calls += 1
            try:
                result = func(*args, **kwargs)
            except DpsThrottledError as exc:
                self._limiter.complete()
                throttles += 1
                self.counters.throttled += 1
                if throttles > self._max_throttles:
                    raise
                self._limiter.pause(float(exc.details.get("retry_after_s", 1.0)))
            except DpsTransientError:
                self._limiter.complete()
                attempt += 1
                self.counters.retried += 1
                if attempt >= self._max_attempts:
                    raise
                # exponential backoff with full jitter
                self._limiter.pause(self._backoff_s * (2 ** (attempt - 1)) * (0.5 + self._jitter()))
            except BaseException:
                self._limiter.complete()
                raise
            else:
                self._limiter.complete()
                return result


def conflicts(
    entries: Iterable[OutboxEntry], ours: Callable[[str], dict[str, Any]]
) -> list[Conflict]:
    """The conflicts among ``entries``, with both versions."""
    return [
        Conflict(entry.registration_id, ours(entry.registration_id), json.loads(entry.remote))
        for entry in entries
        if entry.state is PushState.CONFLICT and entry.remote
    ]


def reconcile_items(
    batch: str,
    expected: Iterable[tuple[str, dict[str, Any]]],
    remote: Iterable[dict[str, Any]],
    recorded: set[str],
    *,
    compared: Callable[[str, Mapping[str, Any]], dict[str, Any] | None] = (
        lambda rid, body: comparable(body)
    ),
) -> list[ReconcileItem]:
    """Compare what we expect in DPS with what DPS holds.

    Args:
        batch: the batch (enrollments tagged with it but not recorded are "extra").
        expected: (registration ID, comparable body) per recorded device, in batch order.
        remote: every enrollment DPS holds, in any order.
        recorded: every registration ID of the batch the station recorded (incl. group-enrolled).
        compared: turns one of DPS's answers into its comparable form, or ``None`` when it is
            gone (:meth:`Pusher.compared` completes symmetric keys through DPS).
    """
    theirs: dict[str, dict[str, Any]] = {}
    extra: list[ReconcileItem] = []
    wanted = dict(expected)
    for body in remote:
        rid = str(body.get("registrationId", "")).lower()
        if rid in wanted:
            found = compared(rid, body)
            if found is not None:
                theirs[rid] = found
        elif rid not in recorded and _tagged(body, batch):
            extra.append(ReconcileItem(rid, ReconcileStatus.EXTRA))
    items: list[ReconcileItem] = []
    for rid, ours in wanted.items():
        found = theirs.get(rid)
        if found is None:
            items.append(ReconcileItem(rid, ReconcileStatus.MISSING))
        elif found == ours:
            items.append(ReconcileItem(rid, ReconcileStatus.EQUAL))
        else:
            keys = sorted(set(found) | set(ours))
            diff = tuple(k for k in keys if found.get(k) != ours.get(k))
            items.append(ReconcileItem(rid, ReconcileStatus.DIFFERENT, diff))
    return items + sorted(extra, key=lambda item: item.registration_id)


def _tagged(body: Mapping[str, Any], batch: str) -> bool:
    twin = body.get("initialTwin") or {}
    tags = twin.get("tags") or {}
    return isinstance(tags, Mapping) and tags.get("batch") == batch
