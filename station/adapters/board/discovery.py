"""Finding boards: USB serial ports, the lab registry, slot bindings and hot-plug polling.

Slots bind to the *physical USB port path* (``ListPortInfo.location``), never to the device node
or the serial number: a fixture socket always has the same path, so identical boards (same VID,
PID, even no serial number) land in the same slot every time.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from serial.tools import list_ports

from station.adapters.tomlfile import read_toml
from station.domain.boards import DiscoveredBoard, PlugChange, SlotEvent, slot_phrase
from station.domain.errors import BoardError, BoardNotFoundError

_SLOT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class SlotBindings:
    """Slot name -> USB port path, kept in a small TOML file (``<data_dir>/slots.toml``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        """Return every binding (empty if the file does not exist).

        Raises:
            BoardError: the file is unreadable or malformed.
        """
        if not self.path.exists():
            return {}
        raw = read_toml(self.path, what="slot bindings file", error=BoardError)
        slots = raw.get("slots", {})
        if not isinstance(slots, dict) or not all(isinstance(v, str) for v in slots.values()):
            raise BoardError(
                f"slot bindings file {self.path} is malformed",
                remedy="Fix or delete the file, then bind the slots again.",
                file=str(self.path),
            )
        return dict(slots)

    def bind(self, slot: str, location: str) -> None:
        """Bind ``slot`` to ``location``; a location belongs to one slot only.

        Raises:
            BoardError: the slot name is not 1-32 letters, digits, ``_ . -``.
        """
        if not _SLOT_NAME.match(slot):
            raise BoardError(
                f"invalid slot name '{slot}'",
                remedy="Use 1-32 letters, digits, '_', '.' or '-'.",
                slot=slot,
            )
        slots = {s: loc for s, loc in self.load().items() if loc != location and s != slot}
        slots[slot] = location
        self._save(slots)

    def unbind(self, slot: str) -> None:
        """Forget ``slot`` (no error if it was not bound)."""
        slots = self.load()
        if slots.pop(slot, None) is not None:
            self._save(slots)

    def slot_of(self, location: str, bindings: dict[str, str] | None = None) -> str | None:
        """The slot bound to ``location``, if any."""
        for slot, bound in (self.load() if bindings is None else bindings).items():
            if bound == location:
                return slot
        return None

    def _save(self, slots: dict[str, str]) -> None:
        lines = ["# Station fixture slots: slot = physical USB port path.", "[slots]"]
        lines += [f"{json.dumps(s)} = {json.dumps(loc)}" for s, loc in sorted(slots.items())]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(self.path)


class BoardDiscovery:
    """Lists board ports from USB and the lab registry, with their slots.

    Args:
        bindings: the slot bindings.
        usb_ids: ``vvvv:pppp`` hex pairs to accept; empty accepts every USB serial port.
        lab_registry: the lab's ``boards.json`` (ignored if absent).
        comports: where USB ports come from (pyserial's ``list_ports.comports`` by default).
    """

    def __init__(
        self,
        bindings: SlotBindings,
        *,
        usb_ids: Sequence[str] = (),
        lab_registry: Path | None = None,
        comports: Callable[[], Iterable[Any]] = list_ports.comports,
    ) -> None:
        self.bindings = bindings
        self.usb_ids = {u.lower() for u in usb_ids}
        self.lab_registry = lab_registry
        self._comports = comports

    def boards(self) -> list[DiscoveredBoard]:
        """Every board port now present, each with its slot (if bound), sorted by location."""
        found = self._usb() + self._lab()
        bindings = self.bindings.load()
        return sorted(
            (_with_slot(board, self.bindings.slot_of(board.location, bindings)) for board in found),
            key=lambda b: (b.source, b.location),
        )

    def board_in(self, slot: str) -> DiscoveredBoard:
        """The board now plugged into ``slot``.

        Raises:
            BoardNotFoundError: the slot is not bound or nothing is plugged there.
        """
        bindings = self.bindings.load()
        if slot not in bindings:
            raise BoardNotFoundError(
                f"{slot_phrase(slot)} is not bound to a USB port",
                remedy=f"Plug a board into the slot and run 'station board bind {slot}'.",
                slot=slot,
            )
        for board in self.boards():
            if board.location == bindings[slot]:
                return board
        raise BoardNotFoundError(
            f"no board is plugged into {slot_phrase(slot)}",
            remedy="Plug the board in (check the cable), then retry.",
            slot=slot,
            location=bindings[slot],
        )

    def bind_plugged(self, slot: str, location: str | None = None) -> DiscoveredBoard:
        """Bind ``slot`` to the one board that is plugged in and not yet bound elsewhere.

        Args:
            slot: the slot name.
            location: bind this USB port path instead of guessing.

        Raises:
            BoardNotFoundError: no unbound board, or more than one (name the location then).
        """
        boards = self.boards()
        if location is not None:
            chosen = [b for b in boards if b.location == location]
        else:
            chosen = [b for b in boards if b.slot is None or b.slot == slot]
        if len(chosen) != 1:
            where = ", ".join(b.location for b in chosen) or "none"
            raise BoardNotFoundError(
                f"expected exactly one unbound board to bind to {slot_phrase(slot)}, "
                f"found {len(chosen)} ({where})",
                remedy="Plug only the board for this slot (or pass --location), then retry.",
                slot=slot,
                candidates=[b.location for b in chosen],
            )
        self.bindings.bind(slot, chosen[0].location)
        return _with_slot(chosen[0], slot)

    def _usb(self) -> list[DiscoveredBoard]:
        boards = []
        for info in self._comports():
            vid, pid = getattr(info, "vid", None), getattr(info, "pid", None)
            if vid is None or pid is None:
                continue  # not a USB device (built-in UART, pty, ...)
            if self.usb_ids and f"{vid:04x}:{pid:04x}" not in self.usb_ids:
                continue
            boards.append(
                DiscoveredBoard(
                    device=str(info.device),
                    location=str(getattr(info, "location", None) or info.device),
                    vid=int(vid),
                    pid=int(pid),
                    serial_number=str(getattr(info, "serial_number", None) or ""),
                    description=str(getattr(info, "description", None) or ""),
                    source="usb",
                )
            )
        return boards

    def _lab(self) -> list[DiscoveredBoard]:
        if self.lab_registry is None or not self.lab_registry.exists():
            return []
        try:
            raw = json.loads(self.lab_registry.read_text(encoding="utf-8"))
            runner = int(raw["runner_pid"])
            entries = list(raw["boards"])
        except (OSError, ValueError, KeyError, TypeError):
            return []  # a registry being rewritten or left by a crash: no lab boards now
        if not _pid_alive(runner):
            return []
        boards = []
        for entry in entries:
            try:
                board = DiscoveredBoard(
                    device=str(entry["device"]),
                    location=str(entry["location"]),
                    vid=int(entry["vid"]),
                    pid=int(entry["pid"]),
                    serial_number=str(entry.get("serial_number", "")),
                    description=str(entry.get("description", "")),
                    source="lab",
                )
            except (KeyError, TypeError, ValueError):
                continue
            if Path(board.device).exists() and _board_running(entry.get("process_id")):
                boards.append(board)
        return boards


class HotplugMonitor:
    """Reports board arrival and removal per slot, by comparing successive discoveries."""

    def __init__(self, discovery: BoardDiscovery) -> None:
        self.discovery = discovery
        self._present: dict[tuple[str, str, str], DiscoveredBoard] = {}

    def poll(self) -> list[SlotEvent]:
        """Look at the ports once; return what changed since the last look (first: arrivals)."""
        # the USB serial is part of the key: a board swapped faster than one poll (the same
        # device node reused at once) still shows as one board out, another in
        now = {(b.location, b.device, b.serial_number): b for b in self.discovery.boards()}
        bindings = self.discovery.bindings.load()  # a slot may have been bound since last look
        events = [
            SlotEvent(PlugChange.REMOVED, slot, _with_slot(board, slot))
            for key, board in self._present.items()
            if key not in now
            for slot in [self.discovery.bindings.slot_of(board.location, bindings)]
        ]
        events += [
            SlotEvent(PlugChange.ARRIVED, board.slot, board)
            for key, board in now.items()
            if key not in self._present
        ]
        self._present = now
        return events

    def watch(
        self,
        on_event: Callable[[SlotEvent], None],
        stop: threading.Event,
        *,
        interval_s: float = 0.5,
    ) -> None:
        """Poll every ``interval_s`` until ``stop`` is set, calling ``on_event`` per change."""
        while not stop.is_set():
            for event in self.poll():
                on_event(event)
            stop.wait(interval_s)


def _with_slot(board: DiscoveredBoard, slot: str | None) -> DiscoveredBoard:
    from dataclasses import replace

    return replace(board, slot=slot)


def _board_running(process_id: object) -> bool:
    """Whether a lab board's process still runs (not ended, not a zombie nobody reaped yet).

    A board that dies on its own (an injected unplug, a crash) stays in the registry, with the
    pty it had, until its runner rewrites it. The kernel gives the lowest free pty number to the
    next pty opened anywhere on the machine (another lab's board, a terminal), so that path soon
    exists again as someone else's: a slot would provision a stranger. Only the board's process
    says whether the board is still there. A registry without process ids leaves it to the path.
    """
    if process_id is None:
        return True
    if not isinstance(process_id, int) or process_id <= 0:
        return False
    if not Path("/proc/self/stat").exists():  # no procfs: a zombie cannot be told apart
        return _pid_alive(process_id)
    try:
        stat = Path(f"/proc/{process_id}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return False
    except OSError:
        return _pid_alive(process_id)
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces and ")"
    return bool(fields) and fields[0] not in ("Z", "X")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
