"""A throwaway PostgreSQL cluster for the fleet ledger tests (#23), and a TCP proxy to cut.

The cluster is made by ``initdb`` and run by ``pg_ctl`` from Debian's postgresql package
(packaging/install-system-deps.sh). PostgreSQL refuses to run as root, so as root (CI, this
machine) both run through ``runuser`` as the unprivileged ``station-pg`` user the install script
creates, in a temporary folder that user owns, listening on a unix socket in that folder and on
an ephemeral loopback port. The fixture stops the server and removes the folder even when tests
fail. Each test gets a database of its own (``ledger_dsn``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import psycopg
import pytest

PG_USER = "station-pg"
SUPERUSER = "ledger"


def _pg_bin(name: str) -> str:
    """A server binary: Debian keeps them in /usr/lib/postgresql/<major>/bin, off the PATH."""
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    path = found[0] if found else shutil.which(name)
    if not path:
        pytest.fail(f"PostgreSQL's {name} is missing: run 'bash packaging/install-system-deps.sh'")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgCluster:
    """One PostgreSQL cluster in a temporary folder."""

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="station-ledger-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "server.log"
        self.port = 0
        self._names = itertools.count(1)
        if self.as_root:
            try:
                shutil.chown(self.root, user=PG_USER, group=PG_USER)
            except LookupError:
                shutil.rmtree(self.root)
                pytest.fail(
                    f"the system user {PG_USER} is missing: run "
                    "'bash packaging/install-system-deps.sh' (PostgreSQL refuses to run as root)"
                )
        self._run(["mkdir", "-m", "0700", str(self.socket_dir)])

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", PG_USER, "--"] if self.as_root else []
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=check, timeout=120
        )

    def init(self) -> None:
        self._run(
            [
                _pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )

    def start(self) -> None:
        """Start on a fresh ephemeral port (retried if another process took it meanwhile)."""
        for _ in range(5):
            self.port = self.port or _free_port()
            options = (
                f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=60 -c shared_buffers=32MB"
            )
            done = self._run(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ],
                check=False,
            )
            if done.returncode == 0:
                return
            self.port = 0
        pytest.fail(f"PostgreSQL did not start: {done.stdout}{done.stderr}{self.server_log()}")

    def stop(self, mode: str = "fast") -> None:
        self._run([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def restart(self) -> None:
        """Stop (fast: open transactions are rolled back) and start on the same port."""
        self.stop("fast")
        self.start()

    def server_log(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def dsn(self, dbname: str = "postgres", *, port: int | None = None) -> str:
        """A conninfo string: over TCP to ``port`` (a proxy), else over the unix socket."""
        if port is not None:
            return f"host=127.0.0.1 port={port} user={SUPERUSER} dbname={dbname}"
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={dbname}"

    def new_database(self) -> str:
        name = f"ledger_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return name

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A running PostgreSQL cluster for the session (stopped and removed at the end)."""
    cluster = PgCluster()
    try:
        cluster.init()
        cluster.start()
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
