import pytest

from station.domain.errors import (
    NotFoundError,
    PermissionDeniedError,
    TransitionError,
    ValidationError,
)
from station.domain.records import Role
from station.domain.states import BatchStatus, check_batch_transition
from station.services.identities import record_identity, void_identity


def test_open_batch_records_it_and_audits(admin_station) -> None:
    batches = admin_station.batches()
    record = batches.open(name="WO-1234", product="lab-tpm", size=3, operator="boss")
    assert (record.name, record.product, record.size, record.status) == (
        "WO-1234",
        "lab-tpm",
        3,
        "open",
    )
    assert [b.name for b in batches.all()] == ["WO-1234"]
    events = admin_station.store().audit.events_for("WO-1234")
    assert [(e.kind, e.payload) for e in events] == [
        ("batch.opened", {"product": "lab-tpm", "size": 3})
    ]


def test_progress_counts_provisioned_and_voided(admin_station, make_manifest) -> None:
    admin_station.batches().open(name="WO-1", product="lab-sym", size=3, operator="boss")
    store = admin_station.store()
    for i in range(2):
        record_identity(
            store,
            make_manifest(f"SN{i}", batch="WO-1"),
            clock=admin_station.clock,
            station="s",
            operator="o",
        )
    void_identity(
        store, "dev-sn0", reason="scrap", clock=admin_station.clock, station="s", operator="o"
    )
    progress = admin_station.batches().progress("WO-1")
    assert (progress.provisioned, progress.voided, progress.remaining) == (1, 1, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"name": "bad name", "product": "lab-tpm", "size": 1}, ValidationError, "invalid"),
        ({"name": "WO-2", "product": "lab-tpm", "size": 0}, ValidationError, "out of range"),
        ({"name": "WO-2", "product": "nope", "size": 5}, NotFoundError, "no product recipe"),
    ],
)
def test_bad_batches_are_refused(admin_station, kwargs, error, fragment) -> None:
    with pytest.raises(error, match=fragment):
        admin_station.batches().open(**kwargs, operator="boss")
    assert admin_station.store().batches.all() == []


def test_duplicate_names_and_roles(admin_station) -> None:
    admin_station.batches().open(name="WO-3", product="lab-tpm", size=1, operator="boss")
    with pytest.raises(ValidationError, match="already exists"):
        admin_station.batches().open(name="WO-3", product="lab-tpm", size=1, operator="boss")
    admin_station.operators().add("tina", Role.TECHNICIAN, operator="boss")
    with pytest.raises(PermissionDeniedError, match="to open a batch you must be"):
        admin_station.batches().open(name="WO-4", product="lab-tpm", size=1, operator="tina")


def test_batch_lifecycle_transitions() -> None:
    assert check_batch_transition(BatchStatus.OPEN, BatchStatus.SEALED) is BatchStatus.SEALED
    assert check_batch_transition(BatchStatus.SEALED, BatchStatus.PUSHED) is BatchStatus.PUSHED
    with pytest.raises(TransitionError):
        check_batch_transition(BatchStatus.SEALED, BatchStatus.OPEN)
    with pytest.raises(TransitionError):
        check_batch_transition(BatchStatus.OPEN, BatchStatus.PUSHED)
