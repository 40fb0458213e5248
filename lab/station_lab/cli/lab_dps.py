"""``station lab dps``: run the local DPS stand-in until Ctrl-C or SIGTERM."""

from __future__ import annotations

import dataclasses
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from station.cli.common import CliState, pass_state

if TYPE_CHECKING:
    from station_lab.dps import LocalDps


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
@click.option(
    "--credential-policy",
    "policies",
    multiple=True,
    metavar="NAME[=DAYS]",
    help="Certificate management: a credential policy of the lab's device registry (repeat; "
    "needs --registry-token).",
)
@click.option(
    "--registry-token",
    default="",
    metavar="LABEL",
    help="The SoftHSM2 token (of $SOFTHSM2_CONF) holding the registry's root and policy keys.",
)
@click.option(
    "--registry-pin-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="The registry token's PIN (default: $STATION_PKCS11_PIN).",
)
@click.option("--namespace", default="lab-ns", show_default=True, help="The registry's name.")
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
    policies: tuple[str, ...],
    registry_token: str,
    registry_pin_file: Path | None,
    namespace: str,
) -> None:
    """Start the local DPS stand-in (HTTPS and MQTT on 127.0.0.1) and serve until interrupted."""
    # The lab may import anything; importing it here keeps `station --help` fast.
    from station_lab.dps import DEFAULT_ID_SCOPE, DpsOptions, FaultPlan, LinkedHub, LocalDps
    from station_lab.dps.auth import OWNER_POLICY

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
        registry_pin_file=registry_pin_file,
    )
    if policies and not registry_token:
        raise click.UsageError("--credential-policy needs --registry-token (where its keys go)")
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
            # the key stays in the 0600 file the station reads; stdout may end up in a log
            click.echo(f"owner policy: {OWNER_POLICY} (its key is in the file below, not shown)")
            click.echo(f"connection string file: {server.connection_file}")
            click.echo(f"ID scope: {server.id_scope}")
            linked = ", ".join(
                f"{hub.host_name} ({hub.latency_ms:g} ms, weight {hub.weight})"
                for hub in server.options.linked_hubs
            )
            click.echo(f"linked hubs: {linked}")
            click.echo(f"allocation policy: {server.options.allocation_policy}")
            click.echo(f"CA bundle: {server.ca_bundle}")
            click.echo(f"access log: {server.access_log_path}")
            if policies:
                click.echo(_registry(server, namespace, registry_token, policies))
            click.echo("press Ctrl-C to stop", err=True)
            while not stop.wait(0.5):
                pass
            click.echo("lab DPS stopped", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _registry(server: LocalDps, namespace: str, token: str, policies: tuple[str, ...]) -> str:
    """Enable certificate management and create the policies (kept across restarts)."""
    from urllib.parse import quote

    def uri(label: str) -> str:
        return f"pkcs11:token={quote(token, safe='')};object={quote(label, safe='')}"

    server.enable_certificate_management(namespace, uri("adr-root"))
    shown = []
    for spec in policies:
        name, _, days = spec.partition("=")
        if not days.isdigit() and days:
            raise click.BadParameter(f"{spec!r}: DAYS must be a number", param_hint="policy")
        validity = int(days or 30)
        if not server.registry.policy_exists(name):
            server.create_credential_policy(name, uri(f"adr-{name}"), validity_days=validity)
        held = [p for p in server.registry.policies() if p["name"].lower() == name.lower()]
        shown.append(f"{name} ({held[0]['validityDays']} days, {held[0]['status']})")
    return f"device registry {namespace}: credential policies {', '.join(shown)}"
