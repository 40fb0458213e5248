"""A structural pre-scan of CBOR bytes, run before any decoder builds a value from them.

A board is not trusted. A CBOR decoder expands what the bytes describe: shared references (tags
28/29) turn a 1 KB frame into a structure that keeps a core busy for minutes, and a length
prefix can promise gigabytes. So every payload is walked here first, header by header, without
building anything: tags, floats, ``undefined`` and other simple values are refused, every length
must fit in the bytes that are actually there, nesting and item counts are bounded. The work is
linear in the payload and capped by :data:`MAX_TOTAL_ITEMS` (the per-frame CPU budget); only a
payload that passes reaches the decoder, and then decoding is linear too (no tag, no expansion).

:func:`peek_seq` uses the same walk to read a message's ``seq`` without decoding its body, so a
stale or foreign answer is dropped before any of it is decoded. The walk also notes the two
things a decoded value can still hold that the message layer refuses (a map key that is not
text, an item nested deeper than a message may be), so the message layer checks the decoded value
only when one of them is there. The last payload that passed is remembered per thread with what
the walk found (by identity: ``bytes`` cannot change), so decoding the answer whose ``seq`` was
just peeked does not walk it a second time.
"""

from __future__ import annotations

import threading
from typing import Final, NamedTuple

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


class Scanned(NamedTuple):
    """What one walk over a payload that passed found out about it."""

    #: the top-level item is a definite-length map
    definite_map: bool
    #: the value under its first text key ``"seq"`` when that is an unsigned integer; ``None``
    #: when there is no such key or its value is of another type
    seq: int | None
    #: every map key is a text string and nothing sits deeper than :data:`MAX_DEPTH` below the
    #: top-level item: the decoded value needs no further check of its shape
    plain: bool


_passed = threading.local()  # .payload, .facts: the last bytes this thread's scan accepted
_MAJOR_TEXT: Final = 3
_MAJOR_MAP: Final = 5


def scan(payload: bytes) -> Scanned:
    """Walk ``payload`` as exactly one plain CBOR item, without decoding it; say what it holds.

    Raises:
        CborRejected: a tag, a float, a simple value other than false/true/null, a length past
            the end, too deep, too many items, a malformed head or trailing bytes.
    """
    if type(payload) is bytes and getattr(_passed, "payload", None) is payload:
        facts: Scanned = _passed.facts
        return facts  # this very (immutable) object passed just before
    facts = _walk(payload)
    if type(payload) is bytes:
        _passed.payload = payload
        _passed.facts = facts
    return facts


def peek_seq(payload: bytes) -> int | None:
    """Scan ``payload``; return the unsigned integer under the top-level key ``"seq"``, if any.

    Raises:
        CborRejected: as :func:`scan`, or the top-level item is not a map.
    """
    facts = scan(payload)
    if not facts.definite_map:
        raise CborRejected("the message is not a definite-length CBOR map")
    return facts.seq


def _walk(data: bytes) -> Scanned:
    """The walk behind :func:`scan`: one pass, header by header, nothing built.

    The innermost open container is three local variables (major type, items left with -1 for
    indefinite, items seen with map keys and values counted separately); its parents wait on a
    stack. ``major`` -1 with ``depth`` 0 stands for "no container": the top-level item.
    """
    size = len(data)
    parents: list[tuple[int, int, int]] = []
    cur_major, cur_left, cur_seen = -1, 0, 0
    depth = 0
    pos = 0
    items = 0
    definite_map = size > 0 and data[0] >> 5 == _MAJOR_MAP and data[0] & 0x1F != 31
    seq: int | None = None
    seq_state = 0  # 0: no "seq" key yet, 1: its value comes next, 2: done
    plain = True
    deep = MAX_DEPTH + 1  # an item read with this many containers open is too deep
    while True:
        if cur_left < 0:
            if pos >= size:
                raise CborRejected(f"CBOR ends early at byte {pos}")
            if data[pos] == _BREAK:
                pos += 1
                if cur_major == _MAJOR_MAP and cur_seen % 2:
                    raise CborRejected("an indefinite map ends after a key without its value")
                # the container is done: count it into its parents
                done = True
                while parents:
                    cur_major, cur_left, cur_seen = parents.pop()
                    depth -= 1
                    if not depth:
                        break
                    cur_seen += 1
                    if cur_left < 0:
                        _check_indefinite(cur_major, cur_seen)
                        done = False
                        break
                    if cur_left > 1:
                        cur_left -= 1
                        done = False
                        break
                if done:
                    break
                continue
        start = pos
        # the item's head: (major, argument, info); argument -1 for indefinite
        if pos >= size:
            raise CborRejected(f"CBOR ends early at byte {pos}")
        first = data[pos]
        pos += 1
        major = first >> 5
        info = first & 0x1F
        if info < 24:
            argument = info
        elif info < 28:
            width = 1 << (info - 24)
            if pos + width > size:
                raise CborRejected(f"CBOR ends early at byte {pos}")
            argument = int.from_bytes(data[pos : pos + width], "big")
            pos += width
        elif info == 31:
            argument = -1
        else:
            raise CborRejected(f"reserved CBOR head 0x{first:02x} at byte {start}")
        items += 1
        if items > MAX_TOTAL_ITEMS:
            raise CborRejected(f"more than {MAX_TOTAL_ITEMS} CBOR items in one message")
        if depth:
            if cur_major == _MAJOR_MAP:
                if not cur_seen % 2:  # a key
                    if major != _MAJOR_TEXT:
                        plain = False
                    elif depth == 1 and seq_state == 0 and data[pos : pos + argument] == b"seq":
                        seq_state = 1
                elif depth == 1 and seq_state == 1:  # the value of the first "seq" key
                    seq = argument if major == 0 else None
                    seq_state = 2
            elif cur_major in (2, _MAJOR_TEXT) and (major != cur_major or argument < 0):
                raise CborRejected(f"a bad chunk in an indefinite string at byte {start}")
            if depth >= deep:
                plain = False
        if major == 6:
            raise CborRejected(f"CBOR tag {argument} at byte {start} (tags are not allowed)")
        if major == 7:
            if info in (25, 26, 27):
                raise CborRejected(f"a float at byte {start} (floats are not allowed)")
            if info == 31:
                raise CborRejected(f"an unexpected break at byte {start}")
            if argument not in _SIMPLE_OK or info != argument:
                raise CborRejected(f"CBOR simple value {argument} at byte {start}")
        elif major == 2 or major == _MAJOR_TEXT:
            if argument >= 0:
                if argument > size - pos:
                    raise CborRejected(
                        f"a string at byte {start} claims {argument} bytes; {size - pos} remain"
                    )
                pos += argument
            else:
                if depth >= deep:  # the top-level item is the first container
                    raise CborRejected(f"CBOR nests too deeply at byte {start}")
                parents.append((cur_major, cur_left, cur_seen))
                cur_major, cur_left, cur_seen = major, -1, 0
                depth += 1
                continue
        elif major == 4 or major == _MAJOR_MAP:
            if argument > MAX_CONTAINER_ITEMS:
                raise CborRejected(
                    f"a container at byte {start} holds {argument} items "
                    f"(limit {MAX_CONTAINER_ITEMS})"
                )
            left = argument * 2 if (major == _MAJOR_MAP and argument > 0) else argument
            if depth >= deep:
                raise CborRejected(f"CBOR nests too deeply at byte {start}")
            if left != 0:
                parents.append((cur_major, cur_left, cur_seen))
                cur_major, cur_left, cur_seen = major, left, 0
                depth += 1
                continue
        # one item finished: count it into its container, and the containers it completes
        if not depth:
            break
        cur_seen += 1
        if cur_left < 0:
            _check_indefinite(cur_major, cur_seen)
            continue
        if cur_left > 1:
            cur_left -= 1
            continue
        done = True
        while parents:
            cur_major, cur_left, cur_seen = parents.pop()
            depth -= 1
            if not depth:
                break
            cur_seen += 1
            if cur_left < 0:
                _check_indefinite(cur_major, cur_seen)
                done = False
                break
            if cur_left > 1:
                cur_left -= 1
                done = False
                break
        if done:
            break
    if pos != size:
        raise CborRejected(f"{size - pos} bytes after the CBOR message")
    return Scanned(definite_map, seq, plain)


def _check_indefinite(major: int, seen: int) -> None:
    """An indefinite array or map may hold no more items than a definite one."""
    limit = MAX_CONTAINER_ITEMS * (2 if major == _MAJOR_MAP else 1)
    if major in (4, _MAJOR_MAP) and seen > limit:
        raise CborRejected(f"an indefinite container holds over {limit} items")
