"""Fixtures for the device registration API: a running stand-in, the official service client to
enroll, a small X.509 PKI, a real swtpm per test and a custom-allocation webhook."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.errors import DeviceRegistrationError
from station_lab.dps import DpsOptions, LocalDps
from station_lab.firstboot import DeviceRegistrationClient, DeviceTpm, DpsEndpoint
from station_lab.swtpm import SocketSwtpm
from tests.support.registration import HUBS, Pki, Webhook


@pytest.fixture
def dps_options(tmp_path: Path) -> DpsOptions:
    # Short Retry-After so polling tests do not wait DPS's 3 s; no service-wide throttling.
    return DpsOptions(
        state_dir=tmp_path / "dps", linked_hubs=HUBS, retry_after_s=0.01, rate_limit=0
    )


@pytest.fixture
def service(dps: LocalDps) -> Iterator[DeviceProvisioningClient]:
    """The official service client, to enroll devices the way a cloud operator does."""
    client = DeviceProvisioningClient.from_connection_string(
        dps.connection_string(), connection_verify=str(dps.ca_bundle)
    )
    yield client
    client.close()


@pytest.fixture
def endpoint(dps: LocalDps) -> DpsEndpoint:
    """The DPS info a board holds, pointing at the stand-in."""
    return DpsEndpoint(dps.host_name, dps.id_scope, dps.ca_bundle)


@pytest.fixture
def device(endpoint: DpsEndpoint) -> DeviceRegistrationClient:
    return DeviceRegistrationClient(endpoint, timeout_s=30)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    directory.mkdir()
    return Pki(directory)


# --------------------------------------------------------------------------- swtpm
@pytest.fixture
def make_tpm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], DeviceTpm]]:
    """Start real swtpm processes (unix sockets) and open DeviceTpm on them; all stopped after."""
    monkeypatch.setenv("TSS2_LOG", "all+none")  # NV template probes log harmless ESYS errors
    started: list[tuple[SocketSwtpm, DeviceTpm]] = []

    def start() -> DeviceTpm:
        swtpm = SocketSwtpm().start()
        # The socket files appear before swtpm accepts on them: retry opening until it does.
        deadline = time.monotonic() + 30
        while True:
            try:
                tpm = DeviceTpm.open("swtpm", swtpm.tcti_conf)
                break
            except DeviceRegistrationError:
                if time.monotonic() > deadline:
                    swtpm.stop()
                    raise
                time.sleep(0.005)
        started.append((swtpm, tpm))
        return tpm

    yield start
    for swtpm, tpm in started:
        tpm.close()
        swtpm.stop()


# --------------------------------------------------------------------------- webhook
@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(decide=lambda request: (500, {"error": "no decision configured"}))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with lock:
                hook.requests.append(body)
            status, answer = hook.decide(body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/allocate"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
