"""Every acting service method refuses an operator whose role lacks the permission, first.

``ALLOWED`` below is the reviewed allow-list: each public service method that takes
``operator=`` and the roles that may call it (or why it is open). The enumeration is by
introspection, so a new acting method fails :func:`test_every_acting_method_is_in_the_allow_list`
until it is added here with its roles, and the behavioural test then holds it to them: a refused
call happens before anything (no audit event, no row, no file) and names the role needed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import pkgutil
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import station.services
from station.bootstrap import Station
from station.domain.errors import PermissionDeniedError
from station.domain.records import Role
from station.services.authz import PERMISSIONS, Permission
from station.services.fleet import FleetViews
from station.services.provision import ProvisionOutcome, ProvisionRequest

ADMIN = frozenset({Role.ADMIN})
QA_OR_ADMIN = frozenset({Role.QA, Role.ADMIN})
ANY_ROLE = frozenset(Role)  # every logged-in operator; nobody, unknown or disabled is refused
#: one operator per role in the test station ('boss' is the admin 'initialize' creates)
BY_ROLE = {Role.TECHNICIAN: "tina", Role.QA: "quinn", Role.ADMIN: "boss"}


@dataclass(frozen=True)
class Open:
    """A method with no role check of its own, and why that is right."""

    reason: str


ALLOWED: dict[str, frozenset[Role] | Open] = {
    # batches: what leaves the station is QA's or the admin's call
    "BatchService.open": QA_OR_ADMIN,
    "BatchService.seal": QA_OR_ADMIN,
    "BatchService.export": QA_OR_ADMIN,
    "BatchService.push_groups": QA_OR_ADMIN,
    "BatchService.push": QA_OR_ADMIN,
    "BatchService.reconcile": QA_OR_ADMIN,
    "BatchService.dps_group_key": ADMIN,
    # the CA: admins, except the line's own issuance
    "CaService.init": ADMIN,
    "CaService.import_chain": ADMIN,
    "CaService.lab_root": ADMIN,
    "CaService.import_group_key": ADMIN,
    "CaService.issue": ANY_ROLE,  # the provisioning run issues for whoever provisions
    "CaService.issue_as_admin": ADMIN,
    "CaService.certify_manifest_key": ADMIN,
    "CaService.sign_issuing_csr": ADMIN,
    "CaService.verify_code": ADMIN,
    "DatabaseService.initialize": Open(
        "creates the first admin: no operator exists before it (a no-op once initialised)"
    ),
    "DatabaseService.backup": Open(
        "a verified read-only copy for scheduled jobs; whoever can run it can read the file"
    ),
    "FleetViews.set_quota": ADMIN,
    "LabelService.print_device": ANY_ROLE,
    "LabelService.print_at_pass": ANY_ROLE,
    "LabelService.print_batch": ANY_ROLE,
    "LabelService.verify": ANY_ROLE,
    "LabelService.reprint": QA_OR_ADMIN,
    "ScanClassifier.classify": Open(
        "routes a scan: a badge logs in, a label goes to LabelService.verify, which checks"
    ),
    "LineModel.plugged": Open(
        "the line's state machine, no store: its order is run by ProvisionService.run, which checks"
    ),
    "LineModel.logged_in": Open("the same state machine: starts the boards that waited, as above"),
    "OperatorService.add": ADMIN,
    "OperatorService.require_admin": ADMIN,
    "OperatorService.set_pin": ADMIN,
    "OperatorService.set_badge": ADMIN,
    "OperatorService.set_enabled": ADMIN,
    "ProvisionService.check_operator": ANY_ROLE,
    "ProvisionService.void_job": ANY_ROLE,
    "ProvisionService.run": ANY_ROLE,  # the request's operator; a rework reason needs QA
    "TpmTrustService.import_path": ADMIN,  # a trust anchor decides which TPMs the line accepts
}


def _service_classes() -> dict[str, type]:
    """Every concrete class defined in station.services (protocols are interfaces, not services)."""
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(station.services.__path__, "station.services."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and not getattr(value, "_is_protocol", False)
            ):
                found[name] = value
    return found


#: values that carry an operator but were checked by whoever made them: a classified scan
#: (ScanClassifier.classify) and a run's step context (ProvisionService.run)
CHECKED_UPSTREAM = {"Scan", "StepContext"}


def _acting_methods(classes: dict[str, type]) -> set[str]:
    """Public methods taking ``operator=``, or a value that names the operator who acts."""
    carriers = {
        name
        for name, cls in classes.items()
        if dataclasses.is_dataclass(cls) and "operator" in {f.name for f in dataclasses.fields(cls)}
    } - CHECKED_UPSTREAM
    acting = set()
    for name, cls in classes.items():
        for method, function in inspect.getmembers(cls, inspect.isfunction):
            parameters = inspect.signature(function).parameters.values()
            annotations = {str(p.annotation) for p in parameters}
            if not method.startswith("_") and (
                "operator" in {p.name for p in parameters} or annotations & carriers
            ):
                acting.add(f"{name}.{method}")
    return acting


#: line classes the window builds over the services the root hands out
BUILT_BY_THE_WINDOW = {"ScanClassifier", "LineModel"}


def _reachable_from_station(classes: dict[str, type]) -> set[str]:
    """The service classes the composition root's Station hands out (by return annotation)."""
    names: set[str] = set()
    for name, function in inspect.getmembers(Station, inspect.isfunction):
        annotation = str(function.__annotations__.get("return", ""))
        if not name.startswith("_"):
            names |= {token for token in re.findall(r"\w+", annotation) if token in classes}
    return names


def test_every_acting_method_is_in_the_allow_list() -> None:
    classes = _service_classes()
    acting = _acting_methods(classes)
    reachable = _reachable_from_station(classes)
    # the enumeration sees the composition root's services, not just what this file names
    assert {"CaService", "BatchService", "LabelService", "OperatorService"} <= reachable
    assert {m.split(".")[0] for m in acting} - reachable <= BUILT_BY_THE_WINDOW
    assert acting == set(ALLOWED), "add the method to ALLOWED, with its roles, and a call below"
    assert set(CALLS) == {m for m, rule in ALLOWED.items() if not isinstance(rule, Open)}


# ---------------------------------------------------------------------------- the calls
# Each call is made with arguments a permitted operator would get an ordinary error for (nothing
# to seal, no such device, no CA yet); the refusal must come before any of that.
Call = Callable[[Station, str, Path], object]


class _Ledger:
    """The fleet ledger as far as set_quota goes: records that it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def set_quota(self, batch: str, limit: int) -> None:
        self.calls.append((batch, limit))


def _fleet(s: Station) -> FleetViews:
    return FleetViews(_Ledger(), s.store, station_id=s.config.station.id)  # type: ignore[arg-type]


_NO_KEY = "pkcs11:token=no-such-token;object=x"
_NO_BOARD: Any = None  # a refused run never reaches its board
CALLS: dict[str, Call] = {
    "BatchService.open": lambda s, op, t: s.batches().open(
        name="bad name!", product="no-such", size=0, operator=op
    ),
    "BatchService.seal": lambda s, op, t: s.batches().seal("WO-1", operator=op),
    "BatchService.export": lambda s, op, t: s.batches().export("WO-1", out=t, operator=op),
    "BatchService.push_groups": lambda s, op, t: s.batches().push_groups("WO-1", operator=op),
    "BatchService.push": lambda s, op, t: s.batches().push("WO-1", operator=op),
    "BatchService.reconcile": lambda s, op, t: s.batches().reconcile("WO-1", operator=op),
    "BatchService.dps_group_key": lambda s, op, t: s.batches().dps_group_key("g", operator=op),
    "CaService.init": lambda s, op, t: s.ca().init(_NO_KEY, common_name="CA", operator=op),
    "CaService.import_chain": lambda s, op, t: s.ca().import_chain(b"x", b"x", operator=op),
    "CaService.lab_root": lambda s, op, t: s.ca().lab_root(operator=op),
    "CaService.import_group_key": lambda s, op, t: s.ca().import_group_key(
        _NO_KEY, "c2hvcnQ=", operator=op
    ),
    "CaService.issue": lambda s, op, t: s.ca().issue(b"x", "dev-1", operator=op),
    "CaService.issue_as_admin": lambda s, op, t: s.ca().issue_as_admin(b"x", "dev-1", operator=op),
    "CaService.certify_manifest_key": lambda s, op, t: s.ca().certify_manifest_key(operator=op),
    "CaService.sign_issuing_csr": lambda s, op, t: s.ca().sign_issuing_csr(
        b"x", root_key_uri=_NO_KEY, operator=op
    ),
    "CaService.verify_code": lambda s, op, t: s.ca().verify_code("ABC", operator=op),
    "FleetViews.set_quota": lambda s, op, t: _fleet(s).set_quota("WO-1", 5, operator=op),
    "LabelService.print_device": lambda s, op, t: s.labels().print_device("nope", operator=op),
    "LabelService.print_at_pass": lambda s, op, t: s.labels().print_at_pass("nope", operator=op),
    "LabelService.print_batch": lambda s, op, t: s.labels().print_batch("WO-1", operator=op),
    "LabelService.verify": lambda s, op, t: s.labels().verify("garbage", operator=op),
    "LabelService.reprint": lambda s, op, t: s.labels().reprint("nope", reason="r", operator=op),
    "OperatorService.add": lambda s, op, t: s.operators().add("bad name!", Role.QA, operator=op),
    "OperatorService.require_admin": lambda s, op, t: s.operators().require_admin(operator=op),
    "OperatorService.set_pin": lambda s, op, t: s.operators().set_pin("x", "1", operator=op),
    "OperatorService.set_badge": lambda s, op, t: s.operators().set_badge("x", "", operator=op),
    "OperatorService.set_enabled": lambda s, op, t: s.operators().set_enabled(
        "tina", False, operator=op
    ),
    "ProvisionService.check_operator": lambda s, op, t: s.provisioning().check_operator(op),
    "ProvisionService.void_job": lambda s, op, t: s.provisioning().void_job(999, "", operator=op),
    "TpmTrustService.import_path": lambda s, op, t: s.tpm_trust().import_path(t, operator=op),
    "ProvisionService.run": lambda s, op, t: s.provisioning().run(
        _NO_BOARD, ProvisionRequest(slot="1", batch="WO-1", operator=op)
    ),
}


@dataclass(frozen=True)
class Snapshot:
    """Every row of the database (the audit events apart) and every other file of the station."""

    rows: list[str]
    events: list[str]
    files: dict[str, str]


def _snapshot(station: Station) -> Snapshot:
    with sqlite3.connect(f"file:{station.config.database_path}?mode=ro", uri=True) as db:
        rows = list(db.iterdump())
    files = {
        str(path.relative_to(station.config.data_dir)): hashlib.sha256(
            path.read_bytes()
        ).hexdigest()
        for path in sorted(station.config.data_dir.rglob("*"))
        if path.is_file() and not path.name.startswith(station.config.database_path.name)
    }
    # the audit events, and the chain head that moves with them
    events = [
        row
        for row in rows
        if row.startswith(('INSERT INTO "events"', "INSERT INTO \"meta\" VALUES('audit_head'"))
    ]
    return Snapshot([row for row in rows if row not in events], events, files)


#: A refused provisioning run is an outcome, not an exception (a slot reports it like any other
#: failure), and the refused attempt is recorded as this audit event: nothing else is written.
REFUSAL_RECORDED = {"ProvisionService.run": "job.failed"}


@pytest.fixture
def staffed(admin_station: Station) -> Iterator[Station]:
    """An initialised station with one operator per role and one disabled technician."""
    operators = admin_station.operators()
    operators.add("tina", Role.TECHNICIAN, operator="boss")
    operators.add("quinn", Role.QA, operator="boss")
    operators.add("gone", Role.ADMIN, operator="boss")
    operators.set_enabled("gone", False, operator="boss")
    yield admin_station


def _refusal(call: Call, station: Station, operator: str, tmp: Path) -> str | None:
    """The refusal's message, or None when the call got past the role check."""
    try:
        result = call(station, operator, tmp)
    except PermissionDeniedError as exc:
        return exc.message
    except Exception:  # any other error is the method's own business, after the check
        return None
    if isinstance(result, ProvisionOutcome) and result.code == "auth.permission_denied":
        return result.detail
    return None


@pytest.mark.parametrize("method", sorted(CALLS))
def test_a_role_without_the_permission_is_refused_before_anything(
    method: str, staffed: Station, tmp_path: Path
) -> None:
    allowed = ALLOWED[method]
    assert not isinstance(allowed, Open)
    call = CALLS[method]
    target = tmp_path / "target"
    refused = [name for role, name in BY_ROLE.items() if role not in allowed]
    for operator in [*refused, "", "nobody-known", "gone"]:
        before = _snapshot(staffed)
        refusal = _refusal(call, staffed, operator, target)
        assert refusal is not None, f"{method} let {operator!r} through"
        after = _snapshot(staffed)
        changed = set(after.rows) ^ set(before.rows)
        assert not changed and after.files == before.files, f"{method}, {operator!r}: {changed}"
        assert not target.exists()
        recorded = [row for row in after.events if row not in before.events]
        if method in REFUSAL_RECORDED:
            (event,) = [row for row in recorded if row.startswith('INSERT INTO "events"')]
            assert REFUSAL_RECORDED[method] in event and "auth.permission_denied" in event
        else:
            assert recorded == [], f"{method} audited something for {operator!r}"
        if operator in refused:
            wanted = " or ".join(sorted(str(role) for role in allowed))
            assert f"you must be {wanted}" in refusal
    for role in sorted(allowed):
        assert _refusal(call, staffed, BY_ROLE[role], target) is None, f"{method} refused {role}"


def test_the_fleet_ledger_is_not_asked_when_the_quota_setter_is_refused(
    staffed: Station,
) -> None:
    views = _fleet(staffed)
    with pytest.raises(PermissionDeniedError):
        views.set_quota("WO-1", 5, operator="quinn")
    assert views._ledger.calls == []  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- the admin guide
GUIDE = Path(__file__).resolve().parents[3] / "docs" / "admin-guide.md"


def _guide_table() -> dict[str, frozenset[str]]:
    """The 'who may do what' table of docs/admin-guide.md: action -> roles."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("<!-- permissions -->", 2)[1]
    table: dict[str, frozenset[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and not set(cells[0]) <= {"-"} and cells[0] != "action":
            table[cells[0]] = frozenset(re.findall(r"`(\w+)`", cells[1]))
    return table


def test_the_admin_guide_role_table_is_the_permission_table() -> None:
    code = {str(p): frozenset(str(r) for r in roles) for p, roles in PERMISSIONS.items()}
    assert _guide_table() == code
    assert set(PERMISSIONS) == set(Permission)
