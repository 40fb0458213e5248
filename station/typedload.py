"""Build frozen dataclasses from parsed TOML, checking every key against the field types.

Used for the station config and for the data templates (products, enrollments), so that every
file the station reads reports an unknown key or a wrong type by its dotted name and its file.
Supported field types: str, int, float, bool, Path, StrEnum, nested dataclasses, ``X | None``,
``tuple[T, ...]``, ``frozenset[T]`` and ``Mapping[str, Any]`` (any JSON-like table).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union

from station.domain.errors import StationError

_T = TypeVar("_T")


def build(
    cls: type[_T],
    raw: Mapping[str, Any],
    *,
    file: str,
    error: type[StationError],
    prefix: str = "",
    **extra: Any,
) -> _T:
    """Instantiate dataclass ``cls`` from ``raw`` (a TOML table).

    Args:
        cls: the dataclass to build.
        raw: the parsed table.
        file: the file name, for messages.
        error: the :class:`StationError` subclass to raise.
        prefix: dotted prefix of ``raw`` inside the file, for messages.
        extra: fields that do not come from the file (they cannot be set in it).

    Raises:
        error: an unknown key or a value of the wrong type, naming key and file.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = dict(extra)
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in known or key in extra:
            raise error(
                f"unknown key '{dotted}' in {file}",
                remedy="Remove it or correct its spelling. "
                f"Known keys: {', '.join(sorted(known))}.",
                file=file,
                key=dotted,
            )
        values[key] = _coerce(hints[key], value, file=file, key=dotted, error=error)
    try:
        return cls(**values)
    except TypeError as exc:  # a required key is missing
        raise error(f"{file}: {exc}", file=file, key=prefix.rstrip(".")) from exc


def _coerce(hint: Any, value: Any, *, file: str, key: str, error: type[StationError]) -> Any:
    def wrong(expected: str) -> StationError:
        return error(
            f"'{key}' in {file} must be {expected}, not {type(value).__name__} {value!r}",
            remedy=f"Correct the value of '{key}'.",
            file=file,
            key=key,
        )

    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise wrong("a table")
        return build(hint, value, file=file, error=error, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        return _coerce(options[0], value, file=file, key=key, error=error)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(str(member.value) for member in hint)
            raise wrong(f"one of {choices}") from None
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise wrong("a path (string)")
        return Path(value).expanduser()
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is int:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise wrong("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if origin in (tuple, frozenset):
        if not isinstance(value, list):
            raise wrong("a list")
        items = [
            _coerce(args[0], v, file=file, key=f"{key}[{i}]", error=error)
            for i, v in enumerate(value)
        ]
        return tuple(items) if origin is tuple else frozenset(items)
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, dict):
            raise wrong("a table")
        return value
    raise error(f"unsupported type for '{key}'", file=file, key=key)
