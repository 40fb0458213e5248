"""A batch is sealed, pushed to the local DPS and reconciled from the batches view."""

from __future__ import annotations

from types import MappingProxyType

from station.bootstrap import Station
from station.domain.enrollments import CREDENTIAL_POLICY_FIELD
from station.domain.permissions import Permission
from station.domain.pushes import (
    ReconcileItem,
    ReconcileReport,
    ReconcileStatus,
    ReconcileSubject,
)
from station.domain.records import Role
from station.gui.batches_view import BatchesView
from station.services import authz
from tests.support.cloud import (  # noqa: F401 - fixtures
    client_limits,
    cloud,
    cloud_config_file,
    dps_ids,
    dps_limits,
    dps_options,
    fill_batch,
    pki,
)
from tests.support.gui import WAIT_MS, add_people, gui_config, log_in


def test_qa_seals_pushes_and_reconciles_a_batch_from_the_gui(
    qtbot,
    cloud,  # noqa: F811
    dps,
    fill_batch,  # noqa: F811
    window_of,
):
    ids = fill_batch(cloud, "WO-G", 23)
    add_people(cloud)
    station = Station(config=gui_config(cloud.config), clock=cloud.clock)
    window = window_of(station)
    log_in(qtbot, window, "quentin")
    window.show_view("Batches")
    view = window.batches
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=WAIT_MS)
    assert view.table.item(0, 0).text() == "WO-G"
    assert view.table.item(0, 3).text() == "23"

    assert not view.push_button.isEnabled()  # nothing selected yet
    view.select("WO-G")
    # an open batch can be sealed, not exported or pushed
    assert view.seal_button.isEnabled()
    assert not view.push_button.isEnabled() and not view.export_button.isEnabled()
    assert not dps_ids(dps)

    view.seal_button.click()
    qtbot.waitUntil(lambda: "sealed: 23 device(s)" in view.message.text(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: view.table.item(0, 2).text() == "sealed", timeout=WAIT_MS)

    view.select("WO-G")
    view.push_button.click()
    qtbot.waitUntil(lambda: "pushed." in view.message.text(), timeout=WAIT_MS)
    assert sorted(dps_ids(dps)) == sorted(ids)
    assert view.progress.value() == 23 and view.progress.maximum() == 23
    results = view.results.toPlainText()
    assert "Pushed 23 of 23; conflicts 0; failed 0; billable operations 3" in results
    qtbot.waitUntil(lambda: view.table.item(0, 2).text() == "pushed", timeout=WAIT_MS)

    view.select("WO-G")
    view.reconcile_button.click()
    qtbot.waitUntil(lambda: view.message.text() == "Clean.", timeout=WAIT_MS)
    assert all(line.endswith("equal") for line in view.results.toPlainText().splitlines()[1:])
    station.close()


def test_reconcile_names_group_lines_and_says_what_to_do_about_a_missing_policy(
    qtbot, lab_station: Station
):
    view = BatchesView(lab_station)
    qtbot.addWidget(view)
    report = ReconcileReport(
        batch="WO-P",
        items=(
            ReconcileItem("dev-1", ReconcileStatus.DIFFERENT, (CREDENTIAL_POLICY_FIELD,)),
            ReconcileItem(
                "lab-opcert",
                ReconcileStatus.DIFFERENT,
                (CREDENTIAL_POLICY_FIELD,),
                ReconcileSubject.GROUP,
            ),
        ),
        credential_policy="lab-policy",
    )
    with qtbot.waitSignal(view.finished, timeout=WAIT_MS):
        view._reconciled(report)
    lines = view.results.toPlainText().splitlines()
    assert lines[1] == "  dev-1: different (credentialPolicyName)"
    assert lines[2] == "  enrollment group lab-opcert: different (credentialPolicyName)"
    assert lines[-1] == report.policy_advice and "lab-policy" in lines[-1]
    assert view.message.text() == "Differences found."


def _enabled(view: BatchesView) -> set[str]:
    buttons = {
        "open": view.open_button,
        "seal": view.seal_button,
        "void": view.void_button,
        "export": view.export_button,
        "push": view.push_button,
        "reconcile": view.reconcile_button,
    }
    return {name for name, button in buttons.items() if button.isEnabled()}


def test_the_buttons_follow_the_role_and_the_batch_state(qtbot, plain_station, monkeypatch):
    plain_station.batches().open(name="WO-R", product="lab-sym", size=5, operator="boss")
    view = BatchesView(plain_station)
    qtbot.addWidget(view)
    view.refresh()
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=WAIT_MS)
    view.select("WO-R")
    expected_open = {
        None: set(),  # locked: nobody acts
        Role.TECHNICIAN: {"void"},  # voiding a job is everyone's; the batch is QA's
        Role.QA: {"open", "seal", "void"},
        Role.ADMIN: {"open", "seal", "void"},
    }
    for role, expected in expected_open.items():
        view.set_role(role)
        assert _enabled(view) == expected, role

    plain_station.batches().seal("WO-R", operator="boss")
    view.refresh()
    qtbot.waitUntil(lambda: view.table.item(0, 2).text() == "sealed", timeout=WAIT_MS)
    view.select("WO-R")
    for role in (Role.QA, Role.ADMIN):
        view.set_role(role)
        assert _enabled(view) == {"open", "export", "push", "reconcile"}
    view.set_role(Role.TECHNICIAN)
    assert _enabled(view) == set()

    # the view reads the services' table, not a copy of its own: a technician who may push
    # gets the Push button
    table = dict(authz.PERMISSIONS) | {Permission.PUSH_BATCH: frozenset(Role)}
    monkeypatch.setattr(authz, "PERMISSIONS", MappingProxyType(table))
    view.set_role(Role.TECHNICIAN)
    assert _enabled(view) == {"push"}
