"""``station provision``: run the line headless (``--watch``) or provision one board (``--port``).

Who is provisioning: the operator named by ``station --operator NAME`` (or ``$STATION_OPERATOR``),
or the badge scanned at the ``--badge`` prompt. When the named operator has a PIN, the PIN is
asked for (hidden; read from stdin when stdin is not a terminal) and checked before anything runs.
Technicians, QA and admins may provision; ``--rework REASON`` (void the board's recorded identity
and provision it anew) is for QA and admins.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, TextIO

import click

from station.bootstrap import Station
from station.cli.common import (
    CliState,
    echo_json,
    finite,
    json_option,
    open_station,
    pass_state,
    read_secret,
    term,
)
from station.cli.prompts import TerminalPrompt
from station.domain.boards import PlugChange
from station.domain.errors import BoardNotFoundError
from station.domain.provision_events import (
    Failed,
    Passed,
    ProvisionEvent,
    Resumed,
    Step,
    StepFailed,
    StepPassed,
    StepStarted,
)
from station.services.provision import ProvisionOutcome
from station.services.provision_line import ProvisionLine


@click.command()
@click.option("--batch", "batch_name", default="", help="The open batch boards go into.")
@click.option(
    "--port", help="Provision the one board on this port (device path, pyserial URL or slot name)."
)
@click.option("--watch", is_flag=True, help="Provision every board plugged into a bound slot.")
@click.option("--slot", default="", help="Slot name for --port (default: the port).")
@click.option(
    "--serial",
    "scanned_serial",
    default="",
    help="With --port: the serial printed on a board that reports none (scan its sticker).",
)
@click.option("--rework", default="", help="QA: void the board's identity for REASON, redo it.")
@click.option("--badge", is_flag=True, help="Log in by scanning a badge (prompted, hidden).")
@click.option("--detail", is_flag=True, help="Show the technical detail of failures.")
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.05, 3600),
    callback=finite,
    help="Hot-plug poll period (s, 0.05 to 3600).",
)
@click.option("--jobs", "list_jobs", is_flag=True, help="List open (unfinished) jobs and exit.")
@click.option(
    "--void-job",
    type=click.IntRange(1, 2**63 - 1),
    default=None,
    help="Abandon open job ID (board lost).",
)
@click.option("--reason", default="", help="Why the job is voided (with --void-job).")
@json_option
@pass_state
def provision(
    state: CliState,
    batch_name: str,
    port: str | None,
    watch: bool,
    slot: str,
    scanned_serial: str,
    rework: str,
    badge: bool,
    detail: bool,
    interval: float,
    list_jobs: bool,
    void_job: int | None,
    reason: str,
    as_json: bool,
) -> None:
    """Provision boards into batch BATCH: one board (--port) or the whole line (--watch).

    Each slot prints one line per step; a failure says what failed and what to do (--detail adds
    the technical detail). --watch keeps going until Ctrl-C; a board interrupted by Ctrl-C, an
    unplug or a crash resumes where it stopped when it is plugged in again.
    """
    if list_jobs or void_job is not None:
        _jobs(state, batch_name, void_job, reason, badge=badge, as_json=as_json)
        return
    if not batch_name:
        raise click.UsageError("--batch is required")
    if bool(port) == watch:
        raise click.UsageError("give exactly one of --port P or --watch")
    if scanned_serial and not port:
        raise click.UsageError("--serial goes with --port (one board)")
    if port and (port.startswith("/") or "://" in port):
        _check_port(port)
    _login(state, badge=badge, rework=bool(rework))
    printer = _Printer(sys.stdout, detail=detail, as_json=as_json)
    prompt = TerminalPrompt()
    with open_station(state) as station:
        if port and not port.startswith("/") and "://" not in port:
            slot, port = slot or port, station.discovery().board_in(port).device  # a slot name
        service = station.provisioning()
        service.check_operator(state.operator, rework=bool(rework))
        service.prepare(batch_name)  # a misspelt or sealed batch: said once, before any board
        line = ProvisionLine(
            station.for_thread,
            batch=batch_name,
            operator=state.operator,
            emit=printer.event,
            rework_reason=rework,
            ask=prompt.post,
        )
        try:
            if port:
                line.plugged(slot or port, port, scanned_serial)
                _wait_idle(line, prompt)
            else:
                _watch(station, line, prompt, interval)
        except KeyboardInterrupt:
            printer.note("stopping: boards in progress resume when plugged in again")
        finally:
            line.stop()
        outcomes = line.outcomes()
    if as_json:
        echo_json([_outcome_json(o) for o in outcomes])
    else:
        passed = sum(o.passed for o in outcomes)
        click.echo(f"{passed} passed, {len(outcomes) - passed} failed")
    if port and not (outcomes and all(o.passed for o in outcomes)):
        raise click.exceptions.Exit(1)


def _check_port(port: str) -> None:
    """Refuse a device path that does not exist before any board is touched.

    pyserial URLs (``socket://``, ``rfc2217://``, ...) are left to the connection itself.
    """
    if "://" in port or Path(port).exists():
        return
    raise BoardNotFoundError(
        f"there is no port {port}",
        remedy="Check the name and that the board is plugged in: 'station board list' shows "
        "the boards the station sees and their ports.",
        port=port,
    )


def _jobs(
    state: CliState, batch: str, void_job: int | None, reason: str, *, badge: bool, as_json: bool
) -> None:
    """List open jobs, or void one whose board will not come back."""
    if void_job is not None:
        _login(state, badge=badge, rework=False)
    with open_station(state) as station:
        service = station.provisioning()
        if void_job is not None:
            job = service.void_job(void_job, reason, operator=state.operator)
            click.echo(f"job {job.id} voided ({reason})")
            return
        jobs = service.open_jobs(batch)
    if as_json:
        echo_json(
            [
                {
                    "job": j.id,
                    "slot": j.slot,
                    "batch": j.batch,
                    "state": str(j.state),
                    "step": j.step,
                    "serial": j.board_serial,
                    "registration_id": j.registration_id,
                    "updated_at": j.updated_at,
                }
                for j in jobs
            ]
        )
        return
    if not jobs:
        click.echo("no open jobs")
    for j in jobs:
        click.echo(
            f"job {j.id}: slot {j.slot}, batch {j.batch}, board {term(j.board_serial or '?')}, "
            f"{j.state} at {j.step} (since {j.updated_at})"
        )


def _login(state: CliState, *, badge: bool, rework: bool) -> None:
    """Resolve and authenticate the operator (badge, or name + PIN when one is set)."""
    with open_station(state) as station:
        operators = station.operators()
        if badge:
            scanned = read_secret("Badge")
            state.operator = operators.authenticate_badge(scanned.strip()).name
            return
        if not state.operator:
            raise click.UsageError(
                "who is provisioning? pass station --operator NAME (or set $STATION_OPERATOR), "
                "or --badge"
            )
        if operators.has_pin(state.operator):
            pin = read_secret(f"PIN for {state.operator}")
            operators.authenticate_pin(state.operator, pin.strip())


def _wait_idle(line: ProvisionLine, prompt: TerminalPrompt) -> None:
    while not line.idle:
        prompt.answer_waiting(0.1)  # a worker may wait for the operator


def _watch(station: Station, line: ProvisionLine, prompt: TerminalPrompt, interval: float) -> None:
    watcher = station.hotplug()
    click.echo("watching bound slots; Ctrl-C to stop", err=True)
    while True:
        for change in watcher.poll():
            if change.change is PlugChange.ARRIVED and change.slot:
                line.plugged(change.slot, change.board.device)
        prompt.answer_waiting(interval)


class _Printer:
    """Renders events from worker threads, one line each, serialised by a lock."""

    def __init__(self, out: TextIO, *, detail: bool, as_json: bool) -> None:
        self._out = out
        self._detail = detail
        self._quiet = as_json
        self._lock = threading.Lock()

    def note(self, text: str) -> None:
        with self._lock:
            click.echo(term(text), err=True)

    def event(self, event: ProvisionEvent) -> None:
        if self._quiet:
            return
        text = self.render(event)
        if text:
            with self._lock:
                click.echo(term(text), file=self._out)  # board text (model, messages) inside

    def render(self, event: ProvisionEvent) -> str:
        slot = f"[{event.slot}]"
        if isinstance(event, StepStarted):
            return f"{slot:<10} ..   {event.step}"
        if isinstance(event, StepPassed):
            return f"{slot:<10} ok   {event.step}" + (f"  {event.detail}" if event.detail else "")
        if isinstance(event, Resumed):
            return f"{slot:<10} resuming job {event.job_id} (stopped at {event.from_step}): " + (
                event.detail
            )
        if isinstance(event, Passed):
            return f"{slot:<10} PASS {event.registration_id} (board {event.serial}, {event.batch})"
        if isinstance(event, Failed):
            text = f"{slot:<10} FAIL at {event.step}: {event.reason}\n{'':<10} do:  {event.remedy}"
            if self._detail:
                text += f"\n{'':<10} detail: {event.detail}"
            return text
        if isinstance(event, StepFailed) and event.step is Step.LABEL:
            return f"{slot:<10} label not printed: {event.reason} do: {event.remedy}"
        return ""  # a step failure is followed by a Failed event that says it all


def _outcome_json(outcome: ProvisionOutcome) -> dict[str, Any]:
    return {
        "passed": outcome.passed,
        "slot": outcome.slot,
        "serial": outcome.serial,
        "registration_id": outcome.registration_id,
        "job": outcome.job_id,
        "step": str(outcome.step),
        "reason": outcome.reason,
        "remedy": outcome.remedy,
        "code": outcome.code,
        "detail": outcome.detail,
    }
