"""``station tpm``: read a board's TPM identity; check an EK certificate file."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from station.cli.common import CliState, echo_json, json_option, open_station, pass_state
from station.domain.errors import StationError
from station.domain.products import EkCertificateResult
from station.domain.tpm import EkCertificateCheck, TpmIdentityResult, TrustEntry, WantedIssuer
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
        "anchor_source": check.anchor_source,
        "normalised": list(check.normalised),
        "issuer_url": check.issuer_url,
        "nv_index": f"{check.nv_index:#010x}" if check.nv_index is not None else None,
        "ek_template": check.ek_template,
    }


def _echo_cert(check: EkCertificateCheck) -> None:
    click.echo(f"EK certificate:   {check.summary()}")
    if check.status is EkCertificateResult.ABSENT:
        return
    if check.nv_index is not None:
        of = f" (certifies the {check.ek_template} EK)" if check.ek_template else ""
        click.echo(f"  NV index:       {check.nv_index:#010x}{of}")
    if check.issuer:
        click.echo(f"  issuer:         {check.issuer}")
    if check.not_after:
        click.echo(f"  valid:          {check.not_before} .. {check.not_after}")
    if check.anchor:
        click.echo(f"  trusted via:    {check.anchor}")
    if check.anchor_source:
        click.echo(f"  anchor file:    {check.anchor_source}")
    for note in check.normalised:
        click.echo(f"  normalised:     {note}")
    if check.issuer_url:
        click.echo(f"  issuer at:      {check.issuer_url}")


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
        recipe = station.product_recipes().recipe(product) if product else None
        service = station.tpm_identity(roots)
        reader = station.tpm_reader(station.board_session(port))
        result = service.identify(
            reader,
            template=recipe.ek_template if recipe else "rsa2048",
            create_if_absent=recipe.create_ek_if_absent if recipe else False,
            evidence=recipe.evidence_eks if recipe else (),
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


@tpm.group("trust")
def trust() -> None:
    """EK-certificate trust anchors: import vendor CA files, list what is trusted."""


def _entry_json(entry: TrustEntry) -> dict[str, Any]:
    return {
        "fingerprint": entry.fingerprint,
        "subject": entry.subject,
        "issuer": entry.issuer,
        "not_after": entry.not_after,
        "file": entry.file,
        "source": entry.source,
        "signed_by": entry.signed_by,
    }


def _wanted_json(wanted: WantedIssuer) -> dict[str, Any]:
    return {"issuer": wanted.issuer, "url": wanted.url, "first_seen": wanted.first_seen}


@trust.command("import")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@json_option
@pass_state
def trust_import(state: CliState, path: Path, as_json: bool) -> None:
    """Import the CA certificates in PATH (PEM bundle, DER, PKCS#7 .p7b, or a folder of them).

    Each certificate is kept in the station's trust folder ([tpm] import_dir) with its source
    and SHA-256 fingerprint. End-entity certificates, keys, CRLs, unreadable files and
    certificates already trusted are skipped, each with the reason. Exit status 2 when nothing
    was imported.
    """
    with open_station(state) as station:
        report = station.tpm_trust().import_path(path.resolve(), operator=state.operator)
    if as_json:
        echo_json(
            {
                "imported": [_entry_json(e) for e in report.imported],
                "skipped": [{"source": s.source, "reason": s.reason} for s in report.skipped],
                "completed": [_wanted_json(w) for w in report.completed],
            }
        )
    else:
        for entry in report.imported:
            click.echo(f"imported  {entry.subject}")
            click.echo(f"          SHA-256 {entry.fingerprint}")
            click.echo(f"          from {entry.source}")
            click.echo(f"          kept in {entry.file}")
            if entry.signed_by == "self-signed":
                click.echo("          a self-signed root")
            elif entry.signed_by:
                click.echo(f"          signed by {entry.signed_by} (already trusted)")
            else:
                click.echo(
                    "          signed by no CA the station trusts: check its fingerprint with "
                    "the vendor before relying on it"
                )
        for skip in report.skipped:
            click.echo(f"skipped   {skip.source}: {skip.reason}")
        for done in report.completed:
            click.echo(f"completes the chain of EK certificates issued by {done.issuer}")
        click.echo(f"{len(report.imported)} imported, {len(report.skipped)} skipped")
    if not report.imported:
        raise click.exceptions.Exit(2)


@trust.command("list")
@json_option
@pass_state
def trust_list(state: CliState, as_json: bool) -> None:
    """List the trusted EK-certificate anchors, unusable trust files and missing issuers.

    A missing issuer is one an EK certificate named that no anchor provides; its AIA URL says
    where the vendor publishes it.
    """
    with open_station(state) as station:
        store = station.tpm_trust()
        entries, skipped = store.entries()
        wanted = store.wanted()
    if as_json:
        echo_json(
            {
                "anchors": [_entry_json(e) for e in entries],
                "unusable": [{"source": s.source, "reason": s.reason} for s in skipped],
                "missing_issuers": [_wanted_json(w) for w in wanted],
            }
        )
        return
    for entry in entries:
        click.echo(f"{entry.fingerprint[:16]}  {entry.subject}")
        click.echo(f"                  {entry.file}")
        if entry.source:
            click.echo(f"                  imported from {entry.source}")
    click.echo(f"{len(entries)} anchors")
    for skip in skipped:
        click.echo(f"unusable: {skip.source}: {skip.reason}")
    for item in wanted:
        click.echo(f"missing issuer: {item.issuer} (first seen {item.first_seen})")
        if item.url:
            click.echo(f"  fetch it from {item.url}, then: station tpm trust import FILE")
