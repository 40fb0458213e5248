"""``station demo``: run the whole product on the embedded lab (headless, or in the GUI)."""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path
from types import FrameType

import click

from station_lab.demo import DEMO_LOGINS, QA, TECHNICIAN, DemoFrontEnd, DemoReport, run_demo


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".demo"),
    show_default=True,
    help="Working directory of the demo (wiped at the start of each run).",
)
@click.option("--gui", "in_gui", is_flag=True, help="Run the operator steps in the station window.")
@click.option(
    "--close-when-done",
    is_flag=True,
    help="With --gui: close the window when the demo ends instead of waiting for you.",
)
@click.option(
    "--dwell",
    type=click.FloatRange(0, 10),
    default=1.0,
    show_default=True,
    help="With --gui: seconds each view stays on screen after its step.",
)
@click.option(
    "--fleet",
    "with_fleet",
    is_flag=True,
    help="Instead: two stations on one fleet ledger (PostgreSQL) catching cloned TPMs.",
)
def demo(
    directory: Path, in_gui: bool, close_when_done: bool, dwell: float, with_fleet: bool
) -> None:
    """Run the lab demo end to end and print what it did and where the artifacts are.

    With --gui the technician's and QA's steps are clicked through the station window (the
    window stays open at the end until you close it, unless --close-when-done). With --fleet,
    two stations share one fleet ledger and catch cloned TPMs online and on replication.
    """
    # a `kill` must clean up like Ctrl-C does: the demo's boards and DPS are stopped
    signal.signal(signal.SIGTERM, _interrupt)
    if with_fleet:
        from station_lab.fleet_demo import run_fleet_demo

        run_fleet_demo(directory, click.echo)
        return
    front = _gui_front(dwell, keep_open=not close_when_done) if in_gui else None
    waits = in_gui and not close_when_done

    def done(report: DemoReport) -> None:
        _summary(report)
        if waits:
            click.echo("The station window stays open: look around, close it to stop the lab.")

    run_demo(directory, click.echo, front, on_done=done)
    if waits:
        click.echo("Window closed: the demo's lab is stopped.")


def _interrupt(number: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _summary(report: DemoReport) -> None:
    """What the demo did, where its artifacts are, and how to look at them."""
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
    logins = ", ".join(f"{name} / PIN {pin} ({role})" for name, (role, pin) in DEMO_LOGINS.items())
    click.echo(f"    log in as {logins}")
    click.echo(f"  or search it:      station --config {config} devices list")


def _gui_front(dwell: float, *, keep_open: bool) -> DemoFrontEnd:
    """The GUI front end (Qt loads only when asked for); a clear error without a display."""
    headless_platform = os.environ.get("QT_QPA_PLATFORM", "")
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if sys.platform.startswith("linux") and not (has_display or headless_platform):
        raise click.UsageError(
            "--gui needs a display: run it on the desktop, under xvfb-run, or with "
            "QT_QPA_PLATFORM=offscreen (nothing to see then)"
        )
    from station.gui.demo_front import GuiFrontEnd

    return GuiFrontEnd(
        {name: pin for name, (_, pin) in DEMO_LOGINS.items()},
        technician=TECHNICIAN,
        qa=QA,
        dwell_s=dwell,
        keep_open=keep_open,
    )
