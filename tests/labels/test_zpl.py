"""ZPL: structure, the same payloads as the PDF, and the raw TCP 9100 path against a real socket."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from station.adapters.labels.printers import ZplPrinter, open_printer
from station.adapters.labels.render import LabelRenderer
from station.adapters.labels.zpl import escape_field, render_zpl
from station.domain.errors import LabelError, PrinterOfflineError, PrinterOutOfMediaError
from station.domain.labels.model import LabelData
from station.domain.labels.payloads import build_payload
from tests.support.label_records import symmetric_manifest, tpm_manifest, x509_manifest
from tests.support.labels import decode_page

BARCODE = re.compile(r"\^B([QXC])N[^\^]*\^FH\\\^FD(.*?)\^FS")


def unescape(value: str) -> str:
    return re.sub(
        r"(?:\\[0-9A-F]{2})+",
        lambda m: bytes.fromhex(m.group(0).replace("\\", "")).decode("utf-8"),
        value,
    )


def zpl_payloads(zpl: str) -> list[str]:
    """Barcode field data of a ZPL format, decoded (QR data drops its 'MA,' mode prefix)."""
    found = []
    for command, data in BARCODE.findall(zpl):
        text = unescape(data)
        if command == "Q":
            assert text.startswith("MA,")
            text = text[3:]
        found.append(text)
    return sorted(found)


@pytest.mark.parametrize("template_name", ["device-50x25", "tape-62mm"])
def test_zpl_structure_and_payloads_equal_the_pdf(library, have_pdftoppm, template_name) -> None:
    template = library.get(template_name)
    data = LabelData.from_manifest(symmetric_manifest())
    zpl = render_zpl(template, [data])
    dots_per_mm = template.dpi / 25.4
    assert zpl.startswith("^XA\n") and zpl.rstrip().endswith("^XZ")
    assert zpl.count("^XA") == zpl.count("^XZ") == 1
    assert f"^PW{round(template.width_mm * dots_per_mm)}" in zpl
    assert f"^LL{round(template.height_mm * dots_per_mm)}" in zpl
    assert ("^MNN" in zpl) == (str(template.media) == "continuous")
    for line in zpl.splitlines()[1:-1]:
        assert line.startswith("^"), line  # every line is a command; no stray field data
        if "^FD" in line:
            assert line.endswith("^FS") and line.count("^FD") == 1
    pdf_payloads = decode_page(LabelRenderer().render_pdf(template, [data]), dpi=600)
    expected = sorted(build_payload(b.payload, data, template) for b in template.barcodes)
    assert zpl_payloads(zpl) == pdf_payloads == expected
    # Every character of the registration ID is printed as text too (wrapped lines joined).
    text = "".join(unescape(d) for d in re.findall(r"\^A0N,[^\^]*\^FH\\\^FD(.*?)\^FS", zpl))
    assert data.registration_id in text


def test_field_data_cannot_inject_commands(library) -> None:
    template = library.get("tape-62mm")
    data = LabelData.from_manifest(tpm_manifest(serial="A^XZ~JR\\1"))
    zpl = render_zpl(template, [data])
    assert zpl.count("^XZ") == 1 and "~JR" not in zpl
    assert escape_field("A^XZ~JR\\1") == "A\\5EXZ\\7EJR\\5C1"
    assert "A^XZ~JR\\1" in zpl_payloads(zpl)  # Code 128 of the serial, restored by ^FH


def test_one_format_per_label_and_sheets_are_refused(library) -> None:
    template = library.get("device-50x25")
    labels = [LabelData.from_manifest(m()) for m in (tpm_manifest, x509_manifest)]
    zpl = render_zpl(template, labels)
    assert zpl.count("^XA") == zpl.count("^XZ") == 2
    with pytest.raises(LabelError, match="sheet"):
        render_zpl(library.get("sheet-a4-3x8"), labels)


# ------------------------------------------------------------------------- TCP 9100
@dataclass
class FakeZebra:
    """A TCP server on 127.0.0.1 that answers ~HS like a Zebra and records what it receives."""

    paper_out: bool = False
    paused: bool = False
    answer_status: bool = True
    received: bytearray = field(default_factory=bytearray)
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> int:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(10)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return int(self.server.getsockname()[1])

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    self.received += chunk
                    if self.answer_status and chunk.startswith(b"~HS"):
                        first = f"\x02030,{int(self.paper_out)},{int(self.paused)},1245,000,0,0,0,000,0,0,0\x03\r\n"
                        conn.sendall(
                            first.encode()
                            + b"\x02000,0,0,0,0,2,4,0,00000000,1,000\x03\r\n"
                            + b"\x021234,0\x03\r\n"
                        )
            except OSError:
                pass
        self.done.set()

    def stop(self) -> None:
        self.server.close()
        self.thread.join(timeout=10)


@pytest.fixture
def zebra() -> Iterator[FakeZebra]:
    printer = FakeZebra()
    yield printer
    printer.stop()


def test_zpl_over_tcp_sends_status_query_then_the_label(library, zebra: FakeZebra) -> None:
    port = zebra.start()
    template = library.get("device-50x25")
    data = [LabelData.from_manifest(tpm_manifest())]
    printer = open_printer(f"zpl://127.0.0.1:{port}")
    assert isinstance(printer, ZplPrinter)
    receipt = printer.print_labels(template, data, title="t")
    assert zebra.done.wait(10)
    expected = render_zpl(template, data).encode()
    assert bytes(zebra.received) == b"~HS" + expected
    assert receipt.printer == f"zpl://127.0.0.1:{port}" and receipt.labels == 1


@pytest.mark.parametrize(
    ("paper_out", "paused", "error"),
    [(True, False, PrinterOutOfMediaError), (False, True, PrinterOfflineError)],
)
def test_zebra_status_errors_stop_the_job(library, zebra, paper_out, paused, error) -> None:
    zebra.paper_out, zebra.paused = paper_out, paused
    port = zebra.start()
    with pytest.raises(error):
        ZplPrinter("127.0.0.1", port).print_labels(
            library.get("device-50x25"), [LabelData.from_manifest(tpm_manifest())], title="t"
        )
    assert zebra.done.wait(10)
    assert bytes(zebra.received) == b"~HS"  # no label data was sent


def test_silent_or_absent_printer_is_offline(library, zebra: FakeZebra) -> None:
    zebra.answer_status = False
    port = zebra.start()
    template = library.get("device-50x25")
    data = [LabelData.from_manifest(tpm_manifest())]
    with pytest.raises(PrinterOfflineError, match="did not answer"):
        ZplPrinter("127.0.0.1", port, timeout_s=0.5).print_labels(template, data, title="t")
    closed = socket.create_server(("127.0.0.1", 0))
    free_port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(PrinterOfflineError, match="offline"):
        ZplPrinter("127.0.0.1", free_port, timeout_s=2).print_labels(template, data, title="t")


def test_out_of_labels_zebra_is_reported_and_not_counted(store, make_service, zebra) -> None:
    from tests.support.labels import seed

    rid = seed(store)[0]
    zebra.paper_out = True
    port = zebra.start()
    with pytest.raises(PrinterOutOfMediaError, match="out of labels") as caught:
        make_service().print_device(rid, printer=f"zpl://127.0.0.1:{port}", operator="tina")
    assert "Load a new roll" in caught.value.remedy
    assert store.labels.for_device(rid) == []
    [event] = [e for e in store.audit.events() if e.kind == "label.print_failed"]
    assert event.payload["error"] == "printer.out_of_media"
