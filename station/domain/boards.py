"""Boards as the station sees them before talking to them: discovered ports, slots, hot-plug.

Pure values: discovery (``station.adapters.board.discovery``) produces them, services and the
GUI consume them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from station.domain.errors import ValidationError


@dataclass(frozen=True)
class DiscoveredBoard:
    """A serial port that looks like a board.

    ``location`` is the physical USB port path (``1-1.4:1.0``; ``lab-N`` for lab boards). It is
    what a slot binds to: identical boards plugged in the same fixture socket keep the same
    location, while ``device`` (``/dev/ttyACM0``) can change on every plug.
    """

    device: str
    location: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str = ""
    description: str = ""
    source: str = "usb"  # usb | lab
    slot: str | None = None

    @property
    def usb_id(self) -> str:
        """``vvvv:pppp`` in hex, or empty when unknown."""
        if self.vid is None or self.pid is None:
            return ""
        return f"{self.vid:04x}:{self.pid:04x}"


class PlugChange(StrEnum):
    """What happened to a board between two looks at the ports."""

    ARRIVED = "arrived"
    REMOVED = "removed"


@dataclass(frozen=True)
class SlotEvent:
    """A board arrived in or left a slot (``slot`` is None for an unbound port)."""

    change: PlugChange
    slot: str | None
    board: DiscoveredBoard


#: a serial printed on a board: letters and digits first, then also . _ : / - (at most 64)
_PRINTED_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")


def printed_serial(text: str) -> str:
    """Check a serial number scanned from a board's sticker and return it (trimmed).

    Raises:
        ValidationError: the text cannot be a board serial (empty, too long, spaces, symbols).
    """
    value = text.strip()
    if not _PRINTED_SERIAL.fullmatch(value):
        raise ValidationError(
            f"{value[:70]!r} is not a board serial number",
            remedy="Scan the serial printed on the board (letters, digits and . _ : / -, "
            "at most 64 characters).",
            scanned=value[:70],
        )
    return value


def slot_phrase(slot: str) -> str:
    """``slot`` as it reads in a sentence: "slot-5" stays, "A1" becomes "slot A1"."""
    return slot if slot.lower().startswith("slot") else f"slot {slot}"
