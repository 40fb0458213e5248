"""Each attestation flow as an explicit table: step -> handler, over the flow's own typed state.

The order of the steps is the domain's (:func:`~station.domain.provision_events.flow_steps`);
a flow binds every one of its steps to a handler that takes the run's
:class:`~station.services.provision.context.StepContext` and the flow's state (what the flow has
learnt so far, typed per flow). In the spirit of OpenHTF's phases and labgrid's strategies: the
runner walks the table, persisting and reporting each step around its handler, and a resumed job
walks the same table again (every handler is idempotent or keeps what is already on the board).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from station.domain.products import ProductAttestation
from station.domain.provision_events import Step, flow_steps
from station.services.provision import steps_common, steps_operational, steps_tpm, steps_x509
from station.services.provision.context import StepContext
from station.services.provision.model import Evidence


class FlowState(Protocol):
    """What a flow's state offers the runner once the table has run (or failed)."""

    def evidence(self) -> Evidence:
        """The identity parts the flow established, for the record step."""
        ...

    def close(self) -> None:
        """Release what the flow holds (a TPM session, an injected key), passed or not."""
        ...


S = TypeVar("S", bound=FlowState)
Handler = Callable[[StepContext, S], str]  # returns the note of the step's StepPassed event


class FlowRunner(Protocol):
    """A flow the runner can walk without knowing its state's type."""

    @property
    def attestation(self) -> ProductAttestation:
        """The attestation kind the flow provisions."""
        ...

    def run(self, ctx: StepContext, before_step: Callable[[Step], None]) -> Evidence:
        """Walk the flow's steps in order; return what the record step needs."""
        ...


@dataclass(frozen=True)
class Flow(Generic[S]):
    """One attestation flow: its state's factory and the handler of each of its steps."""

    attestation: ProductAttestation
    start: Callable[[StepContext], S]
    handlers: Mapping[Step, Handler[S]]

    def steps(self, *, lock: bool, operational: bool = False) -> tuple[Step, ...]:
        """The flow's steps in order.

        With the lock step when the recipe locks boards, and the operational-key step when DPS
        issues the product's operational certificates.
        """
        return flow_steps(self.attestation, lock=lock, operational=operational)

    def run(self, ctx: StepContext, before_step: Callable[[Step], None]) -> Evidence:
        """Walk the table: for each step, ``before_step`` (cancel check), start, handler, pass."""
        state = self.start(ctx)
        try:
            recipe = ctx.board.recipe
            operational = recipe.operational_certificate is not None
            for step in self.steps(lock=recipe.lock, operational=operational):
                before_step(step)
                handler = self.handlers[step]
                ctx.journal.begin(step)
                ctx.journal.passed(step, handler(ctx, state))
            return state.evidence()
        finally:
            state.close()


_TAIL = {
    Step.OPERATIONAL_KEY: steps_operational.operational_key,
    Step.WRITE_DPS: steps_common.write_dps,
    Step.LOCK: steps_common.lock,
}

TPM_FLOW = Flow(
    ProductAttestation.TPM,
    steps_tpm.start,
    {
        Step.TPM_EK: steps_tpm.endorsement_key,
        Step.TPM_EK_CERT: steps_tpm.endorsement_certificate,
        Step.TPM_RESIDENCY: steps_tpm.residency,
        Step.TPM_SRK: steps_tpm.storage_root_key,
        **_TAIL,
    },
)
X509_FLOW = Flow(
    ProductAttestation.X509,
    steps_x509.start,
    {
        Step.KEYGEN: steps_x509.keygen,
        Step.CSR: steps_x509.csr_from_board,
        Step.ISSUE: steps_x509.issue,
        Step.WRITE_CHAIN: steps_x509.write_chain,
        Step.PROOF: steps_x509.proof_of_possession,
        **_TAIL,
    },
)
X509_INJECTED_FLOW = Flow(
    ProductAttestation.X509_INJECTED,
    steps_x509.start,
    {
        Step.CSR: steps_x509.csr_in_station,
        Step.ISSUE: steps_x509.issue,
        Step.WRITE_KEY: steps_x509.write_key,
        Step.WRITE_CHAIN: steps_x509.write_chain,
        Step.PROOF: steps_x509.proof_of_possession,
        **_TAIL,
    },
)
SYMMETRIC_KEY_FLOW = Flow(
    ProductAttestation.SYMMETRIC_KEY,
    steps_common.start_symmetric,
    {Step.WRITE_SYMKEY: steps_common.write_symmetric_key, **_TAIL},
)

#: The flow of every attestation kind.
FLOWS: Mapping[ProductAttestation, FlowRunner] = {
    flow.attestation: flow for flow in (TPM_FLOW, X509_FLOW, X509_INJECTED_FLOW, SYMMETRIC_KEY_FLOW)
}
