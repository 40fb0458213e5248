"""Provisioning: the per-slot runner that turns a plugged board into a recorded identity.

One module per job:

* :mod:`~station.services.provision.runner`: :class:`ProvisionService`, which drives one board
  through admission, its attestation flow and the record step;
* :mod:`~station.services.provision.flows`: each attestation flow as a table, step -> handler,
  over the flow's own typed state;
* :mod:`~station.services.provision.admission`: the connect and duplicate-check steps (new board,
  resumed job, rework);
* :mod:`~station.services.provision.steps_tpm`, :mod:`~station.services.provision.steps_x509`,
  :mod:`~station.services.provision.steps_common`: the step handlers per attestation kind;
* :mod:`~station.services.provision.events`: each step's start and end, persisted and emitted;
* :mod:`~station.services.provision.model` and :mod:`~station.services.provision.context`: the
  request, the outcome, the ports and the state a run shares.
"""

from station.services.provision.context import (
    PROVISIONERS,
    REWORKERS,
    LabelPrinting,
    ProvisionPorts,
)
from station.services.provision.model import Cancellation, ProvisionOutcome, ProvisionRequest
from station.services.provision.runner import ProvisionService

__all__ = [
    "PROVISIONERS",
    "REWORKERS",
    "Cancellation",
    "LabelPrinting",
    "ProvisionOutcome",
    "ProvisionPorts",
    "ProvisionRequest",
    "ProvisionService",
]
