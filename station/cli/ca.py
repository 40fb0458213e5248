"""``station ca``: the station's intermediate CA (set-up, import, status, issuance)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import click

from station.cli.common import (
    CliState,
    echo_json,
    force_option,
    json_option,
    open_station,
    pass_state,
)
from station.domain.certificates import MAX_CSR_BYTES, CertificateFacts, KeyDescription
from station.inputs import MAX_CERTIFICATES, read_bounded
from station.services.ca import IssuedCertificate

# A group key, or DPS's JSON answer holding one, is far smaller.
_MAX_GROUP_KEY_INPUT = 64 * 1024


def _prompt() -> Any:
    """A PIN prompt when a person is at the terminal, else nothing (fail with a clear error)."""
    if not sys.stdin.isatty():
        return None
    return lambda what: click.prompt(f"Enter {what}", hide_input=True, default="", err=True)


def _key_dict(key: KeyDescription | None) -> dict[str, Any] | None:
    if key is None:
        return None
    return {
        "uri": key.uri,
        "backend": key.backend,
        "location": key.location,
        "algorithm": key.algorithm,
        "sensitive": key.sensitive,
        "extractable": key.extractable,
        "generated_on_device": key.generated_on_device,
        "development_only": key.development_only,
        "public_key_sha256": key.public_key_sha256,
    }


def _cert_dict(cert: CertificateFacts | None) -> dict[str, Any] | None:
    if cert is None:
        return None
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "serial": cert.serial_hex,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "thumbprint_sha256": cert.thumbprint_sha256,
        "path_length": cert.path_length,
    }


def _issued_dict(issued: IssuedCertificate) -> dict[str, Any]:
    cert = issued.certificate
    return {
        "serial": cert.serial_hex,
        "subject": cert.subject,
        "thumbprint_sha256": cert.thumbprint_sha256,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "profile": issued.profile,
        "registration_id": issued.registration_id,
        "certificate_pem": cert.pem,
        "chain_pem": issued.chain_pem,
    }


def _warn_development(key: KeyDescription | None) -> None:
    if key is not None and key.development_only:
        click.secho(
            "WARNING: the CA key is a development file key, not in an HSM or TPM. "
            "Never issue production certificates with it.",
            fg="yellow",
            bold=True,
            err=True,
        )


@click.group()
def ca() -> None:
    """The station's intermediate CA: key in an HSM, device certificates, DPS verification."""


@ca.command()
@click.option("--key", "key_uri", required=True, help="Where to generate the key (key URI).")
@click.option(
    "--algorithm",
    default="ec-p256",
    show_default=True,
    type=click.Choice(["ec-p256", "ec-p384", "rsa-3072"]),
)
@click.option("--common-name", default="Station Intermediate CA", show_default=True)
@click.option("--organization", default="", help="Subject O of the intermediate.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Also write the CSR.")
@force_option
@json_option
@pass_state
def init(
    state: CliState,
    key_uri: str,
    algorithm: str,
    common_name: str,
    organization: str,
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Generate the CA key inside the HSM/TPM and write the CSR for the offline root."""
    with open_station(state) as station, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the development-key warning is shown below instead
        if out is not None:
            station.check_output(out, force=force)
        result = station.ca(pin_prompt=_prompt()).init(
            key_uri,
            algorithm=algorithm,
            common_name=common_name,
            organization=organization,
            operator=state.operator,
        )
        if out is not None:
            station.write_output(out, result.csr_pem.encode("ascii"), force=force)
    if as_json:
        echo_json({"key": _key_dict(result.key), "csr_pem": result.csr_pem})
        return
    _warn_development(result.key)
    click.echo(f"key generated: {result.key.location} ({result.key.algorithm})")
    click.echo(f"  sensitive={result.key.sensitive} extractable={result.key.extractable}")
    click.echo("Take this CSR to the offline root, then run 'station ca import CHAIN.pem':")
    click.echo(result.csr_pem, nl=False)


@ca.command(name="import")
@click.argument("chain", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--root",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The root certificate the chain must lead to (default: [ca] root_file).",
)
@json_option
@pass_state
def import_chain(state: CliState, chain: Path, root: Path | None, as_json: bool) -> None:
    """Install the intermediate certificate the root issued (checked before it is accepted)."""
    with open_station(state) as station:
        root_path = root or station.config.ca.root_file
        if root_path is None:
            raise click.UsageError("pass --root ROOT.pem (or set [ca] root_file)")
        result = station.ca(pin_prompt=_prompt()).import_chain(
            read_bounded(chain, limit=MAX_CERTIFICATES, what="the chain"),
            read_bounded(root_path, limit=MAX_CERTIFICATES, what="the root certificate"),
            operator=state.operator,
        )
    if as_json:
        echo_json({"certificate": _cert_dict(result.certificate), "warnings": result.warnings})
        return
    click.echo(f"imported: {result.certificate.subject}")
    click.echo(f"  valid until {result.certificate.not_after:%Y-%m-%d %H:%M} UTC")
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@ca.command()
@json_option
@pass_state
def status(state: CliState, as_json: bool) -> None:
    """Show where the key is, the intermediate's subject and validity, and the issued count.

    Exits 1 when the key cannot be opened (token missing, wrong PIN).
    """
    with open_station(state) as station, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = station.ca(pin_prompt=_prompt()).status()
    if as_json:
        echo_json(
            {
                "key_uri": info.key_uri,
                "key": _key_dict(info.key),
                "key_error": info.key_error,
                "certificate": _cert_dict(info.certificate),
                "pending_csr": info.pending_csr,
                "issued": info.issued,
            }
        )
        if info.key_error:
            raise click.exceptions.Exit(1)
        return
    _warn_development(info.key)
    click.echo(f"key:         {info.key_uri or '(none: run station ca init)'}")
    if info.key is not None:
        click.echo(f"  location:  {info.key.location} ({info.key.algorithm})")
        click.echo(f"  sensitive: {info.key.sensitive}  extractable: {info.key.extractable}")
    if info.key_error:
        click.secho(f"  error:     {info.key_error}", fg="red")
    cert = info.certificate
    if cert is None:
        pending = " (CSR waiting for the root)" if info.pending_csr else ""
        click.echo(f"certificate: (not imported){pending}")
    else:
        click.echo(f"certificate: {cert.subject}")
        click.echo(f"  issuer:    {cert.issuer}")
        click.echo(f"  valid:     {cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d}")
    click.echo(f"issued:      {info.issued}")
    if info.key_error:  # a missing token or a wrong PIN: the CA cannot issue, so say so
        raise click.exceptions.Exit(1)


@ca.command(name="lab-root")
@click.option(
    "--force",
    is_flag=True,
    help="Replace a chain that a real root signed (refused without it).",
)
@json_option
@pass_state
def lab_root(state: CliState, force: bool, as_json: bool) -> None:
    """LAB ONLY: a throwaway SoftHSM2 root signs the pending CSR; the result is imported."""
    with open_station(state) as station:
        result = station.ca(pin_prompt=_prompt()).lab_root(operator=state.operator, force=force)
    if as_json:
        echo_json({"certificate": _cert_dict(result.certificate), "warnings": result.warnings})
        return
    if force:
        click.secho("warning: the chain a real root signed was replaced", fg="yellow", err=True)
    click.secho("lab root created (NOT FOR PRODUCTION)", fg="yellow", err=True)
    click.echo(f"imported: {result.certificate.subject}")


@ca.command()
@click.option(
    "--csr",
    "csr_path",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
)
@click.option("--registration-id", required=True, help="The device's registration ID (the CN).")
@click.option("--profile", default="", help="Certificate profile (default: [ca] default_profile).")
@click.option("--batch", default="", help="Count the certificate against this batch's quota.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write cert + chain.")
@force_option
@json_option
@pass_state
def issue(
    state: CliState,
    csr_path: Path,
    registration_id: str,
    profile: str,
    batch: str,
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Issue a device certificate from a CSR (admins only; same policy and log as the line)."""
    with open_station(state) as station:
        # read at most the CSR limit: '--csr /dev/zero' is an error at once, not a full memory
        csr = read_bounded(csr_path, limit=MAX_CSR_BYTES, what="the CSR")
        if out is not None:
            station.check_output(out, force=force)
        issued = station.ca(pin_prompt=_prompt()).issue_as_admin(
            csr, registration_id, profile=profile, batch=batch, operator=state.operator
        )
        if out is not None:
            pem = issued.certificate.pem + issued.chain_pem
            station.write_output(out, pem.encode("ascii"), force=force)
    _emit(issued, out, as_json)


@ca.command(name="manifest-key")
@json_option
@pass_state
def manifest_key(state: CliState, as_json: bool) -> None:
    """Certify the batch-manifest key ([dps] manifest_key_uri) with the manifest-signing profile.

    The key is generated in the HSM if it does not exist yet; the certificate (CN = the station
    ID) is logged and audited like every issuance, and its chain is written to
    [dps] manifest_chain_file. Admins only.
    """
    with open_station(state) as station:
        issued = station.ca(pin_prompt=_prompt()).certify_manifest_key(operator=state.operator)
        chain_file = station.config.dps.manifest_chain_file
    if as_json:
        echo_json({**_issued_dict(issued), "chain_file": str(chain_file)})
        return
    cert = issued.certificate
    click.echo(f"manifest key certified: {cert.subject} serial {cert.serial_hex}")
    click.echo(f"  SHA-256 {cert.thumbprint_sha256} (pin with 'manifest verify --signer-sha256')")
    click.echo(f"  chain written to {chain_file}")


@ca.command(name="sign-issuing-csr")
@click.argument("csr", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--root-key", "root_key", required=True, help="The root's key in the HSM (key URI).")
@click.option(
    "--root",
    "root_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The root certificate (default: [ca] root_file).",
)
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write the cert.")
@force_option
@json_option
@pass_state
def sign_issuing_csr(
    state: CliState,
    csr: Path,
    root_key: str,
    root_file: Path | None,
    days: int,
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Bring your own root: sign a DPS credential policy's issuing-CA CSR (admins only).

    The root must be ECC with path length 1 and at least 365 days left; upload the result to
    the policy in Azure Device Registry.
    """
    with open_station(state) as station:
        if out is not None:
            station.check_output(out, force=force)
        issued = station.ca(pin_prompt=_prompt()).sign_issuing_csr(
            read_bounded(csr, limit=MAX_CSR_BYTES, what="the issuing-CA CSR"),
            root_key_uri=root_key,
            operator=state.operator,
            root_pem=(
                read_bounded(root_file, limit=MAX_CERTIFICATES, what="the root certificate")
                if root_file
                else b""
            ),
            days=days,
        )
        if out is not None:
            station.write_output(out, issued.certificate.pem.encode("ascii"), force=force)
    if as_json:
        echo_json(_issued_dict(issued))
    elif out is None:
        click.echo(issued.certificate.pem, nl=False)
    else:
        click.echo(
            f"issuing CA {issued.certificate.subject} written to {out} "
            f"(serial {issued.certificate.serial_hex}, "
            f"until {issued.certificate.not_after:%Y-%m-%d})"
        )


@ca.command(name="verify-code")
@click.argument("code")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write the cert.")
@force_option
@json_option
@pass_state
def verify_code(state: CliState, code: str, out: Path | None, force: bool, as_json: bool) -> None:
    """Sign a DPS verification certificate (subject CN = CODE) with the CA key (admins only)."""
    with open_station(state) as station:
        if out is not None:
            station.check_output(out, force=force)
        issued = station.ca(pin_prompt=_prompt()).verify_code(code, operator=state.operator)
        if out is not None:
            station.write_output(out, issued.certificate.pem.encode("ascii"), force=force)
    if as_json:
        echo_json(_issued_dict(issued))
    elif out is None:
        click.echo(issued.certificate.pem, nl=False)
    else:
        click.echo(
            f"verification certificate written to {out} (serial {issued.certificate.serial_hex})"
        )


@ca.command(name="import-group-key")
@click.option("--key", "key_uri", required=True, help="Where to store it (pkcs11: or tpm: URI).")
@click.option(
    "--from-dps",
    "group_id",
    metavar="GROUP_ID",
    help="Fetch the primary key DPS generated for this enrollment group (through [dps]) and "
    "store it: the key never reaches the screen, a file or a log.",
)
@json_option
@pass_state
def import_group_key(state: CliState, key_uri: str, group_id: str | None, as_json: bool) -> None:
    """Import a DPS enrollment-group key into the HSM or TPM (admins only; never echoed).

    With --from-dps the station asks DPS for the key itself. Otherwise it reads the base64 key
    at a hidden prompt, or from standard input: the key, or DPS's JSON answer that holds it
    (for example 'az iot dps enrollment-group show --show-keys').
    """
    with open_station(state) as station:
        if group_id:
            text = station.batches().dps_group_key(group_id, operator=state.operator)
        elif sys.stdin.isatty():
            text = click.prompt("Group key (base64, as DPS shows it)", hide_input=True, err=True)
        else:
            text = sys.stdin.read(_MAX_GROUP_KEY_INPUT)
        key = station.ca(pin_prompt=_prompt()).import_group_key(
            key_uri, text, operator=state.operator
        )
    if as_json:
        echo_json(_key_dict(key))
        return
    click.echo(f"group key stored: {key.location}")
    click.echo(f"  sensitive={key.sensitive} extractable={key.extractable}")


def _emit(issued: IssuedCertificate, out: Path | None, as_json: bool) -> None:
    if as_json:
        echo_json(_issued_dict(issued))
    elif out is None:
        click.echo(issued.certificate.pem + issued.chain_pem, nl=False)
    else:
        cert = issued.certificate
        click.echo(f"issued {cert.subject} serial {cert.serial_hex} -> {out}")
