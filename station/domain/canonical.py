"""Canonical JSON: one byte string per value, so hashes and signatures are reproducible.

The form is a strict subset of RFC 8785 (JCS): object keys sorted by code point, no insignificant
whitespace, UTF-8 without escaping non-ASCII, and no floating-point numbers at all (identity data
never needs them, and they are the one part of JSON where serialisers disagree).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from station.domain.errors import ValidationError

JsonValue = None | bool | int | str | Sequence["JsonValue"] | Mapping[str, "JsonValue"]


def _is_json(value: Any) -> bool:
    """Whether ``value`` holds only JSON types without floats (the fast path of :func:`_check`)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    # plain loops, scalars inline: this runs for every audit event and manifest
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                return False
            item_kind = type(item)
            if not (item_kind is str or item_kind is int or item is None) and not _is_json(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:
            item_kind = type(item)
            if not (item_kind is str or item_kind is int or item is None) and not _is_json(item):
                return False
        return True
    if isinstance(value, float):
        return False
    if isinstance(value, bool | int | str):  # subclasses, e.g. StrEnum members
        return True
    if isinstance(value, Mapping):
        return all(isinstance(key, str) and _is_json(item) for key, item in value.items())
    return False


def _check(value: Any, path: str) -> None:
    """Raise for the first value that is not JSON, naming where it is (the slow path)."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise ValidationError(f"floats are not allowed in canonical JSON (at {path})", path=path)
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"object keys must be strings (at {path})", path=path)
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise ValidationError(
        f"{type(value).__name__} is not a JSON value (at {path})",
        path=path,
        type=type(value).__name__,
    )


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` to canonical JSON bytes.

    Raises:
        ValidationError: the value holds a float, a non-string key or a non-JSON type.
    """
    if not _is_json(value):  # walk again, slowly, only to say where
        _check(value, "$")
    return _dumps(value)


def canonical_form(text: str) -> str:
    """The canonical form of the JSON ``text`` (equal to ``text`` exactly when it is canonical).

    Parsing refuses floats, ``NaN`` and infinities as it meets them, so what it returns holds
    only JSON types without floats and needs no second walk (:func:`canonical_json` has to
    check values built in Python).

    Raises:
        ValueError: ``text`` is not JSON, or holds a float.
    """
    value = _STRICT.decode(text)
    return _dumps(value).decode("utf-8")


def _no_float(text: str) -> Any:
    raise ValueError(f"floats are not allowed in canonical JSON ({text})")


#: one decoder, built once: ``db verify`` parses every audit payload with it
_STRICT = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)


#: built once: ``json.dumps`` with these options builds a new encoder on every call
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
