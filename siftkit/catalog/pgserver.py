"""A throw-away PostgreSQL server for tests and demos: the Debian ``postgresql`` binaries, a temporary data folder,
a Unix socket only (no TCP), started as the ``postgres`` system user when running as root.

    with TempPostgres() as url:      # postgresql+psycopg://postgres@/postgres?host=/tmp/...
        ...

:func:`pg_bin` finds the binaries (``/usr/lib/postgresql/<major>/bin``, newest first); :func:`why_unavailable`
says in one line why a server cannot start here (``None`` when it can).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding ``initdb`` and ``pg_ctl``."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [p for p in found if (p / "pg_ctl").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0) if found else None


def _as_user() -> list[str]:
    """Prefix that runs a command as ``postgres`` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return []
    return [shutil.which("runuser") or "runuser", "-u", "postgres", "--"]


def why_unavailable() -> str | None:
    if pg_bin() is None:
        return "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' system user to start the server as"
        if not shutil.which("runuser"):
            return "running as root without runuser"
    return None


class TempPostgres:
    """Start ``initdb`` + ``pg_ctl start`` in a temporary folder; :meth:`__exit__` stops it and removes the folder."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self.dir: Path | None = None

    def _run(self, *args: str) -> None:
        subprocess.run([*_as_user(), *args], check=True, capture_output=True, timeout=self.timeout)

    def __enter__(self) -> str:
        why = why_unavailable()
        if why:
            raise RuntimeError(why)
        bin_ = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="siftkit-pg-"))
        os.chmod(self.dir, 0o755)
        data, sock = self.dir / "data", self.dir / "sock"
        sock.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(sock, "postgres")
        self._run(str(bin_ / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log.txt"), "-w", "-o",
                  f"-k {sock} -c listen_addresses='' -c fsync=off", "start")
        self.bin = bin_
        return f"postgresql+psycopg://postgres@/postgres?host={sock}"

    def __exit__(self, *exc) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
