"""Test helper: provision one board in this process and SIGKILL it at a chosen step boundary.

Usage: python -m tests.provision.crash_run PORT BATCH PHASE:STEP  (PHASE = started | passed)

``started:X`` dies after step X's start was persisted, before its side effect; ``passed:X`` dies
right after the side effect, before anything else is written. The config comes from
$STATION_CONFIG. Exit status 3 means the kill point was never reached.
"""

from __future__ import annotations

import os
import signal
import sys

from station.bootstrap import build_station
from station.config import load_config
from station.domain.provision_events import ProvisionEvent, StepPassed, StepStarted
from station.services.provision import ProvisionRequest


def main(port: str, batch: str, kill_at: str) -> int:
    phase, _, step = kill_at.partition(":")
    station = build_station(load_config(None))
    link = station.board_session(port, handshake=False)

    def emit(event: ProvisionEvent) -> None:
        kind = {StepStarted: "started", StepPassed: "passed"}.get(type(event), "")
        if kind == phase and str(getattr(event, "step", "")) == step:
            os.kill(os.getpid(), signal.SIGKILL)

    outcome = station.provisioning().run(
        link, ProvisionRequest(slot="s1", batch=batch, operator="tina"), emit=emit
    )
    print(f"not killed: passed={outcome.passed} {outcome.code} {outcome.detail}")
    return 3


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
