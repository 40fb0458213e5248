"""``station init``: create the config, the data folders and the database (idempotent)."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import click

from hsm.errors import HsmError
from hsm.pin import read_pin_file
from station.bootstrap import build_station
from station.cli.common import CliState, echo_json, json_option, pass_state, read_secret
from station.config import (
    StationConfig,
    StationSection,
    load_config,
    resolve_config_path,
    write_default_config,
)
from station.domain.errors import ConfigError
from station.services.operators import OperatorService


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the database, backups and artifacts go (only used when creating the config).",
)
@click.option("--station-id", help="This station's name in audit events (new config only).")
@click.option(
    "--admin",
    default="admin",
    show_default=True,
    help="First operator, created with the admin role if no operator exists yet.",
)
@click.option(
    "--pin-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="For scripts: a file (mode 0600) whose first line is the first admin's PIN. "
    "On a terminal the PIN is asked for instead.",
)
@json_option
@pass_state
def init(
    state: CliState,
    data_dir: Path | None,
    station_id: str | None,
    admin: str,
    pin_file: Path | None,
    as_json: bool,
) -> None:
    """Set up this station: config file, data folders and database.

    Safe to run again: existing files are kept, and only the first run records the
    'station.initialized' audit event. The first admin's PIN (6-12 digits) is asked for on a
    terminal (or read from --pin-file), so that admin can log into the window.
    """
    admin_pin = _pin_from_file(pin_file) if pin_file is not None else ""
    config_path, _ = resolve_config_path(state.config_path, os.environ)
    created_config = False
    if not config_path.exists():
        defaults = StationConfig()
        section = StationSection(
            id=station_id or defaults.station.id,
            data_dir=(data_dir or defaults.station.data_dir).expanduser().resolve(),
        )
        write_default_config(config_path, dataclasses.replace(defaults, station=section))
        created_config = True
    config = load_config(config_path)
    if pin_file is None and sys.stdin.isatty() and not config.database_path.exists():
        admin_pin = read_secret(f"PIN for {admin}, the first admin (6-12 digits)", confirm=True)
        OperatorService.check_pin(admin_pin)
    for folder in (config.data_dir, config.backup_dir, config.lab_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # new folders: the owner's only
    station = build_station(config)
    try:
        new_admin = not station.operators().all()
        result = station.database().initialize(
            config_file=str(config_path),
            data_dir=str(config.data_dir),
            admin=admin,
            operator=state.operator,
        )
        if new_admin and admin_pin:
            station.operators().set_pin(admin, admin_pin, operator=admin)
    finally:
        station.close()
    if as_json:
        echo_json(
            {
                "config": str(config_path),
                "config_created": created_config,
                "database": str(config.database_path),
                "initialized": result.created,
                "station": config.station.id,
                "admin_created": admin if new_admin else None,
                "admin_pin_set": bool(new_admin and admin_pin),
            }
        )
        return
    click.echo(f"config:   {config_path}{' (created)' if created_config else ''}")
    click.echo(f"database: {config.database_path}")
    click.echo(f"data:     {config.data_dir}")
    if result.created:
        seq = result.event.seq if result.event else 0
        click.echo(f"station {config.station.id} initialised (audit event {seq})")
    else:
        click.echo(f"station {config.station.id} was already initialised; nothing changed")
    if new_admin:
        how = "with a PIN" if admin_pin else "without a PIN"
        click.echo(f"admin:    {admin} (created {how})")
        if not admin_pin:
            click.echo(
                f"  to log into the window, set one: station --operator {admin} "
                f"operator set-pin {admin}"
            )


def _pin_from_file(pin_file: Path) -> str:
    """The first admin's PIN: the first line of ``pin_file`` (mode 0600).

    Checked before anything is created, so a bad PIN leaves nothing half-done.
    """
    try:
        pin = read_pin_file(pin_file)
    except HsmError as exc:
        raise ConfigError(exc.message, remedy=exc.remedy, file=str(pin_file)) from exc
    OperatorService.check_pin(pin)
    return pin
