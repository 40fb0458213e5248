"""What every CLI command shares: building the station, JSON output, error translation."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from station.bootstrap import Station, build_station
from station.config import StationConfig, load_config

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """Options of the root command, handed to every subcommand through click's context."""

    config_path: Path | None = None
    operator: str = ""

    def config(self) -> StationConfig:
        """Load the configuration (``--config``, ``$STATION_CONFIG`` or the default)."""
        return load_config(self.config_path)


pass_state = click.make_pass_decorator(CliState, ensure=True)


@contextmanager
def open_station(state: CliState) -> Iterator[Station]:
    """Build the station from the CLI's config and close it afterwards.

    The database must exist: only ``station init`` creates one.
    """
    station = build_station(state.config(), create_database=False)
    try:
        yield station
    finally:
        station.close()


def json_option(func: F) -> F:
    """Add ``--json``: machine-readable output on stdout instead of the human rendering."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text."
    )(func)


def force_option(func: F) -> F:
    """Add ``--force``: replace an existing output file (never one the station owns)."""
    return click.option(
        "--force",
        is_flag=True,
        help="Replace the output file if it exists (the station's own files never are).",
    )(func)


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A click callback refusing ``nan`` and ``inf`` (a range check lets ``nan`` through)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a finite number", ctx=ctx, param=param)
    return value


def term(text: object) -> str:
    """``text`` safe for a terminal: control and format characters shown as escapes.

    Serials, models and messages can come from a board or a file; an ESC sequence or a CR in
    one must not rewrite the technician's screen (``PASS`` over a ``FAIL``).
    """
    value = str(text)
    if value.isprintable():
        return value
    return "".join(char if char.isprintable() else _escape(char) for char in value)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON (keys sorted, so output is stable)."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
