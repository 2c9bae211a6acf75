"""What the modules that run deployments on workers share on one test worker (they are one
xdist group, ``pool``): the pools, limits and deployments, made once against its server."""

from __future__ import annotations

import os

import pytest

from deployments.worker import REPO_ROOT
from tests.conftest import without_prefect_auth
from tests.runs import command
from tests.stack import BIN


@pytest.fixture(scope="session")
def deployments(prefect_server: str) -> None:
    """`mediaflows setup` (twice: idempotent), then `prefect deploy --all` from the repo root,
    once per test worker (each has its own server). No store is named in a deployment: a
    worker's runs use the store of the environment it is started in (``deployed``)."""
    env = without_prefect_auth(dict(os.environ))  # MEDIAFLOWS_SERVER__AUTH only
    for _ in range(2):
        setup = command([str(BIN / "mediaflows"), "setup"], env, REPO_ROOT)
        assert setup.returncode == 0, setup.stderr
    assert '"mediaflows-process": "process"' in setup.stdout
    # Prefect's own command reads Prefect's variable only (docs/deployments.md).
    prefect_env = {**env, "PREFECT_API_AUTH_STRING": env["MEDIAFLOWS_SERVER__AUTH"]}
    deploy = command(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], prefect_env, REPO_ROOT
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
