"""Running a Prefect worker for the mediaflows deployments.

The deployments' ``pull`` step (prefect.yaml) changes into ``$MEDIAFLOWS_REPO`` before it imports
a flow, so the worker's flow-run subprocesses must have it: ``mediaflows worker`` sets it to this
checkout unless it is set already (the worker image sets it to ``/app``). This module does not
import Prefect.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from deployments.server import client_auth, embedded_api_url
from mediaflows.settings import Settings, get_settings
from tasks.prefect_adapter import CLIENT_AUTH_VAR, client_env

#: The checkout this code runs from: where prefect.yaml and the flows' entry points are.
REPO_ROOT = Path(__file__).resolve().parents[1]


def worker_env(
    settings: Settings | None = None, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a worker (and so of every flow run it starts)."""
    settings = settings or get_settings()
    env = dict(os.environ if base is None else base)
    env.setdefault("MEDIAFLOWS_REPO", str(REPO_ROOT))
    env.setdefault("MEDIAFLOWS_HOME", str(settings.home))
    # glibc's malloc keeps an arena per thread that allocates: a warm worker's run threads
    # (model, decoder, VAD) grew its peak RSS by a sixth (bench/long_bench.py, 20 minutes of
    # speech on one worker: 1,002 MB, 832 MB with 2 arenas).
    env.setdefault("MALLOC_ARENA_MAX", "2")
    # Flow results (what the Python API's wait() reads) and the task caches: one place per
    # machine; for workers on several machines, see docs/deployments.md.
    api_url = env.get("PREFECT_API_URL", "")
    wanted = client_env(
        settings.server.heartbeat_s,
        str(settings.home / "results"),
        api_url,
        embedded=api_url == embedded_api_url(settings),
        auth=client_auth(settings),
    )
    for name, value in wanted.items():
        if name == "PREFECT_FLOWS_HEARTBEAT_FREQUENCY":
            env[name] = value  # the crash automation (deployments.setup) expects it
        elif name == CLIENT_AUTH_VAR:
            env[name] = value  # MEDIAFLOWS_SERVER__AUTH wins over an inherited one
        elif value:
            env.setdefault(name, value)
    return env


def warm_worker_command(pool: str, name: str, limit: int) -> list[str]:
    """A warm worker (:mod:`deployments.warm_worker`) for ``pool``, run by this interpreter."""
    return [sys.executable, "-m", "deployments.warm_worker", "--pool", pool, "--name", name,
            "--limit", str(limit)]  # fmt: skip


def worker_command(pool: str, name: str | None = None, limit: int | None = None) -> list[str]:
    """``prefect worker start`` for ``pool``, run by this interpreter."""
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool]
    command += ["--install-policy", "never", "--no-create-pool-if-not-found"]
    if name:
        command += ["--name", name]
    if limit:
        command += ["--limit", str(limit)]
    return command
