"""``station fleet``: replicate to the fleet ledger and look across every station (#23)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import click

from station.cli.common import CliState, echo_json, json_option, open_station, pass_state, term
from station.domain.fleet import FleetDevice, FleetQuery, StationSummary
from station.domain.states import DeviceStatus


@click.group()
def fleet() -> None:
    """The fleet ledger (PostgreSQL): replication, fleet-wide search, stations and alarms."""


@fleet.command(name="init-ledger")
@pass_state
def init_ledger(state: CliState) -> None:
    """Create the ledger's tables (idempotent; run once with the ledger owner's role)."""
    with open_station(state) as station:
        station.fleet().install()
    click.echo("fleet ledger tables are in place")


@fleet.command()
@pass_state
def roles(state: CliState) -> None:
    """Print the SQL that creates the ledger's roles (run it as the ledger owner)."""
    with open_station(state) as station:
        click.echo(station.fleet_roles_sql(), nl=False)


@fleet.command()
@click.option("--follow", is_flag=True, help="Keep replicating every [fleet] sync_interval_s.")
@click.option("--max-batches", default=0, type=click.IntRange(0), help="Stop after N batches.")
@json_option
@pass_state
def sync(state: CliState, follow: bool, max_batches: int, as_json: bool) -> None:
    """Send this station's queued events, devices, certificates and batches to the ledger.

    A ledger that is down leaves everything queued (exit status 0 with --follow, 2 without).
    """
    with open_station(state) as station:
        replicator = station.fleet_replicator()
        interval = station.config.fleet.sync_interval_s
        stop = threading.Event()
        while True:
            report = replicator.sync(max_batches=max_batches)
            if as_json:
                echo_json(dataclasses.asdict(report))
            elif report.error:
                click.secho(f"ledger unreachable: {term(report.error)}", fg="yellow", err=True)
                click.echo(f"{report.pending} events wait in the outbox")
            else:
                click.echo(
                    f"sent {report.sent} events; the ledger holds this station up to event "
                    f"{report.acked.seq}; {report.pending} waiting"
                )
            if not follow:
                if report.error:
                    raise click.exceptions.Exit(2)
                return
            stop.wait(interval)


@fleet.command()
@json_option
@pass_state
def status(state: CliState, as_json: bool) -> None:
    """This station's replication: head, last event sent, pending, last error."""
    with open_station(state) as station:
        outbox = station.fleet_replicator().status()
    if as_json:
        echo_json(dataclasses.asdict(outbox))
        return
    click.echo(f"chain head       {outbox.head_seq}")
    click.echo(f"sent through     {outbox.sent_seq} ({outbox.last_sent_at or 'never'})")
    click.echo(f"waiting          {outbox.pending}")
    if outbox.last_error:
        click.echo(f"last error       {term(outbox.last_error)} ({outbox.attempts} attempts)")


def _summary(device: FleetDevice) -> dict[str, Any]:
    row = dataclasses.asdict(device)
    row.pop("manifest_json")
    return row


@fleet.command()
@click.option("--station", "station_name", default="", help="Only this station.")
@click.option("--batch", default="", help="Only this batch (work order).")
@click.option("--product", default="", help="Only this product.")
@click.option("--status", default="", type=click.Choice(["", *[str(s) for s in DeviceStatus]]))
@click.option("--serial", default="", help="Board serial number.")
@click.option("--registration-id", default="", help="DPS registration ID.")
@click.option("--ek-hash", default="", help="SHA-256 of the endorsement key (hex).")
@click.option("--key-hash", default="", help="SHA-256 of the device public key (hex).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, type=click.IntRange(0))
@json_option
@pass_state
def devices(
    state: CliState,
    station_name: str,
    batch: str,
    product: str,
    status: str,
    serial: str,
    registration_id: str,
    ek_hash: str,
    key_hash: str,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """Search devices across every station of the fleet."""
    query = FleetQuery(
        station=station_name,
        batch=batch,
        product=product,
        status=status,
        serial=serial,
        registration_id=registration_id,
        ek_sha256=ek_hash.replace(":", ""),
        device_key_sha256=key_hash.replace(":", ""),
        limit=limit,
        offset=offset,
    )
    with open_station(state) as station:
        rows = station.fleet().devices(query)
    if as_json:
        echo_json({"devices": [_summary(d) for d in rows]})
        return
    if not rows:
        click.echo("no devices match")
        return
    click.echo(f"{'STATION':<16} {'REGISTRATION ID':<54} {'SERIAL':<18} {'BATCH':<12} STATUS")
    for d in rows:
        click.echo(
            f"{term(d.station):<16} {term(d.registration_id):<54} {term(d.serial):<18} "
            f"{term(d.batch):<12} {d.status}"
        )


@fleet.command()
@click.argument("key")
@json_option
@pass_state
def show(state: CliState, key: str, as_json: bool) -> None:
    """Show every station's record of one board: serial, registration ID, EK or key hash."""
    with open_station(state) as station:
        view = station.fleet().show(key)
    if as_json:
        echo_json(
            {
                "devices": [_summary(d) for d in view.devices],
                "events": [
                    {"station": s, "seq": e.seq, "time": e.time, "kind": e.kind, "by": e.operator}
                    for s, e in view.events
                ],
                "alarms": [a.describe() for a in view.alarms],
            }
        )
        return
    for d in view.devices:
        click.echo(f"{term(d.station)}: {term(d.registration_id)} serial {term(d.serial)}")
        click.echo(f"  product / batch  {term(d.product)} / {term(d.batch)}")
        click.echo(f"  status           {d.status} (by {term(d.operator)}, {d.updated_at})")
        if d.ek_sha256:
            click.echo(f"  EK SHA-256       {d.ek_sha256}")
        if d.device_key_sha256:
            click.echo(f"  key SHA-256      {d.device_key_sha256}")
    for station_name, event in view.events:
        click.echo(f"event {term(station_name)}#{event.seq} {event.time} {event.kind}")
    for alarm in view.alarms:
        click.secho(f"ALARM {term(alarm.describe())}", fg="red")


def _station_row(s: StationSummary) -> dict[str, Any]:
    row = dataclasses.asdict(s)
    row.update(lag=s.lag, yield_pct=round(s.yield_pct, 2))
    return row


@fleet.command()
@json_option
@pass_state
def stations(state: CliState, as_json: bool) -> None:
    """Every station: last sync (ledger clock), lag, clock skew, yield, certificates, CA."""
    with open_station(state) as station:
        rows = station.fleet().stations()
    if as_json:
        echo_json({"stations": [_station_row(s) for s in rows]})
        return
    click.echo(
        f"{'STATION':<16} {'LAST SYNC':<21} {'LAG':>6} {'SKEW S':>8} {'DEVICES':>8} "
        f"{'YIELD':>7} {'CERTS':>6} CA"
    )
    for s in rows:
        click.echo(
            f"{term(s.station):<16} {s.last_sync or 'never':<21} {s.lag:>6} "
            f"{s.clock_skew_s:>8.0f} {s.devices:>8} {s.yield_pct:>6.1f}% {s.certificates:>6} "
            f"{term(s.ca_subject) or '-'}"
        )


@fleet.command()
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@json_option
@pass_state
def alarms(state: CliState, limit: int, as_json: bool) -> None:
    """Duplicates found across stations and batches over their fleet quota, newest first."""
    with open_station(state) as station:
        rows = station.fleet().alarms(limit)
    if as_json:
        echo_json(
            {
                "alarms": [
                    {**dataclasses.asdict(a), "kind": str(a.kind), "text": a.describe()}
                    for a in rows
                ]
            }
        )
        return
    if not rows:
        click.echo("no fleet alarms")
        return
    for alarm in rows:
        click.echo(f"#{alarm.id} {alarm.raised_at} {term(alarm.describe())}")


@fleet.command()
@pass_state
def verify(state: CliState) -> None:
    """Check every station's chain in the ledger and every device row against its event."""
    with open_station(state) as station:
        problems = station.fleet().verify()
    if not problems:
        click.echo("fleet ledger OK: every chain verifies and every device matches its event")
        return
    for problem in problems:
        click.secho(
            f"{term(problem.station)} {term(problem.where)}: {term(problem.problem)}", fg="red"
        )
    raise click.exceptions.Exit(1)


@fleet.command()
@click.argument("batch")
@click.argument("limit", required=False, type=click.IntRange(0))
@pass_state
def quota(state: CliState, batch: str, limit: int | None) -> None:
    """Show, or set (0 removes; admins), a work order's device quota across all stations."""
    with open_station(state) as station:
        views = station.fleet()
        if limit is not None:
            views.set_quota(batch, limit, operator=state.operator)
        current = views.quota(batch)
        issued = views.issuance(batch)
    click.echo(f"batch {term(batch)}: fleet quota {current or 'none'}")
    for row in issued:
        click.echo(
            f"  {term(row.station):<16} certificates issued {row.issued}, installed "
            f"{row.installed}, voided {row.voided}"
        )


@fleet.command(name="export")
@click.argument("batch")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the export (default: [dps] export_dir).",
)
@click.option("--force", is_flag=True, help="Replace an existing export file.")
@pass_state
def export(state: CliState, batch: str, out: Path | None, force: bool) -> None:
    """Write one JSON export of a work order with the devices of every station."""
    with open_station(state) as station:
        path, count = station.fleet_export(batch, out=out, force=force)
    click.echo(f"wrote {count} devices of batch {term(batch)} to {path}")
