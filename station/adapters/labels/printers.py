"""Label printers: CUPS by queue name (``lp``), raw ZPL over TCP 9100, and save-to-file.

A printer returns a :class:`~station.domain.labels.reports.PrintReceipt` only once the spooler,
the Zebra or the file system has taken the job; any failure raises a :class:`PrinterError`
subclass so the label service never counts a label that was not printed.

Printer specs (``--printer`` and ``[labels] printer``): ``cups:QUEUE`` or a bare queue name,
``zpl://HOST[:PORT]`` (default port 9100), ``file:PATH`` (``.zpl`` suffix: ZPL, else PDF).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from station.adapters.labels.render import LabelRenderer
from station.adapters.labels.zpl import render_zpl
from station.adapters.outputs import unique_name, write_output
from station.domain.errors import (
    PrinterError,
    PrinterOfflineError,
    PrinterOutOfMediaError,
    UnknownPrinterError,
)
from station.domain.labels.model import LabelData, LabelTemplate
from station.domain.labels.reports import PrintReceipt

ZPL_PORT = 9100
CUPS_TIMEOUT_S = 30.0
ZPL_TIMEOUT_S = 5.0
STX, ETX = b"\x02", b"\x03"


class FilePrinter:
    """Saves the labels to a file: PDF, or ZPL when the path ends in ``.zpl``.

    A path that ends in ``/`` (or is an existing directory) is a folder: each job is saved there
    as ``<job title>.pdf``.
    """

    def __init__(
        self, path: Path, renderer: LabelRenderer | None = None, *, folder: bool = False
    ) -> None:
        self.path = path
        self.folder = folder or path.is_dir()
        self.renderer = renderer or LabelRenderer()

    @property
    def name(self) -> str:
        """The printer spec."""
        return f"file:{self.path}{'/' if self.folder else ''}"

    def print_labels(
        self, template: LabelTemplate, labels: Sequence[LabelData], *, title: str
    ) -> PrintReceipt:
        """Write the file (atomically: a half-written label file never appears).

        In a folder, a job never replaces an earlier one (``-2``, ``-3``... are appended). A
        single file named by the operator is replaced: the CLI checked ``--force`` first.
        """
        target = self.path
        if self.folder:
            target = unique_name(self.path, re.sub(r"[^A-Za-z0-9._-]", "_", title)[:120], ".pdf")
        if target.suffix.lower() == ".zpl":
            content = render_zpl(template, labels).encode("utf-8")
        else:
            content = self.renderer.render_pdf(template, labels, title=title)
        try:
            write_output(target, content, force=not self.folder)
        except OSError as exc:
            raise PrinterError(
                f"cannot write labels to {target}: {exc.strerror}",
                remedy="Choose a writable folder for --out.",
                path=str(target),
            ) from exc
        return PrintReceipt(printer=self.name, labels=len(labels), job=str(target))


class CupsPrinter:
    """A CUPS queue, driven through the ``lpstat`` and ``lp`` commands."""

    def __init__(
        self,
        queue: str,
        renderer: LabelRenderer | None = None,
        *,
        lp: str = "lp",
        lpstat: str = "lpstat",
        timeout_s: float = CUPS_TIMEOUT_S,
    ) -> None:
        self.queue = queue
        self.renderer = renderer or LabelRenderer()
        self.lp = lp
        self.lpstat = lpstat
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        """The printer spec."""
        return f"cups:{self.queue}"

    def print_labels(
        self, template: LabelTemplate, labels: Sequence[LabelData], *, title: str
    ) -> PrintReceipt:
        """Check the queue, then submit the PDF with ``lp``; returns the CUPS request id.

        Raises:
            UnknownPrinterError, PrinterOfflineError, PrinterOutOfMediaError, PrinterError.
        """
        pdf = self.renderer.render_pdf(template, labels, title=title)
        self._check_status()
        with tempfile.TemporaryDirectory(prefix="station-print-") as tmp:
            document = Path(tmp) / "labels.pdf"
            document.write_bytes(pdf)
            output = self._run([self.lp, "-d", self.queue, "-t", title, "-n", "1", str(document)])
        match = re.search(r"request id is (\S+)", output)
        if match is None:
            raise PrinterError(
                f"CUPS did not confirm the job for {self.queue!r}: {output.strip()[:200]}",
                remedy="Check the queue with 'lpstat -p' and print again.",
                printer=self.name,
            )
        return PrintReceipt(printer=self.name, labels=len(labels), job=match.group(1))

    def _check_status(self) -> None:
        status = self._run([self.lpstat, "-l", "-p", self.queue]).lower()
        if "media-empty" in status or "media-needed" in status or "out of" in status:
            raise PrinterOutOfMediaError(
                f"printer {self.queue!r} is out of labels",
                remedy="Load a new roll of labels, then print again.",
                printer=self.name,
            )
        if "disabled" in status or "paused" in status or "offline" in status:
            raise PrinterOfflineError(
                f"printer {self.queue!r} is offline or paused",
                remedy="Switch the printer on, connect it, and resume the queue (cupsenable).",
                printer=self.name,
                status=status.strip()[:200],
            )

    def _run(self, argv: list[str]) -> str:
        tool = shutil.which(argv[0])
        if tool is None:
            raise PrinterError(
                f"the CUPS command {argv[0]!r} is not installed",
                remedy="Install the CUPS client (cups-client) or print to a file or ZPL printer.",
                printer=self.name,
            )
        try:
            done = subprocess.run(
                [tool, *argv[1:]],
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PrinterOfflineError(
                f"CUPS did not answer within {self.timeout_s:.0f} s",
                remedy="Check that the CUPS service is running.",
                printer=self.name,
            ) from exc
        if done.returncode != 0:
            raise self._translate(done.stderr or done.stdout)
        return done.stdout

    def _translate(self, message: str) -> PrinterError:
        text = message.strip()
        lowered = text.lower()
        if "does not exist" in lowered or "invalid destination" in lowered or "unknown" in lowered:
            return UnknownPrinterError(
                f"there is no printer called {self.queue!r}",
                remedy="Check the name with 'lpstat -p' or pick another printer.",
                printer=self.name,
            )
        if "not accepting" in lowered or "unable to connect" in lowered or "refused" in lowered:
            return PrinterOfflineError(
                f"printer {self.queue!r} is not accepting jobs: {text[:200]}",
                remedy="Switch the printer on and enable its queue (cupsaccept, cupsenable).",
                printer=self.name,
            )
        return PrinterError(
            f"printing on {self.queue!r} failed: {text[:200]}",
            remedy="Check the printer and its queue, then print again.",
            printer=self.name,
        )


class ZplPrinter:
    """A Zebra printer on the network: host status (``~HS``) first, then raw ZPL on port 9100."""

    def __init__(self, host: str, port: int = ZPL_PORT, *, timeout_s: float = ZPL_TIMEOUT_S):
        self.host = host
        self.port = port
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        """The printer spec."""
        return f"zpl://{self.host}:{self.port}"

    def print_labels(
        self, template: LabelTemplate, labels: Sequence[LabelData], *, title: str
    ) -> PrintReceipt:
        """Send the labels' ZPL once the printer reports it has media and is not paused.

        Raises:
            PrinterOfflineError, PrinterOutOfMediaError, PrinterError.
        """
        zpl = render_zpl(template, labels).encode("utf-8")
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as conn:
                conn.sendall(b"~HS")
                self._check_status(self._read_status(conn))
                conn.sendall(zpl)
        except TimeoutError as exc:
            raise self._offline("did not answer in time") from exc
        except OSError as exc:
            raise self._offline(exc.strerror or str(exc)) from exc
        return PrintReceipt(printer=self.name, labels=len(labels), job=f"{len(zpl)} bytes")

    def _read_status(self, conn: socket.socket) -> list[list[str]]:
        """Read the three ``<STX>...<ETX>`` strings of a host status reply."""
        buffer = b""
        deadline = time.monotonic() + self.timeout_s
        while buffer.count(ETX) < 3:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._offline("did not answer the status query")
            conn.settimeout(remaining)
            chunk = conn.recv(1024)
            if not chunk:
                raise self._offline("closed the connection during the status query")
            buffer += chunk
        strings = re.findall(rb"\x02([^\x03]*)\x03", buffer)
        return [s.decode("ascii", "replace").split(",") for s in strings]

    def _check_status(self, status: list[list[str]]) -> None:
        first = status[0] if status else []
        if len(first) < 3:
            raise PrinterError(
                f"printer {self.name} sent an unreadable status",
                remedy="Check that the address belongs to a Zebra (ZPL) printer.",
                printer=self.name,
            )
        if first[1].strip() == "1":
            raise PrinterOutOfMediaError(
                f"printer {self.name} is out of labels",
                remedy="Load a new roll of labels, then print again.",
                printer=self.name,
            )
        if first[2].strip() == "1":
            raise PrinterOfflineError(
                f"printer {self.name} is paused",
                remedy="Press PAUSE on the printer to resume it, then print again.",
                printer=self.name,
            )

    def _offline(self, why: str) -> PrinterOfflineError:
        return PrinterOfflineError(
            f"printer {self.name} is offline: {why}",
            remedy="Switch the printer on, check its network cable and address, then retry.",
            printer=self.name,
        )


Printer = FilePrinter | CupsPrinter | ZplPrinter


def open_printer(spec: str, renderer: LabelRenderer | None = None) -> Printer:
    """Build the printer a spec names (see the module docstring).

    Raises:
        UnknownPrinterError: an empty or malformed spec.
    """
    if spec.startswith("zpl://"):
        host, _, port = spec[len("zpl://") :].rstrip("/").partition(":")
        if not host or (port and not port.isdigit()):
            raise UnknownPrinterError(
                f"bad ZPL printer address {spec!r}",
                remedy="Write it as zpl://HOST or zpl://HOST:PORT.",
                printer=spec,
            )
        return ZplPrinter(host, int(port) if port else ZPL_PORT)
    if spec.startswith("file:"):
        where = spec[len("file:") :]
        if not where:
            raise UnknownPrinterError(
                "a file printer needs a path", remedy="Write it as file:PATH.", printer=spec
            )
        return FilePrinter(Path(where).expanduser(), renderer, folder=where.endswith("/"))
    queue = spec.removeprefix("cups:")
    if not queue or any(char.isspace() or char == "/" for char in queue):
        raise UnknownPrinterError(
            f"bad printer name {spec!r}",
            remedy="Name a CUPS queue (cups:NAME), a Zebra (zpl://HOST) or a file (file:PATH).",
            printer=spec,
        )
    return CupsPrinter(queue, renderer)
