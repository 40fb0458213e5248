"""``station board``: list discovered boards and their slots, probe a board, bind a slot."""

from __future__ import annotations

from collections import Counter

import click

from station.cli.common import (
    CliState,
    echo_json,
    json_option,
    open_station,
    pass_state,
    term,
)


@click.group()
def board() -> None:
    """Find boards, check them, and bind fixture slots to USB ports."""


@board.command("list")
@json_option
@pass_state
def list_boards(state: CliState, as_json: bool) -> None:
    """List the board ports plugged in now (USB and lab) with their slots."""
    with open_station(state) as station:
        boards = station.discovery().boards()
    if as_json:
        echo_json(
            [
                {
                    "slot": b.slot,
                    "device": b.device,
                    "location": b.location,
                    "usb_id": b.usb_id,
                    "serial_number": b.serial_number,
                    "source": b.source,
                    "description": b.description,
                }
                for b in boards
            ]
        )
        return
    if not boards:
        click.echo("no boards found (plug one in, or start the lab: station lab boards)")
        return
    click.echo(f"{'SLOT':<8} {'DEVICE':<16} {'LOCATION':<14} {'USB ID':<10} SERIAL")
    for b in boards:
        click.echo(
            f"{b.slot or '-':<8} {term(b.device):<16} {term(b.location):<14} {b.usb_id or '-':<10} "
            f"{term(b.serial_number or '-')}"
        )


@board.command()
@click.argument("port")
@json_option
@pass_state
def probe(state: CliState, port: str, as_json: bool) -> None:
    """Say hello to the board on PORT (device path, pyserial URL or slot name)."""
    with open_station(state) as station:
        if not port.startswith("/") and "://" not in port:
            port = station.discovery().board_in(port).device
        info = station.board_session(port, handshake=False).hello()
    if as_json:
        echo_json(
            {
                "port": port,
                "serial": info.serial,
                "model": info.model,
                "hardware": info.hardware,
                "firmware": info.firmware,
                "protocol": info.protocol,
                "capabilities": list(info.capabilities),
                "locked": info.locked,
                "max_payload": info.max_payload,
            }
        )
        return
    click.echo(f"port:          {port}")
    click.echo(f"serial:        {term(info.serial)}")
    click.echo(f"model:         {term(info.model)} (hardware {term(info.hardware)})")
    click.echo(f"firmware:      {term(info.firmware)}, protocol {info.protocol}")
    click.echo(f"capabilities:  {term(', '.join(info.capabilities) or '-')}")
    click.echo(f"locked:        {'yes' if info.locked else 'no (manufacturing mode)'}")


@board.command()
@click.argument("slot")
@click.option("--location", help="Bind this USB port path instead of the one unbound board.")
@json_option
@pass_state
def bind(state: CliState, slot: str, location: str | None, as_json: bool) -> None:
    """Bind SLOT to the USB port of the board plugged in now (plug only that board)."""
    with open_station(state) as station:
        found = station.discovery().bind_plugged(slot, location)
    if as_json:
        echo_json({"slot": slot, "location": found.location, "device": found.device})
        return
    click.echo(f"slot {slot} -> USB port {found.location} (now {found.device})")


@board.command()
@click.argument("port")
@click.option(
    "--lock",
    "allow_lock",
    is_flag=True,
    help="Also check the manufacturing lock: this locks the board for good.",
)
@json_option
@pass_state
def conformance(state: CliState, port: str, allow_lock: bool, as_json: bool) -> None:
    """Check that the firmware on PORT speaks the board protocol: a verdict per spec clause.

    Run it on a sample board in manufacturing mode: it starts with a factory reset and writes
    test objects and keys. Exit status 1 when a clause fails.
    """
    with open_station(state) as station:
        if not port.startswith("/") and "://" not in port:
            port = station.discovery().board_in(port).device
        report = station.board_conformance(port, allow_lock=allow_lock)
    if as_json:
        echo_json(
            {
                "port": report.port,
                "passed": report.passed,
                "board": None
                if report.board is None
                else {
                    "serial": report.board.serial,
                    "model": report.board.model,
                    "firmware": report.board.firmware,
                    "capabilities": list(report.board.capabilities),
                },
                "clauses": [
                    {
                        "clause": r.clause,
                        "title": r.title,
                        "verdict": r.verdict.value,
                        "detail": r.detail,
                    }
                    for r in report.results
                ],
            }
        )
    else:
        if report.board is not None:
            b = report.board
            click.echo(f"board: {b.model} {b.hardware}, firmware {b.firmware}, serial {b.serial}")
        for r in report.results:
            colour = {"PASS": "green", "FAIL": "red"}.get(r.verdict.value, "yellow")
            verdict = click.style(r.verdict.value, fg=colour)
            click.echo(f"§{r.clause:<13} {verdict:<4}  {r.title}: {r.detail}")
        tally = Counter(r.verdict.value for r in report.results)
        counts = ", ".join(f"{tally[v]} {v}" for v in ("PASS", "FAIL", "SKIP"))
        overall = "CONFORMS" if report.passed else "DOES NOT CONFORM"
        click.echo(f"{overall}: {counts}")
    if not report.passed:
        raise click.exceptions.Exit(1)
