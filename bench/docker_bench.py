"""One ``generate_srt`` through the docker work pool against the warm worker, on the same clip.

Prints, per worker kind (``warm``: ``mediaflows worker``; ``docker``: ``mediaflows worker --pool
mediaflows-docker``, a new container of the worker image per run):

* submit → result of ``--runs`` single ``generate_srt`` runs of a ~``--seconds`` s speech clip
  (distinct files, one after another, an idle worker): median;
* the per-run start cost: the run's Running state (the flow started, in the container for
  docker) minus its Pending state (the worker took it): median.

The embedded server (SQLite) in a private home; `./dev docker-image` (the image, cached after the
first build; the docker deployments) and ``prefect deploy --all`` from the checkout; the store is
local, mounted into the containers at its own path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from uuid import UUID

from bench.common import bench_home

BIN = Path(sys.executable).parent


def _start_cost(run_id: UUID) -> float:
    """Seconds from the run's Pending (its worker took it) to its Running (the flow started)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        states = {s.type.value: s.timestamp for s in client.read_flow_run_states(run_id)}
    return (states["RUNNING"] - states["PENDING"]).total_seconds()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args(argv)

    with bench_home(), tempfile.TemporaryDirectory() as tmp:
        from bench.worker_bench import _clips
        from deployments import client
        from deployments.setup import DOCKER_POOL, PROCESS_POOL
        from deployments.worker import REPO_ROOT, worker_env
        from mediaflows.settings import get_settings
        from mediaflows.store import ProfileStore
        from tests.docker_pool import use_store
        from tests.prefect_api import running_worker

        get_settings.cache_clear()
        os.environ.update(worker_env(get_settings()))
        for command in ([str(REPO_ROOT / "dev"), "docker-image"],  # `mediaflows setup` too
                        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"]):  # fmt: skip
            done = subprocess.run(command, cwd=REPO_ROOT, env=os.environ.copy(),
                                  capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        store = ProfileStore.from_settings()
        use_store(store.url)
        root = Path(tmp)
        request = {"language": "en"}
        for salt, (kind, pool, deployment) in enumerate(
            [("warm", PROCESS_POOL, "generate_srt/generate_srt"),
             ("docker", DOCKER_POOL, "generate_srt/docker")]
        ):  # fmt: skip
            from prefect.deployments import run_deployment

            (root / kind).mkdir()
            clips = _clips(root / kind, args.runs, args.seconds, "s", salt)
            ids = [store.import_file("bench", c).id for c in clips]
            use_store(store.url)  # the containers' user owns what was just imported
            name = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
            command = [str(BIN / "mediaflows"), "worker", "--pool", pool, "--name", name]
            env = {**os.environ, "PREFECT_WORKER_QUERY_SECONDS": "1",
                   "PREFECT_WORKER_PREFETCH_SECONDS": "1"}  # fmt: skip
            latencies, starts = [], []
            with running_worker(command, pool, name, env, root / kind):
                for file_id in ids:
                    start = time.perf_counter()
                    run = run_deployment(name=deployment, timeout=0, parameters={
                        "profile": "bench", "file_id": file_id, "request": request})  # fmt: skip
                    result = client.wait(run.id, timeout=600, poll_s=0.05)
                    latencies.append(time.perf_counter() - start)
                    assert not result.cached
                    starts.append(_start_cost(run.id))
            print(f"{kind}: {args.runs} generate_srt runs of ~{args.seconds:g} s speech: "
                  f"submit -> result median {statistics.median(latencies):.2f} s "
                  f"({', '.join(f'{x:.2f}' for x in latencies)}); Pending -> Running "
                  f"median {statistics.median(starts):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
