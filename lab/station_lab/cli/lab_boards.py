"""``station lab boards``: run virtual boards until Ctrl-C or SIGTERM, then stop every process."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from station.cli.common import CliState, echo_json, json_option, open_station, pass_state
from station.domain.errors import ConfigError
from station_lab.boards.faults import Faults, FaultSpecError
from station_lab.boards.runner import LabBoards


@click.command()
@click.option("--count", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option(
    "--kind",
    type=click.Choice(["tpm", "se", "nokey", "mixed"]),
    default="mixed",
    show_default=True,
    help="tpm: swtpm behind the link; se: soft secure element; nokey: takes an injected key.",
)
@click.option(
    "--firmware",
    type=click.Choice(["python", "c", "qemu"]),
    default="python",
    show_default=True,
    help="python: the reference board; c: the C agent's host port; qemu: its Cortex-M port on an "
    "emulated board (kinds se, nokey). Build both with 'make agent'.",
)
@click.option("--baud", type=int, help="Emulated line speed (default: [board] baud; 0 = unpaced).")
@click.option(
    "--state",
    "state_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Boards' state directory (default: the lab directory); reuse it to keep identities.",
)
@click.option(
    "--faults",
    default="",
    help="Fault injection, e.g. 'flip=1e-4,drop=1e-4,slow_tpm=1,unplug_at=write,clone'.",
)
@json_option
@pass_state
def boards(
    state: CliState,
    count: int,
    kind: str,
    firmware: str,
    baud: int | None,
    state_dir: Path | None,
    faults: str,
    as_json: bool,
) -> None:
    """Start virtual boards on pseudo-terminals and publish them for discovery."""
    try:
        parsed = Faults.parse(faults)
    except FaultSpecError as exc:
        raise ConfigError(
            f"bad --faults: {exc}", remedy="See 'station lab boards --help'."
        ) from exc
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with (
            open_station(state) as station,
            LabBoards.for_station(
                station.config, baud=baud, lab_dir=state_dir, firmware=firmware
            ) as lab,
        ):
            started = lab.start(count, kind, parsed)
            if as_json:
                echo_json(
                    {
                        "registry": str(lab.registry_path),
                        "boards": [
                            {
                                "location": b.location,
                                "port": b.port,
                                "serial": b.serial,
                                "kind": b.kind,
                                "firmware": firmware,
                            }
                            for b in started
                        ],
                    }
                )
            else:
                for b in started:
                    click.echo(f"{b.location:<8} {b.port:<14} {b.kind:<6} {b.serial}")
                click.echo(f"registry: {lab.registry_path}; Ctrl-C stops the boards")
            if any(b.kind == "tpm" for b in started) and not station.config.tpm.trust_lab_ca:
                click.echo(
                    "note: this station does not trust the lab's swtpm EK CA, so TPM boards get "
                    "'EK certificate is untrusted'. On a lab station add to the config:\n"
                    "  [tpm]\n  trust_lab_ca = true",
                    err=True,
                )
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not as_json:
        click.echo("stopped")
