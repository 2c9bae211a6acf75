"""``python -m deployments.prefect_server start ...``: Prefect's own ``prefect server start``, with
write transactions on SQLite begun ``IMMEDIATE``.

Why: Prefect 3.8 begins write transactions ``DEFERRED`` on SQLite. A transaction that reads and
then writes while another connection has committed fails at once with ``SQLITE_BUSY_SNAPSHOT``
(SQLite's busy timeout cannot help there); the server answers 503, and Prefect's client waits
``2 ** attempt`` seconds (about 2 s) before trying again. Measured here: every second acquisition
of the ``gpu`` slot took ~2 s that way, 6 s in one generate_srt run. ``BEGIN IMMEDIATE`` takes
the write lock up front, so writers queue on the busy timeout (milliseconds) instead of failing.
PostgreSQL-backed servers are left as they are.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any


def immediate_sqlite_writes() -> None:
    """Make every SQLite write transaction of this process's Prefect server ``BEGIN IMMEDIATE``."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    deferred = AioSqliteConfiguration.begin_transaction
    if getattr(deferred, "_mediaflows_immediate", False):
        return

    @asynccontextmanager
    async def begin_transaction(
        self: AioSqliteConfiguration, session: Any, with_for_update: bool = False
    ) -> AsyncGenerator[Any, None]:
        async with deferred(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_transaction._mediaflows_immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_transaction  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    immediate_sqlite_writes()
    from prefect.cli import app

    sys.argv = ["prefect", "server", *argv]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
