"""``station label ...`` and ``station batch report`` end to end, on a real SQLite store."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from station.cli.main import main
from tests.support.labels import decode_page


def run(config_file: Path, *args: str, operator: str = "tina") -> int:
    return main(["--config", str(config_file), "--operator", operator, *args])


def test_print_to_file_then_reprint_rules(config_file, ids, tmp_path, capsys) -> None:
    out = tmp_path / "one.pdf"
    assert run(config_file, "label", "print", ids[0], "--out", str(out)) == 0
    assert "printed 1 label(s) with device-50x25" in capsys.readouterr().out
    assert decode_page(out.read_bytes()) == [ids[0]]

    assert run(config_file, "label", "print", ids[0], "--out", str(out), "--force") == 1
    assert "already has a printed label" in capsys.readouterr().err

    assert run(config_file, "label", "reprint", ids[0], "--out", str(out), "--force") == 1
    err = capsys.readouterr().err
    assert "to reprint a label you must be" in err  # role is checked first: tina is a technician

    assert run(config_file, "label", "reprint", ids[0], operator="quinn") == 1
    assert "a reprint needs a reason" in capsys.readouterr().err

    zpl = tmp_path / "again.zpl"
    args = ("label", "reprint", ids[0], "--reason", "torn", "--out", str(zpl), "--json")
    assert run(config_file, *args, operator="quinn") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "reprint" and result["reprint_number"] == 1
    assert zpl.read_text(encoding="utf-8").startswith("^XA")


def test_batch_print_uses_the_sheet_and_the_default_output_dir(config, config_file, ids, capsys):
    assert run(config_file, "label", "print", "--batch", "WO-4711", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["template"] == "sheet-a4-3x8" and sorted(result["registration_ids"]) == sorted(
        ids
    )
    saved = config.labels_output_dir / "batch-WO-4711.pdf"
    assert result["job"] == str(saved) and saved.read_bytes().startswith(b"%PDF")


def test_print_needs_exactly_one_target(config_file, ids, capsys) -> None:
    assert run(config_file, "label", "print") != 0
    assert run(config_file, "label", "print", ids[0], "--batch", "WO-4711") != 0


def test_verify_reports_match_and_mismatch(config_file, ids, capsys) -> None:
    assert run(config_file, "label", "verify", ids[1], "--json") == 0
    assert json.loads(capsys.readouterr().out)["serial"] == "X-000042"
    assert run(config_file, "label", "verify", ids[0], "--device", ids[1]) == 1
    err = capsys.readouterr().err
    assert "wrong label" in err and "what to do" in err


def test_templates_and_preview(config_file, ids, tmp_path, capsys) -> None:
    assert run(config_file, "label", "templates", "--json") == 0
    names = {t["name"] for t in json.loads(capsys.readouterr().out)}
    assert names == {"device-50x25", "tape-62mm", "sheet-a4-3x8"}
    png = tmp_path / "p.png"
    assert run(config_file, "label", "preview", ids[0], "--out", str(png)) == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_batch_report_pdf(config_file, ids, tmp_path, capsys) -> None:
    target = tmp_path / "report.pdf"
    assert run(config_file, "batch", "report", "WO-4711", "--out", str(target), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["devices"] == 3 and summary["yield_percent"] == 100.0
    text = subprocess.run(
        ["pdftotext", "-layout", str(target), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Batch report: WO-4711" in text and "First-pass yield: 100.0 %" in text
    assert ids[0][:46] in text and ids[0][46:] in text and "X-000042" in text  # IDs wrap at 46
    assert run(config_file, "batch", "report", "WO-0000") == 1
    assert "no batch called" in capsys.readouterr().err
