"""``station batch``: open, list, seal, export, push, reconcile and report batches."""

from __future__ import annotations

import re
import sys
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
from station.domain.pushes import PushSummary, ReconcileStatus, ReconcileSubject
from station.services.batches import EXPORT_FORMATS
from station.services.push import PushProgress


@click.group()
def batch() -> None:
    """Batches (work orders)."""


@batch.command()
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="PDF file (default: <data dir>/labels/batch-NAME-report.pdf, -2, -3... if taken).",
)
@force_option
@json_option
@pass_state
def report(state: CliState, name: str, out: Path | None, force: bool, as_json: bool) -> None:
    """Write the PDF report of batch NAME: counts, yield, failure pareto, units/hour, devices."""
    with open_station(state) as station:
        if out is not None:
            station.check_output(out, force=force)
        service = station.labels()
        summary = service.batch_report(name)
        pdf = service.renderer.report_pdf(summary)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80]
        target = out or station.free_output_name(
            station.config.labels_output_dir, f"batch-{safe}-report", ".pdf"
        )
        station.write_output(target, pdf, force=force)
    if as_json:
        echo_json(
            {
                "batch": summary.batch,
                "product": summary.product,
                "devices": len(summary.devices),
                "passed": summary.passed,
                "attempts": summary.attempts,
                "yield_percent": round(summary.yield_percent, 2),
                "by_attestation": dict(summary.by_attestation),
                "by_result": dict(summary.by_result),
                "failure_reasons": dict(summary.failure_reasons),
                "report": str(target),
            }
        )
        return
    click.echo(f"batch {summary.batch}: {len(summary.devices)} devices")
    click.echo(
        f"first-pass yield: {summary.yield_percent:.1f} % "
        f"({summary.passed} of {summary.attempts} attempts passed)"
    )
    click.echo(f"wrote {target}")


@batch.command(name="open")
@click.argument("name", required=False)
@click.option("--name", "name_option", help="The work order (instead of the NAME argument).")
@click.option("--product", required=True, help="Product recipe (templates/products/NAME.toml).")
@click.option("--size", required=True, type=click.IntRange(1, 1_000_000), help="Devices planned.")
@json_option
@pass_state
def open_batch(
    state: CliState,
    name: str | None,
    name_option: str | None,
    product: str,
    size: int,
    as_json: bool,
) -> None:
    r"""Open batch NAME (the work order) for SIZE devices of PRODUCT (QA or admin).

    \b
    station batch open WO-1234 --product lab-tpm --size 100
    station batch open --name WO-1234 --product lab-tpm --size 100
    """
    if (name is None) == (name_option is None):
        raise click.UsageError("give the work order once: as NAME or as --name")
    name = name if name is not None else name_option
    if not name or not name.strip():
        raise click.BadParameter("a batch needs a name (the work order)", param_hint="NAME")
    with open_station(state) as station:
        record = station.batches().open(
            name=name, product=product, size=size, operator=state.operator
        )
    if as_json:
        echo_json({"batch": record.name, "product": record.product, "size": record.size})
        return
    click.echo(f"opened batch {record.name}: {record.size} x {record.product}")


@batch.command(name="list")
@json_option
@pass_state
def list_batches(state: CliState, as_json: bool) -> None:
    """List batches, newest first, with their status and progress."""
    rows: list[dict[str, Any]] = []
    with open_station(state) as station:
        service = station.batches()
        for record in service.all():
            progress = service.progress(record.name)
            rows.append(
                {
                    "batch": record.name,
                    "product": record.product,
                    "size": record.size,
                    "status": record.status,
                    "provisioned": progress.provisioned,
                    "voided": progress.voided,
                    "created_at": record.created_at,
                }
            )
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no batches")
    for row in rows:
        click.echo(
            f"{row['batch']:<20} {row['status']:<10} {row['provisioned']:>7}/{row['size']:<7} "
            f"{row['product']}"
        )


@batch.command()
@click.argument("name")
@json_option
@pass_state
def seal(state: CliState, name: str, as_json: bool) -> None:
    """Seal batch NAME: no more devices; its manifest list is frozen and hashed (QA or admin)."""
    with open_station(state) as station:
        sealed = station.batches().seal(name, operator=state.operator)
    if as_json:
        echo_json({"batch": name, "count": sealed.count, "seal_sha256": sealed.digest})
    else:
        click.echo(f"sealed batch {name}: {sealed.count} devices, seal {sealed.digest}")
        click.echo(f"  'station batch show {name}' shows the seal again")
    if sealed.count == 0:
        click.secho(
            f"warning: batch {name} was sealed with no devices: it can be neither exported nor "
            "pushed; provision into a new batch",
            fg="yellow",
            err=True,
        )


@batch.command()
@click.argument("name")
@json_option
@pass_state
def show(state: CliState, name: str, as_json: bool) -> None:
    """Show batch NAME: product, status, progress and, once sealed, its seal digest.

    The seal digest is what the cloud operator compares with 'seal_sha256' in the signed
    manifest. It is re-checked against the devices stored now before it is shown.
    """
    with open_station(state) as station:
        service = station.batches()
        progress = service.progress(name)
        record = progress.batch
        sealed = record.status != "open"
        seal = service.seal_of(name) if sealed else None
    row: dict[str, Any] = {
        "batch": record.name,
        "product": record.product,
        "size": record.size,
        "status": record.status,
        "provisioned": progress.provisioned,
        "voided": progress.voided,
        "created_at": record.created_at,
        "sealed_at": seal.sealed_at if seal else None,
        "sealed_count": seal.count if seal else None,
        "seal_sha256": seal.digest if seal else None,
    }
    if as_json:
        echo_json(row)
        return
    click.echo(f"batch:       {record.name} ({record.product})")
    click.echo(f"status:      {record.status}")
    click.echo(
        f"progress:    {progress.provisioned}/{record.size} provisioned, {progress.voided} voided"
    )
    click.echo(f"created:     {record.created_at}")
    if seal is not None:
        click.echo(f"sealed:      {seal.sealed_at}, {seal.count} devices")
        click.echo(f"seal:        {seal.digest} (SHA-256)")


@batch.command()
@click.argument("name")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(EXPORT_FORMATS),
    help="What to write (repeatable; default: all).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the files (default: [dps] export_dir, else <data dir>/exports).",
)
@force_option
@json_option
@pass_state
def export(
    state: CliState,
    name: str,
    formats: tuple[str, ...],
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write DPS bulk JSON, CSV and the signed manifest of sealed batch NAME (QA or admin)."""
    with open_station(state) as station:
        result = station.batches().export(
            name,
            formats=formats or EXPORT_FORMATS,
            out=out,
            force=force,
            operator=state.operator,
        )
    if as_json:
        echo_json(
            {
                "batch": name,
                "devices": result.devices,
                "files": {k: str(v) for k, v in result.files.items()},
            }
        )
        return
    click.echo(f"exported batch {name}: {result.devices} devices")
    if result.group_enrolled:
        click.echo(
            f"  {result.group_enrolled} symmetric-key devices enroll through their group "
            "(no individual enrollments, no keys in files)"
        )
    for kind, path in sorted(result.files.items()):
        click.echo(f"  {kind:<10} {path}")


def _summary_dict(summary: PushSummary) -> dict[str, Any]:
    return {
        "batch": summary.batch,
        "total": summary.total,
        "pushed": summary.pushed,
        "conflicts": [
            {"registration_id": c.registration_id, "ours": c.ours, "theirs": c.theirs}
            for c in summary.conflicts
        ],
        "failed": summary.failed,
        "billable_operations": summary.billable_operations,
        "throttled": summary.throttled,
        "retried": summary.retried,
    }


@batch.command()
@click.argument("name")
@json_option
@pass_state
def push(state: CliState, name: str, as_json: bool) -> None:
    """Push sealed batch NAME into DPS; resumable after any interruption (QA or admin)."""
    bar: Any = None
    shown = 0

    def progress(step: PushProgress) -> None:
        nonlocal bar, shown
        if as_json or not sys.stderr.isatty():
            return
        if bar is None:
            bar = click.progressbar(length=step.total, label="pushing", file=sys.stderr)
            bar.__enter__()
        bar.update(step.done - shown)
        shown = step.done

    try:
        with open_station(state) as station:
            summary = station.batches().push(name, operator=state.operator, progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        echo_json(_summary_dict(summary))
    else:
        click.echo(
            f"batch {name}: {summary.pushed}/{summary.total} pushed, "
            f"{len(summary.conflicts)} conflicts, {len(summary.failed)} failed, "
            f"{summary.billable_operations} billable DPS operations"
        )
        for conflict in summary.conflicts:
            click.secho(f"  conflict {conflict.registration_id}:", fg="yellow")
            for key in conflict.differences():
                click.echo(f"    {key}: ours {conflict.ours.get(key)!r}")
                click.echo(f"    {' ' * len(key)}  DPS  {conflict.theirs.get(key)!r}")
        for rid, reason in sorted(summary.failed.items())[:50]:
            click.secho(f"  failed {rid}: {reason}", fg="red")
    if not summary.complete:
        raise click.exceptions.Exit(2)


@batch.command()
@click.argument("name")
@click.option("--repush-missing", is_flag=True, help="Push the missing enrollments again.")
@json_option
@pass_state
def reconcile(state: CliState, name: str, repush_missing: bool, as_json: bool) -> None:
    """Compare DPS with batch NAME: equal / missing / different / extra (QA or admin)."""
    with open_station(state) as station:
        report = station.batches().reconcile(
            name, repush_missing=repush_missing, operator=state.operator
        )
    if as_json:
        echo_json(
            {
                "batch": name,
                "clean": report.clean,
                "counts": report.counts,
                "repushed": report.repushed,
                "billable_operations": report.billable_operations,
                "items": [
                    {
                        "registration_id": i.registration_id,
                        "subject": str(i.subject),
                        "status": str(i.status),
                        "differences": list(i.differences),
                    }
                    for i in report.items
                    if i.status is not ReconcileStatus.EQUAL
                ],
                "without_credential_policy": list(report.without_policy),
                "advice": report.policy_advice,
            }
        )
    else:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(report.counts.items())) or "nothing"
        click.echo(
            f"batch {name}: {counts}"
            + (f" ({report.repushed} re-pushed)" if report.repushed else "")
        )
        for item in report.items:
            if item.status is not ReconcileStatus.EQUAL:
                extra = f" ({', '.join(item.differences)})" if item.differences else ""
                group = "enrollment group " if item.subject is ReconcileSubject.GROUP else ""
                click.echo(f"  {item.status:<9} {group}{item.registration_id}{extra}")
        if report.policy_advice:
            click.secho(report.policy_advice, fg="yellow")
            click.echo(
                f"  after deleting them: station batch reconcile {name} --repush-missing "
                f"(enrollments), station batch groups {name} (groups)"
            )
    if not report.clean:
        raise click.exceptions.Exit(2)


@batch.command()
@click.argument("name")
@pass_state
def groups(state: CliState, name: str) -> None:
    """Create in DPS the enrollment groups batch NAME's product needs (QA or admin)."""
    with open_station(state) as station:
        written = station.batches().push_groups(name, operator=state.operator)
    if not written:
        click.echo(f"batch {name}: its product needs no enrollment group")
    for group_id in written:
        click.echo(f"enrollment group {group_id} written")
