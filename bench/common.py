"""Shared set-up for benchmarks: a private home, the embedded server, timing helpers."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.net import free_port


@contextmanager
def bench_home() -> Iterator[Path]:
    """A throw-away MEDIAFLOWS_HOME with its own embedded Prefect server (stopped afterwards)."""
    with tempfile.TemporaryDirectory(prefix="mf-bench-") as tmp:
        home = Path(tmp)
        os.environ["MEDIAFLOWS_HOME"] = str(home)
        os.environ.setdefault("MEDIAFLOWS_SERVER__PORT", str(free_port()))
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
        # Every timed run must do the work: no answers from Prefect's persisted result cache.
        os.environ["PREFECT_TASKS_REFRESH_CACHE"] = "true"
        # The direct calls the flows are measured against load tiny.en: so must the flows.
        os.environ.setdefault("MEDIAFLOWS_WHISPER__MODEL", "tiny.en")
        from deployments.server import configure_prefect_env, stop_server
        from mediaflows.settings import get_settings

        get_settings.cache_clear()
        configure_prefect_env(get_settings())
        try:
            yield home
        finally:
            from prefect.logging.handlers import APILogHandler

            APILogHandler().flush()
            stop_server(get_settings(), wait_s=5)


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall times of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def deploy_here() -> None:
    """`mediaflows setup` and `prefect deploy --all` from the checkout, against the bench's
    server (the workers' environment set in this process's)."""
    import subprocess
    import sys

    from deployments.worker import REPO_ROOT, worker_env
    from mediaflows.settings import get_settings

    get_settings.cache_clear()
    os.environ.update(worker_env(get_settings()))
    bin_dir = Path(sys.executable).parent
    for command in ([str(bin_dir / "mediaflows"), "setup"],
                    [str(bin_dir / "prefect"), "--no-prompt", "deploy", "--all"]):  # fmt: skip
        done = subprocess.run(command, cwd=REPO_ROOT, env=os.environ.copy(),
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
