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
from station.domain.anchors import ChainAnchor, parse_anchor
from station.inputs import MAX_MANIFEST, read_bounded


@click.group()
def db() -> None:
    """Check, back up and migrate the station database."""


@db.command()
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A chain anchor kept outside the database ('<backup>.anchor' or a signed manifest): "
    "the chain must still reach it.",
)
@json_option
@pass_state
def verify(state: CliState, anchor_file: Path | None, as_json: bool) -> None:
    """Verify the tamper-evident audit chain and every cross-reference.

    Exits with status 1 and names the first inconsistent row if anything was changed
    behind the station's back. With --anchor it also catches lost commits (a deleted WAL, an
    older file restored, a cut tail) that a chain inside the database cannot show by itself.
    """
    anchor = (
        parse_anchor(read_bounded(anchor_file, limit=MAX_MANIFEST, what="the anchor"))
        if anchor_file is not None
        else None
    )
    with open_station(state) as station:
        report = station.database().verify(anchor=anchor)
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
    if not path.name or path.is_dir():
        raise click.BadParameter("name the backup file", param_hint="PATH")
    anchor_path = path.with_name(path.name + ".anchor")
    with open_station(state) as station:
        station.check_output(path, force=force)
        station.check_output(anchor_path, force=force)
        result = station.database().backup(path, force=force, operator=state.operator)
        # the head outside the database: 'db verify --anchor' proves no commit was lost since
        anchor = ChainAnchor(result.events, result.head_hash, station.config.station.id)
        station.write_output(anchor_path, anchor.text().encode("utf-8"), force=force)
    if as_json:
        echo_json(
            {
                "path": str(result.path),
                "events": result.events,
                "head": result.head_hash,
                "anchor": str(anchor_path),
            }
        )
    else:
        click.echo(f"backup written and verified: {result.path} ({result.events} audit events)")
        click.echo(f"chain anchor: {anchor_path} (keep a copy away from this station)")


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
