"""Persistence, --reset, the access log, loopback-only listening and the ``station lab dps`` CLI."""

from __future__ import annotations

import dataclasses
import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.errors import LabDpsError
from station_lab.dps import DpsOptions, LocalDps, read_access_log


def _sym(reg_id: str):
    return {"registrationId": reg_id, "attestation": {"type": "symmetricKey"}}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.add(address)
    return found


def test_state_survives_a_restart_and_reset_forgets_it(dps_options, make_client):
    with LocalDps(dps_options) as first:
        created = make_client(first).enrollment.create_or_update(
            id="keep-1", enrollment=_sym("keep-1")
        )
        first_key = first.policies["provisioningserviceowner"].key
        ca = first.ca_bundle.read_bytes()
    with LocalDps(dps_options) as second:
        assert second.policies["provisioningserviceowner"].key == first_key
        assert second.ca_bundle.read_bytes() == ca
        fetched = make_client(second).enrollment.get("keep-1")
        assert fetched["etag"] == created["etag"]
        assert fetched["attestation"] == {"type": "symmetricKey"}  # GET shows no keys
        mechanism = make_client(second).enrollment.get_attestation_mechanism("keep-1")
        assert mechanism == created["attestation"]
    with LocalDps(dataclasses.replace(dps_options, reset=True)) as third:
        client = make_client(third)
        assert list(client.enrollment.query({"query": "SELECT *"})) == []
        # keys and certificate survive a reset, so configured clients keep working
        assert third.policies["provisioningserviceowner"].key == first_key
        assert [e["operation"] for e in third.access_log()] == ["enrollment.query"]


def test_access_log_counts_billable_operations(dps, client):
    client.enrollment.run_bulk_operation(
        {"mode": "create", "enrollments": [_sym(f"a-{n}") for n in range(10)]}
    )
    client.enrollment.get("a-1")
    dps.faults.inject("500")
    with pytest.raises(HttpResponseError):
        DeviceProvisioningClient.from_connection_string(
            dps.connection_string(), connection_verify=str(dps.ca_bundle), retry_total=0
        ).enrollment.get("a-2")
    entries = read_access_log(dps.access_log_path)
    assert [(e["operation"], e["status"], e["billable"]) for e in entries] == [
        ("enrollment.bulk", 200, True),
        ("enrollment.get", 200, True),
        ("enrollment.get", 500, True),
    ]
    assert all(e["policy"] == "provisioningserviceowner" for e in entries)
    assert entries[0]["requestBytes"] > 0 and entries[0]["apiVersion"] == "2021-10-01"
    assert "Authorization" not in dps.access_log_path.read_text()  # no credentials in the log


def test_listens_on_loopback_only(dps):
    host, port = dps.address
    assert host == "127.0.0.1"
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing else


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_refuses_non_loopback_hosts(tmp_path, host):
    with pytest.raises(LabDpsError):
        LocalDps(DpsOptions(state_dir=tmp_path / "dps", host=host))


def test_secret_files_are_private(dps):
    state = dps.options.state_dir
    for name in ("policies.json", "connection-string.txt", "tls/server.key"):
        assert (state / name).stat().st_mode & 0o077 == 0, name
    assert dps.connection_file.read_text().strip() == dps.connection_string()


def test_port_in_use_is_a_clear_error(dps, tmp_path):
    with pytest.raises(LabDpsError) as info:
        LocalDps(DpsOptions(state_dir=tmp_path / "other", port=dps.port)).start()
    assert "cannot listen" in info.value.message


# ---------------------------------------------------------------- the CLI
@pytest.fixture
def run_cli():
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "station", "lab", "dps", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ),
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def _read_banner(process: subprocess.Popen[bytes], deadline_s: float = 60.0) -> dict[str, str]:
    """Read the start-up lines ("key: value") until the access-log line, with a deadline."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    lines: dict[str, str] = {}
    buffer = b""
    deadline = time.monotonic() + deadline_s
    while "access log" not in lines:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            raise AssertionError(
                f"no banner; stderr: {process.stderr.read() if process.stderr else ''}"
            )
        if selector.select(timeout=remaining):
            chunk = os.read(process.stdout.fileno(), 4096)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                key, _, value = line.decode().partition(": ")
                lines[key] = value
    selector.close()
    assert not [value for value in lines.values() if "SharedAccessKey" in value]  # no secret
    return lines


def _connection(banner: dict[str, str]) -> str:
    """The owner connection string, from the 0600 file the banner names (never from stdout)."""
    path = Path(banner["connection string file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path.read_text(encoding="utf-8").strip()


def test_cli_serves_until_sigterm_and_resets(run_cli, tmp_path):
    state = tmp_path / "cli-state"
    process = run_cli("--state", str(state), "--port", "0", "--rate-limit", "100")
    banner = _read_banner(process)
    assert banner["CA bundle"] == str(state / "tls" / "ca.pem")
    assert banner["lab DPS endpoint"].startswith("https://127.0.0.1:")
    port = int(banner["lab DPS endpoint"].rsplit(":", 1)[1])
    assert _listening_addresses(port) == {"0100007F"}
    assert banner["device MQTT"].startswith("mqtts://127.0.0.1:")
    assert _listening_addresses(int(banner["device MQTT"].rsplit(":", 1)[1])) == {"0100007F"}
    assert banner["device MQTT over WebSocket"] == f"wss://127.0.0.1:{port}/$iothub/websocket"
    assert banner["owner policy"].startswith("provisioningserviceowner ")
    connection = _connection(banner)
    with DeviceProvisioningClient.from_connection_string(
        connection, connection_verify=banner["CA bundle"]
    ) as client:
        client.enrollment.create_or_update(id="cli-1", enrollment=_sym("cli-1"))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0

    process = run_cli("--state", str(state), "--reset")
    banner = _read_banner(process)
    assert _connection(banner).split(";")[1:] == connection.split(";")[1:]  # same policy key
    with DeviceProvisioningClient.from_connection_string(
        _connection(banner), connection_verify=banner["CA bundle"]
    ) as client:
        assert list(client.enrollment.query({"query": "SELECT *"})) == []
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0


def test_cli_rejects_a_bad_fault_spec(run_cli, tmp_path):
    process = run_cli("--state", str(tmp_path / "s"), "--faults", "explode=1")
    assert process.wait(timeout=60) == 1
    assert process.stderr is not None
    assert b"bad fault item" in process.stderr.read()


def test_record_registration_checks_its_arguments(dps):
    with pytest.raises(LabDpsError):
        dps.record_registration("dev-1", status="happy")
    with pytest.raises(LabDpsError):
        dps.record_registration("-bad-")
    state = dps.record_registration("DEV-1", status="failed")
    assert state["registrationId"] == "dev-1"
    assert "assignedHub" not in state
