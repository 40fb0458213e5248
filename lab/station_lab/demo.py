"""``station demo``: the whole product on the embedded lab, end to end.

Headless by default. The operator-facing steps (provisioning on the line, sealing, exporting,
pushing and reconciling batches) go through a :class:`DemoFrontEnd`: :class:`HeadlessFrontEnd`
calls the services as the CLI does; ``station demo --gui`` passes one that clicks through the
station window instead (``station.gui.demo_front``). Everything else is the same either way.

The demo lives in its own directory (default ``.demo/`` in the current folder) with its own
config, database, SoftHSM2 token and lab state, so it never touches a real station. Each run
starts from a clean directory, so running it twice works, and every process it starts (virtual
boards, their swtpm, the local DPS) is stopped when it ends, also on failure.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from azure.iot.deviceprovisioning import DeviceProvisioningClient

from hsm.softhsm import SoftHsmToken, activate, create_token
from station.bootstrap import Station, build_station
from station.config import load_config
from station.domain.errors import IntegrityError, StationError
from station.domain.provision_events import Failed, Passed, ProvisionEvent
from station.domain.pushes import PushSummary, ReconcileReport
from station.domain.records import Role, SealRecord
from station.services.batches import ExportResult
from station.services.ca import CaService
from station.services.manifests import verify_manifest_bytes
from station.services.provision import ProvisionOutcome
from station.services.provision_line import ProvisionLine
from station_lab.boards.poweron import PowerOnResult
from station_lab.boards.runner import LabBoards
from station_lab.dps.app import DpsOptions, LocalDps, running_dps

Echo = Callable[[str], None]
_T = TypeVar("_T")

#: The demo line: which virtual boards, and the product and batch each goes into.
DEMO_LINE = (
    # (board kind, product, batch)
    ("tpm", "lab-tpm", "WO-DEMO-TPM"),
    ("tpm", "lab-tpm", "WO-DEMO-TPM"),
    ("se", "lab-x509", "WO-DEMO-X509"),
    ("se", "lab-x509", "WO-DEMO-X509"),
    ("nokey", "lab-nokey", "WO-DEMO-NOKEY"),
    ("nokey", "lab-nokey", "WO-DEMO-NOKEY"),
    ("nokey", "lab-sym", "WO-DEMO-SYM"),
    ("nokey", "lab-sym", "WO-DEMO-SYM"),
)
DEMO_BOARDS = len(DEMO_LINE)
PIN_LENGTH = 8
GROUP_KEY_URI = "pkcs11:token=station-ca;object=lab-group-key"
MANIFEST_KEY_URI = "pkcs11:token=station-ca;object=manifest-key"
ADMIN, TECHNICIAN, QA = "demo-admin", "tina", "quinn"
#: GUI logins of the demo's throwaway station (printed in the summary): name -> (role, PIN)
DEMO_LOGINS = {
    TECHNICIAN: (Role.TECHNICIAN, "111111"),
    QA: (Role.QA, "222222"),
    "ada": (Role.ADMIN, "333333"),
}


@dataclass
class DemoReport:
    """What the demo did, for the closing summary."""

    directory: Path
    steps: list[tuple[str, float]] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)
    outcomes: list[ProvisionOutcome] = field(default_factory=list)
    attestations: dict[str, str] = field(default_factory=dict)  # slot -> product
    hubs: dict[str, str] = field(default_factory=dict)  # board serial -> assigned hub


class DemoFrontEnd(Protocol):
    """Runs the demo's operator-facing steps: on the services (headless) or in the GUI."""

    def open(self, station: Station) -> None:
        """The demo station is set up (operators, batches): get ready to drive it."""
        ...

    def provision(
        self, plan: Sequence[tuple[str, str]], show: Callable[[ProvisionEvent], None]
    ) -> list[ProvisionOutcome]:
        """Provision the board in each (slot, batch) of ``plan``; ``show`` sees every event."""
        ...

    def seal(self, batch: str) -> SealRecord:
        """Seal ``batch`` (as QA)."""
        ...

    def export(self, batch: str) -> ExportResult:
        """Export ``batch``: bulk JSON, CSV and the signed manifest (as QA)."""
        ...

    def push(self, batch: str) -> PushSummary:
        """Push ``batch``'s individual enrollments to DPS (as QA)."""
        ...

    def reconcile(self, batch: str) -> ReconcileReport:
        """Compare DPS with the recorded enrollments of ``batch`` (as QA)."""
        ...

    def finish(self) -> None:
        """Every step is done; the lab still runs (the GUI may wait for its window to close)."""
        ...


class HeadlessFrontEnd:
    """The demo's operator steps on the services, exactly as the CLI runs them."""

    def __init__(self) -> None:
        self._station: Station | None = None

    def open(self, station: Station) -> None:
        """Remember the demo station (each step: a sibling of its own, naming its operator)."""
        self._station = station

    def _sibling(self) -> Station:
        assert self._station is not None, "open() first"
        return self._station.for_thread()

    def provision(
        self, plan: Sequence[tuple[str, str]], show: Callable[[ProvisionEvent], None]
    ) -> list[ProvisionOutcome]:
        """One provisioning line per batch, every slot in parallel (as ``provision --watch``)."""
        base = self._sibling()
        try:
            finder = base.discovery()
            lines: dict[str, ProvisionLine] = {}
            for slot, batch in plan:
                line = lines.setdefault(
                    batch,
                    ProvisionLine(base.for_thread, batch=batch, operator=TECHNICIAN, emit=show),
                )
                line.plugged(slot, finder.board_in(slot).device)
            deadline = time.monotonic() + 600
            while not all(line.idle for line in lines.values()):
                if time.monotonic() > deadline:
                    raise StationError("provisioning did not finish within 10 minutes")
                time.sleep(0.2)
            outcomes: list[ProvisionOutcome] = []
            for line in lines.values():
                line.stop()
                outcomes.extend(line.outcomes())
            return outcomes
        finally:
            base.close()

    def seal(self, batch: str) -> SealRecord:
        """Seal ``batch`` as QA."""
        return self._with_qa(lambda s: s.batches().seal(batch, operator=QA))

    def export(self, batch: str) -> ExportResult:
        """Export ``batch`` as QA."""
        return self._with_qa(lambda s: s.batches().export(batch, operator=QA))

    def push(self, batch: str) -> PushSummary:
        """Push ``batch`` as QA."""
        return self._with_qa(lambda s: s.batches().push(batch, operator=QA))

    def reconcile(self, batch: str) -> ReconcileReport:
        """Reconcile ``batch`` as QA."""
        return self._with_qa(lambda s: s.batches().reconcile(batch, operator=QA))

    def _with_qa(self, action: Callable[[Station], _T]) -> _T:
        station = self._sibling()
        try:
            return action(station)
        finally:
            station.close()

    def finish(self) -> None:
        """Nothing to wait for."""


def _dps_dir(directory: Path) -> Path:
    return directory / "data" / "lab" / "dps"


def _write_config(directory: Path, softhsm_conf: Path) -> Path:
    data = directory / "data"
    pin_file = directory / "ca-pin"
    slot_names = ", ".join(f'"{number}"' for number in range(1, DEMO_BOARDS + 1))
    dps = _dps_dir(directory)
    path = directory / "station.toml"
    path.write_text(
        "# Demo station: everything lives in this directory.\n"
        "[station]\n"
        'id = "demo-line-1"\n'
        f'data_dir = "{data}"\n'
        "[board]\n"
        "baud = 115200\n"
        "timeout_s = 5.0\n"
        "slow_timeout_s = 60.0\n"
        "[ca]\n"
        f'pin_file = "{pin_file}"\n'
        "[tpm]\n"
        "trust_lab_ca = true   # the lab's swtpm EK certificates come from a local CA\n"
        "[dps]\n"
        f'connection_string_file = "{dps / "connection-string.txt"}"\n'
        f'ca_bundle = "{dps / "tls" / "ca.pem"}"\n'
        f'manifest_key_uri = "{MANIFEST_KEY_URI}"\n'
        f'manifest_chain_file = "{directory / "manifest-chain.pem"}"\n'
        f'export_dir = "{directory / "exports"}"\n'
        "[labels]\n"
        f'output_dir = "{directory / "labels"}"\n'
        "[gui]\n"
        f"slot_names = [{slot_names}]\n"
        "hotplug = false   # the demo starts each slot itself\n"
        f"# SoftHSM2 token config for this demo: {softhsm_conf}\n",
        encoding="utf-8",
    )
    return path


class _Demo:
    """The demo's state between steps (one method per step)."""

    def __init__(self, directory: Path, echo: Echo, lab: ExitStack, front: DemoFrontEnd) -> None:
        self.directory = directory
        self.echo = echo
        self.lab = lab
        self.front = front
        self.report = DemoReport(directory=directory)
        self.token: SoftHsmToken | None = None
        self.dps: LocalDps | None = None
        self.boards: LabBoards | None = None
        self.stations: list[Station] = []

    # -------------------------------------------------------------- helpers
    def station(self) -> Station:
        config = load_config(self.directory / "station.toml", env={})
        built = build_station(config)
        self.stations.append(built)
        return built

    def close(self) -> None:
        for built in self.stations:
            built.close()
        self.stations.clear()

    # -------------------------------------------------------------- steps
    def initialise(self) -> str:
        pin = "".join(secrets.choice("0123456789") for _ in range(PIN_LENGTH))
        self.token = create_token(self.directory / "softhsm", "station-ca", pin=pin)
        activate(self.token.conf)  # this process's PKCS#11 module now sees the demo token
        pin_file = self.directory / "ca-pin"
        pin_file.write_text(pin + "\n", encoding="utf-8")
        pin_file.chmod(0o600)
        config_path = _write_config(self.directory, self.token.conf)
        admin = self.station()
        config = admin.config
        for folder in (config.data_dir, config.backup_dir, config.lab_dir):
            folder.mkdir(parents=True, exist_ok=True)
        result = admin.database().initialize(
            config_file=str(config_path), data_dir=str(config.data_dir), admin=ADMIN, operator=ADMIN
        )
        self.report.artifacts["config"] = config_path
        self.report.artifacts["database"] = config.database_path
        seq = result.event.seq if result.event else 0
        return f"station initialised, first audit event #{seq}; SoftHSM2 token 'station-ca'"

    def set_up_ca(self) -> str:
        assert self.token is not None
        ca = self.station().ca()
        ca.init(
            self.token.uri("station-ca-key"),
            common_name="Demo Line 1 CA",
            organization="Demo",
            operator=ADMIN,
        )
        ca.lab_root(operator=ADMIN)
        self._manifest_key(ca)
        status = ca.status()
        subject = status.certificate.subject if status.certificate else "?"
        self.report.artifacts["ca chain"] = self.directory / "data" / "ca" / "chain.pem"
        return f"intermediate CA key generated inside the HSM: {subject}"

    def _manifest_key(self, ca: CaService) -> None:
        """A P-256 key in the HSM for signing batch manifests, certified by the station CA."""
        ca.certify_manifest_key(operator=ADMIN)

    def add_people_and_batches(self) -> str:
        admin = self.station()
        for name, (role, pin) in DEMO_LOGINS.items():
            admin.operators().add(name, role, pin=pin, operator=ADMIN)
        sizes: dict[tuple[str, str], int] = {}
        for _, product, batch in DEMO_LINE:
            sizes[(product, batch)] = sizes.get((product, batch), 0) + 1
        qa = self.station()
        for (product, batch), size in sizes.items():
            qa.batches().open(name=batch, product=product, size=size, operator=QA)
        names = ", ".join(batch for _, batch in sizes)
        self.front.open(self.station())
        people = ", ".join(f"{name} ({role})" for name, (role, _) in DEMO_LOGINS.items())
        return f"operators {people}; batches {names}"

    def start_dps(self) -> str:
        config_dir = self.directory / "data" / "lab" / "dps"
        self.dps = self.lab.enter_context(running_dps(DpsOptions(state_dir=config_dir, reset=True)))
        self.report.artifacts["dps"] = self.dps.connection_file
        return f"local DPS stand-in at {self.dps.endpoint} (ID scope {self.dps.id_scope})"

    def start_boards(self) -> str:
        station = self.station()
        self.boards = self.lab.enter_context(LabBoards.for_station(station.config))
        started = [self.boards.start(1, kind=kind)[0] for kind, _, _ in DEMO_LINE]
        kinds = ", ".join(f"{b.serial} ({b.kind})" for b in started)
        return f"{len(started)} virtual boards on ptys at 115200 baud: {kinds}"

    def bind_slots(self) -> str:
        finder = self.station().discovery()
        found = sorted(finder.boards(), key=lambda b: int(b.location.split("-")[-1]))
        for number, board in enumerate(found, start=1):
            finder.bind_plugged(str(number), board.location)
        return f"slots 1-{len(found)} bound to physical ports " + ", ".join(
            b.location for b in found
        )

    def provision(self) -> str:
        printing = threading.Lock()

        def show(event: ProvisionEvent) -> None:
            if isinstance(event, Passed):
                line = f"    slot {event.slot}: PASS {event.registration_id} ({event.serial})"
            elif isinstance(event, Failed):
                line = f"    slot {event.slot}: FAIL at {event.step}: {event.reason}"
            else:
                return
            with printing:
                self.echo(line)

        plan = [(str(number), batch) for number, (_, _, batch) in enumerate(DEMO_LINE, start=1)]
        for number, (_, product, _) in enumerate(DEMO_LINE, start=1):
            self.report.attestations[str(number)] = product
        self.report.outcomes.extend(self.front.provision(plan, show))
        passed = sum(1 for outcome in self.report.outcomes if outcome.passed)
        if passed != DEMO_BOARDS:
            raise StationError(f"only {passed} of {DEMO_BOARDS} boards passed")
        return f"{passed} of {DEMO_BOARDS} boards PASS (4 attestation flows, slots in parallel)"

    def print_labels(self) -> str:
        labels = self.station().labels()
        printed = 0
        for batch in sorted({batch for _, _, batch in DEMO_LINE}):
            target = self.directory / "labels" / f"{batch}-labels.pdf"
            outcome = labels.print_batch(batch, printer=f"file:{target}", operator=QA)
            printed += len(outcome.registration_ids)
            self.report.artifacts["labels"] = target.parent
        return f"{printed} identity labels printed to PDF (QR + Data Matrix)"

    def enrollment_groups(self) -> str:
        assert self.dps is not None
        qa = self.station()
        written = []
        for batch in sorted({batch for _, _, batch in DEMO_LINE}):
            written += qa.batches().push_groups(batch, operator=QA)
        # DPS generated the symmetric group's keys; the admin moves the primary key into the HSM
        client = DeviceProvisioningClient.from_connection_string(
            self.dps.connection_string(), connection_verify=str(self.dps.ca_bundle)
        )
        sym_group = next(group for group in written if group.endswith("-sym"))
        keys = client.enrollment_group.get_attestation_mechanism(sym_group)["symmetricKey"]
        self.station().ca().import_group_key(GROUP_KEY_URI, keys["primaryKey"], operator=ADMIN)
        return (
            f"DPS groups {', '.join(written)}; the symmetric group key DPS generated is now a "
            "non-extractable key in the HSM"
        )

    def seal_and_export(self) -> str:
        qa = self.station()
        root = (self.directory / "data" / "ca" / "root.pem").read_bytes()
        files = 0
        for batch in sorted({batch for _, _, batch in DEMO_LINE}):
            self.front.seal(batch)
            result = self.front.export(batch)
            files += len(result.files)
            self.report.artifacts["exports"] = next(iter(result.files.values())).parent
            manifest = next(path for kind, path in result.files.items() if "manifest" in kind)
            check = verify_manifest_bytes(manifest.read_bytes(), qa.manifest_trust(root))
            if not check.ok:
                raise IntegrityError(f"signed manifest of {batch} does not verify: {check}")
        return (
            f"batches sealed; {files} export files; every signed manifest verifies against the root"
        )

    def push(self) -> str:
        pushed = billable = 0
        clean = True
        # symmetric-key boards enroll through their group (created above), not individually
        individual = {batch for _, product, batch in DEMO_LINE if product != "lab-sym"}
        for batch in sorted(individual):
            summary = self.front.push(batch)
            if not summary.complete:
                raise StationError(f"push of {batch} incomplete: {summary}")
            pushed += summary.pushed
            billable += summary.billable_operations
            clean = clean and self.front.reconcile(batch).clean
        if not clean:
            raise StationError("DPS does not hold exactly the recorded enrollments")
        return (
            f"{pushed} individual enrollments in DPS ({billable} billable operations, bulk of "
            "at most 10); reconcile: every device present and equal"
        )

    def power_on(self) -> str:
        boards, dps = self.boards, self.dps
        assert boards is not None and dps is not None

        host, port = dps.port_map

        def boot(index: int) -> PowerOnResult:
            return boards.power_on(
                index, endpoint=dps.host_name, ca_bundle=dps.ca_bundle, port_map=f"{host}:{port}"
            )

        # every board boots at once, as a freshly packed pallet would
        with ThreadPoolExecutor(max_workers=DEMO_BOARDS) as pool:
            results = list(pool.map(boot, sorted(boards.boards)))
        for result in results:
            if result.status != "assigned":
                raise StationError(
                    f"board {result.serial} did not register: {result.error_code} {result.error}"
                )
            self.report.hubs[result.serial] = result.assigned_hub
            self.echo(
                f"    {result.serial}: {result.attestation:<13} -> {result.assigned_hub:<28} "
                f"by {result.client}"
            )
        return f"all {len(results)} boards registered at first power-on and got a hub"

    def verify(self) -> str:
        result = self.station().database().verify()
        if not result.ok:
            raise IntegrityError(f"audit trail inconsistent: {result.first}")
        return (
            f"audit chain and cross-references verified ({result.events} events, "
            f"{result.devices} devices, {result.certificates} certificates)"
        )

    def backup(self) -> str:
        station = self.station()
        target = station.config.backup_dir / "demo-backup.db"
        result = station.database().backup(target, operator=ADMIN)
        self.report.artifacts["backup"] = target
        return f"verified online backup with {result.events} events"


def run_demo(
    directory: Path,
    echo: Echo,
    front: DemoFrontEnd | None = None,
    on_done: Callable[[DemoReport], None] | None = None,
) -> DemoReport:
    """Run every demo step in ``directory`` (wiped first), reporting progress through ``echo``.

    ``front`` runs the operator-facing steps (default: headless, on the services).
    ``on_done`` sees the report when every step is done, while the lab still runs (before a
    GUI front end waits for its window to be closed).
    """
    directory = directory.resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    with ExitStack() as lab:
        demo = _Demo(directory, echo, lab, front or HeadlessFrontEnd())
        lab.callback(demo.close)
        for title, action in (
            ("Initialise the station (config, database, HSM token)", demo.initialise),
            ("Start the local DPS stand-in", demo.start_dps),
            ("Create the intermediate CA in the HSM, signed by a lab root", demo.set_up_ca),
            ("Add operators and open a batch per product", demo.add_people_and_batches),
            ("Create the DPS enrollment groups (X.509 CA, symmetric key)", demo.enrollment_groups),
            ("Start the lab's virtual boards (TPM, secure element, no key)", demo.start_boards),
            ("Discover the boards and bind them to slots by port", demo.bind_slots),
            ("Provision every board", demo.provision),
            ("Print identity labels", demo.print_labels),
            ("Seal, export and verify the signed batch manifests", demo.seal_and_export),
            ("Push the enrollments to DPS and reconcile", demo.push),
            ("Power the boards on: first registration with DPS", demo.power_on),
            ("Verify the tamper-evident audit trail", demo.verify),
            ("Back up the database online", demo.backup),
        ):
            started = time.perf_counter()
            echo(f"▶ {title}")
            detail = action()
            elapsed = time.perf_counter() - started
            demo.report.steps.append((title, elapsed))
            echo(f"  ✔ {detail} ({elapsed:.2f} s)")
        if on_done is not None:
            on_done(demo.report)
        demo.front.finish()
        return demo.report
