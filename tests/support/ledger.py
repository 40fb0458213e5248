"""The fleet ledger tests' PostgreSQL (#23), and a TCP proxy to cut.

The cluster is the lab's (``station_lab.ledger``: initdb and pg_ctl, as the unprivileged
``station-pg`` user when root, in a temporary folder, on a unix socket and an ephemeral loopback
port), one per session; the fixture stops it and removes its folder even when tests fail. Each
test gets a database of its own (``ledger_dsn``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import psycopg
import pytest

from station.domain.errors import StationError
from station_lab.ledger import PgCluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A running PostgreSQL cluster for the session (stopped and removed at the end)."""
    try:
        cluster = PgCluster()
        cluster.init()
        cluster.start()
    except StationError as exc:
        pytest.fail(f"{exc.message}: {exc.remedy}")
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def ledger_dsn(pg_cluster: PgCluster) -> str:
    """A fresh, empty ledger database for one test (over the unix socket)."""
    if not _server_up(pg_cluster):
        pg_cluster.start()  # a test that stopped the server and failed before restarting it
    return pg_cluster.dsn(pg_cluster.new_database())


def _server_up(cluster: PgCluster) -> bool:
    try:
        with psycopg.connect(cluster.dsn(), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


class TcpProxy:
    """A loopback TCP proxy in front of the ledger that a test can cut and restore.

    ``cut()`` closes every open connection and refuses new ones (a partition the station sees
    at once); ``hold()`` keeps connections open but forwards nothing (a partition that only a
    timeout detects); ``restore()`` forwards again.
    """

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._state = "open"
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._state == "cut":
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._state = "cut"
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def hold(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        self._state = "open"
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        self.cut()
        self._listener.close()


@pytest.fixture
def ledger_proxy(pg_cluster: PgCluster) -> Iterator[TcpProxy]:
    """A cuttable TCP proxy in front of the cluster."""
    proxy = TcpProxy(pg_cluster.port)
    yield proxy
    proxy.close()
