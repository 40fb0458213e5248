"""``station manifest verify``: the cloud operator's check of a signed batch manifest."""

from __future__ import annotations

from pathlib import Path

import click

from station.cli.common import CliState, echo_json, json_option, open_station, pass_state
from station.domain.errors import ManifestError
from station.inputs import MAX_CERTIFICATES, MAX_MANIFEST, read_bounded
from station.services.manifests import certificate_sha256, verify_manifest_bytes


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
@click.option(
    "--signer",
    "signer",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Accept only this manifest-signing certificate (PEM) as the signer.",
)
@click.option(
    "--signer-sha256",
    default="",
    help="Accept only the manifest-signing certificate with this SHA-256 fingerprint (hex).",
)
@json_option
@pass_state
def verify(
    state: CliState,
    file: Path,
    trust: Path,
    signer: Path | None,
    signer_sha256: str,
    as_json: bool,
) -> None:
    """Verify FILE against the root certificate TRUST; exit 0 only if intact.

    Checks the chain, that its leaf is a manifest-signing certificate for the station the header
    names (and the pinned one, given --signer or --signer-sha256), the batch header and every
    record, and names anything changed, added, removed or reordered.
    """
    data = read_bounded(file, limit=MAX_MANIFEST, what="the manifest", error=ManifestError)
    root = read_bounded(trust, limit=MAX_CERTIFICATES, what="the root", error=ManifestError)
    pinned = (
        certificate_sha256(
            read_bounded(signer, limit=MAX_CERTIFICATES, what="the signer", error=ManifestError)
        )
        if signer
        else ""
    )
    if signer_sha256:
        wanted = signer_sha256.replace(":", "").upper()
        if len(wanted) != 64 or any(c not in "0123456789ABCDEF" for c in wanted):
            raise click.BadParameter("64 hex digits expected", param_hint="--signer-sha256")
        if pinned and pinned != wanted:
            raise click.BadParameter(
                "does not match the certificate given with --signer", param_hint="--signer-sha256"
            )
        pinned = wanted
    with open_station(state) as station:
        report = verify_manifest_bytes(data, station.manifest_trust(root, pinned_sha256=pinned))
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
