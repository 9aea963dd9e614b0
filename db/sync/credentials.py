"""Desk passwords live in libpq's password file, not in the replica.

A replica file is copied, backed up and sent around; the upstream it remembers (``sync_state.upstream``)
must not carry the desk role's password. :func:`store_upstream` splits the password off a DSN and
writes it to the password file libpq already reads (``PGPASSFILE``, else ``~/.pgpass``, mode 0600,
one ``host:port:database:user:password`` line per desk), so every later connection with the
stripped DSN finds it there. When the file cannot be written the DSN is kept whole, with a warning.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def pgpass_path() -> Path:
    """libpq's password file: ``PGPASSFILE`` or ``~/.pgpass``."""
    return Path(os.environ.get("PGPASSFILE") or Path.home() / ".pgpass")


def _field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _split(dsn: str) -> tuple[dict, str | None]:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    return params, params.pop("password", None)


def store_upstream(dsn: str | None) -> str | None:
    """The DSN to remember in the replica: without its password, which goes to the password file."""
    if not dsn:
        return dsn
    try:
        params, password = _split(dsn)
    except Exception:  # not a DSN psycopg understands: keep it as given (the connection will say why)
        return dsn
    if password is None:
        return dsn
    from psycopg.conninfo import make_conninfo

    key = [_field(str(params.get(k) or default)) for k, default in
           (("host", "localhost"), ("port", "5432"), ("dbname", params.get("user") or "*"), ("user", "*"))]  # fmt: skip
    try:
        _write_entry(pgpass_path(), ":".join(key), _field(password))
    except OSError as exc:
        log.warning("sync: cannot write the password file %s (%s); the upstream is remembered with its "
                    "password", pgpass_path(), exc.strerror or exc)  # fmt: skip
        return dsn
    return make_conninfo(**params)


def _write_entry(path: Path, key: str, password: str) -> None:
    """Add or replace the line for ``key`` (host:port:db:user), atomically, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        prefix = key + ":"
        kept = [ln for ln in lines if not ln.startswith(prefix)]
        kept.append(prefix + password)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(kept) + "\n")
        os.replace(tmp, path)
