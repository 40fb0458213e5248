"""The C agent's Cortex-M port (build/agent/cortex-m, ``make agent``) boots in QEMU's mps2-an385
and the station provisions it over the emulated UART: secure-element and injected-key flows."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
import tty
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from station.adapters.board.session import open_session
from station.cli.main import cli
from station.domain.errors import BoardReportedError, LabBoardError
from station.domain.provision_events import Resumed, Step, StepPassed
from station.domain.records import CertificateStatus
from station_lab.boards.faults import Faults
from station_lab.boards.qemu_board import firmware_image, qemu_command
from station_lab.boards.runner import LabBoards
from tests.support.rig import PIN, Rig, kill_station_at, openssl_verify, split_der

_PTY_PREFIX = b"char device redirected to "


class Console:
    """The boot-test firmware's UART on its pty: write bytes, wait for text (with a deadline)."""

    def __init__(self, port: str) -> None:
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.seen = b""

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, text: bytes, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {text!r}; got {self.seen!r}"
            ready, _, _ = select.select([self.fd], [], [], min(remaining, 0.5))
            if ready:
                self.seen += os.read(self.fd, 4096)
        self.seen = self.seen[self.seen.index(text) + len(text) :]

    def close(self) -> None:
        os.close(self.fd)


def _boot_hello(flash_dir: Path) -> tuple[subprocess.Popen[bytes], Console]:
    image = firmware_image().parent / "hello.elf"
    qemu = subprocess.Popen(
        qemu_command(image), cwd=flash_dir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert qemu.stdout is not None
    line = qemu.stdout.readline()
    assert line.startswith(_PTY_PREFIX), line
    return qemu, Console(line[len(_PTY_PREFIX) :].split()[0].decode())


def test_boot_firmware_echoes_resets_and_keeps_its_flash_across_qemu_runs(
    tmp_path: Path,
) -> None:
    qemu, console = _boot_hello(tmp_path)
    try:
        # boot 1 spoke before anyone listened; the receive interrupt echoes, 'r' resets the chip
        console.send(b"x")
        console.expect(b"[x]")
        console.send(b"r")
        console.expect(b"[r]hello from mps2-an385, boot 2\n")
        console.send(b"q")
        console.expect(b"bye\n")
        console.send(b"!")
        assert qemu.wait(timeout=20) == 0  # the firmware ended QEMU through semihosting
    finally:
        console.close()
        qemu.kill()
        qemu.wait()
    assert (tmp_path / "flash.bin").stat().st_size == 16 * 8192
    qemu, console = _boot_hello(tmp_path)  # a new QEMU: the flash file is the board's memory
    try:
        console.send(b"r")
        console.expect(b"hello from mps2-an385, boot 4\n")
    finally:
        console.close()
        qemu.kill()
        qemu.wait()


def _cli(rig: Rig, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["--config", str(rig.config_file), "--operator", "tina", *args],
        env={"STATION_PKCS11_PIN": PIN},
        catch_exceptions=False,
    )
    return result.exit_code, result.output


def test_secure_element_board_is_discovered_and_provisioned_through_the_cli(
    rig: Rig, qemu_lab: LabBoards, board_state, root_pem: bytes, tmp_path: Path
) -> None:
    (board,) = qemu_lab.start(1, "se")

    code, output = _cli(rig, "board", "list", "--json")
    assert code == 0, output
    listed = [entry for entry in json.loads(output) if entry["device"] == board.port]
    assert len(listed) == 1 and listed[0]["location"] == "lab-1", output

    code, output = _cli(rig, "provision", "--batch", "WO-X509", "--port", board.port)
    assert code == 0, output
    assert output.splitlines()[-1] == "1 passed, 0 failed"

    state = board_state(board.port)
    hello = state["hello"]
    assert (hello.model, hello.hardware, hello.serial) == ("LAB-SE-CM3", "mps2-an385", board.serial)
    assert hello.locked and "se" in hello.capabilities
    leaf = split_der(state["cert_chain"].data)[0]
    (cn,) = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert cn.value == f"lab-{board.serial.lower()}"
    openssl_verify(tmp_path, root_pem, state["cert_chain"].data)
    record = rig.station().store().devices.get(f"lab-{board.serial.lower()}")
    assert record is not None
    manifest = record.manifest()
    assert manifest.x509 is not None and manifest.x509.key_origin == "secure-element"
    # the key generated in the emulated chip signs for the certificate the station issued
    session = open_session(board.port, timeout_s=5.0, slow_timeout_s=60.0)
    try:
        signature = session.sign(b"station nonce")
    finally:
        session.close()
    public = leaf.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, b"station nonce", ec.ECDSA(hashes.SHA256()))
    rig.verify()


def test_injected_key_board_reaches_pass_and_keeps_it_across_a_power_cycle(
    rig: Rig, qemu_lab: LabBoards, board_state, root_pem: bytes, tmp_path: Path
) -> None:
    (board,) = qemu_lab.start(1, "nokey")
    outcome = rig.run(board.port, "WO-NOKEY")
    assert outcome.passed, outcome

    with pytest.raises(LabBoardError, match="inside its flash file"):
        qemu_lab.device_key_file(1)  # no key file to clone: the key is a flash record

    # unplug (QEMU killed) and plug back: a new emulator, the same flash file
    qemu_lab.unplug(1)
    board = qemu_lab.replug(1)
    state = board_state(board.port)
    assert state["hello"].model == "LAB-NOKEY-CM3" and state["hello"].locked
    assert state["privkey"] is not None and state["privkey"].data is None  # a digest only
    chain = state["cert_chain"].data
    openssl_verify(tmp_path, root_pem, chain)
    device = rig.station().store().devices.get(outcome.registration_id)
    assert device is not None
    recorded = device.manifest()
    assert recorded.x509 is not None and recorded.x509.key_origin == "injected"
    assert split_der(chain)[0] == x509.load_pem_x509_certificate(
        recorded.x509.certificate_pem.encode()
    )
    # the locked board refuses a new key
    session = open_session(board.port, timeout_s=5.0, slow_timeout_s=60.0)
    try:
        with pytest.raises(BoardReportedError, match="refused 'write': locked"):
            session.write("privkey", b"\x30\x00")
    finally:
        session.close()
    rig.verify()


def test_qemu_lab_refuses_what_the_emulated_board_cannot_be(tmp_path: Path) -> None:
    lab = LabBoards(tmp_path / "lab", baud=0, firmware="qemu")
    with pytest.raises(LabBoardError, match="cannot be of kind tpm"):
        lab.start(1, "tpm")
    with pytest.raises(LabBoardError, match="cannot inject flip"):
        lab.start(1, "se", Faults(flip=0.01))
    with pytest.raises(LabBoardError, match="cannot inject stuck_key"):
        lab.start(1, "se", Faults(stuck_key=True))
    assert lab.boards == {}


@pytest.mark.parametrize(
    ("batch", "kind", "step"),
    [
        ("WO-X509", "se", Step.KEYGEN),
        ("WO-X509", "se", Step.WRITE_CHAIN),
        ("WO-NOKEY", "nokey", Step.WRITE_KEY),
        ("WO-NOKEY", "nokey", Step.WRITE_DPS),
    ],
)
def test_unplugged_after_a_step_the_board_resumes_to_pass_without_duplicates(
    rig: Rig, qemu_lab: LabBoards, board_state, batch: str, kind: str, step: Step
) -> None:
    (board,) = qemu_lab.start(1, kind)

    def pull_the_plug(event: object) -> None:
        # QEMU is killed the moment the station has done the step: its next I/O finds no board
        if isinstance(event, StepPassed) and event.step is step:
            qemu_lab.unplug(1)

    cut = rig.run(board.port, batch, events=_Calling(pull_the_plug))
    assert not cut.passed

    board = qemu_lab.replug(1)
    events: list[object] = []
    outcome = rig.run(board.port, batch, events=events)
    assert outcome.passed, outcome
    assert outcome.job_id == cut.job_id  # the same job, resumed, not a second identity
    assert any(isinstance(e, Resumed) for e in events)
    certificates = rig.station().store().certificates.for_device(outcome.registration_id)
    installed = [c for c in certificates if c.status == CertificateStatus.INSTALLED]
    assert len(installed) == 1
    leaf = split_der(board_state(board.port)["cert_chain"].data)[0]
    assert leaf.serial_number == int(installed[0].serial_number, 16)
    rig.verify()


class _Calling(list[object]):
    """An event list that also calls ``hook`` with every event the station emits."""

    def __init__(self, hook: Callable[[object], None]) -> None:
        super().__init__()
        self.hook = hook

    def append(self, event: object) -> None:
        super().append(event)
        self.hook(event)


def test_a_board_without_a_factory_serial_is_provisioned_with_the_scanned_one(
    rig: Rig, qemu_lab: LabBoards, board_state
) -> None:
    (board,) = qemu_lab.start(1, "nokey", Faults(no_serial=True))
    assert board_state(board.port)["hello"].serial == ""  # a blank serial in the factory sector
    refused = rig.run(board.port, "WO-SYM")
    assert not refused.passed
    outcome = rig.run(board.port, "WO-SYM", serial="SN-Q1")  # the symmetric-key flow
    assert outcome.passed, outcome
    assert outcome.registration_id.endswith("sn-q1")
    assert board_state(board.port)["symkey"].sha256 is not None


@pytest.mark.parametrize("point", ["started:write-chain", "passed:write-chain"])
def test_a_station_killed_mid_run_resumes_on_the_qemu_board(
    rig: Rig, qemu_lab: LabBoards, board_state, point: str
) -> None:
    (board,) = qemu_lab.start(1, "se")
    kill_station_at(rig, board.port, "WO-X509", point)  # the station process dies: SIGKILL

    events: list[object] = []
    outcome = rig.run(board.port, "WO-X509", events=events)
    assert outcome.passed, outcome
    assert any(isinstance(e, Resumed) for e in events)
    certificates = rig.station().store().certificates.for_device(outcome.registration_id)
    installed = [c for c in certificates if c.status == CertificateStatus.INSTALLED]
    assert len(installed) == 1
    leaf = split_der(board_state(board.port)["cert_chain"].data)[0]
    assert leaf.serial_number == int(installed[0].serial_number, 16)
    rig.verify()
