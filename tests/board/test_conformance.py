"""``station board conformance``: both reference firmwares conform in every kind, a counterfeit
secure element does not, and the CLI prints a verdict per clause."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.adapters.board.conformance import ConformanceReport, Verdict
from station.adapters.board.conformance_clauses import CLAUSES, run_conformance
from station.adapters.board.transport import SerialTransport
from station.cli.main import main
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoards


def _run(port: str, *, allow_lock: bool = True) -> ConformanceReport:
    transport = SerialTransport(port, 115_200)
    try:
        return run_conformance(transport, allow_lock=allow_lock, timeout_s=2.0)
    finally:
        transport.close()


def _failures(report: ConformanceReport) -> list[str]:
    return [
        f"§{r.clause} {r.title}: {r.detail}" for r in report.results if r.verdict is Verdict.FAIL
    ]


@pytest.mark.parametrize("lab", ["python", "c"], indirect=True)
@pytest.mark.parametrize("kind", ["se", "tpm", "nokey"])
def test_reference_boards_conform_in_every_kind(lab: LabBoards, kind: str) -> None:
    (board,) = lab.start(1, kind)
    report = _run(board.port)
    assert report.passed, _failures(report)
    assert len(report.results) == len(CLAUSES)
    verdicts = {r.title: r.verdict for r in report.results}
    assert verdicts["manufacturing lock"] is Verdict.PASS
    assert verdicts["a retried request is replayed, not applied twice"] is Verdict.PASS
    # the capability clauses apply to the kind that has the capability, and only to it
    expected_pass = {
        "se": {
            "device key generation",
            "operational key (P-384) for DPS-issued certificates",
            "certificate signing request",
            "proof of possession",
        },
        "tpm": {"TPM passthrough and its command checks"},
        "nokey": {"injected private key", "certificate signing request", "proof of possession"},
    }[kind]
    assert {t for t in expected_pass if verdicts[t] is Verdict.PASS} == expected_pass
    assert report.count(Verdict.PASS) >= 28


@pytest.mark.parametrize("lab", ["python", "c"], indirect=True)
def test_a_secure_element_without_p384_skips_the_operational_key_clause(lab: LabBoards) -> None:
    (board,) = lab.start(1, "se", Faults(no_p384=True))
    report = _run(board.port, allow_lock=False)
    assert report.passed, _failures(report)
    verdicts = {r.title: r for r in report.results}
    operational = verdicts["operational key (P-384) for DPS-issued certificates"]
    assert operational.verdict is Verdict.SKIP
    assert "P-384" in operational.detail
    assert verdicts["device key generation"].verdict is Verdict.PASS


@pytest.mark.parametrize("lab", ["c"], indirect=True)
def test_a_counterfeit_secure_element_fails_the_keygen_clause(lab: LabBoards) -> None:
    (board,) = lab.start(1, "se", Faults(stuck_key=True))
    report = _run(board.port, allow_lock=False)
    assert not report.passed
    (failed,) = [r for r in report.results if r.verdict is Verdict.FAIL]
    assert failed.clause == "8 keygen" and "kept the old key" in failed.detail
    lock = next(r for r in report.results if r.clause == "10")
    assert lock.verdict is Verdict.SKIP and "--lock" in lock.detail


@pytest.fixture
def c_board_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabBoards]:
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n[board]\nbaud = 0\n')
    monkeypatch.setenv("STATION_CONFIG", str(config))
    with LabBoards(tmp_path / "data" / "lab", baud=0, firmware="c") as lab:
        yield lab


def test_cli_prints_a_verdict_per_clause(
    c_board_config: LabBoards, capsys: pytest.CaptureFixture[str]
) -> None:
    good, counterfeit = c_board_config.start(1, "se") + c_board_config.start(
        1, "se", Faults(stuck_key=True)
    )
    assert main(["board", "conformance", good.port]) == 0
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if line.startswith("§")]
    assert len(lines) == len(CLAUSES)
    assert any(line.startswith("§5.2") and "PASS" in line for line in lines)
    assert "§10" in text and "SKIP" in text  # no --lock: the board stays unlocked
    assert (
        f"CONFORMS: {len(CLAUSES) - 4} PASS, 0 FAIL, 4 SKIP" in text
    )  # tpm, no-keygen, privkey, lock

    assert main(["board", "conformance", counterfeit.port, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False and report["board"]["serial"] == counterfeit.serial
    failed = [c for c in report["clauses"] if c["verdict"] == "FAIL"]
    assert [c["clause"] for c in failed] == ["8 keygen"]
