"""``station gui``: the desktop application."""

from __future__ import annotations

import os
from collections.abc import Mapping

import click

from station.cli.common import CliState, open_station, pass_state
from station.domain.errors import ConfigError

# Qt platforms that draw on a desktop session; the others (offscreen, vnc, eglfs, ...) need none.
_DESKTOP_PLATFORMS = ("xcb", "wayland")


@click.command()
@pass_state
def gui(state: CliState) -> None:
    """Open the station's desktop window (needs a display, or QT_QPA_PLATFORM=offscreen)."""
    check_display(os.environ)
    from station.gui.app import run  # Qt loads only when the GUI is asked for

    with open_station(state) as station:
        code = run(station)
    if code:
        raise click.exceptions.Exit(code)


def check_display(env: Mapping[str, str]) -> None:
    """Refuse to start the window without a desktop to show it on.

    Qt itself aborts the process (SIGABRT, exit 134) when its platform finds no display.

    Raises:
        ConfigError: no ``$DISPLAY`` or ``$WAYLAND_DISPLAY`` for a desktop platform.
    """
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith(_DESKTOP_PLATFORMS):
        return
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return
    raise ConfigError(
        "there is no display to open the station window on ($DISPLAY is not set)",
        remedy="Start it from the workstation's desktop session, or in a virtual display: "
        "xvfb-run -a station gui",
    )
