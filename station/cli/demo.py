"""``station demo``: run the whole product on the embedded lab."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from station.lab.demo import run_demo


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".demo"),
    show_default=True,
    help="Working directory of the demo (wiped at the start of each run).",
)
def demo(directory: Path) -> None:
    """Run the lab demo end to end and print what it did and where the artifacts are."""
    report = run_demo(directory, click.echo)
    click.echo("")
    click.secho("Demo finished.", fg="green", bold=True)
    total = sum(seconds for _, seconds in report.steps)
    click.echo(f"  {len(report.steps)} steps in {total:.1f} s")
    products = Counter(report.attestations.values())
    click.echo(
        f"  devices: {len(report.outcomes)} provisioned, "
        + ", ".join(f"{count} {product}" for product, count in sorted(products.items()))
    )
    seconds = dict(report.steps).get("Provision every board", 0.0)
    if report.outcomes:
        click.echo(
            f"  time per board: {seconds / len(report.outcomes):.2f} s "
            f"({len(report.outcomes)} boards in {seconds:.1f} s, slots in parallel, 115200 baud)"
        )
    hubs = Counter(report.hubs.values())
    click.echo("  assigned hubs: " + ", ".join(f"{hub}: {n}" for hub, n in sorted(hubs.items())))
    click.echo("  artifacts:")
    for name, path in report.artifacts.items():
        click.echo(f"    {name:<10} {path}")
    config = report.directory / "station.toml"
    click.echo(f"  see it in the GUI: station --config {config} gui")
    click.echo(f"  or search it:      station --config {config} devices list")
