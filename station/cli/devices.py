"""``station devices``: find and show recorded identities."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from station.cli.common import (
    CliState,
    echo_json,
    json_option,
    open_station,
    pass_state,
    term,
)
from station.domain.records import DeviceQuery, DeviceRecord
from station.domain.states import DeviceStatus


@click.group()
def devices() -> None:
    """Find and show the identities this station recorded."""


def _summary(device: DeviceRecord) -> dict[str, Any]:
    return {
        "registration_id": device.registration_id,
        "serial": device.serial,
        "batch": device.batch,
        "product": device.product,
        "attestation": device.attestation,
        "status": str(device.status),
        "ek_sha256": device.ek_sha256,
        "cert_thumbprint": device.cert_thumbprint,
        "created_at": device.created_at,
    }


@devices.command(name="list")
@click.option("--batch", default="", help="Only this batch (work order).")
@click.option(
    "--status",
    default="",
    type=click.Choice(["", *[str(s) for s in DeviceStatus]]),
    help="Only this status.",
)
@click.option("--serial", default="", help="Board serial number.")
@click.option("--registration-id", default="", help="DPS registration ID.")
@click.option("--ek-hash", default="", help="SHA-256 of the endorsement key (hex).")
@click.option("--thumbprint", default="", help="SHA-256 thumbprint of the device certificate.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, type=click.IntRange(0))
@json_option
@pass_state
def list_devices(
    state: CliState,
    batch: str,
    status: str,
    serial: str,
    registration_id: str,
    ek_hash: str,
    thumbprint: str,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List recorded devices, newest first, with optional filters."""
    query = DeviceQuery(
        batch=batch,
        status=status,
        serial=serial,
        registration_id=registration_id,
        ek_sha256=ek_hash.replace(":", ""),
        cert_thumbprint=thumbprint.replace(":", ""),
        limit=limit,
        offset=offset,
    )
    with open_station(state) as station:
        rows, total = station.devices().search(query)
    if as_json:
        echo_json({"total": total, "devices": [_summary(d) for d in rows]})
        return
    if not rows:
        click.echo("no devices match")
        return
    click.echo(f"{'REGISTRATION ID':<54} {'SERIAL':<18} {'BATCH':<12} {'ATTEST':<12} STATUS")
    for d in rows:
        click.echo(
            f"{term(d.registration_id):<54} {term(d.serial):<18} {term(d.batch):<12} "
            f"{d.attestation:<12} {d.status}"
        )
    shown = f"{offset + 1}-{offset + len(rows)}"
    click.echo(f"showing {shown} of {total}")


@devices.command()
@click.argument("key")
@json_option
@pass_state
def show(state: CliState, key: str, as_json: bool) -> None:
    """Show one device found by KEY: serial, registration ID, EK hash or certificate thumbprint."""
    with open_station(state) as station:
        detail = station.devices().show(key)
    manifest = json.loads(detail.device.manifest_json)
    if as_json:
        echo_json(
            {
                "device": _summary(detail.device),
                "manifest": manifest,
                "manifest_hash": detail.device.manifest_hash,
                "certificates": [
                    {k: v for k, v in dataclasses.asdict(c).items() if k != "certificate_pem"}
                    for c in detail.certificates
                ],
                "labels": [dataclasses.asdict(label) for label in detail.labels],
                "events": [
                    {"seq": e.seq, "time": e.time, "kind": e.kind, "operator": e.operator}
                    for e in detail.events
                ],
            }
        )
        return
    device = detail.device
    click.echo(f"registration ID  {term(device.registration_id)}")
    click.echo(f"serial           {term(device.serial)}")
    click.echo(f"product / batch  {term(device.product)} / {term(device.batch)}")
    click.echo(f"attestation      {device.attestation}")
    click.echo(f"status           {device.status}")
    if device.ek_sha256:
        click.echo(f"EK SHA-256       {device.ek_sha256}")
    if device.cert_thumbprint:
        click.echo(f"cert SHA-256     {device.cert_thumbprint}")
    click.echo(f"manifest hash    {device.manifest_hash}")
    for cert in detail.certificates:
        click.echo(f"certificate      {cert.serial_number} {cert.status} until {cert.not_after}")
    for label in detail.labels:
        click.echo(f"label            {label.kind} {label.printed_at} by {term(label.operator)}")
    click.echo("audit trail:")
    for event in detail.events:
        click.echo(f"  #{event.seq:<6} {event.time}  {event.kind:<18} {term(event.operator)}")
