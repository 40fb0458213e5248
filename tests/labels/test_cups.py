"""The CUPS path, against fake ``lp`` and ``lpstat`` commands this test writes onto PATH.

No CUPS daemon runs in CI, so these stand-ins reproduce the client's documented outputs: a
request id on success, and the messages for an unknown queue, a disabled queue, a queue that
rejects jobs and a printer reporting ``media-empty``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from station.adapters.labels.printers import CupsPrinter, open_printer
from station.domain.errors import (
    PrinterError,
    PrinterOfflineError,
    PrinterOutOfMediaError,
    UnknownPrinterError,
)
from station.domain.labels.model import LabelData
from station.domain.labels.payloads import build_payload
from tests.support.label_records import tpm_manifest
from tests.support.labels import decode_page

LPSTAT = r"""#!/bin/sh
mode=$(cat "$(dirname "$0")/mode")
queue="$3"
case "$mode" in
  unknown) echo "lpstat: Invalid destination name in list \"$queue\"." >&2; exit 1 ;;
  disabled) printf 'printer %s disabled since Thu 26 Nov 2026 09:00:00 -\n\tPaused\n' "$queue" ;;
  media) printf 'printer %s is idle.  enabled since Thu 26 Nov 2026\n\tAlerts: media-empty-error\n' "$queue" ;;
  *) printf 'printer %s is idle.  enabled since Thu 26 Nov 2026\n' "$queue" ;;
esac
"""

LP = r"""#!/bin/sh
here="$(dirname "$0")"
mode=$(cat "$here/mode")
echo "$@" > "$here/lp-args"
for last; do :; done
if [ "$mode" = rejecting ]; then
  echo "lp: Destination \"$2\" is not accepting jobs." >&2; exit 1
fi
cp "$last" "$here/received.pdf"
echo "request id is $2-42 (1 file(s))"
"""


@pytest.fixture
def cups_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in (("lp", LP), ("lpstat", LPSTAT)):
        script = folder / name
        script.write_text(body, encoding="utf-8")
        script.chmod(0o755)
    (folder / "mode").write_text("ok", encoding="utf-8")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def test_cups_job_is_submitted_and_its_request_id_returned(library, cups_bin, have_pdftoppm):
    template = library.get("device-50x25")
    data = LabelData.from_manifest(tpm_manifest())
    printer = open_printer("cups:QA_Zebra")
    assert isinstance(printer, CupsPrinter) and open_printer("QA_Zebra").name == "cups:QA_Zebra"
    receipt = printer.print_labels(template, [data], title=data.registration_id)
    assert receipt.job == "QA_Zebra-42" and receipt.printer == "cups:QA_Zebra"
    args = (cups_bin / "lp-args").read_text(encoding="utf-8").split()
    assert args[:2] == ["-d", "QA_Zebra"] and args[2:4] == ["-t", data.registration_id]
    received = (cups_bin / "received.pdf").read_bytes()
    assert decode_page(received) == [build_payload(template.barcodes[0].payload, data, template)]


@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("unknown", UnknownPrinterError, "no printer called"),
        ("disabled", PrinterOfflineError, "offline or paused"),
        ("media", PrinterOutOfMediaError, "out of labels"),
        ("rejecting", PrinterOfflineError, "not accepting jobs"),
    ],
)
def test_cups_errors_are_reported_and_nothing_is_printed(
    library, cups_bin: Path, mode: str, error: type[PrinterError], words: str
) -> None:
    (cups_bin / "mode").write_text(mode, encoding="utf-8")
    with pytest.raises(error, match=words) as caught:
        CupsPrinter("QA_Zebra").print_labels(
            library.get("device-50x25"), [LabelData.from_manifest(tpm_manifest())], title="t"
        )
    assert caught.value.remedy
    assert not (cups_bin / "received.pdf").exists()


def test_missing_cups_client_is_a_clear_error(library, tmp_path, monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(PrinterError, match="not installed"):
        CupsPrinter("QA_Zebra").print_labels(
            library.get("device-50x25"), [LabelData.from_manifest(tpm_manifest())], title="t"
        )


@pytest.mark.parametrize("spec", ["", "cups:", "two words", "zpl://", "zpl://host:port"])
def test_malformed_printer_specs_are_unknown_printers(spec: str) -> None:
    with pytest.raises(UnknownPrinterError):
        open_printer(spec)
