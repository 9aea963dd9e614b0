"""A throwaway PostgreSQL server for tests, benches and demos (loopback only).

PostgreSQL refuses to run as root, so when we are root the cluster is created and run as
the ``postgres`` user (``runuser -u postgres --``). ``fsync=off`` unless asked otherwise:
these servers hold nothing worth keeping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_BINDIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


class PgUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (install Debian's postgresql-15)."""


def pg_bindir() -> Path:
    """The directory holding ``initdb``/``pg_ctl``/``postgres``."""
    for d in PG_BINDIRS:
        if Path(d, "pg_ctl").exists():
            return Path(d)
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and Path(out, "pg_ctl").exists():
            return Path(out)
    raise PgUnavailable("PostgreSQL server binaries not found (apt-get install postgresql-15)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class TempPostgres:
    """One cluster in a temp dir: ``start()``, ``stop(mode)``, ``dsn()``; ``destroy()`` removes it."""

    port: int = field(default_factory=free_port)
    fsync: bool = False
    root: Path | None = None
    superuser: str = "onemap_admin"
    password: str = "onemap-admin"

    def __post_init__(self) -> None:
        self.bindir = pg_bindir()
        self.root = Path(self.root or tempfile.mkdtemp(prefix="onemap-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"

    # -- lifecycle -----------------------------------------------------------------------------
    def init(self) -> TempPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            _as_pg_user([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.superuser,
                         "--pwfile", str(pwfile), "-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                         "--no-sync"]),  # fmt: skip
            check=True, capture_output=True,
        )
        conf = self.datadir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                f"fsync = {'on' if self.fsync else 'off'}\nsynchronous_commit = {'on' if self.fsync else 'off'}\n"
                "full_page_writes = off\nmax_connections = 200\nshared_buffers = 128MB\n"
            )
        return self

    def start(self, timeout: float = 30.0) -> TempPostgres:
        if not self.datadir.exists():
            self.init()
        subprocess.run(
            _as_pg_user([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                         "-w", "-t", str(int(timeout)), "start"]),  # fmt: skip
            check=True, capture_output=True,
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        """``mode`` is pg_ctl's: smart, fast or immediate (a crash, as far as clients can tell)."""
        subprocess.run(
            _as_pg_user([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"]),
            capture_output=True,
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                               capture_output=True)  # fmt: skip
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL on port {self.port} not ready after {timeout} s")

    # -- connection strings ----------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres", user: str | None = None, password: str | None = None,
            port: int | None = None) -> str:  # fmt: skip
        user = user or self.superuser
        password = self.password if password is None and user == self.superuser else password
        pw = f" password={password}" if password else ""
        return f"host=127.0.0.1 port={port or self.port} dbname={dbname} user={user}{pw} connect_timeout=5"

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
