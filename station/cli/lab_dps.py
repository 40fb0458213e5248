"""``station lab dps``: placeholder, filled by the local-DPS issue."""

from __future__ import annotations

import click


@click.command()
def dps() -> None:
    """Start the local DPS stand-in."""
