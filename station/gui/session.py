"""Who is logged in at the window: the operator every command from the GUI names.

The station itself holds no operator (it is immutable and shared with worker threads); the
window keeps the logged-in one here and each view reads it on the GUI thread when a command
starts, so the command carries its operator to the service even if a badge switch or the lock
happens while it runs.
"""

from __future__ import annotations

from station.domain.records import OperatorRecord


class Session:
    """The logged-in operator of one window (``None`` while the login screen shows)."""

    def __init__(self) -> None:
        self.operator: OperatorRecord | None = None

    @property
    def name(self) -> str:
        """The logged-in operator's name ("" while nobody is)."""
        return self.operator.name if self.operator is not None else ""

    def log_in(self, record: OperatorRecord) -> None:
        """``record`` acts from now on."""
        self.operator = record

    def log_out(self) -> None:
        """Nobody acts until the next login."""
        self.operator = None
