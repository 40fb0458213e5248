"""``station db``: verify the audit trail, back up and migrate the station database."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from station.cli.common import (
    CliState,
    echo_json,
    force_option,
    json_option,
    open_station,
    pass_state,
)


@click.group()
def db() -> None:
    """Check, back up and migrate the station database."""


@db.command()
@json_option
@pass_state
def verify(state: CliState, as_json: bool) -> None:
    """Verify the tamper-evident audit chain and every cross-reference.

    Exits with status 1 and names the first inconsistent row if anything was changed
    behind the station's back.
    """
    with open_station(state) as station:
        report = station.database().verify()
    if as_json:
        echo_json(
            {
                "ok": report.ok,
                "events": report.events,
                "devices": report.devices,
                "certificates": report.certificates,
                "problems": [dataclasses.asdict(p) for p in report.problems],
            }
        )
    else:
        click.echo(
            f"checked {report.events} audit events, {report.devices} devices, "
            f"{report.certificates} certificates"
        )
        if report.ok:
            click.secho("OK: audit chain and cross-references are consistent", fg="green")
        for problem in report.problems:
            click.secho(f"INCONSISTENT {problem}", fg="red")
    if not report.ok:
        raise click.exceptions.Exit(1)


@db.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@force_option
@json_option
@pass_state
def backup(state: CliState, path: Path, force: bool, as_json: bool) -> None:
    """Write an online, verified copy of the database to PATH (safe while the line runs).

    PATH is never one of the station's own files, and an existing file is replaced only with
    --force. The copy is readable by its owner only.
    """
    with open_station(state) as station:
        station.check_output(path, force=force)
        result = station.database().backup(path, force=force)
    if as_json:
        echo_json({"path": str(result.path), "events": result.events, "head": result.head_hash})
    else:
        click.echo(f"backup written and verified: {result.path} ({result.events} audit events)")


@db.command()
@click.option("--status", "status_only", is_flag=True, help="Only show the schema status.")
@json_option
@pass_state
def migrate(state: CliState, status_only: bool, as_json: bool) -> None:
    """Bring the database schema up to this station version (backing it up first).

    Opening the database migrates it automatically; this command shows what was applied.
    """
    with open_station(state) as station:
        service = station.database()
        backup_path = None
        if not status_only:
            status, backup_path = service.migrate(backup_dir=station.config.backup_dir)
        else:
            status = service.schema_status()
    if as_json:
        echo_json(
            {
                "applied": list(status.applied),
                "pending": list(status.pending),
                "backup": str(backup_path) if backup_path else None,
            }
        )
        return
    click.echo(f"applied migrations: {', '.join(status.applied) or 'none'}")
    click.echo(f"pending migrations: {', '.join(status.pending) or 'none'}")
    if backup_path:
        click.echo(f"backup before migrating: {backup_path}")
