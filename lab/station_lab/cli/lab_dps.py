"""``station lab dps``: run the local DPS stand-in until Ctrl-C or SIGTERM."""

from __future__ import annotations

import dataclasses
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from station.cli.common import CliState, pass_state


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="HTTPS port, also MQTT over WebSocket (0: any free).",
)
@click.option(
    "--mqtt-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="MQTT-over-TLS port (real DPS: 8883; 0: any free).",
)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="State directory (default: <lab dir>/dps).",
)
@click.option("--reset", is_flag=True, help="Forget every enrollment and the access log first.")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Operations per minute before 429 (0: unlimited).",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="How many lab minutes pass per real minute (60: the rate window lasts 1 s).",
)
@click.option(
    "--faults",
    default="",
    metavar="SPEC",
    help="Random faults, e.g. '500=0.05,drop=0.02,drop-after=0.01,latency=0.2,seed=1'.",
)
@click.option(
    "--id-scope",
    default=None,
    metavar="SCOPE",
    help="ID scope devices register under (default: 0ne00000001).",
)
@click.option(
    "--hub",
    "hubs",
    multiple=True,
    metavar="HOST[=MS[/WEIGHT]]",
    help="A linked IoT hub with its simulated latency and weight (repeat; default: two lab hubs).",
)
@click.option(
    "--allocation-policy",
    type=click.Choice(["hashed", "static", "geoLatency"]),
    default="hashed",
    show_default=True,
    help="Service-level allocation policy for enrollments that set none.",
)
@click.option(
    "--retry-after",
    type=click.FloatRange(min=0),
    default=3.0,
    show_default=True,
    help="Seconds a registering device is told to wait before polling.",
)
@pass_state
def dps(
    state: CliState,
    port: int | None,
    mqtt_port: int,
    state_dir: Path | None,
    reset: bool,
    rate_limit: int,
    time_scale: float,
    faults: str,
    id_scope: str | None,
    hubs: tuple[str, ...],
    allocation_policy: str,
    retry_after: float,
) -> None:
    """Start the local DPS stand-in (HTTPS and MQTT on 127.0.0.1) and serve until interrupted."""
    # The lab may import anything; importing it here keeps `station --help` fast.
    from station_lab.dps import DEFAULT_ID_SCOPE, DpsOptions, FaultPlan, LinkedHub, LocalDps

    config = state.config()
    options = DpsOptions(
        state_dir=state_dir or config.lab_dir / "dps",
        port=config.lab.dps_port if port is None else port,
        reset=reset,
        rate_limit=rate_limit,
        time_scale=time_scale,
        faults=FaultPlan.parse(faults),
        id_scope=id_scope or DEFAULT_ID_SCOPE,
        allocation_policy=allocation_policy,
        retry_after_s=retry_after,
        mqtt_port=mqtt_port,
    )
    if hubs:
        options = dataclasses.replace(
            options, linked_hubs=tuple(LinkedHub.parse(spec) for spec in hubs)
        )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LocalDps(options) as server:
            click.echo(f"lab DPS endpoint: {server.endpoint}")
            click.echo(f"device MQTT: mqtts://{server.options.host}:{server.mqtt_port}")
            click.echo(f"device MQTT over WebSocket: {server.websocket_url}")
            map_host, map_port = server.port_map
            click.echo(f"port map (HTTP CONNECT to DPS ports 8883/443): {map_host}:{map_port}")
            click.echo(f"connection string: {server.connection_string()}")
            click.echo(f"ID scope: {server.id_scope}")
            linked = ", ".join(
                f"{hub.host_name} ({hub.latency_ms:g} ms, weight {hub.weight})"
                for hub in server.options.linked_hubs
            )
            click.echo(f"linked hubs: {linked}")
            click.echo(f"allocation policy: {server.options.allocation_policy}")
            click.echo(f"CA bundle: {server.ca_bundle}")
            click.echo(f"access log: {server.access_log_path}")
            click.echo("press Ctrl-C to stop", err=True)
            while not stop.wait(0.5):
                pass
            click.echo("lab DPS stopped", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
