"""``station ca``: placeholder group, filled by its issue."""

from __future__ import annotations

import click


@click.group()
def ca() -> None:
    """ca commands."""
