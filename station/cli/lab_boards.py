"""``station lab boards``: placeholder, filled by the board-link issue."""

from __future__ import annotations

import click


@click.command()
def boards() -> None:
    """Start virtual boards."""
