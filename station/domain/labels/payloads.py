"""What a label's barcodes encode: the plain registration ID, the compact form, GS1 Digital Link."""

from __future__ import annotations

from urllib.parse import quote

from station.domain.labels.model import (
    Gs1Settings,
    LabelData,
    LabelTemplate,
    PayloadKind,
)


def _escape_compact(value: str) -> str:
    return quote(value, safe=" !\"#$&'()*+,-./:<>?@[\\]^_`{|}~")


def compact_payload(data: LabelData) -> str:
    """Build ``rid=<id>;sn=<serial>;b=<batch>[;tp=<thumbprint>]`` (``%``, ``;``, ``=`` escaped)."""
    parts = [("rid", data.registration_id), ("sn", data.serial), ("b", data.batch)]
    if data.thumbprint:
        parts.append(("tp", data.thumbprint))
    return ";".join(f"{key}={_escape_compact(value)}" for key, value in parts)


def gs1_digital_link(data: LabelData, settings: Gs1Settings) -> str:
    """Build a GS1 Digital Link URI: GTIN (AI 01), serial (AI 21), registration ID as ``rid``."""
    resolver = settings.resolver.rstrip("/")
    serial = quote(data.serial, safe="")
    rid = quote(data.registration_id, safe="")
    return f"{resolver}/01/{settings.gtin}/21/{serial}?rid={rid}"


def build_payload(kind: PayloadKind, data: LabelData, template: LabelTemplate) -> str:
    """Return the exact text a barcode of ``kind`` encodes for ``data``."""
    if kind is PayloadKind.REGISTRATION_ID:
        return data.registration_id
    if kind is PayloadKind.SERIAL:
        return data.serial
    if kind is PayloadKind.COMPACT:
        return compact_payload(data)
    return gs1_digital_link(data, template.gs1)


def is_valid_gtin(gtin: str) -> bool:
    """Whether ``gtin`` is a GTIN-14 with a correct GS1 check digit."""
    if len(gtin) != 14 or not gtin.isdigit():
        return False
    digits = [int(c) for c in gtin]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:-1]))
    return (10 - total % 10) % 10 == digits[-1]
