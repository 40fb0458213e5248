"""``station lab power-on``: running lab boards do their first boot and register with the lab DPS.

Each board's own firmware does the work inside its process (lab/station_lab/boards/poweron.py); this
command only finds the boards in the lab registry, tells them where the lab DPS listens and which
CA bundle to trust, and shows what each board reports. The station's database, HSM and DPS
credentials are not used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from station.cli.common import CliState, echo_json, json_option, pass_state
from station.domain.errors import ConfigError, LabBoardError
from station_lab.boards.poweron import PowerOnResult, power_on


@click.command("power-on")
@click.argument("board", required=False)
@click.option("--all", "all_boards", is_flag=True, help="Power on every running lab board.")
@click.option("--dps", "dps_host", help="Lab DPS HOST:PORT (default: from the lab DPS state).")
@click.option(
    "--port-map",
    metavar="HOST:PORT",
    help="The lab DPS's port map, through which the Python device SDK reaches its MQTT port "
    "(default: from the lab DPS state; empty: the SDK dials port 8883).",
)
@click.option(
    "--dps-state",
    type=click.Path(path_type=Path, file_okay=False),
    help="The lab DPS state directory (default: <lab dir>/dps).",
)
@click.option(
    "--ca-bundle",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CA bundle of the lab DPS (default: <dps state>/tls/ca.pem).",
)
@click.option("--timeout", "timeout_s", type=click.FloatRange(1, 600), default=60.0)
@json_option
@pass_state
def power_on_command(
    state: CliState,
    board: str | None,
    all_boards: bool,
    dps_host: str | None,
    port_map: str | None,
    dps_state: Path | None,
    ca_bundle: Path | None,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Power on lab BOARD (location lab-N, N, or serial) or --all: register with the lab DPS."""
    if bool(board) == all_boards:
        raise click.UsageError("name one BOARD or pass --all")
    lab_dir = state.config().lab_dir
    entries = _registry(state.config().lab_registry)
    chosen = entries if all_boards else [_find(entries, board or "")]
    dps_dir = dps_state or lab_dir / "dps"
    endpoint = dps_host or _dps_host(dps_dir)
    mapped = _port_map(dps_dir) if port_map is None else port_map
    trust = ca_bundle or dps_dir / "tls" / "ca.pem"
    results: list[PowerOnResult] = []
    for entry in chosen:
        try:
            result = power_on(
                int(entry["process_id"]),
                Path(str(entry["state_dir"])),
                endpoint=endpoint,
                ca_bundle=trust,
                timeout_s=timeout_s,
                port_map=mapped,
            )
        except LabBoardError as exc:
            result = PowerOnResult(
                board=str(entry.get("location", "")),
                serial=str(entry.get("serial_number", "")),
                status="error",
                error=exc.message,
                error_code="no-answer",
                remedy=exc.remedy,
            )
        results.append(_located(result, entry))
        if not as_json:
            click.echo(_line(results[-1]))
    if as_json:
        echo_json({"dps": endpoint, "boards": [r.to_json() for r in results]})
    failed = sum(1 for r in results if not r.assigned)
    if failed:
        if not as_json:
            click.echo(f"{failed} of {len(results)} board(s) not assigned", err=True)
        raise click.exceptions.Exit(1)


def _located(result: PowerOnResult, entry: dict[str, Any]) -> PowerOnResult:
    # Name boards by their lab location (what `station lab boards` prints), not the folder.
    fields = result.to_json()
    fields["board"] = str(entry.get("location") or result.board)
    return PowerOnResult.from_json(fields)


def _line(result: PowerOnResult) -> str:
    client = f"  [{result.client}]" if result.client else ""
    if result.assigned:
        operational = (
            f"\n{'':<8} operational certificate from {result.operational_issuer}, "
            f"expires {result.operational_not_after}"
            if result.operational_issuer
            else ""
        )
        return (
            f"{result.board:<8} {result.attestation:<12} {result.registration_id}  ->  "
            f"{result.assigned_hub} ({result.device_id}){client}{operational}"
        )
    code = f" [{result.error_code}]" if result.error_code else ""
    remedy = f"; {result.remedy}" if result.remedy else ""
    return f"{result.board:<8} FAILED{code}: {result.error}{remedy}{client}"


def _registry(path: Path) -> list[dict[str, Any]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"no running lab boards (cannot read {path})",
            remedy="Start them with 'station lab boards' first.",
        ) from exc
    entries = [e for e in raw.get("boards", []) if isinstance(e, dict)]
    usable = [e for e in entries if e.get("process_id") and e.get("state_dir")]
    if not usable:
        raise ConfigError(
            "no running lab boards to power on",
            remedy="Start them with 'station lab boards' first.",
        )
    return usable


def _find(entries: list[dict[str, Any]], name: str) -> dict[str, Any]:
    wanted = name.lower()
    for entry in entries:
        location = str(entry.get("location", "")).lower()
        serial = str(entry.get("serial_number", "")).lower()
        if wanted in (location, serial) or f"lab-{wanted}" == location:
            return entry
    known = ", ".join(str(e.get("location")) for e in entries)
    raise ConfigError(f"no running lab board named {name!r}", remedy=f"Choose one of: {known}.")


def _port_map(dps_dir: Path) -> str:
    # The lab DPS writes where devices reach it; without the file the SDK dials port 8883.
    try:
        endpoints = json.loads((dps_dir / "device-endpoints.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    value = endpoints.get("portMap") if isinstance(endpoints, dict) else None
    return value if isinstance(value, str) else ""


def _dps_host(dps_dir: Path) -> str:
    # Only the HostName of the lab DPS's connection string is read: where it listens.
    path = dps_dir / "connection-string.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot find the lab DPS ({path} is missing)",
            remedy="Start it with 'station lab dps', or pass --dps HOST:PORT.",
        ) from exc
    for part in text.strip().split(";"):
        key, _, value = part.partition("=")
        if key == "HostName" and value:
            return value
    raise ConfigError(f"{path} names no HostName", remedy="Pass --dps HOST:PORT.")
