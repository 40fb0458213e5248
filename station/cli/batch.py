"""``station batch``: batch (work order) reports."""

from __future__ import annotations

import re
from pathlib import Path

import click

from station.cli.common import CliState, echo_json, json_option, open_station, pass_state


@click.group()
def batch() -> None:
    """Batches (work orders)."""


@batch.command()
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="PDF file (default: <data dir>/labels/batch-NAME-report.pdf).",
)
@json_option
@pass_state
def report(state: CliState, name: str, out: Path | None, as_json: bool) -> None:
    """Write the PDF report of batch NAME: counts, yield, failure pareto, units/hour, devices."""
    with open_station(state) as station:
        service = station.labels()
        summary = service.batch_report(name)
        pdf = service.renderer.report_pdf(summary)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80]
        target = out or station.config.labels_output_dir / f"batch-{safe}-report.pdf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(pdf)
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
    click.echo(
        f"batch {summary.batch}: {len(summary.devices)} devices, {summary.passed} passed, "
        f"yield {summary.yield_percent:.1f} %"
    )
    click.echo(f"wrote {target}")
