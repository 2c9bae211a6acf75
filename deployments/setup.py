"""Idempotent set-up on the Prefect server: the concurrency limits every worker obeys and the work
pools the deployments in ``prefect.yaml`` run on."""

from __future__ import annotations

import contextlib
import importlib.util
from datetime import timedelta
from typing import Any

from mediaflows.operations import OPERATIONS
from mediaflows.settings import Settings, get_settings

#: The default pool: a worker on any machine with this repository runs flows as subprocesses.
PROCESS_POOL = "mediaflows-process"
#: Flows in containers of the worker image (Dockerfile), through prefect-docker.
DOCKER_POOL = "mediaflows-docker"


def ensure_concurrency_limits(settings: Settings | None = None) -> dict[str, int]:
    """Create or update the ``gpu`` tag limit (model runs at once, across all workers), the
    ``llm`` tag limit (LLM requests at once) and the ``asr`` tag limit (requests to speech
    endpoints at once).

    Safe to run any number of times: the server upserts by tag.
    """
    from prefect.client.orchestration import get_client

    settings = settings or get_settings()
    limits = {
        "gpu": settings.orchestration.gpu_limit,
        "llm": settings.orchestration.llm_limit,
        "asr": settings.orchestration.asr_limit,
    }
    with get_client(sync_client=True) as client:
        for tag, value in limits.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=value)
    return limits


def docker_available() -> bool:
    """True when prefect-docker (the docker worker type) is installed here."""
    return importlib.util.find_spec("prefect_docker") is not None


def _default_template(pool_type: str) -> dict[str, Any]:
    from prefect.workers.base import BaseWorker

    worker = BaseWorker.get_worker_class_from_type(pool_type)
    if worker is None:  # pragma: no cover - guarded by docker_available()
        raise RuntimeError(f"no worker type {pool_type!r} installed")
    template: dict[str, Any] = worker.get_default_base_job_template()
    return template


#: The worker image `./dev docker-image` builds (Dockerfile).
DOCKER_IMAGE = "mediaflows-worker:latest"
#: What it is built FROM on a GPU host (`MEDIAFLOWS_BASE_IMAGE`; the Dockerfile's label
#: ``io.mediaflows.base-image`` says which base an image has): CTranslate2 4.x needs CUDA 12
#: cuBLAS and cuDNN 9.
CUDA_BASE_IMAGE = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"


def docker_job_defaults(gpus: str) -> dict[str, Any]:
    """The docker pool's job variable defaults: the local image on the host network, and with
    ``gpus`` (``all`` or ``0,1``: ``docker run --gpus``) the GPU request, the CUDA base the image
    must be built from (a label the worker can be checked against) and the model on CUDA.
    A deployment's or a run's job variables still override each of them."""
    defaults: dict[str, Any] = {
        "image": DOCKER_IMAGE,
        "image_pull_policy": "Never",  # built on the engine's host; drop with a registry
        "network_mode": "host",
        "auto_remove": True,
    }
    if gpus:
        # docker-py's DeviceRequest arguments, as `docker run --gpus` sends them (count -1: all).
        request: dict[str, Any] = {"driver": "nvidia", "capabilities": [["gpu"]]}
        if gpus == "all":
            request["count"] = -1
        else:
            request["device_ids"] = gpus.split(",")
        defaults |= {
            "labels": {"io.mediaflows.base-image": CUDA_BASE_IMAGE},
            "env": {"MEDIAFLOWS_WHISPER__DEVICE": "cuda"},
            "container_create_kwargs": {"device_requests": [request]},
        }
    return defaults


def docker_pool_template(settings: Settings) -> dict[str, Any]:
    """prefect-docker's base job template with :func:`docker_job_defaults` as the defaults of
    its variables (what the UI's pool form shows, and what a run gets unless it says otherwise)."""
    template = _default_template("docker")
    properties = template["variables"]["properties"]
    for name, value in docker_job_defaults(settings.orchestration.docker_gpus).items():
        properties[name]["default"] = value
    return template


def ensure_work_pools(settings: Settings | None = None) -> dict[str, str]:
    """Create the work pools that are missing: ``mediaflows-process`` always,
    ``mediaflows-docker`` when prefect-docker is installed (its job template:
    :func:`docker_pool_template`). Existing pools are left as they are (an operator may have
    tuned their job templates in the UI). Returns {pool name: type}."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    settings = settings or get_settings()
    wanted = {PROCESS_POOL: "process"}
    if docker_available():
        wanted[DOCKER_POOL] = "docker"
    with get_client(sync_client=True) as client:
        for name, pool_type in wanted.items():
            try:
                client.read_work_pool(name)
                continue
            except ObjectNotFound:
                pass
            # Another set-up may create it in the meantime: that is the same outcome.
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_work_pool(
                    WorkPoolCreate(
                        name=name,
                        type=pool_type,
                        description=f"mediaflows flows ({pool_type} worker)",
                        base_job_template=docker_pool_template(settings)
                        if pool_type == "docker"
                        else _default_template(pool_type),
                    )
                )
    return wanted


#: The automation that marks the runs of a dead worker Crashed (so a batch submits them again).
CRASH_AUTOMATION = "mediaflows-crashed-runs"
#: The flows it watches: mediaflows' own, never other flows on the same server.
WATCHED_FLOWS = (
    *OPERATIONS,
    *(spec.batch_name for spec in OPERATIONS.values()),
    "sweep",
)


def crash_automation(settings: Settings) -> Any:
    """Prefect's "detect zombie flows" automation, for mediaflows' flows: a run that went Pending
    or Running or sent a heartbeat and then, for ``server.zombie_after_s``, sent no heartbeat, no
    other state, is marked Crashed. A worker that dies (kill -9, a lost machine) cannot report its
    runs itself; the server can only tell them from slow ones by their silence."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    silence = settings.server.zombie_after_s  # Settings checks it exceeds the heartbeat
    return Automation(
        name=CRASH_AUTOMATION,
        description="Marks mediaflows runs Crashed when they go silent (their worker died); "
        "distributed batches then submit those files again.",
        trigger=EventTrigger(
            # Each of these starts the clock again; a run killed before its first heartbeat
            # went out has its Running (or only its Pending) to go by.
            after={
                "prefect.flow-run.Pending",
                "prefect.flow-run.Running",
                "prefect.flow-run.heartbeat",
            },
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Running",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "flow", "prefect.resource.name": list(WATCHED_FLOWS)}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silence),
        ),
        actions=[
            ChangeFlowRunState(
                name=None,
                state=StateType.CRASHED,
                message=f"no heartbeat for {silence} s: its worker is gone",
                force=False,
            )
        ],
    )


def ensure_crash_automation(settings: Settings | None = None) -> str:
    """Create or update the crash automation (one, by name); its id."""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    wanted = crash_automation(settings or get_settings())
    core = AutomationCore(**wanted.model_dump(exclude={"id", "owner_resource"}))
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(CRASH_AUTOMATION)
        for extra in existing[1:]:  # two set-ups raced: keep one
            client.delete_automation(extra.id)
        if existing:
            client.update_automation(existing[0].id, core)
            return str(existing[0].id)
        return str(client.create_automation(core))


def ensure_setup(settings: Settings | None = None) -> dict[str, Any]:
    """Everything the deployments need on the server, created or updated idempotently."""
    settings = settings or get_settings()
    return {
        "concurrency_limits": ensure_concurrency_limits(settings),
        "work_pools": ensure_work_pools(settings),
        "crash_automation": ensure_crash_automation(settings),
    }
