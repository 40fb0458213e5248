"""``station lab``: the embedded lab (virtual boards and the local DPS) for tests and the demo."""

from __future__ import annotations

import click

from station_lab.cli import lab_boards, lab_dps, lab_power


@click.group()
def lab() -> None:
    """Run the lab: virtual boards on pseudo-terminals and a local DPS stand-in."""


lab.add_command(lab_boards.boards)
lab.add_command(lab_dps.dps)
lab.add_command(lab_power.power_on_command)
