"""``station tpm``: read a board's TPM identity; check an EK certificate file."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from station.cli.common import CliState, echo_json, json_option, open_station, pass_state
from station.domain.errors import StationError
from station.domain.products import EkCertificateResult
from station.domain.tpm import EkCertificateCheck, TpmIdentityResult
from station.inputs import MAX_EK_CERTIFICATE, read_bounded


@click.group()
def tpm() -> None:
    """Read TPM identities (EK, registration ID, EK certificate) and check EK certificates."""


def _cert_json(check: EkCertificateCheck) -> dict[str, Any]:
    return {
        "status": check.status.value,
        "reason": check.reason,
        "vendor": check.vendor,
        "subject": check.subject,
        "issuer": check.issuer,
        "serial_number": check.serial_number,
        "not_before": check.not_before,
        "not_after": check.not_after,
        "anchor": check.anchor,
        "nv_index": f"{check.nv_index:#010x}" if check.nv_index is not None else None,
    }


def _echo_cert(check: EkCertificateCheck) -> None:
    click.echo(f"EK certificate:   {check.summary()}")
    if check.status is EkCertificateResult.ABSENT:
        return
    if check.nv_index is not None:
        click.echo(f"  NV index:       {check.nv_index:#010x}")
    if check.issuer:
        click.echo(f"  issuer:         {check.issuer}")
    if check.not_after:
        click.echo(f"  valid:          {check.not_before} .. {check.not_after}")
    if check.anchor:
        click.echo(f"  trusted via:    {check.anchor}")


@tpm.command("read")
@click.argument("port")
@click.option("--product", default="", help="Apply this product's EK template and policy.")
@click.option(
    "--roots",
    type=click.Path(path_type=Path, exists=True),
    help="Trust only the anchors in this folder or file (default: [tpm] trust settings).",
)
@json_option
@pass_state
def read(state: CliState, port: str, product: str, roots: Path | None, as_json: bool) -> None:
    """Read the TPM identity of the board on PORT (device path, pyserial URL or slot name).

    Prints the EK (base64, as DPS stores it), the registration ID, the EK certificate status and
    whether the TPM proved it holds the EK. Nothing is created unless --product allows it.
    """
    with open_station(state) as station:
        if not port.startswith("/") and "://" not in port:
            port = station.discovery().board_in(port).device
        recipe = station.products().product(product) if product else None
        service = station.tpm_identity(roots)
        reader = station.tpm_reader(station.board_session(port))
        result = service.identify(
            reader,
            template=recipe.ek_template if recipe else "rsa2048",
            create_if_absent=recipe.create_ek_if_absent if recipe else False,
        )
        verdict: StationError | None = None
        if recipe is not None:
            try:
                service.admit(result, recipe)
            except StationError as exc:
                verdict = exc
    if as_json:
        echo_json(_result_json(port, result, recipe.name if recipe else "", verdict))
    else:
        _echo_result(port, result, verdict)
    if verdict is not None or not result.resident:
        raise click.exceptions.Exit(2)


def _result_json(
    port: str, result: TpmIdentityResult, product: str, verdict: StationError | None
) -> dict[str, Any]:
    return {
        "port": port,
        "endorsement_key": result.ek_b64,
        "registration_id": result.registration_id,
        "template": result.template,
        "origin": result.origin.value,
        "srk": base64.b64encode(result.srk).decode("ascii"),
        "resident": result.resident,
        "ek_certificate": _cert_json(result.ek_certificate),
        "product": product or None,
        "admitted": None if not product else verdict is None,
        "rejection": verdict.to_dict() if verdict is not None else None,
    }


def _echo_result(port: str, result: TpmIdentityResult, verdict: StationError | None) -> None:
    click.echo(f"port:             {port}")
    click.echo(f"registration ID:  {result.registration_id}")
    click.echo(f"EK template:      {result.template} ({result.origin.value})")
    click.echo(f"EK (base64):      {result.ek_b64}")
    _echo_cert(result.ek_certificate)
    if result.resident:
        click.echo("residency proof:  passed (the TPM holds this EK)")
    else:
        click.secho("residency proof:  FAILED (the TPM does not hold this EK)", fg="red")
    if verdict is not None:
        click.secho(f"rejected: {verdict.message}", fg="red")
        if verdict.remedy:
            click.echo(f"  what to do: {verdict.remedy}")


@tpm.command("verify-ek-cert")
@click.argument("cert", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--roots",
    type=click.Path(path_type=Path, exists=True),
    help="Trust only the anchors in this folder or file (default: [tpm] trust settings).",
)
@click.option(
    "--ek",
    "ek_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Also check the certificate's key against this EK (marshaled TPM2B_PUBLIC file).",
)
@json_option
@pass_state
def verify_ek_cert(
    state: CliState, cert: Path, roots: Path | None, ek_file: Path | None, as_json: bool
) -> None:
    """Check the EK certificate in CERT (DER or PEM; NV padding allowed) against trust anchors.

    Exit status 0 when valid, 2 otherwise (absent, untrusted, mismatch, expired, malformed).
    """
    data = read_bounded(cert, limit=MAX_EK_CERTIFICATE, what="the EK certificate")
    ek = (
        read_bounded(ek_file, limit=MAX_EK_CERTIFICATE, what="the EK")
        if ek_file is not None
        else None
    )
    with open_station(state) as station:
        check = station.tpm_identity(roots).check_certificate(data, ek=ek)
    if as_json:
        echo_json({"file": str(cert), **_cert_json(check)})
    else:
        click.echo(f"file:             {cert}")
        _echo_cert(check)
        if check.subject:
            click.echo(f"  subject:        {check.subject}")
    if check.status is not EkCertificateResult.VALID:
        raise click.exceptions.Exit(2)
