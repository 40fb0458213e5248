"""A structural pre-scan of CBOR bytes, run before any decoder builds a value from them.

A board is not trusted. A CBOR decoder expands what the bytes describe: shared references (tags
28/29) turn a 1 KB frame into a structure that keeps a core busy for minutes, and a length
prefix can promise gigabytes. So every payload is walked here first, header by header, without
building anything: tags, floats, ``undefined`` and other simple values are refused, every length
must fit in the bytes that are actually there, nesting and item counts are bounded. The work is
linear in the payload and capped by :data:`MAX_TOTAL_ITEMS` (the per-frame CPU budget); only a
payload that passes reaches the decoder, and then decoding is linear too (no tag, no expansion).

:func:`peek_seq` uses the same walk to read a message's ``seq`` without decoding its body, so a
stale or foreign answer is dropped before any of it is decoded. The last payload that passed is
remembered per thread (by identity: ``bytes`` cannot change), so decoding the answer whose
``seq`` was just peeked does not walk it a second time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

#: Nesting below the top-level map (docs/board-protocol.md §3).
MAX_DEPTH: Final = 6
#: Items in one array or map.
MAX_CONTAINER_ITEMS: Final = 64
#: Items (of any kind, keys included) in one message: the work budget of one frame.
MAX_TOTAL_ITEMS: Final = 2048

_SIMPLE_OK: Final = {20, 21, 22}  # false, true, null
_BREAK: Final = 0xFF


class CborRejected(ValueError):
    """The bytes are not plain, bounded CBOR (the message says what was found where)."""


@dataclass
class _Open:
    """A container still being read: ``left`` items to go (-1: indefinite, until a break)."""

    major: int
    left: int
    seen: int = 0


_passed = threading.local()  # .payload: the last bytes object this thread's scan accepted


def scan(payload: bytes) -> None:
    """Walk ``payload`` as exactly one plain CBOR item, without decoding it.

    Raises:
        CborRejected: a tag, a float, a simple value other than false/true/null, a length past
            the end, too deep, too many items, a malformed head or trailing bytes.
    """
    if type(payload) is bytes and getattr(_passed, "payload", None) is payload:
        return  # this very (immutable) object passed just before
    _Walker(payload).walk()
    if type(payload) is bytes:
        _passed.payload = payload


def peek_seq(payload: bytes) -> int | None:
    """Scan ``payload``; return the unsigned integer under the top-level key ``"seq"``, if any.

    Raises:
        CborRejected: as :func:`scan`, or the top-level item is not a map.
    """
    scan(payload)
    walker = _Walker(payload)
    major, count, _ = walker.head()
    if major != 5 or count < 0:
        raise CborRejected("the message is not a definite-length CBOR map")
    for _ in range(count):
        key_major, key_len, _ = walker.head()
        key = b""
        if key_major == 3 and key_len >= 0:
            key = payload[walker.pos : walker.pos + key_len]
            walker.pos += key_len
        else:
            walker.pos = walker.skip_from(key_major, key_len)
        value_major, value, _ = walker.head()
        if key == b"seq":
            return value if value_major == 0 else None
        walker.pos = walker.skip_from(value_major, value)
    return None


class _Walker:
    def __init__(self, payload: bytes) -> None:
        self.data = payload
        self.pos = 0

    def head(self) -> tuple[int, int, int]:
        """Read one item head: ``(major, argument, info)``; argument -1 for indefinite."""
        if self.pos >= len(self.data):
            raise CborRejected(f"CBOR ends early at byte {self.pos}")
        first = self.data[self.pos]
        self.pos += 1
        major, info = first >> 5, first & 0x1F
        if info < 24:
            return major, info, info
        if info in (24, 25, 26, 27):
            size = 1 << (info - 24)
            if self.pos + size > len(self.data):
                raise CborRejected(f"CBOR ends early at byte {self.pos}")
            value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
            self.pos += size
            return major, value, info
        if info == 31:
            return major, -1, info
        raise CborRejected(f"reserved CBOR head 0x{first:02x} at byte {self.pos - 1}")

    def skip_from(self, major: int, argument: int) -> int:
        """The position after the item whose head was just read (the payload is pre-scanned)."""
        if major in (2, 3) and argument >= 0:
            return self.pos + argument
        if major in (0, 1, 7):
            return self.pos
        pending = argument * (2 if major == 5 else 1) if major in (4, 5) else 0
        if argument < 0:  # indefinite: items until the matching break
            while self.data[self.pos] != _BREAK:
                self.pos = self.skip_from(*self.head()[:2])
            return self.pos + 1
        for _ in range(pending):
            self.pos = self.skip_from(*self.head()[:2])
        return self.pos

    def walk(self) -> None:
        stack: list[_Open] = []
        items = 0
        while True:
            top = stack[-1] if stack else None
            if top is not None and top.left < 0 and self._at_break():
                self.pos += 1
                if top.major == 5 and top.seen % 2:
                    raise CborRejected("an indefinite map ends after a key without its value")
                stack.pop()
                if self._finish(stack):
                    break
                continue
            start = self.pos
            major, argument, info = self.head()
            items += 1
            if items > MAX_TOTAL_ITEMS:
                raise CborRejected(f"more than {MAX_TOTAL_ITEMS} CBOR items in one message")
            if top is not None and top.major in (2, 3) and (major != top.major or argument < 0):
                raise CborRejected(f"a bad chunk in an indefinite string at byte {start}")
            if major == 6:
                raise CborRejected(f"CBOR tag {argument} at byte {start} (tags are not allowed)")
            if major == 7:
                if info in (25, 26, 27):
                    raise CborRejected(f"a float at byte {start} (floats are not allowed)")
                if info == 31:
                    raise CborRejected(f"an unexpected break at byte {start}")
                if argument not in _SIMPLE_OK or info != argument:
                    raise CborRejected(f"CBOR simple value {argument} at byte {start}")
            elif major in (2, 3):
                if argument >= 0:
                    if argument > len(self.data) - self.pos:
                        raise CborRejected(
                            f"a string at byte {start} claims {argument} bytes; "
                            f"{len(self.data) - self.pos} remain"
                        )
                    self.pos += argument
                else:
                    stack.append(_Open(major, -1))
                    self._check_depth(stack, start)
                    continue
            elif major in (4, 5):
                if argument > MAX_CONTAINER_ITEMS:
                    raise CborRejected(
                        f"a container at byte {start} holds {argument} items "
                        f"(limit {MAX_CONTAINER_ITEMS})"
                    )
                left = argument * 2 if (major == 5 and argument > 0) else argument
                stack.append(_Open(major, left))
                self._check_depth(stack, start)
                if left != 0:
                    continue
                stack.pop()
            if self._finish(stack):
                break
        if self.pos != len(self.data):
            raise CborRejected(f"{len(self.data) - self.pos} bytes after the CBOR message")

    def _at_break(self) -> bool:
        if self.pos >= len(self.data):
            raise CborRejected(f"CBOR ends early at byte {self.pos}")
        return self.data[self.pos] == _BREAK

    @staticmethod
    def _check_depth(stack: list[_Open], start: int) -> None:
        if len(stack) > MAX_DEPTH + 1:  # the top-level map is stack[0]
            raise CborRejected(f"CBOR nests too deeply at byte {start}")

    @staticmethod
    def _finish(stack: list[_Open]) -> bool:
        """Count one finished item into its container(s); True when the top item is done."""
        while stack:
            top = stack[-1]
            top.seen += 1
            limit = MAX_CONTAINER_ITEMS * (2 if top.major == 5 else 1)
            if top.left < 0:
                if top.major in (4, 5) and top.seen > limit:
                    raise CborRejected(f"an indefinite container holds over {limit} items")
                return False
            top.left -= 1
            if top.left > 0:
                return False
            stack.pop()
        return True
