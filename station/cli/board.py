"""``station board``: placeholder group, filled by its issue."""

from __future__ import annotations

import click


@click.group()
def board() -> None:
    """board commands."""
