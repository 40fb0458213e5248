"""Chain anchors: the audit-chain head written outside the database, to check it against later.

A chain kept in the file it protects cannot show that its own tail was cut off together with the
head that names it (a deleted WAL rolls back committed transactions exactly like that). So the
head ``(seq, hash)`` is also written where the database cannot reach: next to every backup
(``<backup>.anchor``) and into the header of every signed batch manifest. ``station db verify
--anchor FILE`` then demands that the database still holds that event with that hash.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Final

from station.domain.errors import ValidationError

ANCHOR_MAGIC: Final = "station.chain-anchor/1"
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ChainAnchor:
    """The audit-chain head at some moment: event ``seq`` had hash ``hash``."""

    seq: int
    hash: str
    station: str = ""

    def text(self) -> str:
        """The anchor file's content."""
        return f"{ANCHOR_MAGIC}\nstation {self.station}\nseq {self.seq}\nhash {self.hash}\n"


def parse_anchor(data: bytes) -> ChainAnchor:
    """Read an anchor file, or the anchor inside a signed batch manifest's header.

    The manifest's signature is not checked here (``station manifest verify`` does that); the
    anchor only has to name an event the database must still hold.

    Raises:
        ValidationError: neither an anchor file nor a manifest carrying an anchor.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_an_anchor() from exc
    lines = text.splitlines()
    if lines and lines[0] == ANCHOR_MAGIC:
        fields = dict(line.partition(" ")[::2] for line in lines[1:] if line)
        return _anchor(fields.get("seq", ""), fields.get("hash", ""), fields.get("station", ""))
    if lines and lines[0] == "station.batch-manifest/1" and len(lines) > 1:
        parts = lines[1].split(".")
        try:
            payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (IndexError, ValueError, binascii.Error) as exc:
            raise _not_an_anchor() from exc
        if isinstance(payload, dict) and payload.get("chain_seq"):
            return _anchor(
                str(payload.get("chain_seq")),
                str(payload.get("chain_hash", "")),
                str(payload.get("station", "")),
            )
    raise _not_an_anchor()


def check_anchor(anchor: ChainAnchor, stored_hash: str | None, head_seq: int) -> str:
    """Why the database does not reach ``anchor`` (``""`` when it does).

    Args:
        anchor: the head written outside the database.
        stored_hash: the hash of event ``anchor.seq`` in the database (None: no such event).
        head_seq: the database's last event.
    """
    if stored_hash is None or head_seq < anchor.seq:
        return (
            f"the anchor names event {anchor.seq}, but the chain ends at event {head_seq}: "
            "committed events were lost (a deleted WAL, a restored older file, a cut tail)"
        )
    if stored_hash != anchor.hash:
        return (
            f"event {anchor.seq} has hash {stored_hash[:16]}..., the anchor says "
            f"{anchor.hash[:16]}...: the chain was rewritten"
        )
    return ""


def _anchor(seq: str, digest: str, station: str) -> ChainAnchor:
    if not seq.isdigit() or not _HASH.fullmatch(digest):
        raise _not_an_anchor()
    return ChainAnchor(int(seq), digest, station)


def _not_an_anchor() -> ValidationError:
    return ValidationError(
        "the file is neither a chain anchor nor a signed manifest carrying one",
        remedy="Pass a '<backup>.anchor' file written by 'station db backup', or a signed "
        "batch manifest exported by this station.",
    )
