"""Reading back what a scanner returned from a station label (any payload form)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from station.domain.errors import (
    InvalidRegistrationIdError,
    ScanMismatchError,
)
from station.domain.registration import normalize_registration_id


@dataclass(frozen=True)
class ScannedIdentity:
    """What a scanned label says about the device it belongs to."""

    form: str  # "registration_id" | "compact" | "gs1_digital_link"
    registration_id: str
    serial: str = ""


def parse_scanned(text: str) -> ScannedIdentity:
    """Read what a scanner returned (any of the payload forms a template can print).

    Raises:
        ScanMismatchError: the text is none of the station's payload forms.

    """
    raw = text.strip()
    if raw.startswith("]") and len(raw) > 3:  # AIM symbology identifier some scanners prepend
        raw = raw[3:]
    if raw.lower().startswith(("http://", "https://")):
        match = re.search(r"/01/(\d{14})/21/([^/?#]+)", raw)
        query = raw.partition("?")[2]
        pairs = dict(item.partition("=")[::2] for item in query.split("&") if item)
        if match is None or "rid" not in pairs:
            raise _unreadable(text, "a GS1 Digital Link without GTIN, serial and rid")
        rid = _registration_id(unquote(pairs["rid"]), text)
        return ScannedIdentity("gs1_digital_link", rid, unquote(match.group(2)))
    if "=" in raw:
        values = {
            key: unquote(value)
            for key, _, value in (item.partition("=") for item in raw.split(";") if item)
        }
        if "rid" not in values:
            raise _unreadable(text, "a key=value code without rid")
        rid = _registration_id(values["rid"], text)
        return ScannedIdentity("compact", rid, values.get("sn", ""))
    return ScannedIdentity("registration_id", _registration_id(raw, text))


def _registration_id(value: str, scanned: str) -> str:
    try:
        return normalize_registration_id(value)
    except InvalidRegistrationIdError as exc:
        raise _unreadable(scanned, "not a valid registration ID") from exc


def _unreadable(text: str, why: str) -> ScanMismatchError:
    return ScanMismatchError(
        f"the scanned code is not a station label ({why})",
        remedy="Scan the identity code on the device label, not another barcode.",
        scanned=text[:200],
    )
