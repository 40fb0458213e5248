"""``station gui``: the desktop application."""

from __future__ import annotations

import click

from station.cli.common import CliState, open_station, pass_state


@click.command()
@pass_state
def gui(state: CliState) -> None:
    """Open the station's desktop window (needs a display, or QT_QPA_PLATFORM=offscreen)."""
    from station.gui.app import run  # Qt loads only when the GUI is asked for

    with open_station(state) as station:
        code = run(station)
    if code:
        raise click.exceptions.Exit(code)
