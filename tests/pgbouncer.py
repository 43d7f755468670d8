"""A real PgBouncer in transaction pooling mode in front of the suite's PostgreSQL.

Debian's ``pgbouncer`` is installed on first use if it is not on PATH (``tests/apt.py``,
as the browser is for the viewer's tests). PgBouncer refuses to run as root, so as root it runs as
the unprivileged user owning the server's socket directory (``pgserver`` for the embedded
server, whose data directory is private), else ``postgres``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.apt import apt_install
from tests.processes import free_port

__all__ = ["PgBouncer", "pgbouncer"]

_USER = "postgres"


@dataclass(frozen=True)
class PgBouncer:
    port: int
    direct_url: str
    log: Path

    def url(self, dbname: str | None = None) -> str:
        """The direct URL with host and port swapped for PgBouncer's (and ``dbname`` if given)."""
        params = conninfo_to_dict(self.direct_url)
        params.update(host="127.0.0.1", port=str(self.port))
        if dbname:
            params["dbname"] = dbname
        return make_conninfo(**params)  # type: ignore[arg-type]


def _config(workdir: Path, port: int, direct_url: str) -> Path:
    params = conninfo_to_dict(direct_url)
    host = str(params.get("host") or "127.0.0.1")
    server = f"host={host} port={params.get('port') or 5432} user={params.get('user') or _USER}"
    config = workdir / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n* = {server}\n\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\n"
        "max_client_conn = 1000\ndefault_pool_size = 20\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {workdir / 'pgbouncer.log'}\npidfile = {workdir / 'pgbouncer.pid'}\n"
    )
    return config


def _unprivileged(direct_url: str) -> str:
    host = str(conninfo_to_dict(direct_url).get("host") or "")
    if host.startswith("/") and (owner := Path(host).stat().st_uid) != 0:
        return pwd.getpwuid(owner).pw_name
    return _USER


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text() if log.exists() else ""
            pytest.fail(f"pgbouncer exited with {proc.returncode}: {text[-1500:]}", pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail("pgbouncer did not start listening", pytrace=False)


@pytest.fixture(scope="session")
def pgbouncer(pg_url: str) -> Iterator[PgBouncer]:
    """PgBouncer (transaction mode, trust) on a free 127.0.0.1 port, stopped at the end."""
    binary = apt_install("pgbouncer", "pgbouncer")
    workdir = Path(tempfile.mkdtemp(prefix="bt-pgbouncer-"))
    workdir.chmod(0o755)
    port = free_port()
    config = _config(workdir, port, pg_url)
    command = [binary, str(config)]
    if os.geteuid() == 0:
        user = _unprivileged(pg_url)
        shutil.chown(workdir, user=user)
        command = ["runuser", "-u", user, "--", *command]
    log = workdir / "pgbouncer.log"
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_listening(proc, port, log)
        yield PgBouncer(port=port, direct_url=pg_url, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
