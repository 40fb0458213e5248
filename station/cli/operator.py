"""``station operator``: manage who may use the station and with which role."""

from __future__ import annotations

import click

from station.cli.common import CliState, echo_json, json_option, open_station, pass_state
from station.domain.records import Role


@click.group()
def operator() -> None:
    """Add, list, enable and disable operators (changes need the admin role)."""


@operator.command(name="list")
@json_option
@pass_state
def list_operators(state: CliState, as_json: bool) -> None:
    """List operators with their role and login methods."""
    with open_station(state) as station:
        rows = station.operators().all()
    if as_json:
        echo_json(
            [
                {
                    "name": r.name,
                    "role": str(r.role),
                    "enabled": r.enabled,
                    "pin": bool(r.pin_hash),
                    "badge": bool(r.badge_hash),
                }
                for r in rows
            ]
        )
        return
    for r in rows:
        logins = ", ".join(k for k, v in (("PIN", r.pin_hash), ("badge", r.badge_hash)) if v)
        status = "enabled" if r.enabled else "DISABLED"
        click.echo(f"{r.name:<20} {r.role!s:<11} {status:<9} {logins or 'no login set'}")


@operator.command()
@click.argument("name")
@click.option(
    "--role", type=click.Choice([str(r) for r in Role]), required=True, help="What they may do."
)
@click.option("--pin", "ask_pin", is_flag=True, help="Prompt for a PIN (6-12 digits).")
@click.option("--badge", "ask_badge", is_flag=True, help="Prompt for a badge scan.")
@pass_state
def add(state: CliState, name: str, role: str, ask_pin: bool, ask_badge: bool) -> None:
    """Add operator NAME. PIN and badge are prompted for, never passed on the command line."""
    pin = click.prompt("PIN", hide_input=True, confirmation_prompt=True) if ask_pin else ""
    badge = click.prompt("Scan badge", hide_input=True) if ask_badge else ""
    with open_station(state) as station:
        record = station.operators().add(
            name, Role(role), pin=pin, badge=badge, operator=state.operator
        )
    click.echo(f"added {record.name} as {record.role}")


@operator.command()
@click.argument("name")
@pass_state
def disable(state: CliState, name: str) -> None:
    """Disable operator NAME (they can no longer log in; their history stays)."""
    with open_station(state) as station:
        station.operators().set_enabled(name, False, operator=state.operator)
    click.echo(f"disabled {name}")


@operator.command()
@click.argument("name")
@pass_state
def enable(state: CliState, name: str) -> None:
    """Re-enable operator NAME."""
    with open_station(state) as station:
        station.operators().set_enabled(name, True, operator=state.operator)
    click.echo(f"enabled {name}")
