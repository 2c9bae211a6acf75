"""A throw-away PostgreSQL cluster on a loopback port (Debian's binaries; run as the `postgres`
user when we are root, since initdb and pg_ctl refuse root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.net import free_port


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PostgresCluster:
    """``start()`` → a SQLAlchemy URL for Prefect (asyncpg); ``stop()`` removes everything."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mediaflows-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"

    def start(self, database: str = "prefect") -> str:
        if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
            raise RuntimeError(
                "PostgreSQL binaries (initdb, pg_ctl) not found: apt install postgresql"
            )
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(_as_owner(["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                                  "-E", "UTF8"]), check=True, capture_output=True)  # fmt: skip
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_owner(["pg_ctl", "-D", str(self.data), "-o", options,
                                  "-l", str(self.dir / "log"), "-w", "start"]),
                       check=True, capture_output=True)  # fmt: skip
        create = f"CREATE DATABASE {database}"
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-c", create], check=True, capture_output=True)  # fmt: skip
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        subprocess.run(_as_owner(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)
