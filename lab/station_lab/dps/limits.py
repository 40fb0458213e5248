"""Throttling and fault injection for the stand-in.

* :class:`RateLimiter`: at most ``limit`` operations in any sliding window of one (scaled) minute,
  like DPS's 1,000 operations/min/service. ``time_scale`` makes the lab's minute shorter
  (``time_scale=60``: a one-second minute) so tests can reach the limit and recover quickly.
* :class:`FaultInjector`: random 500s, dropped connections and latency at given rates, plus a
  queue of one-shot faults that tests arm for the next requests, deterministically.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from station.domain.errors import LabDpsError
from station_lab.dps import errors as codes
from station_lab.dps.errors import ApiError

MINUTE_S: Final = 60.0

#: Fault kinds: answer 500, close the connection before handling the request, handle the request
#: and then close the connection without answering (the write happened, the client never knows).
FAULT_KINDS: Final = ("500", "drop", "drop-after")


class RateLimiter:
    """A sliding-window limiter: ``limit`` operations per scaled minute (0 disables it)."""

    def __init__(
        self,
        limit: int,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 0:
            raise LabDpsError("the rate limit cannot be negative", limit=limit)
        if time_scale <= 0:
            raise LabDpsError("the time scale must be positive", time_scale=time_scale)
        self.limit = limit
        self.time_scale = time_scale
        self.window_s = MINUTE_S / time_scale
        self._clock = clock
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Count one operation; return 0 if allowed, else the seconds until one slot frees up."""
        if self.limit == 0:
            return 0.0
        with self._lock:
            now = self._clock()
            while self._stamps and self._stamps[0] <= now - self.window_s:
                self._stamps.popleft()
            if len(self._stamps) < self.limit:
                self._stamps.append(now)
                return 0.0
            return max(self._stamps[0] + self.window_s - now, 1e-3)


def take_registration(limiter: RateLimiter) -> None:
    """Count one device registration against the unit's limit (HTTPS and MQTT share it).

    Raises:
        ApiError: 429 / 429001 with ``Retry-After`` when the minute's registrations are used up.
    """
    wait = limiter.acquire()
    if wait > 0:
        raise ApiError(
            codes.THROTTLED,
            f"Too many registrations: the service takes {limiter.limit} device registrations "
            "per minute.",
            headers=retry_after_headers(wait),
        )


def retry_after_headers(wait_s: float) -> dict[str, str]:
    """Return the wait headers of a 202 or 429: ``Retry-After`` and ``x-ms-retry-after-ms``.

    ``Retry-After`` is whole seconds, rounded up and at least 1, as real DPS sends it (and as
    HTTP defines it), whatever the lab's time scale. ``x-ms-retry-after-ms`` carries the exact
    wait in milliseconds: on a scaled lab clock it is shorter than a second, and clients that
    read it (the station's DPS client, the lab's device client) need not wait a real second.
    """
    millis = max(1, math.ceil(wait_s * 1000))
    return {"Retry-After": str(max(1, math.ceil(wait_s))), "x-ms-retry-after-ms": str(millis)}


@dataclass(frozen=True)
class FaultPlan:
    """Random faults: the chance per request of each kind, a fixed latency, and the RNG seed."""

    error_rate: float = 0.0
    drop_rate: float = 0.0
    drop_after_rate: float = 0.0
    latency_s: float = 0.0
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Parse ``"500=0.1,drop=0.05,drop-after=0.01,latency=0.2,seed=7"`` (any subset).

        Raises:
            LabDpsError: unknown key or a value that is not a number in range.
        """
        values: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip().lower()
            if not sep or key not in (*FAULT_KINDS, "latency", "seed"):
                raise LabDpsError(
                    f"bad fault item {item!r}",
                    remedy="Use 500=RATE, drop=RATE, drop-after=RATE, latency=SECONDS, seed=INT.",
                    spec=spec,
                )
            try:
                values[key] = float(raw)
            except ValueError as exc:
                raise LabDpsError(f"fault item {item!r} needs a number", spec=spec) from exc
            if key in FAULT_KINDS and not 0.0 <= values[key] <= 1.0:
                raise LabDpsError(f"fault rate {item!r} must be between 0 and 1", spec=spec)
            if key == "latency" and values[key] < 0:
                raise LabDpsError(f"latency {item!r} cannot be negative", spec=spec)
        return cls(
            error_rate=values.get("500", 0.0),
            drop_rate=values.get("drop", 0.0),
            drop_after_rate=values.get("drop-after", 0.0),
            latency_s=values.get("latency", 0.0),
            seed=int(values["seed"]) if "seed" in values else None,
        )


class FaultInjector:
    """Decides, per request, which fault (if any) to inject."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self.configure(plan or FaultPlan())

    def configure(self, plan: FaultPlan) -> None:
        """Replace the random fault plan (the one-shot queue is kept)."""
        with self._lock:
            self.plan = plan
            self._random = random.Random(plan.seed)

    def inject(self, kind: str, count: int = 1) -> None:
        """Arm ``count`` one-shot faults of ``kind`` for the next requests."""
        if kind not in FAULT_KINDS:
            raise LabDpsError(f"unknown fault kind {kind!r}", remedy=f"Use one of {FAULT_KINDS}.")
        with self._lock:
            self._queue.extend([kind] * count)

    def next_fault(self) -> str | None:
        """Return the fault for the request being handled: a queued one first, else a random one."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            roll = self._random.random()
            for kind, rate in (
                ("500", self.plan.error_rate),
                ("drop", self.plan.drop_rate),
                ("drop-after", self.plan.drop_after_rate),
            ):
                if roll < rate:
                    return kind
                roll -= rate
            return None
