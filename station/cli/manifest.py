"""``station manifest verify``: the cloud operator's check of a signed batch manifest."""

from __future__ import annotations

from pathlib import Path

import click

from station.cli.common import CliState, echo_json, json_option, open_station, pass_state
from station.domain.errors import ManifestError
from station.services.manifests import verify_manifest_bytes


@click.group()
def manifest() -> None:
    """Signed batch manifests."""


@manifest.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--trust",
    "trust",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The root certificate (PEM) the manifest's chain must lead to.",
)
@json_option
@pass_state
def verify(state: CliState, file: Path, trust: Path, as_json: bool) -> None:
    """Verify FILE against the root certificate TRUST; exit 0 only if intact.

    Checks the chain, the batch header and every record, and names anything changed, added,
    removed or reordered.
    """
    try:
        data = file.read_bytes()
        root = trust.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    with open_station(state) as station:
        report = verify_manifest_bytes(data, station.manifest_trust(root))
    header = report.header
    if as_json:
        echo_json(
            {
                "ok": report.ok,
                "batch": header.batch if header else None,
                "count": header.count if header else None,
                "records": report.records,
                "findings": [
                    {
                        "kind": f.kind,
                        "position": f.position,
                        "registration_id": f.registration_id,
                        "message": f.message,
                    }
                    for f in report.findings
                ],
            }
        )
    elif report.ok and header is not None:
        click.secho(
            f"OK: batch {header.batch} ({header.product}) from {header.station}, "
            f"{header.count} records, sealed {header.sealed_at}, signed {header.signed_at}",
            fg="green",
        )
    else:
        click.secho(f"FAILED: {len(report.findings)} problem(s) in {file}", fg="red", err=True)
        for finding in report.findings[:200]:
            click.echo(f"  {finding.kind:<10} {finding.message}", err=True)
    if not report.ok:
        raise click.exceptions.Exit(1)
