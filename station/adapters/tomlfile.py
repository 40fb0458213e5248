"""The one TOML loader of the station: size-limited reading, then typed frozen dataclasses.

Every TOML file the station reads (the config, product recipes, enrollment templates, label
templates, certificate profiles, slot bindings, lab configs) goes through :func:`read_toml`, and
its tables through :func:`build`, so that every file reports a hostile input, an unknown key or a
wrong type the same way, by its dotted name and its file.
Supported field types: str, int, float, bool, Path, StrEnum, nested dataclasses, ``X | None``,
``tuple[T, ...]``, ``frozenset[T]`` and ``Mapping[str, Any]`` (any JSON-like table).
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union

from station.domain.errors import StationError, ValidationError
from station.inputs import MAX_CONFIG, ErrorFactory, read_bounded

_T = TypeVar("_T")


def read_toml(
    path: Path, *, limit: int = MAX_CONFIG, what: str, error: ErrorFactory = ValidationError
) -> dict[str, Any]:
    """Read and parse a TOML file: size-limited, UTF-8, and no crash on hostile nesting.

    Raises:
        StationError: (of type ``error``) as :func:`read_bounded`, or not UTF-8, not TOML, or
            nested too deeply for the parser.
    """
    data = read_bounded(path, limit=limit, what=what, error=error)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {path} is not UTF-8 text",
            remedy="Save the file as UTF-8 text.",
            file=str(path),
        ) from exc
    return parse_toml(text, what=what, source=str(path), error=error)


def parse_toml(
    text: str, *, what: str, source: str, error: ErrorFactory = ValidationError
) -> dict[str, Any]:
    """Parse TOML text read from ``source`` (a file name, for messages).

    Raises:
        StationError: (of type ``error``) not TOML, or nested too deeply for the parser.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(
            f"{what} {source} is not valid TOML: {exc}",
            remedy="Fix the syntax error at the position shown.",
            file=source,
        ) from exc
    except RecursionError as exc:  # tomllib recurses per nesting level
        raise error(
            f"{what} {source} nests arrays or tables too deeply to be read",
            remedy="A station file nests a few levels at most; check that it is the right file.",
            file=source,
        ) from exc


def load_toml(
    path: Path,
    cls: type[_T],
    *,
    what: str,
    error: type[StationError],
    table: str = "",
    **extra: Any,
) -> _T:
    """Read ``path`` (:func:`read_toml`) and build ``cls`` from it, or from its one ``[table]``.

    Raises:
        error: as :func:`read_toml` and :func:`build`; with ``table``, also a file that does not
            hold exactly that one table.
    """
    raw = read_toml(path, what=what, error=error)
    if table:
        if set(raw) != {table}:
            raise error(
                f"{path} must hold exactly one [{table}] table (found: {', '.join(sorted(raw))})",
                file=str(path),
            )
        raw = raw[table]
    return build(
        cls, raw, file=str(path), error=error, prefix=f"{table}." if table else "", **extra
    )


def build(
    cls: type[_T],
    raw: object,
    *,
    file: str,
    error: type[StationError],
    prefix: str = "",
    **extra: Any,
) -> _T:
    """Instantiate dataclass ``cls`` from ``raw`` (a TOML table).

    Args:
        cls: the dataclass to build.
        raw: the parsed table (anything else is refused as not a table).
        file: the file name, for messages.
        error: the :class:`StationError` subclass to raise.
        prefix: dotted prefix of ``raw`` inside the file, for messages.
        extra: fields that do not come from the file (they cannot be set in it).

    Raises:
        error: an unknown key or a value of the wrong type, naming key and file.
    """
    if not isinstance(raw, Mapping):  # ``product = 5`` where a [product] table belongs
        where = f"'{prefix.rstrip('.')}'" if prefix else "the file"
        raise error(
            f"{where} in {file} must be a table, not {type(raw).__name__}",
            remedy="Write it as a [table] of keys.",
            file=file,
            key=prefix.rstrip("."),
        )
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
