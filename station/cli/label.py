"""``station label``: print, reprint (QA) and scan-back verify identity labels."""

from __future__ import annotations

import re
from pathlib import Path

import click

from station.bootstrap import Station
from station.cli.common import (
    CliState,
    echo_json,
    force_option,
    json_option,
    open_station,
    pass_state,
)
from station.domain.records import LabelKind
from station.services.labels import PrintOutcome


@click.group()
def label() -> None:
    """Identity labels: print, reprint (QA), verify a scanned label, list templates."""


def _printer_spec(
    station: Station, printer: str, out: Path | None, stem: str, *, force: bool = False
) -> str:
    """``--out`` wins, then ``--printer``, then the config; else save a PDF in the output dir.

    A file named by ``--out`` or ``--printer file:PATH`` is checked first: never one of the
    station's own files, and an existing one only with ``--force``.
    """
    if out is not None:
        station.check_output(out, force=force)
        return f"file:{out}"
    if printer:
        where = printer.removeprefix("file:")
        if printer.startswith("file:") and where and not where.endswith("/"):
            station.check_output(Path(where).expanduser(), force=force)
        return printer
    if station.config.labels.printer:
        return station.config.labels.printer
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:80]
    return f"file:{station.config.labels_output_dir / (safe + '.pdf')}"


def _show(outcome: PrintOutcome, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "kind": outcome.kind,
                "printer": outcome.receipt.printer,
                "job": outcome.receipt.job,
                "template": outcome.template,
                "labels": outcome.receipt.labels,
                "registration_ids": list(outcome.registration_ids),
                "skipped": list(outcome.skipped),
                "reprint_number": outcome.reprint_number,
            }
        )
        return
    what = "reprinted" if outcome.kind is LabelKind.REPRINT else "printed"
    click.secho(
        f"{what} {outcome.receipt.labels} label(s) with {outcome.template} on "
        f"{outcome.receipt.printer} (job {outcome.receipt.job})",
        fg="green",
    )
    if outcome.skipped:
        click.echo(f"skipped {len(outcome.skipped)} device(s) that already have a label")


_template_option = click.option("--template", default=None, help="Label template name.")
_printer_option = click.option(
    "--printer", default="", help="cups:QUEUE (or a queue name), zpl://HOST[:PORT] or file:PATH."
)
_out_option = click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Save to this file instead of printing (.pdf, or .zpl for Zebra ZPL).",
)


@label.command(name="print")
@click.argument("device", required=False)
@click.option("--batch", default="", help="Print every unlabelled device of this batch.")
@_template_option
@_printer_option
@_out_option
@force_option
@json_option
@pass_state
def print_label(
    state: CliState,
    device: str | None,
    batch: str,
    template: str | None,
    printer: str,
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Print the label of DEVICE (registration ID or serial), or of a whole --batch."""
    if bool(device) == bool(batch):
        raise click.UsageError("name either a DEVICE or --batch B")
    if printer and out is not None:
        raise click.UsageError("use either --printer or --out")
    with open_station(state) as station:
        service = station.labels()
        spec = _printer_spec(station, printer, out, device or f"batch-{batch}", force=force)
        if batch:
            outcome = service.print_batch(
                batch, template=template, printer=spec, operator=state.operator
            )
        else:
            assert device is not None
            outcome = service.print_device(
                device, template=template, printer=spec, operator=state.operator
            )
    _show(outcome, as_json)


@label.command()
@click.argument("device")
@click.option("--reason", default="", help="Why another copy is needed (required).")
@_template_option
@_printer_option
@_out_option
@force_option
@json_option
@pass_state
def reprint(
    state: CliState,
    device: str,
    reason: str,
    template: str | None,
    printer: str,
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Reprint DEVICE's label (QA or admin; the reason goes into the audit trail)."""
    if printer and out is not None:
        raise click.UsageError("use either --printer or --out")
    with open_station(state) as station:
        spec = _printer_spec(station, printer, out, f"{device}-reprint", force=force)
        outcome = station.labels().reprint(
            device, reason=reason, template=template, printer=spec, operator=state.operator
        )
    _show(outcome, as_json)


@label.command()
@click.argument("scanned_text")
@click.option("--slot", default="", help="The fixture slot whose board the label must match.")
@click.option("--device", default="", help="The device (ID or serial) the label must match.")
@json_option
@pass_state
def verify(state: CliState, scanned_text: str, slot: str, device: str, as_json: bool) -> None:
    """Check a scanned label (SCANNED_TEXT) against the board in --slot or --device."""
    with open_station(state) as station:
        result = station.labels().verify(
            scanned_text, slot=slot, expected=device, operator=state.operator
        )
    if as_json:
        echo_json(
            {
                "ok": True,
                "registration_id": result.registration_id,
                "serial": result.serial,
                "form": result.form,
                "slot": result.slot,
            }
        )
        return
    click.secho(f"label OK: {result.registration_id} (serial {result.serial})", fg="green")


@label.command()
@json_option
@pass_state
def templates(state: CliState, as_json: bool) -> None:
    """List the label templates (each is checked to fit its largest data)."""
    with open_station(state) as station:
        service = station.labels()
        found = [service.template(name) for name in service.templates.names()]
    if as_json:
        echo_json(
            [{"name": t.name, "media": str(t.media), "description": t.description} for t in found]
        )
        return
    for item in found:
        click.echo(f"{item.name:<18} {item.media:<10} {item.description}")


@label.command()
@click.argument("device")
@_template_option
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="PNG file."
)
@click.option("--dpi", default=200, show_default=True, type=click.IntRange(72, 1200))
@force_option
@pass_state
def preview(
    state: CliState, device: str, template: str | None, out: Path, dpi: int, force: bool
) -> None:
    """Render DEVICE's label to a PNG file (nothing is printed or counted)."""
    with open_station(state) as station:
        station.check_output(out, force=force)
        png = station.labels().preview_png(device, template=template, dpi=dpi)
        station.write_output(out, png, force=force)
    click.echo(f"wrote {out}")
