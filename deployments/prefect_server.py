"""``python -m deployments.prefect_server start ...``: Prefect's own ``prefect server start``, with
the server-side workarounds of :mod:`tasks.prefect_adapter` applied (SQLite write transactions
begun ``IMMEDIATE``: see :func:`tasks.prefect_adapter.immediate_sqlite_writes`)."""

from __future__ import annotations

import sys

from tasks.prefect_adapter import immediate_sqlite_writes


def main(argv: list[str]) -> None:
    immediate_sqlite_writes()
    from prefect.cli import app

    sys.argv = ["prefect", "server", *argv]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
