"""``station init``: create the config, the data folders and the database (idempotent)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import click

from station.bootstrap import build_station
from station.cli.common import CliState, echo_json, json_option, pass_state
from station.config import (
    StationConfig,
    StationSection,
    load_config,
    resolve_config_path,
    write_default_config,
)


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
@json_option
@pass_state
def init(
    state: CliState, data_dir: Path | None, station_id: str | None, admin: str, as_json: bool
) -> None:
    """Set up this station: config file, data folders and database.

    Safe to run again: existing files are kept, and only the first run records the
    'station.initialized' audit event.
    """
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
    for folder in (config.data_dir, config.backup_dir, config.lab_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # new folders: the owner's only
    station = build_station(config)
    try:
        result = station.database().initialize(
            config_file=str(config_path),
            data_dir=str(config.data_dir),
            admin=admin,
            operator=state.operator,
        )
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
