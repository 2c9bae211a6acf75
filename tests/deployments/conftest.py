"""What the modules that run deployments on workers share on one test worker (they are one
xdist group, ``pool``): the pools, limits and deployments, made once against its server."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from uuid import UUID

import pytest

from deployments import client
from deployments.client import RunStatus
from deployments.worker import REPO_ROOT
from mediaflows.stages import Stage
from tests.conftest import LLM_TEST_KEY, without_prefect_auth
from tests.llm_server import LLMServer
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


def pool_worker_env(server: LLMServer) -> dict[str, str]:
    """What a worker of these modules gets besides the session's environment: housekeeping
    every 2 s (crashed runs resubmitted, expired reviews ended sooner), and for LLM runs (the
    review tests) the loopback LLM server, 2-cue chunks, model names of its own (nothing comes
    from another module's cached chunks)."""
    return {
        "MEDIAFLOWS_ORCHESTRATION__HOUSEKEEPING_S": "2",
        "MEDIAFLOWS_LLM__BASE_URL": server.base_url,
        "MEDIAFLOWS_LLM__API_KEY": LLM_TEST_KEY,
        "MEDIAFLOWS_LLM__MODELS": f'["review-{uuid.uuid4().hex[:8]}"]',
        "MEDIAFLOWS_LLM__TIMEOUT_S": "2",
        "MEDIAFLOWS_LLM__CHUNK_CUES": "2",
    }


@pytest.fixture
def refusing(llm_server_session: LLMServer) -> Iterator[LLMServer]:
    """The loopback LLM server, reset, never answering the chunk with "See you" validly (cues
    5-6 of the relaxed translation sample keep their source text: flagged for review)."""
    llm_server_session.reset()
    llm_server_session.set_mode("wrong_count", match="See you")
    yield llm_server_session
    llm_server_session.reset()


def until_awaiting_review(run_id: UUID, timeout: float = 120) -> RunStatus:
    """The run's status once it waits for a review (suspended: the stage shows it a moment
    before the state does)."""
    deadline = time.monotonic() + timeout
    while (status := client.status(run_id)).stage != Stage.AWAITING_REVIEW or (
        status.state != "PAUSED"
    ):
        assert not status.finished, status
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    return status
