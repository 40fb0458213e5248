"""The QA view over 100,000 recorded devices: lazy paging, scrolling, search, detail."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from station.bootstrap import build_station
from station.config import load_config
from station.domain.manifest import (
    Attestation,
    BoardInfo,
    DpsTarget,
    IdentityManifest,
    SymmetricKeyIdentity,
)
from station.domain.records import DeviceQuery
from station.services.identities import record_identity
from tests.support.gui import WAIT_MS, add_people, gui_config, log_in

DEVICES = 100_000
CHUNK = 5_000
REPO = Path(__file__).resolve().parents[2]


def _manifest(i: int) -> IdentityManifest:
    reg = f"dev-{i:06d}"
    return IdentityManifest(
        registration_id=reg,
        device_id=reg,
        attestation=Attestation.SYMMETRIC_KEY,
        board=BoardInfo(
            serial=f"SN{i:06d}", model="M1", hardware_revision="B", firmware_version="1"
        ),
        product="thermo",
        batch=f"WO-{i // 10_000:02d}",
        dps=DpsTarget(global_endpoint="global.azure-devices-provisioning.net", id_scope="0ne1"),
        station="seed",
        operator="seed",
        provisioned_at="2026-01-02T03:04:05.000000Z",
        symmetric_key=SymmetricKeyIdentity(group_key="group-1"),
    )


@pytest.fixture(scope="session")
def seeded_db(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of 100,000 devices recorded with ``record_identity`` (audit chain and all).

    Seeding takes about two minutes on this machine, so the file is kept in pytest's cache,
    keyed by the store's migrations and this module: a schema change seeds it anew.
    """
    key = hashlib.sha256(
        (REPO / "station/adapters/store/migrations.py").read_bytes() + Path(__file__).read_bytes()
    ).hexdigest()[:16]
    cached = pytestconfig.cache.mkdir(f"gui-100k-{key}") / "station.db"
    if cached.exists():
        return cached
    work = tmp_path_factory.mktemp("seed")
    (work / "station.toml").write_text(f'[station]\ndata_dir = "{work / "data"}"\n')
    station = build_station(load_config(work / "station.toml", env={}))
    try:
        station.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
        add_people(station)
        store = station.store()
        for start in range(0, DEVICES, CHUNK):
            with store:
                for i in range(start, start + CHUNK):
                    record_identity(
                        store, _manifest(i), clock=station.clock, station="seed", operator="seed"
                    )
        assert store.devices.count(DeviceQuery()) == DEVICES
    finally:
        station.close()
    shutil.copyfile(work / "data" / "station.db", cached.with_suffix(".tmp"))
    cached.with_suffix(".tmp").rename(cached)
    return cached


# Seeding 100,000 audited devices (a cold cache, as on CI) takes about two minutes on two cores
# and counts against the test's time-out: give the seed room, not the view.
@pytest.mark.timeout(600)
def test_qa_view_pages_lazily_and_finds_one_device_among_100000(
    qtbot, tmp_path, seeded_db, clock, window_of
):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(seeded_db, data / "station.db")
    (tmp_path / "s.toml").write_text(f'[station]\nid = "qa"\ndata_dir = "{data}"\n')
    station = build_station(gui_config(load_config(tmp_path / "s.toml", env={})), clock=clock)
    window = window_of(station)
    log_in(qtbot, window, "quentin")
    window.show_view("QA")
    qa = window.qa
    model = qa.model
    qtbot.waitUntil(lambda: model.total == DEVICES and model.rowCount() > 0, timeout=WAIT_MS)
    first_page = model.rowCount()
    assert first_page < DEVICES  # lazy: only a page is loaded, not 100,000 rows
    assert f"{DEVICES} device(s)" in qa.status.text()

    qa.table.scrollToBottom()  # the view asks for more (canFetchMore/fetchMore)
    qtbot.waitUntil(lambda: model.rowCount() > first_page, timeout=WAIT_MS)
    assert model.row(first_page).registration_id != model.row(0).registration_id

    qa.search.setText("SN077777")
    qtbot.keyClick(qa.search, "\r")
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=WAIT_MS)
    assert model.row(0).registration_id == "dev-077777"
    qtbot.waitUntil(lambda: qa.current is not None, timeout=WAIT_MS)
    assert "dev-077777" in qa.title.text()
    assert "WO-07" in qa.detail.toPlainText()
    assert "record" in qa.detail.toPlainText()  # the audit events of the device are listed

    qa.search.setText("dev-012345")
    qa.search_button.click()
    qtbot.waitUntil(lambda: qa.current is not None and "012345" in qa.title.text(), timeout=WAIT_MS)

    qa.search.setText("nothing-like-this")
    qa.search_button.click()
    qtbot.waitUntil(lambda: qa.status.text() == "No devices match.", timeout=WAIT_MS)
    assert model.rowCount() == 0
    station.close()
