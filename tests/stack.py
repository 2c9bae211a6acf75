"""A second mediaflows installation for the reliability tests: its own Prefect server (on
PostgreSQL or SQLite, on its own port and home), its own local store, `mediaflows setup` and the
deployments applied, and process workers that can be killed like a lost machine.

Everything that runs flows against it is a subprocess with :attr:`Stack.env`; this process only
reads the server back (:meth:`Stack.client`), so the session's own server is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deployments.server import start_embedded_server, stop_server
from deployments.setup import PROCESS_POOL
from deployments.worker import REPO_ROOT
from mediaflows.settings import Settings
from mediaflows.store import ProfileStore
from tests.net import free_port

BIN = Path(sys.executable).parent


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc: a worker's flow runs are in sessions of
    their own, so killing its process group would miss them)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Worker:
    """A `mediaflows worker` subprocess on the stack's process pool."""

    def __init__(self, stack: Stack, name: str, limit: int) -> None:
        self.name = name
        self.log = stack.root / f"{name}.log"
        env = {
            **stack.env,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
        }
        args = [str(BIN / "mediaflows"), "worker", "--name", name, "--limit", str(limit)]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                args, env=env, cwd=stack.root, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill(self) -> int:
        """kill -9 the worker and every flow run it started, as a lost machine would; how many
        processes were killed."""
        victims = [self.proc.pid, *descendants(self.proc.pid)]
        self.killed_pids = set(victims)
        self.killed = []
        for pid in victims:
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                self.killed.append(cmdline.decode(errors="replace")[:200])
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        return len(victims)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Stack:
    """See the module's doc. ``database_url``: a PostgreSQL SQLAlchemy URL, or None for SQLite."""

    def __init__(self, root: Path, database_url: str | None = None, **settings: str) -> None:
        self.root = root
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        home = root / "home"
        self.env = {
            **os.environ,
            "MEDIAFLOWS_HOME": str(home),
            "MEDIAFLOWS_SERVER__PORT": str(self.port),
            "MEDIAFLOWS_STORE__URL": str(root / "store"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
            **{f"MEDIAFLOWS_{k.upper()}": v for k, v in settings.items()},  # SERVER__HEARTBEAT_S=…
        }
        self.env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        if database_url:
            self.env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
        server: dict[str, str | int] = {"port": self.port}
        if auth := os.environ.get("MEDIAFLOWS_SERVER__AUTH"):
            server["auth"] = auth  # as the session's server: the workers send it
        self.settings = Settings.model_validate(
            {"home": home, "server": server, "store": {"url": str(root / "store")}}
        )
        self.store = ProfileStore.from_settings(self.settings)
        self.workers: list[Worker] = []

    # -- the server ----------------------------------------------------------------------------
    def start_server(self) -> None:
        saved = dict(os.environ)
        try:  # start_embedded_server hands its own environment to the server
            os.environ.clear()
            os.environ.update(self.env)
            start_embedded_server(self.settings, wait_s=180)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def stop_server(self) -> None:
        stop_server(self.settings, wait_s=20)

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """A sync Prefect client on this stack's server."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with (
            temporary_settings(updates={PREFECT_API_URL: self.api_url}),
            get_client(sync_client=True) as client,
        ):
            yield client

    # -- set-up, deployments and workers ------------------------------------------------------
    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), env=self.env, cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip

    def setup_and_deploy(self, *deployments: str) -> None:
        setup = self.run(str(BIN / "mediaflows"), "setup")
        assert setup.returncode == 0, setup.stderr[-3000:]
        names = [a for d in deployments for a in ("--name", d)]
        deploy = self.run(str(BIN / "prefect"), "--no-prompt", "deploy", *names)
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    def start_worker(self, limit: int = 4) -> Worker:
        worker = Worker(self, f"worker-{uuid.uuid4().hex[:6]}", limit)
        self.workers.append(worker)
        deadline = time.monotonic() + 120
        while not self.worker_online(worker.name):
            assert worker.proc.poll() is None, worker.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"worker {worker.name} did not come online"
            time.sleep(0.5)
        return worker

    def worker_online(self, name: str) -> bool:
        from prefect.client.schemas.objects import WorkerStatus
        from prefect.exceptions import ObjectNotFound

        with self.client() as client:
            try:
                workers = client.read_workers_for_work_pool(PROCESS_POOL)
            except ObjectNotFound:
                return False
        return any(w.name == name and w.status == WorkerStatus.ONLINE for w in workers)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.stop_server()

    # -- reading back ---------------------------------------------------------------------------
    def flow_runs(self, flow_name: str) -> list[Any]:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        runs: list[Any] = []
        with self.client() as client:
            while True:  # the server answers at most 200 at a time
                page = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                    limit=200,
                    offset=len(runs),
                )
                runs += page
                if len(page) < 200:
                    return runs

    def outputs_by_source(self, profile: str) -> dict[str, list[str]]:
        """{input file id: [ids of the outputs made from it]} as the store lists them."""
        by_source: dict[str, list[str]] = {}
        for f in self.store.list_files(profile):
            if f.source_file_id:
                by_source.setdefault(f.source_file_id, []).append(f.id)
        return by_source

    def stray_files(self) -> list[Path]:
        """Temporary or partial files left in the store or in the work directories."""
        store = [p for p in (self.root / "store").rglob("*") if p.name.endswith(".tmp")]
        work = self.settings.work_path
        left = [p for p in work.rglob("*") if p.is_file()] if work.exists() else []
        return store + left
