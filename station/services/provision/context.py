"""What one provisioning run works with: the request, the ports, and the state steps share.

The runner builds one :class:`StepContext` per board once the board has answered and its recipe is
known; every step handler gets it together with its own flow's typed state
(:mod:`station.services.provision.flows`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from station.domain.errors import BoardReportedError
from station.domain.fleet import FleetIdentity
from station.domain.products import ProductRecipe
from station.domain.records import JobRecord
from station.ports import (
    BoardLink,
    Clock,
    DeviceCrypto,
    GroupKeys,
    ProductCatalog,
    TpmIdentityReader,
    UnitOfWork,
)
from station.protocol.ops import BoardInfo as HelloInfo
from station.protocol.ops import ObjectState
from station.services.authz import Permission, roles_for
from station.services.ca import CaService
from station.services.provision.events import Journal
from station.services.provision.model import Run
from station.services.provision_jobs import JobLedger
from station.services.tpm_identity import TpmIdentityService

#: Who may provision and rework (the rows of station.services.authz.PERMISSIONS).
PROVISIONERS = roles_for(Permission.PROVISION)
REWORKERS = roles_for(Permission.REWORK)


class LabelPrinting(Protocol):
    """What provisioning needs from the label service: print a PASSed device's label."""

    def print_at_pass(self, registration_id: str, *, operator: str) -> object:
        """Print the label of a freshly provisioned device (``operator`` provisioned it)."""
        ...


class FleetCheck(Protocol):
    """What provisioning needs from the fleet: claim a board's keys before it is locked."""

    def check(self, identity: FleetIdentity) -> str:
        """Claim (online products) or defer; returns a note, raises for a duplicate."""
        ...


@dataclass
class ProvisionPorts:
    """What the provisioning service talks to (opened lazily by the composition root)."""

    store: UnitOfWork
    products: ProductCatalog
    ca: Callable[[], CaService]
    group_keys: Callable[[], GroupKeys]
    crypto: DeviceCrypto
    random_bytes: Callable[[int], bytes]
    tpm_reader: Callable[[BoardLink], TpmIdentityReader] | None = None
    tpm_identity: Callable[[], TpmIdentityService] | None = None
    labels: Callable[[], LabelPrinting] | None = None
    fleet: FleetCheck | None = None  # the fleet ledger's online uniqueness check (#23)


@dataclass(frozen=True)
class Board:
    """The board that answered and the recipe of the batch it goes into."""

    hello: HelloInfo
    recipe: ProductRecipe


@dataclass(frozen=True)
class StepContext:
    """Everything a step handler reaches: the ports, the run, the board and the job ledger."""

    ports: ProvisionPorts
    jobs: JobLedger
    journal: Journal
    clock: Clock
    station: str
    operator: str
    run: Run
    board: Board

    @property
    def store(self) -> UnitOfWork:
        """The identity store (the worker's own connection)."""
        return self.ports.store

    @property
    def link(self) -> BoardLink:
        """The board's link."""
        return self.run.link

    @property
    def job(self) -> JobRecord:
        """The run's job row (admission creates or resumes it before any flow step)."""
        if self.run.job is None:
            raise RuntimeError("a flow step ran before the job row was created")
        return self.run.job

    def advance(self, **changes: Any) -> JobRecord:
        """Persist ``changes`` (and what was noted before) in the run's job row now."""
        self.run.job = self.jobs.advance(self.job, **{**self.journal.take_noted(), **changes})
        return self.run.job

    def note(self, **changes: Any) -> None:
        """Keep ``changes`` for the job row, committed with the next step's start.

        For what a resume does not depend on (it reads the board and the issuance log again):
        one commit less per step.
        """
        self.journal.note(**changes)


def read_optional(link: BoardLink, name: str) -> ObjectState | None:
    """Read object ``name`` from the board; ``None`` when the board has no such object."""
    try:
        return link.read(name)
    except BoardReportedError as exc:
        if exc.details.get("status") in ("not_found", 6):
            return None
        raise
