"""``station demo``: run the whole product on the embedded lab."""

from __future__ import annotations

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
    click.echo(f"  steps: {len(report.steps)} in {total:.1f} s")
    for name, path in report.artifacts.items():
        click.echo(f"  {name:<10} {path}")
    click.echo(f"  open the GUI on it: station --config {report.directory / 'station.toml'} gui")
