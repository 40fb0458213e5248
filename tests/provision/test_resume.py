"""Resume decisions after a kill: keep the certificate that reached the board, void the one that
did not; cancellation between steps; labels printed at PASS."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from station.bootstrap import build_station
from station.config import load_config
from station.domain.provision_events import Resumed, Step, StepPassed
from station.domain.records import CertificateStatus
from station.services.provision import ProvisionRequest
from tests.support.paths import REPO_ROOT
from tests.support.rig import Rig, kill_station_at, split_der


def test_certificate_on_the_board_is_kept_after_akill_station_at(rig: Rig, board_state) -> None:
    (board,) = rig.lab.start(1, "se")
    kill_station_at(rig, board.port, "WO-X509", "passed:write-chain")
    store = rig.station().store()
    (job,) = store.jobs.open()
    assert job.state == "running" and job.step == "write-chain"
    (issued,) = store.certificates.for_device(job.registration_id)
    assert issued.status == CertificateStatus.ISSUED and issued.job_id == job.id
    rig.verify()  # an issued certificate held by an open job is accounted for

    events: list[object] = []
    outcome = rig.run(board.port, "WO-X509", events=events)

    assert outcome.passed and outcome.job_id == job.id
    (resumed,) = [e for e in events if isinstance(e, Resumed)]
    assert resumed.from_step == "write-chain"
    assert f"kept certificate {issued.serial_number}" in resumed.detail
    keygen = [e for e in events if isinstance(e, StepPassed) and e.step is Step.KEYGEN]
    assert "kept" in keygen[0].detail  # no new key: the board keeps the certified one
    (final,) = rig.station().store().certificates.for_device(job.registration_id)
    assert final.serial_number == issued.serial_number
    assert final.status == CertificateStatus.INSTALLED
    rig.verify()


def test_certificate_that_never_reached_the_board_is_voided_after_akill_station_at(
    rig: Rig, board_state
) -> None:
    (board,) = rig.lab.start(1, "nokey")
    kill_station_at(rig, board.port, "WO-NOKEY", "passed:issue")
    events: list[object] = []
    outcome = rig.run(board.port, "WO-NOKEY", events=events)

    assert outcome.passed
    (resumed,) = [e for e in events if isinstance(e, Resumed)]
    assert "voided 1 certificate" in resumed.detail
    certs = rig.station().store().certificates.for_device(outcome.registration_id)
    assert sorted(c.status for c in certs) == [
        CertificateStatus.INSTALLED,
        CertificateStatus.VOIDED,
    ]
    installed = next(c for c in certs if c.status == CertificateStatus.INSTALLED)
    leaf = split_der(board_state(board.port)["cert_chain"].data)[0]
    assert leaf.serial_number == int(installed.serial_number, 16)
    rig.verify()


def test_cancel_stops_between_steps_and_the_board_resumes(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se")
    cancel = threading.Event()

    def emit(event: object) -> None:
        if isinstance(event, StepPassed) and event.step is Step.CSR:
            cancel.set()

    station = rig.station()
    link = station.board_session(board.port, handshake=False)
    outcome = station.provisioning().run(
        link,
        ProvisionRequest(slot="s1", batch="WO-X509", operator="tina"),
        emit=emit,
        cancel=cancel,
    )
    link.close()
    assert not outcome.passed and outcome.code == "provision.cancelled"
    (job,) = station.store().jobs.open()
    assert job.state == "interrupted"
    assert station.store().certificates.count() == 0  # stopped before issuing
    assert rig.run(board.port, "WO-X509").passed
    rig.verify()


def test_label_is_printed_at_pass_when_the_recipe_says_so(rig: Rig, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "templates", templates)
    recipe = (templates / "products" / "lab-sym.toml").read_text()
    recipe = recipe.replace('name = "lab-sym"', 'name = "lab-sym-label"')
    recipe = recipe.replace("lock = true", "lock = false\nauto_print_label = true")
    (templates / "products" / "lab-sym-label.toml").write_text(recipe)
    text = rig.config_file.read_text().replace(
        "[station]\n", f'[station]\ntemplates_dir = "{templates}"\n', 1
    )
    rig.config_file.write_text(text)
    rig.config = load_config(rig.config_file, env={})
    boss = build_station(rig.config, clock=rig.clock)
    boss.batches().open(name="WO-LBL", product="lab-sym-label", size=2, operator="boss")
    boss.close()
    (board,) = rig.lab.start(1, "nokey")
    events: list[object] = []
    outcome = rig.run(board.port, "WO-LBL", events=events)

    assert outcome.passed
    assert [e.step for e in events if isinstance(e, StepPassed)][-1] is Step.LABEL
    assert Step.LOCK not in [e.step for e in events if isinstance(e, StepPassed)]
    labels = rig.station().store().labels.for_device(outcome.registration_id)
    assert len(labels) == 1 and labels[0].kind == "print"
    assert list((tmp_path / "labels").glob("*.pdf"))
