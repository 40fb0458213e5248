"""Validate board-protocol payloads against docs/board-protocol.cddl with zcbor.

zcbor's Python validator matches map members in the order the CDDL lists them (CDDL maps are
unordered), so payloads are re-encoded canonically first: the CDDL lists members in that order.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path
from typing import Any

import cbor2

CDDL_FILE = Path(__file__).resolve().parents[2] / "docs" / "board-protocol.cddl"


@functools.cache
def _types() -> dict[str, Any]:
    if not hasattr(cbor2, "CBORDecodeValueError"):
        # zcbor 0.9 names an exception that cbor2 6 folded into CBORDecodeError
        cbor2.CBORDecodeValueError = cbor2.CBORDecodeError  # type: ignore[attr-defined]
    from zcbor import DataTranslator

    types: dict[str, Any] = DataTranslator.from_cddl(CDDL_FILE.read_text(), 64).my_types
    return types


def validate(payload: bytes, rule: str) -> None:
    """Raise unless ``payload`` (one CBOR item) matches CDDL ``rule``."""
    canonical = cbor2.dumps(cbor2.loads(payload), canonical=True)
    with contextlib.redirect_stdout(io.StringIO()):  # zcbor prints its match attempts
        _types()[rule].validate_str(canonical)


def conforms(payload: bytes, rule: str) -> bool:
    """Whether ``payload`` matches CDDL ``rule``."""
    try:
        validate(payload, rule)
    except Exception:  # zcbor raises its own error types, and assertion errors
        return False
    return True
