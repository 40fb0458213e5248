"""A throwaway PostgreSQL cluster for the fleet ledger: the demo's and the tests' (#23).

Made by ``initdb`` and run by ``pg_ctl`` from Debian's postgresql package (installed by
packaging/install-system-deps.sh). PostgreSQL refuses to run as root, so as root both run through
``runuser`` as the unprivileged ``station-pg`` user the install script creates, in a temporary
folder that user owns, listening on a unix socket in that folder and on an ephemeral loopback
port. :func:`running_ledger` stops the server and removes the folder however the block ends.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from station.domain.errors import StationError

PG_USER = "station-pg"
SUPERUSER = "ledger"


class LabLedgerError(StationError):
    """The lab's PostgreSQL cluster could not be made or started."""

    code = "lab.ledger"


def pg_bin(name: str) -> str:
    """A server binary: Debian keeps them in /usr/lib/postgresql/<major>/bin, off the PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    path = str(found[0]) if found else shutil.which(name)
    if not path:
        raise LabLedgerError(
            f"PostgreSQL's {name} is missing",
            remedy="Run 'bash packaging/install-system-deps.sh' (it installs postgresql).",
        )
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgCluster:
    """One PostgreSQL cluster in a temporary folder (``parent``: where to make it)."""

    def __init__(self, parent: Path | None = None) -> None:
        self.as_root = os.geteuid() == 0
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="station-ledger-", dir=parent))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "server.log"
        self.port = 0
        self.extra_options = ""  # more server settings ("-c ssl=on ..."), for the next start
        self._names = itertools.count(1)
        if self.as_root:
            try:
                shutil.chown(self.root, user=PG_USER, group=PG_USER)
            except LookupError:
                shutil.rmtree(self.root)
                raise LabLedgerError(
                    f"the system user {PG_USER} is missing (PostgreSQL refuses to run as root)",
                    remedy="Run 'bash packaging/install-system-deps.sh' as root once.",
                ) from None
        self._run(["mkdir", "-m", "0700", str(self.socket_dir)])

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", PG_USER, "--"] if self.as_root else []
        done = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=False, timeout=120
        )
        if check and done.returncode != 0:
            raise LabLedgerError(
                f"{Path(argv[0]).name} failed: {(done.stderr or done.stdout).strip()[:500]}",
                remedy=f"See {self.log} and check that {PG_USER} can write {self.root}.",
            )
        return done

    def init(self) -> None:
        """``initdb``: trust authentication (loopback and socket only), UTF-8, C locale."""
        self._run(
            [
                pg_bin("initdb"),
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
        done = None
        for _ in range(5):
            self.port = self.port or _free_port()
            options = (
                f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=60 -c shared_buffers=32MB " + self.extra_options
            )
            argv = [pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w"]
            done = self._run([*argv, "-t", "60", "-o", options, "start"], check=False)
            if done.returncode == 0:
                return
            self.port = 0
        raise LabLedgerError(
            f"PostgreSQL did not start: {(done.stderr if done else '').strip()[:300]}",
            remedy=f"See the server log {self.log}.",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: open transactions roll back; ``immediate``: no cleanup)."""
        self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def restart(self) -> None:
        """Stop (fast) and start on the same port."""
        self.stop("fast")
        self.start()

    def server_log(self) -> str:
        """The end of the server's log."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def dsn(self, dbname: str = "postgres", *, port: int | None = None) -> str:
        """A conninfo string: over TCP to ``port`` (a proxy), else over the unix socket."""
        if port is not None:
            return f"host=127.0.0.1 port={port} user={SUPERUSER} dbname={dbname}"
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={dbname}"

    def new_database(self, name: str = "") -> str:
        """Create a database (a fresh name unless given) and return its name."""
        name = name or f"ledger_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a name made here, never input
        return name

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def running_ledger(parent: Path | None = None) -> Iterator[PgCluster]:
    """A started cluster, stopped and removed when the block ends (also on failure)."""
    cluster = PgCluster(parent)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
