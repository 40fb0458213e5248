"""The ``station`` command: parse, build the station, call a service, render.

Each command group lives in its own module; this module only assembles them and translates
:class:`~station.domain.errors.StationError` into a readable message and a non-zero exit status.
"""

from __future__ import annotations

import json
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

from station import __version__
from station.cli import (
    batch,
    board,
    ca,
    db,
    devices,
    fleet,
    gui,
    init,
    label,
    manifest,
    operator,
    provision,
    tpm,
)
from station.cli.common import CliState, term
from station.domain.errors import StationError

log = logging.getLogger(__name__)

# Commands other distributions add (the lab's `station lab` and `station demo`); a production
# install has none.
PLUGIN_GROUP = "station.cli"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="station")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="STATION_CONFIG",
    help="Config file (default: $STATION_CONFIG, else the platform config dir).",
)
@click.option("--operator", default="", envvar="STATION_OPERATOR", help="Operator name for audit.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, operator: str, verbose: int) -> None:
    """Provision IoT boards for Azure IoT Hub DPS: identities, certificates, labels, enrollments."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = CliState(config_path=config_path, operator=operator)


cli.add_command(init.init)
cli.add_command(db.db)
cli.add_command(devices.devices)
cli.add_command(board.board)
cli.add_command(ca.ca)
cli.add_command(gui.gui)
cli.add_command(operator.operator)
cli.add_command(provision.provision)
cli.add_command(label.label)
cli.add_command(batch.batch)
cli.add_command(manifest.manifest)
cli.add_command(tpm.tpm)
cli.add_command(fleet.fleet)


def _add_plugin_commands(group: click.Group) -> None:
    """Add the commands installed distributions publish under :data:`PLUGIN_GROUP`."""
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            command = entry.load()
        except (ImportError, AttributeError) as exc:
            log.warning(
                "command '%s' from %s is broken, left out: %s", entry.name, entry.value, exc
            )
            continue
        group.add_command(command, entry.name)


_add_plugin_commands(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit status."""
    try:
        # without standalone mode, click returns the code of a raised Exit instead of exiting
        result = cli.main(args=argv, prog_name="station", standalone_mode=False)
    except StationError as exc:
        if "--json" in (argv if argv is not None else sys.argv[1:]):
            click.echo(json.dumps({"error": exc.to_dict()}, indent=2, sort_keys=True), err=True)
        else:
            click.secho(f"error: {term(exc.message)}", fg="red", err=True)
            if exc.remedy:
                click.echo(f"  what to do: {term(exc.remedy)}", err=True)
            log.debug("details: %s", exc.details)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
