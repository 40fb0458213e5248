"""A client-side sliding-window rate limit (DPS: 1,000 operations per minute per service).

Each operation is stamped when its answer arrives, not when it is sent, and an operation in
flight counts as occupying the window. So the next operation that would be over the limit is sent
at least one window after an earlier operation was *answered*, which is after DPS received it:
whatever the network delays, DPS never sees more than the limit in any of its windows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from station.domain.errors import ValidationError

#: Our minute is this much longer than DPS's, for clocks that do not run at exactly one rate.
SAFETY = 1.01


class RateLimiter:
    """At most ``per_minute`` operations in any window of ``60 / time_scale`` seconds.

    Use ``acquire()`` before an operation and ``complete()`` when its answer (or error) arrived.

    Args:
        per_minute: the DPS tier's operations per minute (0: no limit).
        time_scale: >1 shortens the minute (lab runs on a scaled clock, like the stand-in).
        monotonic: the clock (seconds).
        sleep: how to wait.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        time_scale: float = 1.0,
        monotonic: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        if per_minute < 0 or time_scale <= 0:
            raise ValidationError(
                "the DPS rate limit must be >= 0 and the time scale > 0",
                per_minute=per_minute,
                time_scale=time_scale,
            )
        self.per_minute = per_minute
        self.window_s = 60.0 / time_scale * SAFETY
        self._monotonic = monotonic
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._in_flight = 0
        self.waited_s = 0.0

    def acquire(self) -> None:
        """Block until one more operation fits in the window; it is in flight until complete()."""
        if self.per_minute == 0:
            return
        while True:
            now = self._monotonic()
            while self._stamps and self._stamps[0] <= now - self.window_s:
                self._stamps.popleft()
            if len(self._stamps) + self._in_flight < self.per_minute:
                self._in_flight += 1
                return
            if not self._stamps:  # everything is in flight: nothing will free up by waiting
                raise ValidationError("more operations in flight than the rate limit allows")
            wait = self._stamps[0] + self.window_s - now
            self.waited_s += wait
            self._sleep(wait)

    def complete(self) -> None:
        """The operation acquired last has its answer: stamp it now."""
        if self.per_minute == 0:
            return
        self._in_flight = max(self._in_flight - 1, 0)
        self._stamps.append(self._monotonic())

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (a server's Retry-After) before the next operation."""
        if seconds > 0:
            self.waited_s += seconds
            self._sleep(seconds)
