"""Allocation: which linked IoT hub a registering device is assigned to (DPS allocation policies).

* ``hashed`` (evenly weighted, the service default): SHA-256 of the registration ID picks a hub,
  weighted by each hub's ``weight``; the same device always lands on the same hub while the
  candidate list is unchanged.
* ``static``: the enrollment names its hub (``iotHubs`` with one entry, or ``iotHubHostName``).
* ``geoLatency``: the candidate with the lowest (simulated) latency; ties are broken by hashing.
* ``custom``: DPS POSTs an AllocationRequest to the enrollment's webhook and uses the hub, initial
  twin and payload of its AllocationResponse (dps-api.md §9).

The candidates are the enrollment's ``iotHubs`` (or ``iotHubHostName``) that are linked, else all
linked hubs.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from station.domain.errors import LabDpsError

DEFAULT_HUBS: Final = ("lab-hub-1.azure-devices.net", "lab-hub-2.azure-devices.net")
WEBHOOK_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class LinkedHub:
    """An IoT hub linked to the stand-in, with its simulated latency and allocation weight."""

    host_name: str
    latency_ms: float = 0.0
    weight: int = 1

    @classmethod
    def parse(cls, spec: str) -> LinkedHub:
        """Parse ``HOST[=LATENCY_MS[/WEIGHT]]``, e.g. ``hub-eu.azure-devices.net=35/2``.

        Raises:
            LabDpsError: the latency or weight is not a number, or the host is empty.
        """
        host, _, rest = spec.strip().partition("=")
        latency_text, _, weight_text = rest.partition("/")
        try:
            hub = cls(
                host.strip().lower(),
                float(latency_text) if latency_text else 0.0,
                int(weight_text) if weight_text else 1,
            )
        except ValueError as exc:
            raise LabDpsError(
                f"bad linked hub {spec!r}",
                remedy="Write HOST, HOST=LATENCY_MS or HOST=LATENCY_MS/WEIGHT.",
            ) from exc
        if not hub.host_name or hub.latency_ms < 0 or hub.weight < 1:
            raise LabDpsError(
                f"bad linked hub {spec!r}",
                remedy="Give a host name, a latency >= 0 and a weight >= 1.",
            )
        return hub


@dataclass(frozen=True)
class Allocation:
    """The outcome of allocation: a hub, plus what a custom webhook may add."""

    hub: str
    initial_twin: Mapping[str, Any] | None = None
    payload: Any = None


class AllocationFailed(Exception):
    """No hub could be chosen (no candidate, or the custom webhook failed): one sentence why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class AllocationContext:
    """What a custom webhook is told about the registration (its deviceRuntimeContext)."""

    registration_id: str
    enrollment: Mapping[str, Any]
    is_group: bool
    attestation: Mapping[str, Any] = field(default_factory=dict)
    payload: Any = None
    current_hub: str | None = None
    current_device_id: str | None = None


class Allocator:
    """Applies the allocation policies over a fixed set of linked hubs.

    Args:
        hubs: the linked hubs.
        default_policy: the service-level policy for enrollments that set none.
        webhook_ca_bundle: extra trust for ``https`` webhooks (e.g. the lab's own CA bundle).
    """

    def __init__(
        self,
        hubs: Sequence[LinkedHub],
        *,
        default_policy: str = "hashed",
        webhook_ca_bundle: Path | None = None,
    ) -> None:
        if not hubs:
            raise LabDpsError("the lab DPS needs at least one linked hub")
        self.hubs = {hub.host_name.lower(): hub for hub in hubs}
        self.default_policy = default_policy
        self._webhook_tls = ssl.create_default_context(
            cafile=str(webhook_ca_bundle) if webhook_ca_bundle else None
        )

    def candidates(self, enrollment: Mapping[str, Any]) -> list[LinkedHub]:
        """The linked hubs this enrollment may be assigned to, in linking order."""
        named = list(enrollment.get("iotHubs") or [])
        if not named and enrollment.get("iotHubHostName"):
            named = [enrollment["iotHubHostName"]]
        wanted = {str(name).lower() for name in named}
        if not wanted:
            return list(self.hubs.values())
        return [hub for key, hub in self.hubs.items() if key in wanted]

    def allocate(self, context: AllocationContext) -> Allocation:
        """Choose the hub for ``context`` under its enrollment's policy.

        Raises:
            AllocationFailed: no linked candidate, or the custom webhook failed or answered badly.
        """
        enrollment = context.enrollment
        policy = str(enrollment.get("allocationPolicy") or self.default_policy)
        candidates = self.candidates(enrollment)
        if not candidates:
            raise AllocationFailed("None of the enrollment's IoT hubs is linked to this service.")
        if policy == "static":
            return Allocation(candidates[0].host_name)
        if policy == "geoLatency":
            best = min(hub.latency_ms for hub in candidates)
            nearest = [hub for hub in candidates if hub.latency_ms == best]
            return Allocation(hashed_choice(context.registration_id, nearest).host_name)
        if policy == "custom":
            return self._custom(context, candidates)
        return Allocation(hashed_choice(context.registration_id, candidates).host_name)

    # ------------------------------------------------------------------ custom webhook
    def _custom(self, context: AllocationContext, candidates: list[LinkedHub]) -> Allocation:
        definition = context.enrollment.get("customAllocationDefinition") or {}
        url = str(definition.get("webhookUrl", ""))
        if not url.startswith(("http://", "https://")):
            raise AllocationFailed("The custom allocation webhook URL is not http(s).")
        linked = [hub.host_name for hub in candidates]
        request_body = {
            "enrollmentGroup" if context.is_group else "individualEnrollment": dict(
                context.enrollment
            ),
            "deviceRuntimeContext": _runtime_context(context),
            "linkedHubs": linked,
        }
        request = urllib.request.Request(
            url,
            data=json.dumps(request_body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(
                request, timeout=WEBHOOK_TIMEOUT_S, context=self._webhook_tls
            ) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise AllocationFailed(f"The custom allocation webhook failed: {exc}.") from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("iotHubHostName"), str):
            raise AllocationFailed("The custom allocation webhook answered without iotHubHostName.")
        hub = answer["iotHubHostName"].lower()
        if hub not in linked:
            raise AllocationFailed(
                f"The custom allocation webhook chose {hub!r}, which is not a linked hub."
            )
        twin = answer.get("initialTwin")
        return Allocation(
            hub,
            initial_twin=twin if isinstance(twin, dict) else None,
            payload=answer.get("payload"),
        )


def hashed_choice(registration_id: str, hubs: Sequence[LinkedHub]) -> LinkedHub:
    """Pick a hub by SHA-256 of the registration ID, in proportion to the hubs' weights."""
    total = sum(hub.weight for hub in hubs)
    digest = hashlib.sha256(registration_id.lower().encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for hub in hubs:
        if point < hub.weight:
            return hub
        point -= hub.weight
    return hubs[-1]  # unreachable: point < total


def _runtime_context(context: AllocationContext) -> dict[str, Any]:
    runtime: dict[str, Any] = {"registrationId": context.registration_id}
    if context.current_hub is not None:
        runtime["currentIotHubHostName"] = context.current_hub
    if context.current_device_id is not None:
        runtime["currentDeviceId"] = context.current_device_id
    runtime.update(context.attestation)
    if context.payload is not None:
        runtime["payload"] = context.payload
    return runtime
